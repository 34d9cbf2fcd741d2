#pragma once
/// \file mala_precond.hpp
/// Flow "mala-precond": MALA (flows/langevin.hpp) with a fixed diagonal preconditioner
/// M = diag(m_1, …, m_d) estimated from the ensemble during warm-up:
///   y = x − τβ M∇u(x) + √(2τ) M^{1/2} ξ,   ξ ~ N(0, I),
/// accepted with min(1, exp(−β u(y) + β u(x)) q(x|y)/q(y|x)),
///   q(y|x) ∝ exp(−|M^{−1/2}(y − x + τβ M∇u(x))|²/(4τ))
/// (Roberts & Stramer 2002, "Langevin diffusions and Metropolis–Hastings algorithms",
/// with a constant metric). It is run as plain MALA on z = M^{−1/2} x, whose reduced
/// energy is ũ(z) = u(M^{1/2} z) with ∇ũ(z) = M^{1/2} ∇u(M^{1/2} z): the same chain,
/// mapped back by x = M^{1/2} z. With M and τ fixed it is a Metropolis–Hastings kernel,
/// reversible with respect to π_β, whatever M is; a good M (the marginal variances of
/// π) equalizes the scales, so one step size suits every coordinate.
///
/// Schedule of the options.warmup = W warm-up steps and options.steps main steps:
///  1. W₁ = ⌈W/2⌉ steps of plain MALA (M = I), τ adapted as in "mala";
///  2. m_k = the sample variance over the particles (those with finite u) of
///     coordinate k; for particle systems the variance pooled over particles per
///     spatial axis, so that M acts alike on every particle and commutes with the
///     centre-of-mass projection (target.hpp). A variance that is not finite and > 0
///     (fewer than two particles, a frozen coordinate) gives m_k = 1. M is then frozen;
///  3. W − W₁ steps of MALA on z, each τ_i adapted again from the flow's initial τ (the whitened
///     scales are ~1, so the phase-1 τ, set by the narrowest coordinate, is no guide);
///  4. options.steps steps with M and τ frozen: the sampling kernel.
/// W = 0 skips 1–3 (M = I: plain MALA on fresh streams). β(t) follows options.beta over
/// the whole run; monitors ("mean_energy", "acceptance") and counters cover both phases,
/// frames the main phase (in x). statistics: those of the MALA run on z (its step_size
/// is τ in whitened units) plus "preconditioner_std" (√m_k), "preconditioner_from_step"
/// (W₁) and "step_size_unpreconditioned" (the phase-1 τ).
///
/// Random streams: phase 1 draws from stream_for(seed, i) (it equals `mala` with W₁
/// warm-up steps and no main steps), phases 3–4 from stream_for(seed ^ kPhaseTwoSeedMix, i),
/// so no draw is reused and results are bit-identical for any thread count. The particles
/// share M (fixed after the first half of warm-up); each adapts its own τ_i as in "mala"
/// (fixed after warm-up): given those they are independent chains (the flow table
/// marks the flow as not interacting). Stuck chains are counted as in "mala".
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "boltzlab/flows/langevin.hpp"

namespace boltzlab {

/// MALA with a diagonal preconditioner estimated in warm-up (see the file comment).
/// Parameters are MALA's ({"target_acceptance": 0.574, "adapt": true, "stuck_window",
/// "stuck_acceptance"}), used in both warm-up phases.
class MalaPrecondFlow : public Flow {
 public:
  explicit MalaPrecondFlow(MalaParams params = {});
  std::string name() const override { return "mala-precond"; }

  /// Seed mix of the streams of phases 3–4: stream_for(seed ^ kPhaseTwoSeedMix, i).
  static constexpr std::uint64_t kPhaseTwoSeedMix = 0xA0761D6478BD642FULL;

 protected:
  FlowResult evolve(const Target& target, Ensemble& ensemble, const FlowOptions& options) override;

 private:
  MalaParams params_;
};

/// The preconditioner's standard deviations √m_k of `ensemble` (see step 2 of the file
/// comment); `layout` is Target::particle_layout(). Exposed for tests.
std::vector<double> preconditioner_std(const Ensemble& ensemble, std::pair<std::size_t, std::size_t> layout);

/// Registry factory (flows/registry.cpp): reads MALA's parameters.
std::unique_ptr<Flow> make_mala_precond(JsonReader& params);

}  // namespace boltzlab
