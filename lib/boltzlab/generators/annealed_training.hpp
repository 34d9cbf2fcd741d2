#pragma once
/// \file annealed_training.hpp
/// Temperature-annealed training of the flow generator from the energy alone (no samples of
/// π), after Schopmans & Friederich, "Temperature-annealed Boltzmann generators" (ICML 2025).
/// With π_τ(x) ∝ exp(−u(x)/τ) (τ = T/T₀ in reduced units: u/τ is the reduced energy at the
/// temperature τ·T₀; for an analytic target simply u/τ):
///
///  1. Stage 1, reverse KL at a high temperature: min_θ KL(q_θ‖π_{τ₀}), τ₀ = t_high, by
///     train() (trainer.hpp) with λ = 0 against TemperedTarget(u, τ₀). At τ₀ the barriers
///     between modes are lowered by 1/τ₀, so the mode-seeking reverse KL can still cover them
///     when τ₀ is high enough (the stage-1 check below tells).
///  2. Down the ladder τ₀ > τ₁ > … > τ_K = 1 (geometric τ_k = τ₀^{1−k/K} by default, or
///     linear τ_k = τ₀ − k(τ₀ − 1)/K), at rung k = 1 … K:
///       draw M samples x_i ~ q_θ with exact log q (RK4, generator.hpp),
///       log w_i = −u(x_i)/τ_k − log q_θ(x_i)   (+ L(y_i) with a flow-space map, trainer.hpp),
///       smooth them (WeightSmoothing) and self-normalize: w̄_i = w_i / Σ_j w_j,
///       and train `steps_per_rung` Adam steps on the weighted forward KL of the buffer
///         KL(π_{τ_k}‖q_θ) ≈ −Σ_i w̄_i log q_θ(x_i) + const
///     (train() with λ = 1 and the data weights w̄: mini-batch rows drawn with probability w̄_i,
///     training_step.hpp). The buffer of rung k is its own M draws.
///  3. Refinement (optional, `refine_rungs` R ≥ 0): R more rungs at τ = 1, each on its own fresh
///     M draws of the current model, with `refine_steps_per_rung` steps of one Adam and one
///     learning-rate schedule across all R rungs: iterated self-normalized importance-weighted
///     maximum likelihood. Reverse KL fixes the shape of each mode but moves
///     mass between modes only through draws that cross the barrier (the reparameterized gradient
///     of a mode's share is carried by the density at the barrier, e^{−ΔU} smaller); the
///     weighted forward KL corrects the shares directly (mass-covering). Few steps per buffer
///     (≈ one pass over the M draws) keep a large flow from fitting the buffer's points instead
///     of π. With t_high = 1 and rungs = 0 there is no annealing: stage 1 is the reverse KL at
///     τ = 1 and the refinement follows.
///  4. A final check: M fresh draws of the trained model at τ = 1 (ESS, log Z).
/// Before the first rung, "rung 0" weights M draws of stage 1's model to π_{τ₀} itself: its ESS
/// tells a stage 1 that did not fit (e.g. modes still dropped at τ₀) from a ladder that is too steep.
/// Each rung reports the Kish ESS of its raw weights (how well the model of the rung above
/// covers π_{τ_k}), the ESS after smoothing, PSIS k̂ and the importance estimate of
/// log Z_τ = log ∫ exp(−u/τ) dx (Z_τ is known only at τ = 1 for analytic targets).
///
/// Random streams: rung k (0: the stage-1 check, K + 1 … K + R: the refinement, K + R + 1: the
/// final check) draws with seed
/// (seed ^ kAnnealSampleSeedMix) + k and trains with (seed ^ kAnnealTrainSeedMix) + k (the
/// refinement, one optimizer run, with + K + 1 throughout, its mini-batches drawn per step);
/// energies go through Target::evaluate_batch (oneTBB, one row each) and the training through
/// the steps of train() (training_step.hpp), so results do not depend on the thread count.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab::generators {

/// Stream mixes of the rungs' draws and training (see the file comment).
inline constexpr std::uint64_t kAnnealSampleSeedMix = 0xA22EA1ED5A3B1E00ULL;
inline constexpr std::uint64_t kAnnealTrainSeedMix = 0x7A2A11ED0C0FFEE0ULL;

/// The target at reduced temperature τ: u_τ(x) = u(x)/τ, ∇u_τ = ∇u/τ (the same configurations,
/// particle layout and topology; log Z_τ unknown). Holds a reference to `inner`, which must
/// outlive it. Thread-safe as `inner`.
class TemperedTarget : public Target {
 public:
  /// \throws ConfigError unless τ is finite and > 0.
  TemperedTarget(const Target& inner, double tau);
  std::string name() const override;
  std::size_t dim() const override { return inner_.dim(); }
  double reduced_energy(const double* x, double* grad) const override;
  std::pair<std::size_t, std::size_t> particle_layout() const override { return inner_.particle_layout(); }
  const Topology* topology() const override { return inner_.topology(); }
  /// kT at the tempered temperature: τ·kT of `inner`.
  double kT() const override { return tau_ * inner_.kT(); }
  std::vector<double> reference_configuration() const override { return inner_.reference_configuration(); }
  nlohmann::json describe() const override;
  /// `inner`'s batch (e.g. OpenMM's per-thread Contexts), then u/τ and ∇u/τ.
  BatchStats evaluate_batch(const RowMatrix& x, Eigen::VectorXd& u, RowMatrix* grad,
                            Execution exec = Execution::kParallel) const override;
  double tau() const { return tau_; }

