#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "boltzlab/io/npy.hpp"
#include "boltzlab/molecules/dihedrals.hpp"
#include "boltzlab/targets/openmm_target.hpp"
#include "support/gradient_check.hpp"

// The capped peptides made by tools/make_peptide_systems.py (amber99sbildn + OBC2):
// alanine tetrapeptide ACE-(ALA)3-NME (42 atoms) and phenylalanine dipeptide
// ACE-PHE-NME (32 atoms). The alanine dipeptide checks are in test_openmm.cpp.

using namespace boltzlab;
namespace fs = std::filesystem;

namespace {

const fs::path kPotentials = fs::path(BOLTZLAB_SOURCE_DIR) / "potentials";

struct Peptide {
  std::string stem;     ///< potentials/<stem>.json
  std::string key;      ///< tests/data/<key>_{positions,energies,forces}.npy
  std::size_t atoms;
  double pdb_energy;    ///< kJ/mol at the PDB coordinates, Reference platform (data/README.md)
  std::vector<std::array<std::size_t, 4>> phi_psi;  ///< φ2, ψ2, φ3, ψ3, ... (0-based, PDB order)
  std::vector<std::array<std::size_t, 4>> omega;    ///< CA(i), C(i), N(i+1), CA(i+1); CH3/C for the caps
  std::vector<std::array<std::size_t, 4>> chirality;  ///< N, CA, C, CB of each chiral residue
};

// Atom indices as printed by tools/make_peptide_systems.py (data/README.md).
const std::vector<Peptide>& peptides() {
  static const std::vector<Peptide> table = {
      {"alanine_tetrapeptide", "ala4_obc2", 42, 26.146,
       {{4, 6, 8, 14}, {6, 8, 14, 16}, {14, 16, 18, 24}, {16, 18, 24, 26}, {24, 26, 28, 34}, {26, 28, 34, 36}},
       {{1, 4, 6, 8}, {8, 14, 16, 18}, {18, 24, 26, 28}, {28, 34, 36, 38}},
       {{6, 8, 14, 10}, {16, 18, 24, 20}, {26, 28, 34, 30}}},
      {"phenylalanine_dipeptide", "phe2_obc2", 32, -18.654,
       {{4, 6, 8, 24}, {6, 8, 24, 26}},
       {{1, 4, 6, 8}, {8, 24, 26, 28}},
       {{6, 8, 24, 10}}},
  };
  return table;
}

const OpenMMTarget& as_openmm(const Potential& p) {
  const auto* t = dynamic_cast<const OpenMMTarget*>(p.target.get());
  REQUIRE(t != nullptr);
  return *t;
}

RowMatrix test_positions(const Peptide& m) {
  return read_npy_matrix(std::string(BOLTZLAB_TEST_DATA) + "/" + m.key + "_positions.npy", 3 * m.atoms);
}

}  // namespace

TEST_CASE("openmm peptides: shipped potentials reproduce the reference energies at the PDB coordinates") {
  for (const Peptide& m : peptides()) {
    INFO(m.stem);
    Potential p = load_potential(kPotentials / (m.stem + ".json"));
    const OpenMMTarget& t = as_openmm(p);
    CHECK(t.dim() == 3 * m.atoms);
    CHECK(t.kT() == doctest::Approx(0.0083144626 * 300.0).epsilon(1e-15));
    CHECK(t.options().platform == "Reference");
    const double e = t.potential_energy(t.initial_positions().data(), nullptr);
    CHECK(std::abs(e - m.pdb_energy) < 5e-4);  // the reference values carry 3 decimals
    CHECK(t.reduced_energy(t.initial_positions().data(), nullptr) == doctest::Approx(e / t.kT()).epsilon(1e-14));
  }
}

