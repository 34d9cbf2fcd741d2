// Annealed SMC against known answers: log Z and mode populations of a two-mode mixture, the
// ancestry variance estimate against the spread of repeated runs, a periodic target on the
// circle, thread independence and the error paths. Statistical checks use fixed seeds and
// 4-standard-error tolerances (false-failure probability ≈ 6e-5 per check under the normal
// approximation), the standard errors computed from the runs themselves.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/estimators/annealed_smc.hpp"
#include "boltzlab/targets/gaussian_mixture.hpp"

using namespace boltzlab;

namespace {

constexpr double kPi = 3.14159265358979323846;

/// Two well-separated modes in 2-D, weights 0.3 (x₀ = −3) and 0.7 (x₀ = +3), unnormalized by 2.5.
GaussianMixtureTarget two_modes() {
  Eigen::VectorXd m1(2), m2(2);
  m1 << -3.0, 0.0;
  m2 << 3.0, 0.5;
  Eigen::MatrixXd c1 = 0.25 * Eigen::MatrixXd::Identity(2, 2), c2 = 0.5 * Eigen::MatrixXd::Identity(2, 2);
  return GaussianMixtureTarget({0.3 * 2.5, 0.7 * 2.5}, {m1, m2}, {c1, c2});
}

/// Weighted P(x₀ > 0) of a run.
double right_mode(const AnnealedSmcResult& r) {
  double num = 0.0, den = 0.0;
  const double m = r.log_weights.maxCoeff();
  for (Eigen::Index i = 0; i < r.z.rows(); ++i) {
    const double w = std::exp(r.log_weights[i] - m);
    den += w;
    if (r.z(i, 0) > 0.0) num += w;
  }
  return num / den;
}

/// Kish ESS / N of log-weights.
double ess_of(const Eigen::VectorXd& lw) {
  const Eigen::ArrayXd w = (lw.array() - lw.maxCoeff()).exp();
  return w.sum() * w.sum() / (w.square().sum() * static_cast<double>(lw.size()));
}

struct Moments {
  double mean = 0.0, var = 0.0, m4 = 0.0;
};
Moments moments(const std::vector<double>& v) {
  Moments m;
  for (double x : v) m.mean += x;
  m.mean /= static_cast<double>(v.size());
  for (double x : v) {
    const double c = (x - m.mean) * (x - m.mean);
    m.var += c;
    m.m4 += c * c;
  }
  m.var /= static_cast<double>(v.size() - 1);
  m.m4 /= static_cast<double>(v.size());
  return m;
}

/// Uniform on the circle to the von Mises density e^{κ cos(z − μ)}, Z = 2π I₀(κ).
class CirclePath : public AnnealingPath {
 public:
  CirclePath(double kappa, double mu) : kappa_(kappa), mu_(mu) {}
  std::size_t dim() const override { return 1; }
  RowMatrix sample_reference(std::size_t n, std::uint64_t seed) const override {
    RowMatrix z(static_cast<Eigen::Index>(n), 1);
    for (std::size_t i = 0; i < n; ++i) z(static_cast<Eigen::Index>(i), 0) = -kPi + 2.0 * kPi * Rng(seed, i).uniform();
    return z;
  }
  std::size_t evaluate(const RowMatrix& z, PathValues& out) const override {
    const Eigen::Index n = z.rows();
    out.u0 = Eigen::VectorXd::Constant(n, std::log(2.0 * kPi));
    out.g0 = RowMatrix::Zero(n, 1);
    out.u1.resize(n);
    out.g1.resize(n, 1);
    for (Eigen::Index i = 0; i < n; ++i) {
      out.u1[i] = -kappa_ * std::cos(z(i, 0) - mu_);
      out.g1(i, 0) = kappa_ * std::sin(z(i, 0) - mu_);
    }
    return static_cast<std::size_t>(n);
  }
  std::vector<std::size_t> periodic_columns() const override { return {0}; }

 private:
  double kappa_, mu_;
};

/// A target with no mass anywhere.
class NowherePath : public AnnealingPath {
 public:
  std::size_t dim() const override { return 1; }
  RowMatrix sample_reference(std::size_t n, std::uint64_t) const override {
    return RowMatrix::Zero(static_cast<Eigen::Index>(n), 1);
  }
  std::size_t evaluate(const RowMatrix& z, PathValues& out) const override {
    out.u0 = Eigen::VectorXd::Zero(z.rows());
    out.u1 = Eigen::VectorXd::Constant(z.rows(), std::numeric_limits<double>::infinity());
    out.g0 = out.g1 = RowMatrix::Zero(z.rows(), 1);
    return static_cast<std::size_t>(z.rows());
  }
};

}  // namespace

