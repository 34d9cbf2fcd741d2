#pragma once
/// \file langevin.hpp
/// Langevin samplers of π_β(x) ∝ exp(−β u(x)) over a particle ensemble: every
/// particle is an independent chain (no interaction), drawing only from its own
/// stream stream_for(seed, i), so results are bit-identical for any thread count
/// and for Execution::kSerial vs kParallel.
///
///  - ULA (overdamped Langevin, Euler–Maruyama; the stochastic realization of the
///    KL Wasserstein gradient flow, seed paper §3.4):
///      x' = x − τ β ∇u(x) + √(2τ) ξ,   ξ ~ N(0, I).
///    Biased at finite τ: for a Gaussian N(0, σ²) its stationary variance is
///    σ²/(1 − τ/(2σ²)) (β = 1).
///  - MALA (Roberts & Tweedie 1996): the ULA move as a proposal y, accepted with
///      min(1, exp(−β u(y) + β u(x)) q(x|y)/q(y|x)),  q(y|x) ∝ exp(−|y − x + τβ∇u(x)|²/(4τ));
///    a NaN ratio (or a non-finite u(y)) is a rejection. Exact (π_β-invariant) for any τ.
///  - BAOAB (Leimkuhler & Matthews 2013, "Rational construction of stochastic
///    numerical methods for molecular sampling"), unit-temperature momenta p ~ N(0, m):
///      B: p ← p − (h/2) β ∇u(x);  A: x ← x + (h/2) p/m;
///      O: p ← e^{−γh} p + √((1 − e^{−2γh}) m) ξ;  A;  B.
///    One gradient per step (∇u at the end of a step is reused at the start of the next).
///    Stationary density ≈ exp(−β u(x) − |p|²/(2m)), with O(h²) configurational bias;
///    exact marginal in x for Gaussian targets in the high-friction limit.
///
/// Particle systems (Target::particle_layout() = {n, s}) follow the centre-of-mass
/// convention of targets/target.hpp: initial configurations (and BAOAB momenta) are
/// centred and every Gaussian increment is projected onto the centre-of-mass-free
/// subspace, P ξ = ξ − (mean over particles, per spatial coordinate). The gradient of a
/// translation-invariant u already lies in that subspace, so the chains stay in it.
///
/// Schedule: the run has options.warmup + options.steps steps; β(t) =
/// options.beta.at(t) with t counted from the first warm-up step. Warm-up steps are
/// burn-in (no frames); MALA adapts each particle's τ during them (see MalaParams).
/// Monitors ("mean_energy": mean of the finite u over particles; MALA also
/// "acceptance", the mean acceptance probability of that step; BAOAB also
/// "kinetic_temperature", ⟨|p|²/m⟩/dof) are recorded at step 0 and after every
/// options.monitor_every steps and at the end.
/// Tolerance (> 0): after warm-up and annealing, stop when the mean energy changes by
/// less than tolerance·max(1, |⟨u⟩|) between consecutive monitors (a relaxation
/// criterion; for sampling leave it 0).
#include <memory>
#include <string>

#include "boltzlab/flows/flow.hpp"

namespace boltzlab {

/// ULA: no flow-specific parameters. Default τ = 0.01.
class UlaFlow : public Flow {
 public:
  std::string name() const override { return "ula"; }
  static constexpr double kDefaultStepSize = 0.01;

