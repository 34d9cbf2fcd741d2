#include <doctest/doctest.h>

#include <cmath>
#include <tuple>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/rosenbrock.hpp"
#include "support/gradient_check.hpp"

using namespace boltzlab;

TEST_CASE("rosenbrock: gradient at random points and energy by hand") {
  RosenbrockTarget r(0.05, 5.0, 1.0);
  testing::check_gradient(r, testing::random_points(2, 50, 2.0));
  // x = (2, 1): 0.05·1 + 5·9 = 45.05.
  const double x[2] = {2.0, 1.0};
  CHECK(r.reduced_energy(x, nullptr) == doctest::Approx(45.05));
  CHECK(*r.log_z() == doctest::Approx(std::log(2 * M_PI)).epsilon(1e-15));
}

TEST_CASE("rosenbrock: 2-D quadrature equals log(pi/sqrt(ab))") {
  // Trapezoid over x1 ∈ μ ± 12 std (std = 1/√(2a)) and, for each x1, x2 on a
  // grid centred at x1² spanning ±12 std of the conditional (1/√(2b)).
  for (const auto& [a, b, mu] : {std::tuple{0.05, 5.0, 1.0}, std::tuple{1.0, 0.3, -0.5}}) {
    RosenbrockTarget r(a, b, mu);
    const double s1 = 1 / std::sqrt(2 * a), s2 = 1 / std::sqrt(2 * b);
    const double h1 = s1 / 40, h2 = s2 / 40;
    double z = 0.0;
    for (int i = -480; i <= 480; ++i) {
      const double x1 = mu + i * h1;
      for (int j = -480; j <= 480; ++j) {
        const double x[2] = {x1, x1 * x1 + j * h2};
        z += std::exp(-r.reduced_energy(x, nullptr)) * h1 * h2;
      }
    }
    CHECK(std::log(z) == doctest::Approx(*r.log_z()).epsilon(1e-9));
  }
  CHECK_THROWS_AS(make_target("rosenbrock", Json::parse(R"({"a": -1})"), ".", "r.json"), ConfigError);
}
