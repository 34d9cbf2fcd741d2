// The loss-preset table (generators/presets.*): the weights of every row, the no-data
// rule, the lookup with "did you mean", and that names, errors, TrainOptions::read and
// the --preset help all derive from the table.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "support/torch_doctest.hpp"

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/generators/presets.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/targets/gaussian.hpp"

namespace bg = boltzlab::generators;

namespace {

struct Expected {
  std::string name;
  double lambda, alpha_transport, alpha_hjb;
  double lambda_without_data;
  bool score = false;                        // a score row: α₀, α₁, α₂, p and the sampler below
  double alpha0 = 0, alpha1 = 0, alpha2 = 0;
  int p = 2;
  bool probability_flow = false;
  double noise = 0.0;  // flow rows: σ of the stochastic dynamics (0: the ODE)
  bool free_velocity = false;  // flow rows: a free-form MLP velocity instead of −∇Φ
};

// The rows as documented in the seed's Table 3 terms (presets.cpp): λ of the terminal
// cost (eq. 31), α_L of the running cost ½|v|², α_HJB of the regularizer (eq. 30).
const std::vector<Expected>& expected_rows() {
  static const std::vector<Expected> rows = {
      {"cnf", 1.0, 0.0, 0.0, 1.0},         // eq. 17, L = 0
      {"ot-flow", 1.0, 0.01, 0.05, 1.0},   // eq. 27 + eq. 30
      {"bg", 0.5, 0.0, 0.0, 0.0},          // eq. 32
      {"ot-bg", 0.5, 0.01, 0.05, 0.0},     // eq. 85 + eq. 30
      {"ot-rkl", 0.0, 0.01, 0.05, 0.0},    // eq. 90 with F = KL(ρ‖π) + eq. 30
      // The canonical CNF and BG (eqs. 17, 32) with a free-form velocity; no potential, so no HJB.
      {"free-cnf", 1.0, 0.0, 0.0, 1.0, false, 0, 0, 0, 2, false, 0.0, true},
      {"free-bg", 0.5, 0.0, 0.0, 0.0, false, 0, 0, 0, 2, false, 0.0, true},
      // eqs. 70, 78-79: the relaxed game at ε = 0.1, the gradient-flow end of Table 3.
      {"wgf", 0.0, 1.0, 0.05, 0.0},
      // eqs. 70, 78: the relaxed game at ε = 1 (weights in relaxed_game.hpp), α_L = 1 (the
      // game's running cost), α_HJB = 0.05 (the relaxation-form residual).
      {"relaxed-wgf", 0.0, 1.0, 0.05, 0.0},
      // eq. 86: M = KL(π‖ρ), L = ½|v|², dx = v dt + σ dW (+ HJB); energy only without data.
      {"stochastic-ot-nf", 1.0, 0.01, 0.05, 0.0, false, 0.0, 0.0, 0.0, 2, false, 0.2},
      // Score rows: implicit score matching (eq. 37) + α₁ R₁ + α₂ terminal (eq. 93).
      {"sgm", 1.0, 0.0, 0.0, 1.0, true, 1.0, 0.0, 0.0, 2, false},         // Thm 4.1, reverse SDE
      {"score-flow", 1.0, 0.0, 0.0, 1.0, true, 1.0, 0.0, 0.0, 2, true},   // Thm 4.3, PF-ODE
      {"hjb-sgm", 1.0, 0.0, 0.0, 1.0, true, 1.0, 1.0, 0.0, 2, false},     // Sec. 6.1, 7
      {"sgm-pinn", 1.0, 0.0, 0.0, 1.0, true, 0.0, 1.0, 1.0, 2, false},    // Sec. 7.1, α₀ = 0
      // Bridge rows (Sec. 4.5): the path KL of the bridge from δ₀, running cost ½|v|² at weight 1.
      {"schrodinger-bridge", 0.0, 1.0, 0.0, 0.0},
      {"generalized-sb", 0.0, 1.0, 0.0, 0.0},
  };
  return rows;
}

}  // namespace

