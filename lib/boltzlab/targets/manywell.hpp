#pragma once
/// \file manywell.hpp
/// ManyWell target (Midgley et al., "Flow Annealed Importance Sampling
/// Bootstrap", ICLR 2023; FAB's `many_well.py`): d/2 independent copies of the
/// 2-D double well
///   u₂(x1, x2) = x1⁴ − 6x1² − 0.5x1 + ½x2²,
/// acting on consecutive coordinate pairs (x_{2k}, x_{2k+1}), k = 0..d/2−1:
///   u(x) = Σ_k u₂(x_{2k}, x_{2k+1}).
/// Gradient:  ∂u/∂x_{2k} = 4x_{2k}³ − 12x_{2k} − 0.5,   ∂u/∂x_{2k+1} = x_{2k+1}.
/// log Z = (d/2)·(log Z₁ + ½ log 2π), Z₁ = ∫ exp(−(t⁴ − 6t² − 0.5t)) dt
/// = 11784.50927 (quadrature), so log Z = (d/2)·10.293480 and ManyWell-32 has
/// log Z = 164.69568. The x1 > 0 well holds 84.431 % of the x1 mass.
#include <memory>

#include "boltzlab/targets/registry.hpp"

namespace boltzlab {

class ManyWellTarget : public Target {
 public:
  /// \throws ConfigError unless dim is even and > 0.
  explicit ManyWellTarget(std::size_t dim);

  std::string name() const override { return "manywell"; }
  std::size_t dim() const override { return dim_; }
  double reduced_energy(const double* x, double* grad) const override;
  std::optional<double> log_z() const override { return log_z_; }
  nlohmann::json describe() const override;

  /// The 1-D x1 energy t⁴ − 6t² − 0.5t.
  static double x1_energy(double t) { return ((t * t - 6.0) * t - 0.5) * t; }
  /// log ∫ exp(−x1_energy(t)) dt by Simpson quadrature on [−6, 6] (computed once).
  static double x1_log_z();
  /// Exact probability that one x1 coordinate is > 0 (the deeper well), by quadrature.
  static double x1_positive_fraction();

 private:
  std::size_t dim_;
  double log_z_;
};

/// Factory. Parameters: "dim" (even integer > 0, default 32).
std::unique_ptr<Target> make_manywell(JsonReader& params, const std::filesystem::path& dir);

}  // namespace boltzlab