 private:
  const Target& inner_;
  double tau_;
};

/// How a rung's importance weights are made robust before training on them.
enum class WeightSmoothing {
  kNone,      ///< the self-normalized weights as they are
  kTruncate,  ///< truncated IS (Ionides, JCGS 17:295, 2008): w_i ← min(w_i, w̄·√M), w̄ the mean weight
  kPsis,      ///< Pareto-smoothed IS (Vehtari et al., JMLR 25(72), 2024; estimators/importance.hpp)
};
/// "none" | "truncate" | "psis".
std::string to_string(WeightSmoothing s);

/// The "annealing" object of a potential file's generator section.
struct AnnealingOptions {
  bool enabled = false;           ///< true when the section is given (annealed training runs)
  double t_high = 10.0;           ///< τ₀ = T_high/T ≥ 1: stage 1's temperature (1: no annealing)
  int rungs = 5;                  ///< K: rungs below τ₀, the last at τ = 1 (≥ 1; 0 iff t_high = 1)
  std::string spacing = "geometric";  ///< "geometric" | "linear" ladder
  int samples_per_rung = 4096;    ///< M ≥ 2: draws per rung (the buffer)
  int steps_per_rung = 200;       ///< Adam steps of weighted forward KL per rung (≥ 1)
  int batch_size = 0;             ///< rows per step (0: the training batch_size)
  double learning_rate = 0.0;     ///< Adam's initial rate per rung (0: the training learning_rate)
  WeightSmoothing smoothing = WeightSmoothing::kPsis;  ///< "smoothing": "none" | "truncate" | "psis"
  int refine_rungs = 0;           ///< R ≥ 0: refinement rungs at τ = 1 after the ladder (file comment, 3.)
  int refine_steps_per_rung = 0;  ///< Adam steps per refinement rung (0: steps_per_rung)

  /// Steps of rung k = 1 … K + R.
  int steps_of_rung(int k) const {
    return k > rungs && refine_steps_per_rung > 0 ? refine_steps_per_rung : steps_per_rung;
  }

  /// τ₀ > τ₁ > … > τ_K = 1 (K + 1 entries; {1} when t_high = 1).
  std::vector<double> ladder() const;
  /// Reads the object's keys ("t_high", "rungs", "spacing", "samples_per_rung", "steps_per_rung",
  /// "batch_size", "learning_rate", "smoothing", "refine_rungs", "refine_steps_per_rung"), sets
  /// enabled and validates.
  /// \throws ConfigError "<context>.<key>: …" for a bad value or an unknown key.
  void read(JsonReader& r);
  /// \throws ConfigError "generator.annealing.<key> is …, but must be …".
  void validate() const;
  nlohmann::json to_json() const;
};

/// One rung (or the final check at τ = 1, whose training is empty).
struct AnnealingRung {
  int rung = 0;                  ///< k (K + 1 … K + R: refinement; K + R + 1: the final check)
  double tau = 1.0;              ///< τ_k the weights target
  double tau_model = 1.0;        ///< τ the drawing model was trained for (τ_{k−1})
  std::size_t samples = 0;       ///< M
  std::size_t zero_weight = 0;   ///< draws with log w = −∞ (non-finite energy, invalid map row)
  double ess_fraction = 0.0;     ///< Kish ESS / M of the raw weights
  double ess_fraction_smoothed = 0.0;  ///< Kish ESS / M of the weights trained on
  Quantity khat;                 ///< PSIS k̂ of the raw weights
  Quantity log_z;                ///< importance estimate of log Z_τ = log ∫ e^{−u/τ} dx
  Quantity log_z_se;             ///< its delta-method standard error
  std::size_t energy_evaluations = 0;  ///< of the weights (training adds none: λ = 1)
  double seconds = 0.0;          ///< wall time of the rung (draws, weights, training)
  TrainHistory training;         ///< the rung's weighted forward-KL steps
  nlohmann::json to_json() const;
};

