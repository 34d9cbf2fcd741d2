#pragma once
/// \file internal_coordinates.hpp
/// Internal-coordinate transform for molecular Boltzmann generators: Cartesian
/// positions ⇄ (bond lengths, bond angles, torsions) from a Z-matrix, as batched
/// LibTorch (float64) operations with the exact log|det J| per sample, a
/// normalization layer, base densities for a flow on (ℝ^m × torus), and the
/// chirality check of generated samples.
///
/// ## Coordinates and the six external degrees of freedom
/// A molecule of n atoms is described by three *anchor* atoms a0, a1, a2 and one
/// Z-matrix row (i; j, k, l) for every other atom i, with j, k, l placed before i:
///   r_i = |x_i − x_j|, θ_i = ∠(x_i, x_j, x_k) ∈ (0, π), τ_i = dihedral(x_i, x_j, x_k, x_l) ∈ [−π, π).
/// The rigid motion is *removed*, not kept Cartesian: translation is fixed by a0
/// (placed at the origin), rotation by the anchor frame (a1 on the +x axis, a2 in
/// the xy-plane with y > 0). What is left of the anchors is internal too:
///   a1: bond r(a1, a0);   a2: bond r(a2, a1) and angle ∠(a2, a1, a0).
/// So the internal vector has exactly 3n − 6 entries, laid out in three blocks
///   [ bonds (n−1) | angles (n−2) | torsions (n−3) ],
/// each block in placement order (a1, a2, then the Z-matrix rows in the given order;
/// angles start at a2, torsions at the first Z-matrix row). For alanine dipeptide
/// (n = 22): 21 bonds, 20 angles, 19 torsions, 60 coordinates.
///
/// ## log|det J| (exact, including the anchor part)
/// Write x = R·X(z) + t, with X(z) the placement in the anchor frame, t ∈ ℝ³ and
/// R ∈ SO(3). Then d^{3n}x = J(z) dz dt dR with dR the Haar measure on SO(3) (total
/// volume 8π²) and
///   J(z) = r_{a1}² · r_{a2}² sin θ_{a2} · ∏_{Z-matrix rows i} r_i² sin θ_i.
/// (Spherical coordinates of every placed atom about its bond partner: r² sin θ dr dθ dτ;
/// for a1 the two angles and for a2 the torsion are the rotation's three Haar angles.)
/// Hence a density q(z) on internal coordinates corresponds to the Cartesian density
/// q(z(x)) / J(z(x)) / (8π² V) and, for a rigid-motion invariant energy u,
///   log π_int(z) = −u(x(z)) + log J(z) + const,
/// which is what a generator trained in internal coordinates must match:
///   log w = −u(x) + log J(z) − log q(z)    (to_cartesian's log-det is +log J),
///   log q_cart(x) = log q(z(x)) + logdet_forward = log q(z) − log J   (up to the constant log 8π²V).
/// to_internal returns −log J(z), to_cartesian +log J(z): their sum is 0.
/// Reference for the construction (NeRF placement and the r² sin θ factors): Parsons
/// et al., J. Comput. Chem. 26, 1063 (2005); Noé et al., Science 365, eaaw1147 (2019),
/// supplementary "mixed coordinate transformation"; Köhler et al., "Smooth normalizing
/// flows", NeurIPS 2021 (global internal coordinates, 3n − 6).
///
/// ## Torsions are periodic
/// Torsions live on the circle [−π, π). Recommendation for a flow on ℝ^{3n−6}: make the
/// velocity field 2π-periodic in the torsion coordinates (feed them to the network as
/// (cos τ, sin τ) features), integrate on ℝ and wrap the result with wrap_torsions(): the
/// time-t flow map then commutes with 2π shifts and induces a diffeomorphism of the
/// torus with the same log-det, so the density stays exact. Base: a standard Gaussian
/// on the standardized bonds/angles times a uniform (or von Mises) density on the torsions
/// (BaseDensity; BaseDensity::fit_von_mises fits μ, κ per torsion to data). Treating torsions as real numbers with a Gaussian base instead is
/// only exact if the mass outside [−π, π) is discarded (weight 0), which is wasteful
/// for ψ whose β-basin straddles ±π.
///
/// ## Use in a generator (MolecularFlowSpace bundles the steps)
///   space = MolecularFlowSpace::fit(InternalCoordinates::alanine_dipeptide(), md_frames);
///   base  = BaseDensity::fit_von_mises(space.to_flow(md_frames).first, space.torsion_mask());
///   sampling: y ~ flow (torsions wrapped), d = space.from_flow(y), u = target(d.cartesian),
///             log_w = space.log_weights(u, log_q_y, d)   (−∞ off-domain / wrong chirality);
///   data:     (y, ld) = space.to_flow(x); NLL = −(log q_y(y) + ld + offset).
/// The alanine Z-matrix fits both project systems (alanine_dipeptide.pdb and
/// amber96_obc1.pdb share the atom order). On 2000 frames of 200 ps OBC2 MD (300 K) all
/// samples are L and in the domain, round trips agree to 5e-16 nm, bond σ ≈ 0.002–0.003 nm,
/// angle σ ≈ 0.05–0.07 rad, torsion widths from 0.08 rad to uniform (methyl rotors).
///
/// ## Domain
/// The map internal → Cartesian is a bijection (modulo rigid motion) only for r > 0 and
/// θ ∈ (0, π). in_domain() flags samples outside that set: they must get importance
/// weight 0 (log w = −∞), since the target has no mass there.
///
/// All tensors are float64 (kDouble) on the CPU; batch shapes are B × 3n (Cartesian, atom
/// i at columns 3i..3i+2) and B × (3n − 6) (internal). Units are those of the input
/// (OpenMM targets use nm), and log J depends on them.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "boltzlab/generators/conditional_base.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab::generators {

