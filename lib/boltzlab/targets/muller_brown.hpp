#pragma once
/// \file muller_brown.hpp
/// Müller–Brown potential (Müller & Brown, Theor. Chim. Acta 53, 75, 1979) at
/// inverse temperature β: u(x, y) = β·V(x, y),
///   V = Σ_{k=1..4} A_k exp(a_k(x − x0_k)² + b_k(x − x0_k)(y − y0_k) + c_k(y − y0_k)²),
/// A = (−200, −100, −170, 15), a = (−1, −1, −6.5, 0.7), b = (0, 0, 11, 0.6),
/// c = (−10, −10, −6.5, 0.7), x0 = (1, 0, −0.5, −1), y0 = (0, 0.5, 1.5, 1).
/// Gradient: with E_k the k-th term and dx = x − x0_k, dy = y − y0_k,
///   ∂V/∂x = Σ_k E_k (2a_k dx + b_k dy),   ∂V/∂y = Σ_k E_k (b_k dx + 2c_k dy).
/// Minima: (−0.5582, 1.4417) V = −146.700; (0.6235, 0.0280) V = −108.167;
/// (−0.0500, 0.4667) V = −80.768. No closed-form log Z.
#include <memory>

#include "boltzlab/targets/registry.hpp"

namespace boltzlab {

class MullerBrownTarget : public Target {
 public:
  /// \throws ConfigError unless beta > 0.
  explicit MullerBrownTarget(double beta);

  std::string name() const override { return "muller_brown"; }
  std::size_t dim() const override { return 2; }
  double reduced_energy(const double* x, double* grad) const override;
  nlohmann::json describe() const override;

  /// The potential V(x, y) (not scaled by β); writes ∇V into grad when not null.
  static double potential(double x, double y, double* grad);
  double beta() const { return beta_; }

 private:
  double beta_;
};

/// Factory. Parameters: "beta" (required, > 0; potentials/muller_brown.json uses 0.1).
std::unique_ptr<Target> make_muller_brown(JsonReader& params, const std::filesystem::path& dir);

}  // namespace boltzlab