TEST_CASE("openmm peptides: energies and forces of 100 MD configurations agree with OpenMM's Python layer to 1e-6") {
  // tests/data/{ala4,phe2}_obc2_*: written by tools/make_peptide_systems.py (Python
  // OpenMM, on the platform the potential file names). Same criterion as for alanine
  // dipeptide: |ΔE| ≤ 1e-6·|E| and max|ΔF| ≤ 1e-6·max|F| per configuration.
  for (const Peptide& m : peptides()) {
    INFO(m.stem);
    Potential p = load_potential(kPotentials / (m.stem + ".json"));
    const fs::path base = fs::path(BOLTZLAB_TEST_DATA) / m.key;
    const RowMatrix x = test_positions(m);
    const Eigen::VectorXd energies = read_npy_vector(base.string() + "_energies.npy");
    const RowMatrix forces = read_npy_matrix(base.string() + "_forces.npy", 3 * m.atoms);
    REQUIRE(x.rows() >= 100);
    REQUIRE(energies.size() == x.rows());
    REQUIRE(forces.rows() == x.rows());
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

TEST_CASE("openmm peptides: gradient of u matches finite differences (Reference platform)") {
  // Central differences with step h: truncation ~h²|u'''|/6, rounding ~1e-16|u|/h.
  // The tetrapeptide's stiffest coordinates give a truncation error of ~1e-6 at
  // h = 2e-6 nm (the alanine dipeptide step), ~2.5e-7 at h = 1e-6 nm (measured with
  // Python OpenMM over 10 of the test configurations); rounding stays near 1e-9.
  for (const Peptide& m : peptides()) {
    INFO(m.stem);
    Potential p = load_potential(kPotentials / (m.stem + ".json"));
    const RowMatrix x = test_positions(m);
    std::vector<std::vector<double>> points;
    for (Eigen::Index i : {0, 50}) points.emplace_back(x.row(i).data(), x.row(i).data() + x.cols());
    testing::GradientCheckOptions opt;
    opt.step = 1e-6;
    testing::check_gradient(*p.target, points, opt);
  }
}

TEST_CASE("openmm peptides: topology and backbone dihedrals come from the PDB") {
  for (const Peptide& m : peptides()) {
    INFO(m.stem);
    Potential p = load_potential(kPotentials / (m.stem + ".json"));
    const Topology* top = p.target->topology();
    REQUIRE(top != nullptr);
    REQUIRE(top->atoms() == m.atoms);
    CHECK(p.target->particle_layout() == std::make_pair(m.atoms, std::size_t{3}));
    // Caps in the force field's template order, as in alanine_dipeptide.pdb.
    CHECK(top->residue_names.front() == "ACE");
    CHECK(top->residue_names.back() == "NME");
    CHECK(top->atom_names[0] == "H1");
    CHECK(top->atom_names[1] == "CH3");
    CHECK(top->atom_names[4] == "C");
    CHECK(top->atom_names[6] == "N");
    CHECK(top->atom_names[8] == "CA");
    CHECK(top->atom_names[m.atoms - 4] == "C");  // NME methyl carbon
    CHECK(top->elements[0] == "H");
    CHECK(top->elements[m.atoms - 4] == "C");
    // φ/ψ found by name agree with the documented indices (φ_r before ψ_r).
    const std::vector<Dihedral> found = backbone_dihedrals(*top);
    REQUIRE(found.size() == m.phi_psi.size());
    for (std::size_t k = 0; k < found.size(); ++k) {
      INFO(found[k].name);
      CHECK(found[k].name.substr(0, 3) == (k % 2 == 0 ? "phi" : "psi"));
      CHECK(found[k].atoms == m.phi_psi[k]);
    }
    const auto rama = ramachandran_dihedrals(*top);
    REQUIRE(rama.has_value());
    CHECK(rama->first.atoms == m.phi_psi[0]);
    CHECK(rama->second.atoms == m.phi_psi[1]);
  }
  // The phenyl ring: chi1 = (N, CA, CB, CG) = (6, 8, 10, 13), chi2 = (CA, CB, CG, CD1) = (8, 10, 13, 14).
  Potential phe = load_potential(kPotentials / "phenylalanine_dipeptide.json");
  const Topology& top = *phe.target->topology();
  CHECK(top.atom_names[10] == "CB");
  CHECK(top.atom_names[13] == "CG");
  CHECK(top.atom_names[14] == "CD1");
  CHECK(top.atom_names[18] == "CZ");
  CHECK(top.residue_names[13] == "PHE");
}

TEST_CASE("openmm peptides: the test configurations keep L residues and trans peptide bonds") {
  // A wrong side-chain placement (D residue) or a cis bond in the shipped structure
  // would carry over into the 6 ps of MD behind the test data; neither can flip at
  // 300 K in that time. L (S by CIP for ALA and PHE): (N − CA)·((C − CA)×(CB − CA)) > 0.
  for (const Peptide& m : peptides()) {
    INFO(m.stem);
    const RowMatrix x = test_positions(m);
    for (Eigen::Index f = 0; f < x.rows(); ++f) {
      const double* r = x.row(f).data();
      for (const auto& c : m.chirality) {
        double a[3], b[3], d[3];  // N − CA, C − CA, CB − CA
        for (int k = 0; k < 3; ++k) {
          a[k] = r[3 * c[0] + k] - r[3 * c[1] + k];
          b[k] = r[3 * c[2] + k] - r[3 * c[1] + k];
          d[k] = r[3 * c[3] + k] - r[3 * c[1] + k];
        }
        const double volume = a[0] * (b[1] * d[2] - b[2] * d[1]) + a[1] * (b[2] * d[0] - b[0] * d[2]) +
                              a[2] * (b[0] * d[1] - b[1] * d[0]);
        CHECK(volume > 0.0);
      }
      for (const auto& w : m.omega) CHECK(std::abs(dihedral_angle(r, w[0], w[1], w[2], w[3])) > 2.0);  // > 115°
    }
  }
}
