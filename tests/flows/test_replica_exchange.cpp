#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include <unistd.h>

#include <OpenMM.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/flows/replica_exchange.hpp"
#include "boltzlab/targets/openmm_target.hpp"
#include "support/temp_dir.hpp"

using namespace boltzlab;
using boltzlab::testing::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr int kAtoms = 4;             // d = 12 coordinates
constexpr double kSpring = 100.0;     // kJ/mol/nm²
constexpr double kMass = 1.0;         // amu: ω = sqrt(k/m) = 10 /ps

/// An OpenMM target of `kAtoms` independent particles, each in the isotropic well
/// E = k/2 |r − r0|² (CustomExternalForce, no CMMotionRemover): E is a sum of
/// d = 3·kAtoms quadratic terms, so at temperature T it is Gamma(d/2, kT) distributed.
std::unique_ptr<OpenMMTarget> harmonic_target(const fs::path& dir, double temperature = 300.0) {
  OpenMM::System system;
  auto* force = new OpenMM::CustomExternalForce("0.5*k*((x-x0)^2+(y-y0)^2+(z-z0)^2)");
  force->addGlobalParameter("k", kSpring);
  force->addPerParticleParameter("x0");
  force->addPerParticleParameter("y0");
  force->addPerParticleParameter("z0");
  std::ofstream pdb(dir / "wells.pdb");
  for (int a = 0; a < kAtoms; ++a) {
    system.addParticle(kMass);
    const std::vector<double> r0 = {0.5 * a, 0.0, 0.0};
    force->addParticle(a, r0);
    char line[128];
    std::snprintf(line, sizeof line, "ATOM  %5d  AR  ARG A%4d    %8.3f%8.3f%8.3f  1.00  0.00          AR\n", a + 1,
                  a + 1, 10.0 * r0[0] + 0.3, 0.2, -0.1);  // Å, a little off the minimum
    pdb << line;
  }
  pdb << "END\n";
  pdb.close();
  system.addForce(force);
  std::ofstream xml(dir / "wells.xml");
  OpenMM::XmlSerializer::serialize<OpenMM::System>(&system, "System", xml);
  xml.close();
  OpenMMTargetOptions o;
  o.system_xml = dir / "wells.xml";
  o.pdb = dir / "wells.pdb";
  o.temperature = temperature;
  return std::make_unique<OpenMMTarget>(o);
}

/// Options of the harmonic runs: 10 fs steps (ωΔt = 0.1), γ = 10/ps, a swap every
/// 0.2 ps and a frame at every exchange.
ReplicaExchangeOptions harmonic_options(double production_ps) {
  ReplicaExchangeOptions o;
  o.temperatures = {300.0, 390.0, 507.0};
  o.timestep_fs = 10.0;
  o.friction_per_ps = 10.0;
  o.exchange_interval_ps = 0.2;
  o.frame_interval_ps = 0.2;
  o.equilibration_ps = 10.0;
  o.production_ps = production_ps;
  o.minimize = false;
  o.seed = 7;
  return o;
}

/// Mean and standard error from `blocks` contiguous block means (batch means: the
/// blocks are long compared with the correlation time, so their means are nearly
/// independent and their spread carries the autocorrelation).
std::pair<double, double> block_mean_se(const std::vector<double>& v, std::size_t blocks) {
  const std::size_t len = v.size() / blocks;
  std::vector<double> means(blocks, 0.0);
  for (std::size_t b = 0; b < blocks; ++b) {
    for (std::size_t i = 0; i < len; ++i) means[b] += v[b * len + i];
    means[b] /= static_cast<double>(len);
  }
  double m = 0.0, s2 = 0.0;
  for (double x : means) m += x;
  m /= static_cast<double>(blocks);
  for (double x : means) s2 += (x - m) * (x - m);
  s2 /= static_cast<double>(blocks - 1);
  return {m, std::sqrt(s2 / static_cast<double>(blocks))};
}

