// Tests for lib/boltzlab/molecules/internal_coordinates.*: round trips, the exact
// log|det J| against autograd Jacobians (including the six removed rigid-motion
// degrees of freedom), the alanine-dipeptide Z-matrix, chirality, Z-matrix
// validation, thermal OBC2 configurations.
#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <string>

#include "support/torch_doctest.hpp"  // torch first: its CHECK macro must not shadow doctest's

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/molecules/internal_coordinates.hpp"
#include "boltzlab/io/npy.hpp"
#include "support/internal_coordinates_support.hpp"
#include "boltzlab/molecules/dihedrals.hpp"
#include "boltzlab/targets/registry.hpp"

using namespace boltzlab;
using namespace boltzlab::molecules;
using namespace boltzlab::test;


TEST_CASE("internal coordinates: alanine dipeptide z-matrix covers every atom once and has phi, psi") {
  const auto ic = alanine_ic();
  CHECK(ic.n_atoms() == 22);
  CHECK(ic.n_internal() == 60);
  CHECK(ic.torsion_indices().size() == 19);
  std::multiset<std::int64_t> atoms(ic.zmatrix().anchors.begin(), ic.zmatrix().anchors.end());
  for (const auto& r : ic.zmatrix().rows) atoms.insert(r.atom);
  CHECK(atoms.size() == 22);
  for (std::int64_t a = 0; a < 22; ++a) CHECK(atoms.count(a) == 1);
  const auto phi = ic.find_torsion(4, 6, 8, 14);
  const auto psi = ic.find_torsion(6, 8, 14, 16);
  REQUIRE(phi >= 0);
  REQUIRE(psi >= 0);
  CHECK(phi == ic.torsion_column_of_atom(4));
  CHECK(psi == ic.torsion_column_of_atom(16));
  const auto t = ic.torsion_indices();
  CHECK(std::find(t.begin(), t.end(), phi) != t.end());
  CHECK(ic.torsion_mask().sum().item<std::int64_t>() == 19);
  CHECK_THROWS_AS(ic.torsion_column_of_atom(8), DomainError);  // an anchor has no torsion

  // φ, ψ of the PDB structure against mdtraj.compute_dihedrals (float32) on the same file:
  // φ = 3.1415336, ψ = −3.1411192 (the extended structure).
  const auto [z, logdet] = ic.to_internal(alanine_pdb());
  const auto pp = alanine_phi_psi(ic, z);
  CHECK(std::abs(circular_difference(pp[0][0], torch::tensor(3.1415336, f64())).item<double>()) < 2e-5);
  CHECK(std::abs(circular_difference(pp[0][1], torch::tensor(-3.1411192, f64())).item<double>()) < 2e-5);
  // The free dihedral() agrees with the internal coordinate.
  CHECK(std::abs(circular_difference(dihedral(alanine_pdb(), 4, 6, 8, 14)[0], pp[0][0]).item<double>()) < 1e-12);
}

TEST_CASE("internal coordinates: round trips to 1e-10 and log-dets cancel") {
  const auto ic = alanine_ic();
  const auto x = perturbed_alanine(32, 0.05, 11);
  const auto [z, ld_fwd] = ic.to_internal(x);
  const auto [x2, ld_inv] = ic.to_cartesian(z);
  // Cartesian → internal → Cartesian gives x up to the removed rigid motion.
  CHECK(max_abs(x2 - ic.standard_orientation(x)) < 1e-10);
  // standard_orientation is rigid: all pairwise distances are preserved.
  auto dist = [](const torch::Tensor& c) {
    auto xyz = c.view({c.size(0), 22, 3});
    return torch::cdist(xyz, xyz);
  };
  CHECK(max_abs(dist(x2) - dist(x)) < 1e-10);
  // Internal → Cartesian → internal is the identity (torsions compared on the circle).
  const auto [z2, ld_fwd2] = ic.to_internal(x2);
  CHECK(max_abs(z2 - z) < 1e-10);
  CHECK(max_abs(ld_fwd + ld_inv) < 1e-12);
  CHECK(max_abs(ld_fwd2 - ld_fwd) < 1e-10);
  // Torsions are in [−π, π), bonds positive, angles in (0, π).
  const auto mask = ic.torsion_mask();
  CHECK(z.index({torch::indexing::Slice(), mask}).min().item<double>() >= -kPi);
  CHECK(z.index({torch::indexing::Slice(), mask}).max().item<double>() < kPi);
  CHECK(ic.in_domain(z).all().item<bool>());
  // The placement is 2π-periodic in every torsion.
  const auto shifted = z + torch::where(mask, torch::full_like(z, 2.0 * kPi), torch::zeros_like(z));
  CHECK(max_abs(ic.to_cartesian(shifted).first - x2) < 1e-10);
  CHECK(max_abs(ic.wrap_torsions(shifted) - z) < 1e-10);
}

