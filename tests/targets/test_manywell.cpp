#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/manywell.hpp"
#include "support/gradient_check.hpp"

using namespace boltzlab;

TEST_CASE("manywell: gradient at random points") {
  ManyWellTarget mw(32);
  testing::check_gradient(mw, testing::random_points(32, 20, 2.0));
  ManyWellTarget mw2(2);
  testing::check_gradient(mw2, testing::random_points(2, 50, 2.5, 11));
}

TEST_CASE("manywell: energy by hand") {
  ManyWellTarget mw(4);
  // Pair (1, 2): 1 − 6 − 0.5 + 2 = −3.5; pair (−1, 0): 1 − 6 + 0.5 + 0 = −4.5.
  const double x[4] = {1.0, 2.0, -1.0, 0.0};
  double g[4];
  CHECK(mw.reduced_energy(x, g) == doctest::Approx(-8.0).epsilon(1e-15));
  // ∂/∂x1 = 4x1³ − 12x1 − 0.5 = −8.5 at 1 and 7.5 at −1; ∂/∂x2 = x2.
  CHECK(g[0] == doctest::Approx(-8.5));
  CHECK(g[1] == doctest::Approx(2.0));
  CHECK(g[2] == doctest::Approx(7.5));
  CHECK(g[3] == doctest::Approx(0.0));
}

TEST_CASE("manywell: log Z and well fraction match the reference values") {
  // FAB (Midgley et al. 2023, fab/target_distributions/many_well.py; values by quadrature):
  // log Z(ManyWell-32) = 164.69568, per pair 10.293480,
  // x1 > 0 well holds 84.431 % (all rounded in the last digit shown).
  ManyWellTarget mw(32);
  CHECK(std::abs(*mw.log_z() - 164.69568) < 1e-5);
  CHECK(std::abs(*ManyWellTarget(2).log_z() - 10.293480) < 1e-6);
  CHECK(std::abs(std::exp(ManyWellTarget::x1_log_z()) - 11784.50927) < 1e-4);
  CHECK(std::abs(ManyWellTarget::x1_positive_fraction() - 0.84431) < 5e-6);
}

TEST_CASE("manywell: 2-D trapezoid quadrature of exp(-u) equals log Z") {
  // Independent of the Simpson rule used by the constructor: a trapezoid sum of
  // the target's own energy over the plane (exponentially accurate for this smooth,
  // fast-decaying integrand), and the mass of the x1 > 0 half-plane.
  ManyWellTarget mw(2);
  const double h = 0.005;
  double z = 0.0, z_pos = 0.0;
  for (int i = -1200; i <= 1200; ++i) {
    for (int j = -2000; j <= 2000; ++j) {
      const double x[2] = {i * h, j * h};
      const double w = std::exp(-mw.reduced_energy(x, nullptr)) * h * h;
      z += w;
      if (i > 0) z_pos += w;
      else if (i == 0) z_pos += 0.5 * w;
    }
  }
  CHECK(std::log(z) == doctest::Approx(*mw.log_z()).epsilon(1e-9));
  CHECK(z_pos / z == doctest::Approx(ManyWellTarget::x1_positive_fraction()).epsilon(1e-8));
}

TEST_CASE("manywell: odd or zero dim is a ConfigError naming dim") {
  for (int d : {31, 0, -2}) {
    try {
      make_target("manywell", Json{{"dim", d}}, ".", "mw.json");
      FAIL("no exception for dim " << d);
    } catch (const ConfigError& e) {
      CHECK(std::string(e.what()).find("mw.json.parameters.dim") != std::string::npos);
    }
  }
  CHECK_THROWS_AS(ManyWellTarget(3), ConfigError);
}