/// E[min(1, exp((β_i − β_j)(E_i − E_j)))] with E_k ~ Gamma(d/2, kT_k) independent, by
/// Monte Carlo with `n` draws (its standard error is returned too).
std::pair<double, double> analytic_acceptance(double Ti, double Tj, int d, std::size_t n) {
  std::mt19937_64 gen(12345);
  const double kTi = kBoltzmannKJPerMolK * Ti, kTj = kBoltzmannKJPerMolK * Tj;
  std::gamma_distribution<double> gi(0.5 * d, kTi), gj(0.5 * d, kTj);
  double sum = 0.0, sum2 = 0.0;
  for (std::size_t k = 0; k < n; ++k) {
    const double p = std::min(1.0, std::exp((1.0 / kTi - 1.0 / kTj) * (gi(gen) - gj(gen))));
    sum += p;
    sum2 += p * p;
  }
  const double m = sum / static_cast<double>(n);
  return {m, std::sqrt((sum2 / static_cast<double>(n) - m * m) / static_cast<double>(n))};
}

void check_identical(const ReplicaExchangeResult& a, const ReplicaExchangeResult& b) {
  REQUIRE(a.frames.size() == b.frames.size());
  for (std::size_t k = 0; k < a.frames.size(); ++k) {
    CHECK(a.frames[k] == b.frames[k]);
    CHECK(a.potential_energies[k] == b.potential_energies[k]);
    CHECK(a.mean_kinetic_temperature[k] == b.mean_kinetic_temperature[k]);
  }
  CHECK(a.swap_attempts == b.swap_attempts);
  CHECK(a.swap_accepted == b.swap_accepted);
  CHECK(a.replica_states == b.replica_states);
  CHECK(a.round_trips == b.round_trips);
  CHECK(a.exchanges_done == b.exchanges_done);
}

}  // namespace