/// One Z-matrix row: atom `atom` is placed at distance r from `bond`, angle θ at
/// `bond` from `angle`, and dihedral τ(atom, bond, angle, torsion).
struct ZMatrixRow {
  std::int64_t atom = -1;     ///< i, the atom placed
  std::int64_t bond = -1;     ///< j, bond partner (placed before i)
  std::int64_t angle = -1;    ///< k, angle partner (placed before i)
  std::int64_t torsion = -1;  ///< l, torsion partner (placed before i)
};

/// A stereocentre to check: the sign of the triple product
/// s = (x_a − x_c) · ((x_b − x_c) × (x_d − x_c)) must equal `expected_sign`.
struct ChiralCenter {
  std::string name;          ///< label for reports, e.g. "ALA CA"
  std::int64_t center = -1;  ///< c, the stereocentre
  std::int64_t a = -1;       ///< first neighbour
  std::int64_t b = -1;       ///< second neighbour
  std::int64_t d = -1;       ///< third neighbour
  int expected_sign = 1;     ///< +1 or −1: sign of the correct enantiomer
};

/// The molecule description: anchors + Z-matrix rows (+ optional chiral centres).
struct ZMatrix {
  std::int64_t n_atoms = 0;
  std::vector<std::int64_t> anchors;  ///< exactly three atoms a0, a1, a2 (a1 bonded to a0, a2 to a1)
  std::vector<ZMatrixRow> rows;       ///< one row for every non-anchor atom, in placement order
  std::vector<ChiralCenter> chiral_centers;
  std::vector<std::string> atom_names;  ///< optional (empty or n_atoms names)

  /// Checks: n_atoms ≥ 3, three distinct anchors, every atom exactly once (as anchor
  /// or row atom), references in range, distinct from the atom and from each other,
  /// and placed before it; chiral centres in range with sign ±1.
  /// \throws ConfigError naming `context` and the offending row/atom.
  void validate(const std::string& context = "z-matrix") const;
};

/// Cartesian ⇄ internal coordinates for one molecule (see the file comment).
class InternalCoordinates {
 public:
  /// \throws ConfigError if `zmatrix` is invalid (ZMatrix::validate).
  explicit InternalCoordinates(ZMatrix zmatrix, const std::string& context = "z-matrix");

  /// Alanine dipeptide (ACE-ALA-NME, 22 atoms) in the atom order of
  /// data/alanine_dipeptide/alanine_dipeptide.pdb (amber/OpenMM order). Anchors N(6),
  /// CA(8), C(14); heavy backbone first (C_ACE 4 with torsion φ = (4,6,8,14), N_NME 16
  /// with ψ = (16,14,8,6) ≡ (6,8,14,16)), then CB(10) and HA(9) on CA, the amide H and
  /// the ACE/NME groups, hydrogens on their heavy atoms (methyl H's relative to a
  /// sibling). Chiral centre: CA with (N, C, CB) and expected sign +1 (L).
  static InternalCoordinates alanine_dipeptide();

