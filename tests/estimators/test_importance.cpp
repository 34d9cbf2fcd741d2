// Importance weights against known answers. Statistical checks use fixed seeds and
// tolerances of 4 standard errors computed from the exact moments of the weight
// distribution (false-failure probability ≈ 6e-5 per check under the normal
// approximation), so a wrong estimator fails while sampling noise does not.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/estimators/importance.hpp"

using namespace boltzlab;

namespace {

constexpr double kPi = 3.14159265358979323846;

/// Draws S points from the proposal N(0, σ² I_d) and returns log w = −u − log q
/// for the unnormalized standard-normal target u(x) = |x|²/2 (Z = (2π)^{d/2}).
/// Also returns the first coordinate of each draw in `first`.
Eigen::VectorXd gaussian_log_weights(double sigma, int d, int samples, std::uint64_t seed,
                                     Eigen::VectorXd* first = nullptr) {
  Rng rng(seed, 0);
  Eigen::VectorXd lw(samples);
  if (first) first->resize(samples);
  for (int i = 0; i < samples; ++i) {
    double u = 0, log_q = 0;
    for (int k = 0; k < d; ++k) {
      const double x = sigma * rng.normal();
      if (first && k == 0) (*first)[i] = x;
      u += 0.5 * x * x;
      log_q += -0.5 * (x / sigma) * (x / sigma) - std::log(sigma * std::sqrt(2 * kPi));
    }
    lw[i] = -u - log_q;
  }
  return lw;
}

/// Exact E_q[w^k] for w = p/q, p = N(0, I_d) normalized, q = N(0, σ² I_d):
/// ∫ p^k q^{1−k} = (σ^{k−1} / √(k − (k−1)/σ²))^d (finite iff k − (k−1)/σ² > 0).
double gaussian_weight_moment(double sigma, int d, int k) {
  const double per_dim = std::pow(sigma, k - 1) / std::sqrt(k - (k - 1) / (sigma * sigma));
  return std::pow(per_dim, d);
}

/// Standard error of the ESS fraction estimator f̂ = m1²/m2 (m_k = sample mean of
/// w^k) by the delta method with exact moments M_k:
/// ∇f = (2M1/M2, −M1²/M2²), Cov(w, w²) = [[M2−M1², M3−M1M2], [M3−M1M2, M4−M2²]]/S.
double ess_fraction_stderr(double m1, double m2, double m3, double m4, int samples) {
  const double ga = 2 * m1 / m2, gb = -m1 * m1 / (m2 * m2);
  const double var = ga * ga * (m2 - m1 * m1) + gb * gb * (m4 - m2 * m2) + 2 * ga * gb * (m3 - m1 * m2);
  return std::sqrt(var / samples);
}

}  // namespace

TEST_CASE("estimators.importance: log w = -u - log q, non-finite energies kept as zero weight and counted") {
  Eigen::VectorXd u(4), log_q(4);
  u << 1.0, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN(), -2.0;
  log_q << -0.5, -1.0, -1.0, 0.25;
  std::size_t bad = 0;
  const Eigen::VectorXd lw = log_importance_weights(u, log_q, &bad);
  CHECK(bad == 2);
  CHECK(lw[0] == doctest::Approx(-0.5));
  CHECK(lw[1] == -std::numeric_limits<double>::infinity());
  CHECK(lw[2] == -std::numeric_limits<double>::infinity());
  CHECK(lw[3] == doctest::Approx(1.75));
  const WeightDiagnostics d = weight_diagnostics(lw);
  CHECK(d.zero_weight == 2);
  CHECK(d.samples == 4);
  // Two equal-ish finite weights e^{-0.5}, e^{1.75}: Kish ESS = (a+b)²/(a²+b²).
  const double a = std::exp(-0.5), b = std::exp(1.75);
  CHECK(d.kish_ess == doctest::Approx((a + b) * (a + b) / (a * a + b * b)).epsilon(1e-12));
  CHECK(d.max_weight_share == doctest::Approx(b / (a + b)).epsilon(1e-12));
}

