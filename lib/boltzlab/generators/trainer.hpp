#pragma once
/// \file trainer.hpp
/// Training of the OT-Boltzmann generator: the potential MFG of seed paper eq. 85
/// with the BG terminal cost of eq. 31 and the HJB regularizer of eq. 30,
///
///   J(θ) = λ·KL(π‖q_θ) + (1−λ)·KL(q_θ‖π) + α_L·E[∫½|∇Φ|² dt] + α_HJB·E[∫|∂ₜΦ − ½|∇Φ|²| dt]
///          + α₂·E_{q_θ}|Φ(y, T) − δM/δρ(y)|,
///
/// estimated on mini-batches: the forward KL (up to the constant E_π log π) as the
/// NLL −log q(x) of data x ~ π integrated target → base; the reverse KL (up to
/// log Z) as E_z[log q(x(z)) + ũ(x(z))] with z ~ ρ₀ integrated base → target and ũ
/// the lin-log-cut energy through the target bridge. The path costs are averaged
/// over whichever trajectories are simulated, weighted λ : (1−λ).
///
/// Presets (λ, α_L, α_HJB by name, one game of the seed's Table 3 each) are the rows of
/// the table in presets.hpp / presets.cpp; `bg-sample --help` lists them. Without data
/// an explicit λ > 0 is a ConfigError. Any explicit key overrides the preset.
///
/// Flow-space maps (molecules): when the flow lives on coordinates y that a fixed,
/// differentiable map sends to the target's coordinates x(y) (e.g. normalized internal
/// coordinates → Cartesian, MolecularFlowSpace), the target density on y is
///   log π_y(y) = −u(x(y)) + L(y) + const,   L(y) = log|det ∂x/∂y|,
/// and the reverse KL becomes E_z[log q_y(y) + ũ(x(y)) − L(y)] (FlowSpaceMap below);
/// the data term is unchanged (data are given in y). Samples outside the map's valid set
/// (outside the bijective domain, wrong chirality) are left out of the reverse-KL sum
/// (the mean is over the whole batch, i.e. E_z[1_valid·(…)]) and counted.
///
/// Terminal condition (the α₂ term of the seed's eq. 26): at an optimum of the game,
/// Φ(·, T) = δM/δρ(ρ_T) with M = λ·KL(π‖ρ) + (1−λ)·KL(ρ‖π), i.e. in the flow space
///   δM/δρ(y) = −λ·π_y(y)/q_y(y) + (1−λ)·(log q_y(y) + u(x(y)) − L(y) + log Z + 1),
/// where π_y/q_y = exp(−g − log Z), g = log q_y + ũ − L (the reverse-KL integrand). The
/// residual |Φ(y, T) − δM/δρ| is averaged over the generated draws y ~ q (it needs
/// samples of ρ_T, so λ < 1); additive constants are absorbed by Φ's constant c (which
/// the velocity never sees, so α₂ alone fixes it), and the log Z inside the exponential
/// is the chunk's importance estimate log mean exp(−g) (fixed chunk size: independent
/// of threads), held constant in the gradient.
///
/// Stochastic flows (GeneratorOptions::noise σ > 0, cnf.hpp): base and data
/// trajectories carry Brownian increments from per-row streams (seed ^ kNoiseSeedMix and
/// seed ^ kDataNoiseSeedMix, indexed like the draws), the KL terms are the path-space ones
/// of a stochastic normalizing flow (upper bounds of the marginal KLs), the HJB residual
/// gains (σ²/2)ΔΦ, and the fused data path is not used. The terminal term α₂ is refused there:
/// it needs the marginal log ρ_T, and a stochastic flow's log q is a path ratio.
///
/// Relaxed game (LossWeights::epsilon ε > 0): the reverse-KL term and its path costs are
/// replaced by those of the relaxed WGF game of relaxed_game.hpp (time-weighted KL along the
/// trajectory, e^{−t/ε} running cost, the HJB in relaxation form); deterministic flows
/// without a flow-space map only.
///
/// Warm-up (a two-stage schedule): the first `warmup_iterations` steps use λ = 1
/// (forward KL on the data only, no energies), then the configured λ applies.
///
/// Forward-KL term: by LibTorch autograd through cnf.hpp, or by the hand-fused
/// loss + RK4 adjoint of fused_otflow.hpp (same discrete gradient, ≈ 5× faster;
/// "fused": "auto" | true | false, see FusedMode). In a mixed loss (0 < λ < 1) the
/// fused data-term gradient, times λ, is added to the autograd reverse-KL gradient.
///
/// Stability: lin-log energy cut (target_bridge.hpp), global gradient-norm clipping,
/// Adam with a cosine learning-rate schedule, checkpoints (model + Adam state +
/// history) every `checkpoint_every` iterations, resumable.
///
/// Structure of train() (Ceres' IterationCallback design): a short loop over
/// TrainingStep (one optimizer step → StepRecord, training_step.hpp) with the learning
/// rate and weights of TrainingSchedule (training_schedule.hpp), followed by the
/// IterationCallbacks for the running ESS, checkpoints (Checkpointer,
/// training_checkpoint.hpp) and progress lines (training_callbacks.hpp).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/presets.hpp"
#include "boltzlab/generators/target_bridge.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab::generators {