TEST_CASE("estimators.annealed_smc: log Z and mode weights of a two-mode mixture from a broad Gaussian") {
  const GaussianMixtureTarget target = two_modes();
  const GaussianReferencePath path(target, Eigen::VectorXd::Zero(2), 4.0);
  AnnealedSmcOptions o;
  o.seed = 7;
  const AnnealedSmcResult r = run_annealed_smc(path, 4000, o);
  CHECK(r.rungs.size() >= 3);
  CHECK(r.rungs.back().beta == 1.0);
  CHECK(r.resamplings >= 1);
  CHECK(r.log_z_se > 0.0);
  CHECK(r.log_z_se < 0.1);
  // log Ẑ within 4 of its own (ancestry) standard errors of the exact value.
  CHECK(std::abs(r.log_z - *target.log_z()) < 4.0 * r.log_z_se);
  // The log-weights carry the estimate: log mean exp(log w) = log Ẑ.
  const double m = r.log_weights.maxCoeff();
  CHECK(m + std::log((r.log_weights.array() - m).exp().mean()) == doctest::Approx(r.log_z).epsilon(1e-12));
  // Each mode got its share (0.7 on the right): binomial se with the surviving lines as the
  // sample size is a conservative yardstick (≥ the se of N independent draws).
  const double n_eff = static_cast<double>(r.distinct_ancestors);
  CHECK(std::abs(right_mode(r) - 0.7) < 4.0 * std::sqrt(0.21 / n_eff) + 0.01);
  CHECK(r.evaluations == 4000 * (1 + 2 * r.rungs.size()));
  for (const SmcRung& k : r.rungs) {
    CHECK(k.acceptance > 0.2);
    CHECK(k.acceptance <= 1.0);
  }
}

TEST_CASE("estimators.annealed_smc: Ẑ is unbiased and the ancestry variance matches the spread of repeats") {
  // 200 independent small runs (N = 100): E[Ẑ/Z] = 1 and E[V̂/Ẑ²] ≈ Var(Ẑ/Z); both checked with
  // standard errors of the means taken from the repeats (sample-variance se from the 4th moment).
  const GaussianMixtureTarget target = two_modes();
  const GaussianReferencePath path(target, Eigen::VectorXd::Zero(2), 4.0);
  std::vector<double> ratio, rel_var, right;
  for (int rep = 0; rep < 200; ++rep) {
    AnnealedSmcOptions o;
    o.seed = 1000 + static_cast<std::uint64_t>(rep);
    o.cess = 0.8;
    const AnnealedSmcResult r = run_annealed_smc(path, 100, o, {}, Execution::kSerial);
    ratio.push_back(std::exp(r.log_z - *target.log_z()));
    rel_var.push_back(r.log_z_se * r.log_z_se);
    right.push_back(right_mode(r));
  }
  const Moments z = moments(ratio), v = moments(rel_var), p = moments(right);
  const double reps = 200.0;
  CHECK(std::abs(z.mean - 1.0) < 4.0 * std::sqrt(z.var / reps));
  // Var(Ẑ/Z) estimated by the repeats (se² ≈ (m4 − var²)/R) against the mean estimate (se² = var(V̂)/R).
  const double se_emp = std::sqrt(std::max(0.0, z.m4 - z.var * z.var) / reps);
  const double se_est = std::sqrt(v.var / reps);
  MESSAGE("Var(Z/Z) repeats ", z.var, " ± ", se_emp, "; ancestry estimate ", v.mean, " ± ", se_est);
  CHECK(std::abs(z.var - v.mean) < 4.0 * std::sqrt(se_emp * se_emp + se_est * se_est));
  CHECK(z.var > 0.0);
  // Self-normalized estimates are biased at O(1/N): a 0.01 allowance on top of 4 se.
  CHECK(std::abs(p.mean - 0.7) < 4.0 * std::sqrt(p.var / reps) + 0.01);
}

TEST_CASE("estimators.annealed_smc: plain AIS (no resampling) and a fixed schedule") {
  const GaussianMixtureTarget target = two_modes();
  const GaussianReferencePath path(target, Eigen::VectorXd::Zero(2), 4.0);
  AnnealedSmcOptions o;
  o.resample_threshold = 0.0;
  o.rungs = 30;
  o.mala_steps = 3;
  const AnnealedSmcResult r = run_annealed_smc(path, 3000, o);
  CHECK(r.resamplings == 0);
  CHECK(r.rungs.size() == 30);
  CHECK(r.distinct_ancestors > 100);
  CHECK(std::abs(r.log_z - *target.log_z()) < 4.0 * r.log_z_se);
  // Importance sampling from the reference alone (rung 0) is poor here: the annealing is needed.
  CHECK(r.initial_ess_fraction > 0.0);
  CHECK(r.initial_ess_fraction < 0.5);
  CHECK(r.initial_ess_fraction < ess_of(r.log_weights));
}

