#pragma once
/// \file fab_training.hpp
/// Training of the flow generator from the energy alone by the α = 2 divergence with annealed
/// importance sampling: FAB, after Midgley, Stimper, Simm, Schölkopf & Hernández-Lobato, "Flow
/// Annealed Importance Sampling Bootstrap" (ICLR 2023). The objective is
///
///   D₂(p‖q_θ) ∝ ∫ p²/q_θ,   ∇_θ ∫ p²/q_θ = −∫ (p²/q_θ) ∇_θ log q_θ,
///
/// estimated with draws of p²/q_θ, the distribution that minimizes the variance of the importance
/// weights p/q_θ. Outer iteration k = 0 … iterations − 1:
///
///  1. Plain AIS (run_annealed_smc, resample_threshold 0, a fixed linear schedule of `ais_rungs`
///     rungs with `mala_steps` MALA moves each) from q_θ to p²/q_θ, run in the flow's base space
///     (GeneratorLatentPath with weight exponent 2: the far end ρ₀ w², w = p/q, is p²/q pulled back
///     through the flow). It gives N end points z_i with log-weights log w_i (absolute: their mean
///     is the estimate of ∫ p²/q, so batches of different iterations share one scale).
///  2. The end points' configurations x_i = T(z_i) enter the replay buffer with log w_i and the
///     flow's log q_θ(x_i) at insertion (FAB §3.3, prioritised replay: without a buffer the batch
///     alone is trained on). The buffer holds the last `buffer_batches` AIS batches.
///  3. Reuse: each buffered row's weight is carried to the current flow by the ratio of the flow
///     densities, w_i ← w_i · q_old(x_i)/q_θ(x_i), and q_old(x_i) ← q_θ(x_i) (FAB's weight
///     adjustment for samples drawn under an earlier θ: p²/q_θ = (p²/q_old)(q_old/q_θ)); in the
///     training weight the ratio is capped at `max_weight_adjust` (FAB caps it at 10), the stored
///     weight keeps the uncapped product.
///  4. `steps_per_batch` Adam steps of the weighted forward KL on the buffer,
///       L(θ) = −Σ_i w̄_i log q_θ(x_i),   w̄_i = w_i / Σ_j w_j (held fixed, no gradient through AIS),
///     by TrainingStep with λ = 1 and the data weights (mini-batch rows drawn with probability w̄_i,
///     training_step.hpp), as the annealed-training rungs train. One Adam state and one cosine
///     learning-rate schedule run over all iterations (FAB keeps one optimizer).
///
/// Optional stage 1: `options.iterations` steps of train() (λ = 0, the reverse KL) before FAB
/// (FAB itself starts from the flow at initialization; 0 skips it).
/// Every `check_every` iterations (and before the first and after the last), the flow's own
/// Kish ESS and importance log Ẑ on `check_samples` draws of one fixed stream.
///
/// Energy evaluations: every AIS evaluation (N at rung 0 and N per MALA move) and every check
/// draw count; the forward-KL steps evaluate none.
///
/// Random streams: iteration k's AIS draws and moves use seed (s ^ kFabAisSeedMix) + k; the
/// gradient steps draw rows from stream (s ^ kFabTrainSeedMix, step) (training_step.hpp); the
/// checks draw with s ^ kFabCheckSeedMix; s = `seed` or, when 0, the training seed. All
/// evaluations run in fixed chunks, so results do not depend on the thread count.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab::generators {

/// Stream mixes of the AIS runs, the gradient steps and the checks (see the file comment).
inline constexpr std::uint64_t kFabAisSeedMix = 0xFAB0A15000000000ULL;
inline constexpr std::uint64_t kFabTrainSeedMix = 0xFAB07A1200000000ULL;
inline constexpr std::uint64_t kFabCheckSeedMix = 0xFAB0C4EC00000000ULL;

