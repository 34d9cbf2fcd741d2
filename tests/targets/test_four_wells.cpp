// Tests of lib/boltzlab/targets/four_wells.*: closed-form gradient against finite
// differences, the four minima in closed form, the symmetries of u, and log Z against
// an independent brute-force quadrature (and, at c = 0, against the 1-D double well).
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/double_well.hpp"
#include "boltzlab/targets/four_wells.hpp"
#include "support/gradient_check.hpp"

using namespace boltzlab;

namespace {

FourWellsTarget four_wells(double barrier, double coupling) {
  FourWellsOptions o;
  o.barrier = barrier;
  o.coupling = coupling;
  return FourWellsTarget(o);
}

}  // namespace

TEST_CASE("four_wells: gradient at random points, both signs of the coupling") {
  for (const auto& [a, c] : {std::pair{3.0, 1.0}, std::pair{0.5, -0.9}, std::pair{10.0, 19.0}}) {
    CAPTURE(a);
    CAPTURE(c);
    testing::check_gradient(four_wells(a, c), testing::random_points(2, 40, 1.5));
  }
}

TEST_CASE("four_wells: energy by hand and the four minima in closed form") {
  const double a = 3.0, c = 1.0;
  const FourWellsTarget t = four_wells(a, c);
  // (0, 0): 2a;  (2, 1): a·9 + 0 + 2c.
  const double origin[2] = {0.0, 0.0}, p[2] = {2.0, 1.0};
  CHECK(t.reduced_energy(origin, nullptr) == doctest::Approx(2 * a).epsilon(1e-15));
  CHECK(t.reduced_energy(p, nullptr) == doctest::Approx(9 * a + 2 * c).epsilon(1e-15));
  // Diagonal minima (±s, ±s), s² = 1 − c/(4a), u = c²/(8a) + c s²; anti-diagonal
  // (±s, ∓s), s² = 1 + c/(4a), u = c²/(8a) − c s². ∇u = 0 there, and the Hessian
  // [[4a(3s² − 1), c], [c, 4a(3s² − 1)]] (checked against finite differences of ∇u) is
  // positive definite; c > 0 puts the deeper pair on the anti-diagonal.
  for (const double sign : {1.0, -1.0}) {
    CAPTURE(sign);
    const double s2 = 1.0 - sign * c / (4 * a), s = std::sqrt(s2);
    const double expected = c * c / (8 * a) + sign * c * s2;
    for (const double r : {1.0, -1.0}) {
      const double x[2] = {r * s, sign * r * s};
      double g[2];
      CHECK(t.reduced_energy(x, g) == doctest::Approx(expected).epsilon(1e-14));
      CHECK(std::fabs(g[0]) < 1e-13);
      CHECK(std::fabs(g[1]) < 1e-13);
      const double h = 1e-6, diag = 4 * a * (3 * s2 - 1);
      double gp[2], gm[2];
      const double xp[2] = {x[0] + h, x[1]}, xm[2] = {x[0] - h, x[1]};
      t.reduced_energy(xp, gp);
      t.reduced_energy(xm, gm);
      CHECK((gp[0] - gm[0]) / (2 * h) == doctest::Approx(diag).epsilon(1e-7));
      CHECK((gp[1] - gm[1]) / (2 * h) == doctest::Approx(c).epsilon(1e-7));
      CHECK(diag - std::fabs(c) > 0);
    }
  }
  const double deep[2] = {1.0, -1.0}, shallow[2] = {1.0, 1.0};
  CHECK(t.reduced_energy(deep, nullptr) < t.reduced_energy(shallow, nullptr));
}

TEST_CASE("four_wells: symmetries u(x, y) = u(y, x) = u(-x, -y), u(x, -y; c) = u(x, y; -c)") {
  const FourWellsTarget t = four_wells(2.0, 1.3), flipped = four_wells(2.0, -1.3);
  for (const auto& x : testing::random_points(2, 200, 1.5, 11)) {
    const double u = t.reduced_energy(x.data(), nullptr);
    const double swapped[2] = {x[1], x[0]}, inverted[2] = {-x[0], -x[1]}, mirrored[2] = {x[0], -x[1]};
    CHECK(t.reduced_energy(swapped, nullptr) == doctest::Approx(u).epsilon(1e-15));
    CHECK(t.reduced_energy(inverted, nullptr) == u);  // sign flips are exact
    CHECK(flipped.reduced_energy(mirrored, nullptr) == u);
  }
  // Z depends on |c| only.
  CHECK(*t.log_z() == doctest::Approx(*flipped.log_z()).epsilon(1e-13));
}

TEST_CASE("four_wells: log Z equals a brute-force trapezoid sum of exp(-u)") {
  // Independent of the target's code: u is written out here, summed on a uniform grid
  // over [−4, 4]² with h = 0.004 (the trapezoid rule, whose error for a smooth integrand
  // negligible at the boundary is far below 1e-9; exp(−u) < e^−60 at the boundary).
  auto brute_force_log_z = [](double a, double c) {
    const double h = 0.004;
    double z = 0.0;
    for (int i = -1000; i <= 1000; ++i) {
      const double x = i * h, qx = x * x - 1.0;
      for (int j = -1000; j <= 1000; ++j) {
        const double y = j * h, qy = y * y - 1.0;
        z += std::exp(-(a * qx * qx + a * qy * qy + c * x * y));
      }
    }
    return std::log(z * h * h);
  };
  for (const auto& [a, c] : {std::pair{3.0, 1.0}, std::pair{1.0, -1.9}, std::pair{8.0, 4.0}}) {
    CAPTURE(a);
    CAPTURE(c);
    CHECK(*four_wells(a, c).log_z() == doctest::Approx(brute_force_log_z(a, c)).epsilon(1e-9));
  }
}

TEST_CASE("four_wells: at c = 0 the density factorizes into two 1-D double wells") {
  for (const double a : {0.3, 3.0, 25.0}) {
    CAPTURE(a);
    DoubleWellOptions o;
    o.dim = 1;
    o.barrier = a;
    CHECK(*four_wells(a, 0.0).log_z() == doctest::Approx(2.0 * *DoubleWellTarget(o).log_z()).epsilon(1e-10));
  }
}

TEST_CASE("four_wells: bad parameters name the key, typos get a suggestion") {
  auto err = [](const char* text) -> std::string {
    try {
      make_target("four_wells", Json::parse(text), ".", "fw.json");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  CHECK(err(R"({"barrier": 0})").find("fw.json.parameters.barrier") != std::string::npos);
  CHECK(err(R"({"barrier": 1, "coupling": 2})").find("fw.json.parameters.coupling") != std::string::npos);
  CHECK(err(R"({"barrier": 1, "coupling": -2.5})").find("fewer than four minima") != std::string::npos);
  CHECK(err(R"({"barier": 1})").find("did you mean 'barrier'") != std::string::npos);
  CHECK(err(R"({"barrier": 1, "coupling": 1.5})").empty());
  CHECK_THROWS_AS(four_wells(1.0, std::nan("")), ConfigError);
}
