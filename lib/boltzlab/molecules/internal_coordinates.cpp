#include "boltzlab/molecules/internal_coordinates.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "boltzlab/core/constants.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/rng.hpp"

namespace boltzlab::molecules {
namespace {

torch::TensorOptions i64() { return torch::TensorOptions().dtype(torch::kLong); }

torch::Tensor index_tensor(const std::vector<std::int64_t>& v) {
  return torch::tensor(v, i64());
}


/// Dihedral of batched points (B × 3 each), IUPAC convention:
/// τ = atan2(|b2| b1·(b2×b3), (b1×b2)·(b2×b3)), b1 = x1−x0, b2 = x2−x1, b3 = x3−x2.
torch::Tensor dihedral_points(const torch::Tensor& x0, const torch::Tensor& x1, const torch::Tensor& x2,
                              const torch::Tensor& x3) {
  const auto b1 = x1 - x0;
  const auto b2 = x2 - x1;
  const auto b3 = x3 - x2;
  const auto n1 = torch::cross(b1, b2, -1);
  const auto n2 = torch::cross(b2, b3, -1);
  const auto y = b2.norm(2, -1) * (b1 * n2).sum(-1);
  const auto x = (n1 * n2).sum(-1);
  return torch::atan2(y, x);
}

/// Angle ∠(x0, x1, x2) at x1 ∈ [0, π], as atan2(|u×v|, u·v) (well conditioned near 0 and π).
torch::Tensor angle_points(const torch::Tensor& x0, const torch::Tensor& x1, const torch::Tensor& x2) {
  const auto u = x0 - x1;
  const auto v = x2 - x1;
  return torch::atan2(torch::cross(u, v, -1).norm(2, -1), (u * v).sum(-1));
}

/// Atom `a` of configurations viewed as B × n × 3: B × 3.
torch::Tensor atom(const torch::Tensor& xyz, std::int64_t a) { return xyz.select(1, a); }

}  // namespace

void check_batch(const torch::Tensor& t, std::int64_t cols, const char* what) {
  if (t.dim() != 2 || t.size(1) != cols) {
    std::ostringstream msg;
    msg << "internal coordinates: " << what << " must have shape B x " << cols << ", got [";
    for (std::int64_t d = 0; d < t.dim(); ++d) msg << (d ? ", " : "") << t.size(d);
    msg << "]";
    throw DomainError(msg.str());
  }
  if (t.scalar_type() != torch::kDouble) {
    throw DomainError(std::string("internal coordinates: ") + what + " must be float64");
  }
}

// ---------------------------------------------------------------- ZMatrix

void ZMatrix::validate(const std::string& context) const {
  auto fail = [&](const std::string& msg) { throw ConfigError(context + ": " + msg); };
  if (n_atoms < 3) fail("n_atoms is " + std::to_string(n_atoms) + ", but must be >= 3");
  if (anchors.size() != 3) fail("anchors must list exactly 3 atoms, got " + std::to_string(anchors.size()));
  if (!atom_names.empty() && static_cast<std::int64_t>(atom_names.size()) != n_atoms) {
    fail("atom_names has " + std::to_string(atom_names.size()) + " names for " + std::to_string(n_atoms) +
         " atoms");
  }
  if (static_cast<std::int64_t>(rows.size()) != n_atoms - 3) {
    fail("z_matrix has " + std::to_string(rows.size()) + " rows, but " + std::to_string(n_atoms) +
         " atoms with 3 anchors need " + std::to_string(n_atoms - 3));
  }
  std::vector<int> placed(static_cast<std::size_t>(n_atoms), 0);
  auto in_range = [&](std::int64_t a) { return a >= 0 && a < n_atoms; };
  for (std::size_t q = 0; q < anchors.size(); ++q) {
    const auto a = anchors[q];
    if (!in_range(a)) fail("anchors[" + std::to_string(q) + "] is " + std::to_string(a) + ", out of [0, n_atoms)");
    if (placed[a]) fail("anchor atom " + std::to_string(a) + " is listed twice");
    placed[a] = 1;
  }
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto& row = rows[r];
    const std::string where = "z_matrix[" + std::to_string(r) + "] (atom " + std::to_string(row.atom) + ")";
    if (!in_range(row.atom)) fail(where + ": atom out of [0, n_atoms)");
    if (placed[row.atom]) fail(where + ": atom " + std::to_string(row.atom) + " is placed twice");
    const std::int64_t refs[3] = {row.bond, row.angle, row.torsion};
    const char* names[3] = {"bond", "angle", "torsion"};
    for (int c = 0; c < 3; ++c) {
      if (!in_range(refs[c])) fail(where + ": " + names[c] + " partner " + std::to_string(refs[c]) + " out of range");
      if (refs[c] == row.atom) fail(where + ": " + names[c] + " partner is the atom itself");
      if (!placed[refs[c]]) {
        fail(where + ": " + names[c] + " partner " + std::to_string(refs[c]) + " is not placed before it");
      }
    }
    if (row.bond == row.angle || row.bond == row.torsion || row.angle == row.torsion) {
      fail(where + ": bond, angle and torsion partners must be distinct");
    }
    placed[row.atom] = 1;
  }
  for (std::size_t c = 0; c < chiral_centers.size(); ++c) {
    const auto& cc = chiral_centers[c];
    const std::string where = "chiral_centers[" + std::to_string(c) + "]";
    for (auto a : {cc.center, cc.a, cc.b, cc.d}) {
      if (!in_range(a)) fail(where + ": atom " + std::to_string(a) + " out of range");
    }
    if (cc.center == cc.a || cc.center == cc.b || cc.center == cc.d || cc.a == cc.b || cc.a == cc.d ||
        cc.b == cc.d) {
      fail(where + ": the centre and its three neighbours must be distinct atoms");
    }
    if (cc.expected_sign != 1 && cc.expected_sign != -1) {
      fail(where + ": sign is " + std::to_string(cc.expected_sign) + ", but must be +1 or -1");
    }
  }
}

