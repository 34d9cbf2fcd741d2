#pragma once
/// \file conditional_base.hpp
/// The conditional-Gaussian block of a molecular base density (BaseDensity, internal_coordinates.hpp).
///
/// ## Why
/// In internal coordinates a molecule has a few *soft* torsions (backbone φ, ψ; methyl rotors),
/// whose distribution is multimodal and spans the circle, and many *hard* coordinates (bonds,
/// angles, impropers, methyl siblings, peptide ω), which fluctuate by a few per cent about a
/// value that depends on the soft torsions (the bond angles at Cα follow φ/ψ, etc.). A
/// product base (one density per column) leaves all those dependencies to the flow; measured
/// on alanine dipeptide they are most of the log-weight variance (docs/results/alanine_dipeptide.md). The
/// harmonic picture of the hard modes at fixed soft torsions is a Gaussian whose mean moves with
/// them, so the base here is
///
///   ρ₀(y) = ρ_soft(y_S) · N(y_H; μ(y_S), Σ),    μ(y_S) = Bᵀ f(y_S),
///
/// with S the soft columns, H the others, f a fixed vector of periodic features of the soft
/// torsions (1; cos k y_s, sin k y_s for k = 1 … K_h; and the four products of the first
/// harmonics of every pair within the *joint* group), B fitted by least squares and Σ the
/// residual covariance (maximum likelihood given f: the regression is the conditional MLE).
/// ρ_soft is the product of the per-column densities of BaseDensity on the soft columns, except
/// for the joint group (e.g. φ, ψ), which has a K-component mixture of products of von Mises
/// densities fitted by EM (K by BIC), so the Ramachandran correlations are in the base.
///
/// With *experts*, each joint component k carries its own regression and covariance (the hard
/// modes of the α and β basins differ in their means and their stiffness), a mixture of experts
///
///   ρ₀(y) = Π_{soft ∖ joint} p_c(y_c) · Σ_k w_k Π_{j ∈ joint} vM(y_j; μ_kj, κ_kj) · N(y_H; B_kᵀ f(y_S), Σ_k),
///
/// fitted by EM (responsibilities from the joint mixture first, then from the whole block).
/// Without experts all B_k, Σ_k are equal and the block factorizes into the joint mixture times
/// one conditional Gaussian. Sampling: the component k, the joint columns from vM_k, the other
/// soft columns from their own densities, then y_H = B_kᵀ f(y_S) + L_k ε.
///
/// ## Exactness on the torus
/// ρ₀ must be 2π-periodic in every periodic column (generator.hpp). f is periodic; a hard
/// periodic column (an improper, ω, a methyl sibling) enters through r = wrap(y_h − μ_h), the
/// residual on the circle, so the Gaussian factor is the *wrapped* Gaussian evaluated at the
/// principal image. The neglected images lie at a distance ≥ 2π − |r| along that column, so
/// their relative contribution is below exp(−(4π² − 4π|r|)/(2σ²)) with σ the column's
/// conditional sd: for the hard torsions of alanine dipeptide (σ ≤ 0.2 rad, |r| < 1) below
/// 10⁻¹⁰⁰, and ConditionalGaussian::fit refuses a hard periodic column with σ > 0.5 rad
/// (bound 10⁻¹⁰ at |r| = 3σ). Draws y_h = μ + L ε are wrapped by the generator like every
/// periodic column.
///
/// ## Bin correction of the joint marginal
/// A mixture of K products of von Mises densities is a coarse model of the Ramachandran
/// marginal: on alanine dipeptide its misfit between (φ, ψ) bins is 12–18 % of the log-weight
/// variance (docs/results/alanine_dipeptide.md). With a correction on an n × n grid of the joint pair, the
/// block density becomes
///
///   ρ₀'(y) = c_b(y_J) · ρ₀(y),    c_b = p_b / m_b,
///
/// where m_b is the mass of bin b under the joint mixture (exact up to the quadrature of
/// joint_bin_masses) and p_b the target bin masses. fit_joint_correction takes p_b from the
/// frames' bin frequencies mixed with a fraction `defensive` of m_b (so every bin keeps mass),
/// and caps c_b at kMaxJointCorrection, rescaling the uncapped bins so that Σ_b c_b m_b = 1: a
/// draw costs max_b c_b mixture draws on average, and on alanine dipeptide a few φ > 0 frames in
/// bins of mixture mass 1e-9 gave max c = 3·10³. Since Σ_b c_b m_b = Σ_b p_b = 1, ρ₀' is
/// normalized; within a bin it keeps the mixture's shape, its bin masses are p_b, and the hard
/// block given (φ, ψ) is unchanged. Draws: the mixture's (k, y_J), accepted with probability
/// c_b / max c (rejection); the accepted pair has density ∝ w_k vM_k(y_J) c_b(y_J), so k given
/// y_J keeps its responsibilities, as the hard block needs.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "boltzlab/io/config.hpp"

