// Weighted 1-D 2-Wasserstein distance (estimators/wasserstein.hpp): identities that
// hold exactly (self-distance, shift, weights as multiplicities, symmetry, a hand-
// computed example) and the closed form for two Gaussians on large samples.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/estimators/wasserstein.hpp"

using namespace boltzlab;

namespace {

Eigen::VectorXd normal_sample(int n, double mean, double sd, std::uint64_t seed) {
  Rng rng(seed, 0);
  Eigen::VectorXd x(n);
  for (int i = 0; i < n; ++i) x[i] = mean + sd * rng.normal();
  return x;
}

Eigen::VectorXd vec(std::initializer_list<double> v) {
  Eigen::VectorXd x(static_cast<Eigen::Index>(v.size()));
  Eigen::Index i = 0;
  for (double e : v) x[i++] = e;
  return x;
}

}  // namespace

TEST_CASE("wasserstein2_1d: hand-computed example") {
  // F⁻¹ = 0 on (0, ¼], 1 on (¼, 1];  G⁻¹ = 0 on (0, ½], 2 on (½, 1]:
  // W₂² = ¼·0 + ¼·(1 − 0)² + ½·(1 − 2)² = 0.75.
  const auto r = wasserstein2_1d(vec({1.0, 0.0}), vec({0.75, 0.25}), vec({0.0, 2.0}), vec({1.0, 1.0}));
  REQUIRE(r.squared.ok());
  CHECK(*r.squared.value == doctest::Approx(0.75).epsilon(1e-15));
  CHECK(*r.distance.value == doctest::Approx(std::sqrt(0.75)).epsilon(1e-15));
  // Two atoms vs one: W₂² = ½·0² + ½·1² = ½.
  CHECK(*wasserstein2_1d(vec({0.0, 1.0}), vec({0.0})).squared.value == doctest::Approx(0.5).epsilon(1e-15));
}

TEST_CASE("wasserstein2_1d: a sample with itself is 0, a shift by c is c") {
  const Eigen::VectorXd x = normal_sample(5000, 0.3, 1.7, 11);
  Eigen::VectorXd w(x.size());
  Rng rng(12, 0);
  for (Eigen::Index i = 0; i < w.size(); ++i) w[i] = rng.uniform();
  CHECK(*wasserstein2_1d(x, x).distance.value == 0.0);
  CHECK(*wasserstein2_1d(x, w, x, w).distance.value == 0.0);
  // A translation moves every quantile by c: W₂ = |c| for any weights. Values on a
  // dyadic grid make x + c exact, so the result is c up to the summation rounding.
  const Eigen::VectorXd g = (x * 1024.0).array().round() / 1024.0;
  for (double c : {0.5, -3.25, 1e-3}) {
    const Eigen::VectorXd shifted = g.array() + c;
    CHECK(*wasserstein2_1d(g, w, shifted, w).distance.value == doctest::Approx(std::abs(c)).epsilon(1e-12));
    CHECK(*wasserstein2_1d(g, shifted).distance.value == doctest::Approx(std::abs(c)).epsilon(1e-12));
  }
}

TEST_CASE("wasserstein2_1d: integer weights equal the replicated unweighted sample; symmetry") {
  const Eigen::VectorXd x = normal_sample(300, 0.0, 1.0, 21);
  const Eigen::VectorXd y = normal_sample(450, 0.5, 2.0, 22);
  Eigen::VectorXd k(x.size());
  Rng rng(23, 0);
  int total = 0;
  for (Eigen::Index i = 0; i < x.size(); ++i) total += static_cast<int>(k[i] = 1 + static_cast<int>(rng.uniform() * 5));
  Eigen::VectorXd rep(total);
  for (Eigen::Index i = 0, r = 0; i < x.size(); ++i)
    for (int c = 0; c < static_cast<int>(k[i]); ++c) rep[r++] = x[i];
  const double weighted = *wasserstein2_1d(x, k, y, Eigen::VectorXd::Ones(y.size())).squared.value;
  const double replicated = *wasserstein2_1d(rep, y).squared.value;
  CHECK(weighted == doctest::Approx(replicated).epsilon(1e-12));
  // Symmetry (the merge treats both measures alike).
  const Eigen::VectorXd wy = (y.array().abs() + 0.1).matrix();
  CHECK(*wasserstein2_1d(x, k, y, wy).squared.value ==
        doctest::Approx(*wasserstein2_1d(y, wy, x, k).squared.value).epsilon(1e-14));
  // Normalization does not matter.
  CHECK(*wasserstein2_1d(x, 3.0 * k, y, wy).squared.value ==
        doctest::Approx(*wasserstein2_1d(x, k, y, 0.01 * wy).squared.value).epsilon(1e-12));
}

