// Temperature-annealed training (generators/annealed_training.hpp): the tempered target, the
// rung's importance weights against closed forms, weighted data draws, the options and their
// errors, and the whole ladder on a 1-D two-component mixture whose plain reverse-KL training
// collapses to one mode: annealing covers both, with the exact mode population and log Z;
// refinement rungs at τ = 1 move a broad flow to the mode shares; the result does not depend on
// the thread count.
#include <cmath>
#include <string>
#include <vector>

#include "support/torch_doctest.hpp"

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/generators/annealed_training.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/targets/gaussian.hpp"
#include "boltzlab/targets/gaussian_mixture.hpp"

namespace bg = boltzlab::generators;
using boltzlab::RowMatrix;

namespace {

// 0.7·N(−3, 0.5²) + 0.3·N(3, 0.5²), normalized (log Z = 0). The barrier at x = 0 is 18 above
// the wells (u(0) − u(±3) = 3²/(2·0.5²)); at τ = 12 it is 1.5, so the high-temperature reverse
// KL sees both modes.
boltzlab::GaussianMixtureTarget two_modes() {
  Eigen::VectorXd a(1), b(1);
  a << -3.0;
  b << 3.0;
  Eigen::MatrixXd c(1, 1);
  c << 0.25;
  return boltzlab::GaussianMixtureTarget({0.7, 0.3}, {a, b}, {c, c});
}

bg::GeneratorOptions model_1d() {
  bg::GeneratorOptions o;
  o.potential.dim = 1;
  o.potential.width = 8;
  o.potential.layers = 2;
  o.steps = 6;
  o.sample_steps = 8;
  return o;
}

bg::BoltzmannGenerator fresh_model(std::uint64_t seed) {
  bg::BoltzmannGenerator g(model_1d(), seed);
  g.set_standardization(Eigen::VectorXd::Zero(1), Eigen::VectorXd::Constant(1, 3.0));
  return g;
}

bg::TrainOptions stage1_options(int iterations) {
  bg::TrainOptions t;
  t.weights = bg::LossWeights::preset("ot-bg", false);  // λ = 0 without data
  t.iterations = iterations;
  t.batch_size = 128;
  t.learning_rate = 1e-2;
  t.eval_every = 0;
  t.progress = false;
  t.seed = 11;
  return t;
}

bg::AnnealingOptions ladder_options() {
  bg::AnnealingOptions a;
  a.enabled = true;
  a.t_high = 12.0;
  a.rungs = 3;
  a.samples_per_rung = 1024;
  a.steps_per_rung = 60;
  a.learning_rate = 5e-3;
  return a;
}

struct Coverage {
  double ess = 0, population = 0, population_se = 0, raw_population = 0, log_z = 0, log_z_se = 0;
};

// Fresh draws of the model weighted to π: the SNIS estimate of P(x > 0) with its delta-method
// standard error, the raw fraction of draws with x > 0, and log Ẑ with its standard error.
Coverage coverage(bg::BoltzmannGenerator& g, const boltzlab::Target& target, int n, std::uint64_t seed) {
  const bg::GeneratedSamples s = g.sample(n, seed);
  Eigen::VectorXd lw(n), positive(n);
  for (int i = 0; i < n; ++i) {
    lw[i] = -target.reduced_energy(s.x.row(i).data(), nullptr) - s.log_q[i];
    positive[i] = s.x(i, 0) > 0.0 ? 1.0 : 0.0;
  }
  Coverage c;
  c.ess = boltzlab::kish_ess(lw) / n;
  const boltzlab::SnisEstimate p = boltzlab::snis_estimate(lw, positive);
  c.population = p.mean;
  c.population_se = p.standard_error;
  c.raw_population = positive.mean();
  const boltzlab::LogZEstimate z = boltzlab::estimate_log_z(lw);
  c.log_z = z.estimate;
  c.log_z_se = z.standard_error;
  return c;
}

std::vector<torch::Tensor> parameters_of(bg::BoltzmannGenerator& g) {
  std::vector<torch::Tensor> out;
  for (const auto& p : g.parameters()) out.push_back(p.detach().clone());
  return out;
}

}  // namespace