TEST_CASE("estimators.importance: bad input gives clear errors") {
  Eigen::VectorXd empty;
  CHECK_THROWS_AS(log_importance_weights(empty, empty), DomainError);
  Eigen::VectorXd u = Eigen::VectorXd::Ones(3), q2 = Eigen::VectorXd::Zero(2);
  CHECK_THROWS_WITH_AS(log_importance_weights(u, q2), doctest::Contains("lengths must match"), DomainError);
  Eigen::VectorXd q_nan = Eigen::VectorXd::Zero(3);
  q_nan[1] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(log_importance_weights(u, q_nan), doctest::Contains("log q[1]"), DomainError);
  Eigen::VectorXd all_zero = Eigen::VectorXd::Constant(5, -std::numeric_limits<double>::infinity());
  CHECK_THROWS_WITH_AS(kish_ess(all_zero), doctest::Contains("all 5 log-weights are -inf"), DomainError);
  CHECK_THROWS_WITH_AS(estimate_log_z(all_zero), doctest::Contains("-inf"), DomainError);
  CHECK_THROWS_AS(pareto_smoothed_importance_sampling(all_zero), DomainError);
  CHECK_THROWS_AS(kish_ess(empty), DomainError);
  Eigen::VectorXd with_nan = Eigen::VectorXd::Zero(3);
  with_nan[2] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(weight_diagnostics(with_nan), doctest::Contains("entry 2 is NaN"), DomainError);
  CHECK_THROWS_AS(snis_estimate(Eigen::VectorXd::Zero(3), Eigen::VectorXd::Zero(4)), DomainError);
  PsisOptions bad_reff;
  bad_reff.r_eff = 0;
  CHECK_THROWS_AS(pareto_smoothed_importance_sampling(Eigen::VectorXd::Zero(100), bad_reff), ConfigError);
}

TEST_CASE("estimators.importance: too few draws for PSIS gives k-hat null with a reason") {
  Eigen::VectorXd lw(12);
  for (int i = 0; i < 12; ++i) lw[i] = 0.1 * i;
  const PsisResult r = pareto_smoothed_importance_sampling(lw);
  CHECK_FALSE(r.khat.ok());
  CHECK(r.khat.reason.find("tail") != std::string::npos);
  CHECK_FALSE(r.reliable);
  CHECK(r.diagnosis.find("unreliable") == 0);
  CHECK(r.smoothed_log_weights.array().exp().sum() == doctest::Approx(1.0));
  nlohmann::json j;
  put_quantity(j, "psis_khat", r.khat);
  CHECK(j["psis_khat"].is_null());
  CHECK(j["psis_khat_reason"].get<std::string>() == r.khat.reason);
}

TEST_CASE("estimators.importance: Gaussian target, Gaussian proposals: ESS fraction and log Z match exact values") {
  // Target N(0, I_2) unnormalized (log Z = log 2π); proposals N(0, σ² I_2).
  // Exact: E_q[w²]/E_q[w]² = (σ²/√(2σ²−1))^d, so ESS/S → (√(2σ²−1)/σ²)^d.
  const int d = 2, samples = 20000;
  const double exact_log_z = 0.5 * d * std::log(2 * kPi);
  std::uint64_t seed = 11;
  for (double sigma : {0.9, 1.5, 2.5}) {
    CAPTURE(sigma);
    const Eigen::VectorXd lw = gaussian_log_weights(sigma, d, samples, seed++);
    const double m1 = gaussian_weight_moment(sigma, d, 1), m2 = gaussian_weight_moment(sigma, d, 2);
    const double m3 = gaussian_weight_moment(sigma, d, 3), m4 = gaussian_weight_moment(sigma, d, 4);
    CHECK(m1 == doctest::Approx(1.0));
    const double exact_fraction = std::pow(std::sqrt(2 * sigma * sigma - 1) / (sigma * sigma), d);
    CHECK(m1 * m1 / m2 == doctest::Approx(exact_fraction).epsilon(1e-12));
    const WeightDiagnostics diag = weight_diagnostics(lw);
    const double se_fraction = ess_fraction_stderr(m1, m2, m3, m4, samples);
    CAPTURE(diag.ess_fraction);
    CAPTURE(exact_fraction);
    CHECK(std::abs(diag.ess_fraction - exact_fraction) < 4 * se_fraction);

    const LogZEstimate z = estimate_log_z(lw);
    // Exact delta-method se of log Ẑ: √((M2/M1² − 1)/S).
    const double exact_se = std::sqrt((m2 / (m1 * m1) - 1) / samples);
    CAPTURE(z.estimate);
    CHECK(std::abs(z.estimate - exact_log_z) < 4 * exact_se);
    // The estimated se matches the exact one; its relative error is about
    // √((M4/M2² ... )/S) — a few percent at these widths; 25% is generous.
    CHECK(z.standard_error == doctest::Approx(exact_se).epsilon(0.25));
    CHECK(z.ci_low < z.estimate);
    CHECK(z.ci_high - z.estimate == doctest::Approx(1.959963984540054 * z.standard_error).epsilon(1e-9));
  }
}

