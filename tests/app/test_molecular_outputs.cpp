#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/io/dcd.hpp"
#include "boltzlab/app/molecular_outputs.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/io/pdb.hpp"
#include "boltzlab/molecules/dihedrals.hpp"
#include "boltzlab/targets/registry.hpp"
#include "support/temp_dir.hpp"

using namespace boltzlab;
using boltzlab::testing::TempDir;
namespace fs = std::filesystem;

namespace {

const fs::path kAla = fs::path(BOLTZLAB_SOURCE_DIR) / "data" / "alanine_dipeptide";
constexpr double kPi = 3.14159265358979323846;

// Reads all frames of a DCD written by write_dcd (nm), parsing the Fortran records.
RowMatrix read_dcd(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  auto record = [&]() {
    std::int32_t len = 0, len2 = 0;
    in.read(reinterpret_cast<char*>(&len), 4);
    std::vector<char> buf(static_cast<std::size_t>(len));
    in.read(buf.data(), len);
    in.read(reinterpret_cast<char*>(&len2), 4);
    REQUIRE(len == len2);
    return buf;
  };
  const auto header = record();
  REQUIRE(std::memcmp(header.data(), "CORD", 4) == 0);
  std::int32_t frames = 0, atoms = 0;
  std::memcpy(&frames, header.data() + 4, 4);
  record();  // title
  const auto natom = record();
  std::memcpy(&atoms, natom.data(), 4);
  RowMatrix x(frames, 3 * atoms);
  for (int f = 0; f < frames; ++f)
    for (int c = 0; c < 3; ++c) {
      const auto axis = record();
      REQUIRE(axis.size() == static_cast<std::size_t>(4 * atoms));
      for (int a = 0; a < atoms; ++a) {
        float v;
        std::memcpy(&v, axis.data() + 4 * a, 4);
        x(f, 3 * a + c) = 0.1 * v;
      }
    }
  return x;
}

}  // namespace

TEST_CASE("dihedrals: angle and sign convention (IUPAC, as MDTraj)") {
  // p0 = (1,0,0), p1 = 0, p2 = (0,0,1), p3 = (cos θ, sin θ, 1): the dihedral is θ.
  for (double theta : {-2.5, -kPi / 2, -0.3, 0.0, 0.7, kPi / 2, 3.0}) {
    const double x[12] = {1, 0, 0, 0, 0, 0, 0, 0, 1, std::cos(theta), std::sin(theta), 1};
    CHECK(dihedral_angle(x, 0, 1, 2, 3) == doctest::Approx(theta).epsilon(1e-12));
  }
  const double collinear[12] = {0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3};
  CHECK(std::isnan(dihedral_angle(collinear, 0, 1, 2, 3)));
}

TEST_CASE("dihedrals: backbone phi/psi of alanine dipeptide from atom names") {
  for (const char* file : {"alanine_dipeptide.pdb", "amber96_obc1.pdb"}) {
    INFO(file);
    const PdbStructure s = read_pdb(kAla / file);
    const auto rama = ramachandran_dihedrals(s.topology);
    REQUIRE(rama.has_value());
    CHECK(rama->first.atoms == std::array<std::size_t, 4>{4, 6, 8, 14});
    CHECK(rama->second.atoms == std::array<std::size_t, 4>{6, 8, 14, 16});
    CHECK(backbone_dihedrals(s.topology).size() == 2);
  }
}

TEST_CASE("pdb: reader and Amber coordinates") {
  const PdbStructure s = read_pdb(kAla / "alanine_dipeptide.pdb");
  REQUIRE(s.topology.atoms() == 22);
  CHECK(s.positions_nm[0] == doctest::Approx(1.5908));
  CHECK(s.topology.elements[1] == "C");
  const PdbStructure o = read_pdb(kAla / "amber96_obc1.pdb");
  CHECK(o.topology.elements[11] == "H");  // "1HB"
  const auto crd = read_amber_coordinates(kAla / "amber96_obc1.crd");
  REQUIRE(crd.size() == 66);
  // The PDB (3 decimals) and the crd (7 decimals) hold the same structure.
  for (std::size_t k = 0; k < 66; ++k) CHECK(std::abs(crd[k] - o.positions_nm[k]) < 1e-4);
  TempDir dir("molecular");
  std::ofstream(dir.path / "short.crd") << "title\n   22\n   1.0000000   2.0000000\n";
  CHECK_THROWS_AS(read_amber_coordinates(dir.path / "short.crd"), IoError);
  std::ofstream(dir.path / "empty.pdb") << "REMARK nothing\nEND\n";
  CHECK_THROWS_AS(read_pdb(dir.path / "empty.pdb"), IoError);
}

