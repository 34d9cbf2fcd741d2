// Tests for lib/boltzlab/molecules/{molecular_graph,zmatrix_builder}.*: Z-matrices built from
// the bond graph of the shipped molecules, checked as physics — exact round trips and energies
// on thermal MD frames, log|det J| against autograd, backbone torsions as coordinates,
// stereocentres — and the refusal of structure files whose atom order is not the System's.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/torch_doctest.hpp"  // torch first: its CHECK macro must not shadow doctest's

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/molecules/dihedrals.hpp"
#include "boltzlab/molecules/internal_coordinates.hpp"
#include "boltzlab/molecules/molecular_graph.hpp"
#include "boltzlab/molecules/zmatrix_builder.hpp"
#include "boltzlab/targets/openmm_target.hpp"
#include "boltzlab/targets/registry.hpp"
#include "support/internal_coordinates_support.hpp"

using namespace boltzlab;
using namespace boltzlab::molecules;
using namespace boltzlab::test;

namespace {

struct Built {
  Potential potential;
  MolecularGraph graph;
  InternalCoordinates ic;
};

Built build(const std::string& potential_file) {
  Potential p = load_potential(std::string(BOLTZLAB_SOURCE_DIR) + "/potentials/" + potential_file);
  const auto& omm = dynamic_cast<const OpenMMTarget&>(*p.target);
  MolecularGraph g = molecular_graph(omm, potential_file);
  ZMatrix z = build_zmatrix(g, omm.initial_positions(), potential_file);
  return {std::move(p), std::move(g), InternalCoordinates(std::move(z))};
}

torch::Tensor frames_tensor(const std::string& npy, std::int64_t dim) {
  const auto m = read_npy_matrix(std::string(BOLTZLAB_TEST_DATA) + "/" + npy, static_cast<std::size_t>(dim));
  return torch::from_blob(const_cast<double*>(m.data()), {m.rows(), dim}, f64()).clone();
}

/// Round trip, energies, chirality and backbone torsions of `frames` (thermal MD at 300 K).
void check_on_frames(const Built& b, const torch::Tensor& x) {
  const auto& ic = b.ic;
  const std::int64_t n = ic.n_atoms();
  CHECK(ic.count_wrong_chirality(x) == 0);  // MD keeps every stereocentre of the reference structure
  const auto [z, ld_fwd] = ic.to_internal(x);
  CHECK(ic.in_domain(z).all().item<bool>());
  const auto [back, ld_inv] = ic.to_cartesian(z);
  // x → z → x is the identity up to the removed rigid motion (≤ 1e-10 nm), z → x → z exactly.
  CHECK(max_abs(back - ic.standard_orientation(x)) < 1e-10);
  CHECK(max_abs(ic.to_internal(back).first - z) < 1e-10);
  CHECK(max_abs(ld_fwd + ld_inv) < 1e-12);
  // The energy is invariant under the rigid motion: equal to rounding.
  const Target& target = *b.potential.target;
  const auto bc = back.contiguous();
  for (std::int64_t f = 0; f < x.size(0); f += 7) {
    const double u0 = target.reduced_energy(x.data_ptr<double>() + f * 3 * n, nullptr);
    const double u1 = target.reduced_energy(bc.data_ptr<double>() + f * 3 * n, nullptr);
    CHECK(std::abs(u1 - u0) < 1e-8 * (1.0 + std::abs(u0)));
  }
  // Every backbone φ/ψ of the topology is a torsion column, equal to the independent dihedral.
  for (const auto& d : backbone_dihedrals(b.graph.topology)) {
    const auto& a = d.atoms;
    const auto column = ic.find_torsion(a[0], a[1], a[2], a[3]);
    REQUIRE_MESSAGE(column >= 0, d.name);
    const auto xc = x.contiguous();
    for (std::int64_t f = 0; f < x.size(0); f += 11) {
      const double ref = dihedral_angle(xc.data_ptr<double>() + f * 3 * n, a[0], a[1], a[2], a[3]);
      const double got = z[f][column].item<double>();
      CHECK(std::abs(std::remainder(got - ref, 2 * kPi)) < 1e-10);
    }
  }
}

/// log J of to_cartesian against the autograd Jacobian of the full map (z, t, Euler angles) → x:
/// |det ∂x/∂(z, t, α, β, γ)| = J(z) sin β (ZYZ angles; see test_internal_coordinates.cpp).
void check_log_det(const InternalCoordinates& ic, const torch::Tensor& x) {
  const std::int64_t n = ic.n_atoms(), m = ic.n_internal();
  const auto z = ic.to_internal(x).first;
  const auto ld = ic.to_cartesian(z).second;
  const double euler[3] = {0.4, 1.2, -0.7};
  auto full_map = [&](const torch::Tensor& p) {
    auto xyz = ic.to_cartesian(p.narrow(0, 0, m).unsqueeze(0)).first.view({n, 3});
    auto r = euler_zyz(p[m + 3], p[m + 4], p[m + 5]);
    return (torch::matmul(xyz, r.t()) + p.narrow(0, m, 3)).reshape({3 * n});
  };
  const auto p = torch::cat({z[0], torch::tensor({0.3, -0.2, 0.5}, f64()), torch::tensor({euler[0], euler[1], euler[2]}, f64())});
  const double expected = ld[0].item<double>() + std::log(std::sin(euler[1]));
  CHECK(std::abs(logabsdet(autograd_jacobian(full_map, p)) - expected) < 1e-10 * (1.0 + std::abs(expected)));
}

/// A copy of the potential with its PDB's ATOM lines `a` and `b` (0-based atoms) swapped.
std::filesystem::path shuffled_potential(const std::string& potential_file, int a, int b, const std::string& tag) {
  namespace fs = std::filesystem;
  const fs::path root(BOLTZLAB_SOURCE_DIR);
  const fs::path dir = fs::temp_directory_path() / ("zmatrix_builder_" + tag);
  fs::create_directories(dir);
  Json j = read_json_file(root / "potentials" / potential_file);
  const fs::path pdb = root / "potentials" / j["parameters"]["pdb"].get<std::string>();
  std::ifstream in(pdb);
  std::vector<std::string> lines;
  std::vector<std::size_t> atoms;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("ATOM", 0) == 0 || line.rfind("HETATM", 0) == 0) atoms.push_back(lines.size());
    lines.push_back(line);
  }
  std::swap(lines[atoms[static_cast<std::size_t>(a)]], lines[atoms[static_cast<std::size_t>(b)]]);
  std::ofstream(dir / "shuffled.pdb") << [&] {
    std::ostringstream s;
    for (const auto& l : lines) s << l << "\n";
    return s.str();
  }();
  j["parameters"]["pdb"] = (dir / "shuffled.pdb").string();
  j["parameters"]["system"] = (root / "potentials" / j["parameters"]["system"].get<std::string>()).string();
  std::ofstream(dir / "potential.json") << j.dump(2);
  return dir / "potential.json";
}

}  // namespace

