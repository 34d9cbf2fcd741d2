#pragma once
/// \file presets.hpp
/// The trainer's loss presets: one table (presets.cpp), one row per game of the seed's
/// Table 3 that the trainer's objective (trainer.hpp)
///
///   J(θ) = λ·KL(π‖q_θ) + (1−λ)·KL(q_θ‖π) + α_L·E[∫½|∇Φ|² dt] + α_HJB·E[∫|∂ₜΦ − ½|∇Φ|²| dt]
///
/// can express: the terminal cost M(ρ) of the row picks λ (seed eq. 31), its running
/// cost L(x, v) = ½|v|² switches α_L on (eqs. 27, 85), and a ✓ in its "HJB Reg?" column
/// allows the residual regularizer of eq. 30 (α_HJB) and its terminal part α₂ (eq. 26,
/// `alpha_terminal`, trainer.hpp). The dynamics are the ODE dx = v dt with v = −∇Φ, or the
/// stochastic flow dx = v dt + σ dW of §6.3 (rows with a `noise` σ > 0, generator.hpp).
///
/// Score rows (family kScore) are the score-based games of Table 3 (Thm 4.1, Thm 4.3,
/// §6.1): M = −E_ρ log π, running cost ½|v|² − ∇·f, the noising SDE's dynamics; they are
/// trained by score matching with the HJB regularizer R₁ (score_matching.hpp: α₀, α₁, α₂,
/// p) and sampled by the reverse SDE or the probability-flow ODE (score_generator.hpp).
/// Bridge rows (family kBridge) are the Schrödinger bridges of §4.5 (eqs. 64–69): the bridge
/// from δ₀ to π with a Brownian reference, learned as a stochastic control on the energy with
/// exact path weights, and its generalized form with a mean-field interaction
/// (bridge_sampler.hpp).
///
/// A row holds the name, its Table 3 game and equations, a one-line description, the
/// game's M, I, L and dynamics as text, the weights (λ, α_L, α_HJB) and what happens without
/// data (NoDataRule), and for score rows the score-matching weights and sampler. Everything else
/// derives from the table: the lookup with "did you mean", the names, the error message,
/// and `bg-sample --help` (preset_help). The rows themselves are documented once, in
/// presets.cpp. Adding a preset = one row there + its test (tests/generators/test_presets.cpp).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "boltzlab/generators/score_generator.hpp"
#include "boltzlab/generators/score_matching.hpp"

namespace boltzlab::generators {

/// Loss ingredients of the objective above (the weights of one preset row).
struct LossWeights {
  double lambda = 0.5;            ///< λ ∈ [0, 1]: weight of KL(π‖q) (data) vs KL(q‖π) (energy)
  double alpha_transport = 0.01;  ///< α_L ≥ 0: running cost ½|v|² (0: canonical BG)
  double alpha_hjb = 0.05;        ///< α_HJB ≥ 0: HJB residual regularizer (eq. 30)
  double alpha_terminal = 0.0;    ///< α₂ ≥ 0: the HJB terminal condition (eq. 26, trainer.hpp)
  double epsilon = 0.0;           ///< ε > 0: the relaxed WGF game (relaxed_game.hpp); 0: not relaxed (ε = ∞)
  /// Weights of the named preset row (find_loss_preset(name).resolve(have_data)).
  /// \throws ConfigError for an unknown name ("did you mean", the known names).
  static LossWeights preset(const std::string& name, bool have_data);
  /// The preset names, sorted (the candidates of the "did you mean" suggestion).
  static std::vector<std::string> preset_names();
  /// \throws ConfigError unless λ ∈ [0, 1] and α_L, α_HJB, α₂, ε are finite and ≥ 0.
  void validate() const;
  nlohmann::json to_json() const;
};

/// What a preset's λ becomes when no data (samples of π) are given.
enum class NoDataRule {
  kKeep,           ///< λ as in the row; λ > 0 without data is then refused (TrainOptions::validate)
  kReverseKlOnly,  ///< λ falls back to 0: the reverse KL alone, trained on the energy
};

/// Which model and trainer a row uses.
enum class ModelFamily {
  kFlow,   ///< the OT-Flow CNF (generator.hpp, trainer.hpp)
  kScore,  ///< a score model (score_generator.hpp, score_matching.hpp)
  kBridge,  ///< a Schrödinger-bridge sampler (bridge_sampler.hpp), trained on the energy
};

/// The mean-field game of a row, as written in the seed's Table 3.
struct GameColumns {
  const char* terminal_cost;  ///< M(ρ)
  const char* interaction;    ///< I(ρ)
  const char* running_cost;   ///< L(x, v)
  const char* dynamics;
};

/// One row of the preset table.
struct LossPreset {
  const char* name;         ///< "preset" value in JSON and on the command line
  const char* game;         ///< the game's row in the seed's Table 3
  const char* equations;    ///< the seed's equations it implements
  const char* description;  ///< one line: what it trains and why it is there
  LossWeights weights;      ///< with data (flow rows)
  NoDataRule without_data;  ///< λ without data
  GameColumns columns;      ///< M, I, L, dynamics
  ModelFamily family = ModelFamily::kFlow;
  ScoreLossOptions score = {};                            ///< score rows: α₀, α₁, α₂, p
  ScoreSampler sampler = ScoreSampler::kProbabilityFlow;  ///< score rows: how samples are drawn
  double noise = 0.0;  ///< flow rows: the default σ of the dynamics (generator.noise overrides)
  bool free_velocity = false;  ///< flow rows: a free-form velocity (generator.velocity overrides)
  double bridge_interaction = 0.0;  ///< bridge rows: α of I(x, ρ) (generator.bridge.alpha_interaction overrides)
  /// The row's weights for a run with or without data.
  LossWeights resolve(bool have_data) const;
};

/// The table, in the order of the seed's Table 3.
const std::vector<LossPreset>& loss_presets();

/// The row named `name`. \throws ConfigError "generator.preset: unknown preset 'otbg'
/// (did you mean 'ot-bg'?); known: cnf, ot-flow, …".
const LossPreset& find_loss_preset(const std::string& name);

/// Help text of a `--preset` option: one line per row (name, weights, no-data rule,
/// Table 3 game, equations, description), built from the table.
std::string preset_help();

}  // namespace boltzlab::generators