TEST_CASE("ramachandran: weighted histogram, free energy and basins") {
  Eigen::VectorXd phi(5), psi(5), lw(5);
  phi << -1.4, -1.4, -1.2, 1.0, std::nan("");
  psi << 2.5, 2.5, -0.7, 0.5, 0.0;
  // Unweighted: 4 finite frames; basins β/C7eq 2/4, αR 1/4, φ>0 1/4.
  const auto h = ramachandran_histogram(phi, psi);
  CHECK(h.weights.sum() == 4);
  CHECK(h.skipped_frames == 1);
  CHECK(h.beta_c7eq == doctest::Approx(0.5));
  CHECK(h.alpha_r == doctest::Approx(0.25));
  CHECK(h.phi_positive == doctest::Approx(0.25));
  // Two identical frames share a bin: F = −log(2/4).
  const auto bin = [](double a) { return static_cast<Eigen::Index>(std::floor((a + kPi) / (2 * kPi) * 64)); };
  CHECK(h.free_energy(bin(-1.4), bin(2.5)) == doctest::Approx(-std::log(0.5)));
  CHECK(std::isinf(h.free_energy(0, 0)));
  // Weighted: w ∝ (1, 1, 6, 2) and the last frame with log w = −inf gets weight 0.
  lw << 0.0, 0.0, std::log(6.0), std::log(2.0), -std::numeric_limits<double>::infinity();
  phi[4] = 2.0;
  const auto hw = ramachandran_histogram(phi, psi, &lw);
  CHECK(hw.weighted);
  CHECK(hw.zero_weight_frames == 1);
  CHECK(hw.alpha_r == doctest::Approx(0.6));
  CHECK(hw.beta_c7eq == doctest::Approx(0.2));
  CHECK(hw.phi_positive == doctest::Approx(0.2));
  CHECK(hw.effective_sample_size == doctest::Approx(100.0 / 42.0));
  // Angles at ±π land in the first bin (π wraps to −π).
  Eigen::VectorXd edge(1), zero(1);
  edge << kPi;
  zero << 0.0;
  CHECK(ramachandran_histogram(edge, zero).weights(0, 32) == 1);
}

TEST_CASE("molecular outputs: trajectory files round-trip and dihedrals match the frames") {
  Potential p = load_potential(fs::path(BOLTZLAB_SOURCE_DIR) / "potentials" / "alanine_dipeptide_vacuum.json");
  const RowMatrix x = read_npy_matrix(std::string(BOLTZLAB_TEST_DATA) + "/ala2_vacuum_positions.npy", 66);
  TempDir dir("molecular");
  RunDirectory run(dir.path / "run");
  nlohmann::json summary;
  write_molecular_outputs(run, *p.target, x, nullptr, summary);
  run.commit();
  const fs::path out = dir.path / "run";
  // DCD: float32 Å.
  const RowMatrix dcd = read_dcd(out / "trajectory.dcd");
  REQUIRE(dcd.rows() == x.rows());
  CHECK((dcd - x).cwiseAbs().maxCoeff() < 1e-6);
  // Multi-model PDB: the first model equals frame 0 to the PDB's 0.001 Å.
  const PdbStructure first = read_pdb(out / "trajectory.pdb");
  REQUIRE(first.topology.atoms() == 22);
  CHECK(first.topology.atom_names == p.target->topology()->atom_names);
  for (std::size_t k = 0; k < 66; ++k) CHECK(std::abs(first.positions_nm[k] - x(0, static_cast<Eigen::Index>(k))) < 6e-5);
  const RowMatrix angles = read_npy_matrix(out / "dihedrals.npy", 2);
  CHECK(angles(7, 0) == doctest::Approx(dihedral_angle(x.row(7).data(), 4, 6, 8, 14)).epsilon(1e-14));
  CHECK(angles(7, 1) == doctest::Approx(dihedral_angle(x.row(7).data(), 6, 8, 14, 16)).epsilon(1e-14));
  const auto& mol = summary["molecular"];
  CHECK(mol["frames"] == 100);
  CHECK(mol["basins"]["phi_negative"].get<double>() + mol["basins"]["phi_positive"].get<double>() == doctest::Approx(1.0));
  CHECK(read_npy_matrix(out / "ramachandran_histogram.npy", 64).sum() == 100);
  for (const char* f : {"topology.pdb", "ramachandran_free_energy.npy"}) CHECK(fs::exists(out / f));
  if (gnuplot_available()) CHECK(fs::exists(out / "ramachandran.png"));
}

