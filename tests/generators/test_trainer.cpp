// Reverse-KL gradient through the target bridge vs finite differences, training on
// a Gaussian (ESS and log Z against the exact value), checkpoint/resume, config errors,
// and the pieces of train() alone: the schedule, one step, the checkpointer and the
// iteration callbacks.
#include <cmath>
#include <filesystem>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "support/torch_doctest.hpp"

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/generators/training_callbacks.hpp"
#include "boltzlab/generators/training_checkpoint.hpp"
#include "boltzlab/generators/training_schedule.hpp"
#include "boltzlab/generators/training_step.hpp"
#include "boltzlab/targets/gaussian.hpp"

namespace bg = boltzlab::generators;
using boltzlab::RowMatrix;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

boltzlab::GaussianTarget correlated_gaussian() {
  Eigen::Vector2d mean(1.0, -0.5);
  Eigen::Matrix2d cov;
  cov << 2.0, 0.9, 0.9, 1.0;
  return boltzlab::GaussianTarget(mean, cov);
}

bg::GeneratorOptions small_model() {
  bg::GeneratorOptions o;
  o.potential.dim = 2;
  o.potential.width = 12;
  o.potential.layers = 3;
  o.steps = 4;
  o.sample_steps = 8;
  return o;
}

// Exact draws of the target (both KL terms can then be exercised).
RowMatrix gaussian_data(const boltzlab::GaussianTarget& target, int n, std::uint64_t seed) {
  RowMatrix data(n, 2);
  boltzlab::Rng rng(seed, 0);
  Eigen::Matrix2d chol = target.covariance().llt().matrixL();
  for (int i = 0; i < n; ++i) {
    Eigen::Vector2d e(rng.normal(), rng.normal());
    data.row(i) = (target.mean() + chol * e).transpose();
  }
  return data;
}

double max_parameter_difference(bg::BoltzmannGenerator& a, bg::BoltzmannGenerator& b) {
  const auto pa = a.potential()->parameters(), pb = b.potential()->parameters();
  double diff = 0;
  for (std::size_t k = 0; k < pa.size(); ++k) diff = std::max(diff, (pa[k] - pb[k]).abs().max().item<double>());
  return diff;
}

torch::optim::Adam make_adam(bg::BoltzmannGenerator& g, const bg::TrainOptions& t) {
  return torch::optim::Adam(g.potential()->parameters(), torch::optim::AdamOptions(t.learning_rate));
}

}  // namespace

TEST_CASE("trainer: reverse-KL gradient through the target bridge matches finite differences") {
  const auto target = correlated_gaussian();
  bg::BoltzmannGenerator g(small_model(), 4);
  {
    torch::NoGradGuard ng;
    torch::manual_seed(8);
    for (auto& p : g.potential()->parameters()) p.add_(0.3 * torch::randn(p.sizes(), kF64));
  }
  const auto z = g.base_sample(32, 6);
  bg::EnergyCut cut;  // u_high = 1e3: linear branch here
  auto loss_of = [&]() {
    const bg::FlowBatch f = g.forward(z, 4, false);
    return (f.log_q + bg::target_energy(f.x, target, cut, nullptr)).mean();
  };
  g.potential()->zero_grad();
  loss_of().backward();
  // Central differences in a few parameter entries; the loss is smooth, so with
  // step 1e-5 the truncation error is ~1e-10 and rounding ~1e-16·|loss|/1e-5 ~ 1e-11.
  const double h = 1e-5;
  int checked = 0;
  for (auto& item : g.potential()->named_parameters()) {
    auto p = item.value();
    if (!p.grad().defined()) {  // only the constant c does not enter ∇Φ
      CHECK(item.key() == "c");
      continue;
    }
    const auto grad = p.grad().reshape({-1});
    auto flat = p.data().view({-1});
    for (int64_t k : {int64_t(0), flat.numel() / 2, flat.numel() - 1}) {
      const double orig = flat[k].item<double>();
      double up, down;
      {
        torch::NoGradGuard ng;
        flat[k] = orig + h;
        up = loss_of().item<double>();
        flat[k] = orig - h;
        down = loss_of().item<double>();
        flat[k] = orig;
      }
      const double fd = (up - down) / (2 * h);
      const double an = grad[k].item<double>();
      INFO(item.key() << "[" << k << "]: autograd " << an << " vs fd " << fd);
      CHECK(std::abs(an - fd) < 1e-6 * (1.0 + std::abs(fd)));
      ++checked;
    }
  }
  CHECK(checked == 27);  // K0 b0 K1 b1 K2 b2 w A b: 9 tensors × 3 entries
}

