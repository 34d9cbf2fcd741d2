// Tests of lib/boltzlab/flows/mala_precond.*: MALA with a diagonal preconditioner
// estimated in warm-up. Statistical checks use fixed seeds and tolerances of 4 standard
// errors (a false-alarm rate of ~6e-5 per check, were the seed free): the particles are
// independent chains given the frozen preconditioner and step size, so at a fixed step
// they are i.i.d. replicas and a moment over particles has the ordinary i.i.d. standard
// error (flow_test_support.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "boltzlab/core/error.hpp"
#include "boltzlab/flows/mala_precond.hpp"
#include "boltzlab/targets/gaussian.hpp"
#include "flows/flow_test_support.hpp"

using namespace boltzlab;
using namespace boltzlab::testing;

namespace {

/// u(x1, x2) = (x1² − 1)² + 0.5 x1 + x2²/(2·0.2²): a tilted double well times a narrow
/// Gaussian, so the preconditioner matters (scales ~0.8 and 0.2) and reversibility is
/// tested where symmetry does not imply it. ∂u/∂x1 = 4x1(x1² − 1) + 0.5, ∂u/∂x2 = x2/0.04.
class TiltedWellTimesGaussian : public Target {
 public:
  std::string name() const override { return "tilted_well_x_gaussian"; }
  std::size_t dim() const override { return 2; }
  double reduced_energy(const double* x, double* grad) const override {
    const double q = x[0] * x[0] - 1.0;
    if (grad) {
      grad[0] = 4.0 * x[0] * q + 0.5;
      grad[1] = x[1] / 0.04;
    }
    return q * q + 0.5 * x[0] + 0.5 * x[1] * x[1] / 0.04;
  }
  /// Exact samples: x1 by rejection from the uniform density on [−3, 3] (accepted with
  /// probability exp(−(u1(x1) − u1_min)), u1_min < −0.52 bounding the tilted well from
  /// below; the mass beyond ±3 is < e^−60), x2 ~ N(0, 0.2²).
  Ensemble exact_samples(std::size_t n, std::uint64_t seed) const {
    const double u1_min = -0.53;
    Ensemble e(n, 2);
    Rng rng(seed, 4242);
    for (std::size_t i = 0; i < n; ++i) {
      double x1, u1;
      do {
        x1 = -3.0 + 6.0 * rng.uniform();
        u1 = (x1 * x1 - 1) * (x1 * x1 - 1) + 0.5 * x1;
      } while (rng.uniform() >= std::exp(-(u1 - u1_min)));
      e.particle(i)[0] = x1;
      e.particle(i)[1] = 0.2 * rng.normal();
    }
    return e;
  }
};

/// Everything a run returns, as JSON text: doubles print round-trip exactly (NaN, the
/// acceptance monitor at step 0, as null), so equal text means bit-identical results.
std::string fingerprint(const Ensemble& ensemble, const FlowResult& result) {
  auto values = [](const RowMatrix& m) { return std::vector<double>(m.data(), m.data() + m.size()); };
  nlohmann::json frames = nlohmann::json::array();
  for (const RowMatrix& f : result.frames) frames.push_back(values(f));
  return nlohmann::json{{"positions", values(ensemble.positions)},
                        {"energies", std::vector<double>(ensemble.reduced_energies.begin(),
                                                         ensemble.reduced_energies.end())},
                        {"frames", frames},
                        {"statistics", result.statistics},
                        {"monitor_steps", result.monitor_steps},
                        {"monitors", result.monitors}}
      .dump();
}

}  // namespace

TEST_CASE("mala-precond: exact mean and covariance of a badly scaled, correlated 2-D Gaussian") {
  // Standard deviations 2 and 0.25 (ratio 8), correlation 0.6.
  Eigen::VectorXd mu(2);
  mu << 1.0, -2.0;
  Eigen::MatrixXd cov(2, 2);
  cov << 4.0, 0.3, 0.3, 0.0625;
  const GaussianTarget target(mu, cov);
  Ensemble ens = normal_ensemble(4000, 2, 1.0, 2);
  FlowOptions opt;
  opt.warmup = 400;
  opt.steps = 600;
  opt.seed = 21;
  const FlowResult res = run_flow("mala-precond", {}, target, ens, opt);
  // The preconditioner is the ensemble's spread after 200 plain-MALA steps from N(0, I):
  // close to the marginal standard deviations (the wide coordinate is not fully relaxed
  // yet, hence the loose 25 %; any M gives an exact kernel, a good one mixes faster).
  const auto m = res.statistics["preconditioner_std"].get<std::vector<double>>();
  REQUIRE(m.size() == 2);
  CHECK(m[0] == doctest::Approx(2.0).epsilon(0.25));
  CHECK(m[1] == doctest::Approx(0.25).epsilon(0.25));
  CHECK(res.statistics["acceptance_rate"].get<double>() == doctest::Approx(0.574).epsilon(0.1));
  for (int a = 0; a < 2; ++a) {
    const MeanSe mean = mean_se(column(ens.positions, a));
    CHECK(std::fabs(mean.mean - mu[a]) < 4 * mean.se);
    for (int b = a; b < 2; ++b) {
      std::vector<double> prod(ens.size());
      for (std::size_t i = 0; i < ens.size(); ++i)
        prod[i] = (ens.particle(i)[a] - mu[a]) * (ens.particle(i)[b] - mu[b]);
      const MeanSe c = mean_se(prod);
      CAPTURE(a);
      CAPTURE(b);
      CHECK(std::fabs(c.mean - cov(a, b)) < 4 * c.se);
    }
  }
  // u at the returned positions (the map back from whitened coordinates is consistent).
  for (std::size_t i = 0; i < ens.size(); i += 97) {
    CHECK(ens.reduced_energies[static_cast<Eigen::Index>(i)] == target.reduced_energy(ens.particle(i), nullptr));
  }
}