TEST_CASE("wasserstein2_1d: two Gaussians against the closed form") {
  // W₂²(N(μ₁, σ₁²), N(μ₂, σ₂²)) = (μ₁ − μ₂)² + (σ₁ − σ₂)². Sampling error of the
  // plug-in estimate with n draws each: linearizing W₂² = ∫(F⁻¹ − G⁻¹)² with
  // F⁻¹ − G⁻¹ = Δμ + Δσ·Φ⁻¹(p), the fluctuation is 2Δμ·(mean errors) + 2Δσ·(errors of the
  // L-estimates ∫Φ⁻¹ F_n⁻¹ of σ, variance σ²/(2n)), so
  //   sd ≈ √(4/n · [Δμ²(σ₁² + σ₂²) + Δσ²(σ₁² + σ₂²)/2]).
  // (A numpy check, 400 replicates at n = 2e4, gave 0.0400 against the formula's 0.0387.)
  // The bias is O(σ² log log n / n) ≈ 1e-4 here, far below the tolerance of 5 sd
  // (false-failure probability ≈ 6e-7).
  const int n = 200000;
  const double m1 = 0.0, s1 = 1.0, m2 = 1.0, s2 = 2.0;
  const double exact = (m1 - m2) * (m1 - m2) + (s1 - s2) * (s1 - s2);
  const double v = s1 * s1 + s2 * s2;
  const double sd = std::sqrt(4.0 / n * ((m1 - m2) * (m1 - m2) * v + (s1 - s2) * (s1 - s2) * v / 2.0));
  const double w2sq = *wasserstein2_1d(normal_sample(n, m1, s1, 31), normal_sample(n, m2, s2, 32)).squared.value;
  CHECK(std::abs(w2sq - exact) < 5.0 * sd);
  // Equal distributions: W₂² → 0 at rate ~ log log n / n (the tolerance is generous but
  // far below the 2.0 above).
  CHECK(*wasserstein2_1d(normal_sample(n, 0, 1, 33), normal_sample(n, 0, 1, 34)).squared.value < 1e-3);
}

TEST_CASE("wasserstein2_1d: non-finite values and zero weights are excluded and counted") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const auto r = wasserstein2_1d(vec({0.0, inf, 1.0, nan, 5.0}), vec({1, 1, 1, 1, 0}), vec({0.0, 1.0}),
                                 vec({1, 1}));
  CHECK(r.used_a == 2);
  CHECK(r.non_finite_a == 2);
  CHECK(r.zero_weight_a == 1);
  CHECK(*r.distance.value == 0.0);
  const auto none = wasserstein2_1d(vec({nan}), vec({1.0}));
  CHECK_FALSE(none.distance.ok());
  CHECK(none.to_json()["w2"].is_null());
  CHECK(none.to_json().contains("w2_reason"));
  CHECK_THROWS_AS(wasserstein2_1d(vec({0.0}), vec({-1.0}), vec({0.0}), vec({1.0})), DomainError);
  CHECK_THROWS_AS(wasserstein2_1d(vec({0.0}), vec({1.0, 2.0}), vec({0.0}), vec({1.0})), DomainError);
}