TEST_CASE("estimators.importance: SNIS estimates and their delta-method errors are calibrated") {
  // 400 independent replications of S = 500 draws (N(0,1) target, N(0, 1.5²) proposal):
  // the 95% intervals mean ± 1.96 se for E[x] = 0 and log Z ± 1.96 se must cover the
  // truth in 95% of replications; the binomial sd of the coverage is √(.95·.05/400)
  // = 0.011, so [0.92, 0.98] is ±2.7 sd.
  int cover_mean = 0, cover_log_z = 0;
  const int reps = 400;
  for (int r = 0; r < reps; ++r) {
    Eigen::VectorXd x;
    const Eigen::VectorXd lw = gaussian_log_weights(1.5, 1, 500, 1000 + r, &x);
    const SnisEstimate e = snis_estimate(lw, x);
    if (std::abs(e.mean) < 1.959964 * e.standard_error) ++cover_mean;
    const LogZEstimate z = estimate_log_z(lw);
    if (z.ci_low < 0.5 * std::log(2 * kPi) && 0.5 * std::log(2 * kPi) < z.ci_high) ++cover_log_z;
  }
  CHECK(cover_mean / double(reps) == doctest::Approx(0.95).epsilon(0.03 / 0.95));
  CHECK(cover_log_z / double(reps) == doctest::Approx(0.95).epsilon(0.03 / 0.95));

  // One large run: E_π[x²] = 1 within 4 standard errors.
  Eigen::VectorXd x;
  const Eigen::VectorXd lw = gaussian_log_weights(1.5, 1, 20000, 77, &x);
  const SnisEstimate e2 = snis_estimate(lw, x.array().square().matrix());
  CHECK(std::abs(e2.mean - 1.0) < 4 * e2.standard_error);
  CHECK(e2.standard_error > 0);
}

TEST_CASE("estimators.importance: Student-t target with a Cauchy proposal: log Z and ESS match quadrature") {
  // Target t_5 unnormalized: u = 3 log(1 + x²/5), Z = √(5π) Γ(5/2)/Γ(3).
  // Proposal Cauchy(0, s = 1.5): the weights p/q ~ |x|^{-4} are bounded.
  const double nu = 5, s = 1.5;
  const double log_z_exact = 0.5 * std::log(nu * kPi) + std::lgamma(nu / 2) - std::lgamma((nu + 1) / 2);
  auto u_of = [&](double x) { return 0.5 * (nu + 1) * std::log1p(x * x / nu); };
  auto log_q_of = [&](double x) { return -std::log(kPi * s * (1 + (x / s) * (x / s))); };
  // Exact moments M_k = E_q[(p/q)^k] of the normalized weights by quadrature in
  // θ = atan(x/s), where q dx = dθ/π: M_k = (1/π) ∫_{−π/2}^{π/2} (p/q)^k dθ (Simpson).
  auto moment = [&](int k) {
    const int n = 20000;
    const double h = kPi / n;
    double sum = 0;
    for (int i = 0; i <= n; ++i) {
      const double theta = -kPi / 2 + i * h;
      double f = 0;
      if (i > 0 && i < n) {
        const double x = s * std::tan(theta);
        f = std::exp(k * (-u_of(x) - log_z_exact - log_q_of(x)));
      }
      sum += f * (i == 0 || i == n ? 1 : (i % 2 ? 4 : 2));
    }
    return sum * h / 3 / kPi;
  };
  const double m1 = moment(1), m2 = moment(2), m3 = moment(3), m4 = moment(4);
  CHECK(m1 == doctest::Approx(1.0).epsilon(1e-9));  // quadrature sanity: p is normalized

  const int samples = 20000;
  Rng rng(2026, 0);
  Eigen::VectorXd lw(samples), x(samples);
  for (int i = 0; i < samples; ++i) {
    x[i] = s * std::tan(kPi * (rng.uniform_pos() - 0.5));
    lw[i] = -u_of(x[i]) - log_q_of(x[i]);
  }
  const LogZEstimate z = estimate_log_z(lw);
  const double exact_se = std::sqrt((m2 - 1) / samples);
  CHECK(std::abs(z.estimate - log_z_exact) < 4 * exact_se);
  const WeightDiagnostics d = weight_diagnostics(lw);
  CHECK(std::abs(d.ess_fraction - 1 / m2) < 4 * ess_fraction_stderr(m1, m2, m3, m4, samples));
  // E_π[x²] = ν/(ν − 2) = 5/3.
  const SnisEstimate e = snis_estimate(lw, x.array().square().matrix());
  CHECK(std::abs(e.mean - nu / (nu - 2)) < 4 * e.standard_error);
  // Bounded weights: the PSIS diagnostic is reliable.
  const PsisResult p = pareto_smoothed_importance_sampling(lw);
  REQUIRE(p.khat.ok());
  CHECK(*p.khat.value < 0.5);
  CHECK(p.reliable);
}

