#include "boltzlab/estimators/conformations.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/estimators/ramachandran_compare.hpp"
#include "boltzlab/molecules/dihedrals.hpp"

namespace boltzlab {

const std::vector<std::string>& basin_names() {
  static const std::vector<std::string> names = {"alpha_R", "beta_C7eq", "C7ax", "alpha_L", "phi_positive"};
  return names;
}

int ramachandran_basin(double phi, double psi) {
  if (!std::isfinite(phi) || !std::isfinite(psi)) return -1;
  if (phi >= 0) return psi < 0 ? 2 : 3;
  return (psi >= -2.2 && psi < 0.5) ? 0 : 1;
}

namespace {

/// Indicator series of basin b (phi_positive: basins 2 and 3) for residue column pair r.
Eigen::VectorXd indicator(const RowMatrix& angles, Eigen::Index r, std::size_t b, const std::vector<Eigen::Index>& rows) {
  Eigen::VectorXd v(static_cast<Eigen::Index>(rows.size()));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const int k = ramachandran_basin(angles(rows[i], 2 * r), angles(rows[i], 2 * r + 1));
    const bool in = b == 4 ? (k == 2 || k == 3) : k == static_cast<int>(b);
    v[static_cast<Eigen::Index>(i)] = in ? 1.0 : 0.0;
  }
  return v;
}

}  // namespace

ConformationReport conformation_populations_from_angles(const RowMatrix& angles, const std::vector<std::string>& residues,
                                                        const Eigen::VectorXd* log_weights, std::size_t blocks) {
  if (angles.cols() != 2 * static_cast<Eigen::Index>(residues.size()))
    throw DomainError("conformations: " + std::to_string(angles.cols()) + " angle columns for " +
                      std::to_string(residues.size()) + " residues");
  if (log_weights && log_weights->size() != angles.rows())
    throw DomainError("conformations: " + std::to_string(log_weights->size()) + " log-weights for " +
                      std::to_string(angles.rows()) + " frames");
  std::vector<Eigen::Index> rows;  // frames with finite angles (and a usable weight)
  for (Eigen::Index i = 0; i < angles.rows(); ++i) {
    if (!angles.row(i).allFinite()) continue;
    if (log_weights && !std::isfinite((*log_weights)[i])) continue;
    rows.push_back(i);
  }
  if (rows.empty()) throw DomainError("conformations: no frame with finite angles and weight");
  ConformationReport out;
  out.frames = rows.size();
  Eigen::VectorXd lw;
  if (log_weights) {
    lw.resize(static_cast<Eigen::Index>(rows.size()));
    for (std::size_t i = 0; i < rows.size(); ++i) lw[static_cast<Eigen::Index>(i)] = (*log_weights)[rows[i]];
    out.error = "importance sampling delta method";
  } else {
    out.error = "batch means over " + std::to_string(blocks) + " blocks";
  }
  for (std::size_t r = 0; r < residues.size(); ++r) {
    ResidueConformations rc{residues[r], {}};
    for (std::size_t b = 0; b < basin_names().size(); ++b) {
      const Eigen::VectorXd f = indicator(angles, static_cast<Eigen::Index>(r), b, rows);
      if (log_weights) {
        const SnisEstimate e = snis_estimate(lw, f);
        rc.basins.push_back({e.mean, e.standard_error});
      } else {
        const BatchMeansEstimate e = batch_means(f, blocks);
        rc.basins.push_back({e.mean, e.standard_error});
      }
    }
    out.residues.push_back(rc);
  }
  return out;
}

ConformationReport conformation_populations(const Topology& topology, const RowMatrix& x,
                                            const Eigen::VectorXd* log_weights, std::size_t blocks) {
  // φ_r/ψ_r pairs of the same residue, in backbone order.
  const auto all = backbone_dihedrals(topology);
  std::vector<std::pair<Dihedral, Dihedral>> pairs;
  std::vector<std::string> residues;
  for (std::size_t k = 0; k + 1 < all.size(); ++k) {
    if (all[k].name.rfind("phi", 0) == 0 && all[k + 1].name.rfind("psi", 0) == 0 &&
        all[k].name.substr(3) == all[k + 1].name.substr(3)) {
      pairs.emplace_back(all[k], all[k + 1]);
      residues.push_back(all[k].name.substr(3));
    }
  }
  RowMatrix angles(x.rows(), 2 * static_cast<Eigen::Index>(pairs.size()));
  for (std::size_t p = 0; p < pairs.size(); ++p) {
    angles.col(2 * static_cast<Eigen::Index>(p)) = dihedral_series(x, pairs[p].first);
    angles.col(2 * static_cast<Eigen::Index>(p) + 1) = dihedral_series(x, pairs[p].second);
  }
  return conformation_populations_from_angles(angles, residues, log_weights, blocks);
}

nlohmann::json ConformationReport::to_json() const {
  nlohmann::json res = nlohmann::json::object();
  for (const auto& r : residues) {
    nlohmann::json b = nlohmann::json::object();
    for (std::size_t k = 0; k < r.basins.size(); ++k)
      b[basin_names()[k]] = {{"population", r.basins[k].value}, {"standard_error", r.basins[k].standard_error}};
    res[r.residue] = b;
  }
  return {{"error", error},
          {"frames", frames},
          {"basin_definitions",
           "radians: alpha_R phi<0, -2.2<=psi<0.5; beta_C7eq phi<0, other psi; C7ax phi>=0, psi<0; alpha_L phi>=0, "
           "psi>=0; phi_positive = C7ax + alpha_L"},
          {"residues", res}};
}

std::string format_conformations(const ConformationReport& report, const std::string& prefix) {
  std::ostringstream s;
  for (const auto& r : report.residues) {
    s << prefix << "residue " << r.residue << ":";
    for (std::size_t k = 0; k < r.basins.size(); ++k) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%s %s %.4g ± %.2g", k ? "," : "", basin_names()[k].c_str(), r.basins[k].value,
                    r.basins[k].standard_error);
      s << buf;
    }
    s << "\n";
  }
  return s.str();
}

}  // namespace boltzlab