TEST_CASE("trainer: the bridge applies the lin-log cut and counts non-finite energies") {
  bg::EnergyCut cut;
  cut.high = 10.0;
  cut.max = 100.0;
  double slope = 0;
  CHECK(cut.apply(5.0, &slope) == 5.0);
  CHECK(slope == 1.0);
  CHECK(cut.apply(10.0 + std::expm1(2.0), &slope) == doctest::Approx(12.0));
  CHECK(slope == doctest::Approx(std::exp(-2.0)));
  CHECK(cut.apply(std::nan(""), &slope) == 100.0);
  CHECK(slope == 0.0);

  // Serial and parallel bridge evaluations agree, and gradients are ũ'·∇u.
  const auto target = correlated_gaussian();
  torch::manual_seed(1);
  auto x = (3.0 * torch::randn({50, 2}, kF64)).requires_grad_(true);
  bg::EnergyCounters counters;
  const auto u1 = bg::target_energy(x, target, cut, &counters, boltzlab::Execution::kParallel);
  const auto u2 = bg::target_energy(x, target, cut, nullptr, boltzlab::Execution::kSerial);
  CHECK((u1 - u2).abs().max().item<double>() == 0.0);
  CHECK(counters.evaluations == 50);
  u1.sum().backward();
  const RowMatrix xm = bg::to_matrix(x);
  for (int i = 0; i < 50; ++i) {
    double g[2];
    const double u = target.reduced_energy(xm.row(i).data(), g);
    double s = 0;
    cut.apply(u, &s);
    CHECK(x.grad()[i][0].item<double>() == doctest::Approx(s * g[0]).epsilon(1e-12));
  }
}

TEST_CASE("trainer: OT-BG on a correlated Gaussian reaches high ESS and the exact log Z") {
  // Reverse KL only (no data). A linear flow suffices for a Gaussian, so a short run
  // gets close; the check is on the importance-sampling identity, not on speed.
  const auto target = correlated_gaussian();
  bg::BoltzmannGenerator g(small_model(), 5);
  bg::TrainOptions t;
  t.weights = bg::LossWeights::preset("ot-bg", false);
  t.iterations = 150;
  t.batch_size = 256;
  t.learning_rate = 2e-2;
  t.eval_every = 0;
  t.progress = false;
  const auto hist = bg::train(g, target, nullptr, t);
  CHECK(hist.energy_evaluations == 150u * 256u);
  const int n = 20000;
  const auto s = g.sample(n, 123);
  Eigen::VectorXd lw(n);
  for (int i = 0; i < n; ++i) lw[i] = -target.reduced_energy(s.x.row(i).data(), nullptr) - s.log_q[i];
  const double ess = boltzlab::kish_ess(lw) / n;
  const double mx = lw.maxCoeff();
  const double log_z = mx + std::log((lw.array() - mx).exp().mean());
  // Delta method: sd(log Ẑ) ≈ sqrt((1/ess − 1)/n); allow 5 sd plus the RK4 bias of
  // log q (≲1e-4 at 8 steps, see test_generator).
  const double se = std::sqrt((1.0 / ess - 1.0) / n);
  MESSAGE("ESS " << ess << "  log Z " << log_z << " vs exact " << *target.log_z() << " (se " << se << ")");
  CHECK(ess > 0.8);
  CHECK(std::abs(log_z - *target.log_z()) < 5 * se + 1e-3);
}