/// Stage 1 and the rungs.
struct AnnealedHistory {
  TrainHistory stage1;               ///< reverse KL at τ₀
  AnnealingRung stage1_check;        ///< rung 0: stage 1's model weighted to π_{τ₀} itself (how well it fits)
  std::vector<AnnealingRung> rungs;  ///< k = 1 … K, then the refinement rungs K + 1 … K + R at τ = 1
  AnnealingRung final_check;         ///< τ = 1 after the last rung (samples 0: not run)
  double wall_seconds = 0.0;
  /// Stage 1 and the rungs as one history (curves concatenated, counters summed, the weights'
  /// and the checks' energy evaluations included): what the run directory plots and sums.
  TrainHistory combined() const;
  nlohmann::json to_json() const;
};

/// Runs the annealed training (file comment) on `model` in place: `options` are stage 1's
/// (λ must be 0; its iterations, checkpoints and resume apply to stage 1 only), `annealing`
/// the ladder. `map` as in train(). When stage 1 stops early (options.stop_after), no rung runs.
/// \throws ConfigError for invalid options, DomainError as train().
AnnealedHistory train_annealed(BoltzmannGenerator& model, const Target& target, const TrainOptions& options,
                               const AnnealingOptions& annealing, const FlowSpaceMap* map = nullptr);

/// The "refinement" object of a potential file's generator section: the refinement rungs of
/// the annealed training (file comment, 3.) after any other training — forward KL on data
/// (the molecular generator), reverse KL or FAB. Each of `rungs` rungs draws
/// `samples_per_rung` fresh configurations of the current model, weights them to π at τ = 1
/// and takes `steps_per_rung` Adam steps of the weighted forward KL on them (one Adam and one
/// learning-rate schedule across the rungs); a final check of as many fresh draws follows.
/// Unlike training on a fixed set of frames, every rung sees new configurations, weighted by
/// the energy: the data limit of a data-trained model is lifted at one energy evaluation per draw.
struct RefinementOptions {
  bool enabled = false;           ///< true when the section is given
  int rungs = 20;                 ///< R ≥ 1
  int samples_per_rung = 8192;    ///< M ≥ 2: fresh draws per rung
  int steps_per_rung = 25;        ///< Adam steps per rung (≥ 1)
  int batch_size = 0;             ///< rows per step (0: the training batch_size)
  double learning_rate = 0.0;     ///< Adam's initial rate (0: the training learning_rate)
  WeightSmoothing smoothing = WeightSmoothing::kPsis;

  /// The same rungs as annealing options: t_high 1, no ladder, `rungs` refinement rungs.
  AnnealingOptions as_annealing() const;
  /// Reads "rungs", "samples_per_rung", "steps_per_rung", "batch_size", "learning_rate",
  /// "smoothing"; sets enabled and validates.
  /// \throws ConfigError "<context>.<key>: …" for a bad value or an unknown key.
  void read(JsonReader& r);
  /// \throws ConfigError "generator.refinement.<key> is …, but must be …".
  void validate() const;
  nlohmann::json to_json() const;
};

/// The refinement rungs and the final check.
struct RefinementHistory {
  std::vector<AnnealingRung> rungs;  ///< rungs 1 … R at τ = 1
  AnnealingRung final_check;         ///< rung R + 1: fresh draws of the refined model
  double wall_seconds = 0.0;
  /// `before` (the training that preceded) followed by the rungs, as one history.
  TrainHistory combined(const TrainHistory& before) const;
  nlohmann::json to_json() const;
};

/// Refines a trained `model` in place (RefinementOptions). `options` are the training's options
/// (its seed, path-cost weights, batch and learning rate where the refinement gives none); the
/// streams are those of train_annealed with no ladder (rung k draws with
/// (seed ^ kAnnealSampleSeedMix) + k), so results do not depend on the thread count. `map` as in
/// train(): with the molecular flow-space map, log w includes its log-Jacobian.
/// \throws ConfigError for invalid options, DomainError when a rung has no finite weight.
RefinementHistory refine_trained(BoltzmannGenerator& model, const Target& target, const TrainOptions& options,
                                 const RefinementOptions& refinement, const FlowSpaceMap* map = nullptr);

/// The importance weights of one rung (exposed for tests): log w_i = −u(x_i)/τ + L − log q_i
/// (flow_log_weights of TemperedTarget(target, τ)) and the normalized, smoothed weights.
struct RungWeights {
  Eigen::VectorXd log_weights;  ///< raw log w (−∞ at zero weight)
  Eigen::VectorXd weights;      ///< smoothed, normalized to sum 1
  std::size_t invalid = 0;      ///< rows outside the map's valid set
};
/// \throws DomainError when no weight is finite (nothing to train on).
RungWeights rung_weights(const GeneratedSamples& samples, const Target& target, double tau, WeightSmoothing smoothing,
                         const FlowSpaceMap* map, EnergyCounters* counters, Execution exec = Execution::kParallel);

/// Normalized weights from log-weights by `smoothing` (sum 1; zero where log w = −∞).
/// \throws DomainError as validate_log_weights (estimators/importance.hpp).
Eigen::VectorXd smoothed_weights(const Eigen::VectorXd& log_weights, WeightSmoothing smoothing);

}  // namespace boltzlab::generators