TEST_CASE("annealed training: the tempered target is u/tau with gradient grad u/tau") {
  Eigen::Vector2d mean(0.5, -1.0);
  Eigen::Matrix2d cov;
  cov << 1.5, 0.3, 0.3, 0.8;
  const boltzlab::GaussianTarget inner(mean, cov);
  const bg::TemperedTarget hot(inner, 2.5);
  RowMatrix x(3, 2);
  x << 0.1, 0.2, -1.0, 3.0, 2.0, -0.5;
  Eigen::VectorXd u_hot, u;
  RowMatrix g_hot, g;
  hot.evaluate_batch(x, u_hot, &g_hot, boltzlab::Execution::kSerial);
  inner.evaluate_batch(x, u, &g, boltzlab::Execution::kSerial);
  for (int i = 0; i < 3; ++i) {
    CHECK(u_hot[i] == doctest::Approx(u[i] / 2.5).epsilon(1e-15));
    for (int k = 0; k < 2; ++k) CHECK(g_hot(i, k) == doctest::Approx(g(i, k) / 2.5).epsilon(1e-15));
    double grad[2];
    CHECK(hot.reduced_energy(x.row(i).data(), grad) == doctest::Approx(u[i] / 2.5).epsilon(1e-15));
    CHECK(grad[1] == doctest::Approx(g(i, 1) / 2.5).epsilon(1e-15));
  }
  CHECK(hot.dim() == 2);
  CHECK_FALSE(hot.log_z().has_value());  // Z_τ is not Z
  CHECK_THROWS_AS(bg::TemperedTarget(inner, 0.0), boltzlab::ConfigError);
}

TEST_CASE("annealed training: rung weights are exp(-u/tau - log q), and reweight q to pi_tau") {
  // q = N(0, 1) draws with their exact log q; π_τ ∝ exp(−x²/(2·s²·τ)) = N(0, τ s²) unnormalized
  // (u = x²/(2 s²) − log Z-free Gaussian of GaussianTarget minus its normalization).
  const double s2 = 0.6, tau = 1.5;
  Eigen::VectorXd mean(1);
  mean << 0.0;
  Eigen::MatrixXd cov(1, 1);
  cov << s2;
  const boltzlab::GaussianTarget target(mean, cov);
  const int n = 40000;
  bg::GeneratedSamples s;
  s.x.resize(n, 1);
  s.log_q.resize(n);
  boltzlab::Rng rng(5, 0);
  for (int i = 0; i < n; ++i) {
    s.x(i, 0) = rng.normal();
    s.log_q[i] = -0.5 * s.x(i, 0) * s.x(i, 0) - 0.5 * std::log(2 * M_PI);
  }
  const bg::RungWeights w = bg::rung_weights(s, target, tau, bg::WeightSmoothing::kNone, nullptr, nullptr);
  // Exactly the formula, row by row (u from the target itself: any normalization convention).
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    const double lw = -target.reduced_energy(s.x.row(i).data(), nullptr) / tau - s.log_q[i];
    CHECK(w.log_weights[i] == doctest::Approx(lw).epsilon(1e-14));
    sum += std::exp(lw - w.log_weights.maxCoeff());
  }
  CHECK(w.weights.sum() == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(w.weights[7] == doctest::Approx(std::exp(w.log_weights[7] - w.log_weights.maxCoeff()) / sum).epsilon(1e-12));
  // Statistically: the weighted second moment is τ·s² (0.9, the variance of π_τ); SNIS standard
  // error from the delta method, 4 se.
  Eigen::VectorXd x2 = s.x.col(0).array().square();
  const boltzlab::SnisEstimate m2 = boltzlab::snis_estimate(w.log_weights, x2);
  MESSAGE("E_pi_tau[x^2] = " << m2.mean << " +- " << m2.standard_error << " (exact " << tau * s2 << ")");
  CHECK(std::abs(m2.mean - tau * s2) < 4 * m2.standard_error);
  // And the unweighted moment is not (the test can tell q from π_τ): 1 vs 0.9, se ≈ 0.007.
  CHECK(std::abs(x2.mean() - tau * s2) > 10 * m2.standard_error);
}