TEST_CASE("presets: every row has the weights of its Table 3 game, with and without data") {
  const auto& table = bg::loss_presets();
  REQUIRE(table.size() == expected_rows().size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto& e = expected_rows()[i];
    const auto& row = table[i];
    INFO("preset " << e.name);
    CHECK(row.name == e.name);  // table order = the order of Table 3
    for (const bool have_data : {true, false}) {
      const bg::LossWeights w = bg::LossWeights::preset(e.name, have_data);
      CHECK(w.lambda == (have_data ? e.lambda : e.lambda_without_data));
      CHECK(w.alpha_transport == e.alpha_transport);
      CHECK(w.alpha_hjb == e.alpha_hjb);
      CHECK(w.epsilon == (e.name == "relaxed-wgf" ? 1.0 : e.name == "wgf" ? 0.1 : 0.0));  // the relaxed games' ε
      w.validate();
    }
    CHECK(std::string(row.game).size() > 0);
    CHECK(std::string(row.equations).find("eq") != std::string::npos);
    CHECK(std::string(row.description).size() > 20);
    for (const char* column : {row.columns.terminal_cost, row.columns.interaction, row.columns.running_cost})
      CHECK(std::string(column).size() > 0);
    CHECK(std::string(row.columns.dynamics).rfind("dx = ", 0) == 0);
    CHECK((row.family == bg::ModelFamily::kScore) == e.score);
    CHECK(row.noise == e.noise);
    CHECK(row.free_velocity == e.free_velocity);
    const bool bridge = row.family == bg::ModelFamily::kBridge;
    CHECK(bridge == (e.name == "schrodinger-bridge" || e.name == "generalized-sb"));
    if (bridge) {
      // Stochastic dynamics; an interaction only in the generalized bridge.
      CHECK(std::string(row.columns.dynamics).find("dW") != std::string::npos);
      CHECK((row.bridge_interaction > 0.0) == (e.name == "generalized-sb"));
      CHECK((std::string(row.columns.interaction) != "0") == (e.name == "generalized-sb"));
    }
    if (!e.score && !bridge)
      CHECK((std::string(row.columns.dynamics).find("dW") != std::string::npos) == (e.noise > 0.0));
    if (e.score) {
      CHECK(row.score.alpha0 == e.alpha0);
      CHECK(row.score.alpha1 == e.alpha1);
      CHECK(row.score.alpha2 == e.alpha2);
      CHECK(row.score.p == e.p);
      CHECK((row.sampler == bg::ScoreSampler::kProbabilityFlow) == e.probability_flow);
      CHECK_NOTHROW(row.score.validate());
      // Stochastic dynamics for the SDE rows, an ODE for the probability flow.
      CHECK((std::string(row.columns.dynamics).find("dW") != std::string::npos) == !e.probability_flow);
    }
  }
}

TEST_CASE("presets: without data a row keeps λ (refused when > 0) or falls back to the reverse KL") {
  for (const auto& row : bg::loss_presets()) {
    INFO("preset " << row.name);
    nlohmann::json j = {{"preset", row.name}};
    boltzlab::JsonReader r(j, "pot.json: generator");
    bg::TrainOptions t;
    t.read(r, false);
    r.finish();
    CHECK(t.preset == row.name);
    if (row.without_data == bg::NoDataRule::kReverseKlOnly || row.weights.lambda == 0.0) {
      CHECK(t.weights.lambda == 0.0);
      CHECK_NOTHROW(t.validate(false));
    } else {
      CHECK(t.weights.lambda == row.weights.lambda);
      CHECK_THROWS_WITH_AS(t.validate(false), doctest::Contains("no data"), boltzlab::ConfigError);
    }
  }
}

TEST_CASE("presets: an explicit key overrides the row") {
  nlohmann::json j = {{"preset", "ot-flow"}, {"alpha_hjb", 0.0}, {"lambda", 0.25}};
  boltzlab::JsonReader r(j, "pot.json: generator");
  bg::TrainOptions t;
  t.read(r, true);
  r.finish();
  CHECK(t.weights.lambda == 0.25);
  CHECK(t.weights.alpha_transport == 0.01);
  CHECK(t.weights.alpha_hjb == 0.0);
}