// ---------------------------------------------------------------- InternalCoordinates

InternalCoordinates::InternalCoordinates(ZMatrix zmatrix, const std::string& context)
    : zmatrix_(std::move(zmatrix)) {
  zmatrix_.validate(context);
}

InternalCoordinates InternalCoordinates::alanine_dipeptide() {
  // Atom order of alanine_dipeptide.pdb (0-based):
  //  0 H1  1 CH3  2 H2  3 H3  4 C  5 O  (ACE) | 6 N  7 H  8 CA  9 HA  10 CB  11 HB1 12 HB2 13 HB3
  //  14 C  15 O (ALA) | 16 N  17 H  18 C  19 H1  20 H2  21 H3 (NME).
  ZMatrix z;
  z.n_atoms = 22;
  z.atom_names = {"H1", "CH3", "H2", "H3", "C", "O", "N", "H", "CA", "HA", "CB",
                  "HB1", "HB2", "HB3", "C", "O", "N", "H", "C", "H1", "H2", "H3"};
  z.anchors = {6, 8, 14};  // N, CA, C of the central residue: the frame of the stereocentre
  z.rows = {
      {4, 6, 8, 14},    // C(ACE): torsion φ = (4, 6, 8, 14)
      {16, 14, 8, 6},   // N(NME): torsion ψ = (6, 8, 14, 16) reversed
      {10, 8, 6, 14},   // CB: improper about CA–N, fixes the handedness (≈ −120° for L)
      {9, 8, 6, 14},    // HA: the other side (≈ +120°)
      {7, 6, 8, 4},     // H(N): improper, ≈ 180° (planar amide)
      {5, 4, 6, 8},     // O(ACE): O–C–N–CA
      {1, 4, 6, 5},     // CH3(ACE): improper about the carbonyl, ≈ 180°
      {0, 1, 4, 6},     // ACE methyl H's: one proper torsion, the others relative to it
      {2, 1, 4, 0},
      {3, 1, 4, 0},
      {11, 10, 8, 6},   // CB methyl H's
      {12, 10, 8, 11},
      {13, 10, 8, 11},
      {15, 14, 16, 8},  // O(ALA): improper about the carbonyl
      {18, 16, 14, 8},  // C(NME): ω' = C–N–C–CA, ≈ 180°
      {17, 16, 14, 15}, // H(NME): H–N–C–O, ≈ 180°
      {19, 18, 16, 14}, // NME methyl H's
      {20, 18, 16, 19},
      {21, 18, 16, 19},
  };
  // L-alanine: the CORN rule (viewed from HA, CO → R → N clockwise) is equivalent to
  // (N − CA)·((C − CA) × (CB − CA)) > 0 (derivation in test_internal_coordinates.cpp).
  z.chiral_centers = {{"ALA CA", 8, 6, 14, 10, 1}};
  return InternalCoordinates(std::move(z), "alanine dipeptide z-matrix");
}