TEST_CASE("internal coordinates: log|det J| of the full map (internal, translation, rotation) vs autograd") {
  // x = R(α, β, γ) X(z) + t with ZYZ Euler angles: d^{3n}x = J(z) dz dt dR and the Haar
  // measure is dR = sin β dα dβ dγ, so |det ∂x/∂(z, t, α, β, γ)| = J(z) sin β.
  // This checks the anchor part of log J, not only the Z-matrix rows.
  const auto ic = alanine_ic();
  const auto x = perturbed_alanine(3, 0.05, 5);
  const auto [z, ld_fwd] = ic.to_internal(x);
  const auto ld_inv = ic.to_cartesian(z).second;
  const double euler[3][3] = {{0.3, 1.1, -2.0}, {2.5, 0.4, 0.9}, {-1.2, 2.6, 0.1}};
  for (std::int64_t b = 0; b < 3; ++b) {
    auto full_map = [&](const torch::Tensor& p) {
      auto zz = p.narrow(0, 0, 60).unsqueeze(0);
      auto t = p.narrow(0, 60, 3);
      auto r = euler_zyz(p[63], p[64], p[65]);
      auto xyz = ic.to_cartesian(zz).first.view({22, 3});
      return (torch::matmul(xyz, r.t()) + t).reshape({66});
    };
    auto p = torch::cat({z[b], torch::tensor({0.7, -1.3, 2.2}, f64()),
                         torch::tensor({euler[b][0], euler[b][1], euler[b][2]}, f64())});
    const double expected = ld_inv[b].item<double>() + std::log(std::sin(euler[b][1]));
    CHECK(std::abs(logabsdet(autograd_jacobian(full_map, p)) - expected) < 1e-8);
  }
}

TEST_CASE("internal coordinates: forward log-det vs autograd in the anchor frame") {
  // In the anchor frame the free Cartesian coordinates are a1.x, a2.x, a2.y and the other
  // atoms' xyz (3n − 6 in all). Relative to them, (r_a1, r_a2, θ_a2) have Jacobian r_a2, so
  // log|det ∂z/∂y| = logdet_forward + 2 log r_a1 + log r_a2 + log sin θ_a2.
  const auto ic = alanine_ic();
  const auto& anchors = ic.zmatrix().anchors;
  const auto xc = ic.standard_orientation(perturbed_alanine(3, 0.05, 7));
  const auto [z, ld_fwd] = ic.to_internal(xc);
  std::vector<std::int64_t> others;
  for (std::int64_t a = 0; a < 22; ++a) {
    if (a != anchors[0] && a != anchors[1] && a != anchors[2]) others.push_back(a);
  }
  for (std::int64_t b = 0; b < 3; ++b) {
    const auto xyz = xc[b].view({22, 3});
    std::vector<torch::Tensor> parts{xyz[anchors[1]].narrow(0, 0, 1), xyz[anchors[2]].narrow(0, 0, 2)};
    for (auto a : others) parts.push_back(xyz[a]);
    auto reduced_to_internal = [&](const torch::Tensor& y) {
      std::vector<torch::Tensor> atoms(22);
      auto zero = torch::zeros({1}, f64());
      atoms[anchors[0]] = torch::zeros({3}, f64());
      atoms[anchors[1]] = torch::cat({y.narrow(0, 0, 1), zero, zero});
      atoms[anchors[2]] = torch::cat({y.narrow(0, 1, 2), zero});
      for (std::size_t q = 0; q < others.size(); ++q) atoms[others[q]] = y.narrow(0, 3 + 3 * q, 3);
      return ic.to_internal(torch::stack(atoms).reshape({1, 66})).first[0];
    };
    const auto jac = autograd_jacobian(reduced_to_internal, torch::cat(parts));
    const double expected = ld_fwd[b].item<double>() + 2.0 * std::log(z[b][0].item<double>()) +
                            std::log(z[b][1].item<double>()) + std::log(std::sin(z[b][21].item<double>()));
    CHECK(std::abs(logabsdet(jac) - expected) < 1e-8);
  }
}