TEST_CASE("ramachandran: one style in degrees, viridis, colour scale fitted, reference panel with KL/TV") {
  // Model: φ ≈ −80°, ψ ≈ 150° (β region), 2000 samples; reference: the same region,
  // 4000 frames, with 10 % in φ > 0 (αL).
  Rng rng(7, 0);
  const auto wrap = [](double a) { return std::remainder(a, 2 * kPi); };  // into [−π, π]
  Eigen::VectorXd phi(2000), psi(2000);
  for (Eigen::Index i = 0; i < phi.size(); ++i) {
    phi[i] = wrap(-1.4 + 0.3 * rng.normal());
    psi[i] = wrap(2.6 + 0.3 * rng.normal());
  }
  RowMatrix reference(4000, 2);
  for (Eigen::Index i = 0; i < reference.rows(); ++i) {
    const bool left = i % 10 == 0;
    reference(i, 0) = wrap(left ? 1.0 + 0.2 * rng.normal() : -1.4 + 0.3 * rng.normal());
    reference(i, 1) = wrap(left ? 0.6 + 0.2 * rng.normal() : 2.6 + 0.3 * rng.normal());
  }
  const RamachandranFigure alone = ramachandran_figure(phi, psi, nullptr, nullptr, "", "ala2: Ramachandran");
  REQUIRE(alone.panels.size() == 1);
  CHECK(alone.caption.empty());
  // Bins from the sample size: round(sqrt(2000 / 10)) = 14.
  CHECK(alone.panels[0].free_energy.rows() == 14);
  const std::string one = ramachandran_script(alone).script;
  CHECK(one.find("set xrange [-180:180]") != std::string::npos);
  CHECK(one.find("set xlabel 'phi (degrees)'") != std::string::npos);
  CHECK(one.find("set palette defined (0 '#440154'") != std::string::npos);
  // The colour scale ends at the largest finite F − min F, rounded up: not a fixed 10 kT.
  const RowMatrix& f = alone.panels[0].free_energy;
  double f_min = 1e300, f_max = -1e300;
  for (Eigen::Index k = 0; k < f.size(); ++k) {
    if (!std::isfinite(f.data()[k])) continue;
    f_min = std::min(f_min, f.data()[k]);
    f_max = std::max(f_max, f.data()[k]);
  }
  const std::string range = "set cbrange [0:" + std::to_string(static_cast<int>(std::ceil(f_max - f_min))) + "]";
  CHECK(one.find(range) != std::string::npos);
  CHECK(one.find("set multiplot layout 1,1") != std::string::npos);

  const RamachandranFigure both = ramachandran_figure(phi, psi, nullptr, &reference, "rex.npy", "ala2: Ramachandran");
  REQUIRE(both.panels.size() == 2);
  CHECK(both.panels[1].free_energy.rows() == 14);
  CHECK(both.panels[1].title.find("reference: rex.npy (4000 frames)") != std::string::npos);
  REQUIRE(both.caption.size() == 2);
  CHECK(both.caption[0].find("KL(ref || model) = ") != std::string::npos);
  CHECK(both.caption[0].find("TV = ") != std::string::npos);
  CHECK(both.caption[1].find("population of phi >= 0: model ") == 0);
  const std::string two = ramachandran_script(both).script;
  CHECK(two.find("set multiplot layout 1,2") != std::string::npos);
  CHECK(two.find("plot $rama1 using 1:2:3 with image") != std::string::npos);
  CHECK(two.find("set label 100 'vs rex.npy (4000 frames): KL(ref || model) = ") != std::string::npos);
  // A reference too short for the comparison still gets its panel, and the caption says why.
  const RowMatrix short_reference = reference.topRows(10);
  const RamachandranFigure short_fig = ramachandran_figure(phi, psi, nullptr, &short_reference, "short", "t");
  CHECK(short_fig.panels.size() == 2);
  REQUIRE(short_fig.caption.size() == 1);
  CHECK(short_fig.caption[0].find("no KL/TV against the reference") == 0);
}
