#pragma once
/// \file cnf.hpp
/// Continuous normalizing flow with velocity v = −∇ₓΦ (OT-Flow), integrated with a
/// fixed-step classical RK4 on the augmented state (Onken et al. 2021, eq. 8):
///
///   dx/dt = −∇ₓΦ(x, t),
///   dℓ/dt = ∇·v = −ΔₓΦ(x, t)                    (log-det of the flow map),
///   dL/dt = ½ |∇ₓΦ(x, t)|²                      (transport cost, running cost L = ½|v|²),
///   dR/dt = |∂ₜΦ(x, t) − ½ |∇ₓΦ(x, t)|²|        (HJB residual, seed paper eq. 30 with α₂ = 0).
///
/// Stochastic OT normalizing flow (seed paper §6.3, eq. 86: dx = −∇ₓΦ dt + σ dW): with
/// σ > 0 and standard normal `noise` (steps × B × d), each RK4 step Ψ_k is followed
/// (base → target) or preceded (target → base) by the Brownian increment σ√|dt| ξ_k:
///   forward kernel   x_{k+1} = Ψ_k(x_k) + σ√h ξ_k,
///   backward kernel  x_k = Ψ_k⁻¹(x_{k+1} − σ√h η_k)   (η ~ N(0, I)),
/// the kernel pair of a stochastic normalizing flow (Wu, Köhler & Noé, NeurIPS 2020) whose
/// Gaussian factors cancel in the path ratio: log F(path)/B(path | x_K) =
/// log ρ₀(x₀) − Σ_k log|det DΨ_k(x_k)| = log ρ₀(x₀) − ℓ, with ℓ accumulated along the noisy
/// path exactly as above. So the returned log_det keeps its meaning for the path, and
/// exp(−u(x_K) − log ρ₀(x₀) + ℓ) is an unbiased importance weight of Z (E_F[π̃ B / F] = Z).
/// The HJB residual becomes that of eq. 86, |∂ₜΦ − ½|∇Φ|² + (σ²/2) ΔΦ| (U = Φ, v = −∇U).
/// σ = 0 (or no noise) runs the deterministic code path unchanged.
///
/// Integration runs from t0 to t1 in either direction with dt = (t1 − t0)/steps;
/// ℓ accumulates with the signed dt, L and R with |dt|; all three start at 0.
/// With t = 0 the base and t = T the target:
///   base → target:  log q(x(T)) = log ρ₀(x(0)) − ℓ(0→T),
///   target → base:  log q(x)    = log ρ₀(x(0)) + ℓ(T→0)     (since ℓ(T→0) = −ℓ(0→T)),
/// the instantaneous change of variables (seed paper eq. 15, 21).
#include <vector>

#include <torch/torch.h>

#include "boltzlab/generators/ot_potential.hpp"

namespace boltzlab::generators {

/// Augmented state at the end of an integration.
struct CnfState {
  torch::Tensor x;          ///< B×d end points
  torch::Tensor log_det;    ///< B: ℓ = ∫ ∇·v dt (signed with the direction)
  torch::Tensor transport;  ///< B: ∫ ½|∇Φ|² |dt|
  torch::Tensor hjb;        ///< B: ∫ |∂ₜΦ − ½|∇Φ|²| |dt|
};

/// RK4 integration of the augmented ODE from t0 to t1 in `steps` steps.
/// With `with_costs` false, transport and hjb are returned as zeros (cheaper: the
/// HJB and transport integrands are skipped). Differentiable through autograd
/// unless called under torch::NoGradGuard.
/// What integrate() does beyond the plain ODE.
struct CnfExtras {
  double sigma = 0.0;   ///< σ of the stochastic dynamics (file comment; 0: the ODE)
  torch::Tensor noise;  ///< steps × B × d standard normals; noise[k] enters the k-th step taken
  /// 1/ε of the relaxed game (relaxed_game.hpp): the running cost becomes e^{−t/ε}·½|∇Φ|² (0: unweighted).
  double transport_decay = 0.0;
  /// When set: the states at the step boundaries, x and ℓ at t0, t0 + dt, …, t1 (steps + 1 each).
  std::vector<torch::Tensor>* path_x = nullptr;
  std::vector<torch::Tensor>* path_log_det = nullptr;
};

/// With `extras`: the stochastic dynamics, the time-weighted running cost and the path
/// record of CnfExtras.
CnfState integrate(OtPotentialImpl& phi, const torch::Tensor& x0, double t0, double t1, int steps,
                   bool with_costs = true, const CnfExtras& extras = {});

class FreeVelocity;
/// The same for a free-form velocity (velocity_field.hpp): dx/dt = v, dℓ/dt = ∇·v, the running
/// cost ½|v|², and no HJB residual (hjb stays 0: there is no potential).
CnfState integrate(FreeVelocity& velocity, const torch::Tensor& x0, double t0, double t1, int steps,
                   bool with_costs = true, const CnfExtras& extras = {});

}  // namespace boltzlab::generators