/// Which path computes the forward-KL (data) term and its gradient.
///   kAuto: the fused path when fused_otflow_supports() the architecture (nTh = 2, no
///          particles) and λ > 0; autograd otherwise.
///   kOn:   the fused path; a ConfigError when unsupported or λ = 0.
///   kOff:  always autograd.
enum class FusedMode { kAuto, kOn, kOff };

/// Image of flow-space points y under a FlowSpaceMap.
struct FlowSpaceImage {
  torch::Tensor x;       ///< B×D target coordinates x(y) (differentiable in y)
  torch::Tensor logdet;  ///< B: L(y) = log|det ∂x/∂y| (differentiable in y)
  torch::Tensor valid;   ///< Bool B: y inside the map's valid set (bijective domain, chirality)
};

/// A fixed map from the flow's space y to the target's coordinates (see the file comment).
/// `map` must be thread-safe (it is called from concurrent batch chunks), act row-wise,
/// and return x, L finite and differentiable at valid rows; invalid rows may hold anything.
struct FlowSpaceMap {
  std::function<FlowSpaceImage(const torch::Tensor& y)> map;
};

/// The reverse-KL term of one batch of base draws z (B×d), summed over the valid rows:
///   Σ_{i valid} [log q_y(y_i) + ũ(x(y_i)) − L(y_i)],   y_i = flow(z_i),
/// (without a map: x = y, L = 0, every row valid). Differentiable in the model's
/// parameters; invalid rows enter neither the value nor the gradient (they are selected
/// out before the map is differentiated, so no NaN reaches the optimizer).
struct ReverseKlTerm {
  torch::Tensor sum;          ///< scalar: the sum above (+ nothing else)
  torch::Tensor transport;    ///< B: ∫½|∇Φ|² (zeros without costs)
  torch::Tensor hjb;          ///< B: HJB residual (zeros without costs)
  torch::Tensor terminal;     ///< scalar: Σ_{i valid} |Φ(y_i, T) − δM/δρ(y_i)| (undefined unless asked)
  std::int64_t valid = 0;     ///< rows in the sum
  std::int64_t invalid = 0;   ///< rows left out
};
/// What reverse_kl_term adds to the plain term: the stochastic flow's increments (noise_sample)
/// and the terminal residual (with the λ of the terminal cost).
struct ReverseKlExtras {
  torch::Tensor noise;       ///< steps × B × d (stochastic flows; undefined: none)
  bool terminal = false;     ///< compute ReverseKlTerm::terminal
  double lambda = 0.0;       ///< λ of M in δM/δρ
};
ReverseKlTerm reverse_kl_term(BoltzmannGenerator& model, const torch::Tensor& z, int steps, bool with_costs,
                              const Target& target, const EnergyCut& cut, const FlowSpaceMap* map,
                              EnergyCounters* counters, Execution exec = Execution::kParallel,
                              const ReverseKlExtras& extras = {});

/// Importance log-weights of generated flow-space samples (no gradient):
/// log w = −u(x(y)) + L(y) − log q_y(y) (−∞ at invalid rows or non-finite u); without a
/// map x = y, L = 0. Energies are evaluated at valid rows only. `invalid` (may be null)
/// receives the number of invalid rows.
Eigen::VectorXd flow_log_weights(const RowMatrix& y, const Eigen::VectorXd& log_q_y, const Target& target,
                                 const FlowSpaceMap* map, EnergyCounters* counters, std::size_t* invalid,
                                 Execution exec = Execution::kParallel);

struct TrainOptions {
  std::string preset = "ot-bg";  ///< row of the preset table (presets.hpp)
  LossWeights weights;           ///< resolved from preset + overrides
  int iterations = 1000;         ///< optimizer steps
  int warmup_iterations = 0;     ///< first steps with λ = 1 (forward KL only; needs data)
  int batch_size = 512;          ///< samples per KL term per step
  int chunk_size = 256;          ///< batch rows per oneTBB task (fixed: results independent of threads)
  double learning_rate = 5e-3;   ///< Adam initial learning rate
  double lr_final_ratio = 0.05;  ///< cosine schedule to learning_rate·ratio
  double clip_grad_norm = 10.0;  ///< global gradient-norm clip (≤ 0: none)
  EnergyCut energy_cut;          ///< lin-log cut of the reduced energy
  int eval_every = 100;          ///< running ESS every this many steps (0: never)
  int eval_samples = 2048;       ///< samples of the running ESS (an indicator only)
  int checkpoint_every = 0;      ///< steps between checkpoints (0: none)
  std::filesystem::path checkpoint;  ///< checkpoint file (required for checkpoint_every/resume)
  bool resume = false;           ///< continue from `checkpoint` when it exists
  /// What a checkpoint must match to be resumed (training_checkpoint.hpp; null: anything).
  nlohmann::json checkpoint_identity;
  int stop_after = 0;            ///< >0: return after this iteration (resumable; 0: run to the end)
  std::uint64_t seed = 0;        ///< mini-batch and base-draw seed
  bool progress = true;          ///< progress lines on stderr
  Execution exec = Execution::kParallel;  ///< target evaluations
  FusedMode fused = FusedMode::kAuto;     ///< forward-KL path (JSON "fused": "auto" | true | false)