TEST_CASE("presets: names, the unknown-name error and the help come from the table") {
  std::vector<std::string> from_table;
  for (const auto& row : bg::loss_presets()) from_table.emplace_back(row.name);
  auto names = bg::LossWeights::preset_names();
  CHECK(std::is_sorted(names.begin(), names.end()));
  CHECK(std::set<std::string>(names.begin(), names.end()) == std::set<std::string>(from_table.begin(), from_table.end()));
  CHECK(names.size() == from_table.size());  // no duplicate names

  std::string known;
  for (const auto& n : from_table) known += (known.empty() ? "" : ", ") + n;
  CHECK_THROWS_WITH_AS(bg::LossWeights::preset("otbg", true),
                       ("generator.preset: unknown preset 'otbg' (did you mean 'ot-bg'?); known: " + known).c_str(),
                       boltzlab::ConfigError);
  CHECK_THROWS_WITH_AS(bg::find_loss_preset("ot-flw"), doctest::Contains("did you mean 'ot-flow'"),
                       boltzlab::ConfigError);
  CHECK_THROWS_WITH(bg::find_loss_preset("zzzzzzzz"), doctest::Contains(("known: " + known).c_str()));
  CHECK(&bg::find_loss_preset("bg") == &bg::loss_presets()[2]);

  // One help line per row: name, weights as JSON keys, the no-data rule, game, equations.
  const std::string help = bg::preset_help();
  for (const auto& row : bg::loss_presets()) {
    INFO("preset " << row.name);
    char weights[160];
    if (row.family == bg::ModelFamily::kScore)
      std::snprintf(weights, sizeof weights, "score model, alpha0 %g, alpha1 %g, alpha2 %g, p %d", row.score.alpha0,
                    row.score.alpha1, row.score.alpha2, row.score.p);
    else if (row.family == bg::ModelFamily::kBridge)
      std::snprintf(weights, sizeof weights, "bridge sampler, alpha_interaction %g", row.bridge_interaction);
    else
      std::snprintf(weights, sizeof weights, "lambda %g, alpha_transport %g, alpha_hjb %g", row.weights.lambda,
                    row.weights.alpha_transport, row.weights.alpha_hjb);
    CHECK(help.find("\n" + std::string(row.name) + ": " + weights) != std::string::npos);
    CHECK(help.find(std::string("M = ") + row.columns.terminal_cost + ", I = " + row.columns.interaction + ", L = " +
                    row.columns.running_cost + ", " + row.columns.dynamics) != std::string::npos);
    CHECK(help.find(std::string(row.game) + " (" + row.equations + "): " + row.description) != std::string::npos);
  }
  CHECK(help.find("cnf: lambda 1, alpha_transport 0, alpha_hjb 0; needs data") != std::string::npos);
  CHECK(help.find("ot-bg: lambda 0.5, alpha_transport 0.01, alpha_hjb 0.05; without data lambda 0") !=
        std::string::npos);
}

TEST_CASE("presets: ot-rkl trains on the energy alone, with data or without") {
  // The relaxed-WGF game at ε → ∞ (eq. 90) with F(ρ) = KL(ρ‖π): the OT-BG game at λ = 0.
  // Given data, the data term is off, so the run is the OT-BG run without data, bit for
  // bit; the reverse KL (KL(q‖π) − log Z) decreases.
  Eigen::Vector2d mean(1.0, -0.5);
  Eigen::Matrix2d cov;
  cov << 2.0, 0.9, 0.9, 1.0;
  const boltzlab::GaussianTarget target(mean, cov);
  boltzlab::RowMatrix data(200, 2);
  boltzlab::Rng rng(7, 0);
  const Eigen::Matrix2d chol = cov.llt().matrixL();
  for (int i = 0; i < 200; ++i) data.row(i) = (mean + chol * Eigen::Vector2d(rng.normal(), rng.normal())).transpose();
  bg::GeneratorOptions mo;
  mo.potential.dim = 2;
  mo.potential.width = 12;
  mo.steps = 4;
  mo.sample_steps = 8;

  auto options = [](const std::string& preset, bool have_data) {
    nlohmann::json j = {{"preset", preset}, {"iterations", 30}, {"batch_size", 64}, {"learning_rate", 2e-2},
                        {"eval_every", 0}};
    boltzlab::JsonReader r(j, "pot.json: generator");
    bg::TrainOptions t;
    t.read(r, have_data);
    r.finish();
    t.progress = false;
    t.validate(have_data);
    return t;
  };
  const bg::TrainOptions rkl = options("ot-rkl", true);
  CHECK(rkl.weights.lambda == 0.0);
  CHECK_NOTHROW(options("ot-rkl", false));  // no data needed
  bg::BoltzmannGenerator a(mo, 5), b(mo, 5);
  const auto ha = bg::train(a, target, &data, rkl);
  const auto hb = bg::train(b, target, nullptr, options("ot-bg", false));
  CHECK(ha.loss == hb.loss);
  const auto pa = a.potential()->parameters(), pb = b.potential()->parameters();
  for (std::size_t k = 0; k < pa.size(); ++k) CHECK(torch::equal(pa[k], pb[k]));
  CHECK(ha.energy_evaluations == 30u * 64u);  // every step evaluates the energy ...
  for (int it = 0; it < 30; ++it) {
    CHECK(std::isnan(ha.forward_kl[it]));  // ... and none uses the data
    CHECK(ha.transport[it] > 0.0);
    CHECK(ha.hjb[it] > 0.0);
  }
  // Training works: KL(q‖π) = reverse_kl + log Z (exact log Z of the Gaussian) at least
  // halves from the first step to the mean of the last five, and stays >= 0 up to the
  // batch noise (a 64-draw mean has a standard error below 0.2 here).
  const double log_z = *target.log_z();
  double late = 0;
  for (int it = 25; it < 30; ++it) late += ha.reverse_kl[it] / 5;
  MESSAGE("ot-rkl: KL(q|pi) " << ha.reverse_kl[0] + log_z << " -> " << late + log_z);
  CHECK(late + log_z < 0.5 * (ha.reverse_kl[0] + log_z));
  CHECK(late + log_z > -0.2);
}
