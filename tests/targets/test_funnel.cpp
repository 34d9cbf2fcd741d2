#include <doctest/doctest.h>

#include <cmath>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/funnel.hpp"
#include "support/gradient_check.hpp"

using namespace boltzlab;

TEST_CASE("funnel: gradient at random points") {
  FunnelTarget f(10, 3.0);
  testing::check_gradient(f, testing::random_points(10, 50, 1.5));
  FunnelTarget f2(2, 1.5);
  testing::check_gradient(f2, testing::random_points(2, 30, 2.0, 4));
}

TEST_CASE("funnel: energy is the normalized product density") {
  // u = −log N(v; 0, σ²) − Σ log N(x_i; 0, e^v).
  FunnelTarget f(10, 3.0);
  for (const auto& x : testing::random_points(10, 10, 1.5, 2)) {
    double log_p = -0.5 * x[0] * x[0] / 9.0 - 0.5 * std::log(2 * M_PI * 9.0);
    for (int i = 1; i < 10; ++i) log_p += -0.5 * x[i] * x[i] * std::exp(-x[0]) - 0.5 * std::log(2 * M_PI * std::exp(x[0]));
    CHECK(f.reduced_energy(x.data(), nullptr) == doctest::Approx(-log_p).epsilon(1e-13));
  }
}

TEST_CASE("funnel: 2-D quadrature gives log Z = 0") {
  // (v, x1): trapezoid over v ∈ [−8σ, 8σ] and, for each v, x1 on a grid scaled
  // to its conditional std e^{v/2} (±14 std, 280 points: a valid Fubini
  // quadrature of the target's own energy whose x-spacing tracks the funnel).
  FunnelTarget f(2, 3.0);
  const double hv = 0.01;
  double z = 0.0;
  for (double v = -24.0; v <= 24.0; v += hv) {
    const double sd = std::exp(0.5 * v), hx = 0.1 * sd;
    double zx = 0.0;
    for (int j = -140; j <= 140; ++j) {
      const double x[2] = {v, j * hx};
      zx += std::exp(-f.reduced_energy(x, nullptr)) * hx;
    }
    z += zx * hv;
  }
  CHECK(std::abs(std::log(z)) < 1e-9);
  CHECK(*f.log_z() == 0.0);
  CHECK_THROWS_AS(make_target("funnel", Json::parse(R"({"dim": 1})"), ".", "f.json"), ConfigError);
  CHECK_THROWS_AS(make_target("funnel", Json::parse(R"({"scale": 0})"), ".", "f.json"), ConfigError);
}
