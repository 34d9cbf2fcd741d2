#pragma once
/// \file molecular_space.hpp
/// The space a molecular generator works in: the normalization of internal
/// coordinates (molecules/internal_coordinates.hpp), base densities on
/// (ℝ^m × torus) (BaseDensity), and MolecularFlowSpace, which bundles the steps
/// between Cartesian samples and the flow's coordinates with exact log-densities.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/generators/base_options.hpp"
#include "boltzlab/generators/conditional_base.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/molecules/internal_coordinates.hpp"

namespace boltzlab::generators {

using molecules::ChiralCenter;
using molecules::InternalCoordinates;
using molecules::ZMatrix;
using molecules::ZMatrixRow;
using molecules::chirality_triple_product;
using molecules::dihedral;

/// Standardization of the non-periodic coordinates for a flow:
///   y_c = (z_c − μ_c) / σ_c for bonds and angles,  y_c = wrap(z_c − μ_c) for torsions,
/// with μ_c the mean (torsions: the circular mean, so the cut at ±π lies opposite
/// the bulk — a rotation of the circle, log-det 0) and σ_c the standard deviation
/// estimated from data. log|det ∂y/∂z| = −Σ_{non-periodic c} log σ_c (per sample).
class InternalNormalization {
 public:
  InternalNormalization() = default;
  /// Statistics from data in internal coordinates (B × m, B ≥ 2). `torsion_mask`: Bool (m).
  /// σ is floored at `min_std` (e.g. for rigid bonds). \throws DomainError on empty data.
  static InternalNormalization fit(const torch::Tensor& internal, const torch::Tensor& torsion_mask,
                                   double min_std = 1e-6);
  /// From explicit statistics (e.g. loaded with a model): mean, std (m), torsion mask (m).
  InternalNormalization(torch::Tensor mean, torch::Tensor std, torch::Tensor torsion_mask);

  /// z → y; returns (y, logdet) with logdet (B) = −Σ_nonperiodic log σ.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& internal) const;
  /// y → z (torsions wrapped to [−π, π)); logdet = +Σ_nonperiodic log σ.
  std::pair<torch::Tensor, torch::Tensor> inverse(const torch::Tensor& normalized) const;

  const torch::Tensor& mean() const { return mean_; }
  const torch::Tensor& std() const { return std_; }
  const torch::Tensor& torsion_mask() const { return torsion_mask_; }
  Json to_json() const;
  static InternalNormalization from_json(const Json& object, const std::string& context);

 private:
  torch::Tensor mean_, std_, torsion_mask_;
  double log_det_ = 0.0;  // Σ_nonperiodic log σ
};

/// Base density of a flow on ℝ^{m−p} × T^p: independent standard normals (or, optionally,
/// one-dimensional Gaussian mixtures Σ_k w_k N(μ_k, s_k²)) on the non-periodic
/// coordinates and, on each torsion, either the uniform density 1/(2π),
/// a von Mises density exp(κ cos(τ − μ)) / (2π I₀(κ)), or a mixture of K von Mises
/// densities Σ_k w_k exp(κ_k cos(τ − μ_k)) / (2π I₀(κ_k)) (independent across torsions):
///   log p(y) = Σ_{non-periodic} (−½ y_c² − ½ log 2π) + Σ_{torsions} log p_c(y_c).
/// Any such p is 2π-periodic in the torsions, which is all the wrapped-flow construction
/// (generator.hpp) needs, so log q stays exact with every variant.
class BaseDensity {
 public:
  /// Uniform on the torsions (recommended with a periodic velocity field).
  explicit BaseDensity(torch::Tensor torsion_mask);
  /// Von Mises on the torsions with locations `mu` and concentrations `kappa` (length m,
  /// read at the torsion columns; κ ≥ 0, κ = 0 is uniform).
  BaseDensity(torch::Tensor torsion_mask, torch::Tensor mu, torch::Tensor kappa);
  /// Mixture of K von Mises per torsion: `mu`, `kappa`, `weight` are K × m (read at the
  /// torsion columns); weights ≥ 0 and summing to 1 over k in every torsion column.
  /// K = 1 is the plain von Mises base (same draws, same density).
  /// \throws DomainError on wrong shapes, κ < 0, non-finite entries or bad weights.
  /// `sd` (K × m, optional): the non-periodic columns then hold Gaussian mixtures with
  /// means `mu`, standard deviations `sd` and weights `weight` (undefined: those columns
  /// must be the standard normal, μ = 0 and a single component).
  BaseDensity(torch::Tensor torsion_mask, torch::Tensor mu, torch::Tensor kappa, torch::Tensor weight,
              torch::Tensor sd = {});