TEST_CASE("trainer: resuming from a checkpoint reproduces an uninterrupted run") {
  const auto target = correlated_gaussian();
  // Data from the target itself (exact draws) so both KL terms are exercised.
  RowMatrix data(500, 2);
  boltzlab::Rng rng(3, 0);
  Eigen::Matrix2d chol = target.covariance().llt().matrixL();
  for (int i = 0; i < 500; ++i) {
    Eigen::Vector2d e(rng.normal(), rng.normal());
    data.row(i) = (target.mean() + chol * e).transpose();
  }
  bg::TrainOptions t;
  t.weights = bg::LossWeights::preset("ot-bg", true);
  CHECK(t.weights.lambda == 0.5);
  t.iterations = 12;
  t.batch_size = 64;
  t.eval_every = 0;
  t.progress = false;
  bg::BoltzmannGenerator a(small_model(), 9);
  bg::train(a, target, &data, t);

  const auto ckpt = std::filesystem::temp_directory_path() / "boltzlab_test_ckpt.pt";
  std::filesystem::remove(ckpt);
  bg::TrainOptions t2 = t;
  t2.checkpoint = ckpt;
  t2.checkpoint_every = 5;
  t2.stop_after = 7;
  t2.resume = true;
  bg::BoltzmannGenerator b(small_model(), 9);
  const auto first = bg::train(b, target, &data, t2);
  CHECK(first.iterations_done == 7);
  bg::BoltzmannGenerator c(small_model(), 1234);  // different init: everything comes from the checkpoint
  t2.stop_after = 0;
  const auto second = bg::train(c, target, &data, t2);
  std::filesystem::remove(ckpt);
  CHECK(second.iterations_done == 12);
  CHECK(second.loss.size() == 12);
  const auto pa = a.potential()->parameters(), pc = c.potential()->parameters();
  double diff = 0;
  for (std::size_t k = 0; k < pa.size(); ++k) diff = std::max(diff, (pa[k] - pc[k]).abs().max().item<double>());
  CHECK(diff < 1e-12);
}

TEST_CASE("trainer: configuration errors name the key") {
  nlohmann::json j = {{"preset", "ot-bg"}, {"iteratons", 10}};
  boltzlab::JsonReader r(j, "pot.json: generator");
  bg::TrainOptions t;
  t.read(r, false);
  CHECK_THROWS_WITH(r.finish(), doctest::Contains("iteratons"));
  CHECK_THROWS_WITH(bg::LossWeights::preset("otbg", false), doctest::Contains("did you mean 'ot-bg'"));
  nlohmann::json k = {{"lambda", 0.3}};
  boltzlab::JsonReader r2(k, "pot.json: generator");
  bg::TrainOptions t2;
  t2.read(r2, false);
  CHECK_THROWS_WITH(t2.validate(false), doctest::Contains("no data"));
  // Canonical BG preset: no running cost, no HJB term.
  const auto w = bg::LossWeights::preset("bg", true);
  CHECK(w.alpha_transport == 0.0);
  CHECK(w.alpha_hjb == 0.0);
  const auto o = bg::LossWeights::preset("ot-flow", true);
  CHECK(o.lambda == 1.0);
  CHECK(o.alpha_hjb > 0.0);
}