TEST_CASE("mala-precond: from exact samples every step is stationary, and the sampling kernel reversible") {
  // Warm-up 2 (one plain-MALA step, M from the ensemble, one preconditioned step), then
  // 2 main steps recorded as frames: f0 → f1 is one step of the frozen kernel from π.
  // Stationarity: E f(x_end) = E f(x_0). Detailed balance: (f0, f1) is exchangeable, so
  // E[g(f0) h(f1) − h(f0) g(f1)] = 0. Paired differences over 200000 independent
  // particles give the standard errors. τ = 0.5 without adaptation: large enough that
  // a missing or wrong Metropolis correction would show (acceptance ~0.5, not ~1).
  const TiltedWellTimesGaussian target;
  const std::size_t n = 200000;
  Ensemble ens = target.exact_samples(n, 5);
  const Ensemble start = ens;
  FlowOptions opt;
  opt.warmup = 2;
  opt.steps = 2;
  opt.thin = 1;
  opt.step_size = 0.5;
  opt.seed = 14;
  const FlowResult res = run_flow("mala-precond", {{"adapt", false}}, target, ens, opt);
  REQUIRE(res.frames.size() == 2);
  const double acc = res.statistics["acceptance_rate"].get<double>();
  CHECK(acc > 0.2);
  CHECK(acc < 0.9);
  std::vector<double> d1(n), d2(n), d3(n), d4(n), anti1(n), anti2(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double* x0 = start.particle(i);
    const double* x = ens.particle(i);
    d1[i] = x[0] - x0[0];
    d2[i] = x[0] * x[0] - x0[0] * x0[0];
    d3[i] = x[0] * x[0] * x[0] - x0[0] * x0[0] * x0[0];
    d4[i] = x[1] * x[1] - x0[1] * x0[1];
    const auto i_row = static_cast<Eigen::Index>(i);
    const double a0 = res.frames[0](i_row, 0), b0 = res.frames[0](i_row, 1);
    const double a1 = res.frames[1](i_row, 0), b1 = res.frames[1](i_row, 1);
    anti1[i] = a0 * a1 * a1 - a0 * a0 * a1;
    anti2[i] = a0 * b1 * b1 - b0 * b0 * a1;
  }
  for (const auto* v : {&d1, &d2, &d3, &d4, &anti1, &anti2}) {
    const MeanSe m = mean_se(*v);
    CHECK(std::fabs(m.mean) < 4 * m.se);
  }
}

