#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "boltzlab/targets/registry.hpp"

using namespace boltzlab;

namespace {

/// A configuration where every shipped potential should be finite: the origin
/// for plain targets; for particle systems, particles on a cubic grid with unit
/// spacing (no collisions).
std::vector<double> probe_point(const Target& t) {
  std::vector<double> x(t.dim(), 0.0);
  const auto [n, s] = t.particle_layout();
  if (n == 0) return x;
  const auto side = static_cast<std::size_t>(std::ceil(std::pow(static_cast<double>(n), 1.0 / static_cast<double>(s))));
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t rest = i;
    for (std::size_t a = 0; a < s; ++a) {
      x[i * s + a] = static_cast<double>(rest % side);
      rest /= side;
    }
  }
  // Molecular force fields have torsions, which are undefined (NaN in OpenMM) for
  // collinear atoms, as on a grid line: shift every coordinate slightly.
  if (t.topology())
    for (std::size_t k = 0; k < x.size(); ++k) x[k] += 0.1 * std::sin(1.3 * static_cast<double>(k) + 0.7);
  return x;
}

}  // namespace

TEST_CASE("potentials: every shipped potentials/*.json loads and evaluates finite") {
  const std::filesystem::path dir = std::filesystem::path(BOLTZLAB_SOURCE_DIR) / "potentials";
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  // The analytic potentials shipped with the targets (others may add more).
  for (const char* name : {"manywell32", "gmm40", "dw4", "lj13", "lj55", "double_well", "double_well1d", "muller_brown",
                           "funnel", "rosenbrock", "gaussian2d", "gaussian10d"}) {
    INFO("potentials/" << name << ".json");
    CHECK(std::find(files.begin(), files.end(), dir / (std::string(name) + ".json")) != files.end());
  }
  for (const auto& f : files) {
    INFO("potential file " << f.string());
    const Potential pot = load_potential(f);
    REQUIRE(pot.target);
    const Target& t = *pot.target;
    CHECK(t.dim() > 0);
    const auto x = probe_point(t);
    std::vector<double> g(t.dim());
    const double u = t.reduced_energy(x.data(), g.data());
    CHECK(std::isfinite(u));
    CHECK(std::all_of(g.begin(), g.end(), [](double v) { return std::isfinite(v); }));
    if (const auto lz = t.log_z()) CHECK(std::isfinite(*lz));
  }
}

TEST_CASE("potentials: shipped Gaussians have the stated log Z") {
  const std::filesystem::path dir = std::filesystem::path(BOLTZLAB_SOURCE_DIR) / "potentials";
  // gaussian10d: product formula 5 log 2π + Σ log std_i.
  const Potential g10 = load_potential(dir / "gaussian10d.json");
  double expected = 5.0 * std::log(2.0 * M_PI);
  for (double s : {0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0}) expected += std::log(s);
  CHECK(*g10.target->log_z() == doctest::Approx(expected).epsilon(1e-14));
  // gaussian2d: trapezoid quadrature of the target's energy (det Σ = 0.56).
  const Potential g2 = load_potential(dir / "gaussian2d.json");
  CHECK(*g2.target->log_z() == doctest::Approx(std::log(2.0 * M_PI) + 0.5 * std::log(0.56)).epsilon(1e-14));
  const double h = 0.02;
  double z = 0.0;
  for (int i = -600; i <= 600; ++i)
    for (int j = -600; j <= 600; ++j) {
      const double x[2] = {1.0 + i * h, -0.5 + j * h};
      z += std::exp(-g2.target->reduced_energy(x, nullptr)) * h * h;
    }
  CHECK(std::log(z) == doctest::Approx(*g2.target->log_z()).epsilon(1e-9));
}
