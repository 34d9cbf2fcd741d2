// Reweighted histograms and free energies: a Gaussian target reweighted from a
// wider Gaussian proposal reproduces the exact bin free energies within the
// delta-method errors; region free-energy differences match the exact ΔF.
// Tolerances: 4 combined standard errors per bin (20 bins: family-wise false-failure
// probability ≈ 20 × 6e-5).
#include <doctest/doctest.h>

#include <cmath>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/estimators/free_energy.hpp"

using namespace boltzlab;

namespace {

constexpr double kPi = 3.14159265358979323846;

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

/// S draws from N(0, σ²) per coordinate (d coordinates) with log-weights for the
/// target N(mu, 1) per coordinate (unnormalized).
void draw(int samples, int d, double sigma, double mu, std::uint64_t seed, RowMatrix& x, Eigen::VectorXd& lw) {
  Rng rng(seed, 0);
  x.resize(samples, d);
  lw.resize(samples);
  for (int i = 0; i < samples; ++i) {
    double l = 0;
    for (int k = 0; k < d; ++k) {
      const double v = sigma * rng.normal();
      x(i, k) = v;
      l += -0.5 * (v - mu) * (v - mu) + 0.5 * (v / sigma) * (v / sigma);
    }
    lw[i] = l;
  }
}

}  // namespace