namespace boltzlab {
class Rng;
}

namespace boltzlab::generators {

/// Largest ratio c_b of the bin correction made by fit_joint_correction (see the file comment).
inline constexpr double kMaxJointCorrection = 30.0;

class ConditionalGaussian {
 public:
  ConditionalGaussian() = default;

  /// Fits the block to flow-space data y (B × m): `torsion_mask` (m) the periodic columns,
  /// `soft` (periodic columns) the conditioning torsions, `joint` ⊆ soft the group with a joint
  /// von Mises mixture (empty, or ≥ 2 columns; up to `joint_components` components, K by
  /// BIC = −2 log L + (K(2g + 1) − 1) log B on at most 2·10⁴ rows, an even stride), `harmonics` ≥ 1.
  /// `experts` = false: one regression and one Σ for all (maximum likelihood, closed form).
  /// `experts` = true: expert k (one per joint component) has its own B_k and Σ_k, and
  /// ρ₀ = Π p_c · Σ_k w_k vM_k(y_J) N(y_H; B_kᵀ f, Σ_k) is fitted by EM (started from the
  /// joint mixture's responsibilities, at most `em_iterations` ≥ 1 M-steps, stopped when the
  /// mean log-likelihood per row gains < 1e-8).
  /// Each expert is shrunk toward the pooled fit with a prior weight of `shrinkage` × (F·h +
  /// h(h+1)/2) rows (0: separate experts; see the M-step in the source).
  /// `ridge` ≥ 0 is added to the diagonal of the (weighted) FᵀF / B.
  /// \throws DomainError on bad arguments, a hard periodic column with conditional sd
  /// > 0.5 rad (see the file comment), too few rows or a singular residual covariance.
  static ConditionalGaussian fit(const torch::Tensor& y, const torch::Tensor& torsion_mask,
                                 const std::vector<std::int64_t>& soft, const std::vector<std::int64_t>& joint,
                                 int harmonics, int joint_components, bool experts = false, int em_iterations = 30,
                                 double shrinkage = 1.0, double ridge = 1e-10);

  /// From explicit parameters (validated): coef K × F × h (or F × h for K = 1), chol K × h × h
  /// (or h × h) lower triangular with positive diagonals; joint_mu, joint_kappa K × g,
  /// joint_weight K (sum 1); without a joint group K = 1 and the joint tensors are undefined.
  ConditionalGaussian(std::int64_t dim, std::vector<std::int64_t> soft, std::vector<std::int64_t> joint,
                      std::vector<std::int64_t> hard, std::vector<bool> hard_periodic, int harmonics,
                      torch::Tensor coef, torch::Tensor chol, torch::Tensor joint_mu, torch::Tensor joint_kappa,
                      torch::Tensor joint_weight);

  std::int64_t dim() const { return dim_; }
  const std::vector<std::int64_t>& soft() const { return soft_; }
  const std::vector<std::int64_t>& joint() const { return joint_; }
  const std::vector<std::int64_t>& hard() const { return hard_; }
  int harmonics() const { return harmonics_; }
  std::int64_t n_features() const;
  /// K: joint components = experts (1 without a joint group).
  std::int64_t components() const { return coef_.defined() ? coef_.size(0) : 0; }
  /// True when all experts share B and Σ (then ρ₀ = p_joint · N, the product form).
  bool shared() const;
  const torch::Tensor& coef() const { return coef_; }  ///< K × F × h
  const torch::Tensor& chol() const { return chol_; }  ///< K × h × h
  const torch::Tensor& joint_weight() const { return joint_weight_; }
  /// Largest conditional sd of a hard periodic column over the experts (0 if there is none).
  double max_periodic_sd() const;

  /// f(y_S): B × F (differentiable in y).
  torch::Tensor features(const torch::Tensor& y) const;
  /// log N(y_H; B_kᵀ f(y_S), Σ_k) (wrapped on the periodic hard columns): K × B.
  torch::Tensor log_prob_hard(const torch::Tensor& y) const;
  /// log w_k + log Π_j vM(y_j; μ_kj, κ_kj) over the joint columns: K × B (log w_k = 0 for K = 1
  /// without a joint group).
  torch::Tensor log_prob_joint_components(const torch::Tensor& y) const;
  /// log of the block's density on the joint and hard columns: logsumexp_k of the sum of the two
  /// above, plus log_correction (B).
  torch::Tensor log_prob(const torch::Tensor& y) const;

