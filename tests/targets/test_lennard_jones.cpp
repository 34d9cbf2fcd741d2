#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/lennard_jones.hpp"
#include "support/gradient_check.hpp"

using namespace boltzlab;

namespace {

/// The first n sites of a cubic (s = 3) or square (s = 2) grid with spacing 1.1,
/// each coordinate displaced by 0.05·N(0, 1): compact clusters with no
/// near-collisions, where finite differences are safe.
std::vector<std::vector<double>> perturbed_clusters(std::size_t n, int count, std::uint64_t seed, int s = 3) {
  const int side = static_cast<int>(std::ceil(std::pow(static_cast<double>(n), 1.0 / s) - 1e-9));
  Rng rng(seed, 0);
  std::vector<std::vector<double>> out;
  for (int c = 0; c < count; ++c) {
    std::vector<double> x;
    for (std::size_t i = 0; i < n; ++i) {
      int rest = static_cast<int>(i);
      for (int a = 0; a < s; ++a) {
        x.push_back(1.1 * (rest % side) + 0.05 * rng.normal());
        rest /= side;
      }
    }
    out.push_back(x);
  }
  return out;
}

LennardJonesOptions lj_options(std::size_t n, double prefactor, double harmonic) {
  LennardJonesOptions o;
  o.n_particles = n;
  o.pair_prefactor = prefactor;
  o.harmonic = harmonic;
  return o;
}

}  // namespace

TEST_CASE("lennard_jones: two particles at distance rm") {
  // Pair term −P·ε; harmonic ½·k·(2·(rm/2)²) = k/4.
  const double x[6] = {0.3, -0.2, 0.1, 0.3, -0.2, 1.1};
  double g[6];
  CHECK(LennardJonesTarget(lj_options(2, 2.0, 0.0)).reduced_energy(x, g) == doctest::Approx(-2.0).epsilon(1e-15));
  for (double gi : g) CHECK(std::abs(gi) < 1e-12);  // the pair minimum
  CHECK(LennardJonesTarget(lj_options(2, 1.0, 0.0)).reduced_energy(x, nullptr) == doctest::Approx(-1.0));
  CHECK(LennardJonesTarget(lj_options(2, 2.0, 1.0)).reduced_energy(x, nullptr) == doctest::Approx(-1.75));
  LennardJonesOptions o = lj_options(2, 2.0, 1.0);
  o.tau = 0.5;
  o.epsilon = 3.0;
  CHECK(LennardJonesTarget(o).reduced_energy(x, nullptr) == doctest::Approx((-6.0 + 0.25) / 0.5));
}

TEST_CASE("lennard_jones: LJ13 on a line, energy by hand") {
  // 13 particles on a line with spacing rm = 1: k = 1..12 apart occur 13 − k times,
  // pair term 2·Σ_k (13 − k)(k⁻¹² − 2k⁻⁶); centroid at particle 6, so
  // ½Σ|x_i − x̄|² = ½·2·(1 + 4 + 9 + 16 + 25 + 36) = 91.
  LennardJonesTarget lj(lj_options(13, 2.0, 1.0));
  std::vector<double> x(39, 0.0);
  for (int i = 0; i < 13; ++i) x[3 * static_cast<std::size_t>(i) + 1] = i - 4.0;
  double pair = 0.0;
  for (int k = 1; k <= 12; ++k) pair += (13 - k) * (std::pow(k, -12.0) - 2 * std::pow(k, -6.0));
  CHECK(lj.reduced_energy(x.data(), nullptr) == doctest::Approx(2 * pair + 91.0).epsilon(1e-14));
}

TEST_CASE("lennard_jones: gradients of LJ13 and LJ55 near compact clusters") {
  LennardJonesTarget lj13(lj_options(13, 2.0, 1.0));
  testing::check_gradient(lj13, perturbed_clusters(13, 20, 1));
  LennardJonesTarget lj55(lj_options(55, 2.0, 1.0));
  testing::GradientCheckOptions opt;
  opt.directions = 4;
  testing::check_gradient(lj55, perturbed_clusters(55, 3, 2), opt);
  LennardJonesOptions o2 = lj_options(6, 1.0, 0.5);
  o2.spatial_dim = 2;
  o2.rm = 1.3;
  o2.epsilon = 0.7;
  o2.tau = 1.5;
  LennardJonesTarget lj2d(o2);
  testing::check_gradient(lj2d, perturbed_clusters(6, 10, 3, 2));
}