TEST_CASE("estimators.importance: PSIS k-hat recovers the shape of generalized-Pareto weights") {
  // Weights X ~ GPD(ξ, 1): exceedances over any threshold are GPD with the same ξ,
  // so k̂ estimates ξ. Per run the tail has M = 3√S = 300 draws and the fit's sd is
  // about (1 + ξ)/√M (GPD maximum-likelihood asymptotics); the mean of 8 runs has sd
  // (1 + ξ)/√2400. The prior (n k + 5)/(n + 10) shifts k̂ by (5 − 10ξ)/310; the check
  // allows 4 sd plus that shift.
  const int samples = 10000, reps = 8;
  std::uint64_t seed = 500;
  std::vector<double> means;
  for (double xi : {0.2, 0.5, 0.9}) {
    double sum = 0;
    for (int r = 0; r < reps; ++r) {
      Rng rng(seed++, 0);
      Eigen::VectorXd lw(samples);
      for (int i = 0; i < samples; ++i) lw[i] = std::log((std::pow(rng.uniform_pos(), -xi) - 1) / xi);
      const PsisResult p = pareto_smoothed_importance_sampling(lw);
      REQUIRE(p.khat.ok());
      CHECK(p.tail_length == 300);
      sum += *p.khat.value;
    }
    const double mean = sum / reps;
    CAPTURE(xi);
    CAPTURE(mean);
    const double sd = (1 + xi) / std::sqrt(300.0 * reps);
    CHECK(std::abs(mean - xi) < 4 * sd + std::abs(5 - 10 * xi) / 310);
    means.push_back(mean);
  }
  CHECK(means[0] < means[1]);
  CHECK(means[1] < means[2]);
}

TEST_CASE("estimators.importance: PSIS k-hat tracks the tail of Gaussian proposals narrower than the target") {
  // Target N(0,1), proposal N(0, σ²) with σ < 1: w ∝ exp(z²(1−σ²)/2) with z ~ N(0,1),
  // so P(w > t) ~ t^{−1/(1−σ²)} / √(log t): Pareto shape k = 1 − σ², up to a slowly
  // varying factor that biases a finite-sample fit upwards. With S = 20000 (M = 425)
  // k̂ is within 0.15 of 1 − σ², ordered, and the verdicts follow the 0.7 rule.
  const int samples = 20000;
  std::vector<double> khats;
  std::uint64_t seed = 900;
  for (double var : {0.15, 0.55, 0.85}) {
    const Eigen::VectorXd lw = gaussian_log_weights(std::sqrt(var), 1, samples, seed++);
    const PsisResult p = pareto_smoothed_importance_sampling(lw);
    REQUIRE(p.khat.ok());
    CAPTURE(var);
    CAPTURE(*p.khat.value);
    CHECK(std::abs(*p.khat.value - (1 - var)) < 0.15);
    khats.push_back(*p.khat.value);
  }
  CHECK(khats[0] > khats[1]);
  CHECK(khats[1] > khats[2]);
  // σ² = 0.15: k = 0.85 > 0.7 — unreliable; σ² = 0.85: k = 0.15 — reliable.
  CHECK(khats[0] > 0.7);
  CHECK(khats[2] < 0.5);
  // Wider proposals give bounded weights: k̂ < 0.
  const PsisResult wide = pareto_smoothed_importance_sampling(gaussian_log_weights(2.0, 1, samples, 950));
  REQUIRE(wide.khat.ok());
  CHECK(*wide.khat.value < 0);
  CHECK(wide.reliable);
  CHECK(wide.min_sample_size.ok());
}