  /// From a JSON object
  ///   {"n_atoms": 22, "anchors": [6, 8, 14],
  ///    "z_matrix": [[4, 6, 8, 14], ...],            // rows [i, j, k, l]
  ///    "chiral_centers": [{"name": "CA", "center": 8, "neighbors": [6, 14, 10], "sign": 1}],  // optional
  ///    "atom_names": [...]}                          // optional
  /// Unknown keys are rejected. \throws ConfigError naming `context` and the field.
  static InternalCoordinates from_json(const Json& object, const std::string& context);
  /// from_json of a file. \throws IoError / ConfigError.
  static InternalCoordinates from_json_file(const std::filesystem::path& path);
  /// The description as JSON (inverse of from_json), e.g. to save with a model.
  Json to_json() const;

  const ZMatrix& zmatrix() const { return zmatrix_; }
  std::int64_t n_atoms() const { return zmatrix_.n_atoms; }
  /// 3n, the Cartesian dimension.
  std::int64_t n_cartesian() const { return 3 * zmatrix_.n_atoms; }
  /// 3n − 6, the internal dimension.
  std::int64_t n_internal() const { return 3 * zmatrix_.n_atoms - 6; }
  std::int64_t n_bonds() const { return zmatrix_.n_atoms - 1; }
  std::int64_t n_angles() const { return zmatrix_.n_atoms - 2; }
  std::int64_t n_torsions() const { return zmatrix_.n_atoms - 3; }

  /// Column indices (into the internal vector) of the bonds [0, n−1).
  std::vector<std::int64_t> bond_indices() const;
  /// Column indices of the angles [n−1, 2n−3).
  std::vector<std::int64_t> angle_indices() const;
  /// Column indices of the periodic coordinates (torsions) [2n−3, 3n−6).
  std::vector<std::int64_t> torsion_indices() const;
  /// Bool tensor of length 3n − 6: true at the torsion columns.
  torch::Tensor torsion_mask() const;
  /// Column of the torsion that places `atom`. \throws DomainError if `atom` is an anchor
  /// or out of range.
  std::int64_t torsion_column_of_atom(std::int64_t atom) const;
  /// Column of the torsion equal to dihedral(p0, p1, p2, p3) (either orientation of the
  /// four atoms), or −1 if the Z-matrix has no such torsion.
  std::int64_t find_torsion(std::int64_t p0, std::int64_t p1, std::int64_t p2, std::int64_t p3) const;

  /// Cartesian → internal. `cartesian`: B × 3n (float64). Returns (z, logdet) with z of
  /// shape B × (3n − 6) (torsions in [−π, π)) and logdet of shape B equal to
  /// −log J(z) = −[2 log r_{a1} + 2 log r_{a2} + log sin θ_{a2} + Σ_rows (2 log r_i + log sin θ_i)].
  /// Differentiable (autograd) in `cartesian`. \throws DomainError on a wrong shape.
  std::pair<torch::Tensor, torch::Tensor> to_internal(const torch::Tensor& cartesian) const;

  /// Internal → Cartesian by NeRF placement in the anchor frame (a0 at 0, a1 on +x, a2
  /// in the xy-plane, y > 0). `internal`: B × (3n − 6). Returns (x, logdet) with x of
  /// shape B × 3n and logdet = +log J(z) (shape B); log|r| and log|sin θ| are used, so
  /// check in_domain() for samples with r ≤ 0 or θ ∉ (0, π). Differentiable in `internal`.
  /// Torsions need not be wrapped (the placement is 2π-periodic in them).
  std::pair<torch::Tensor, torch::Tensor> to_cartesian(const torch::Tensor& internal) const;

  /// Rigidly moves each configuration (B × 3n) into the anchor frame: the Cartesian
  /// image of to_cartesian(to_internal(x)). Distances and chirality are preserved.
  torch::Tensor standard_orientation(const torch::Tensor& cartesian) const;

  /// Bool tensor (B): bonds > 0, angles in (0, π), all entries finite.
  torch::Tensor in_domain(const torch::Tensor& internal) const;

