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
  static const GameColumns kBgGame = {"lambda KL(pi|rho) + (1-lambda) KL(rho|pi)", "0", "0", "dx = v dt"};
  static const GameColumns kSgmGame = {"-E_rho log pi", "0", "|v|^2/2 - div f", "dx = (f + sigma v) dt + sigma dW"};
  static const std::vector<LossPreset> table = {
      {"cnf", "Continuous normalizing flow", "eq. 17 with L = 0",
       "maximum likelihood on data (forward KL only); ill-posed without structure (Sec. 3.2)",
       {1.0, 0.0, 0.0}, NoDataRule::kKeep, {"KL(pi|rho)", "0", "0", "dx = v dt"}},
      {"ot-flow", "OT-Flow", "eq. 27 + HJB eq. 30",
       "forward KL + transport + HJB residual; Onken et al.'s alpha (L, NLL, R) = (1, 100, 5) / 100",
       {1.0, 0.01, 0.05}, NoDataRule::kKeep, {"KL(pi|rho)", "0", "|v|^2/2", "dx = v dt"}},
      {"bg", "Boltzmann generator", "eq. 32, terminal cost eq. 31",
       "forward KL (data) and reverse KL (energy) half and half, no running cost",
       {0.5, 0.0, 0.0}, NoDataRule::kReverseKlOnly, kBgGame},
      {"ot-bg", "OT-Boltzmann generator", "eq. 85 + HJB eq. 30",
       "the BG game with the transport cost that makes v = -grad Phi optimal, + HJB residual",
       {0.5, 0.01, 0.05}, NoDataRule::kReverseKlOnly,
       {kBgGame.terminal_cost, "0", "|v|^2/2", "dx = v dt"}},
      {"ot-rkl", "Generalized OT-Flow, relaxed WGF at eps -> infinity", "eq. 90 with F = KL(rho|pi) + HJB eq. 30",
       "reverse KL + transport + HJB even given data (then only to standardize, fit the base, warm up): "
       "OT-BG at lambda 0",
       {0.0, 0.01, 0.05}, NoDataRule::kKeep, {"F(rho) e^(-T/eps), F = KL(rho|pi)", "0", "|v|^2/2", "dx = v dt"}},
      {"free-cnf", "Continuous normalizing flow, free-form velocity", "eq. 17 with L = 0, Cor. 3.1",
       "the canonical CNF: an MLP velocity v(x, t) with exact divergence, maximum likelihood on data; ill-posed "
       "without bounded velocities (Cor. 3.1: generator.velocity_bound)",
       {1.0, 0.0, 0.0}, NoDataRule::kKeep, {"KL(pi|rho)", "0", "0", "dx = v dt"},
       ModelFamily::kFlow, {}, ScoreSampler::kProbabilityFlow, 0.0, true},
      {"free-bg", "Boltzmann generator, free-form velocity", "eq. 32, terminal cost eq. 31",
       "the canonical BG: an MLP velocity, forward and reverse KL half and half (reverse KL alone without data)",
       {0.5, 0.0, 0.0}, NoDataRule::kReverseKlOnly, {kBgGame.terminal_cost, "0", "0", "dx = v dt"},
       ModelFamily::kFlow, {}, ScoreSampler::kProbabilityFlow, 0.0, true},
      {"wgf", "Wasserstein gradient flow of KL(rho|pi) as the eps -> 0 game", "Thm 5.1, eqs. 70, 78-79",
       "the relaxed game at eps 0.1: the HJB in relaxation form drives Phi to log rho_t + u, so the learned flow "
       "tracks the KL gradient flow (the particle version: wgf-relax --flow ula); resolve eps with steps",
       {0.0, 1.0, 0.05, 0.0, 0.1}, NoDataRule::kKeep,
       {"F(rho) e^(-T/eps), F = KL(rho|pi)", "F(rho) e^(-t/eps) / eps", "e^(-t/eps) |v|^2/2", "dx = v dt"}},
      {"relaxed-wgf", "Generalized OT-Flow, relaxed WGF at finite eps", "Thm 5.1, eqs. 70, 78; Sec. 6.5",
       "KL(rho_t|pi) along the whole path weighted e^(-t/eps)/eps, running cost e^(-t/eps)|v|^2/2, HJB in "
       "relaxation form (eq. 78); eps (generator.epsilon) interpolates the KL gradient flow (eps -> 0) and ot-rkl",
       {0.0, 1.0, 0.05, 0.0, 1.0}, NoDataRule::kKeep,
       {"F(rho) e^(-T/eps), F = KL(rho|pi)", "F(rho) e^(-t/eps) / eps", "e^(-t/eps) |v|^2/2", "dx = v dt"}},
      {"stochastic-ot-nf", "Stochastic OT normalizing flow", "Sec. 6.3, eqs. 86-87 + HJB",
       "OT-Flow with Brownian noise sigma 0.2 (generator.noise): path-space KL of a stochastic normalizing flow, "
       "HJB residual with (sigma^2/2) Laplacian; samples carry unbiased path weights",
       {1.0, 0.01, 0.05}, NoDataRule::kReverseKlOnly, {"KL(pi|rho)", "0", "|v|^2/2", "dx = v dt + sigma dW"},
       ModelFamily::kFlow, {}, ScoreSampler::kProbabilityFlow, 0.2},
      {"sgm", "Score-based generative modeling", "Thm 4.1, eqs. 35, 37",
       "implicit score matching on data; samples by the reverse SDE (no density: no reweighting)",
       {1.0, 0.0, 0.0}, NoDataRule::kKeep, kSgmGame, ModelFamily::kScore,
       {ScoreObjective::kImplicit, ScoreWeighting::kDiffusion, 1.0, 0.0, 0.0, 2}, ScoreSampler::kReverseSde},
      {"score-flow", "Score-based probability flow", "Thm 4.3, eqs. 54-55, 37",
       "the same score model sampled by the probability-flow ODE: samples with exact log q, reweighted to pi",
       {1.0, 0.0, 0.0}, NoDataRule::kKeep,
       {"-E_rho log pi / 2", "E_rho |sigma grad log rho|^2 / 8", "|v|^2/2 - div f / 2", "dx = (f + sigma v) dt"},
       ModelFamily::kScore, {ScoreObjective::kImplicit, ScoreWeighting::kDiffusion, 1.0, 0.0, 0.0, 2},
       ScoreSampler::kProbabilityFlow},
      {"hjb-sgm", "HJB-regularized SGM", "eqs. 82-83, 92-93 (Sec. 6.1, 7)",
       "implicit score matching + the gradient-HJB residual R1 (alpha1 1, p 2); reverse-SDE samples",
       {1.0, 0.0, 0.0}, NoDataRule::kKeep, kSgmGame, ModelFamily::kScore,
       {ScoreObjective::kImplicit, ScoreWeighting::kDiffusion, 1.0, 1.0, 0.0, 2}, ScoreSampler::kReverseSde},
      {"sgm-pinn", "HJB-regularized SGM, PINN case alpha0 = 0", "eq. 93 with alpha0 = 0 (Sec. 7.1)",
       "the HJB residual and its terminal condition alone, no score matching; reverse-SDE samples",
       {1.0, 0.0, 0.0}, NoDataRule::kKeep, kSgmGame, ModelFamily::kScore,
       {ScoreObjective::kImplicit, ScoreWeighting::kDiffusion, 0.0, 1.0, 1.0, 2}, ScoreSampler::kReverseSde},
      {"schrodinger-bridge", "Schrodinger bridge", "Sec. 4.5, eqs. 64-69",
       "the bridge from delta_0 to pi with the Brownian reference sigma W (the Schrodinger-Follmer process), "
       "learned as a stochastic control on the energy alone (path integral sampler) with the KL penalty as "
       "terminal cost; v = -grad Phi; exact path weights",
       {0.0, 1.0, 0.0}, NoDataRule::kKeep,
       {"rho_T = pi (KL penalty)", "0", "|v|^2/2", "dx = sigma v dt + sigma dW, x(0) = 0"}, ModelFamily::kBridge},
      {"generalized-sb", "Generalized Schrodinger bridge", "Sec. 4.5, eqs. 67-69 with I != 0",
       "the bridge with the mean-field repulsion alpha E_rho exp(-|x-y|^2/(2 l^2)) in the running cost "
       "(generator.bridge.alpha_interaction 1, interaction_length l): it spreads the training paths against "
       "mode collapse; the weights stay the plain bridge's, exact",
       {0.0, 1.0, 0.0}, NoDataRule::kKeep,
       {"rho_T = pi (KL penalty)", "alpha E_rho exp(-|x-y|^2/(2 l^2))", "|v|^2/2",
        "dx = sigma v dt + sigma dW, x(0) = 0"},
       ModelFamily::kBridge, {}, ScoreSampler::kProbabilityFlow, 0.0, false, 1.0},
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

namespace {
std::string format_g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
}  // namespace

std::string preset_help() {
  std::string out =
      "override generator.preset: the weights of one game of Table 3 of Zhang & Katsoulakis, \"A mean-field\n"
      "games laboratory for generative modeling\" (equations numbered as there) in the training loss\n"
      "J = lambda KL(pi|q) + (1-lambda) KL(q|pi) + alpha_transport E int |v|^2/2 dt + alpha_hjb E int |HJB residual| dt\n"
      "+ alpha_terminal E_q |Phi(T) - dM/drho| (flow rows; generator.noise sigma > 0: the stochastic flow), or J = alpha0 (implicit score matching) + alpha1 (gradient-HJB residual, power p) + alpha2\n"
      "(terminal condition) (score rows; trained on data, keys under generator.score), or the path KL of a\n"
      "Schrodinger bridge (bridge rows; trained on the energy, keys under generator.bridge):";
  for (const auto& p : loss_presets()) {
    char weights[160];
    std::string data_rule;
    if (p.family == ModelFamily::kScore) {
      std::snprintf(weights, sizeof weights, "score model, alpha0 %g, alpha1 %g, alpha2 %g, p %d, %s",
                    p.score.alpha0, p.score.alpha1, p.score.alpha2, p.score.p,
                    p.sampler == ScoreSampler::kReverseSde ? "reverse SDE" : "probability flow");
      data_rule = "; needs data";
    } else if (p.family == ModelFamily::kBridge) {
      std::snprintf(weights, sizeof weights, "bridge sampler, alpha_interaction %g; energy only (keys under "
                    "generator.bridge)", p.bridge_interaction);
    } else {
      std::snprintf(weights, sizeof weights, "lambda %g, alpha_transport %g, alpha_hjb %g%s%s%s", p.weights.lambda,
                    p.weights.alpha_transport, p.weights.alpha_hjb, p.free_velocity ? ", free velocity" : "",
                    p.noise > 0.0 ? (", noise " + format_g(p.noise)).c_str() : "",
                    p.weights.epsilon > 0.0 ? (", epsilon " + format_g(p.weights.epsilon)).c_str() : "");
      if (p.without_data == NoDataRule::kReverseKlOnly) data_rule = "; without data lambda 0";
      else if (p.weights.lambda > 0.0) data_rule = "; needs data";
    }
    out += "\n" + std::string(p.name) + ": " + weights + data_rule + "\n  " + p.game + " (" + p.equations +
           "): " + p.description + "\n  M = " + p.columns.terminal_cost + ", I = " + p.columns.interaction +
           ", L = " + p.columns.running_cost + ", " + p.columns.dynamics;
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
  if (!(alpha_terminal >= 0.0) || !std::isfinite(alpha_terminal))
    throw ConfigError("generator.alpha_terminal must be finite and >= 0");
  if (!(epsilon >= 0.0) || !std::isfinite(epsilon))
    throw ConfigError("generator.epsilon is " + std::to_string(epsilon) +
                      ", but must be finite and > 0 (the relaxed game) or 0 (not relaxed)");
}

nlohmann::json LossWeights::to_json() const {
  return {{"lambda", lambda},
          {"alpha_transport", alpha_transport},
          {"alpha_hjb", alpha_hjb},
          {"alpha_terminal", alpha_terminal},
          {"epsilon", epsilon}};
}

}  // namespace boltzlab::generators