TEST_CASE("estimators.importance: PSIS threshold, minimum sample size and verdicts") {
  CHECK(psis_khat_threshold(100) == doctest::Approx(0.5));
  CHECK(psis_khat_threshold(1000) == doctest::Approx(1 - 1 / 3.0));
  CHECK(psis_khat_threshold(100000) == doctest::Approx(0.7));
  // Heavy GPD tail with ξ = 1.2: k̂ ≥ 1, no finite minimum sample size.
  Rng rng(3, 0);
  Eigen::VectorXd lw(5000);
  for (int i = 0; i < lw.size(); ++i) lw[i] = std::log((std::pow(rng.uniform_pos(), -1.2) - 1) / 1.2);
  const PsisResult p = pareto_smoothed_importance_sampling(lw);
  REQUIRE(p.khat.ok());
  CHECK(*p.khat.value > 0.9);
  CHECK_FALSE(p.reliable);
  CHECK(p.diagnosis.find("unreliable") == 0);
  if (*p.khat.value < 1) {
    CHECK(*p.min_sample_size.value == doctest::Approx(std::pow(10.0, 1 / (1 - std::max(*p.khat.value, 0.0)))));
  } else {
    CHECK_FALSE(p.min_sample_size.ok());
  }
  // Smoothing never increases the largest normalized weight beyond the raw maximum.
  CHECK(p.smoothed_log_weights.maxCoeff() <= 0);
  CHECK(std::exp(log_sum_exp(p.smoothed_log_weights)) == doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("estimators.importance: clipped Kish ESS clips the top 1e-4 fraction, never small batches") {
  Eigen::VectorXd lw = gaussian_log_weights(0.6, 1, 30000, 5);
  const WeightDiagnostics d = weight_diagnostics(lw);
  CHECK(d.clipped == 3);
  // Manual: set the 3 largest log-weights to the 4th largest.
  std::vector<double> sorted(lw.data(), lw.data() + lw.size());
  std::sort(sorted.begin(), sorted.end());
  Eigen::VectorXd manual = lw;
  const double cap = sorted[sorted.size() - 4];
  for (Eigen::Index i = 0; i < manual.size(); ++i) manual[i] = std::min(manual[i], cap);
  CHECK(d.kish_ess_clipped == doctest::Approx(kish_ess(manual)).epsilon(1e-12));
  CHECK(d.kish_ess_clipped >= d.kish_ess);
  const WeightDiagnostics small = weight_diagnostics(lw.head(5000));
  CHECK(small.clipped == 0);
  CHECK(small.kish_ess_clipped == small.kish_ess);
}

TEST_CASE("estimators.importance: Kish ESS curve over prefixes and invariance to a constant shift") {
  const Eigen::VectorXd lw = gaussian_log_weights(1.5, 1, 3000, 8);
  const auto curve = kish_ess_curve(lw, 20);
  REQUIRE(curve.size() >= 10);
  CHECK(curve.front().first == 10);
  CHECK(curve.back().first == 3000);
  CHECK(curve.back().second == doctest::Approx(kish_ess(lw)).epsilon(1e-10));
  CHECK(curve[5].second == doctest::Approx(kish_ess(lw.head(static_cast<Eigen::Index>(curve[5].first)))).epsilon(1e-10));
  // Weights far outside the double range: log-sum-exp keeps everything finite.
  const Eigen::VectorXd shifted = lw.array() + 1000.0;
  CHECK(kish_ess(shifted) == doctest::Approx(kish_ess(lw)).epsilon(1e-10));
  CHECK(estimate_log_z(shifted).estimate == doctest::Approx(estimate_log_z(lw).estimate + 1000.0).epsilon(1e-12));
}

TEST_CASE("estimators.importance: equal weights are reliable although no tail can be fitted") {
  Eigen::VectorXd lw = Eigen::VectorXd::Constant(1000, -3.5);
  lw[10] = -std::numeric_limits<double>::infinity();
  const PsisResult p = pareto_smoothed_importance_sampling(lw);
  CHECK_FALSE(p.khat.ok());
  CHECK(p.khat.reason.find("largest weights are equal") != std::string::npos);
  CHECK(p.reliable);
  CHECK(p.kish_ess == doctest::Approx(999.0));
  CHECK(kish_ess(lw) == doctest::Approx(999.0));
  CHECK(estimate_log_z(lw).estimate == doctest::Approx(-3.5 + std::log(0.999)));
}

TEST_CASE("estimators.importance: equal log-weights give ESS = S at any offset (1e16, 1e17, -1e300)") {
  // S equal weights: Kish ESS = S, every normalized weight 1/S, log Z = the common
  // log-weight exactly (log mean w = offset + log 1), PSIS changes nothing. Adding
  // log Σ = log S to an offset ≥ 1e16 and subtracting it again loses it entirely
  // (the spacing of doubles there is 2 to 16), which is what this guards against.
  for (const double offset : {1e16, 1e17, 1e300, -1e300, 0.0}) {
    CAPTURE(offset);
    const Eigen::VectorXd lw = Eigen::VectorXd::Constant(1000, offset);
    CHECK(kish_ess(lw) == doctest::Approx(1000.0).epsilon(1e-12));
    const WeightDiagnostics d = weight_diagnostics(lw);
    CHECK(d.kish_ess == doctest::Approx(1000.0).epsilon(1e-12));
    CHECK(d.ess_fraction == doctest::Approx(1.0).epsilon(1e-12));
    CHECK(d.max_weight_share == doctest::Approx(1e-3).epsilon(1e-12));
    CHECK(d.log_weight_mean == offset);
    CHECK(d.log_weight_sd == 0.0);
    const Eigen::VectorXd w = normalized_weights(lw);
    CHECK(w.minCoeff() == doctest::Approx(1e-3).epsilon(1e-12));
    CHECK(w.maxCoeff() == doctest::Approx(1e-3).epsilon(1e-12));
    CHECK(estimate_log_z(lw).estimate == offset);
    CHECK(estimate_log_z(lw).standard_error == 0.0);
    const PsisResult p = pareto_smoothed_importance_sampling(lw);
    CHECK(p.kish_ess == doctest::Approx(1000.0).epsilon(1e-12));
    CHECK(p.smoothed_log_weights.maxCoeff() == doctest::Approx(-std::log(1000.0)).epsilon(1e-12));
    // Two levels exactly representable at the offset: 600 equal weights, 400 zero.
    Eigen::VectorXd two = lw;
    two.tail(400).setConstant(-std::numeric_limits<double>::infinity());
    CHECK(kish_ess(two) == doctest::Approx(600.0).epsilon(1e-12));
    Eigen::VectorXd f = Eigen::VectorXd::LinSpaced(1000, 0.0, 999.0);
    CHECK(snis_estimate(two, f).mean == doctest::Approx(299.5).epsilon(1e-12));  // mean of 0..599
    CHECK(estimate_log_z(two).estimate == offset + std::log(0.6));
  }
}

TEST_CASE("estimators.importance: log-weights of +-1e308 stay finite; -inf is zero weight") {
  const double inf = std::numeric_limits<double>::infinity();
  Eigen::VectorXd lw(5);
  lw << 1e308, 1e308, -1e308, 0.0, -inf;
  // Relative to the max the last three are exp(-2e308) = exp(-1e308) = 0: two equal weights.
  CHECK(kish_ess(lw) == doctest::Approx(2.0).epsilon(1e-12));
  const WeightDiagnostics d = weight_diagnostics(lw);
  CHECK(d.kish_ess == doctest::Approx(2.0).epsilon(1e-12));
  CHECK(d.max_weight_share == doctest::Approx(0.5).epsilon(1e-12));
  CHECK(d.zero_weight == 1);
  CHECK(d.log_weight_max == 1e308);
  // mean of (1e308, 1e308, -1e308, 0) = 2.5e307, sd finite: no overflow in the sums.
  CHECK(d.log_weight_mean == doctest::Approx(2.5e307).epsilon(1e-12));
  CHECK(std::isfinite(d.log_weight_sd));
  // sd: deviations (0.75, 0.75, -1.25, -0.25)·1e308 from the mean, ddof = 1.
  CHECK(d.log_weight_sd == doctest::Approx(std::sqrt(2.75 / 3) * 1e308).epsilon(1e-12));
  const LogZEstimate z = estimate_log_z(lw);
  CHECK(z.estimate == doctest::Approx(1e308).epsilon(1e-15));
  CHECK(std::isfinite(z.standard_error));
  const Eigen::VectorXd w = normalized_weights(lw);
  CHECK(w[0] == doctest::Approx(0.5).epsilon(1e-12));
  CHECK(w[2] == 0.0);  // exactly: exp(-inf), not a clamped subnormal
  CHECK(w[4] == 0.0);
  CHECK(w.allFinite());
  const PsisResult p = pareto_smoothed_importance_sampling(lw);
  CHECK(p.kish_ess == doctest::Approx(2.0).epsilon(1e-12));
  CHECK(p.smoothed_log_weights[0] == doctest::Approx(-std::log(2.0)).epsilon(1e-12));
  CHECK(log_sum_exp(lw) == doctest::Approx(1e308).epsilon(1e-15));
  // The same at the other end of the range: all weights tiny but equal.
  const Eigen::VectorXd low = Eigen::VectorXd::Constant(7, -1e308);
  CHECK(kish_ess(low) == doctest::Approx(7.0).epsilon(1e-12));
}

TEST_CASE("estimators.importance: +inf and NaN log-weights are errors naming the entry, and counted") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  Eigen::VectorXd pos(4), bad(4);
  pos << 0.0, 1.0, inf, 2.0;
  bad << 0.0, nan, 1.0, -inf;
  CHECK_THROWS_WITH_AS(kish_ess(pos), doctest::Contains("entry 2 is +inf"), DomainError);
  CHECK_THROWS_WITH_AS(estimate_log_z(pos), doctest::Contains("entry 2 is +inf"), DomainError);
  CHECK_THROWS_WITH_AS(normalized_weights(bad), doctest::Contains("entry 1 is NaN"), DomainError);
  CHECK_THROWS_WITH_AS(pareto_smoothed_importance_sampling(bad), doctest::Contains("entry 1 is NaN"), DomainError);
  CHECK(std::isnan(log_sum_exp(bad)));
  CHECK(log_sum_exp(pos) == inf);
  const LogWeightCounts c = count_log_weights(bad);
  CHECK(c.samples == 4);
  CHECK(c.finite == 2);
  CHECK(c.nan == 1);
  CHECK(c.zero_weight == 1);
  CHECK(c.positive_infinite == 0);
  CHECK(c.problem().find("1 NaN and 0 +inf of 4") != std::string::npos);
  CHECK(count_log_weights(pos).positive_infinite == 1);
  CHECK(count_log_weights(Eigen::VectorXd::Constant(3, -inf)).problem().find("all 3 log-weights are -inf") == 0);
  CHECK(count_log_weights(Eigen::VectorXd::Zero(3)).problem().empty());
  const nlohmann::json j = c.to_json();
  CHECK(j["nan"] == 1);
  CHECK(j["finite"] == 2);
  // An energy and a log q whose difference leaves the double range give +inf, rejected.
  Eigen::VectorXd u(2), log_q(2);
  u << -1e308, 0.0;
  log_q << -1e308, 0.0;
  const Eigen::VectorXd over = log_importance_weights(u, log_q);
  CHECK(over[0] == inf);
  CHECK_THROWS_WITH_AS(kish_ess(over), doctest::Contains("entry 0 is +inf"), DomainError);
}
