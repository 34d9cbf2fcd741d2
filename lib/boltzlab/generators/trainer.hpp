#pragma once
/// \file trainer.hpp
/// Training of the OT-Boltzmann generator: the potential MFG of seed paper eq. 85
/// with the BG terminal cost of eq. 31 and the HJB regularizer of eq. 30,
///
///   J(θ) = λ·KL(π‖q_θ) + (1−λ)·KL(q_θ‖π) + α_L·E[∫½|∇Φ|² dt] + α_HJB·E[∫|∂ₜΦ − ½|∇Φ|²| dt],
///
/// estimated on mini-batches: the forward KL (up to the constant E_π log π) as the
/// NLL −log q(x) of data x ~ π integrated target → base; the reverse KL (up to
/// log Z) as E_z[log q(x(z)) + ũ(x(z))] with z ~ ρ₀ integrated base → target and ũ
/// the lin-log-cut energy through the target bridge. The path costs are averaged
/// over whichever trajectories are simulated, weighted λ : (1−λ).
///
/// Presets = rows of Table 3 of the seed (one code path, JSON-selectable):
///   "cnf"      λ = 1,   α_L = 0,    α_HJB = 0      canonical CNF (max. likelihood)
///   "ot-flow"  λ = 1,   α_L = 0.01, α_HJB = 0.05   OT-Flow (Onken et al.: α = (1, 100, 5)
///                                                   for (L, NLL, R), divided by 100)
///   "bg"       λ = ½,   α_L = 0,    α_HJB = 0      canonical Boltzmann generator (eq. 32)
///   "ot-bg"    λ = ½,   α_L = 0.01, α_HJB = 0.05   OT-Boltzmann generator (eq. 85 + eq. 30)
/// Without data, "bg" and "ot-bg" fall back to λ = 0 (reverse KL only); an explicit
/// λ > 0 without data is a ConfigError. Any explicit key overrides the preset.
///
/// Forward-KL term: by LibTorch autograd through cnf.hpp, or by the hand-fused
/// loss + RK4 adjoint of fused_otflow.hpp (same discrete gradient, ≈ 5× faster;
/// "fused": "auto" | true | false, see FusedMode). In a mixed loss (0 < λ < 1) the
/// fused data-term gradient, times λ, is added to the autograd reverse-KL gradient.
///
/// Stability: lin-log energy cut (target_bridge.hpp), global gradient-norm clipping,
/// Adam with a cosine learning-rate schedule, checkpoints (model + Adam state +
/// history) every `checkpoint_every` iterations, resumable.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/target_bridge.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab::generators {

/// Loss ingredients (one row of Table 3).
struct LossWeights {
  double lambda = 0.5;            ///< λ ∈ [0, 1]: weight of KL(π‖q) (data) vs KL(q‖π) (energy)
  double alpha_transport = 0.01;  ///< α_L ≥ 0: running cost ½|v|² (0: canonical BG)
  double alpha_hjb = 0.05;        ///< α_HJB ≥ 0: HJB residual regularizer
  /// Weights of a named preset. \throws ConfigError for an unknown name.
  static LossWeights preset(const std::string& name, bool have_data);
  static std::vector<std::string> preset_names();
  void validate() const;
  nlohmann::json to_json() const;
};

/// Which path computes the forward-KL (data) term and its gradient.
///   kAuto: the fused path when fused_otflow_supports() the architecture (nTh = 2, no
///          particles) and λ > 0; autograd otherwise.
///   kOn:   the fused path; a ConfigError when unsupported or λ = 0.
///   kOff:  always autograd.
enum class FusedMode { kAuto, kOn, kOff };

struct TrainOptions {
  std::string preset = "ot-bg";  ///< row of Table 3 (see above)
  LossWeights weights;           ///< resolved from preset + overrides
  int iterations = 1000;         ///< optimizer steps
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
  int stop_after = 0;            ///< >0: return after this iteration (resumable; 0: run to the end)
  std::uint64_t seed = 0;        ///< mini-batch and base-draw seed
  bool progress = true;          ///< progress lines on stderr
  Execution exec = Execution::kParallel;  ///< target evaluations
  FusedMode fused = FusedMode::kAuto;     ///< forward-KL path (JSON "fused": "auto" | true | false)

  /// Reads the training keys of a "generator" section ("preset", "lambda",
  /// "alpha_transport", "alpha_hjb", "iterations", "batch_size", "learning_rate",
  /// "lr_final_ratio", "clip_grad_norm", "energy_cut": {"high", "max"},
  /// "eval_every", "eval_samples", "checkpoint_every", "chunk_size", "fused"); other keys are left to the caller.
  void read(JsonReader& r, bool have_data);
  void validate(bool have_data) const;
  nlohmann::json to_json() const;
};

/// Per-iteration training curves and counters.
struct TrainHistory {
  std::vector<double> loss, forward_kl, reverse_kl, transport, hjb, grad_norm, learning_rate;
  std::vector<double> eval_iteration, eval_ess;  ///< running Kish ESS (normalized)
  std::vector<double> step_seconds;  ///< wall time of each optimizer step (this call only; not saved)
  int iterations_done = 0;
  std::size_t energy_evaluations = 0;
  std::size_t non_finite = 0;
  std::size_t cut = 0;
  double wall_seconds = 0.0;
  nlohmann::json to_json() const;
  static TrainHistory from_json(const nlohmann::json& j);
};

/// True when train() computes the forward-KL term of `model` by the fused path.
/// \throws ConfigError for FusedMode::kOn with an unsupported architecture or λ = 0.
bool uses_fused_data_term(const BoltzmannGenerator& model, const TrainOptions& options);

/// Trains `model` in place. `data` (N×d, may be null when λ = 0) are samples of π.
/// \throws ConfigError for invalid options, DomainError for data of the wrong shape.
TrainHistory train(BoltzmannGenerator& model, const Target& target, const RowMatrix* data,
                   const TrainOptions& options);


}  // namespace boltzlab::generators
