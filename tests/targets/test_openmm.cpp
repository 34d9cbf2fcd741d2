#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include <unistd.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/molecules/dihedrals.hpp"
#include "boltzlab/targets/openmm_target.hpp"
#include "support/gradient_check.hpp"

using namespace boltzlab;
namespace fs = std::filesystem;

namespace {

const fs::path kPotentials = fs::path(BOLTZLAB_SOURCE_DIR) / "potentials";
const fs::path kAlaData = fs::path(BOLTZLAB_SOURCE_DIR) / "data" / "alanine_dipeptide";

const OpenMMTarget& as_openmm(const Potential& p) {
  const auto* t = dynamic_cast<const OpenMMTarget*>(p.target.get());
  REQUIRE(t != nullptr);
  return *t;
}

// A potential built from a shipped file with some parameters replaced (e.g. the
// platform), written next to the shipped one so relative paths keep working.
std::unique_ptr<Target> shipped_with(const std::string& stem, const Json& overrides) {
  Json raw = read_json_file(kPotentials / (stem + ".json"));
  Json params = raw["parameters"];
  for (const auto& [k, v] : overrides.items()) params[k] = v;
  return make_target("openmm", params, kPotentials, stem + " (modified)");
}

// Scratch directory for bad-input files, removed at scope exit.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    path = fs::temp_directory_path() / ("boltzlab_openmm_test_" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return path / name;
  }
};

