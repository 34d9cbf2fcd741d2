#pragma once
/// \file svgd.hpp
/// Stein variational gradient descent (Liu & Wang 2016, Algorithm 1):
///   x_i ← x_i + ε φ(x_i),   φ(x_i) = (1/N) Σ_j [k(x_j, x_i) s(x_j) + ∇_{x_j} k(x_j, x_i)],
/// s = ∇log π_β = −β∇u (annealed), RBF kernel k(x, y) = exp(−|x − y|²/(2h²)), so
/// ∇_{x_j} k(x_j, x_i) = k (x_i − x_j)/h² and, with k_ij summed once per pair,
///   φ(x_i) = (1/N) [Σ_j k_ij (s_j − x_j/h²) + (x_i/h²) Σ_j k_ij]
/// — one pass of gaussian_kernel_sums with weights [s_j − x_j/h², 1] (scores are
/// computed once per particle per step, not per pair).
///
/// Bandwidth (variant of the original code, recomputed every step):
///   h² = ½ · median(D²) / log(N + 1),   median over the full N×N matrix of squared
/// distances, diagonal included (numpy.median(squareform(pdist(x))**2));
/// or a fixed h ("bandwidth": number > 0).
///
/// Step: plain (x += ε φ) or "adaptive": the original code's "AdaGrad", which is
/// RMSProp: G ← α G + (1 − α) φ² (G = φ² at the first step), x += ε φ / (fudge + √G).
///
/// Known finite-N bias: the ensemble's variance is underestimated, increasingly with
/// dimension at fixed N (Ba et al. 2021, "Understanding the variance collapse of SVGD
/// in high dimensions"; Zhuo et al. 2018).
#include <memory>
#include <string>

#include "boltzlab/flows/interacting.hpp"

namespace boltzlab {

/// SVGD settings ("params" of --flow svgd).
struct SvgdOptions {
  double bandwidth = 0.0;  ///< fixed RBF bandwidth h > 0, or 0 for the median heuristic ("median")
  bool adaptive = false;   ///< RMSProp step ("adagrad" of the original code) instead of plain
  double alpha = 0.9;      ///< RMSProp decay α ∈ [0, 1)
  double fudge = 1e-6;     ///< RMSProp regularizer (target units of φ)
  /// \throws ConfigError naming the field.
  void validate() const;
};

class SvgdFlow final : public InteractingFlow {
 public:
  SvgdFlow(SvgdOptions options, InteractingOptions common);
  std::string name() const override { return "svgd"; }

  /// φ(x_i) for all particles given scores s (N×d), into phi (N×d); returns the h used.
  /// `pairs`: storage for the squared distances the median pass keeps (kernel_width2),
  /// turned into kernel values for the sums, reused across calls (null: a temporary).
  /// Over MPI ranks (collective: every rank calls it) each rank computes the median pass
  /// and the rows of φ of its block (my_rows), and φ is gathered whole on every rank.
  /// Exposed for the benchmark and tests.
  static double stein_direction(const RowMatrix& x, const RowMatrix& scores, double fixed_bandwidth,
                                RowMatrix& phi, Execution exec, PairDistances* pairs = nullptr);

 protected:
  void update(const RowMatrix& x, const RowMatrix& grad_u, double beta, std::size_t step, double step_size,
              const FlowOptions& options, RowMatrix& delta) override;
  double default_step_size() const override { return options_.adaptive ? 0.01 : 0.05; }
  double bandwidth() const override { return bandwidth_; }
  void add_statistics(nlohmann::json& statistics) const override;

 private:
  SvgdOptions options_;
  double bandwidth_ = 0.0;
  RowMatrix history_;  ///< RMSProp accumulator G
  PairDistances pairs_;  ///< squared distances kept by the median pass (storage reused per step)
};

/// Factory: {"bandwidth": "median" | h, "adaptive": false, "alpha": 0.9, "fudge": 1e-6,
/// "ksd": true, "ksd_c": 1, "stop_monitor": "mean_energy", "patience": 3}.
std::unique_ptr<Flow> make_svgd(JsonReader& params);

}  // namespace boltzlab
