#pragma once
/// \file wasserstein.hpp
/// The 2-Wasserstein distance between two weighted empirical measures on ℝ,
///
///   μ = Σ_i a_i δ_{x_i},  ν = Σ_j b_j δ_{y_j}  (weights normalized to sum 1),
///   W₂²(μ, ν) = ∫₀¹ (F⁻¹(p) − G⁻¹(p))² dp,
///
/// with F⁻¹, G⁻¹ the (left-continuous) quantile functions. On the line the monotone
/// (quantile) coupling is optimal for any convex cost (Villani, "Topics in Optimal
/// Transportation", 2003, Thm 2.18; Peyré & Cuturi, "Computational Optimal
/// Transport", 2019, Remark 2.30), so the integral is exact: both quantile functions
/// are step functions, constant between consecutive cumulative weights, and the
/// integral is a sum over the merged breakpoints of the two cumulative-weight
/// sequences — O((n + m) log(n + m)) for the sorts, O(n + m) for the merge.
///
/// Used for the "energy-W2" of Boltzmann-generator benchmarks: W₂ between the
/// distribution of u(x) under the (reweighted) model and under reference samples
/// (e.g. Akhound-Sadegh et al. 2024, "Iterated Denoising Energy Matching", iDEM).
///
/// Entries with a non-finite value or a zero weight are excluded and counted (a
/// sample with log w = −∞ has weight 0); a negative or non-finite weight is an error.
#include <cstddef>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "boltzlab/estimators/importance.hpp"

namespace boltzlab {

/// Result of wasserstein2_1d.
struct Wasserstein1D {
  Quantity distance;              ///< W₂ (missing when a measure has no usable entry)
  Quantity squared;               ///< W₂²
  std::size_t used_a = 0;         ///< entries of μ used
  std::size_t used_b = 0;         ///< entries of ν used
  std::size_t non_finite_a = 0;   ///< entries of μ with a non-finite value (and positive weight)
  std::size_t non_finite_b = 0;
  std::size_t zero_weight_a = 0;  ///< entries of μ with weight 0
  std::size_t zero_weight_b = 0;
  /// {"w2", "w2_squared" (null + reason when missing), "used_a", "used_b",
  ///  "non_finite_a", "non_finite_b", "zero_weight_a", "zero_weight_b"}.
  nlohmann::json to_json() const;
};

/// W₂ between Σ a_i δ_{x_i} and Σ b_j δ_{y_j} (weights need not be normalized).
/// \throws DomainError if a weight is negative or not finite, or sizes mismatch.
Wasserstein1D wasserstein2_1d(const Eigen::VectorXd& x, const Eigen::VectorXd& a,
                              const Eigen::VectorXd& y, const Eigen::VectorXd& b);

/// Unweighted: W₂ between (1/n) Σ δ_{x_i} and (1/m) Σ δ_{y_j}.
Wasserstein1D wasserstein2_1d(const Eigen::VectorXd& x, const Eigen::VectorXd& y);

}  // namespace boltzlab