InternalCoordinates InternalCoordinates::from_json(const Json& object, const std::string& context) {
  if (!object.is_object()) throw ConfigError(context + ": z-matrix must be a JSON object");
  JsonReader reader(object, context);
  ZMatrix z;
  z.n_atoms = reader.get_int("n_atoms");
  auto int_list = [&](const Json& j, const std::string& where, std::size_t expect) {
    if (!j.is_array() || (expect && j.size() != expect)) {
      throw ConfigError(where + ": must be an array" + (expect ? " of " + std::to_string(expect) + " integers" : ""));
    }
    std::vector<std::int64_t> out;
    for (const auto& e : j) {
      if (!e.is_number_integer()) throw ConfigError(where + ": entries must be integers, got " + e.dump());
      out.push_back(e.get<std::int64_t>());
    }
    return out;
  };
  z.anchors = int_list(reader.get_json("anchors"), reader.context_of("anchors"), 3);
  const Json& rows = reader.get_json("z_matrix");
  if (!rows.is_array()) throw ConfigError(reader.context_of("z_matrix") + ": must be an array of [i, j, k, l] rows");
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto v = int_list(rows[r], reader.context_of("z_matrix") + "[" + std::to_string(r) + "]", 4);
    z.rows.push_back({v[0], v[1], v[2], v[3]});
  }
  if (reader.has("chiral_centers")) {
    const Json& centers = reader.get_json("chiral_centers");
    if (!centers.is_array()) throw ConfigError(reader.context_of("chiral_centers") + ": must be an array");
    for (std::size_t c = 0; c < centers.size(); ++c) {
      const std::string where = reader.context_of("chiral_centers") + "[" + std::to_string(c) + "]";
      if (!centers[c].is_object()) throw ConfigError(where + ": must be an object");
      JsonReader cr(centers[c], where);
      ChiralCenter cc;
      cc.name = cr.get_string("name", "center " + std::to_string(c));
      cc.center = cr.get_int("center");
      const auto nb = int_list(cr.get_json("neighbors"), cr.context_of("neighbors"), 3);
      cc.a = nb[0];
      cc.b = nb[1];
      cc.d = nb[2];
      cc.expected_sign = static_cast<int>(cr.get_int("sign"));
      cr.finish();
      z.chiral_centers.push_back(cc);
    }
  } else {
    reader.ignore("chiral_centers");
  }
  if (reader.has("atom_names")) {
    const Json& names = reader.get_json("atom_names");
    if (!names.is_array()) throw ConfigError(reader.context_of("atom_names") + ": must be an array of strings");
    for (const auto& n : names) {
      if (!n.is_string()) throw ConfigError(reader.context_of("atom_names") + ": entries must be strings");
      z.atom_names.push_back(n.get<std::string>());
    }
  } else {
    reader.ignore("atom_names");
  }
  reader.finish();
  return InternalCoordinates(std::move(z), context);
}

InternalCoordinates InternalCoordinates::from_json_file(const std::filesystem::path& path) {
  return from_json(read_json_file(path), path.string());
}