std::string load_error(const fs::path& potential) {
  try {
    load_potential(potential);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("openmm: shipped alanine dipeptide potentials reproduce the reference energies") {
  // Energies at the shipped coordinates (Reference platform, OpenMM 7.7; data/README.md):
  // OBC2 -95.730, vacuum -55.400, ff96+OBC1 (crd coordinates) -138.970 kJ/mol.
  const std::vector<std::pair<std::string, double>> cases = {
      {"alanine_dipeptide", -95.730}, {"alanine_dipeptide_vacuum", -55.400}, {"alanine_dipeptide_obc1", -138.970}};
  for (const auto& [stem, expected] : cases) {
    INFO(stem);
    Potential p = load_potential(kPotentials / (stem + ".json"));
    const OpenMMTarget& t = as_openmm(p);
    CHECK(t.dim() == 66);
    CHECK(t.kT() == doctest::Approx(0.0083144626 * 300.0).epsilon(1e-15));
    const double e = t.potential_energy(t.initial_positions().data(), nullptr);
    CHECK(std::abs(e - expected) < 5e-4);  // the reference values carry 3 decimals
    // u = E / kT.
    CHECK(t.reduced_energy(t.initial_positions().data(), nullptr) == doctest::Approx(e / t.kT()).epsilon(1e-14));
  }
}

TEST_CASE("openmm: energies and forces of 100 MD configurations agree with OpenMM's Python layer to 1e-6") {
  // tests/data/ala2_*: written by tools/make_alanine_systems.py (Python OpenMM, on the
  // platform the potential file names). Agreement is checked through the parallel
  // batched path: |ΔE| ≤ 1e-6·|E| and max|ΔF| ≤ 1e-6·max|F| per configuration.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"alanine_dipeptide", "obc2"}, {"alanine_dipeptide_vacuum", "vacuum"}, {"alanine_dipeptide_obc1", "obc1"}};
  for (const auto& [stem, key] : cases) {
    INFO(stem);
    Potential p = load_potential(kPotentials / (stem + ".json"));
    const fs::path base = fs::path(BOLTZLAB_TEST_DATA) / ("ala2_" + key);
    const RowMatrix x = read_npy_matrix(base.string() + "_positions.npy", 66);
    const Eigen::VectorXd energies = read_npy_vector(base.string() + "_energies.npy");
    const RowMatrix forces = read_npy_matrix(base.string() + "_forces.npy", 66);
    REQUIRE(x.rows() >= 100);
    REQUIRE(energies.size() == x.rows());
    Eigen::VectorXd u;
    RowMatrix grad;
    const BatchStats stats = p.target->evaluate_batch(x, u, &grad, Execution::kParallel);
    CHECK(stats.non_finite == 0);
    const double kT = p.target->kT();
    double worst_e = 0.0, worst_f = 0.0;
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      worst_e = std::max(worst_e, std::abs(u[i] * kT - energies[i]) / std::abs(energies[i]));
      const Eigen::RowVectorXd f = -grad.row(i) * kT;  // F = −kT ∇u
      worst_f = std::max(worst_f, (f - forces.row(i)).cwiseAbs().maxCoeff() / forces.row(i).cwiseAbs().maxCoeff());
    }
    INFO("worst relative energy error " << worst_e << ", force error " << worst_f);
    CHECK(worst_e < 1e-6);
    CHECK(worst_f < 1e-6);
  }
}

TEST_CASE("openmm: the CPU platform chosen for OBC1 agrees with the Reference platform") {
  // The CPU platform computes in mixed single precision; measured differences from
  // Reference are ~7e-7 (energy) and ~2e-7 (forces, relative to max|F|). 1e-5 leaves
  // a margin for other configurations while still catching a wrong System.
  auto reference = shipped_with("alanine_dipeptide_obc1", Json{{"platform", "Reference"}});
  Potential cpu = load_potential(kPotentials / "alanine_dipeptide_obc1.json");
  CHECK(as_openmm(cpu).options().platform == "CPU");
  const RowMatrix x = read_npy_matrix(std::string(BOLTZLAB_TEST_DATA) + "/ala2_obc1_positions.npy", 66);
  Eigen::VectorXd u_ref, u_cpu;
  RowMatrix g_ref, g_cpu;
  reference->evaluate_batch(x.topRows(20), u_ref, &g_ref);
  cpu.target->evaluate_batch(x.topRows(20), u_cpu, &g_cpu);
  for (Eigen::Index i = 0; i < 20; ++i) {
    CHECK(std::abs(u_cpu[i] - u_ref[i]) < 1e-5 * std::abs(u_ref[i]));
    CHECK((g_cpu.row(i) - g_ref.row(i)).cwiseAbs().maxCoeff() < 1e-5 * g_ref.row(i).cwiseAbs().maxCoeff());
  }
}

TEST_CASE("openmm: gradient of u matches finite differences (Reference platform)") {
  // Double precision Reference platform. Central differences with step h have
  // truncation error ~h²|u'''|/6 and rounding ~1e-16|u|/h. Stiff bonds and close
  // 1-4 pairs make h = 1e-5 nm give errors ~2e-6; h = 2e-6 nm puts truncation
  // near 1e-7 and rounding near 1e-9, below the 1e-6 tolerance.
  for (const std::string key : {"obc2", "vacuum", "obc1"}) {
    const std::string stem = key == "obc2" ? "alanine_dipeptide" : "alanine_dipeptide_" + key;
    INFO(stem);
    auto target = shipped_with(stem, Json{{"platform", "Reference"}});
    const RowMatrix x = read_npy_matrix(std::string(BOLTZLAB_TEST_DATA) + "/ala2_" + key + "_positions.npy", 66);
    std::vector<std::vector<double>> points;
    for (Eigen::Index i : {0, 50}) points.emplace_back(x.row(i).data(), x.row(i).data() + 66);
    testing::GradientCheckOptions opt;
    opt.step = 2e-6;
    opt.coordinatewise = key != "obc1";  // OBC1 costs ~1 ms per evaluation: random directions only
    opt.directions = key == "obc1" ? 12 : 8;
    testing::check_gradient(*target, points, opt);
  }
}

TEST_CASE("openmm: parallel batch equals serial batch and concurrent calls") {
  Potential p = load_potential(kPotentials / "alanine_dipeptide.json");
  const RowMatrix x = read_npy_matrix(std::string(BOLTZLAB_TEST_DATA) + "/ala2_obc2_positions.npy", 66);
  Eigen::VectorXd u1, u2;
  RowMatrix g1, g2;
  p.target->evaluate_batch(x, u1, &g1, Execution::kParallel);
  p.target->evaluate_batch(x, u2, &g2, Execution::kSerial);
  CHECK(u1 == u2);
  CHECK(g1 == g2);
  // Plain std::threads calling reduced_energy concurrently get their own Contexts.
  std::vector<double> u3(static_cast<std::size_t>(x.rows()));
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (Eigen::Index i = t; i < x.rows(); i += 3) u3[static_cast<std::size_t>(i)] = p.target->reduced_energy(x.row(i).data(), nullptr);
    });
  }
  for (auto& th : threads) th.join();
  for (Eigen::Index i = 0; i < x.rows(); ++i) CHECK(u3[static_cast<std::size_t>(i)] == u1[i]);
}

