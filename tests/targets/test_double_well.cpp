#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/double_well.hpp"
#include "support/gradient_check.hpp"

using namespace boltzlab;

TEST_CASE("double_well: gradient at random points, 1-D and 2-D") {
  DoubleWellOptions o;
  o.tilt = 0.7;
  o.sigma = 0.5;
  testing::check_gradient(DoubleWellTarget(o), testing::random_points(2, 40, 1.5));
  o.dim = 1;
  testing::check_gradient(DoubleWellTarget(o), testing::random_points(1, 40, 1.5, 8));
}

TEST_CASE("double_well: energy by hand") {
  DoubleWellOptions o;
  o.barrier = 3.0;
  o.tilt = 0.5;
  o.sigma = 2.0;
  DoubleWellTarget dw(o);
  // x = (0, 2): 3·1 + 0 + ½·4/4 = 3.5;  x = (−1, 0): 0 − 0.5 = −0.5.
  const double a[2] = {0.0, 2.0}, b[2] = {-1.0, 0.0};
  CHECK(dw.reduced_energy(a, nullptr) == doctest::Approx(3.5));
  CHECK(dw.reduced_energy(b, nullptr) == doctest::Approx(-0.5));
}

TEST_CASE("double_well: log Z equals trapezoid quadrature of exp(-u)") {
  // 2-D: the target's energy on a grid, against the constructor's 1-D Simpson
  // quadrature times √(2πσ²). Also a steep tilted 1-D well.
  DoubleWellOptions o;
  o.tilt = -0.8;
  o.sigma = 0.7;
  DoubleWellTarget dw(o);
  const double h = 0.005;
  double z = 0.0;
  for (int i = -800; i <= 800; ++i)
    for (int j = -1000; j <= 1000; ++j) {
      const double x[2] = {i * h, j * h};
      z += std::exp(-dw.reduced_energy(x, nullptr)) * h * h;
    }
  CHECK(std::log(z) == doctest::Approx(*dw.log_z()).epsilon(1e-9));

  for (double barrier : {0.05, 3.0, 40.0}) {
    DoubleWellOptions o1;
    o1.dim = 1;
    o1.barrier = barrier;
    o1.tilt = 1.5;
    DoubleWellTarget dw1(o1);
    const double h1 = 1e-4;
    double z1 = 0.0;
    for (int i = -200000; i <= 200000; ++i) {
      const double x = i * h1;
      z1 += std::exp(-dw1.reduced_energy(&x, nullptr)) * h1;
    }
    INFO("barrier " << barrier);
    CHECK(std::log(z1) == doctest::Approx(*dw1.log_z()).epsilon(1e-9));
  }
}

TEST_CASE("double_well: bad parameters name the key") {
  auto err = [](const char* text) -> std::string {
    try {
      make_target("double_well", Json::parse(text), ".", "dw.json");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  CHECK(err(R"({"dim": 3})").find("dw.json.parameters.dim") != std::string::npos);
  CHECK(err(R"({"barrier": -1})").find("dw.json.parameters.barrier") != std::string::npos);
  CHECK(err(R"({"sigma": 0})").find("dw.json.parameters.sigma") != std::string::npos);
}