TEST_CASE("annealed training: truncated and Pareto-smoothed weights") {
  const int m = 100;
  Eigen::VectorXd lw = Eigen::VectorXd::Zero(m);
  lw[3] = std::log(1000.0);  // one weight 1000× the others
  lw[4] = -std::numeric_limits<double>::infinity();
  const Eigen::VectorXd plain = bg::smoothed_weights(lw, bg::WeightSmoothing::kNone);
  CHECK(plain[3] == doctest::Approx(1000.0 / 1098.0).epsilon(1e-12));
  CHECK(plain[4] == 0.0);
  // Truncation at √M·mean = 10/M of the normalized weights, then renormalized: 10/(10 + 98·w₀).
  const Eigen::VectorXd cut = bg::smoothed_weights(lw, bg::WeightSmoothing::kTruncate);
  const double w0 = 1.0 / 1098.0;
  CHECK(cut[3] == doctest::Approx(0.1 / (0.1 + 98 * w0)).epsilon(1e-12));
  CHECK(cut[0] == doctest::Approx(w0 / (0.1 + 98 * w0)).epsilon(1e-12));
  CHECK(cut[4] == 0.0);
  const Eigen::VectorXd psis = bg::smoothed_weights(lw, bg::WeightSmoothing::kPsis);
  CHECK(psis.sum() == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(psis[3] <= plain[3]);
}

TEST_CASE("annealed training: data weights draw rows by weight (a one-hot weight trains on that row)") {
  // Rows drawn with probability w_i: with all weight on row 0, every mini-batch is row 0, which is
  // what uniform draws from copies of row 0 give, so the parameters agree bit for bit.
  RowMatrix mixed(4, 1), copies(4, 1);
  mixed << 0.5, -2.0, 3.0, 1.0;
  copies.setConstant(0.5);
  Eigen::VectorXd one_hot = Eigen::VectorXd::Zero(4);
  one_hot[0] = 2.0;  // need not be normalized
  const auto target = two_modes();
  bg::TrainOptions t = stage1_options(5);
  t.weights = bg::LossWeights::preset("ot-flow", true);
  t.batch_size = 16;
  bg::BoltzmannGenerator a = fresh_model(3), b = fresh_model(3), c = fresh_model(3);
  bg::train(a, target, &mixed, t, nullptr, &one_hot);
  bg::train(b, target, &copies, t);
  bg::train(c, target, &mixed, t);  // uniform rows: differs
  const auto pa = parameters_of(a), pb = parameters_of(b), pc = parameters_of(c);
  double same = 0, other = 0;
  for (std::size_t k = 0; k < pa.size(); ++k) {
    same = std::max(same, (pa[k] - pb[k]).abs().max().item<double>());
    other = std::max(other, (pa[k] - pc[k]).abs().max().item<double>());
  }
  CHECK(same == 0.0);
  CHECK(other > 1e-6);
  Eigen::VectorXd short_w = Eigen::VectorXd::Ones(3), negative = Eigen::VectorXd::Ones(4);
  const Eigen::VectorXd zero = Eigen::VectorXd::Zero(4);
  negative[2] = -1.0;
  CHECK_THROWS_AS(bg::train(a, target, &mixed, t, nullptr, &short_w), boltzlab::DomainError);
  CHECK_THROWS_AS(bg::train(a, target, &mixed, t, nullptr, &negative), boltzlab::DomainError);
  CHECK_THROWS_AS(bg::train(a, target, &mixed, t, nullptr, &zero), boltzlab::DomainError);
}

TEST_CASE("annealed training: options, the ladder and errors naming the key") {
  bg::AnnealingOptions a;
  a.t_high = 8.0;
  a.rungs = 3;
  const auto tau = a.ladder();
  REQUIRE(tau.size() == 4);
  CHECK(tau[0] == doctest::Approx(8.0));
  CHECK(tau[1] == doctest::Approx(4.0));
  CHECK(tau[2] == doctest::Approx(2.0));
  CHECK(tau[3] == 1.0);
  a.spacing = "linear";
  CHECK(a.ladder()[1] == doctest::Approx(8.0 - 7.0 / 3.0));
  auto error_of = [](const std::string& json) {
    bg::AnnealingOptions o;
    const nlohmann::json object = nlohmann::json::parse(json);  // the reader keeps a reference
    boltzlab::JsonReader r(object, "pot.json: generator.annealing");
    try {
      o.read(r);
    } catch (const boltzlab::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(error_of(R"({"t_high": 0.5})") ==
        "pot.json: generator.annealing.t_high is 0.500000, but must be finite and >= 1");
  CHECK(error_of(R"({"t_high": 1, "rungs": 3, "refine_rungs": 2})").find("annealing.rungs is 3") != std::string::npos);
  CHECK(error_of(R"({"t_high": 1, "rungs": 0})").find("annealing.refine_rungs is 0") != std::string::npos);
  CHECK(error_of(R"({"refine_rungs": -1})").find("generator.annealing.refine_rungs is -1") != std::string::npos);
  CHECK(error_of(R"({"refine_steps_per_rung": -2})").find("refine_steps_per_rung is -2") != std::string::npos);
  CHECK(error_of(R"({"t_high": 1, "rungs": 0, "refine_rungs": 2, "refine_steps_per_rung": 5})").empty());
  bg::AnnealingOptions flat;
  flat.t_high = 1.0;
  flat.rungs = 0;
  flat.refine_rungs = 2;
  flat.refine_steps_per_rung = 7;
  CHECK(flat.ladder() == std::vector<double>{1.0});
  CHECK(flat.steps_of_rung(1) == 7);
  a.refine_rungs = 1;
  CHECK(a.steps_of_rung(3) == a.steps_per_rung);  // a ladder rung
  CHECK(a.steps_of_rung(4) == a.steps_per_rung);  // refinement without its own count
  CHECK(error_of(R"({"rungs": 0})").find("generator.annealing.rungs is 0") != std::string::npos);
  CHECK(error_of(R"({"smoothing": "clip"})").find("generator.annealing.smoothing: is \"clip\"") != std::string::npos);
  CHECK(error_of(R"({"samples_per_rnug": 10})").find("did you mean 'samples_per_rung'") != std::string::npos);
  CHECK(error_of(R"({"spacing": "log"})").find("generator.annealing.spacing") != std::string::npos);
  CHECK(error_of(R"({"t_high": 4, "rungs": 2, "smoothing": "truncate"})").empty());
  // Stage 1 is the reverse KL: λ > 0 is refused.
  const auto target = two_modes();
  bg::BoltzmannGenerator g = fresh_model(1);
  bg::TrainOptions t = stage1_options(1);
  t.weights.lambda = 0.5;
  CHECK_THROWS_WITH_AS(bg::train_annealed(g, target, t, ladder_options()),
                       doctest::Contains("lambda must be 0"), boltzlab::ConfigError);
}

TEST_CASE("annealed training covers both modes where the plain reverse KL collapses; exact log Z") {
  const auto target = two_modes();
  const bg::AnnealingOptions a = ladder_options();
  bg::BoltzmannGenerator annealed = fresh_model(7);
  const bg::AnnealedHistory h = bg::train_annealed(annealed, target, stage1_options(120), a);
  REQUIRE(h.rungs.size() == 3);
  for (const auto& r : h.rungs) MESSAGE("rung " << r.rung << " tau " << r.tau << " ESS " << r.ess_fraction);
  CHECK(h.rungs.back().tau == 1.0);
  CHECK(h.final_check.samples == 1024u);
  CHECK(h.stage1_check.tau == 12.0);
  // Energy evaluations: stage 1's batches, one per rung draw and the two checks.
  CHECK(h.combined().energy_evaluations == 120u * 128u + 5u * 1024u);
  // The same budget of plain reverse KL (stage 1 + the rungs' steps) at τ = 1.
  bg::BoltzmannGenerator plain = fresh_model(7);
  bg::train(plain, target, nullptr, stage1_options(120 + 3 * 60));

  const int n = 8000;
  const Coverage c = coverage(annealed, target, n, 99);
  const Coverage p = coverage(plain, target, n, 99);
  MESSAGE("annealed: ESS " << c.ess << ", P(x>0) " << c.population << " +- " << c.population_se << " (raw "
                           << c.raw_population << "), log Z " << c.log_z << " +- " << c.log_z_se);
  MESSAGE("plain reverse KL: ESS " << p.ess << ", raw P(x>0) " << p.raw_population);
  // The premise: the reverse KL alone puts (almost) no draws in one of the modes.
  CHECK(std::min(p.raw_population, 1.0 - p.raw_population) < 0.02);
  // Annealed: both modes drawn (≥ 10 % each; exact 30/70 %) and the reweighted population of the
  // x > 0 mode is the exact 0.3 within 4 delta-method standard errors; log Ẑ is the exact 0 within
  // 4 standard errors plus the RK4 bias of log q (≲ 1e-3 at 8 steps, test_generator).
  CHECK(c.raw_population > 0.1);
  CHECK(c.raw_population < 0.9);
  CHECK(std::abs(c.population - 0.3) < 4 * c.population_se);
  CHECK(std::abs(c.log_z - 0.0) < 4 * c.log_z_se + 1e-3);
  CHECK(c.ess > 0.5);
}

TEST_CASE("annealed training: refinement rungs at tau 1 reweight a broad flow to the mode shares and log Z") {
  // No annealing (t_high 1, no ladder) and no stage-1 step: the flow starts as q = N(0, 3²), which
  // covers both modes (−3 and 3, sd 0.5) with equal shares where π has 0.7 and 0.3. Each
  // refinement rung trains the weighted forward KL on fresh draws, so q moves toward π itself.
  const auto target = two_modes();
  bg::AnnealingOptions a = ladder_options();  // 1024 draws per rung, learning rate 5e-3
  a.t_high = 1.0;
  a.rungs = 0;
  a.refine_rungs = 4;
  a.refine_steps_per_rung = 40;
  bg::BoltzmannGenerator g = fresh_model(5);
  const bg::AnnealedHistory h = bg::train_annealed(g, target, stage1_options(0), a);
  REQUIRE(h.rungs.size() == 4);
  for (const auto& r : h.rungs) {
    MESSAGE("refinement rung " << r.rung << ": ESS " << r.ess_fraction);
    CHECK(r.tau == 1.0);
    CHECK(r.tau_model == 1.0);
    CHECK(r.training.iterations_done == 40);
  }
  CHECK(h.rungs.back().rung == 4);
  CHECK(h.final_check.rung == 5);
  // Evaluations: no stage-1 batch; the stage-1 check, one draw per rung and the final check.
  CHECK(h.combined().energy_evaluations == 6u * 1024u);
  const Coverage c = coverage(g, target, 8000, 123);
  MESSAGE("refined: ESS " << c.ess << " (first rung " << h.rungs.front().ess_fraction << "), P(x>0) "
                          << c.population << " +- " << c.population_se << " (raw " << c.raw_population
                          << "), log Z " << c.log_z << " +- " << c.log_z_se);
  // The premise: the broad start is a poor proposal (its ESS on the first rung's draws).
  CHECK(h.rungs.front().ess_fraction < 0.4);
  // Refined: a usable ESS; raw draws split near π's 0.3 (not the start's 0.5), and the reweighted
  // share and log Ẑ exact within 4 delta-method standard errors (+ the RK4 bias of log q).
  CHECK(c.ess > 0.5);
  CHECK(c.raw_population > 0.15);
  CHECK(c.raw_population < 0.45);
  CHECK(std::abs(c.population - 0.3) < 4 * c.population_se);
  CHECK(std::abs(c.log_z - 0.0) < 4 * c.log_z_se + 1e-3);
}

TEST_CASE("annealed training does not depend on the thread count") {
  const auto target = two_modes();
  bg::AnnealingOptions a = ladder_options();
  a.rungs = 2;
  a.refine_rungs = 1;
  a.refine_steps_per_rung = 3;
  a.samples_per_rung = 600;
  a.steps_per_rung = 5;
  bg::TrainOptions t = stage1_options(6);
  t.chunk_size = 64;
  auto run = [&](int threads) {
    boltzlab::set_num_threads(threads);
    bg::BoltzmannGenerator g = fresh_model(2);
    const bg::AnnealedHistory h = bg::train_annealed(g, target, t, a);
    return std::make_pair(parameters_of(g), h.to_json());
  };
  const auto [p1, j1] = run(1);
  const auto [p2, j2] = run(2);
  boltzlab::set_num_threads(0);
  for (std::size_t k = 0; k < p1.size(); ++k) CHECK(torch::equal(p1[k], p2[k]));
  CHECK(j1["rungs"][1]["ess_fraction"] == j2["rungs"][1]["ess_fraction"]);
  CHECK(j1["rungs"][2]["ess_fraction"] == j2["rungs"][2]["ess_fraction"]);
  CHECK(j1["final"]["log_z"] == j2["final"]["log_z"]);
}

TEST_CASE("refinement after training on biased data moves the mode shares toward pi; exact log Z") {
  // Data that under-sample a mode, as plain MD under-samples a basin: 95 % of the frames at −3 and
  // 5 % at +3 where π has 70 / 30 %. Forward KL on them learns the data's shares; the refinement
  // rungs train on fresh draws weighted by the energy, so q moves toward π's shares.
  const auto target = two_modes();
  const int n = 2000, n_right = n / 20;
  torch::manual_seed(17);
  const torch::Tensor z = torch::randn({n, 1}, torch::kFloat64);
  RowMatrix data(n, 1);
  for (int i = 0; i < n; ++i) data(i, 0) = (i < n_right ? 3.0 : -3.0) + 0.5 * z[i][0].item<double>();
  bg::BoltzmannGenerator g = fresh_model(9);
  bg::TrainOptions t = stage1_options(300);
  t.weights = bg::LossWeights::preset("ot-flow", true);  // forward KL on the data (λ = 1)
  t.learning_rate = 5e-3;
  const bg::TrainHistory before = bg::train(g, target, &data, t);
  const Coverage c0 = coverage(g, target, 8000, 321);
  bg::RefinementOptions r;
  r.enabled = true;
  r.rungs = 4;
  r.samples_per_rung = 1024;
  r.steps_per_rung = 40;
  r.learning_rate = 5e-3;
  const bg::RefinementHistory h = bg::refine_trained(g, target, t, r);
  REQUIRE(h.rungs.size() == 4);
  CHECK(h.rungs.front().rung == 1);
  CHECK(h.final_check.rung == 5);
  for (const auto& k : h.rungs) CHECK(k.training.iterations_done == 40);
  const bg::TrainHistory all = h.combined(before);
  CHECK(all.iterations_done == 300 + 4 * 40);
  // Evaluations: the data training's (none at λ = 1, eval_every 0), one draw per rung and the final check.
  CHECK(all.energy_evaluations == before.energy_evaluations + 5u * 1024u);
  const Coverage c = coverage(g, target, 8000, 123);
  MESSAGE("data-trained: raw P(x>0) " << c0.raw_population << ", ESS " << c0.ess << "; refined: raw "
                                      << c.raw_population << ", P(x>0) " << c.population << " +- " << c.population_se
                                      << ", ESS " << c.ess << ", log Z " << c.log_z << " +- " << c.log_z_se);
  // The premise: the data-trained model draws about the data's 5 % at x > 0.
  CHECK(c0.raw_population < 0.12);
  // Refined: raw draws near π's 0.3 and a higher ESS; the reweighted share and log Ẑ exact within
  // 4 delta-method standard errors (+ the RK4 bias of log q, ≲ 1e-3 at 8 steps).
  CHECK(c.raw_population > 0.2);
  CHECK(c.raw_population < 0.4);
  CHECK(c.ess > c0.ess);
  CHECK(std::abs(c.population - 0.3) < 4 * c.population_se);
  CHECK(std::abs(c.log_z - 0.0) < 4 * c.log_z_se + 1e-3);
  const nlohmann::json j = h.to_json();
  CHECK(j["rungs"].size() == 4);
  CHECK(j["energy_evaluations"] == 5 * 1024);
}

TEST_CASE("refinement: the rungs of annealing without a ladder; independent of the thread count; errors") {
  const auto target = two_modes();
  bg::RefinementOptions r;
  r.enabled = true;
  r.rungs = 2;
  r.samples_per_rung = 500;
  r.steps_per_rung = 4;
  bg::TrainOptions t = stage1_options(0);
  t.chunk_size = 64;
  auto run = [&](int threads) {
    boltzlab::set_num_threads(threads);
    bg::BoltzmannGenerator g = fresh_model(4);
    const bg::RefinementHistory h = bg::refine_trained(g, target, t, r);
    return std::make_pair(parameters_of(g), h.to_json());
  };
  const auto [p1, j1] = run(1);
  const auto [p2, j2] = run(2);
  boltzlab::set_num_threads(0);
  for (std::size_t k = 0; k < p1.size(); ++k) CHECK(torch::equal(p1[k], p2[k]));
  CHECK(j1["final"]["log_z"] == j2["final"]["log_z"]);
  // The same streams and steps as the refinement rungs of train_annealed at t_high 1 with no ladder
  // and no stage-1 step: the same parameters.
  bg::BoltzmannGenerator g = fresh_model(4);
  bg::train_annealed(g, target, t, r.as_annealing());
  const auto pa = parameters_of(g);
  for (std::size_t k = 0; k < p1.size(); ++k) CHECK(torch::equal(p1[k], pa[k]));

  auto error_of = [](const std::string& text) {
    try {
      bg::RefinementOptions o;
      const nlohmann::json object = nlohmann::json::parse(text);  // the reader keeps a reference
      boltzlab::JsonReader reader(object, "p.json: generator.refinement");
      o.read(reader);
    } catch (const boltzlab::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(error_of(R"({"rungs": 0})").find("generator.refinement.rungs is 0") != std::string::npos);
  CHECK(error_of(R"({"samples_per_rung": 1})").find("samples_per_rung is 1") != std::string::npos);
  CHECK(error_of(R"({"smoothing": "clip"})").find("smoothing") != std::string::npos);
  CHECK(error_of(R"({"step_per_rung": 3})").find("steps_per_rung") != std::string::npos);
  CHECK(error_of(R"({"rungs": 3, "learning_rate": 1e-3})").empty());
}