  /// Von Mises base fitted to data y (B × m, e.g. MolecularFlowSpace::to_flow of MD frames):
  /// per torsion μ = circular mean and κ the maximum-likelihood concentration, the root of
  /// A(κ) = I₁(κ)/I₀(κ) = R̄ (mean resultant length; Newton from the Best–Fisher start),
  /// capped at `max_kappa`. Rationale: after normalization the bonds/angles are ≈ N(0, 1)
  /// but the torsions are not rescaled (that would break periodicity); in alanine dipeptide
  /// their widths range from ≈ 0.08 rad (impropers, methyl siblings, κ ≈ 150) to near-uniform
  /// (methyl rotors), so a fitted von Mises base starts the flow much closer to the target.
  /// \throws DomainError for fewer than 2 rows or a wrong mask length.
  static BaseDensity fit_von_mises(const torch::Tensor& y, const torch::Tensor& torsion_mask,
                                   double max_kappa = 1e3);
  /// Mixture-of-von-Mises base fitted to data y, per torsion: maximum likelihood by EM
  /// for K = 1 … `max_components` (M-step: μ_k = weighted circular mean, κ_k from
  /// A(κ_k) = R̄_k as in fit_von_mises; deterministic starts: the K highest peaks of a
  /// smoothed 72-bin histogram, and K evenly spaced means), K chosen by BIC
  /// (−2 log L + (3K − 1) log B). Rationale: the torsions that dominate the log-weight
  /// variance of alanine dipeptide are multimodal — ψ (α/β), φ and the three-fold methyl
  /// rotors — and a unimodal base leaves the flow to split those modes; a mixture base
  /// has the right marginals before training and leaves the flow the correlations.
  /// \throws DomainError for fewer than 2 rows, a wrong mask length or max_components < 1.
  static BaseDensity fit_von_mises_mixture(const torch::Tensor& y, const torch::Tensor& torsion_mask,
                                           int max_components = 4, double max_kappa = 1e3);
  /// As fit_von_mises_mixture on the torsions (`torsion_components` ≥ 1) and, with
  /// `gaussian_components` > 1, a one-dimensional Gaussian mixture on every non-periodic
  /// column (EM, deterministic starts at quantiles and at histogram peaks, K by BIC,
  /// s_k ≥ 10⁻³ of the column's sd); `gaussian_components` = 1 keeps N(0, 1) there.
  /// Rationale: a factorized mixture base gives the flow the right one-dimensional
  /// marginals of multimodal coordinates (e.g. the double wells of ManyWell) before
  /// training; the flow then models the dependence and the shape within the modes.
  /// Both fits use at most 2·10⁴ rows of y (an even stride).
  /// `defensive` = ε > 0 adds, to every fitted mixture column, one broad component of
  /// weight ε (the others scaled by 1 − ε): N(mean, (2·sd)²) of the column's data on
  /// Gaussian columns, the uniform density on torsions — defensive importance sampling
  /// (Hesterberg, Technometrics 37, 185, 1995): p/q is then bounded where the fitted modes
  /// are too light (barriers between wells), at a cost of ≈ ε per column in efficiency.
  static BaseDensity fit_mixture(const torch::Tensor& y, const torch::Tensor& torsion_mask, int torsion_components,
                                 int gaussian_components, double max_kappa = 1e3, double defensive = 0.0);

