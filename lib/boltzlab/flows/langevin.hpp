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
/// burn-in (no frames); MALA adapts τ during them (see MalaParams). Monitors
/// ("mean_energy": mean of the finite u over particles; MALA also "acceptance", the mean
/// acceptance probability of that step; BAOAB also "kinetic_temperature", ⟨|p|²/m⟩/dof)
/// are recorded at step 0 and after every options.monitor_every steps and at the end.
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
  FlowResult run(const Target& target, Ensemble& ensemble, const FlowOptions& options) override;
  static constexpr double kDefaultStepSize = 0.01;
};

/// MALA parameters ({"target_acceptance": 0.574, "adapt": true}).
///
/// Step-size adaptation (warm-up only, then frozen and reported): dual averaging of
/// log τ (Nesterov 2009; Hoffman & Gelman 2014, eqs. (5)–(6); κ = 0.75, γ = 0.05,
/// t0 = 10, μ = log(10 τ₀)), driven by the ENSEMBLE-MEAN acceptance probability of
/// each warm-up step, one step size shared by all particles. Why shared: all chains
/// target the same π_β, so the mean over N chains is a low-noise estimate of the
/// acceptance rate and the adaptation settles in a few dozen steps; after freezing
/// every chain runs the same Markov kernel, so the particles are exchangeable replicas
/// (what the batch-means error bars assume). It costs one synchronization per warm-up
/// step, which is negligible next to N gradient evaluations.
struct MalaParams {
  double target_acceptance = 0.574;  ///< α* (Roberts & Rosenthal 1998), in (0, 1)
  bool adapt = true;                 ///< adapt τ during warm-up (needs warmup > 0)
  /// \throws ConfigError naming the field.
  void validate() const;
};

/// MALA. Default initial τ = 0.1·d^{−1/3} (the optimal τ scales as d^{−1/3}).
class MalaFlow : public Flow {
 public:
  explicit MalaFlow(MalaParams params = {});
  std::string name() const override { return "mala"; }
  FlowResult run(const Target& target, Ensemble& ensemble, const FlowOptions& options) override;
  const MalaParams& params() const { return params_; }

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
  FlowResult run(const Target& target, Ensemble& ensemble, const FlowOptions& options) override;
  const BaoabParams& params() const { return params_; }

 private:
  BaoabParams params_;
};

/// Registry factories (flows/registry.cpp). ULA takes no keys; MALA reads
/// "target_acceptance", "adapt"; BAOAB reads "friction", "mass".
std::unique_ptr<Flow> make_ula(JsonReader& params);
std::unique_ptr<Flow> make_mala(JsonReader& params);
std::unique_ptr<Flow> make_baoab(JsonReader& params);

}  // namespace boltzlab