TEST_CASE("lennard_jones: relaxing the icosahedron gives the LJ13 global minimum") {
  // Known global minimum of the 13-atom LJ cluster (Cambridge Cluster Database,
  // Wales & Doye 1997): −44.326801 ε with the pair energy ε[(rm/d)¹² − 2(rm/d)⁶]
  // (pair_prefactor 1, no harmonic term). Steepest descent from the ideal
  // icosahedron (centre + 12 vertices at distance rm) converges to it.
  LennardJonesTarget lj(lj_options(13, 1.0, 0.0));
  const double phi = (1 + std::sqrt(5.0)) / 2;
  std::vector<double> x(3, 0.0);
  const double r = std::sqrt(1 + phi * phi);
  for (int s1 : {-1, 1})
    for (int s2 : {-1, 1}) {
      const double v[3][3] = {{0, s1 * 1.0, s2 * phi}, {s1 * 1.0, s2 * phi, 0}, {s2 * phi, 0, s1 * 1.0}};
      for (const auto& p : v)
        for (double e : p) x.push_back(e / r);
    }
  REQUIRE(x.size() == 39);
  std::vector<double> g(39);
  double u = 0.0;
  for (int it = 0; it < 3000; ++it) {
    u = lj.reduced_energy(x.data(), g.data());
    for (std::size_t k = 0; k < 39; ++k) x[k] -= 0.002 * g[k];
  }
  double gnorm = 0.0;
  for (double e : g) gnorm += e * e;
  CHECK(std::sqrt(gnorm) < 1e-6);
  CHECK(u == doctest::Approx(-44.326801).epsilon(1e-8));
}

TEST_CASE("lennard_jones: translation invariance, centre of mass, prefactor") {
  LennardJonesTarget lj(lj_options(13, 2.0, 1.0));
  LennardJonesTarget lj_pair2(lj_options(13, 2.0, 0.0));
  LennardJonesTarget lj_pair1(lj_options(13, 1.0, 0.0));
  for (auto x : perturbed_clusters(13, 5, 4)) {
    std::vector<double> g(39);
    const double u = lj.reduced_energy(x.data(), g.data());
    for (int a = 0; a < 3; ++a) {
      double sum = 0.0;
      for (int i = 0; i < 13; ++i) sum += g[3 * static_cast<std::size_t>(i) + static_cast<std::size_t>(a)];
      CHECK(std::abs(sum) < 1e-9);
    }
    auto y = x;
    for (std::size_t k = 0; k < 39; ++k) y[k] += (k % 3 == 0 ? 2.5 : k % 3 == 1 ? -7.0 : 0.3);
    CHECK(lj.reduced_energy(y.data(), nullptr) == doctest::Approx(u).epsilon(1e-12));
    remove_center_of_mass(x.data(), 13, 3);
    CHECK(lj.reduced_energy(x.data(), nullptr) == doctest::Approx(u).epsilon(1e-12));
    CHECK(lj_pair2.reduced_energy(x.data(), nullptr) ==
          doctest::Approx(2 * lj_pair1.reduced_energy(x.data(), nullptr)).epsilon(1e-14));
  }
  CHECK(degrees_of_freedom(lj) == 36);
  CHECK(lj.particle_layout() == std::pair<std::size_t, std::size_t>{13, 3});
}

TEST_CASE("lennard_jones: a collision is +inf and counted, never a crash") {
  LennardJonesTarget lj(lj_options(13, 2.0, 1.0));
  auto pts = perturbed_clusters(13, 4, 5);
  RowMatrix x(4, 39);
  for (int r = 0; r < 4; ++r)
    for (int k = 0; k < 39; ++k) x(r, k) = pts[static_cast<std::size_t>(r)][static_cast<std::size_t>(k)];
  for (int k = 0; k < 3; ++k) x(2, 3 + k) = x(2, k);  // particles 0 and 1 coincide
  CHECK(lj.reduced_energy(x.row(2).data(), nullptr) == std::numeric_limits<double>::infinity());
  Eigen::VectorXd u;
  RowMatrix g;
  const auto stats = lj.evaluate_batch(x, u, &g, Execution::kSerial);
  CHECK(stats.non_finite == 1);
  CHECK(u[2] == std::numeric_limits<double>::infinity());
  CHECK(std::isfinite(u[0]));
  CHECK(std::isfinite(u[3]));
}

TEST_CASE("lennard_jones: bad parameters name the key") {
  auto err = [](const char* text) -> std::string {
    try {
      make_target("lennard_jones", Json::parse(text), ".", "lj.json");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  CHECK(err(R"({})").find("lj.json.parameters.n_particles") != std::string::npos);
  CHECK(err(R"({"n_particles": 13, "pair_prefactor": -2})").find("lj.json.parameters.pair_prefactor") !=
        std::string::npos);
  CHECK(err(R"({"n_particles": 13, "rm": 0})").find("lj.json.parameters.rm") != std::string::npos);
  CHECK(err(R"({"n_particles": 13, "harmonic": -1})").find("lj.json.parameters.harmonic") != std::string::npos);
  CHECK(err(R"({"n_particles": 13, "harmonic": 0})").empty());
  CHECK(err(R"({"n_particles": 13, "pair_prefator": 2})").find("did you mean 'pair_prefactor'") != std::string::npos);
}
