// Reverse-KL gradient through the target bridge vs finite differences, training on
// a Gaussian (ESS and log Z against the exact value), checkpoint/resume, config errors.
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
