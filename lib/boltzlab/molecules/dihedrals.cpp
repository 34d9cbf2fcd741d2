#include "boltzlab/molecules/dihedrals.hpp"

#include <cmath>
#include <limits>
#include <map>

#include "boltzlab/core/error.hpp"

namespace boltzlab {

double dihedral_angle(const double* x, std::size_t i, std::size_t j, std::size_t k, std::size_t l) {
  double b1[3], b2[3], b3[3];
  for (int c = 0; c < 3; ++c) {
    b1[c] = x[3 * j + c] - x[3 * i + c];
    b2[c] = x[3 * k + c] - x[3 * j + c];
    b3[c] = x[3 * l + c] - x[3 * k + c];
  }
  auto cross = [](const double* a, const double* b, double* out) {
    out[0] = a[1] * b[2] - a[2] * b[1];
    out[1] = a[2] * b[0] - a[0] * b[2];
    out[2] = a[0] * b[1] - a[1] * b[0];
  };
  double n1[3], n2[3];
  cross(b1, b2, n1);
  cross(b2, b3, n2);
  const double b2_norm = std::sqrt(b2[0] * b2[0] + b2[1] * b2[1] + b2[2] * b2[2]);
  const double y = b2_norm * (b1[0] * n2[0] + b1[1] * n2[1] + b1[2] * n2[2]);
  const double xx = n1[0] * n2[0] + n1[1] * n2[1] + n1[2] * n2[2];
  if (!std::isfinite(y) || !std::isfinite(xx) || (y == 0.0 && xx == 0.0)) return std::numeric_limits<double>::quiet_NaN();
  return std::atan2(y, xx);
}

std::vector<Dihedral> backbone_dihedrals(const Topology& topology) {
  // Residues in order of appearance, keyed by (residue id, position of first atom).
  struct Residue {
    int id;
    std::map<std::string, std::size_t> atoms;
  };
  std::vector<Residue> residues;
  for (std::size_t a = 0; a < topology.atoms(); ++a) {
    if (residues.empty() || residues.back().id != topology.residue_ids[a]) residues.push_back({topology.residue_ids[a], {}});
    residues.back().atoms.emplace(topology.atom_names[a], a);
  }
  auto find = [](const Residue& r, const std::string& name) -> std::optional<std::size_t> {
    auto it = r.atoms.find(name);
    if (it == r.atoms.end()) return std::nullopt;
    return it->second;
  };
  std::vector<Dihedral> out;
  for (std::size_t r = 0; r < residues.size(); ++r) {
    const auto n = find(residues[r], "N"), ca = find(residues[r], "CA"), c = find(residues[r], "C");
    if (!n || !ca || !c) continue;
    const std::string id = std::to_string(residues[r].id);
    if (r > 0) {
      if (const auto prev_c = find(residues[r - 1], "C")) out.push_back({"phi" + id, {*prev_c, *n, *ca, *c}});
    }
    if (r + 1 < residues.size()) {
      if (const auto next_n = find(residues[r + 1], "N")) out.push_back({"psi" + id, {*n, *ca, *c, *next_n}});
    }
  }
  return out;
}

std::optional<std::pair<Dihedral, Dihedral>> ramachandran_dihedrals(const Topology& topology) {
  const auto all = backbone_dihedrals(topology);
  for (std::size_t k = 0; k + 1 < all.size(); ++k) {
    if (all[k].name.rfind("phi", 0) == 0 && all[k + 1].name.rfind("psi", 0) == 0 &&
        all[k].name.substr(3) == all[k + 1].name.substr(3)) {
      return std::make_pair(all[k], all[k + 1]);
    }
  }
  return std::nullopt;
}

Eigen::VectorXd dihedral_series(const RowMatrix& frames, const Dihedral& d) {
  for (std::size_t a : d.atoms) {
    if (3 * a + 2 >= static_cast<std::size_t>(frames.cols())) {
      throw DomainError("dihedral " + d.name + ": atom " + std::to_string(a) + " is outside configurations of dimension " +
                        std::to_string(frames.cols()));
    }
  }
  Eigen::VectorXd out(frames.rows());
  for (Eigen::Index f = 0; f < frames.rows(); ++f) {
    out[f] = dihedral_angle(frames.row(f).data(), d.atoms[0], d.atoms[1], d.atoms[2], d.atoms[3]);
  }
  return out;
}

}  // namespace boltzlab
