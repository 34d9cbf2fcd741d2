#pragma once
/// \file velocity_field.hpp
/// A free-form velocity field for the CNF: v(x, t) an MLP on (x, t) (the vector field of
/// score_model.hpp's MlpScore, GELU hidden layers), not the gradient of a potential, with
/// its exact divergence by forward-mode differentiation. This is the canonical CNF/BG of
/// the seed paper (eqs. 17, 32: any velocity), beside the gradient-constrained OT-Flow
/// velocity v = −∇Φ of ot_potential.hpp. Corollary 3.1 says the free problem is ill-posed
/// unless the velocities lie in a bounded set; `bound` c > 0 enforces |v| ≤ c by the
/// radial squashing
///
///   v = s(|w|) w/|w|,   s(n) = c·tanh(n/c),   w the MLP's output,
///   ∇·v = f tr J_w + (s'(|w|) − f) ŵᵀ J_w ŵ,   f = s(|w|)/|w|,   ŵ = w/|w|,
///
/// (f → 1, s' → 1 as |w| → 0). Particle systems: v is projected onto the
/// centre-of-mass-free subspace, v ← P v, and the divergence is tr(P J_v) = tr J_v −
/// (1/n) Σ_a Σ_{i,j} ∂v_{i,a}/∂x_{j,a} (spatial component a, particles i, j).
/// There is no potential, so no HJB residual: the flow games that need Φ (the HJB terms, the
/// terminal condition, the relaxed game) are refused for free velocities.
#include <cstdint>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "boltzlab/generators/score_model.hpp"

namespace boltzlab::generators {

/// Architecture of the free velocity.
struct FreeVelocityOptions {
  int dim = 2;                         ///< d
  std::vector<int> hidden = {32, 32};  ///< GELU hidden widths
  double bound = 0.0;                  ///< c > 0: |v| ≤ c (0: unbounded)
  int n_particles = 0;                 ///< > 0: particle system, v projected (centre of mass)
  int spatial_dim = 0;                 ///< per particle (with n_particles)
  /// \throws ConfigError naming the field.
  void validate() const;
};

/// v(x, t) and ∇·v at a batch of points.
struct VelocityRates {
  torch::Tensor v;           ///< B×d
  torch::Tensor divergence;  ///< B
};

class FreeVelocity {
 public:
  /// Layers as MlpScore's (uniform ±1/√fan_in from `seed`), the output layer scaled by
  /// 0.1 so that the initial flow is close to the identity.
  FreeVelocity(const FreeVelocityOptions& options, std::uint64_t seed);
  const FreeVelocityOptions& options() const { return options_; }
  /// v and its exact divergence at rows x (B×d), time t.
  VelocityRates evaluate(const torch::Tensor& x, double t);
  std::vector<torch::Tensor> parameters() { return mlp_.parameters(); }
  void write(torch::serialize::OutputArchive& archive) const { mlp_.write(archive); }
  void read(torch::serialize::InputArchive& archive) { mlp_.read(archive); }

 private:
  FreeVelocityOptions options_;
  MlpScore mlp_;
};

}  // namespace boltzlab::generators