  /// A mixture base (fit_mixture with `options.components` per torsion) in which the hard columns
  /// and the `joint` group are replaced by a ConditionalGaussian block (conditional_base.hpp):
  ///   ρ₀(y) = Π_{soft ∖ joint} p_c(y_c) · Σ_k w_k vM_k(y_J) N(y_H; B_kᵀ f(y_S), Σ_k)
  /// (all B_k, Σ_k equal without experts).
  /// `soft` (periodic columns) are the conditioning torsions (options.soft_threshold is not used
  /// here: wide_torsions turns it into `soft`); `joint` ⊆ soft gets a joint von Mises mixture
  /// (up to options.components components, K by BIC); options.harmonics, .experts (one
  /// regression and covariance per joint component), .em_iterations and .shrinkage go to
  /// ConditionalGaussian::fit; options.joint_bins > 0 adds the bin correction of the joint pair
  /// fitted to the same data with options.joint_defensive (ConditionalGaussian::fit_joint_correction).
  /// \throws DomainError from fit_mixture, ConditionalGaussian::fit or fit_joint_correction.
  static BaseDensity fit_conditional(const torch::Tensor& y, const torch::Tensor& torsion_mask,
                                     const std::vector<std::int64_t>& soft, const std::vector<std::int64_t>& joint,
                                     const ConditionalBaseOptions& options);
  /// Periodic columns of data y whose circular standard deviation √(−2 log R̄) exceeds
  /// `threshold` (rad), merged with `always` (sorted): the default soft torsions.
  static std::vector<std::int64_t> wide_torsions(const torch::Tensor& y, const torch::Tensor& torsion_mask,
                                                 double threshold, const std::vector<std::int64_t>& always = {});
  /// Replaces the per-column densities of the block's joint and hard columns by the block.
  /// \throws DomainError on a dimension mismatch, a non-periodic soft column or Gaussian-mixture
  /// non-periodic columns.
  void set_conditional(ConditionalGaussian block);
  /// The conditional block, or null.
  const ConditionalGaussian* conditional() const { return conditional_.get(); }

  /// First component's μ and κ (length m; the von Mises parameters when K = 1).
  torch::Tensor mu() const { return mu_[0]; }
  torch::Tensor kappa() const { return kappa_[0]; }
  /// K × m mixture parameters (K = 1 for the uniform and plain von Mises bases).
  const torch::Tensor& mixture_mu() const { return mu_; }
  const torch::Tensor& mixture_kappa() const { return kappa_; }
  const torch::Tensor& mixture_weight() const { return weight_; }
  const torch::Tensor& mixture_sd() const { return sd_; }
  /// True when some non-periodic column is not the standard normal.
  bool gaussian_mixture() const { return gaussian_mixture_; }
  /// Number of mixture components per torsion actually used (weight > 0), per column (m).
  std::vector<int> components_per_column() const;
  std::int64_t components() const { return mu_.size(0); }
  bool von_mises() const { return von_mises_; }
  /// Torsion part: "uniform", "von_mises" or "von_mises_mixture" (K > 1); "+gaussian_mixture"
  /// is appended when the non-periodic columns are Gaussian mixtures, "+conditional_gaussian"
  /// with a conditional block.
  std::string kind() const;

  /// log p(y) per sample (B). Torsion entries are read modulo 2π.
  torch::Tensor log_prob(const torch::Tensor& y) const;
  /// n samples (n × m), torsions in [−π, π); sample s uses Rng stream (seed, first_index + s),
  /// so the result does not depend on the thread count or on how a long run of draws is
  /// split into batches. Von Mises by Best & Fisher (1979); with K > 1 a torsion first
  /// draws its component by one uniform.
  torch::Tensor sample(std::int64_t n, std::uint64_t seed, std::int64_t first_index = 0) const;
  /// Bool (m): the periodic columns.
  const torch::Tensor& torsion_mask() const { return torsion_mask_; }

  /// {"torsion_mask": [...], "von_mises": bool, "mu": [...], "kappa": [...]} plus, for K > 1,
  /// "mixture": {"mu": K×m, "kappa": K×m, "weight": K×m[, "sd": K×m]}, and "conditional"
  /// (ConditionalGaussian::to_json) with a conditional block (to save with a model).
  Json to_json() const;
  /// Inverse of to_json. \throws ConfigError naming `context`.
  static BaseDensity from_json(const Json& object, const std::string& context);

