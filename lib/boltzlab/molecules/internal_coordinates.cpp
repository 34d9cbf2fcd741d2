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

// ---------------------------------------------------------------- InternalCoordinates

InternalCoordinates::InternalCoordinates(ZMatrix zmatrix, const std::string& context)
    : zmatrix_(std::move(zmatrix)) {
  zmatrix_.validate(context);
}

InternalCoordinates InternalCoordinates::from_json(const Json& object, const std::string& context) {
  return InternalCoordinates(zmatrix_from_json(object, context), context);
}

InternalCoordinates InternalCoordinates::from_json_file(const std::filesystem::path& path) {
  return from_json(read_json_file(path), path.string());
}

Json InternalCoordinates::to_json() const { return zmatrix_to_json(zmatrix_); }

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

torch::Tensor torsion_columns(const InternalCoordinates& ic, const torch::Tensor& internal,
                              const std::vector<std::int64_t>& columns) {
  check_batch(internal, ic.n_internal(), "internal");
  const std::int64_t first = ic.n_bonds() + ic.n_angles();
  std::vector<torch::Tensor> picked;
  for (const auto c : columns) {
    if (c < first || c >= ic.n_internal())
      throw DomainError("internal coordinates: column " + std::to_string(c) + " is not a torsion column");
    picked.push_back(internal.select(1, c));
  }
  if (picked.empty()) return torch::empty({internal.size(0), 0}, internal.options());
  return wrap_angle(torch::stack(picked, 1));
}

torch::Tensor wrap_angle(const torch::Tensor& a) { return a - kTwoPi * torch::floor((a + kPi) / kTwoPi); }

double wrap_angle(double a) { return a - kTwoPi * std::floor((a + kPi) / kTwoPi); }

}  // namespace boltzlab::molecules
