#pragma once
/// \file funnel.hpp
/// Neal's funnel (Neal, "Slice sampling", Ann. Statist. 31, 2003): x = (v, x_1..x_{d−1}),
///   v ~ N(0, σ²),   x_i | v ~ N(0, e^v),   σ = 3 and d = 10 in the standard form.
/// Normalized reduced energy (log Z = 0):
///   u = v²/(2σ²) + ½ log(2πσ²) + Σ_i [½ x_i² e^{−v} + ½ v + ½ log 2π].
/// Gradient:
///   ∂u/∂v   = v/σ² + (d − 1)/2 − ½ e^{−v} Σ_i x_i²,
///   ∂u/∂x_i = x_i e^{−v}.
#include <memory>

#include "boltzlab/targets/registry.hpp"

namespace boltzlab {

class FunnelTarget : public Target {
 public:
  /// \throws ConfigError unless dim ≥ 2 and scale > 0.
  FunnelTarget(std::size_t dim, double scale);

  std::string name() const override { return "funnel"; }
  std::size_t dim() const override { return dim_; }
  double reduced_energy(const double* x, double* grad) const override;
  std::optional<double> log_z() const override { return 0.0; }
  nlohmann::json describe() const override;

 private:
  std::size_t dim_;
  double scale_;
  double inv_var_v_;
  double constant_;  ///< ½ log(2πσ²) + (d−1)·½ log 2π
};

/// Factory. Parameters: "dim" (≥ 2, default 10), "scale" (σ of v, default 3).
std::unique_ptr<Target> make_funnel(JsonReader& params, const std::filesystem::path& dir);

}  // namespace boltzlab
