#include "boltzlab/generators/presets.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab::generators {

// The preset table: one row per game of the seed's Table 3 (in its order). Each row is
// documented here and only here: `bg-sample --help` prints these strings.
const std::vector<LossPreset>& loss_presets() {
  static const std::vector<LossPreset> table = {
      {"cnf", "Continuous normalizing flow", "eq. 17 with L = 0",
       "maximum likelihood on data (forward KL only); ill-posed without structure (Sec. 3.2)",
       {1.0, 0.0, 0.0}, NoDataRule::kKeep},
      {"ot-flow", "OT-Flow", "eq. 27 + HJB eq. 30",
       "forward KL + transport + HJB residual; Onken et al.'s alpha (L, NLL, R) = (1, 100, 5) / 100",
       {1.0, 0.01, 0.05}, NoDataRule::kKeep},
      {"bg", "Boltzmann generator", "eq. 32, terminal cost eq. 31",
       "forward KL (data) and reverse KL (energy) half and half, no running cost",
       {0.5, 0.0, 0.0}, NoDataRule::kReverseKlOnly},
      {"ot-bg", "OT-Boltzmann generator", "eq. 85 + HJB eq. 30",
       "the BG game with the transport cost that makes v = -grad Phi optimal, + HJB residual",
       {0.5, 0.01, 0.05}, NoDataRule::kReverseKlOnly},
      {"ot-rkl", "Generalized OT-Flow, relaxed WGF at eps -> infinity", "eq. 90 with F = KL(rho|pi) + HJB eq. 30",
       "reverse KL + transport + HJB even given data (then only to standardize, fit the base, warm up): "
       "OT-BG at lambda 0",
       {0.0, 0.01, 0.05}, NoDataRule::kKeep},
  };
  return table;
}

LossWeights LossPreset::resolve(bool have_data) const {
  LossWeights w = weights;
  if (!have_data && without_data == NoDataRule::kReverseKlOnly) w.lambda = 0.0;
  return w;
}

const LossPreset& find_loss_preset(const std::string& name) {
  const auto& table = loss_presets();
  const auto row = std::find_if(table.begin(), table.end(), [&](const LossPreset& p) { return name == p.name; });
  if (row != table.end()) return *row;
  std::string msg = "generator.preset: unknown preset '" + name + "'";
  const auto guess = closest_key(name, LossWeights::preset_names());
  if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
  std::string known;
  for (const auto& p : table) known += (known.empty() ? "" : ", ") + std::string(p.name);
  throw ConfigError(msg + "; known: " + known);
}

std::string preset_help() {
  std::string out =
      "override generator.preset: the weights of one game of Table 3 of Zhang & Katsoulakis, \"A mean-field\n"
      "games laboratory for generative modeling\" (equations numbered as there) in the training loss\n"
      "J = lambda KL(pi|q) + (1-lambda) KL(q|pi) + alpha_transport E int |v|^2/2 dt + alpha_hjb E int |HJB residual| dt:";
  for (const auto& p : loss_presets()) {
    char weights[160];
    std::snprintf(weights, sizeof weights, "lambda %g, alpha_transport %g, alpha_hjb %g", p.weights.lambda,
                  p.weights.alpha_transport, p.weights.alpha_hjb);
    std::string data_rule;
    if (p.without_data == NoDataRule::kReverseKlOnly) data_rule = "; without data lambda 0";
    else if (p.weights.lambda > 0.0) data_rule = "; needs data";
    out += "\n" + std::string(p.name) + ": " + weights + data_rule + "\n  " + p.game + " (" + p.equations +
           "): " + p.description;
  }
  return out;
}

LossWeights LossWeights::preset(const std::string& name, bool have_data) {
  return find_loss_preset(name).resolve(have_data);
}

std::vector<std::string> LossWeights::preset_names() {
  std::vector<std::string> names;
  for (const auto& p : loss_presets()) names.emplace_back(p.name);
  std::sort(names.begin(), names.end());
  return names;
}

void LossWeights::validate() const {
  if (!(lambda >= 0.0 && lambda <= 1.0))
    throw ConfigError("generator.lambda is " + std::to_string(lambda) + ", but must be in [0, 1]");
  if (!(alpha_transport >= 0.0) || !std::isfinite(alpha_transport))
    throw ConfigError("generator.alpha_transport must be finite and >= 0");
  if (!(alpha_hjb >= 0.0) || !std::isfinite(alpha_hjb))
    throw ConfigError("generator.alpha_hjb must be finite and >= 0");
}

nlohmann::json LossWeights::to_json() const {
  return {{"lambda", lambda}, {"alpha_transport", alpha_transport}, {"alpha_hjb", alpha_hjb}};
}

}  // namespace boltzlab::generators