/// The "fab" object of a potential file's generator section.
struct FabOptions {
  bool enabled = false;          ///< true when the section is given (FAB training runs)
  int iterations = 200;          ///< outer iterations (AIS batches), ≥ 1
  int particles = 512;           ///< AIS particles per iteration N, ≥ 2
  int ais_rungs = 8;             ///< rungs of the fixed linear schedule β_k = k/K, ≥ 1
  int mala_steps = 1;            ///< MALA moves per rung, ≥ 0
  double step_size = 0.05;       ///< initial MALA step τ of each AIS run (adapted within it), > 0
  int steps_per_batch = 4;       ///< Adam steps per iteration, ≥ 1
  int buffer_batches = 0;        ///< AIS batches kept in the replay buffer (0: no buffer, the batch alone)
  int batch_size = 0;            ///< rows per gradient step (0: the training batch_size)
  double learning_rate = 0.0;    ///< Adam's initial rate (0: the training learning_rate)
  double max_weight_adjust = 10.0;  ///< cap of q_old/q_θ in the training weights of reused rows, ≥ 1
  int check_every = 10;          ///< flow-only check every this many iterations (0: first and last only)
  int check_samples = 4096;      ///< draws of each check, ≥ 2
  std::uint64_t seed = 0;        ///< stream seed (0: the training seed)

  /// Reads the object's keys ("iterations", "particles", "ais_rungs", "mala_steps", "step_size",
  /// "steps_per_batch", "buffer_batches", "batch_size", "learning_rate", "max_weight_adjust",
  /// "check_every", "check_samples", "seed"), sets enabled and validates.
  /// \throws ConfigError "<file>: generator.fab.<key> …" for a bad value or an unknown key.
  void read(JsonReader& r);
  /// \throws ConfigError "generator.fab.<key> is …, but must be …".
  void validate() const;
  nlohmann::json to_json() const;
};

/// One outer iteration.
struct FabIteration {
  int iteration = 0;
  double ais_ess_fraction = 0.0;     ///< Kish ESS / N of the AIS end points' weights
  double ais_log_z = 0.0;            ///< log Ẑ₂ = log ∫ p²/q_θ estimated by the AIS (p unnormalized)
  double ais_log_z_se = 0.0;         ///< its standard error
  double initial_ess_fraction = 0.0; ///< ESS / N of the rung-0 draws (q_θ weighted to p²/q_θ)
  double acceptance = 0.0;           ///< mean MALA acceptance over the rungs
  std::size_t buffer_rows = 0;       ///< rows trained on
  double buffer_ess_fraction = 0.0;  ///< Kish ESS / rows of the training weights
  double forward_kl = 0.0;           ///< mean weighted −log q of the iteration's last step
  std::size_t energy_evaluations = 0;  ///< of the AIS
  double seconds = 0.0;
  nlohmann::json to_json() const;
};

/// The flow alone on fresh draws: after `iteration` outer iterations.
struct FabCheck {
  int iteration = 0;
  std::size_t samples = 0;
  double ess_fraction = 0.0;  ///< Kish ESS / samples of p/q
  Quantity log_z;             ///< importance estimate of log Z
  Quantity log_z_se;          ///< its delta-method standard error
  std::size_t energy_evaluations = 0;
  nlohmann::json to_json() const;
};

/// Stage 1 and the FAB iterations.
struct FabHistory {
  TrainHistory stage1;               ///< optional reverse KL before FAB (empty when iterations = 0)
  TrainHistory training;             ///< the weighted forward-KL steps of all iterations
  std::vector<FabIteration> iterations;
  std::vector<FabCheck> checks;      ///< before the first iteration, every check_every, after the last
  double wall_seconds = 0.0;
  /// All energy evaluations: stage 1, the AIS runs and the checks.
  std::size_t energy_evaluations() const;
  /// Stage 1 and the FAB steps as one history (what the run directory plots and sums).
  TrainHistory combined() const;
  nlohmann::json to_json() const;
};

/// Runs FAB (file comment) on `model` in place: `options` are stage 1's and give the defaults of the
/// gradient steps (λ must be 0: no data; its checkpoints, resume and stop_after apply to stage 1 only:
/// when stage 1 stops early, FAB does not run); `fab` the outer loop. Targets without a topology only.
/// \throws ConfigError for invalid options or a molecular target, DomainError as train() or
/// run_annealed_smc (e.g. every AIS weight zero), or for a stochastic flow.
FabHistory train_fab(BoltzmannGenerator& model, const Target& target, const TrainOptions& options,
                     const FabOptions& fab);

/// The flow-only check (exposed for tests): `samples` draws from stream `seed`, Kish ESS and log Ẑ.
FabCheck fab_check(BoltzmannGenerator& model, const Target& target, int samples, std::uint64_t seed,
                   Execution exec = Execution::kParallel);

}  // namespace boltzlab::generators
