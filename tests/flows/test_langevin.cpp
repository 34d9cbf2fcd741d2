// Tests of lib/boltzlab/flows/langevin.*: ULA, MALA, BAOAB on targets with known
// answers. Statistical checks use fixed seeds and tolerances of 4 standard errors
// (a false alarm rate of ~6e-5 per check); the particles are independent chains, so
// at the final step they are i.i.d. replicas (see flow_test_support.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "boltzlab/core/error.hpp"
#include "boltzlab/flows/langevin.hpp"
#include "boltzlab/targets/gaussian.hpp"
#include "flows/flow_test_support.hpp"

using namespace boltzlab;
using namespace boltzlab::testing;

namespace {

GaussianTarget diagonal_gaussian(const std::vector<double>& mean, const std::vector<double>& std) {
  const auto d = static_cast<Eigen::Index>(mean.size());
  Eigen::VectorXd mu(d);
  Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(d, d);
  for (Eigen::Index k = 0; k < d; ++k) {
    mu[k] = mean[static_cast<std::size_t>(k)];
    cov(k, k) = std[static_cast<std::size_t>(k)] * std[static_cast<std::size_t>(k)];
  }
  return GaussianTarget(mu, cov);
}

/// Translation-invariant springs: u = (k/2) Σ_{i<j} |x_i − x_j|² for n particles in s
/// dimensions; ∂u/∂x_i = k Σ_{j≠i} (x_i − x_j) = k (n x_i − Σ_j x_j). Homogeneous of
/// degree 2, so x·∇u = 2u and the virial identity gives ⟨x·∇u⟩ = (n−1)s on the
/// centre-of-mass-free subspace.
class SpringCluster : public Target {
 public:
  SpringCluster(std::size_t n, std::size_t s, double k) : n_(n), s_(s), k_(k) {}
  std::string name() const override { return "springs"; }
  std::size_t dim() const override { return n_ * s_; }
  std::pair<std::size_t, std::size_t> particle_layout() const override { return {n_, s_}; }
  double reduced_energy(const double* x, double* grad) const override {
    double u = 0.0;
    for (std::size_t i = 0; i < n_; ++i)
      for (std::size_t j = i + 1; j < n_; ++j)
        for (std::size_t a = 0; a < s_; ++a) {
          const double r = x[i * s_ + a] - x[j * s_ + a];
          u += 0.5 * k_ * r * r;
        }
    if (grad) {
      for (std::size_t a = 0; a < s_; ++a) {
        double sum = 0.0;
        for (std::size_t j = 0; j < n_; ++j) sum += x[j * s_ + a];
        for (std::size_t i = 0; i < n_; ++i)
          grad[i * s_ + a] = k_ * (static_cast<double>(n_) * x[i * s_ + a] - sum);
      }
    }
    return u;
  }