TEST_CASE("trainer: the fused forward-KL step gives the autograd step's parameters") {
  // Both paths differentiate the same discrete RK4 map (fused_otflow.hpp), so after a
  // few Adam steps the parameters agree to rounding error. A non-trivial
  // standardization (μ, σ from data) and T ≠ 1 check that the fused step uses the
  // model's conventions (y = (x − μ)/σ at t = T, standard normal at t = 0); the mixed
  // loss (λ = ½) checks that λ·(fused data gradient) + autograd reverse-KL gradient
  // equals the all-autograd gradient. The last configuration uses a two-component
  // Gaussian-mixture base (BaseDensity with sd): the fused path then starts its adjoint
  // from ∇(−log ρ₀) of that base (FusedOtFlowOptions::base_neg_log_density).
  const auto target = correlated_gaussian();
  RowMatrix data(300, 2);
  boltzlab::Rng rng(4, 0);
  Eigen::Matrix2d chol = target.covariance().llt().matrixL();
  for (int i = 0; i < 300; ++i) {
    Eigen::Vector2d e(rng.normal(), rng.normal());
    data.row(i) = (target.mean() + chol * e).transpose();
  }
  bg::GeneratorOptions mo = small_model();
  mo.potential.layers = 2;
  mo.potential.width = 10;
  mo.time = 0.7;
  mo.steps = 3;
  // (preset, warm-up steps): the warm-up runs λ = 1 before the preset's λ = ½.
  const auto no_torsions = torch::zeros({2}, torch::TensorOptions().dtype(torch::kBool));
  const bg::BaseDensity mixture_base(no_torsions, torch::tensor({{-0.8, 0.1}, {0.9, -0.5}}, torch::kDouble),
                                     torch::zeros({2, 2}, torch::kDouble),
                                     torch::tensor({{0.45, 0.7}, {0.55, 0.3}}, torch::kDouble),
                                     torch::tensor({{0.6, 1.1}, {0.7, 0.5}}, torch::kDouble));
  REQUIRE(mixture_base.gaussian_mixture());
  for (const auto& [preset, warmup, mixture] : std::vector<std::tuple<std::string, int, bool>>{
           {"ot-flow", 0, false}, {"ot-bg", 0, false}, {"cnf", 0, false}, {"ot-bg", 3, false}, {"ot-bg", 0, true}}) {
    bg::TrainOptions t;
    t.weights = bg::LossWeights::preset(preset, true);
    t.warmup_iterations = warmup;
    t.iterations = 6;
    t.batch_size = 70;
    t.chunk_size = 32;  // several chunks on both paths
    t.learning_rate = 2e-2;
    t.eval_every = 0;
    t.progress = false;
    bg::BoltzmannGenerator a(mo, 3), b(mo, 3);
    a.standardize_from_data(data);
    b.standardize_from_data(data);
    if (mixture) {
      a.set_base(mixture_base);
      b.set_base(mixture_base);
    }
    t.fused = bg::FusedMode::kOff;
    CHECK_FALSE(bg::uses_fused_data_term(a, t));
    const auto ha = bg::train(a, target, &data, t);
    t.fused = bg::FusedMode::kAuto;
    CHECK(bg::uses_fused_data_term(b, t));
    const auto hb = bg::train(b, target, &data, t);
    INFO("preset " << preset << ", warm-up " << warmup << ", mixture base " << mixture);
    for (int it = 0; it < 6; ++it) {
      CHECK(std::abs(ha.loss[it] - hb.loss[it]) <= 1e-10 * (1.0 + std::abs(ha.loss[it])));
      CHECK(std::abs(ha.forward_kl[it] - hb.forward_kl[it]) <= 1e-10 * (1.0 + std::abs(ha.forward_kl[it])));
      CHECK(std::abs(ha.transport[it] - hb.transport[it]) <= 1e-10 * (1.0 + ha.transport[it]));
      CHECK(std::abs(ha.hjb[it] - hb.hjb[it]) <= 1e-10 * (1.0 + ha.hjb[it]));
    }
    const auto pa = a.potential()->parameters(), pb = b.potential()->parameters();
    double diff = 0, moved = 0;
    bg::BoltzmannGenerator init(mo, 3);
    const auto p0 = init.potential()->parameters();
    for (std::size_t k = 0; k < pa.size(); ++k) {
      diff = std::max(diff, (pa[k] - pb[k]).abs().max().item<double>());
      moved = std::max(moved, (pa[k] - p0[k]).abs().max().item<double>());
    }
    MESSAGE(preset << " (warm-up " << warmup << std::string(mixture ? ", mixture base" : "") << "): max |θ_fused − θ_autograd| = " << diff << " after parameters moved by " << moved);
    CHECK(moved > 1e-2);  // the steps did something
    CHECK(diff <= 1e-9);
  }
}

