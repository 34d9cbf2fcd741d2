#pragma once
/// \file ramachandran.hpp
/// The (weighted) Ramachandran histogram of backbone dihedrals (φ, ψ), its free
/// energy and the basin populations that molecular runs report.
#include <cstddef>

#include <Eigen/Core>

#include "boltzlab/core/ensemble.hpp"

namespace boltzlab {

/// Bins per angle of the Ramachandran histogram on [−π, π)².
inline constexpr Eigen::Index kRamachandranBins = 64;
/// A (weighted) Ramachandran histogram and basin populations.
struct RamachandranHistogram {
  RowMatrix weights;         ///< bins×bins (64×64 by default), rows φ, columns ψ: counts or Σ w
  RowMatrix free_energy;     ///< F = −log p per bin, kT; +inf where empty (same shape)
  bool weighted = false;     ///< importance weights were used
  double total_weight = 0;   ///< Σ w over the frames used (w = exp(log w − max log w))
  double effective_sample_size = 0;  ///< Kish (Σw)² / Σw²
  std::size_t skipped_frames = 0;     ///< φ or ψ not finite
  std::size_t zero_weight_frames = 0; ///< log w not finite
  double phi_positive = 0;   ///< population of φ ≥ 0 (C7ax/αL)
  double alpha_r = 0;        ///< φ < 0 and −2.2 ≤ ψ < 0.5 rad
  double beta_c7eq = 0;      ///< φ < 0, other ψ
};

/// Histogram of (φ, ψ) in radians on `bins`×`bins` equal bins of [−π, π)² (an angle
/// of exactly π falls in the first bin), weighted by exp(log_weights) when given.
/// p_bin = Σ_{i∈bin} w_i / Σ_i w_i, F_bin = −log p_bin.
/// \throws DomainError on length mismatch or bins < 1.
RamachandranHistogram ramachandran_histogram(const Eigen::VectorXd& phi, const Eigen::VectorXd& psi,
                                             const Eigen::VectorXd* log_weights = nullptr,
                                             Eigen::Index bins = kRamachandranBins);

}  // namespace boltzlab
