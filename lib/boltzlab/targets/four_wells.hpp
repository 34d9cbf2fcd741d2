#pragma once
/// \file four_wells.hpp
/// Four wells in two dimensions: two double wells coupled bilinearly,
///   u(x, y) = a(x² − 1)² + a(y² − 1)² + c·x·y,
/// a = "barrier" (the barrier height at c = 0 between neighbouring wells, along x or
/// y), c = "coupling". Gradient:
///   ∂u/∂x = 4a·x(x² − 1) + c·y,   ∂u/∂y = 4a·y(y² − 1) + c·x.
/// For |c| < 2a (required) u has four minima: on the diagonal (s, s), (−s, −s) with
/// s² = 1 − c/(4a), u = c²/(8a) + c·s², and on the anti-diagonal (s, −s), (−s, s) with
/// s² = 1 + c/(4a), u = c²/(8a) − c·s² (the Hessians 4a(3s² − 1)·I ± c·offdiag are
/// positive definite exactly when |c| < 2a). c > 0 deepens the anti-diagonal pair by
/// 2c (to first order), c < 0 the diagonal pair. Symmetries: u(x, y) = u(y, x) =
/// u(−x, −y), and u(x, −y; c) = u(x, y; −c).
///
/// log Z = log ∫∫ exp(−u) dx dy does not factorize when c ≠ 0: it is computed once,
/// in the constructor, by the tensor-product Simpson rule on [−L, L]² (L chosen so
/// that u exceeds its minimum by ≥ 50 outside, grid spacing ≤ the well width / 20),
/// which for this smooth, rapidly decaying integrand is accurate to ~1e-10 relative.
#include <memory>

#include "boltzlab/targets/registry.hpp"

namespace boltzlab {

/// Parameters of the four-well potential.
struct FourWellsOptions {
  double barrier = 3.0;   ///< a > 0: barrier between neighbouring wells at c = 0 (reduced units)
  double coupling = 1.0;  ///< c, |c| < 2a: bilinear coupling c·x·y
  /// \throws ConfigError naming the offending field.
  void validate() const;
};

class FourWellsTarget : public Target {
 public:
  explicit FourWellsTarget(const FourWellsOptions& options = {});

  std::string name() const override { return "four_wells"; }
  std::size_t dim() const override { return 2; }
  double reduced_energy(const double* x, double* grad) const override;
  std::optional<double> log_z() const override { return log_z_; }
  nlohmann::json describe() const override;
  const FourWellsOptions& options() const { return options_; }

 private:
  FourWellsOptions options_;
  double log_z_;
};

/// Factory. Parameters: "barrier" (a, default 3), "coupling" (c, default 1), |c| < 2a.
std::unique_ptr<Target> make_four_wells(JsonReader& params, const std::filesystem::path& dir);

}  // namespace boltzlab