Json InternalCoordinates::to_json() const {
  Json j;
  j["n_atoms"] = zmatrix_.n_atoms;
  j["anchors"] = zmatrix_.anchors;
  Json rows = Json::array();
  for (const auto& r : zmatrix_.rows) rows.push_back({r.atom, r.bond, r.angle, r.torsion});
  j["z_matrix"] = rows;
  Json centers = Json::array();
  for (const auto& c : zmatrix_.chiral_centers) {
    centers.push_back({{"name", c.name}, {"center", c.center}, {"neighbors", Json::array({c.a, c.b, c.d})},
                       {"sign", c.expected_sign}});
  }
  j["chiral_centers"] = centers;
  if (!zmatrix_.atom_names.empty()) j["atom_names"] = zmatrix_.atom_names;
  return j;
}

std::vector<std::int64_t> InternalCoordinates::bond_indices() const {
  std::vector<std::int64_t> v;
  for (std::int64_t c = 0; c < n_bonds(); ++c) v.push_back(c);
  return v;
}

std::vector<std::int64_t> InternalCoordinates::angle_indices() const {
  std::vector<std::int64_t> v;
  for (std::int64_t c = 0; c < n_angles(); ++c) v.push_back(n_bonds() + c);
  return v;
}

std::vector<std::int64_t> InternalCoordinates::torsion_indices() const {
  std::vector<std::int64_t> v;
  for (std::int64_t c = 0; c < n_torsions(); ++c) v.push_back(n_bonds() + n_angles() + c);
  return v;
}

torch::Tensor InternalCoordinates::torsion_mask() const {
  auto mask = torch::zeros({n_internal()}, torch::TensorOptions().dtype(torch::kBool));
  mask.narrow(0, n_bonds() + n_angles(), n_torsions()).fill_(true);
  return mask;
}

std::int64_t InternalCoordinates::torsion_column_of_atom(std::int64_t atom_index) const {
  for (std::size_t r = 0; r < zmatrix_.rows.size(); ++r) {
    if (zmatrix_.rows[r].atom == atom_index) return n_bonds() + n_angles() + static_cast<std::int64_t>(r);
  }
  throw DomainError("internal coordinates: atom " + std::to_string(atom_index) +
                    " is an anchor or out of range, so it has no torsion");
}

std::int64_t InternalCoordinates::find_torsion(std::int64_t p0, std::int64_t p1, std::int64_t p2,
                                               std::int64_t p3) const {
  for (std::size_t r = 0; r < zmatrix_.rows.size(); ++r) {
    const auto& q = zmatrix_.rows[r];
    const bool same = q.atom == p0 && q.bond == p1 && q.angle == p2 && q.torsion == p3;
    const bool reversed = q.atom == p3 && q.bond == p2 && q.angle == p1 && q.torsion == p0;
    if (same || reversed) return n_bonds() + n_angles() + static_cast<std::int64_t>(r);
  }
  return -1;
}

std::pair<torch::Tensor, torch::Tensor> InternalCoordinates::to_internal(const torch::Tensor& cartesian) const {
  check_batch(cartesian, n_cartesian(), "cartesian");
  const auto& z = zmatrix_;
  const auto xyz = cartesian.reshape({cartesian.size(0), z.n_atoms, 3});
  // Index lists in placement order: bonds (a1, a2, rows), angles (a2, rows), torsions (rows).
  std::vector<std::int64_t> bi{z.anchors[1], z.anchors[2]}, bj{z.anchors[0], z.anchors[1]};
  std::vector<std::int64_t> ai{z.anchors[2]}, aj{z.anchors[1]}, ak{z.anchors[0]};
  std::vector<std::int64_t> ti, tj, tk, tl;
  for (const auto& r : z.rows) {
    bi.push_back(r.atom);
    bj.push_back(r.bond);
    ai.push_back(r.atom);
    aj.push_back(r.bond);
    ak.push_back(r.angle);
    ti.push_back(r.atom);
    tj.push_back(r.bond);
    tk.push_back(r.angle);
    tl.push_back(r.torsion);
  }
  auto pick = [&](const std::vector<std::int64_t>& idx) { return xyz.index_select(1, index_tensor(idx)); };
  const auto bonds = (pick(bi) - pick(bj)).norm(2, -1);
  const auto angles = angle_points(pick(ai), pick(aj), pick(ak));
  const auto torsions = wrap_angle(dihedral_points(pick(ti), pick(tj), pick(tk), pick(tl)));
  const auto internal = torch::cat({bonds, angles, torsions}, 1);
  // log J = Σ 2 log r + Σ log sin θ over all bonds and angles (anchor part included).
  const auto log_j = 2.0 * torch::log(bonds).sum(1) + torch::log(torch::sin(angles)).sum(1);
  return {internal, -log_j};
}

