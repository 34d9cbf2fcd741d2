#pragma once
/// \file game_spec.hpp
/// The mean-field game of a flow run as one object, in the terms of the seed paper's eq. 11
/// and Table 3 (M terminal cost, I interaction, L running cost, dynamics, HJB regularizers):
///
///   "game": {
///     "terminal_cost": {"lambda": λ},            M = λ·KL(π‖ρ) + (1−λ)·KL(ρ‖π)
///     "interaction":   {"epsilon": ε},           I = (e^{−t/ε}/ε)·KL(ρ_t‖π), M and L weighted
///                                                e^{−T/ε}, e^{−t/ε} (relaxed_game.hpp; 0: I = 0)
///     "running_cost":  {"alpha_transport": α_L}, L = α_L·½|v|²
///     "dynamics":      {"velocity": "gradient" | "free", "noise": σ, "velocity_bound": c},
///                                                dx = v dt + σ dW, v = −∇Φ or free with |v| ≤ c
///     "regularizers":  {"alpha_hjb": α_HJB, "alpha_terminal": α₂}   (eqs. 26, 30, 78)
///   }
///
/// Every flow row of the preset table is a named instance of it (GameSpec::of); a "game"
/// object in a potential file's generator section overrides the preset's terms key by key,
/// and the run trains through the same code path as the preset. The same terms may also be
/// given as the section's top-level keys (`lambda`, `epsilon`, `noise`, …), but not both.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/presets.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab::generators {

struct GameSpec {
  LossWeights weights;         ///< λ, α_L, α_HJB, α₂, ε
  double noise = 0.0;          ///< σ
  bool free_velocity = false;  ///< v free instead of −∇Φ
  double velocity_bound = 0.0; ///< c (free velocities)

  /// The game of given loss weights and model options.
  static GameSpec of(const LossWeights& weights, const GeneratorOptions& model);
  /// The game of a flow row of the preset table (with or without data).
  static GameSpec of(const LossPreset& row, bool have_data);
  /// Overrides the terms present in `game` (the object above); unknown sections and keys are
  /// refused with a suggestion. \throws ConfigError naming the key.
  void read(JsonReader& game);
  /// Writes the terms into the trainer's weights and the model's options.
  void apply(LossWeights& weights, GeneratorOptions& model) const;
  nlohmann::json to_json() const;
  /// The top-level generator keys that spell the same terms (refused beside a "game" object).
  static const std::vector<std::string>& flat_keys();
};

}  // namespace boltzlab::generators