TEST_CASE("replica exchange: options, ladder and the potential-file section") {
  const std::vector<double> t = geometric_ladder(300.0, 600.0, 4);
  REQUIRE(t.size() == 4);
  CHECK(t[0] == 300.0);
  CHECK(t[3] == 600.0);
  CHECK(t[1] / t[0] == doctest::Approx(t[2] / t[1]).epsilon(1e-12));
  CHECK_THROWS_AS(geometric_ladder(300.0, 200.0, 4), ConfigError);
  CHECK_THROWS_AS(geometric_ladder(300.0, 600.0, 1), ConfigError);

  ReplicaExchangeOptions base;
  base.temperatures = {300.0};
  const Json section = {{"t_max", 450.0}, {"replicas", 3}, {"production_ns", 0.5}, {"swaps", "all-pairs"}};
  const ReplicaExchangeOptions o = replica_exchange_options_from_json(section, "x.json: replica_exchange", base);
  CHECK(o.temperatures == geometric_ladder(300.0, 450.0, 3));
  CHECK(o.production_ps == doctest::Approx(500.0));
  CHECK(o.swaps == SwapScheme::kAllPairs);
  CHECK(o.production_exchanges() == 500);
  CHECK(o.steps_per_exchange() == 1000);

  auto message = [&](const Json& j) {
    try {
      replica_exchange_options_from_json(j, "x.json: replica_exchange", base);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message({{"temperatures", {300, 290}}}).find("temperatures: must be strictly ascending") != std::string::npos);
  CHECK(message({{"temperatures", {300}}}).find("at least 2") != std::string::npos);
  CHECK(message({{"temperatures", {300, 400}}, {"frame_interval_ps", 1.5}}).find("frame_interval_ps") !=
        std::string::npos);
  CHECK(message({{"temperatures", {300, 400}}, {"exchange_interval_ps", 0.0005}}).find("exchange_interval_ps") !=
        std::string::npos);
  CHECK(message({{"temperatures", {300, 400}}, {"swap", "neighbors"}}).find("did you mean 'swaps'") !=
        std::string::npos);
  CHECK(message({{"temperatures", {300, 400}}, {"swaps", "neighbours"}}).find("unknown swap scheme") !=
        std::string::npos);
  CHECK(message({{"t_max", 500}}).find("replicas: missing") != std::string::npos);
}

TEST_CASE("replica exchange: harmonic wells sample Gamma(d/2, kT) and swap at the analytic rate") {
  TempDir dir("rex_physics");
  const auto target = harmonic_target(dir.path);
  const ReplicaExchangeOptions o = harmonic_options(2000.0);
  const ReplicaExchangeResult r = run_replica_exchange(*target, target->initial_positions(), o);
  REQUIRE_FALSE(r.failed);
  CHECK_FALSE(r.removes_com);
  const std::size_t K = o.temperatures.size();
  const int d = 3 * kAtoms;
  const std::size_t F = o.frames();
  REQUIRE(static_cast<std::size_t>(r.frames[0].rows()) == F);

  // (b) ⟨E⟩ at each temperature is d/2·kT: LangevinMiddle samples the positions of a
  // harmonic system exactly at any stable step (Leimkuhler & Matthews, Appl. Math. Res.
  // Express 2013, 34), and exchanges preserve every temperature's marginal. Tolerance:
  // 4 standard errors from 100 block means of 100 frames (20 ps each, ≫ the energy
  // correlation time ~1/γ = 0.1 ps), so a correct sampler fails with probability ~1e-4.
  for (std::size_t k = 0; k < K; ++k) {
    const Eigen::VectorXd& e = r.potential_energies[k];
    const auto [mean, se] = block_mean_se(std::vector<double>(e.data(), e.data() + e.size()), 100);
    const double expected = 0.5 * d * kBoltzmannKJPerMolK * o.temperatures[k];
    INFO("T = " << o.temperatures[k] << ": <E> = " << mean << " ± " << se << ", expected " << expected);
    CHECK(std::abs(mean - expected) < 4.0 * se);
    CHECK(se < 0.02 * expected);  // the check has power: a 10 % error in T would fail
  }

  // (a) Neighbour acceptance. Frames are recorded at every exchange just before the
  // swaps, so frame p holds the energies that exchange eq + p used: the even/odd scheme
  // attempted pair (k, k+1) with k ≡ eq + p (mod 2). The acceptance probabilities
  // a_p = min(1, exp(Δβ ΔE)) from the frames give (i) the expected number of accepted
  // swaps given the energies, whose difference from the counted one has variance
  // Σ a_p (1 − a_p) (independent uniforms), and (ii) a Rao–Blackwellized estimate of
  // the mean acceptance, compared with E[min(1, exp(Δβ ΔE))] for independent Gamma
  // energies (Monte Carlo with 4·10⁶ draws) within 4 combined standard errors.
  for (std::size_t k = 0; k + 1 < K; ++k) {
    const double bi = 1.0 / (kBoltzmannKJPerMolK * o.temperatures[k]);
    const double bj = 1.0 / (kBoltzmannKJPerMolK * o.temperatures[k + 1]);
    std::vector<double> a;
    double var = 0.0;
    for (std::size_t p = 0; p < F; ++p) {
      if ((r.equilibration_exchanges + p) % 2 != k % 2) continue;
      const auto row = static_cast<Eigen::Index>(p);
      const double ap =
          std::min(1.0, std::exp((bi - bj) * (r.potential_energies[k][row] - r.potential_energies[k + 1][row])));
      a.push_back(ap);
      var += ap * (1.0 - ap);
    }
    const auto ki = static_cast<Eigen::Index>(k);
    REQUIRE(r.swap_attempts(ki, ki + 1) == static_cast<double>(a.size()));
    double expected_accepted = 0.0;
    for (double ap : a) expected_accepted += ap;
    INFO("pair " << k << ": accepted " << r.swap_accepted(ki, ki + 1) << ", expected " << expected_accepted << " ± "
                 << std::sqrt(var));
    CHECK(std::abs(r.swap_accepted(ki, ki + 1) - expected_accepted) < 4.0 * std::sqrt(var));
    const auto [measured, se] = block_mean_se(a, 100);
    const auto [exact, se_exact] = analytic_acceptance(o.temperatures[k], o.temperatures[k + 1], d, 4000000);
    INFO("pair " << k << ": mean acceptance " << measured << " ± " << se << ", analytic " << exact << " ± " << se_exact);
    CHECK(std::abs(measured - exact) < 4.0 * std::sqrt(se * se + se_exact * se_exact));
    CHECK(se < 0.02);
    CHECK(r.neighbor_acceptance()[k] == doctest::Approx(r.swap_accepted(ki, ki + 1) / r.swap_attempts(ki, ki + 1)));
  }
  // Every replica visits both ends: with ~50 % acceptance there are many round trips.
  for (std::size_t rep = 0; rep < K; ++rep) CHECK(r.round_trips[rep] > 10);
  // Swaps permute the temperatures: each row of the history is a permutation.
  for (Eigen::Index p = 0; p < r.replica_states.rows(); p += 97) {
    CHECK(r.replica_states.row(p).sum() == doctest::Approx(0.5 * K * (K - 1)));
  }
}

TEST_CASE("replica exchange: results do not depend on the thread count") {
  TempDir dir("rex_threads");
  const auto target = harmonic_target(dir.path);
  for (SwapScheme scheme : {SwapScheme::kNeighbors, SwapScheme::kAllPairs}) {
    ReplicaExchangeOptions o = harmonic_options(40.0);
    o.temperatures = {300.0, 350.0, 420.0, 500.0};
    o.swaps = scheme;
    set_num_threads(1);
    const ReplicaExchangeResult r1 = run_replica_exchange(*target, target->initial_positions(), o);
    set_num_threads(2);
    const ReplicaExchangeResult r2 = run_replica_exchange(*target, target->initial_positions(), o);
    set_num_threads(0);
    REQUIRE_FALSE(r1.failed);
    check_identical(r1, r2);
    CHECK(r1.swap_accepted.sum() > 0);
    // Other seeds give other trajectories.
    o.seed = 8;
    const ReplicaExchangeResult r3 = run_replica_exchange(*target, target->initial_positions(), o);
    CHECK(r3.frames[0] != r1.frames[0]);
  }
}

TEST_CASE("replica exchange: an interrupted and resumed run equals the uninterrupted one") {
  TempDir dir("rex_resume");
  const auto target = harmonic_target(dir.path);
  ReplicaExchangeOptions o = harmonic_options(40.0);
  o.minimize = true;
  const ReplicaExchangeResult full = run_replica_exchange(*target, target->initial_positions(), o);
  REQUIRE_FALSE(full.failed);

  // Stop in equilibration (exchange 20 of 50), then in production (exchange 130 of
  // 250), then run to the end; each leg starts from the previous leg's checkpoint.
  ReplicaExchangeCheckpointing ck;
  ck.path = dir.path / "run.checkpoint.rex";
  ck.every_seconds = 0;
  ck.stop_after_exchanges = 20;
  const ReplicaExchangeResult first = run_replica_exchange(*target, target->initial_positions(), o, &ck);
  CHECK(first.interrupted);
  CHECK(first.exchanges_done == 20);
  CHECK(fs::exists(ck.path));
  ck.resume = true;
  ck.stop_after_exchanges = 130;
  const ReplicaExchangeResult second = run_replica_exchange(*target, target->initial_positions(), o, &ck);
  CHECK(second.interrupted);
  CHECK(second.resumed_at_exchange == 20);
  CHECK(second.frames[0].rows() == 80);
  ck.stop_after_exchanges = 0;
  ck.every_exchanges = 7;  // checkpoints along the way do not change the run either
  const ReplicaExchangeResult resumed = run_replica_exchange(*target, target->initial_positions(), o, &ck);
  CHECK(resumed.resumed);
  CHECK_FALSE(resumed.interrupted);
  CHECK(resumed.checkpoints_written > 0);
  check_identical(full, resumed);
  CHECK(resumed.start_energy == full.start_energy);
  CHECK(resumed.minimized_energy == full.minimized_energy);

  // A checkpoint of other options is refused, naming the option.
  ReplicaExchangeOptions other = o;
  other.friction_per_ps = 5.0;
  try {
    run_replica_exchange(*target, target->initial_positions(), other, &ck);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("friction_per_ps") != std::string::npos);
  }
  ck.path = dir.path / "missing.rex";
  CHECK_THROWS_AS(run_replica_exchange(*target, target->initial_positions(), o, &ck), IoError);
}

TEST_CASE("replica exchange: a replica that blows up is reported, not a crash") {
  TempDir dir("rex_blowup");
  const auto target = harmonic_target(dir.path);
  ReplicaExchangeOptions o = harmonic_options(40.0);
  o.timestep_fs = 300.0;  // ωΔt = 3 > 2: the harmonic integration is unstable
  o.exchange_interval_ps = 3.0;
  o.frame_interval_ps = 3.0;
  o.equilibration_ps = 0.0;
  o.production_ps = 3000.0;
  const ReplicaExchangeResult r = run_replica_exchange(*target, target->initial_positions(), o);
  CHECK(r.failed);
  CHECK(r.non_finite_replicas >= 1);
  CHECK(r.failure.find("non-finite energy or forces") != std::string::npos);
  CHECK(r.frames[0].rows() < 1000);
  CHECK_THROWS_AS(run_replica_exchange(*target, std::vector<double>(5, 0.0), o), DomainError);
}