  /// Reads the training keys of a "generator" section ("preset", "lambda",
  /// "alpha_transport", "alpha_hjb", "iterations", "batch_size", "learning_rate",
  /// "lr_final_ratio", "clip_grad_norm", "energy_cut": {"high", "max"}, "warmup_iterations",
  /// "eval_every", "eval_samples", "checkpoint_every", "chunk_size", "fused"); other keys are left to the caller.
  void read(JsonReader& r, bool have_data);
  void validate(bool have_data) const;
  nlohmann::json to_json() const;
};

/// What one optimizer step did: one entry of each TrainHistory curve and the step's
/// counters (returned by TrainingStep, appended by TrainHistory::append).
struct StepRecord {
  int iteration = 0;           ///< 0-based index of the step
  double loss = 0.0;           ///< J on the mini-batch (non-finite: the Adam step was skipped)
  double forward_kl = 0.0;     ///< (1/B) Σ −log q(x_b) on data (NaN: no data term in this step)
  double reverse_kl = 0.0;     ///< mean of log q + ũ − L over the valid draws, KL(q‖π) − log Z (NaN: none)
  double transport = 0.0;      ///< ∫½|∇Φ|² dt, batch means weighted λ : (1−λ) over the simulated paths
  double hjb = 0.0;            ///< HJB residual ∫|∂ₜΦ − ½|∇Φ|²| dt, weighted as `transport`
  double terminal = 0.0;       ///< terminal residual E_q|Φ(y, T) − δM/δρ| (0 when α₂ = 0)
  double grad_norm = 0.0;      ///< global gradient norm, before clipping
  double learning_rate = 0.0;  ///< Adam's learning rate in the step
  bool applied = false;        ///< the Adam step was taken (false: non-finite loss or gradient norm)
  std::size_t energy_evaluations = 0;  ///< target evaluations of the reverse-KL term
  std::size_t non_finite = 0;          ///< of those, non-finite energies
  std::size_t cut = 0;                 ///< of those, energies on the log branch of the cut
  std::size_t invalid = 0;             ///< reverse-KL draws outside the flow-space map's valid set
  double seconds = 0.0;                ///< wall time of the step
};

/// Per-iteration training curves and counters.
struct TrainHistory {
  std::vector<double> loss, forward_kl, reverse_kl, transport, hjb, terminal, grad_norm, learning_rate;
  std::vector<double> eval_iteration, eval_ess;  ///< running Kish ESS (normalized)
  std::vector<double> step_seconds;  ///< wall time of each optimizer step (this call only; not saved)
  int iterations_done = 0;
  std::size_t energy_evaluations = 0;
  std::size_t non_finite = 0;
  std::size_t cut = 0;
  std::size_t invalid = 0;  ///< reverse-KL draws outside the flow-space map's valid set
  double wall_seconds = 0.0;
  /// Appends the step's curve entries and adds its counters; iterations_done = iteration + 1.
  void append(const StepRecord& step);
  nlohmann::json to_json() const;
  static TrainHistory from_json(const nlohmann::json& j);
};

/// True when train() computes the forward-KL term of `model` by the fused path.
/// \throws ConfigError for FusedMode::kOn with an unsupported architecture (λ = 0 with
/// FusedMode::kOn is refused by TrainOptions::validate).
bool uses_fused_data_term(const BoltzmannGenerator& model, const TrainOptions& options);

/// Trains `model` in place. `data` (N×d, may be null when λ = 0) are samples of π
/// (in the flow space when a `map` is given: the reverse KL and the running ESS then
/// evaluate the target at x(y), see FlowSpaceMap). `data_weights` (N, may be null) are
/// importance weights of the data rows (need not be normalized): the forward-KL term is then
/// the weighted one, −Σ_i w̄_i log q(x_i), estimated by drawing mini-batch rows with
/// probability w̄_i (training_step.hpp; annealed_training.hpp uses it).
/// \throws ConfigError for invalid options, DomainError for data of the wrong shape or
/// invalid weights (wrong length, negative, non-finite, all zero).
TrainHistory train(BoltzmannGenerator& model, const Target& target, const RowMatrix* data,
                   const TrainOptions& options, const FlowSpaceMap* map = nullptr,
                   const Eigen::VectorXd* data_weights = nullptr);


}  // namespace boltzlab::generators
