#pragma once
/// \file ramachandran_compare.hpp
/// Sample quality of a molecular sampler against a reference MD run, measured on
/// the backbone dihedrals (φ, ψ) as the Boltzmann-generator papers on alanine
/// dipeptide do (FAB, Midgley et al., ICLR 2023; constrained mass transport, arXiv 2510.18460):
///  - forward KL(MD ‖ model) between 64×64 histograms over [−π, π)², with
///    ε = 1e-10 added to every bin of both histograms: ε = 1e-10 is the convention of
///    the FAB-style alanine benchmarks (Midgley et al., ICLR 2023, `fab/utils/aldp.py`;
///    taken over by the temperature-annealed-BG and constrained-mass-transport
///    comparisons). FAB's released code adds ε to the raw counts; here
///    it is added to the normalized probabilities (see histogram_forward_kl), which
///    makes the value independent of the sample sizes. The two agree when the model
///    covers every reference bin and differ in the penalty for reference bins the
///    model leaves empty (log(p/ε) here, log(count/ε) there);
///  - total variation ½ Σ|p − q| between 100×100 histograms (the constrained-mass-
///    transport alanine benchmark, Table 1 of arXiv 2510.18460: TV 9.4e-3);
///  - both again between the first and the second half of the reference run (the
///    noise floor: what a perfect sampler with as many correlated frames would get);
///  - the population of the φ ≥ 0 basin (C7ax/αL): the model's self-normalized
///    importance estimate with its delta-method standard error, the reference's
///    fraction with a batch-means standard error (MD frames are correlated), and the
///    z-score of their difference.
/// The histograms are those of estimators/ramachandran.hpp (ramachandran_histogram), with
/// importance weights exp(log w − max log w).
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/estimators/ramachandran.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab {

/// Settings of the comparison (defaults: the published benchmark conventions).
struct RamachandranCompareOptions {
  Eigen::Index kl_bins = 64;        ///< bins per angle for the forward KL
  double kl_epsilon = 1e-10;        ///< ε added to every bin probability for the KL
  Eigen::Index tv_bins = 100;       ///< bins per angle for the total variation
  std::size_t reference_blocks = 20;  ///< contiguous blocks for the batch-means s.e.
  /// \throws ConfigError naming the field (bins ≥ 1, ε ≥ 0 and finite, blocks ≥ 2).
  void validate() const;
};

/// Forward KL(p ‖ q) = Σ_i p̃_i log(p̃_i/q̃_i) between two histograms of the same
/// shape, with the ε convention
///   p̃_i = (p̄_i + ε) / Σ_j (p̄_j + ε),   p̄_i = h_i / Σ_j h_j   (likewise q̃),
/// i.e. each histogram is first normalized to probabilities, ε is added to every bin
/// of both, and both are renormalized. With ε = 0 a bin with p̄_i > 0 = q̄_i gives +inf.
/// `p` is the reference (MD), `q` the model. Units: nats.
/// \throws DomainError if the shapes differ, an entry is negative or not finite, or a
///   histogram is empty (Σ h = 0).
double histogram_forward_kl(const RowMatrix& p, const RowMatrix& q, double epsilon);

/// Total variation ½ Σ_i |p̄_i − q̄_i| of two histograms normalized to probabilities
/// (no ε), in [0, 1]. \throws DomainError as histogram_forward_kl.
double histogram_total_variation(const RowMatrix& p, const RowMatrix& q);

/// Batch-means estimate of the mean of a correlated series and its standard error
/// (Flegal & Jones 2010, Ann. Statist. 38:1034, §2): the series is cut into B
/// contiguous blocks of b = ⌊n/B⌋ values (the last n − B·b values are dropped),
///   Ȳ_k = block means,  μ̂ = mean_k Ȳ_k,  se² = Σ_k (Ȳ_k − μ̂)² / (B(B − 1)).
/// For iid values se² is unbiased for Var(x)/(B·b); for a correlated series it is
/// consistent when b grows beyond the autocorrelation time.
struct BatchMeansEstimate {
  double mean = 0;
  double standard_error = 0;
  std::size_t blocks = 0;
  std::size_t block_size = 0;
  std::size_t dropped = 0;  ///< values left out at the end (n − B·b)
};
/// \throws DomainError for blocks < 2, fewer than `blocks` values, or a non-finite value.
BatchMeansEstimate batch_means(const Eigen::VectorXd& values, std::size_t blocks);

/// The two histogram distances of one comparison.
struct RamachandranDistances {
  double forward_kl = 0;       ///< KL(reference ‖ other) on kl_bins² bins with ε
  double total_variation = 0;  ///< ½ Σ|p − q| on tv_bins² bins
};

/// Result of compare_ramachandran (see the file comment).
struct RamachandranComparison {
  RamachandranCompareOptions options;
  RamachandranDistances model;       ///< reference (all frames) vs reweighted model
  RamachandranDistances noise_floor; ///< first half vs second half of the reference
  std::size_t model_samples = 0;         ///< rows given
  std::size_t model_skipped = 0;         ///< φ or ψ not finite (left out)
  std::size_t model_zero_weight = 0;     ///< log w = −inf (left out)
  double model_ess = 0;                  ///< Kish ESS of the weights used
  std::size_t reference_frames = 0;      ///< rows of the reference
  std::size_t reference_half = 0;        ///< frames in the first half (⌊n/2⌋)
  /// φ ≥ 0 population: model (SNIS mean, delta-method s.e.; Owen 2013 eq. 9.8).
  SnisEstimate model_phi_positive;
  /// φ ≥ 0 population: reference (batch means over reference_blocks blocks).
  BatchMeansEstimate reference_phi_positive;
  /// (model − reference)/√(se_model² + se_reference²); missing when both s.e. are 0.
  Quantity phi_positive_z;
  /// JSON for summary.json: every number above with its definition.
  nlohmann::json to_json() const;
};

/// Compares weighted model samples (φ, ψ in radians; weights exp(log_weights), all
/// equal when log_weights is null) with reference frames (N×2: φ, ψ in radians, in
/// time order). Model rows with a non-finite angle or log w = −inf are left out and
/// counted. The φ ≥ 0 basin is the one of estimators/ramachandran.hpp (φ ≥ 0: C7ax/αL).
/// \throws DomainError on length mismatch, a reference that is not N×2 with finite
///   angles, fewer than 2·reference_blocks reference frames, or no usable model row.
RamachandranComparison compare_ramachandran(const Eigen::VectorXd& phi, const Eigen::VectorXd& psi,
                                            const Eigen::VectorXd* log_weights, const RowMatrix& reference,
                                            const RamachandranCompareOptions& options = {});

/// Reads reference dihedrals (.npy, N×2 φ/ψ in radians) and checks them: shape
/// N×2, N ≥ 2·min_blocks, every angle finite and in [−π − 1e-6, π + 1e-6] (catches
/// degrees). \throws ConfigError "<what>: <file>: <problem>" (one line).
RowMatrix read_reference_dihedrals(const std::filesystem::path& path, const std::string& what,
                                   std::size_t min_blocks = 20);

/// The comparison of a molecule's samples with a reference run, as reported in
/// summary.json["ramachandran_vs_reference"].
struct RamachandranReferenceReport {
  std::string reference;                           ///< where the reference came from
  std::optional<RamachandranComparison> comparison;  ///< absent when no comparison was possible
  std::vector<std::string> dihedrals;              ///< names of the φ and ψ dihedrals used
  std::string note;                                ///< why there is no comparison (else empty)
  /// {"reference", and either "note" or RamachandranComparison::to_json() + "dihedrals"}.
  nlohmann::json to_json() const;
};

/// The comparison for Cartesian samples (N×3n, nm) of a molecule: φ/ψ of the first
/// residue that has both (molecules/dihedrals.hpp), then compare_ramachandran. When no
/// comparison is possible (no φ/ψ pair in the topology, no sample with finite
/// log-weight and angles) the report carries only a note saying why.
/// \throws DomainError for a reference that is not N×2 or too short.
RamachandranReferenceReport ramachandran_vs_reference(const Topology& topology, const RowMatrix& samples,
                                                      const Eigen::VectorXd* log_weights, const RowMatrix& reference,
                                                      const std::string& reference_name,
                                                      const RamachandranCompareOptions& options = {});

}  // namespace boltzlab