TEST_CASE("openmm: NaN coordinates and clashes are counted, never thrown") {
  Potential p = load_potential(kPotentials / "alanine_dipeptide_vacuum.json");
  const OpenMMTarget& t = as_openmm(p);
  RowMatrix x(4, 66);
  for (int r = 0; r < 4; ++r) x.row(r) = Eigen::Map<const Eigen::RowVectorXd>(t.initial_positions().data(), 66);
  x(1, 5) = std::numeric_limits<double>::quiet_NaN();
  x(2, 3) = std::numeric_limits<double>::infinity();
  Eigen::VectorXd u;
  RowMatrix g;
  const BatchStats s = t.evaluate_batch(x, u, &g, Execution::kSerial);
  CHECK(s.non_finite == 2);
  CHECK(std::isinf(u[1]));
  CHECK(std::isinf(u[2]));
  CHECK(t.counters().non_finite == 2);
  // The Context is still good after the bad inputs.
  CHECK(u[3] == u[0]);
  CHECK(u[0] == doctest::Approx(-55.400 / t.kT()).epsilon(1e-5));

  // energy_max: two atoms on top of each other give an enormous energy, reported as +inf.
  auto capped = shipped_with("alanine_dipeptide_vacuum", Json{{"energy_max", 1e6}});
  std::vector<double> clash = t.initial_positions();
  for (int k = 0; k < 3; ++k) clash[3 * 21 + k] = clash[3 * 0 + k] + 1e-3;  // an NME H on an ACE H
  CHECK(std::isfinite(t.reduced_energy(clash.data(), nullptr)));
  CHECK(t.reduced_energy(clash.data(), nullptr) > 1e6);
  CHECK(std::isinf(capped->reduced_energy(clash.data(), nullptr)));
}

TEST_CASE("openmm: lin-log energy cut is continuous and its gradient matches finite differences") {
  // With c below the energies of MD configurations, ũ = c + log(1 + u − c).
  Potential p = load_potential(kPotentials / "alanine_dipeptide_vacuum.json");
  auto cut = shipped_with("alanine_dipeptide_vacuum", Json{{"energy_cut", -30.0}});
  const RowMatrix x = read_npy_matrix(std::string(BOLTZLAB_TEST_DATA) + "/ala2_vacuum_positions.npy", 66);
  for (Eigen::Index i : {0, 10, 20}) {
    const double u = p.target->reduced_energy(x.row(i).data(), nullptr);
    const double uc = cut->reduced_energy(x.row(i).data(), nullptr);
    if (u > -30.0) CHECK(uc == doctest::Approx(-30.0 + std::log1p(u + 30.0)).epsilon(1e-12));
    else CHECK(uc == u);
  }
  std::vector<std::vector<double>> points;
  for (Eigen::Index i : {0, 30}) points.emplace_back(x.row(i).data(), x.row(i).data() + 66);
  testing::GradientCheckOptions opt;
  opt.step = 2e-6;  // see the gradient test above
  testing::check_gradient(*cut, points, opt);
  // Off by default.
  CHECK(as_openmm(p).options().energy_cut.has_value() == false);
}

