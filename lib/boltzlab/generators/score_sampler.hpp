#pragma once
/// \file score_sampler.hpp
/// Sampling a score model (score_model.hpp) of a noising SDE (noising.hpp), f = c y:
///
/// - **Reverse SDE** (seed paper eq. 35), Euler–Maruyama from the prior at noising time T
///   down to ε in `steps` equal steps h (generative time t = T − s):
///     y ← y + [c y + g²(s) s_θ(y, s)] h + g(s) √h ξ,
///   optionally followed at each level by `corrector_steps` Langevin corrector steps
///     y ← y + δ s_θ(y, s) + √(2δ) ξ,   δ = 2 snr² (m(s)² + v(s))
///   (predictor–corrector sampling, Song et al., ICLR 2021, Alg. 5). Their step 2 (snr |ξ|/|s_θ|)²
///   uses norms averaged over the batch; with |ξ|² ≈ d and |s_θ|² ≈ d / (m² + v), the marginal
///   variance of unit-variance (standardized) data at level s, it is the δ above. That δ is the
///   same for every row, so rows stay independent of the batching, and it does not blow up at
///   rows where s_θ ≈ 0, as a per-row ratio would.
/// - **Probability-flow ODE** (Thm 4.3; Song et al. eq. 13), in noising time
///     dy/ds = −c y − ½ g²(s) s_θ(y, s),
///   whose density obeys d/ds log p_s(y(s)) = c d + ½ g² ∇·s_θ. Classical RK4 on the
///   augmented state [y, ℓ], ℓ = ∫ (c d + ½ g² ∇·s_θ) ds with the exact divergence of the
///   model, gives samples with their log-density
///     log q(y_ε) = log N(y_T; prior) − ∫_ε^T (c d + ½ g² ∇·s_θ) ds,
///   exact up to the RK4 error, so a score model's samples can be reweighted to π like any
///   generator's (the density is that of the samples the ODE produces, whatever the model's
///   error).
///
/// Row i draws its prior point and all its noise from Rng stream (seed, i); rows run in
/// chunks as oneTBB tasks, so results do not depend on the thread count or the chunk size.
#include <cstdint>

#include <Eigen/Core>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/generators/noising.hpp"
#include "boltzlab/generators/score_model.hpp"

namespace boltzlab::generators {

struct ReverseSdeOptions {
  int steps = 3000;         ///< Euler–Maruyama steps (the seed's §7: Δt = 10⁻³ over T = 3)
  int corrector_steps = 0;  ///< Langevin corrector steps per level (0: plain Euler–Maruyama)
  double snr = 0.16;        ///< corrector signal-to-noise ratio
  void validate() const;
};

/// n samples of the reverse SDE (at noising time ε).
RowMatrix sample_reverse_sde(ScoreField& model, const NoisingSde& sde, std::int64_t n, std::uint64_t seed,
                             const ReverseSdeOptions& options, std::int64_t chunk = 1024);

/// Samples with their log-density.
struct ScoreSamples {
  RowMatrix x;            ///< N×d
  Eigen::VectorXd log_q;  ///< N
};

/// n samples of the probability-flow ODE with log q (`steps` RK4 steps from T to ε).
ScoreSamples sample_probability_flow(ScoreField& model, const NoisingSde& sde, std::int64_t n, std::uint64_t seed,
                                     int steps, std::int64_t chunk = 1024);

/// log q(x) of the probability-flow model at given points (integrated from ε to T).
Eigen::VectorXd probability_flow_log_q(ScoreField& model, const NoisingSde& sde, const RowMatrix& x, int steps,
                                       std::int64_t chunk = 1024);

}  // namespace boltzlab::generators