TEST_CASE("trainer: the \"fused\" key and its errors") {
  auto read = [](const nlohmann::json& v) {
    nlohmann::json j = {{"fused", v}};
    boltzlab::JsonReader r(j, "pot.json: generator");
    bg::TrainOptions t;
    t.read(r, true);
    r.finish();
    return t;
  };
  CHECK(read("auto").fused == bg::FusedMode::kAuto);
  CHECK(read(true).fused == bg::FusedMode::kOn);
  CHECK(read(false).fused == bg::FusedMode::kOff);
  CHECK_THROWS_WITH(read("yes"), doctest::Contains("fused"));
  // Forced on: refused for an unsupported architecture (nTh = 3) and without a data term.
  bg::BoltzmannGenerator deep(small_model(), 1);
  bg::TrainOptions t = read(true);
  t.weights = bg::LossWeights::preset("ot-flow", true);
  CHECK_THROWS_WITH(bg::uses_fused_data_term(deep, t), doctest::Contains("layers = 2"));
  t.weights.lambda = 0.0;
  CHECK_THROWS_WITH(t.validate(true), doctest::Contains("lambda is 0"));
  t.fused = bg::FusedMode::kAuto;  // auto falls back to autograd
  t.weights.lambda = 1.0;
  CHECK_FALSE(bg::uses_fused_data_term(deep, t));
}

TEST_CASE("trainer: the schedule is a cosine learning rate and the λ warm-up") {
  bg::TrainOptions t;
  t.iterations = 11;
  t.learning_rate = 0.02;
  t.lr_final_ratio = 0.1;
  t.warmup_iterations = 3;
  t.weights = bg::LossWeights::preset("ot-bg", true);
  const bg::TrainingSchedule s(t);
  // η(it) = η₀·(r + (1 − r)·½·(1 + cos(π·it/10))): η₀ at the start, η₀(1 + r)/2 halfway,
  // η₀·r at the end, decreasing in between.
  CHECK(s.learning_rate(0) == doctest::Approx(0.02).epsilon(1e-15));
  CHECK(s.learning_rate(5) == doctest::Approx(0.02 * 0.55).epsilon(1e-15));
  CHECK(s.learning_rate(10) == doctest::Approx(0.002).epsilon(1e-15));
  CHECK(s.learning_rate(2) == doctest::Approx(0.02 * (0.1 + 0.9 * 0.5 * (1 + std::cos(0.2 * std::acos(-1.0))))).epsilon(1e-15));
  for (int it = 1; it < 11; ++it) CHECK(s.learning_rate(it) < s.learning_rate(it - 1));
  // Warm-up: λ = 1 for the first 3 steps, the other weights untouched.
  for (int it = 0; it < 5; ++it) {
    const bg::LossWeights w = s.weights(it);
    CHECK(w.lambda == (it < 3 ? 1.0 : 0.5));
    CHECK(w.alpha_transport == 0.01);
    CHECK(w.alpha_hjb == 0.05);
  }
  t.iterations = 1;  // a single step runs at the final rate
  CHECK(bg::TrainingSchedule(t).learning_rate(0) == doctest::Approx(0.002).epsilon(1e-15));
}

TEST_CASE("trainer: one TrainingStep is the first step of train(), bit for bit") {
  const auto target = correlated_gaussian();
  const RowMatrix data = gaussian_data(target, 300, 5);
  bg::TrainOptions t;
  t.weights = bg::LossWeights::preset("ot-bg", true);  // both KL terms and both path costs
  t.iterations = 8;
  t.stop_after = 1;
  t.batch_size = 48;
  t.chunk_size = 20;
  t.eval_every = 0;
  t.progress = false;
  bg::BoltzmannGenerator a(small_model(), 7), b(small_model(), 7);
  const auto h = bg::train(a, target, &data, t);
  REQUIRE(h.iterations_done == 1);

  auto adam = make_adam(b, t);
  bg::TrainingStep step(b, target, &data, t, nullptr);
  const bg::TrainingSchedule schedule(t);
  const bg::StepRecord r = step(0, schedule.weights(0), schedule.learning_rate(0), adam);
  CHECK(r.iteration == 0);
  CHECK(r.applied);
  CHECK(r.loss == h.loss[0]);
  CHECK(r.forward_kl == h.forward_kl[0]);
  CHECK(r.reverse_kl == h.reverse_kl[0]);
  CHECK(r.transport == h.transport[0]);
  CHECK(r.hjb == h.hjb[0]);
  CHECK(r.grad_norm == h.grad_norm[0]);
  CHECK(r.learning_rate == h.learning_rate[0]);
  CHECK(r.energy_evaluations == 48u);  // one energy per base draw, no evaluation run
  CHECK(r.energy_evaluations == h.energy_evaluations);
  CHECK(max_parameter_difference(a, b) == 0.0);
  // The loss is the λ-weighted sum of its parts: ½·fKL + ½·mean(log q + ũ) + α_L·L + α_HJB·HJB
  // (every draw is valid without a map, so the reverse-KL mean is the batch mean).
  CHECK(r.loss == doctest::Approx(0.5 * r.forward_kl + 0.5 * r.reverse_kl + 0.01 * r.transport + 0.05 * r.hjb)
                      .epsilon(1e-12));
}