 protected:
  FlowResult evolve(const Target& target, Ensemble& ensemble, const FlowOptions& options) override;
};

/// MALA parameters ({"target_acceptance": 0.574, "adapt": true, "stuck_window": 100,
/// "stuck_acceptance": 0.05}).
///
/// Step-size adaptation, PER PARTICLE, during warm-up only: every chain i runs its own
/// dual averaging of log τ_i (Nesterov 2009; Hoffman & Gelman 2014, Algorithm 5, as
/// Stan does per chain: κ = 0.75, γ = 0.05, t0 = 10, μ = log(10 τ₀)) on its own
/// acceptance probability min(1, α_t) of each warm-up step, log τ_i clamped to
/// log τ₀ ± 30. At the end of warm-up τ_i is frozen at the averaged iterate τ̄_i, so
/// the sampling phase of every chain is a time-homogeneous Metropolis–Hastings kernel,
/// reversible with respect to π_β: a valid MCMC chain. Why per particle: a particle
/// that starts far in a steep tail (|∇u| ≫ 1/τ) proposes far overshooting moves that
/// are all rejected; with one step size tuned to the ensemble-mean acceptance it never
/// moves. Its own τ_i shrinks until it accepts, then grows again as it reaches the bulk.
/// The adaptation uses no random numbers, so results stay bit-identical for any
/// thread count. Without adaptation (adapt false or warmup 0) every τ_i = τ₀.
///
/// Stuck chains (assessed when the sampling phase has ≥ stuck_window steps): a chain
/// is stuck when its last stuck_window proposals were all rejected, or its
/// sampling-phase acceptance rate is below stuck_acceptance. A healthy chain near the
/// target acceptance 0.574 rejects 100 proposals in a row with probability
/// 0.426^100 ≈ 1e-37, so the count is no false alarm. The count is
/// FlowResult::health.stuck; statistics also give the spread of τ_i and of the
/// per-chain acceptance rates.
struct MalaParams {
  double target_acceptance = 0.574;  ///< α* (Roberts & Rosenthal 1998), in (0, 1)
  bool adapt = true;                 ///< adapt each τ_i during warm-up (needs warmup > 0)
  std::size_t stuck_window = 100;    ///< trailing rejections that make a chain stuck; ≥ 1
  double stuck_acceptance = 0.05;    ///< sampling acceptance rate below which a chain is stuck; in [0, 1)
  /// \throws ConfigError naming the field.
  void validate() const;
};

/// MALA. Default initial τ₀ = 0.1·d^{−1/3} (the optimal τ scales as d^{−1/3}).
/// statistics: "step_size" (the median frozen τ_i), "step_size_min", "step_size_max",
/// "step_size_quantiles" {q05, q50, q95}, "acceptance_rate" (all chains),
/// "acceptance_rate_min" (the worst chain), "stuck_particles" (null when not assessed).
class MalaFlow : public Flow {
 public:
  explicit MalaFlow(MalaParams params = {});
  std::string name() const override { return "mala"; }
  const MalaParams& params() const { return params_; }

 protected:
  FlowResult evolve(const Target& target, Ensemble& ensemble, const FlowOptions& options) override;

 private:
  MalaParams params_;
};

/// BAOAB parameters ({"friction": 1.0, "mass": 1.0}).
struct BaoabParams {
  double friction = 1.0;  ///< γ, in 1/time (h is the time step); > 0
  double mass = 1.0;      ///< m (same for every coordinate); > 0
  /// \throws ConfigError naming the field.
  void validate() const;
};

/// BAOAB underdamped Langevin. Default h = 0.05. Momenta start from N(0, m)
/// (centred for particle systems) drawn from each particle's stream.
class BaoabFlow : public Flow {
 public:
  explicit BaoabFlow(BaoabParams params = {});
  std::string name() const override { return "baoab"; }
  const BaoabParams& params() const { return params_; }

 protected:
  FlowResult evolve(const Target& target, Ensemble& ensemble, const FlowOptions& options) override;

 private:
  BaoabParams params_;
};

/// Registry factories (flows/registry.cpp). ULA takes no keys; MALA reads
/// "target_acceptance", "adapt", "stuck_window", "stuck_acceptance"; BAOAB reads
/// "friction", "mass".
std::unique_ptr<Flow> make_ula(JsonReader& params);
std::unique_ptr<Flow> make_mala(JsonReader& params);
std::unique_ptr<Flow> make_baoab(JsonReader& params);

}  // namespace boltzlab