TEST_CASE("internal coordinates: chirality of the PDB structure is L, of its mirror image D") {
  // L-amino acids obey the CORN rule: viewed from HA towards CA, CO → R(CB) → N run
  // clockwise. With HA on +z (towards the viewer), clockwise means decreasing polar angle,
  // e.g. C = (0, 1, −h), CB = (cos(−30°), sin(−30°), −h), N = (cos 210°, sin 210°, −h)
  // relative to CA (h > 0: the three point away from HA); then
  // (N − CA)·((C − CA) × (CB − CA)) = 3√3/2 · h > 0. So L ⇔ positive triple product.
  const auto ic = alanine_ic();
  const auto x = alanine_pdb();
  CHECK(chirality_triple_product(x, ic.zmatrix().chiral_centers.at(0)).item<double>() > 0);
  CHECK(ic.chirality_ok(x).all().item<bool>());
  CHECK(ic.count_wrong_chirality(x) == 0);
  auto mirror = x.clone();
  mirror.view({22, 3}).select(1, 0).mul_(-1.0);  // x → −x: the enantiomer
  CHECK(ic.count_wrong_chirality(mirror) == 1);
  // Rigid motions keep it; the perturbed batch stays L.
  CHECK(ic.count_wrong_chirality(perturbed_alanine(16, 0.05, 3)) == 0);
  // In internal coordinates the handedness is the CB torsion about CA–N: exchanging
  // the torsions of CB and HA makes the D enantiomer (a failure mode of a flow on torsions).
  auto z = ic.to_internal(x).first;
  const auto cb = ic.torsion_column_of_atom(10), ha = ic.torsion_column_of_atom(9);
  auto swapped = z.clone();
  swapped.index_put_({0, cb}, z[0][ha]);
  swapped.index_put_({0, ha}, z[0][cb]);
  auto mixed = torch::cat({ic.to_cartesian(z).first, ic.to_cartesian(swapped).first});
  const auto ok = ic.chirality_ok(mixed);
  CHECK(ok[0].item<bool>());
  CHECK_FALSE(ok[1].item<bool>());
  CHECK(ic.count_wrong_chirality(mixed) == 1);
}

TEST_CASE("internal coordinates: z-matrix JSON round trip and invalid z-matrices") {
  const auto ala = alanine_ic();
  const auto again = InternalCoordinates::from_json(ala.to_json(), "ala.json");
  const auto x = perturbed_alanine(4, 0.05, 2);
  CHECK(max_abs(again.to_internal(x).first - ala.to_internal(x).first) == 0.0);
  CHECK(again.count_wrong_chirality(x) == 0);
  auto json = [](const std::string& s) { return Json::parse(s); };
  const std::string ok = R"({"n_atoms": 5, "anchors": [0, 1, 2], "z_matrix": [[3, 2, 1, 0], [4, 3, 2, 1]]})";
  CHECK(InternalCoordinates::from_json(json(ok), "ok.json").n_internal() == 9);
  check_config_error([&] {
    InternalCoordinates::from_json(json(R"({"n_atoms": 5, "anchors": [0, 1, 2],
        "z_matrix": [[3, 2, 1, 4], [4, 3, 2, 1]]})"), "later.json");
  }, "later.json: z_matrix[0] (atom 3): torsion partner 4 is not placed before it");
  check_config_error([&] {
    InternalCoordinates::from_json(json(R"({"n_atoms": 5, "anchors": [0, 1, 2],
        "z_matrix": [[3, 2, 1, 0], [3, 2, 1, 0]]})"), "dup.json");
  }, "atom 3 is placed twice");
  check_config_error([&] {
    InternalCoordinates::from_json(json(R"({"n_atoms": 5, "anchors": [0, 1, 1],
        "z_matrix": [[3, 2, 1, 0], [4, 3, 2, 1]]})"), "anchors.json");
  }, "anchor atom 1 is listed twice");
  check_config_error([&] {
    InternalCoordinates::from_json(json(R"({"n_atoms": 5, "anchors": [0, 1, 2],
        "z_matrix": [[3, 2, 1, 0]]})"), "missing.json");
  }, "z_matrix has 1 rows");
  check_config_error([&] {
    InternalCoordinates::from_json(json(R"({"n_atoms": 5, "anchors": [0, 1, 2],
        "z_matrix": [[3, 2, 2, 0], [4, 3, 2, 1]]})"), "same.json");
  }, "must be distinct");
  check_config_error([&] {
    InternalCoordinates::from_json(json(R"({"n_atoms": 5, "anchors": [0, 1, 2],
        "z_matrix": [[3, 2, 1], [4, 3, 2, 1]]})"), "short.json");
  }, "short.json.z_matrix[0]: must be an array of 4 integers");
  check_config_error([&] {
    InternalCoordinates::from_json(json(R"({"n_atoms": 5, "anchors": [0, 1, 2], "zmatrix": [],
        "z_matrix": [[3, 2, 1, 0], [4, 3, 2, 1]]})"), "typo.json");
  }, "zmatrix");
  check_config_error([&] {
    InternalCoordinates::from_json(json(R"({"n_atoms": 5, "anchors": [0, 1, 2],
        "z_matrix": [[3, 2, 1, 0], [4, 3, 2, 1]],
        "chiral_centers": [{"center": 1, "neighbors": [0, 2, 3], "sign": 2}]})"), "chiral.json");
  }, "sign is 2");
}

