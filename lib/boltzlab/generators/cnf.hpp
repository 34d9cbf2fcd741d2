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
/// Integration runs from t0 to t1 in either direction with dt = (t1 − t0)/steps;
/// ℓ accumulates with the signed dt, L and R with |dt|; all three start at 0.
/// With t = 0 the base and t = T the target:
///   base → target:  log q(x(T)) = log ρ₀(x(0)) − ℓ(0→T),
///   target → base:  log q(x)    = log ρ₀(x(0)) + ℓ(T→0)     (since ℓ(T→0) = −ℓ(0→T)),
/// the instantaneous change of variables (seed paper eq. 15, 21).
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
CnfState integrate(OtPotentialImpl& phi, const torch::Tensor& x0, double t0, double t1, int steps,
                   bool with_costs = true);

}  // namespace boltzlab::generators