TEST_CASE("z-matrix builder: alanine dipeptide — anchors N, CA, C; phi/psi proper; one stereocentre (L)") {
  const Built b = build("alanine_dipeptide.json");
  const auto& z = b.ic.zmatrix();
  CHECK(z.anchors == std::vector<std::int64_t>{6, 8, 14});  // N, CA, C of ALA: the middle of the main chain
  // Same spanning tree as the hand-written Z-matrix (a user file): every atom on the same bond partner.
  const auto hand = alanine_ic();
  for (const auto& row : hand.zmatrix().rows) {
    bool found = false;
    for (const auto& r : z.rows) found = found || (r.atom == row.atom && r.bond == row.bond);
    CHECK_MESSAGE(found, "atom " << row.atom);
  }
  CHECK(b.ic.torsion_column_of_atom(4) == b.ic.find_torsion(4, 6, 8, 14));    // φ placed C(ACE)
  CHECK(b.ic.torsion_column_of_atom(16) == b.ic.find_torsion(6, 8, 14, 16));  // ψ placed N(NME)
  REQUIRE(z.chiral_centers.size() == 1);  // CA; the methyl carbons are not stereocentres
  CHECK(z.chiral_centers[0].center == 8);
  // Its sign from the (L) reference structure: the PDB passes, its mirror image fails.
  CHECK(b.ic.count_wrong_chirality(alanine_pdb()) == 0);
  CHECK(b.ic.count_wrong_chirality(-alanine_pdb()) == 1);
  // The hand Z-matrix agrees on the stereocentre: its check passes on the same structures.
  CHECK(hand.count_wrong_chirality(alanine_pdb()) == 0);
}

TEST_CASE("z-matrix builder: alanine dipeptide thermal frames — round trip, energy, phi/psi, log-det") {
  const Built b = build("alanine_dipeptide.json");
  const auto x = frames_tensor("ala2_obc2_positions.npy", 66);
  check_on_frames(b, x);
  check_log_det(b.ic, x.narrow(0, 0, 1));
}

