#pragma once
/// \file mmd.hpp
/// MMD gradient flow with noise injection (Arbel, Korba, Salim & Gretton 2019,
/// "Maximum Mean Discrepancy Gradient Flow", NeurIPS; Algorithm 1). The flow moves the
/// particles X toward samples Y_1..Y_M of the target along the witness function
///   f(z) = (1/N) Σ_j k(X_j, z) − β (1/M) Σ_m k(Y_m, z),
///   X_i ← X_i − γ ∇f(X_i + β_n U_i),   U_i ~ N(0, I),   β_n = β_0 (n + 1)^{−decay},
/// the noise entering where the gradient is evaluated (not a diffusion). RBF kernel
/// k(x, z) = exp(−|x − z|²/(2h²)), ∇_z k(x, z) = −k (z − x)/h², so
///   ∇f(z) = −(1/h²) [(1/N)(z Σ_j k_j − Σ_j k_j X_j) − β (1/M)(z Σ_m k_m − Σ_m k_m Y_m)].
/// Annealing: the schedule's β weighs the attraction to the target samples against the
/// particles' mutual repulsion (β = 1: the MMD flow; β < 1 early spreads the ensemble),
/// the analogue of tempering −β∇u in SVGD and the blob flow. The target's energy enters
/// only the monitors (mean energy, KSD).
/// Bandwidth: fixed h, or "median": h² = ½ median(D²(Y))/log(M + 1) over the target
/// samples, computed once (whole, on every MPI rank).
/// Over MPI ranks each rank computes the update and the mmd2 sums of its block of
/// particles (my_rows) and the rows are gathered every step.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "boltzlab/core/rng.hpp"
#include "boltzlab/flows/interacting.hpp"

namespace boltzlab {

/// MMD-flow settings ("params" of --flow mmd).
struct MmdOptions {
  RowMatrix target_samples;        ///< M×d samples Y of the target (required, M ≥ 2)
  std::string samples_source;      ///< where they came from (file name, for messages)
  double bandwidth = 0.0;          ///< fixed h > 0, or 0 for the median heuristic over Y
  double noise_level = 0.0;        ///< β_0 ≥ 0 (target length units)
  double noise_decay = 0.0;        ///< decay exponent ≥ 0 of β_n = β_0 (n+1)^{−decay}
  /// \throws ConfigError naming the field.
  void validate() const;
};

class MmdFlow final : public InteractingFlow {
 public:
  MmdFlow(MmdOptions options, InteractingOptions common);
  std::string name() const override { return "mmd"; }

 protected:
  /// \throws ConfigError when the samples' dimension differs from the target's.
  void prepare(const Target& target, const Ensemble& ensemble, const FlowOptions& options) override;
  void update(const RowMatrix& x, const RowMatrix& grad_u, double beta, std::size_t step, double step_size,
              const FlowOptions& options, RowMatrix& delta) override;
  double default_step_size() const override { return 1.0; }
  double bandwidth() const override { return bandwidth_; }
  void add_statistics(nlohmann::json& statistics) const override;
  /// "mmd2": the V-statistic MMD²(ensemble, samples) with the flow's kernel — the
  /// quantity the (noise-free) flow decreases:
  ///   (1/N²)Σ_ij k(X_i,X_j) + (1/M²)Σ_mm' k(Y_m,Y_m') − (2/(NM))Σ_im k(X_i,Y_m).
  void extra_monitors(const RowMatrix& x, const FlowOptions& options,
                      std::map<std::string, std::vector<double>>& monitors) override;

 private:
  MmdOptions options_;
  double bandwidth_ = 0.0;
  RowMatrix centred_samples_;    ///< Y − shift_
  Eigen::RowVectorXd shift_;     ///< mean of Y
  RowMatrix sample_weights_;     ///< [Y − shift_, 1]
  double sample_self_ = 0.0;     ///< (1/M²) Σ_mm' k(Y_m, Y_m')
  std::vector<Rng> streams_;     ///< particle i: stream_for(seed, i)
};

/// Factory: {"target_samples": "path.npy" (required, (M, d)), "bandwidth": "median" | h,
/// "noise_level": 0, "noise_decay": 0, "ksd", "ksd_c", "stop_monitor", "patience"}.
std::unique_ptr<Flow> make_mmd(JsonReader& params);

}  // namespace boltzlab
