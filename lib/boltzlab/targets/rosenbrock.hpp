#pragma once
/// \file rosenbrock.hpp
/// Rosenbrock ("banana") density π ∝ exp(−u),
///   u(x1, x2) = a(x1 − μ)² + b(x2 − x1²)²,
///   log Z = log(π/√(ab))   (integrate x2 first: √(π/b), then x1: √(π/a)).
/// Gradient:  ∂u/∂x1 = 2a(x1 − μ) − 4b·x1(x2 − x1²),   ∂u/∂x2 = 2b(x2 − x1²).
/// With a = 1/20, b = 5, μ = 1 (potentials/rosenbrock.json): log Z = log 2π.
#include <memory>

#include "boltzlab/targets/registry.hpp"

namespace boltzlab {

class RosenbrockTarget : public Target {
 public:
  /// \throws ConfigError unless a > 0 and b > 0.
  RosenbrockTarget(double a, double b, double mu);

  std::string name() const override { return "rosenbrock"; }
  std::size_t dim() const override { return 2; }
  double reduced_energy(const double* x, double* grad) const override;
  std::optional<double> log_z() const override { return std::log(M_PI) - 0.5 * std::log(a_ * b_); }
  nlohmann::json describe() const override;

 private:
  double a_, b_, mu_;
};

/// Factory. Parameters: "a" (default 0.05), "b" (5), "mu" (1).
std::unique_ptr<Target> make_rosenbrock(JsonReader& params, const std::filesystem::path& dir);

}  // namespace boltzlab