  /// Draws the expert / joint component and the joint columns of one sample (into `row`, length
  /// m) from `rng` (by rejection with a bin correction); returns the component.
  std::int64_t sample_joint(Rng& rng, double* row) const;
  /// Fills the hard columns of y (B × m, soft columns already drawn) with B_kᵀ f(y_S) + L_k ε,
  /// k = `component[i]` and ε the rows of `normals` (B × h).
  void fill_hard(torch::Tensor& y, const torch::Tensor& normals, const std::vector<std::int64_t>& component) const;

  /// The hard block's whitening (one expert, K = 1): u = y with the hard columns replaced by
  /// L⁻¹ r, r = y_H − Bᵀ f(y_S) (wrapped on the periodic hard columns); the other columns are
  /// unchanged. A bijection of the flow space whose log-det, −Σ log L_ii, does not depend on y
  /// (the hard columns given the soft ones are an affine map; the soft columns are the identity),
  /// so a flow F conjugated by it, unwhiten ∘ F ∘ whiten, has the log-det of F. Where the data
  /// follow the pooled Gaussian, u_H is standard normal: the scale at which a flow is easy to
  /// train (generator.hpp, "flow_whitening"). Differentiable.
  /// \throws DomainError for K > 1 (experts: fit a pooled block for the whitening).
  torch::Tensor whiten(const torch::Tensor& y) const;
  /// The inverse of whiten: the hard columns Bᵀ f(u_S) + L u_H (periodic ones not wrapped).
  torch::Tensor unwhiten(const torch::Tensor& u) const;
  /// Mass of each of the n × n bins of the joint pair (φ rows, ψ columns, [−π, π) each) under
  /// the joint mixture: Σ_k w_k ∫vM_k0 ∫vM_k1 with composite Simpson rules of 128 intervals per
  /// bin and axis (n² values, row-major). \throws DomainError without a joint pair or n < 2.
  torch::Tensor joint_bin_masses(int bins) const;
  /// Sets the bin correction from target bin masses p (n² values, all > 0, summing to 1; see the
  /// file comment). \throws DomainError without a joint pair, n < 2, bad masses, or a ratio
  /// p_b / m_b above 10 kMaxJointCorrection (each draw would need that many mixture draws).
  void set_joint_correction(int bins, const torch::Tensor& target_masses);
  /// Target masses from data y (B × m; the joint columns are wrapped into [−π, π)): bin
  /// frequencies mixed with a fraction `defensive` ∈ (0, 1] of the mixture's masses, ratios capped
  /// at kMaxJointCorrection (file comment); then set_joint_correction.
  void fit_joint_correction(const torch::Tensor& y, int bins, double defensive);
  /// n of the bin correction (0: none).
  int correction_bins() const { return correction_bins_; }
  /// log c_b of the bin of each row's joint pair (B; zeros without a correction).
  torch::Tensor log_correction(const torch::Tensor& y) const;

  Json to_json() const;
  /// \throws ConfigError naming `context`.
  static ConditionalGaussian from_json(const Json& object, const std::string& context);

 private:
  /// Bin index (φ bin × n + ψ bin) of each row's joint pair on the n × n grid (B, long).
  torch::Tensor joint_bin_index(const torch::Tensor& y, int bins) const;

  std::int64_t dim_ = 0;
  std::vector<std::int64_t> soft_, joint_, hard_;
  std::vector<bool> hard_periodic_;
  int harmonics_ = 1;
  torch::Tensor coef_, chol_, chol_inv_, log_det_half_;  // K × F × h, K × h × h, K × h × h, K (Σ log L_ii)
  torch::Tensor joint_mu_, joint_kappa_, joint_weight_, log_joint_weight_;
  torch::Tensor soft_index_, joint_index_, hard_index_, hard_periodic_mask_;
  std::vector<double> joint_mu_v_, joint_kappa_v_, joint_weight_v_;
  int correction_bins_ = 0;
  torch::Tensor log_ratio_;        // n² log c_b (row-major: φ bin × n + ψ bin)
  std::vector<double> log_ratio_v_;
  double log_ratio_max_ = 0.0;
};

}  // namespace boltzlab::generators
