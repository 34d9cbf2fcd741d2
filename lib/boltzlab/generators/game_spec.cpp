#include "boltzlab/generators/game_spec.hpp"

namespace boltzlab::generators {

GameSpec GameSpec::of(const LossWeights& weights, const GeneratorOptions& model) {
  GameSpec g;
  g.weights = weights;
  g.noise = model.noise;
  g.free_velocity = model.free_velocity;
  g.velocity_bound = model.velocity_bound;
  return g;
}

GameSpec GameSpec::of(const LossPreset& row, bool have_data) {
  GameSpec g;
  g.weights = row.resolve(have_data);
  g.noise = row.noise;
  g.free_velocity = row.free_velocity;
  return g;
}

void GameSpec::read(JsonReader& game) {
  auto section = [&game](const char* key, auto&& body) {
    if (!game.has(key)) return;
    const Json& j = game.get_json(key);
    if (!j.is_object()) game.fail(key, "must be an object");
    JsonReader r(j, game.context_of(key));
    body(r);
    r.finish();
  };
  section("terminal_cost", [this](JsonReader& r) { weights.lambda = r.get_double("lambda", weights.lambda); });
  section("interaction", [this](JsonReader& r) { weights.epsilon = r.get_double("epsilon", weights.epsilon); });
  section("running_cost",
          [this](JsonReader& r) { weights.alpha_transport = r.get_double("alpha_transport", weights.alpha_transport); });
  section("dynamics", [this](JsonReader& r) {
    GeneratorOptions m;  // the velocity keys through the generator section's reader
    m.free_velocity = free_velocity;
    m.velocity_bound = velocity_bound;
    if (r.has("velocity_hidden")) r.fail("velocity_hidden", "is an architecture key: give it in the generator section");
    read_velocity_options(r, m);
    free_velocity = m.free_velocity;
    velocity_bound = m.velocity_bound;
    noise = r.get_double("noise", noise);
  });
  section("regularizers", [this](JsonReader& r) {
    weights.alpha_hjb = r.get_double("alpha_hjb", weights.alpha_hjb);
    weights.alpha_terminal = r.get_double("alpha_terminal", weights.alpha_terminal);
  });
  game.finish();
}

void GameSpec::apply(LossWeights& w, GeneratorOptions& model) const {
  w = weights;
  model.noise = noise;
  model.free_velocity = free_velocity;
  model.velocity_bound = velocity_bound;
}

nlohmann::json GameSpec::to_json() const {
  return {{"terminal_cost", {{"lambda", weights.lambda}}},
          {"interaction", {{"epsilon", weights.epsilon}}},
          {"running_cost", {{"alpha_transport", weights.alpha_transport}}},
          {"dynamics", {{"velocity", free_velocity ? "free" : "gradient"}, {"noise", noise}, {"velocity_bound", velocity_bound}}},
          {"regularizers", {{"alpha_hjb", weights.alpha_hjb}, {"alpha_terminal", weights.alpha_terminal}}}};
}

const std::vector<std::string>& GameSpec::flat_keys() {
  static const std::vector<std::string> keys = {"lambda", "epsilon", "alpha_transport", "velocity",
                                                "noise", "velocity_bound", "alpha_hjb", "alpha_terminal"};
  return keys;
}

}  // namespace boltzlab::generators