std::pair<torch::Tensor, torch::Tensor> InternalCoordinates::to_cartesian(const torch::Tensor& internal) const {
  check_batch(internal, n_internal(), "internal");
  const auto& z = zmatrix_;
  const std::int64_t batch = internal.size(0);
  const auto bonds = internal.narrow(1, 0, n_bonds());
  const auto angles = internal.narrow(1, n_bonds(), n_angles());
  const auto torsions = internal.narrow(1, n_bonds() + n_angles(), n_torsions());
  std::vector<torch::Tensor> pos(static_cast<std::size_t>(z.n_atoms));
  const auto zero = torch::zeros({batch}, internal.options());
  // Anchor frame: a0 at the origin, a1 = (r1, 0, 0), a2 = a1 + r2 (−cos θ2, sin θ2, 0).
  pos[z.anchors[0]] = torch::zeros({batch, 3}, internal.options());
  const auto r1 = bonds.select(1, 0);
  pos[z.anchors[1]] = torch::stack({r1, zero, zero}, 1);
  const auto r2 = bonds.select(1, 1);
  const auto th2 = angles.select(1, 0);
  pos[z.anchors[2]] = torch::stack({r1 - r2 * torch::cos(th2), r2 * torch::sin(th2), zero}, 1);
  // NeRF (Parsons et al. 2005): with unit e = (x_j − x_k)/|x_j − x_k|,
  // n = (x_k − x_l) × e / |…| and m = n × e, the atom sits at
  // x_i = x_j + r (−cos θ e + sin θ cos τ m + sin θ sin τ n), which gives
  // ∠(x_i, x_j, x_k) = θ and dihedral(x_i, x_j, x_k, x_l) = τ (IUPAC sign).
  for (std::size_t q = 0; q < z.rows.size(); ++q) {
    const auto& row = z.rows[q];
    const auto& xj = pos[row.bond];
    const auto& xk = pos[row.angle];
    const auto& xl = pos[row.torsion];
    const auto r = bonds.select(1, 2 + static_cast<std::int64_t>(q)).unsqueeze(1);
    const auto th = angles.select(1, 1 + static_cast<std::int64_t>(q)).unsqueeze(1);
    const auto tau = torsions.select(1, static_cast<std::int64_t>(q)).unsqueeze(1);
    const auto jk = xj - xk;
    const auto e = jk / jk.norm(2, -1, true);
    const auto nn = torch::cross(xk - xl, e, -1);
    const auto n = nn / nn.norm(2, -1, true);
    const auto m = torch::cross(n, e, -1);
    const auto st = torch::sin(th);
    pos[row.atom] = xj + r * (-torch::cos(th) * e + st * torch::cos(tau) * m + st * torch::sin(tau) * n);
  }
  const auto cartesian = torch::stack(pos, 1).reshape({batch, n_cartesian()});
  const auto log_j = 2.0 * torch::log(torch::abs(bonds)).sum(1) + torch::log(torch::abs(torch::sin(angles))).sum(1);
  return {cartesian, log_j};
}

torch::Tensor InternalCoordinates::standard_orientation(const torch::Tensor& cartesian) const {
  check_batch(cartesian, n_cartesian(), "cartesian");
  const auto& a = zmatrix_.anchors;
  const auto xyz = cartesian.reshape({cartesian.size(0), zmatrix_.n_atoms, 3});
  const auto centred = xyz - atom(xyz, a[0]).unsqueeze(1);
  const auto v1 = atom(centred, a[1]);
  const auto e1 = v1 / v1.norm(2, -1, true);
  const auto v2 = atom(centred, a[2]);
  const auto w2 = v2 - (v2 * e1).sum(-1, true) * e1;
  const auto e2 = w2 / w2.norm(2, -1, true);
  const auto e3 = torch::cross(e1, e2, -1);
  const auto frame = torch::stack({e1, e2, e3}, 2);  // B × 3 × 3, columns e1 e2 e3
  return torch::bmm(centred, frame).reshape({cartesian.size(0), n_cartesian()});
}