TEST_CASE("openmm: topology comes from the PDB") {
  Potential p = load_potential(kPotentials / "alanine_dipeptide.json");
  const Topology* top = p.target->topology();
  REQUIRE(top != nullptr);
  REQUIRE(top->atoms() == 22);
  CHECK(top->atom_names[4] == "C");
  CHECK(top->atom_names[6] == "N");
  CHECK(top->atom_names[8] == "CA");
  CHECK(top->residue_names[0] == "ACE");
  CHECK(top->residue_names[8] == "ALA");
  CHECK(top->residue_names[21] == "NME");
  CHECK(top->residue_ids[8] == 2);
  CHECK(top->elements[0] == "H");
  CHECK(top->elements[7] == "H");
  CHECK(top->elements[6] == "N");
  CHECK(p.target->particle_layout() == std::make_pair(std::size_t{22}, std::size_t{3}));
  // The OBC1 PDB has no element column: elements are inferred from names like 1HH3.
  Potential p1 = load_potential(kPotentials / "alanine_dipeptide_obc1.json");
  CHECK(p1.target->topology()->atom_names[0] == "1HH3");
  CHECK(p1.target->topology()->elements[0] == "H");
  CHECK(p1.target->topology()->elements[1] == "C");
  // Its starting coordinates come from the crd file (7 decimals), not the PDB (3).
  CHECK(as_openmm(p1).initial_positions()[0] == doctest::Approx(0.2000001).epsilon(1e-12));
}

TEST_CASE("openmm: the shipped MD reference frames are consistent with the target") {
  // data/alanine_dipeptide/md_reference_*: float32 positions (rounding ≤ 1.2e-7 nm),
  // float64 u and dihedrals from the float64 frames. Position rounding changes u by
  // at most ~|F|·δx/kT ≈ 1e4·66·1.2e-7/2.5 ≈ 0.03 in the worst case, dihedrals by ~1e-6.
  Potential p = load_potential(kPotentials / "alanine_dipeptide.json");
  const RowMatrix x = read_npy_matrix(kAlaData / "md_reference_positions.npy", 66);
  const Eigen::VectorXd u = read_npy_vector(kAlaData / "md_reference_reduced_energies.npy");
  const RowMatrix angles = read_npy_matrix(kAlaData / "md_reference_dihedrals.npy", 2);
  REQUIRE(x.rows() == 10000);
  REQUIRE(u.size() == 10000);
  for (Eigen::Index i = 0; i < x.rows(); i += 250) {
    CHECK(std::abs(p.target->reduced_energy(x.row(i).data(), nullptr) - u[i]) < 0.05);
    CHECK(std::abs(std::remainder(dihedral_angle(x.row(i).data(), 4, 6, 8, 14) - angles(i, 0), 2 * M_PI)) < 1e-4);
    CHECK(std::abs(std::remainder(dihedral_angle(x.row(i).data(), 6, 8, 14, 16) - angles(i, 1), 2 * M_PI)) < 1e-4);
  }
}