 private:
  std::size_t n_, s_;
  double k_;
};

/// Asymmetric 1-D double well u(x) = (x² − 1)² + 0.5 x (barrier ≈ 1): not Gaussian,
/// not symmetric, so reversibility is tested where it is not implied by symmetry.
class TiltedWell : public Target {
 public:
  std::string name() const override { return "tilted_well"; }
  std::size_t dim() const override { return 1; }
  /// u'(x) = 4x(x² − 1) + 0.5.
  double reduced_energy(const double* x, double* grad) const override {
    const double a = x[0] * x[0] - 1.0;
    if (grad) grad[0] = 4.0 * x[0] * a + 0.5;
    return a * a + 0.5 * x[0];
  }
};

/// Exact samples of a 1-D density ∝ exp(−u) by inverting its CDF tabulated on a fine
/// grid (trapezoid rule, linear interpolation; error ~1e-8 on [−4, 4]).
Ensemble exact_1d_samples(const Target& target, std::size_t n, std::uint64_t seed) {
  const int m = 200001;
  const double lo = -4.0, hi = 4.0, h = (hi - lo) / (m - 1);
  std::vector<double> cdf(m, 0.0);
  double prev = std::exp(-target.reduced_energy(&lo, nullptr));
  for (int k = 1; k < m; ++k) {
    const double x = lo + h * k;
    const double cur = std::exp(-target.reduced_energy(&x, nullptr));
    cdf[k] = cdf[k - 1] + 0.5 * h * (prev + cur);
    prev = cur;
  }
  Ensemble e(n, 1);
  Rng rng(seed, 4242);
  for (std::size_t i = 0; i < n; ++i) {
    const double target_mass = rng.uniform() * cdf[m - 1];
    const auto it = std::upper_bound(cdf.begin(), cdf.end(), target_mass);
    const long k = std::clamp<long>(it - cdf.begin(), 1, m - 1);
    const double f = (target_mass - cdf[k - 1]) / (cdf[k] - cdf[k - 1]);
    e.particle(i)[0] = lo + h * (static_cast<double>(k - 1) + f);
  }
  return e;
}

/// Equality of monitor traces, treating NaN (MALA's acceptance at step 0) as equal.
bool same_monitors(const std::map<std::string, std::vector<double>>& a,
                   const std::map<std::string, std::vector<double>>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, v] : a) {
    const auto it = b.find(k);
    if (it == b.end() || it->second.size() != v.size()) return false;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double x = v[i], y = it->second[i];
      if (!(x == y || (std::isnan(x) && std::isnan(y)))) return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("ula: stationary variance on a Gaussian is sigma^2/(1 - tau/(2 sigma^2))") {
  // ULA on u = (x−μ)²/(2σ²) is the AR(1) map x' = μ + (1 − τ/σ²)(x − μ) + √(2τ)ξ, whose
  // stationary law is N(μ, σ²/(1 − τ/(2σ²))): exact mean, inflated variance.
  const std::vector<double> mean = {1.0, -1.0, 0.0}, std = {0.5, 1.0, 2.0};
  const GaussianTarget target = diagonal_gaussian(mean, std);
  const double tau = 0.1;
  Ensemble ens = normal_ensemble(10000, 3, 1.0, 1);
  FlowOptions opt;
  opt.steps = 800;  // slowest contraction (1 − τ/4)^800 ≈ 1e-9
  opt.step_size = tau;
  opt.seed = 11;
  run_flow("ula", {}, target, ens, opt);
  for (int k = 0; k < 3; ++k) {
    const auto col = column(ens.positions, k);
    const double s2 = std[k] * std[k];
    const MeanSe m = mean_se(col);
    const MeanSe v = variance_se(col);
    const double expected = s2 / (1.0 - tau / (2.0 * s2));
    CHECK(std::fabs(m.mean - mean[k]) < 4 * m.se);
    CHECK(std::fabs(v.mean - expected) < 4 * v.se);
    if (k == 0) CHECK(std::fabs(v.mean - s2) > 8 * v.se);  // the O(τ) bias (≈ 14 SE) is resolved
  }
}

TEST_CASE("mala: exact moments of a correlated Gaussian and adapted acceptance near 0.574") {
  Eigen::VectorXd mu(3);
  mu << 0.5, -2.0, 1.0;
  Eigen::MatrixXd cov(3, 3);
  cov << 1.0, 0.8, 0.0, 0.8, 1.0, 0.3, 0.0, 0.3, 2.0;
  const GaussianTarget target(mu, cov);
  Ensemble ens = normal_ensemble(4000, 3, 1.0, 2);
  FlowOptions opt;
  opt.warmup = 300;
  opt.steps = 700;
  opt.seed = 12;
  const FlowResult res = run_flow("mala", {{"target_acceptance", 0.574}}, target, ens, opt);
  // Dual averaging settles τ̄ near the target; the realized rate with the frozen τ̄ is
  // within a few percent of it (not an exact equality: τ̄ is an average of log τ).
  const double acc = res.statistics["acceptance_rate"].get<double>();
  CHECK(acc == doctest::Approx(0.574).epsilon(0.1));
  CHECK(res.statistics["step_size"].get<double>() > 0.0);
  for (int a = 0; a < 3; ++a) {
    const MeanSe m = mean_se(column(ens.positions, a));
    CHECK(std::fabs(m.mean - mu[a]) < 4 * m.se);
    for (int b = a; b < 3; ++b) {
      std::vector<double> prod(ens.size());
      for (std::size_t i = 0; i < ens.size(); ++i)
        prod[i] = (ens.positions(static_cast<Eigen::Index>(i), a) - mu[a]) *
                  (ens.positions(static_cast<Eigen::Index>(i), b) - mu[b]);
      const MeanSe c = mean_se(prod);
      CHECK(std::fabs(c.mean - cov(a, b)) < 4 * c.se);
    }
  }
}

TEST_CASE("mala: exact at a step size where ULA is visibly biased") {
  // σ = 0.5, τ = 0.3: ULA's variance would be 0.25/(1 − 0.6) = 0.625; MALA keeps 0.25.
  const GaussianTarget target = diagonal_gaussian({1.0}, {0.5});
  FlowOptions opt;
  opt.steps = 300;
  opt.step_size = 0.3;
  opt.seed = 13;
  Ensemble mala = normal_ensemble(20000, 1, 1.0, 3);
  const FlowResult res = run_flow("mala", {{"adapt", false}}, target, mala, opt);
  CHECK(res.statistics["step_size"].get<double>() == 0.3);
  const MeanSe v = variance_se(column(mala.positions, 0));
  CHECK(std::fabs(v.mean - 0.25) < 4 * v.se);
  Ensemble ula = normal_ensemble(20000, 1, 1.0, 3);
  run_flow("ula", {}, target, ula, opt);
  const MeanSe vu = variance_se(column(ula.positions, 0));
  CHECK(std::fabs(vu.mean - 0.625) < 4 * vu.se);
}

TEST_CASE("mala: one step from exact samples is stationary and reversible (tilted double well)") {
  // x ~ π exactly, x' = one MALA step. Invariance: E f(x') = E f(x). Detailed balance:
  // (x, x') is exchangeable, so D = E[x x'² − x² x'] = 0. Paired differences over
  // independent particles give the standard errors. ULA with the same τ must fail the
  // invariance check (the test has power).
  const TiltedWell target;
  const std::size_t n = 200000;
  FlowOptions opt;
  opt.steps = 1;
  opt.step_size = 0.25;
  opt.seed = 14;
  auto check = [&](const std::string& flow, bool expect_exact) {
    Ensemble ens = exact_1d_samples(target, n, 5);
    const Ensemble before = ens;
    run_flow(flow, {{"adapt", false}}, target, ens, opt);
    std::vector<double> d1(n), d2(n), d3(n), anti(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double x = before.particle(i)[0], y = ens.particle(i)[0];
      d1[i] = y - x;
      d2[i] = y * y - x * x;
      d3[i] = y * y * y - x * x * x;
      anti[i] = x * y * y - x * x * y;
    }
    const MeanSe m1 = mean_se(d1), m2 = mean_se(d2), m3 = mean_se(d3), ma = mean_se(anti);
    if (expect_exact) {
      CHECK(std::fabs(m1.mean) < 4 * m1.se);
      CHECK(std::fabs(m2.mean) < 4 * m2.se);
      CHECK(std::fabs(m3.mean) < 4 * m3.se);
      CHECK(std::fabs(ma.mean) < 4 * ma.se);
    } else {
      CHECK(std::max({std::fabs(m1.mean) / m1.se, std::fabs(m2.mean) / m2.se, std::fabs(m3.mean) / m3.se}) > 8);
    }
  };
  check("mala", true);
  opt.step_size = 0.25;
  // ULA takes no "adapt" key: run it through the class directly.
  Ensemble ens = exact_1d_samples(target, n, 5);
  const Ensemble before = ens;
  opt.progress = false;
  UlaFlow().run(target, ens, opt);
  std::vector<double> d2(n);
  for (std::size_t i = 0; i < n; ++i) d2[i] = ens.particle(i)[0] * ens.particle(i)[0] - before.particle(i)[0] * before.particle(i)[0];
  const MeanSe m2 = mean_se(d2);
  CHECK(std::fabs(m2.mean) > 8 * m2.se);
}

TEST_CASE("baoab: exact configurational variance on a harmonic target and kinetic temperature 1 - h^2 w^2/4") {
  // For u = x²/(2σ²) and mass m (ω² = 1/(mσ²)), BAOAB's stationary position variance is
  // exactly σ² for any stable h (Leimkuhler & Matthews 2013), while ⟨p²⟩/m = 1 − h²ω²/4
  // (checked against the discrete Lyapunov equation of the linear BAOAB map).
  const double sigma = 0.5, mass = 2.0, h = 0.5;
  const double w2 = 1.0 / (mass * sigma * sigma);
  const GaussianTarget target = diagonal_gaussian({0.0}, {sigma});
  Ensemble ens = normal_ensemble(20000, 1, 1.0, 6);
  FlowOptions opt;
  opt.steps = 400;
  opt.step_size = h;
  opt.seed = 15;
  opt.monitor_every = 400;
  const FlowResult res = run_flow("baoab", {{"friction", 1.0}, {"mass", mass}}, target, ens, opt);
  const MeanSe v = variance_se(column(ens.positions, 0));
  CHECK(std::fabs(v.mean - sigma * sigma) < 4 * v.se);
  // Kinetic temperature at the final step: mean of p²/m over independent particles,
  // p²/m ~ T·χ²₁ with variance 2T², so SE = T√(2/N).
  const double kt = res.monitors.at("kinetic_temperature").back();
  const double expected = 1.0 - h * h * w2 / 4.0;
  CHECK(std::fabs(kt - expected) < 4 * expected * std::sqrt(2.0 / 20000.0));
  CHECK(std::fabs(kt - 1.0) > 8 * std::sqrt(2.0 / 20000.0));  // the bias is resolved
}

TEST_CASE("langevin flows: centre of mass stays removed and the virial equals (n-1)s") {
  const SpringCluster target(4, 2, 1.5);
  for (const std::string flow : {"mala", "baoab", "ula"}) {
    CAPTURE(flow);
    Ensemble ens = normal_ensemble(4000, 8, 1.0, 7, 3.0);  // not centred
    FlowOptions opt;
    opt.warmup = 200;
    opt.steps = 400;
    opt.step_size = flow == "ula" ? 0.002 : 0.1;
    opt.seed = 16;
    run_flow(flow, {}, target, ens, opt);
    std::vector<double> virial(ens.size());
    std::vector<double> g(8);
    double worst_com = 0.0;
    for (std::size_t i = 0; i < ens.size(); ++i) {
      const double* x = ens.particle(i);
      target.reduced_energy(x, g.data());
      double s = 0.0;
      for (int k = 0; k < 8; ++k) s += x[k] * g[static_cast<std::size_t>(k)];
      virial[i] = s;
      for (int a = 0; a < 2; ++a)
        worst_com = std::max(worst_com, std::fabs(x[a] + x[2 + a] + x[4 + a] + x[6 + a]));
    }
    CHECK(worst_com < 1e-10);
    const MeanSe m = mean_se(virial);
    // ULA at τ = 0.002 with stiffest mode k·n = 6: bias factor 1/(1 − τ·6/2) ≈ 1.006,
    // well inside 4 SE (≈ 0.07 of 6).
    CHECK(std::fabs(m.mean - 6.0) < 4 * m.se);
  }
}

TEST_CASE("langevin flows: serial, 1 thread and 2 threads give bit-identical results") {
  const GaussianTarget target = diagonal_gaussian({0.0, 1.0, 2.0, 3.0, 4.0}, {1.0, 0.5, 2.0, 1.0, 0.3});
  for (const std::string flow : {"ula", "mala", "baoab"}) {
    CAPTURE(flow);
    FlowOptions opt;
    opt.warmup = 20;
    opt.steps = 60;
    opt.thin = 20;
    opt.seed = 99;
    opt.monitor_every = 7;
    opt.step_size = 0.05;
    auto run = [&](Execution exec, int threads) {
      set_num_threads(threads);
      Ensemble ens = normal_ensemble(237, 5, 1.0, 8);
      opt.exec = exec;
      FlowResult r = run_flow(flow, {}, target, ens, opt);
      set_num_threads(0);
      return std::make_pair(ens, r);
    };
    const auto [e_serial, r_serial] = run(Execution::kSerial, 1);
    const auto [e_one, r_one] = run(Execution::kParallel, 1);
    const auto [e_two, r_two] = run(Execution::kParallel, 2);
    for (const auto* pr : {&r_one, &r_two}) {
      CHECK(pr->statistics.dump() == r_serial.statistics.dump());
      CHECK(same_monitors(pr->monitors, r_serial.monitors));
      CHECK(pr->monitor_steps == r_serial.monitor_steps);
      REQUIRE(pr->frames.size() == 3);
      for (std::size_t f = 0; f < 3; ++f) CHECK(pr->frames[f] == r_serial.frames[f]);
    }
    CHECK(e_one.positions == e_serial.positions);
    CHECK(e_two.positions == e_serial.positions);
    CHECK(e_two.reduced_energies == e_serial.reduced_energies);
    // The last frame is the final ensemble (steps is a multiple of thin).
    CHECK(r_two.frames.back() == e_two.positions);
    // Monitors at step 0, every 7 steps, and the last step.
    CHECK(r_two.monitor_steps.front() == 0.0);
    CHECK(r_two.monitor_steps.back() == 80.0);
  }
}

TEST_CASE("langevin flows: annealing, tolerance stop and counters") {
  const GaussianTarget target = diagonal_gaussian({0.0, 0.0}, {1.0, 1.0});
  SUBCASE("beta annealing ends at the target") {
    Ensemble ens = normal_ensemble(4000, 2, 1.0, 9, 5.0);
    FlowOptions opt;
    opt.warmup = 200;
    opt.steps = 400;
    opt.seed = 17;
    opt.beta.start = 0.1;
    opt.beta.steps = 150;
    const FlowResult res = run_flow("mala", {}, target, ens, opt);
    CHECK(res.statistics["beta_final"].get<double>() == 1.0);
    const MeanSe v = variance_se(column(ens.positions, 1));
    CHECK(std::fabs(v.mean - 1.0) < 4 * v.se);
    CHECK(res.energy_evaluations == 4000 * 601);
    CHECK(res.non_finite == 0);
  }
  SUBCASE("tolerance stops a relaxation early") {
    Ensemble ens = normal_ensemble(4000, 2, 1.0, 10, 8.0);
    FlowOptions opt;
    opt.steps = 5000;
    opt.step_size = 0.05;
    opt.tolerance = 0.05;  // ≫ the noise of ⟨u⟩ over 4000 particles (≈ 0.02)
    opt.monitor_every = 20;
    const FlowResult res = run_flow("ula", {}, target, ens, opt);
    CHECK(res.converged);
    CHECK(res.steps_done < 5000);
    CHECK(res.monitors.at("mean_energy").back() == doctest::Approx(1.0).epsilon(0.15));
  }
  SUBCASE("non-finite energies are counted, never thrown") {
    class Wall : public Target {
     public:
      std::string name() const override { return "wall"; }
      std::size_t dim() const override { return 1; }
      double reduced_energy(const double* x, double* g) const override {
        if (g) g[0] = x[0];
        return x[0] > 2.0 ? std::numeric_limits<double>::infinity() : 0.5 * x[0] * x[0];
      }
    } wall;
    Ensemble ens = normal_ensemble(1000, 1, 1.0, 11);
    FlowOptions opt;
    opt.steps = 200;
    opt.step_size = 0.5;
    const FlowResult res = run_flow("mala", {{"adapt", false}}, wall, ens, opt);
    CHECK(res.non_finite > 0);
    CHECK(ens.positions.maxCoeff() <= 2.0);  // rejected, never accepted
  }
}

TEST_CASE("mala: each chain adapts its own step size in warm-up, then keeps it") {
  // A narrow Gaussian (σ = 0.1), half the chains started 40σ out on its wall, and an
  // initial step τ₀ = 0.5 = 50σ², so that every first proposal overshoots. With
  // per-chain adaptation each chain shrinks its own step, reaches the bulk and ends
  // near the target acceptance; without adaptation they all stay stuck.
  const GaussianTarget target = diagonal_gaussian({0.0}, {0.1});
  Ensemble ens = normal_ensemble(400, 1, 0.1, 31);
  for (std::size_t i = 0; i < 200; ++i) ens.particle(i)[0] = 4.0;
  FlowOptions opt;
  opt.warmup = 300;
  opt.steps = 400;
  opt.seed = 32;
  opt.step_size = 0.5;
  const FlowResult res = run_flow("mala", {}, target, ens, opt);
  CHECK(res.health.stuck_assessed);
  CHECK(res.health.stuck == 0);
  // Per-chain rates over 400 steps: a chain at the target 0.574 has a binomial sd of
  // 0.025, and the spread of the frozen τ_i adds a few percent (seen: min 0.43), so a
  // chain below 0.3 (11 binomial sd under the target) would be a badly adapted one.
  MESSAGE("per-chain acceptance: min " << res.statistics["acceptance_rate_min"] << ", overall "
                                       << res.statistics["acceptance_rate"] << "; step sizes "
                                       << res.statistics["step_size_quantiles"]);
  CHECK(res.statistics["acceptance_rate_min"].get<double>() > 0.3);
  const MeanSe v = variance_se(column(ens.positions, 0));
  CHECK(std::fabs(v.mean - 0.01) < 4 * v.se);
  // Without adaptation, the same start leaves every chain stuck (τ = 0.5 ≫ σ²).
  Ensemble frozen = normal_ensemble(400, 1, 0.1, 31);
  for (std::size_t i = 0; i < 200; ++i) frozen.particle(i)[0] = 4.0;
  const FlowResult fixed = run_flow("mala", {{"adapt", false}}, target, frozen, opt);
  CHECK(fixed.health.stuck_assessed);
  CHECK(fixed.health.stuck > 390);
  CHECK(fixed.statistics["stuck_particles"] == fixed.health.stuck);
  CHECK(fixed.health.problem().find("particles are stuck (no accepted move in the last 100 of 400") !=
        std::string::npos);
}

TEST_CASE("mala: stuck chains: the rule, its parameters, and not assessed on short runs") {
  const GaussianTarget target = diagonal_gaussian({0.0}, {1.0});
  FlowOptions opt;
  opt.steps = 60;
  opt.seed = 33;
  Ensemble ens = normal_ensemble(50, 1, 1.0, 34);
  const FlowResult shortrun = run_flow("mala", {}, target, ens, opt);
  CHECK_FALSE(shortrun.health.stuck_assessed);
  CHECK(shortrun.statistics["stuck_particles"].is_null());
  CHECK(shortrun.health.stuck_rule().find("not assessed: 60 sampling steps, fewer than the window of 100") == 0);
  CHECK(shortrun.health.ok());
  // A window of 50 assesses the same run; a healthy chain is not stuck.
  Ensemble again = normal_ensemble(50, 1, 1.0, 34);
  const FlowResult windowed = run_flow("mala", {{"stuck_window", 50}}, target, again, opt);
  CHECK(windowed.health.stuck_assessed);
  CHECK(windowed.health.stuck == 0);
  // τ = 2 on N(0, 1) accepts about 40 % of the proposals: a threshold of 0.9 marks every
  // chain (60 steps at p ≈ 0.4 reach a rate of 0.9 with probability < 1e-15).
  Ensemble all = normal_ensemble(50, 1, 1.0, 34);
  opt.step_size = 2.0;
  const FlowResult strict = run_flow("mala", {{"stuck_window", 50}, {"stuck_acceptance", 0.9}}, target, all, opt);
  CHECK(strict.health.stuck == 50);
  CHECK_FALSE(strict.health.ok());
  CHECK_THROWS_WITH_AS(make_flow("mala", {{"stuck_window", 0}}, "--param"), doctest::Contains("stuck_window"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(make_flow("mala", {{"stuck_acceptance", 1.0}}, "--param"),
                       doctest::Contains("stuck_acceptance is 1"), ConfigError);
}

TEST_CASE("flow registry: parameters are validated with suggestions") {
  CHECK_THROWS_WITH_AS(make_flow("mal", {}, "wgf-relax --flow"), doctest::Contains("did you mean 'mala'"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(make_flow("mala", {{"target_acceptence", 0.5}}, "--param"),
                       doctest::Contains("target_acceptance"), ConfigError);
  CHECK_THROWS_AS(make_flow("mala", {{"target_acceptance", 1.5}}, "--param"), ConfigError);
  CHECK_THROWS_AS(make_flow("baoab", {{"friction", -1.0}}, "--param"), ConfigError);
  CHECK_THROWS_AS(make_flow("baoab", {{"mass", 0.0}}, "--param"), ConfigError);
  CHECK_THROWS_AS(make_flow("ula", {{"friction", 1.0}}, "--param"), ConfigError);
  FlowOptions opt;
  opt.step_size = -0.1;
  CHECK_THROWS_AS(opt.validate(), ConfigError);
}
