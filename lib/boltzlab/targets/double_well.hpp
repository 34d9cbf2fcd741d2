#pragma once
/// \file double_well.hpp
/// Double well in one or two dimensions:
///   u(x1)     = a(x1² − 1)² + t·x1                       (dim 1)
///   u(x1, x2) = a(x1² − 1)² + t·x1 + ½ x2²/σ²            (dim 2)
/// a = "barrier" (the barrier height at x1 = 0 above the minima x1 = ±1 when t = 0),
/// t = "tilt", σ = "sigma". Gradient:
///   ∂u/∂x1 = 4a·x1(x1² − 1) + t,   ∂u/∂x2 = x2/σ².
/// log Z = log ∫ exp(−a(s² − 1)² − t·s) ds (Simpson quadrature, computed once in
/// the constructor) + ½ log(2πσ²) for dim 2.
#include <memory>

#include "boltzlab/targets/registry.hpp"

namespace boltzlab {

/// Parameters of the double well.
struct DoubleWellOptions {
  std::size_t dim = 2;   ///< 1 or 2
  double barrier = 3.0;  ///< a > 0: barrier height (reduced units) of the symmetric well
  double tilt = 0.0;     ///< t: linear tilt, favours x1 < 0 when positive
  double sigma = 1.0;    ///< σ > 0: standard deviation of x2
  /// \throws ConfigError naming the offending field.
  void validate() const;
};

class DoubleWellTarget : public Target {
 public:
  explicit DoubleWellTarget(const DoubleWellOptions& options = {});

  std::string name() const override { return "double_well"; }
  std::size_t dim() const override { return options_.dim; }
  double reduced_energy(const double* x, double* grad) const override;
  std::optional<double> log_z() const override { return log_z_; }
  nlohmann::json describe() const override;
  const DoubleWellOptions& options() const { return options_; }

 private:
  DoubleWellOptions options_;
  double inv_var_;
  double log_z_;
};

/// Factory. Parameters: "dim" (1 or 2, default 2), "barrier" (3), "tilt" (0), "sigma" (1).
std::unique_ptr<Target> make_double_well(JsonReader& params, const std::filesystem::path& dir);

}  // namespace boltzlab