  /// Copy of `internal` with the torsion columns wrapped into [−π, π).
  torch::Tensor wrap_torsions(const torch::Tensor& internal) const;

  /// Constant that converts an internal-coordinate density into a density on the
  /// centre-of-mass-free subspace {x̄ = 0} (the convention of targets/target.hpp for
  /// particle systems, dimension 3n − 3), with the orientation uniform (Haar):
  ///   log q_cf(x) = log q_int(z(x)) + logdet_forward(x) + com_free_log_density_offset(),
  ///   com_free_log_density_offset() = (3/2) log n − log 8π².
  /// (d^{3n}x = J dz dt dR = n^{3/2} d^{3n−3}y dt_cm; Haar volume 8π².) So importance
  /// weights log w = −u(x) − log q_cf(x) estimate log Z on that subspace, comparable with
  /// other samplers' log Z, and held-out NLLs on Cartesian data are comparable too.
  double com_free_log_density_offset() const;

  /// Chirality of each configuration (B × 3n): Bool tensor (B), true where every chiral
  /// centre of the Z-matrix has its expected sign.
  torch::Tensor chirality_ok(const torch::Tensor& cartesian) const;
  /// Number of configurations with at least one wrong chiral centre.
  std::int64_t count_wrong_chirality(const torch::Tensor& cartesian) const;

 private:
  ZMatrix zmatrix_;  // validated; rows in placement order
};

/// Dihedral angle τ(p0, p1, p2, p3) ∈ (−π, π] of each configuration (B × 3n), IUPAC sign
/// convention (same as mdtraj.compute_dihedrals):
///   b1 = x1 − x0, b2 = x2 − x1, b3 = x3 − x2,
///   τ = atan2(|b2| b1·(b2 × b3), (b1 × b2)·(b2 × b3)).
torch::Tensor dihedral(const torch::Tensor& cartesian, std::int64_t p0, std::int64_t p1, std::int64_t p2,
                       std::int64_t p3);

/// Triple product s = (x_a − x_c)·((x_b − x_c) × (x_d − x_c)) of each configuration (B × 3n).
torch::Tensor chirality_triple_product(const torch::Tensor& cartesian, const ChiralCenter& center);

/// Alanine dipeptide backbone dihedrals (0-based atom order of the PDB).
inline constexpr std::int64_t kAlaninePhi[4] = {4, 6, 8, 14};
inline constexpr std::int64_t kAlaninePsi[4] = {6, 8, 14, 16};

/// (φ, ψ) in [−π, π) of alanine-dipeptide internal coordinates (B × 60) made by
/// InternalCoordinates::alanine_dipeptide() (reads its φ, ψ torsion columns): B × 2.
/// \throws DomainError if `ic` has no φ/ψ torsions.
torch::Tensor alanine_phi_psi(const InternalCoordinates& ic, const torch::Tensor& internal);

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

  /// A mixture base (fit_mixture with `components` per torsion) in which the hard columns
  /// and the `joint` group are replaced by a ConditionalGaussian block (conditional_base.hpp):
  ///   ρ₀(y) = Π_{soft ∖ joint} p_c(y_c) · Σ_k w_k vM_k(y_J) N(y_H; B_kᵀ f(y_S), Σ_k)
  /// (all B_k, Σ_k equal without experts).
  /// `soft` (periodic columns) are the conditioning torsions; `joint` ⊆ soft gets a joint
  /// von Mises mixture (up to `components` components, K by BIC); `experts`: one regression and
  /// covariance per joint component (ConditionalGaussian::fit); `correction_bins` > 0 adds the
  /// bin correction of the joint pair fitted to the same data (ConditionalGaussian::fit_joint_correction).
  /// \throws DomainError from fit_mixture, ConditionalGaussian::fit or fit_joint_correction.
  static BaseDensity fit_conditional(const torch::Tensor& y, const torch::Tensor& torsion_mask,
                                     const std::vector<std::int64_t>& soft, const std::vector<std::int64_t>& joint,
                                     int components, int harmonics, bool experts = false, int em_iterations = 10,
                                     double shrinkage = 1.0, int correction_bins = 0,
                                     double correction_defensive = 0.01);
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

}  // namespace boltzlab::generators
