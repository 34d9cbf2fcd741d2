// Tests of lib/boltzlab/flows/flow.*: the diverged-particle counts (FlowHealth) that
// Flow::run fills in for every flow, and their bounds.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>

#include <unistd.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/flows/flow.hpp"
#include "boltzlab/io/npy.hpp"
#include "flows/flow_test_support.hpp"

using namespace boltzlab;
using namespace boltzlab::testing;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// u = ½x² for |x| < 50, a flat plateau u = 1e40 beyond (∇u = 0 there): a particle
/// on the plateau has a finite but absurd energy and nothing pulls it back, as the
/// 1e51–1e88 energies of a blown-up run.
class Plateau : public Target {
 public:
  std::string name() const override { return "plateau"; }
  std::size_t dim() const override { return 1; }
  double reduced_energy(const double* x, double* grad) const override {
    const bool inside = std::fabs(x[0]) < 50.0;
    if (grad) grad[0] = inside ? x[0] : 0.0;
    return inside ? 0.5 * x[0] * x[0] : 1e40;
  }
};

/// u = ½x² for x < 3, u and ∇u NaN beyond: ULA steps into NaN and stays there.
class NanWall : public Target {
 public:
  std::string name() const override { return "nan_wall"; }
  std::size_t dim() const override { return 1; }
  double reduced_energy(const double* x, double* grad) const override {
    if (grad) grad[0] = x[0] < 3.0 ? x[0] : kNaN;
    return x[0] < 3.0 ? 0.5 * x[0] * x[0] : kNaN;
  }
};

}  // namespace

TEST_CASE("flow health: every class of failed particle is counted once") {
  FlowOptions opt;
  Ensemble e(6, 2);
  e.positions << 0.1, 0.2,   // healthy
      kNaN, 0.0,             // non-finite position
      1.0, 1.0,              // non-finite energy
      2e10, 0.0,             // beyond the position bound (1e10)
      0.0, 1.0,              // exploded energy (1e31 > 1e30)
      -3.0, 4.0;             // healthy, negative energy
  e.reduced_energies << 0.5, kNaN, kInf, 1.0, 1e31, -1e29;
  const FlowHealth h = assess_health(e, opt);
  CHECK(h.particles == 6);
  CHECK(h.non_finite_positions == 1);
  CHECK(h.non_finite_energies == 1);
  CHECK(h.exploded == 2);
  CHECK(h.diverged() == 4);
  CHECK(h.healthy() == 2);
  CHECK_FALSE(h.ok());
  CHECK_FALSE(h.stuck_assessed);
  CHECK(h.problem() ==
        "1 of 6 particles have non-finite positions, 1 of 6 particles have non-finite energies, 2 of 6 particles "
        "exploded (|u| > 1e+30 or |x| > 1e+10)");
  for (std::size_t i : {0u, 5u}) CHECK(healthy_particle(e, i, opt));
  for (std::size_t i : {1u, 2u, 3u, 4u}) CHECK_FALSE(healthy_particle(e, i, opt));
  const nlohmann::json j = h.to_json();
  CHECK(j["healthy"] == 2);
  CHECK(j["exploded_energy_bound"] == 1e30);
  CHECK(j["stuck"].is_null());
  CHECK(j["stuck_rule"] == "not assessed: the flow has no acceptance test");
  // The bounds are options: raised, the 1e31 energy is no longer exploded.
  opt.exploded_energy = 1e32;
  CHECK(assess_health(e, opt).exploded == 1);
  opt.exploded_position = -1.0;
  CHECK_THROWS_WITH_AS(opt.validate(), doctest::Contains("exploded_position is -1"), ConfigError);
}

TEST_CASE("flow health: every registered flow counts particles left at absurd energies") {
  // 30 particles in the bowl, 2 on the plateau at x = 1e3 (u = 1e40) and 1 at x = 1e12
  // (beyond the position bound as well). No flow can bring them back (∇u = 0 there and
  // the kernels of the interacting flows vanish at that distance), and every flow must
  // report exactly 3 exploded particles and average only the healthy ones.
  const Plateau target;
  const std::string samples =
      (std::filesystem::temp_directory_path() / ("boltzlab_health_" + std::to_string(::getpid()) + ".npy")).string();
  RowMatrix target_samples(200, 1);
  Rng rng(5, 0);
  for (Eigen::Index i = 0; i < 200; ++i) target_samples(i, 0) = rng.normal();
  write_npy(samples, target_samples);
  for (const FlowInfo& row : flow_table()) {
    if (row.name == "openmm-langevin") continue;  // OpenMM targets only
    CAPTURE(row.name);
    Ensemble e = normal_ensemble(33, 1, 1.0, 6);
    e.particle(30)[0] = 1e3;
    e.particle(31)[0] = -1e3;
    e.particle(32)[0] = 1e12;
    FlowOptions opt;
    opt.warmup = 10;
    opt.steps = 40;
    opt.seed = 7;
    opt.step_size = 0.01;
    const Json params = row.name == "mmd" ? Json{{"target_samples", samples}} : Json::object();
    const FlowResult r = run_flow(row.name, params, target, e, opt);
    CHECK(r.health.exploded == 3);
    CHECK(r.health.non_finite_positions == 0);
    CHECK(r.health.healthy() == 30);
    CHECK(r.health.problem().find("3 of 33 particles exploded") == 0);
  }
  std::filesystem::remove(samples);
}

TEST_CASE("flow health: ULA stepping into NaN leaves non-finite positions, counted") {
  const NanWall target;
  Ensemble e = normal_ensemble(200, 1, 1.0, 8, 2.0);  // N(2, 1): many start near the wall
  FlowOptions opt;
  opt.steps = 50;
  opt.step_size = 0.1;
  opt.seed = 9;
  const FlowResult r = run_flow("ula", Json::object(), target, e, opt);
  std::size_t nan_rows = 0;
  for (std::size_t i = 0; i < e.size(); ++i) nan_rows += !std::isfinite(e.particle(i)[0]);
  REQUIRE(nan_rows > 0);
  CHECK(r.health.non_finite_positions == nan_rows);
  CHECK(r.health.healthy() + nan_rows + r.health.non_finite_energies == 200);
  CHECK_FALSE(r.health.ok());
}