TEST_CASE("trainer: a non-finite loss skips the Adam step and is recorded") {
  const auto target = correlated_gaussian();
  RowMatrix data = RowMatrix::Constant(20, 2, std::nan(""));  // every data row NaN: NLL is NaN
  bg::TrainOptions t;
  t.weights = bg::LossWeights::preset("cnf", true);
  t.iterations = 2;
  t.batch_size = 16;
  t.eval_every = 0;
  t.progress = false;
  bg::BoltzmannGenerator a(small_model(), 2), untouched(small_model(), 2);
  auto adam = make_adam(a, t);
  bg::TrainingStep step(a, target, &data, t, nullptr);
  const bg::StepRecord r = step(0, t.weights, t.learning_rate, adam);
  CHECK_FALSE(r.applied);
  CHECK(std::isnan(r.loss));
  CHECK(max_parameter_difference(a, untouched) == 0.0);
  const auto h = bg::train(a, target, &data, t);
  CHECK(h.iterations_done == 2);
  CHECK(std::isnan(h.loss[1]));
  CHECK(max_parameter_difference(a, untouched) == 0.0);
}

TEST_CASE("trainer: the checkpointer restores model, Adam state and history") {
  const auto target = correlated_gaussian();
  const RowMatrix data = gaussian_data(target, 200, 6);
  bg::TrainOptions t;
  t.weights = bg::LossWeights::preset("ot-bg", true);
  t.batch_size = 32;
  t.progress = false;
  const auto path = std::filesystem::temp_directory_path() / "boltzlab_test_checkpointer.pt";
  std::filesystem::remove(path);
  const bg::Checkpointer checkpointer(path, 3);
  CHECK(checkpointer.enabled());
  CHECK(checkpointer.due(3, false));
  CHECK(checkpointer.due(6, false));
  CHECK_FALSE(checkpointer.due(4, false));
  CHECK(checkpointer.due(4, true));  // after the last step
  CHECK_FALSE(bg::Checkpointer(path, 0).due(3, true));

  // Three steps, saved; the file is read into a model with another initialization.
  bg::BoltzmannGenerator a(small_model(), 11), c(small_model(), 99);
  auto adam_a = make_adam(a, t);
  bg::TrainingStep step_a(a, target, &data, t, nullptr);
  bg::TrainHistory h;
  for (int it = 0; it < 3; ++it) h.append(step_a(it, t.weights, 1e-2, adam_a));
  h.wall_seconds = 1.5;
  checkpointer.save(a, adam_a, h);
  CHECK_FALSE(std::filesystem::exists(path.string() + ".tmp"));
  bg::Checkpointer::Resumed resumed = checkpointer.load(c);
  CHECK(max_parameter_difference(a, c) == 0.0);
  CHECK(resumed.history.iterations_done == 3);
  CHECK(resumed.history.loss == h.loss);
  CHECK(resumed.history.energy_evaluations == h.energy_evaluations);
  CHECK(resumed.history.wall_seconds == 1.5);
  // The Adam moments came back too: the next step is the same on both.
  auto adam_c = make_adam(c, t);
  adam_c.load(resumed.adam);
  bg::TrainingStep step_c(c, target, &data, t, nullptr);
  const auto ra = step_a(3, t.weights, 1e-2, adam_a);
  const auto rc = step_c(3, t.weights, 1e-2, adam_c);
  CHECK(ra.loss == rc.loss);
  CHECK(max_parameter_difference(a, c) == 0.0);
  // Without the Adam state (a fresh Adam) the same step lands elsewhere.
  bg::BoltzmannGenerator d(small_model(), 99);
  checkpointer.load(d);
  auto adam_d = make_adam(d, t);
  bg::TrainingStep step_d(d, target, &data, t, nullptr);
  step_d(3, t.weights, 1e-2, adam_d);
  CHECK(max_parameter_difference(a, d) > 1e-6);
  std::filesystem::remove(path);
  CHECK_THROWS_AS(checkpointer.load(d), boltzlab::IoError);
}

