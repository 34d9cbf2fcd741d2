#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/dw4.hpp"
#include "support/gradient_check.hpp"

using namespace boltzlab;

TEST_CASE("dw4: gradient at random points") {
  Dw4Target dw;
  REQUIRE(dw.dim() == 8);
  CHECK(degrees_of_freedom(dw) == 6);
  testing::check_gradient(dw, testing::random_points(8, 50, 2.0));
  Dw4Options o;
  o.n_particles = 5;
  o.spatial_dim = 3;
  o.a = 0.7;
  o.tau = 0.5;
  Dw4Target dw3(o);
  testing::check_gradient(dw3, testing::random_points(15, 20, 2.0, 9));
}

TEST_CASE("dw4: energy of a square by hand") {
  // Square of side d0 = 4: the four sides have t = 0 (energy 0), the two diagonals
  // t = 4√2 − 4, each contributing −4t² + 0.9t⁴.
  Dw4Target dw;
  const double x[8] = {0, 0, 4, 0, 4, 4, 0, 4};
  const double t = 4.0 * std::sqrt(2.0) - 4.0;
  CHECK(dw.reduced_energy(x, nullptr) == doctest::Approx(2 * (-4 * t * t + 0.9 * t * t * t * t)).epsilon(1e-14));
  // τ = 2 halves the energy.
  Dw4Options o;
  o.tau = 2.0;
  CHECK(Dw4Target(o).reduced_energy(x, nullptr) == doctest::Approx(-4 * t * t + 0.9 * t * t * t * t).epsilon(1e-14));
}

TEST_CASE("dw4: translation and rotation invariance, gradient sums to zero") {
  Dw4Target dw;
  for (auto x : testing::random_points(8, 10, 2.0, 3)) {
    double g[8];
    const double u = dw.reduced_energy(x.data(), g);
    for (int a = 0; a < 2; ++a) {
      double sum = 0.0;
      for (int i = 0; i < 4; ++i) sum += g[i * 2 + a];
      CHECK(std::abs(sum) < 1e-10 * (1 + std::abs(u)));
    }
    auto y = x;
    const double c = std::cos(0.7), s = std::sin(0.7);
    for (int i = 0; i < 4; ++i) {
      y[2 * i] = c * x[2 * i] - s * x[2 * i + 1] + 3.5;
      y[2 * i + 1] = s * x[2 * i] + c * x[2 * i + 1] - 1.25;
    }
    CHECK(dw.reduced_energy(y.data(), nullptr) == doctest::Approx(u).epsilon(1e-12));
    remove_center_of_mass(x.data(), 4, 2);
    CHECK(dw.reduced_energy(x.data(), nullptr) == doctest::Approx(u).epsilon(1e-12));
  }
}

TEST_CASE("dw4: bad parameters name the key") {
  auto err = [](const char* text) -> std::string {
    try {
      make_target("dw4", Json::parse(text), ".", "dw.json");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  CHECK(err(R"({"tau": 0})").find("dw.json.parameters.tau") != std::string::npos);
  CHECK(err(R"({"c": -1})").find("dw.json.parameters.c") != std::string::npos);
  CHECK(err(R"({"spatial_dim": 4})").find("dw.json.parameters.spatial_dim") != std::string::npos);
  CHECK(err(R"({"n_particles": 1})").find("dw.json.parameters.n_particles") != std::string::npos);
  CHECK(err(R"({"d00": 1})").find("did you mean 'd0'") != std::string::npos);
}
