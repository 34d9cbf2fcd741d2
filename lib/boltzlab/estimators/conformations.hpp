#pragma once
/// \file conformations.hpp
/// Backbone conformations of a peptide: for every residue with a φ/ψ pair, the populations
/// of the Ramachandran basins with standard errors, from weighted generator samples or from a
/// time series of frames (MD, replica exchange).
///
/// Basins (radians; the αR/β bounds are those of estimators/ramachandran.hpp):
///   alpha_R     φ < 0,  −2.2 ≤ ψ < 0.5
///   beta_C7eq   φ < 0,  other ψ (β, PII and C7eq)
///   C7ax        φ ≥ 0,  ψ < 0
///   alpha_L     φ ≥ 0,  ψ ≥ 0
///   phi_positive = C7ax + alpha_L, the rare states of alanine peptides at 300 K.
/// Errors: weighted samples are independent draws of the generator, so a population is a
/// self-normalized importance-sampling mean with its delta-method error (Owen 2013, eq. 9.8);
/// unweighted frames are a correlated series, so the error is by batch means over `blocks`
/// contiguous blocks (ramachandran_compare.hpp).
#include <cstddef>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/io/topology.hpp"

namespace boltzlab {

/// Names of the basins in report order.
const std::vector<std::string>& basin_names();
/// Index into basin_names() of the basin of (φ, ψ) (radians) excluding phi_positive; −1 when
/// an angle is not finite.
int ramachandran_basin(double phi, double psi);

/// One population with its standard error.
struct Population {
  double value = 0;
  double standard_error = 0;
};

/// The basins of one residue.
struct ResidueConformations {
  std::string residue;             ///< "2": the residue id of the φ/ψ names (dihedrals.hpp)
  std::vector<Population> basins;  ///< in basin_names() order
};

/// The report of one sample set or time series.
struct ConformationReport {
  std::string error;  ///< "importance sampling delta method" or "batch means over B blocks"
  std::size_t frames = 0;  ///< rows used
  std::vector<ResidueConformations> residues;
  /// {"error", "frames", "basin_definitions", "residues": {"2": {"alpha_R": {"population", "standard_error"}, …}}}
  nlohmann::json to_json() const;
};

/// Basin populations of every residue with φ and ψ (molecules/dihedrals.hpp) in Cartesian
/// frames `x` (N×3n, nm). With `log_weights` (−∞ for zero weight): importance-weighted,
/// delta-method errors; without: batch means over `blocks` blocks of the series in row order.
/// Frames with a non-finite angle or weight are left out. \throws DomainError when no frame
/// is usable, on a length mismatch, or for fewer frames than blocks.
ConformationReport conformation_populations(const Topology& topology, const RowMatrix& x,
                                            const Eigen::VectorXd* log_weights, std::size_t blocks = 20);

/// The same from angles: `angles` is N×2m with columns (φ_1, ψ_1, …, φ_m, ψ_m) in radians and
/// `residues` the m residue labels.
ConformationReport conformation_populations_from_angles(const RowMatrix& angles, const std::vector<std::string>& residues,
                                                        const Eigen::VectorXd* log_weights, std::size_t blocks = 20);

/// Console lines "<prefix>residue 2: alpha_R 0.512 ± 0.004, …" (one per residue).
std::string format_conformations(const ConformationReport& report, const std::string& prefix);

}  // namespace boltzlab