TEST_CASE("estimators.annealed_smc: von Mises on the circle, moves wrapped onto the circle") {
  const double kappa = 4.0, mu = 3.0;  // the mode close to the cut at ±π
  const CirclePath path(kappa, mu);
  AnnealedSmcOptions o;
  o.mala_steps = 4;
  o.step_size = 0.5;
  const AnnealedSmcResult r = run_annealed_smc(path, 4000, o);
  const double exact = std::log(2.0 * kPi * std::cyl_bessel_i(0.0, kappa));
  CHECK(std::abs(r.log_z - exact) < 4.0 * r.log_z_se);
  double c = 0.0, s = 0.0, den = 0.0;
  const double m = r.log_weights.maxCoeff();
  for (Eigen::Index i = 0; i < r.z.rows(); ++i) {
    CHECK(r.z(i, 0) >= -kPi);
    CHECK(r.z(i, 0) < kPi);
    const double w = std::exp(r.log_weights[i] - m);
    c += w * std::cos(r.z(i, 0));
    s += w * std::sin(r.z(i, 0));
    den += w;
  }
  // E[e^{i(z−μ)}] = I₁(κ)/I₀(κ) ≈ 0.87 (real). Checked through the weighted means of cos(z − μ)
  // and sin(z − μ) within 4 standard errors: the weighted sd over √(surviving ancestors), which is
  // conservative (fewer lines than particles).
  const double exact_r = std::cyl_bessel_i(1.0, kappa) / std::cyl_bessel_i(0.0, kappa);
  const double mean_cos = (c * std::cos(mu) + s * std::sin(mu)) / den;
  const double mean_sin = (s * std::cos(mu) - c * std::sin(mu)) / den;
  double var_cos = 0.0, var_sin = 0.0;
  for (Eigen::Index i = 0; i < r.z.rows(); ++i) {
    const double w = std::exp(r.log_weights[i] - m) / den;
    var_cos += w * std::pow(std::cos(r.z(i, 0) - mu) - mean_cos, 2);
    var_sin += w * std::pow(std::sin(r.z(i, 0) - mu) - mean_sin, 2);
  }
  const double lines = static_cast<double>(r.distinct_ancestors);
  CHECK(std::abs(mean_cos - exact_r) < 4.0 * std::sqrt(var_cos / lines));
  CHECK(std::abs(mean_sin) < 4.0 * std::sqrt(var_sin / lines));
}

TEST_CASE("estimators.annealed_smc: the same bits for any thread count") {
  const GaussianMixtureTarget target = two_modes();
  const GaussianReferencePath path(target, Eigen::VectorXd::Zero(2), 4.0);
  AnnealedSmcOptions o;
  o.seed = 3;
  const AnnealedSmcResult a = run_annealed_smc(path, 700, o, {}, Execution::kSerial);
  const AnnealedSmcResult b = run_annealed_smc(path, 700, o, {}, Execution::kParallel);
  CHECK(a.z == b.z);
  CHECK(a.log_weights == b.log_weights);
  CHECK(a.log_z == b.log_z);
  CHECK(a.rungs.size() == b.rungs.size());
}

TEST_CASE("estimators.annealed_smc: bad settings and a target without mass") {
  const GaussianMixtureTarget target = two_modes();
  const GaussianReferencePath path(target, Eigen::VectorXd::Zero(2), 4.0);
  AnnealedSmcOptions o;
  o.cess = 1.0;
  CHECK_THROWS_WITH_AS(run_annealed_smc(path, 10, o), doctest::Contains("smc.cess"), ConfigError);
  o = {};
  o.resample_threshold = 2.0;
  CHECK_THROWS_WITH_AS(run_annealed_smc(path, 10, o), doctest::Contains("smc.resample_threshold"), ConfigError);
  CHECK_THROWS_AS(run_annealed_smc(path, 1, AnnealedSmcOptions{}), DomainError);
  const NowherePath nowhere;
  CHECK_THROWS_WITH_AS(run_annealed_smc(nowhere, 10, AnnealedSmcOptions{}), doctest::Contains("zero weight"),
                       DomainError);
  CHECK_THROWS_AS(GaussianReferencePath(target, Eigen::VectorXd::Zero(3), 1.0), DomainError);
}
