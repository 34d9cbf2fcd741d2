#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/muller_brown.hpp"
#include "support/gradient_check.hpp"

using namespace boltzlab;

TEST_CASE("muller_brown: gradient at random points") {
  MullerBrownTarget mb(0.1);
  testing::check_gradient(mb, testing::random_points(2, 50, 0.8, 7, 0.5));
  MullerBrownTarget mb1(1.0);
  testing::check_gradient(mb1, testing::random_points(2, 20, 0.8, 3, 0.5));
}

TEST_CASE("muller_brown: the three minima of the reference") {
  // The standard minima (Müller & Brown 1979) are quoted to 4 decimals and V to 3. At each quoted point
  // V must agree to 1e-3; Newton's method on our gradient (Hessian by central
  // differences of it) must converge to a stationary point with a positive-
  // definite Hessian within the rounding of the quoted coordinates (5e-5), and
  // with the quoted energy.
  struct Minimum {
    double x, y, v;
  };
  for (const Minimum& m : {Minimum{-0.5582, 1.4417, -146.700}, Minimum{0.6235, 0.0280, -108.167},
                           Minimum{-0.0500, 0.4667, -80.768}}) {
    INFO("minimum at (" << m.x << ", " << m.y << ")");
    double g[2];
    CHECK(std::abs(MullerBrownTarget::potential(m.x, m.y, g) - m.v) < 1e-3);
    double p[2] = {m.x, m.y};
    double hess[2][2] = {};
    for (int it = 0; it < 20; ++it) {
      MullerBrownTarget::potential(p[0], p[1], g);
      const double h = 1e-6;
      for (int k = 0; k < 2; ++k) {
        double gp[2], gm[2];
        MullerBrownTarget::potential(p[0] + (k == 0 ? h : 0), p[1] + (k == 1 ? h : 0), gp);
        MullerBrownTarget::potential(p[0] - (k == 0 ? h : 0), p[1] - (k == 1 ? h : 0), gm);
        hess[0][k] = (gp[0] - gm[0]) / (2 * h);
        hess[1][k] = (gp[1] - gm[1]) / (2 * h);
      }
      const double det = hess[0][0] * hess[1][1] - hess[0][1] * hess[1][0];
      p[0] -= (hess[1][1] * g[0] - hess[0][1] * g[1]) / det;
      p[1] -= (-hess[1][0] * g[0] + hess[0][0] * g[1]) / det;
    }
    const double v = MullerBrownTarget::potential(p[0], p[1], g);
    CHECK(std::hypot(g[0], g[1]) < 1e-8);
    CHECK(hess[0][0] > 0);
    CHECK(hess[0][0] * hess[1][1] - hess[0][1] * hess[1][0] > 0);
    CHECK(std::abs(p[0] - m.x) < 5e-5);
    CHECK(std::abs(p[1] - m.y) < 5e-5);
    CHECK(std::abs(v - m.v) < 1e-3);
  }
}

TEST_CASE("muller_brown: u = beta V, potential file") {
  const auto pot = load_potential(std::filesystem::path(BOLTZLAB_SOURCE_DIR) / "potentials/muller_brown.json");
  const auto& mb = dynamic_cast<const MullerBrownTarget&>(*pot.target);
  CHECK(mb.beta() == 0.1);
  const double x[2] = {-0.5582, 1.4417};
  double g[2], gv[2];
  CHECK(mb.reduced_energy(x, g) == doctest::Approx(0.1 * MullerBrownTarget::potential(x[0], x[1], gv)));
  CHECK(g[1] == doctest::Approx(0.1 * gv[1]));
  CHECK_THROWS_AS(make_target("muller_brown", Json::parse(R"({"beta": -1})"), ".", "mb.json"), ConfigError);
  CHECK_THROWS_AS(make_target("muller_brown", Json::parse(R"({})"), ".", "mb.json"), ConfigError);
}