TEST_CASE("mala-precond: serial, 1 and 2 threads are bit-identical; schedule, counters, streams") {
  Eigen::VectorXd mu(3);
  mu << -1.0, 0.5, 3.0;
  Eigen::MatrixXd cov(3, 3);
  cov << 2.0, 0.3, 0.0, 0.3, 0.5, -0.1, 0.0, -0.1, 0.05;
  const GaussianTarget target(mu, cov);
  FlowOptions opt;
  opt.seed = 99;
  opt.warmup = 30;
  opt.steps = 50;
  opt.thin = 25;
  opt.monitor_every = 9;
  // threads = 0: Execution::kSerial.
  auto run = [&](const std::string& flow, FlowOptions o, int threads) {
    o.exec = threads == 0 ? Execution::kSerial : Execution::kParallel;
    set_num_threads(std::max(threads, 1));
    std::pair<Ensemble, FlowResult> out{normal_ensemble(150, 3, 1.5, 8), FlowResult{}};
    out.second = run_flow(flow, {}, target, out.first, o);
    set_num_threads(0);
    return out;
  };
  const auto [e_serial, r_serial] = run("mala-precond", opt, 0);
  const auto [e_one, r_one] = run("mala-precond", opt, 1);
  const auto [e_two, r_two] = run("mala-precond", opt, 2);
  CHECK(fingerprint(e_one, r_one) == fingerprint(e_serial, r_serial));
  CHECK(fingerprint(e_two, r_two) == fingerprint(e_serial, r_serial));
  REQUIRE(r_two.frames.size() == 2);
  CHECK(r_two.frames.back() == e_two.positions);

  // Schedule: both phases are counted (two initial evaluations), monitors run from step
  // 0 to warm-up + steps without repeating the phase boundary.
  CHECK(r_two.steps_done == 80);
  CHECK(r_two.energy_evaluations == 150 * (80 + 2));
  CHECK(r_two.monitor_steps.front() == 0.0);
  CHECK(r_two.monitor_steps.back() == 80.0);
  CHECK(std::adjacent_find(r_two.monitor_steps.begin(), r_two.monitor_steps.end(),
                           [](double a, double b) { return !(a < b); }) == r_two.monitor_steps.end());
  CHECK(r_two.monitors.at("mean_energy").size() == r_two.monitor_steps.size());
  CHECK(r_two.statistics["preconditioner_from_step"].get<int>() == 15);

  // Phase 1 is "mala" with W/2 warm-up steps on stream (seed, i): the preconditioner is
  // exactly the spread of that ensemble.
  FlowOptions first = opt;
  first.warmup = 15;
  first.steps = 0;
  first.thin = 0;
  const auto [e_mala, r_mala] = run("mala", first, 2);
  CHECK(r_two.statistics["preconditioner_std"].get<std::vector<double>>() ==
        preconditioner_std(e_mala, target.particle_layout()));
  // No warm-up: M = I, i.e. "mala" on the streams (seed ^ kPhaseTwoSeedMix, i).
  FlowOptions no_warmup = opt;
  no_warmup.warmup = 0;
  FlowOptions mixed = no_warmup;
  mixed.seed = opt.seed ^ MalaPrecondFlow::kPhaseTwoSeedMix;
  const auto [e_plain, r_plain] = run("mala-precond", no_warmup, 2);
  const auto [e_ref, r_ref] = run("mala", mixed, 2);
  CHECK(e_plain.positions == e_ref.positions);
  CHECK(r_plain.statistics["preconditioner_std"].get<std::vector<double>>() == std::vector<double>(3, 1.0));
}

TEST_CASE("mala-precond: preconditioner estimate (plain, pooled per axis for particles, fallbacks)") {
  Ensemble e(4, 4);
  const double rows[4][4] = {{0, 0, 1, 2}, {1, 2, 3, 4}, {2, 4, 5, 6}, {9, 9, 9, 9}};
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t k = 0; k < 4; ++k) e.particle(i)[k] = rows[i][k];
  e.reduced_energies << 0.0, 0.0, 0.0, std::numeric_limits<double>::infinity();  // row 3 left out
  // Plain: per-coordinate sample variances of rows 0–2: 1, 4, 4, 4.
  CHECK(preconditioner_std(e, {0, 0}) == std::vector<double>{1.0, 2.0, 2.0, 2.0});
  // 2 particles in 2-D: axis 0 pools columns 0, 2 of rows 0–2 (0, 1, 1, 3, 2, 5), axis 1
  // columns 1, 3 (0, 2, 2, 4, 4, 6); the standard deviation of each pool, per axis.
  auto var = [](std::vector<double> v) {
    double m = 0;
    for (double x : v) m += x;
    m /= static_cast<double>(v.size());
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return s / static_cast<double>(v.size() - 1);
  };
  const double s0 = std::sqrt(var({0, 1, 1, 3, 2, 5})), s1 = std::sqrt(var({0, 2, 2, 4, 4, 6}));
  const std::vector<double> pooled = preconditioner_std(e, {2, 2});
  REQUIRE(pooled.size() == 4);
  CHECK(pooled[0] == doctest::Approx(s0).epsilon(1e-15));
  CHECK(pooled[2] == pooled[0]);
  CHECK(pooled[1] == doctest::Approx(s1).epsilon(1e-15));
  CHECK(pooled[3] == pooled[1]);
  // One finite particle, or a frozen coordinate: M = 1 there.
  e.reduced_energies << 0.0, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity(),
      std::numeric_limits<double>::infinity();
  CHECK(preconditioner_std(e, {0, 0}) == std::vector<double>(4, 1.0));
  Ensemble frozen(3, 1);
  frozen.positions.setConstant(2.0);
  frozen.reduced_energies.setZero();
  CHECK(preconditioner_std(frozen, {0, 0}) == std::vector<double>{1.0});
}

TEST_CASE("mala-precond: registry row and parameters") {
  CHECK_FALSE(flow_info("mala-precond").interacting);
  CHECK_THROWS_WITH_AS(make_flow("mala-precnd", {}, "--flow"), doctest::Contains("did you mean 'mala-precond'"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(make_flow("mala-precond", {{"target_acceptence", 0.5}}, "--param"),
                       doctest::Contains("target_acceptance"), ConfigError);
  CHECK_THROWS_AS(make_flow("mala-precond", {{"target_acceptance", 1.5}}, "--param"), ConfigError);
  CHECK(make_flow("mala-precond", {{"adapt", false}}, "--param")->name() == "mala-precond");
}