 private:
  torch::Tensor torsion_mask_, mu_, kappa_, weight_, sd_;  // mu_, kappa_, weight_, sd_: K × m
  std::shared_ptr<const ConditionalGaussian> conditional_;
  torch::Tensor per_column_;  // Bool m: columns with their own density (all but joint and hard)
  bool von_mises_ = false;
  bool gaussian_mixture_ = false;
};

/// The flow's space for a molecule: Cartesian x (B × 3n) ⇄ internal z ⇄ normalized y
/// (B × (3n − 6)), i.e. InternalCoordinates followed by InternalNormalization, with the
/// bookkeeping of densities and importance weights in one place.
///
/// With q_y the flow density on y and L(y) = log|det ∂x/∂y| = log J(z) + Σ log σ
/// (from_flow's logdet), the density of the generated Cartesian samples on the
/// centre-of-mass-free subspace (targets/target.hpp convention, uniform orientation) is
///   log q_cf(x) = log q_y(y) − L(y) + com_free_log_density_offset(),
/// and the importance log-weight for a reduced energy u is log w = −u(x) − log q_cf(x),
/// set to −∞ where the sample is outside the bijective domain (r ≤ 0 or θ ∉ (0, π):
/// the target has no mass there) and, optionally, where a chiral centre is wrong (the
/// target restricted to the physical enantiomer; force-field energies are mirror
/// symmetric, so otherwise the D-enantiomer is an equally deep, unvisited mode).
/// For data x: log q_cf(x) = log q_y(y(x)) + to_flow's logdet + offset.
class MolecularFlowSpace {
 public:
  MolecularFlowSpace(InternalCoordinates coordinates, InternalNormalization normalization);
  /// Normalization statistics from Cartesian data (B × 3n, e.g. reference MD frames).
  static MolecularFlowSpace fit(InternalCoordinates coordinates, const torch::Tensor& cartesian_data,
                                double min_std = 1e-6);

  const InternalCoordinates& coordinates() const { return coordinates_; }
  const InternalNormalization& normalization() const { return normalization_; }
  /// 3n − 6.
  std::int64_t dim() const { return coordinates_.n_internal(); }
  /// Bool (3n − 6): the periodic (torsion) columns of y, in [−π, π).
  torch::Tensor torsion_mask() const { return coordinates_.torsion_mask(); }

  /// x → (y, logdet) with logdet = log|det ∂y/∂x| = −log J(z) − Σ log σ (per sample).
  std::pair<torch::Tensor, torch::Tensor> to_flow(const torch::Tensor& cartesian) const;

  /// Result of from_flow.
  struct Decoded {
    torch::Tensor cartesian;  ///< B × 3n, anchor frame
    torch::Tensor logdet;     ///< B: L(y) = log|det ∂x/∂y| = log J(z) + Σ log σ
    torch::Tensor valid;      ///< Bool B: inside the bijective domain (InternalCoordinates::in_domain)
    torch::Tensor chirality_ok;  ///< Bool B: every chiral centre has its expected sign
  };
  /// y → x (torsions of y may be unwrapped; differentiable in y).
  Decoded from_flow(const torch::Tensor& y) const;

  /// log q_cf(x) = log q_y − L + offset for generated samples (B).
  torch::Tensor log_q_cartesian(const torch::Tensor& log_q_flow, const Decoded& decoded) const;
  /// log w = −u − log q_cf, −∞ outside the domain and (if `require_chirality`) for the
  /// wrong enantiomer. `reduced_energy` (B) may be +∞ (then log w = −∞).
  torch::Tensor log_weights(const torch::Tensor& reduced_energy, const torch::Tensor& log_q_flow,
                            const Decoded& decoded, bool require_chirality = true) const;

  /// {"coordinates": InternalCoordinates::to_json(), "normalization": ...}, to save with a model.
  Json to_json() const;
  static MolecularFlowSpace from_json(const Json& object, const std::string& context);

 private:
  InternalCoordinates coordinates_;
  InternalNormalization normalization_;
};

/// Torsion columns of MolecularFlowSpace's y, which lie in [−π, π), and the real line:
///   t = logit((τ + π) / 2π),   τ = 2π σ(t) − π,   log|dτ/dt| = log 2π + log σ(t) + log σ(−t).
/// A Euclidean model (e.g. a score model) on t decodes every draw to a torsion inside [−π, π);
/// treating τ itself as Euclidean loses the draws that spill past ±π (zero weight: 45 % of the
/// probability-flow draws of a score model of alanine dipeptide, mostly its near-uniform methyl
/// rotors). A uniform torsion becomes the logistic density; a peaked one stays peaked (the
/// circular-mean centring of InternalNormalization puts the bulk of each torsion at τ = 0).
/// Rows at exactly −π map to a finite t (u clamped to [10⁻¹², 1 − 10⁻¹²]).
RowMatrix torsions_to_line(RowMatrix y, const torch::Tensor& torsion_mask);
/// The inverse on draws: the torsion columns of x go from t to τ, and `log_q` (if given, one
/// entry per row) from the density in t to the density in τ (minus log|dτ/dt| per column).
void torsions_to_circle(RowMatrix& x, Eigen::VectorXd* log_q, const torch::Tensor& torsion_mask);

}  // namespace boltzlab::generators