TEST_CASE("internal coordinates: shapes and the bijective domain") {
  const auto ic = alanine_ic();
  CHECK_THROWS_AS(ic.to_internal(torch::zeros({2, 65}, f64())), DomainError);
  CHECK_THROWS_AS(ic.to_cartesian(torch::zeros({2, 66}, f64())), DomainError);
  CHECK_THROWS_AS(ic.to_internal(torch::zeros({2, 66}, torch::TensorOptions().dtype(torch::kFloat))), DomainError);
  auto z = ic.to_internal(perturbed_alanine(3, 0.05, 1)).first;
  z.index_put_({1, 0}, -0.1);                   // negative bond
  z.index_put_({2, ic.n_bonds() + 4}, 3.2);     // angle > π
  const auto ok = ic.in_domain(z);
  CHECK(ok[0].item<bool>());
  CHECK_FALSE(ok[1].item<bool>());
  CHECK_FALSE(ok[2].item<bool>());
}

TEST_CASE("internal coordinates: thermal OBC2 configurations — chirality, round trip, energy, phi/psi") {
  // 100 frames of 300 K Langevin MD (tests/data/ala2_obc2_positions.npy, nm) and the
  // project's OBC2 target: the reconstruction from internal coordinates is a rigid motion
  // of the frame, so the (rigid-invariant) energy must agree to double precision; the
  // Z-matrix torsions must be the topology's backbone φ/ψ and agree with the independent
  // molecules/dihedrals implementation.
  const auto frames = read_npy_matrix(std::string(BOLTZLAB_TEST_DATA) + "/ala2_obc2_positions.npy", 66);
  const auto x = torch::from_blob(const_cast<double*>(frames.data()), {frames.rows(), 66}, f64()).clone();
  const auto ic = alanine_ic();
  CHECK(ic.count_wrong_chirality(x) == 0);
  const auto [z, ld] = ic.to_internal(x);
  CHECK(ic.in_domain(z).all().item<bool>());
  const auto back = ic.to_cartesian(z).first.contiguous();
  CHECK(max_abs(back - ic.standard_orientation(x)) < 1e-12);

  const auto potential = load_potential(std::string(BOLTZLAB_SOURCE_DIR) + "/potentials/alanine_dipeptide.json");
  const Target& target = *potential.target;
  REQUIRE(target.topology() != nullptr);
  const auto backbone = ramachandran_dihedrals(*target.topology());
  REQUIRE(backbone.has_value());
  const auto& [phi, psi] = *backbone;
  CHECK(ic.find_torsion(phi.atoms[0], phi.atoms[1], phi.atoms[2], phi.atoms[3]) >= 0);
  CHECK(ic.find_torsion(psi.atoms[0], psi.atoms[1], psi.atoms[2], psi.atoms[3]) >= 0);
  const auto pp = alanine_phi_psi(ic, z);
  double worst_energy = 0.0, worst_angle = 0.0;
  for (std::int64_t b = 0; b < x.size(0); ++b) {
    const double* xb = frames.data() + b * 66;
    const double u0 = target.reduced_energy(xb, nullptr);
    const double u1 = target.reduced_energy(back.data_ptr<double>() + b * 66, nullptr);
    worst_energy = std::max(worst_energy, std::abs(u1 - u0) / (1.0 + std::abs(u0)));
    const double ref[2] = {dihedral_angle(xb, phi.atoms[0], phi.atoms[1], phi.atoms[2], phi.atoms[3]),
                           dihedral_angle(xb, psi.atoms[0], psi.atoms[1], psi.atoms[2], psi.atoms[3])};
    for (int a = 0; a < 2; ++a) {
      const double d = std::remainder(pp[b][a].item<double>() - ref[a], 2.0 * kPi);
      worst_angle = std::max(worst_angle, std::abs(d));
    }
  }
  INFO("max relative energy change " << worst_energy << ", max phi/psi difference " << worst_angle);
  CHECK(worst_energy < 1e-9);
  CHECK(worst_angle < 1e-12);
}