TEST_CASE("trainer: the evaluation and checkpoint callbacks act when due") {
  const auto target = correlated_gaussian();
  bg::TrainOptions t;
  t.weights = bg::LossWeights::preset("ot-bg", false);
  t.iterations = 10;
  t.eval_every = 4;
  t.eval_samples = 300;
  t.seed = 3;
  t.progress = false;
  bg::BoltzmannGenerator g(small_model(), 4);
  auto adam = make_adam(g, t);
  bg::TrainHistory h;
  bg::StepRecord record;
  auto call = [&](bg::IterationCallback& cb, int iteration, bool last, bool stopping) {
    record.iteration = iteration;
    bg::IterationState state{record, last, stopping, g, adam, h};
    cb(state);
  };
  // Evaluation: at steps 4, 8, … and after the last, eval_samples energies each, and the
  // same draws every time (an untrained model gives the same ESS twice).
  bg::EvaluationCallback evaluation(target, nullptr, t);
  call(evaluation, 0, false, false);
  call(evaluation, 2, false, false);
  CHECK(h.eval_ess.empty());
  call(evaluation, 3, false, false);
  call(evaluation, 7, false, false);
  call(evaluation, 8, true, false);
  CHECK(h.eval_iteration == std::vector<double>{4, 8, 9});
  REQUIRE(h.eval_ess.size() == 3);
  CHECK(h.eval_ess[0] > 0.0);
  CHECK(h.eval_ess[0] <= 1.0);
  CHECK(h.eval_ess[1] == h.eval_ess[0]);
  CHECK(h.energy_evaluations == 3u * 300u);
  // The normalized Kish ESS of log w = −u − log q on the evaluation draws: the stream
  // seed ^ 0x5DEECE66D (training_callbacks.cpp; part of the reproducibility contract).
  const auto s = g.sample(300, t.seed ^ 0x5DEECE66DULL);
  Eigen::VectorXd lw(300);
  for (int i = 0; i < 300; ++i) lw[i] = -target.reduced_energy(s.x.row(i).data(), nullptr) - s.log_q[i];
  CHECK(h.eval_ess[0] == doctest::Approx(boltzlab::kish_ess(lw) / 300.0).epsilon(1e-12));
  CHECK(h.eval_ess[0] < 0.9);  // the untrained flow is not the target: the check is not vacuous

  // Checkpoints: when due, and when stopping early (only if enabled).
  const auto path = std::filesystem::temp_directory_path() / "boltzlab_test_callback_ckpt.pt";
  std::filesystem::remove(path);
  const bg::Checkpointer every5(path, 5);
  bg::CheckpointCallback checkpoints(every5);
  call(checkpoints, 2, false, false);
  CHECK_FALSE(std::filesystem::exists(path));
  call(checkpoints, 2, false, true);  // stop_after reached at step 3
  CHECK(std::filesystem::exists(path));
  std::filesystem::remove(path);
  call(checkpoints, 4, false, false);  // due: 5 steps done
  CHECK(std::filesystem::exists(path));
  std::filesystem::remove(path);
  const bg::Checkpointer never(path, 0);
  bg::CheckpointCallback no_checkpoints(never);
  call(no_checkpoints, 4, true, true);
  CHECK_FALSE(std::filesystem::exists(path));
}