TEST_CASE("openmm: bad input gives one clear error naming the file or field") {
  ScratchDir dir;
  const std::string xml = (kPotentials / "alanine_dipeptide.xml").string();
  const std::string pdb = (kAlaData / "alanine_dipeptide.pdb").string();
  auto potential = [&](const std::string& name, const std::string& params) {
    return dir.write(name, R"({"type": "openmm", "parameters": {)" + params + "}}");
  };
  auto good = [&](const std::string& extra) {
    return R"("system": ")" + xml + R"(", "pdb": ")" + pdb + R"(", "temperature": 300)" + extra;
  };

  SUBCASE("missing XML") {
    const auto f = potential("a.json", R"("system": "nowhere.xml", "pdb": ")" + pdb + R"(", "temperature": 300)");
    CHECK_THROWS_AS(load_potential(f), IoError);
    const std::string msg = load_error(f);
    CHECK(msg.find("parameters.system") != std::string::npos);
    CHECK(msg.find("nowhere.xml") != std::string::npos);
  }
  SUBCASE("malformed XML") {
    dir.write("bad.xml", "<?xml version=\"1.0\" ?>\n<System openmmVersion=\"7.7\" type=\"System\" version=\"1\">\n<Particles>\n<Particle mass=");
    const auto f = potential("a.json", R"("system": "bad.xml", "pdb": ")" + pdb + R"(", "temperature": 300)");
    CHECK_THROWS_AS(load_potential(f), IoError);
    CHECK(load_error(f).find("bad.xml") != std::string::npos);
  }
  SUBCASE("XML that is not a System") {
    dir.write("integrator.xml", "<?xml version=\"1.0\" ?>\n<Integrator type=\"VerletIntegrator\" version=\"1\" stepSize=\"0.001\"/>\n");
    const auto f = potential("a.json", R"("system": "integrator.xml", "pdb": ")" + pdb + R"(", "temperature": 300)");
    CHECK_THROWS_AS(load_potential(f), IoError);
    CHECK(load_error(f).find("not a serialized OpenMM System") != std::string::npos);
  }
  SUBCASE("PDB atom count differs from the System") {
    std::ifstream in(pdb);
    std::string line, text;
    int atoms = 0;
    while (std::getline(in, line)) {
      if (line.rfind("ATOM", 0) == 0 && ++atoms == 22) continue;  // drop the last atom
      text += line + "\n";
    }
    dir.write("short.pdb", text);
    const auto f = potential("a.json", R"("system": ")" + xml + R"(", "pdb": "short.pdb", "temperature": 300)");
    CHECK_THROWS_AS(load_potential(f), ConfigError);
    const std::string msg = load_error(f);
    CHECK(msg.find("short.pdb' has 21 atoms") != std::string::npos);
    CHECK(msg.find("22 particles") != std::string::npos);
  }
  SUBCASE("missing PDB") {
    const auto f = potential("a.json", R"("system": ")" + xml + R"(", "pdb": "none.pdb", "temperature": 300)");
    CHECK_THROWS_AS(load_potential(f), IoError);
    CHECK(load_error(f).find("parameters.pdb: none") == std::string::npos);
    CHECK(load_error(f).find("none.pdb") != std::string::npos);
  }
  SUBCASE("unknown platform") {
    const auto f = potential("a.json", good(R"(, "platform": "CPUU")"));
    CHECK_THROWS_AS(load_potential(f), ConfigError);
    const std::string msg = load_error(f);
    CHECK(msg.find("parameters.platform: unknown OpenMM platform 'CPUU' (did you mean 'CPU'?)") != std::string::npos);
    CHECK(msg.find("available: Reference") != std::string::npos);
  }
  SUBCASE("temperature <= 0") {
    const auto f = potential("a.json", R"("system": ")" + xml + R"(", "pdb": ")" + pdb + R"(", "temperature": -5)");
    CHECK_THROWS_AS(load_potential(f), ConfigError);
    CHECK(load_error(f).find("parameters.temperature: is -5") != std::string::npos);
    const auto g = potential("b.json", R"("system": ")" + xml + R"(", "pdb": ")" + pdb + R"(", "temperature": 0)");
    CHECK_THROWS_AS(load_potential(g), ConfigError);
  }
  SUBCASE("unknown key") {
    const auto f = potential("a.json", good(R"(, "temprature": 300)"));
    CHECK_THROWS_AS(load_potential(f), ConfigError);
    CHECK(load_error(f).find("did you mean 'temperature'") != std::string::npos);
  }
  SUBCASE("unknown platform property") {
    const auto f = potential("a.json", good(R"(, "platform": "CPU", "platform_properties": {"Thread": "1"})"));
    CHECK_THROWS_AS(load_potential(f), ConfigError);
    CHECK(load_error(f).find("platform_properties: 'Thread'") != std::string::npos);
  }
}

TEST_CASE("openmm: Context policy by platform: one per thread on host platforms, one shared on GPU platforms") {
  CHECK(openmm_context_policy("OpenCL") == OpenMMContextPolicy::kShared);
  CHECK(openmm_context_policy("CUDA") == OpenMMContextPolicy::kShared);
  CHECK(openmm_context_policy("HIP") == OpenMMContextPolicy::kShared);
  CHECK(openmm_context_policy("CPU") == OpenMMContextPolicy::kPerThread);
  CHECK(openmm_context_policy("Reference") == OpenMMContextPolicy::kPerThread);
  CHECK(to_string(OpenMMContextPolicy::kShared) == "shared");
  CHECK(to_string(OpenMMContextPolicy::kPerThread) == "per_thread");
  Potential p = load_potential(kPotentials / "alanine_dipeptide.json");
  CHECK(as_openmm(p).context_policy() == OpenMMContextPolicy::kPerThread);
  CHECK(as_openmm(p).describe()["contexts"] == "per_thread");
}

