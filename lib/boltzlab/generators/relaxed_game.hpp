#pragma once
/// \file relaxed_game.hpp
/// The relaxed Wasserstein-gradient-flow game (generalized OT-Flow), seed paper
/// Thm 5.1, eqs. 70, 78 and §6.5, eq. 90, with F = KL(ρ‖π):
///
///   J = e^{−T/ε} F(ρ_T) + ∫₀ᵀ (e^{−t/ε}/ε) F(ρ_t) dt + α_L ∫₀ᵀ e^{−t/ε} E_ρt ½|v|² dt
///       + α_HJB ∫₀ᵀ E_ρt |∂ₜΦ − ½|∇Φ|² − (Φ − δF/δρ)/ε| dt,        v = −∇Φ,
///
/// where δF/δρ = log ρ_t + u + log Z + 1 and the last term is the residual of the HJB in
/// relaxation form (eq. 78); Φ's constant c absorbs log Z + 1 (the relaxation term is the
/// only one that sees it). ε → ∞ gives the OT-BG/ot-rkl game (eq. 90 and the OT residual of
/// eq. 30); as ε → 0 the relaxation term forces Φ → δF/δρ, so v → −∇(log ρ_t + u): the
/// Wasserstein gradient flow of KL(ρ‖π) (eq. 79), whose particle version is the
/// overdamped Langevin dynamics of the particle flows.
///
/// Estimation on one batch of base draws z: along each deterministic trajectory (RK4,
/// cnf.hpp) log ρ_t(x(t)) = log ρ₀(z) − ℓ(0→t) is exact, so F(ρ_t) = E[g_t] − log Z with
/// g_t = log ρ_t(x(t)) + ũ(x(t)) (ũ: the cut energy of target_bridge.hpp) at every step
/// boundary t_k = k·T/K. The time integrals use the trapezoid rule on those K + 1 points
/// (the running cost: RK4 on the stages, weighted e^{−t/ε}). Cost: K + 1 energy
/// evaluations per trajectory instead of one.
#include <cstdint>

#include <torch/torch.h>

#include "boltzlab/core/parallel.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/target_bridge.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab::generators {

/// The relaxed game's terms of one batch (sums over the rows; the trainer divides by B).
struct RelaxedGameTerm {
  torch::Tensor sum;        ///< scalar: Σ_i [e^{−T/ε} g_T + Σ_k w_k (e^{−t_k/ε}/ε) g_k]
  torch::Tensor terminal;   ///< scalar: Σ_i g_T (no gradient): the reverse KL − log Z, as reported
  torch::Tensor transport;  ///< B: ∫ e^{−t/ε} ½|∇Φ|² dt (zeros without costs)
  torch::Tensor hjb;        ///< B: the relaxation-form residual, trapezoid over t_k (zeros without costs)
};

/// The terms above for base draws z (B×d) of `model` (deterministic, no flow-space map).
/// Differentiable in the model's parameters. \throws ConfigError for ε ≤ 0.
RelaxedGameTerm relaxed_game_term(BoltzmannGenerator& model, const torch::Tensor& z, int steps, bool with_costs,
                                  double epsilon, const Target& target, const EnergyCut& cut,
                                  EnergyCounters* counters, Execution exec = Execution::kParallel);

}  // namespace boltzlab::generators