torch::Tensor InternalCoordinates::in_domain(const torch::Tensor& internal) const {
  check_batch(internal, n_internal(), "internal");
  const auto bonds = internal.narrow(1, 0, n_bonds());
  const auto angles = internal.narrow(1, n_bonds(), n_angles());
  return torch::isfinite(internal).all(1) & (bonds > 0).all(1) & (angles > 0).all(1) & (angles < kPi).all(1);
}

torch::Tensor InternalCoordinates::wrap_torsions(const torch::Tensor& internal) const {
  check_batch(internal, n_internal(), "internal");
  return torch::where(torsion_mask().unsqueeze(0), wrap_angle(internal), internal);
}

double InternalCoordinates::com_free_log_density_offset() const {
  return 1.5 * std::log(static_cast<double>(n_atoms())) - std::log(8.0 * kPi * kPi);
}

torch::Tensor InternalCoordinates::chirality_ok(const torch::Tensor& cartesian) const {
  check_batch(cartesian, n_cartesian(), "cartesian");
  auto ok = torch::ones({cartesian.size(0)}, torch::TensorOptions().dtype(torch::kBool));
  for (const auto& c : zmatrix_.chiral_centers) {
    ok = ok & (chirality_triple_product(cartesian, c) * static_cast<double>(c.expected_sign) > 0);
  }
  return ok;
}

std::int64_t InternalCoordinates::count_wrong_chirality(const torch::Tensor& cartesian) const {
  return (~chirality_ok(cartesian)).sum().item<std::int64_t>();
}

torch::Tensor dihedral(const torch::Tensor& cartesian, std::int64_t p0, std::int64_t p1, std::int64_t p2,
                       std::int64_t p3) {
  if (cartesian.dim() != 2 || cartesian.size(1) % 3 != 0) {
    throw DomainError("dihedral: cartesian must have shape B x 3n");
  }
  const auto xyz = cartesian.reshape({cartesian.size(0), cartesian.size(1) / 3, 3});
  return dihedral_points(atom(xyz, p0), atom(xyz, p1), atom(xyz, p2), atom(xyz, p3));
}

torch::Tensor chirality_triple_product(const torch::Tensor& cartesian, const ChiralCenter& c) {
  if (cartesian.dim() != 2 || cartesian.size(1) % 3 != 0) {
    throw DomainError("chirality: cartesian must have shape B x 3n");
  }
  const auto xyz = cartesian.reshape({cartesian.size(0), cartesian.size(1) / 3, 3});
  const auto xc = atom(xyz, c.center);
  const auto u = atom(xyz, c.a) - xc;
  const auto v = atom(xyz, c.b) - xc;
  const auto w = atom(xyz, c.d) - xc;
  return (u * torch::cross(v, w, -1)).sum(-1);
}

torch::Tensor alanine_phi_psi(const InternalCoordinates& ic, const torch::Tensor& internal) {
  const auto phi = ic.find_torsion(kAlaninePhi[0], kAlaninePhi[1], kAlaninePhi[2], kAlaninePhi[3]);
  const auto psi = ic.find_torsion(kAlaninePsi[0], kAlaninePsi[1], kAlaninePsi[2], kAlaninePsi[3]);
  if (phi < 0 || psi < 0) throw DomainError("alanine_phi_psi: the Z-matrix has no phi/psi torsion");
  check_batch(internal, ic.n_internal(), "internal");
  return wrap_angle(torch::stack({internal.select(1, phi), internal.select(1, psi)}, 1));
}

// ---------------------------------------------------------------- InternalNormalization

torch::Tensor wrap_angle(const torch::Tensor& a) { return a - kTwoPi * torch::floor((a + kPi) / kTwoPi); }

double wrap_angle(double a) { return a - kTwoPi * std::floor((a + kPi) / kTwoPi); }

}  // namespace boltzlab::molecules