TEST_CASE("z-matrix builder: atom classes tell methyl hydrogens apart from the stereocentre's branches") {
  const Built b = build("alanine_dipeptide.json");
  const auto cls = atom_classes(b.graph);
  CHECK(cls[0] == cls[2]);   // ACE methyl hydrogens are equivalent
  CHECK(cls[11] == cls[12]);  // CB hydrogens
  CHECK(cls[1] != cls[10]);  // ACE CH3 and CB are different carbons
  std::set<std::int64_t> around_ca{cls[6], cls[9], cls[10], cls[14]};
  CHECK(around_ca.size() == 4);
}

TEST_CASE("z-matrix builder: a structure file in another atom order is refused with one line") {
  // O(5) and N(6) swapped: the elements disagree with the System's masses → the atom is named.
  Potential p1 = load_potential(shuffled_potential("alanine_dipeptide.json", 5, 6, "element"));
  const auto& t1 = dynamic_cast<const OpenMMTarget&>(*p1.target);
  check_config_error([&] { molecular_graph(t1, "shuffled"); }, "atom order is not the System's");
  // Two hydrogens of different methyl groups swapped (same element and mass): the bond lengths
  // of the structure file expose it.
  Potential p2 = load_potential(shuffled_potential("alanine_dipeptide.json", 0, 19, "bonds"));
  const auto& t2 = dynamic_cast<const OpenMMTarget&>(*p2.target);
  check_config_error([&] { molecular_graph(t2, "shuffled"); }, "nm apart in the structure file");
}

TEST_CASE("z-matrix builder: small graphs — a chain without hydrogens and a ring") {
  // Butane-like chain 0-1-2-3 plus a branch 4 on 1: anchors are the middle of the longest path.
  Topology t;
  for (int a = 0; a < 5; ++a) {
    t.atom_names.push_back("C" + std::to_string(a));
    t.residue_names.push_back("MOL");
    t.residue_ids.push_back(1);
    t.elements.push_back("C");
  }
  const auto g = graph_from_bonds(t, {{0, 1}, {1, 2}, {2, 3}, {1, 4}}, "chain");
  const std::vector<double> x = {0, 0, 0, 0.15, 0, 0, 0.2, 0.14, 0, 0.35, 0.14, 0.02, 0.2, -0.1, 0.12};
  const auto z = build_zmatrix(g, x, "chain");
  CHECK(z.rows.size() == 2);
  CHECK((z.anchors[1] == 1 || z.anchors[1] == 2));  // a middle atom of the longest path 3-2-1-0
  // A five-ring: the spanning tree leaves one ring bond out of the coordinates.
  const auto ring = graph_from_bonds(t, {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 0}}, "ring");
  const auto zr = build_zmatrix(ring, x, "ring");
  CHECK(zr.rows.size() == 2);
  check_config_error([&] { build_zmatrix(graph_from_bonds(t, {{0, 1}, {2, 3}, {3, 4}}, "parts"), x, "parts"); },
                     "separate molecules");
}

TEST_CASE("z-matrix builder: alanine tetrapeptide — central residue anchors, six backbone torsions, three L centres") {
  const Built b = build("alanine_tetrapeptide.json");
  const auto& z = b.ic.zmatrix();
  CHECK(z.anchors == std::vector<std::int64_t>{16, 18, 24});  // N, CA, C of the second ALA (residue 3)
  CHECK(backbone_dihedrals(b.graph.topology).size() == 6);
  CHECK(z.chiral_centers.size() == 3);  // the three CA
  const auto x = frames_tensor("ala4_obc2_positions.npy", 126);
  check_on_frames(b, x);
  check_log_det(b.ic, x.narrow(0, 0, 1));
  CHECK(b.ic.count_wrong_chirality(-x.narrow(0, 0, 1)) == 1);  // the mirror image is D at every centre
}

TEST_CASE("z-matrix builder: phenylalanine dipeptide — ring closed by the energy, chi1/chi2 proper torsions") {
  const Built b = build("phenylalanine_dipeptide.json");
  const auto& z = b.ic.zmatrix();
  CHECK(z.rows.size() == 29);  // 32 atoms: one ring bond is not a coordinate
  CHECK(z.chiral_centers.size() == 1);  // CA; CB (two H) and the ring carbons are not stereocentres
  CHECK(b.ic.find_torsion(6, 8, 10, 13) >= 0);   // χ1 N-CA-CB-CG
  CHECK(b.ic.find_torsion(8, 10, 13, 14) >= 0);  // χ2 CA-CB-CG-CD1
  const auto x = frames_tensor("phe2_obc2_positions.npy", 96);
  check_on_frames(b, x);
  check_log_det(b.ic, x.narrow(0, 0, 1));
}