TEST_CASE("estimators.free_energy: reweighted 1-D profile matches the exact Gaussian free energy") {
  RowMatrix x;
  Eigen::VectorXd lw;
  draw(50000, 1, 1.5, 0.0, 21, x, lw);
  HistogramAxis axis;
  axis.name = "x";
  axis.lo = -2;
  axis.hi = 2;
  axis.bins = 20;
  const FreeEnergy1D f = free_energy_1d(x.col(0), lw, axis);
  CHECK(f.probability.sum() + f.outside_mass == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(f.outside_mass == doctest::Approx(2 * normal_cdf(-2)).epsilon(0.1));
  // Exact bin probabilities; compare F differences to the bin nearest 0 (bin 9).
  auto exact_p = [&](std::size_t b) {
    return normal_cdf(axis.lo + (b + 1) * axis.width()) - normal_cdf(axis.lo + b * axis.width());
  };
  for (std::size_t b = 0; b < axis.bins; ++b) {
    CAPTURE(b);
    const double exact = -std::log(exact_p(b)) + std::log(exact_p(9));
    const double est = f.free_energy[static_cast<Eigen::Index>(b)] - f.free_energy[9];
    const double se = std::hypot(f.free_energy_stderr[static_cast<Eigen::Index>(b)], f.free_energy_stderr[9]);
    CHECK(std::abs(est - exact) < 4 * se);
    CHECK(std::abs(f.probability[static_cast<Eigen::Index>(b)] - exact_p(b)) <
          4 * f.probability_stderr[static_cast<Eigen::Index>(b)]);
  }
  CHECK(f.free_energy.minCoeff() == 0);
}

TEST_CASE("estimators.free_energy: unweighted histograms have binomial errors, empty bins are +inf and null in JSON") {
  Eigen::VectorXd x(10);
  x << 0.1, 0.1, 0.2, 0.3, 0.6, 0.6, 0.7, 0.7, 0.7, 1.5;
  HistogramAxis axis;
  axis.lo = 0;
  axis.hi = 1;
  axis.bins = 4;
  const FreeEnergy1D f = free_energy_1d(x, Eigen::VectorXd(), axis);
  CHECK(f.outside == 1);
  CHECK(f.probability[0] == doctest::Approx(0.3));
  CHECK(f.probability_stderr[0] == doctest::Approx(std::sqrt(0.3 * 0.7 / 10)));
  CHECK(f.probability[3] == 0);
  CHECK(std::isinf(f.free_energy[3]));
  const nlohmann::json j = to_json(f);
  CHECK(j["free_energy_kt"][3].is_null());
  CHECK(j["free_energy_kt"][0].get<double>() >= 0);
}

TEST_CASE("estimators.free_energy: 2-D surface of independent coordinates is additive") {
  RowMatrix x;
  Eigen::VectorXd lw;
  draw(60000, 2, 1.4, 0.0, 22, x, lw);
  HistogramAxis ax{"x0", -2, 2, 8, false}, ay{"x1", -2, 2, 8, false};
  const FreeEnergy2D f = free_energy_2d(x.col(0), x.col(1), lw, ax, ay);
  REQUIRE(f.free_energy.rows() == 8);
  REQUIRE(f.free_energy.cols() == 8);
  auto exact_p = [&](std::size_t b) {
    return normal_cdf(ax.lo + (b + 1) * ax.width()) - normal_cdf(ax.lo + b * ax.width());
  };
  // F(i, j) − F(3, 3) = −log(p_i p_j / p_3²).
  for (std::size_t i = 0; i < 8; i += 3) {
    for (std::size_t j = 0; j < 8; j += 2) {
      CAPTURE(i);
      CAPTURE(j);
      const double exact = -std::log(exact_p(i) * exact_p(j) / (exact_p(3) * exact_p(3)));
      const double est = f.free_energy(i, j) - f.free_energy(3, 3);
      const double se = std::hypot(f.free_energy_stderr(i, j), f.free_energy_stderr(3, 3));
      CHECK(std::abs(est - exact) < 4 * se);
    }
  }
}

TEST_CASE("estimators.free_energy: free-energy difference between regions x<0 and x>0") {
  // Target N(0.5, 1): P(x<0) = Φ(−0.5), ΔF = F_A − F_B = −log(Φ(−0.5)/Φ(0.5)).
  RowMatrix x;
  Eigen::VectorXd lw;
  draw(40000, 1, 1.5, 0.5, 23, x, lw);
  const std::vector<std::string> names{"x0"};
  const Region a = parse_region("left:x0<0", names), b = parse_region("x0>=0", names);
  CHECK(a.label == "left");
  CHECK(b.label == "x0>=0");
  const FreeEnergyDifference d = free_energy_difference(x, lw, a, b);
  REQUIRE(d.delta_f.ok());
  const double exact = -std::log(normal_cdf(-0.5) / normal_cdf(0.5));
  CHECK(std::abs(*d.delta_f.value - exact) < 4 * *d.stderr_kt.value);
  CHECK(d.population_a + d.population_b == doctest::Approx(1.0));
  // Empty region: ΔF missing with a reason.
  const Region far = parse_region("x0>100", names);
  const FreeEnergyDifference e = free_energy_difference(x, lw, far, b);
  CHECK_FALSE(e.delta_f.ok());
  CHECK(e.delta_f.reason.find("no sample") != std::string::npos);
  const nlohmann::json j = to_json(e, 2.494);
  CHECK(j["delta_f_kt"].is_null());
  CHECK(j.contains("delta_f_kt_reason"));
}

TEST_CASE("estimators.free_energy: region parsing errors and periodic axes") {
  const std::vector<std::string> names{"phi", "psi"};
  CHECK_THROWS_WITH_AS(parse_region("phj<0", names), doctest::Contains("did you mean 'phi'"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_region("phi", names), doctest::Contains("operator"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_region("phi<zero", names), doctest::Contains("not a number"), ConfigError);
  const Region r = parse_region("phi<0 & psi>=1.5", names);
  REQUIRE(r.conditions.size() == 2);
  const double in[2] = {-1.0, 1.5}, out[2] = {-1.0, 1.4};
  CHECK(r.contains(in));
  CHECK_FALSE(r.contains(out));
  HistogramAxis periodic{"phi", -kPi, kPi, 36, true};
  CHECK(periodic.bin_of(3.5) == periodic.bin_of(3.5 - 2 * kPi));
  CHECK(periodic.bin_of(-kPi) == 0);
  HistogramAxis bad{"phi", 1, 1, 10, false};
  CHECK_THROWS_AS(bad.validate(), ConfigError);
}