TEST_CASE("openmm: one shared Context gives the per-thread results, bit for bit, from any number of threads") {
  // The shared path (what a GPU platform uses) run on the Reference platform: the same
  // rows through one Context, whatever thread asks, in parallel batches and serial ones.
  Potential p = load_potential(kPotentials / "alanine_dipeptide.json");
  OpenMMTargetOptions options = as_openmm(p).options();
  options.context_policy = OpenMMContextPolicy::kShared;
  const OpenMMTarget shared(options);
  CHECK(shared.context_policy() == OpenMMContextPolicy::kShared);
  CHECK(shared.describe()["contexts"] == "shared");
  const RowMatrix x = read_npy_matrix(std::string(BOLTZLAB_TEST_DATA) + "/ala2_obc2_positions.npy", 66);
  Eigen::VectorXd u_ref, u_par, u_ser;
  RowMatrix g_ref, g_par, g_ser;
  p.target->evaluate_batch(x, u_ref, &g_ref, Execution::kSerial);
  shared.evaluate_batch(x, u_par, &g_par, Execution::kParallel);
  shared.evaluate_batch(x, u_ser, &g_ser, Execution::kSerial);
  CHECK(u_par == u_ref);
  CHECK(g_par == g_ref);
  CHECK(u_ser == u_ref);
  CHECK(g_ser == g_ref);
  // Three plain threads at once: one Context for the shared target (the lock serializes
  // them), one more per thread for the per-thread target.
  const OpenMMTarget per_thread(as_openmm(p).options());
  auto from_threads = [&](const OpenMMTarget& target) {
    std::vector<double> u(static_cast<std::size_t>(x.rows()));
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&, t] {
        for (Eigen::Index i = t; i < x.rows(); i += 3) {
          std::vector<double> g(66);
          u[static_cast<std::size_t>(i)] = target.reduced_energy(x.row(i).data(), g.data());
        }
      });
    }
    for (auto& th : threads) th.join();
    return u;
  };
  const std::vector<double> u_shared = from_threads(shared), u_own = from_threads(per_thread);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    CHECK(u_shared[static_cast<std::size_t>(i)] == u_ref[i]);
    CHECK(u_own[static_cast<std::size_t>(i)] == u_ref[i]);
  }
  CHECK(shared.evaluation_contexts() == 1);
  CHECK(per_thread.evaluation_contexts() >= 4);  // the constructor's and one per plain thread
}

TEST_CASE("openmm: a GPU platform with device properties: one shared Context, or one line naming the available platforms") {
  const std::vector<std::string> available = openmm_platform_names();
  for (const std::string platform : {"OpenCL", "CUDA"}) {
    INFO(platform);
    const Json overrides{{"platform", platform}, {"platform_properties", {{"Precision", "mixed"}, {"DeviceIndex", "0"}}}};
    if (std::find(available.begin(), available.end(), platform) == available.end()) {
      // No device here (Debian's OpenMM ships the OpenCL plugin, which needs an OpenCL runtime).
      std::string msg;
      try {
        shipped_with("alanine_dipeptide", overrides);
      } catch (const ConfigError& e) {
        msg = e.what();
      }
      CHECK(msg.find("platform: OpenMM platform '" + platform + "' is not available on this machine") != std::string::npos);
      CHECK(msg.find("available: Reference") != std::string::npos);
      CHECK(msg.find('\n') == std::string::npos);
      continue;
    }
    auto target = shipped_with("alanine_dipeptide", overrides);
    const auto& gpu = dynamic_cast<const OpenMMTarget&>(*target);
    CHECK(gpu.context_policy() == OpenMMContextPolicy::kShared);
    const RowMatrix x = read_npy_matrix(std::string(BOLTZLAB_TEST_DATA) + "/ala2_obc2_positions.npy", 66);
    Eigen::VectorXd u_par, u_ser;
    gpu.evaluate_batch(x, u_par, nullptr, Execution::kParallel);
    gpu.evaluate_batch(x, u_ser, nullptr, Execution::kSerial);
    CHECK(u_par == u_ser);
    CHECK(gpu.evaluation_contexts() == 1);
  }
}
