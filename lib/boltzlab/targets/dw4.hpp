#pragma once
/// \file dw4.hpp
/// DW4: particles with a double-well pair potential (Köhler, Klein, Noé,
/// "Equivariant Flows", ICML 2020). Positions of n particles in s dimensions,
/// flattened particle-major (x = (x_1, …, x_n), x_i ∈ R^s); with d_ij = |x_i − x_j|:
///   u(x) = (1/τ) Σ_{i<j} [a(d_ij − d0) + b(d_ij − d0)² + c(d_ij − d0)⁴].
/// Standard DW4: n = 4, s = 2, a = 0, b = −4, c = 0.9, d0 = 4, τ = 1.
/// Gradient: with t = d_ij − d0 and e'(t) = a + 2bt + 4ct³,
///   ∇_{x_i} u = (1/τ) Σ_{j≠i} e'(d_ij − d0) (x_i − x_j) / d_ij.
/// u is translation invariant (and ∇u sums to zero over particles); see
/// target.hpp for the centre-of-mass convention: samples live on {x̄ = 0},
/// (n−1)·s degrees of freedom. No closed-form log Z. At a collision
/// (d_ij = 0) the gradient is 0/0 = NaN, which evaluate_batch counts.
#include <memory>

#include "boltzlab/targets/registry.hpp"

namespace boltzlab {

/// Parameters of the DW pair system (defaults: DW4).
struct Dw4Options {
  std::size_t n_particles = 4;  ///< n ≥ 2
  std::size_t spatial_dim = 2;  ///< s ∈ {1, 2, 3}
  double a = 0.0;               ///< linear coefficient
  double b = -4.0;              ///< quadratic coefficient
  double c = 0.9;               ///< quartic coefficient (> 0 for a normalizable pair density)
  double d0 = 4.0;              ///< reference distance
  double tau = 1.0;             ///< temperature (energy divided by τ), > 0
  /// \throws ConfigError naming the offending field.
  void validate() const;
};

class Dw4Target : public Target {
 public:
  explicit Dw4Target(const Dw4Options& options = {});

  std::string name() const override { return "dw" + std::to_string(options_.n_particles); }
  std::size_t dim() const override { return options_.n_particles * options_.spatial_dim; }
  double reduced_energy(const double* x, double* grad) const override;
  std::pair<std::size_t, std::size_t> particle_layout() const override {
    return {options_.n_particles, options_.spatial_dim};
  }
  nlohmann::json describe() const override;
  const Dw4Options& options() const { return options_; }

 private:
  Dw4Options options_;
  double a_, b_, c_;  ///< coefficients divided by τ
};

/// Factory. Parameters (all optional, defaults DW4): "n_particles", "spatial_dim",
/// "a", "b", "c", "d0", "tau".
std::unique_ptr<Target> make_dw4(JsonReader& params, const std::filesystem::path& dir);

}  // namespace boltzlab
