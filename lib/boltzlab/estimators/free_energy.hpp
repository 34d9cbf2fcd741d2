#pragma once
/// \file free_energy.hpp
/// Reweighted histograms and free-energy surfaces (1-D and 2-D) with per-bin
/// uncertainties, and free-energy differences between user-defined regions.
///
/// Bin probabilities are self-normalized importance-sampling estimates
///   p̂_b = Σ_i w̄_i 1[x_i ∈ b],   se(p̂_b)² = Σ_i w̄_i² (1[x_i ∈ b] − p̂_b)²
/// (delta method for the SNIS ratio, Owen 2013 eq. 9.8); unweighted samples are the
/// special case w̄_i = 1/S (binomial error). Free energies in units of kT:
///   F_b = −log p̂_b − min_b(−log p̂_b),  se(F_b) = se(p̂_b)/p̂_b,
/// and F_b = +inf for empty bins (JSON: null). Samples with zero weight (log w =
/// −inf) never count; samples outside the range are counted and their weighted mass
/// reported, so Σ_b p̂_b = 1 − outside_mass.
#include <cstddef>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/estimators/importance.hpp"

namespace boltzlab {

/// One histogram axis: [lo, hi) split into `bins` equal bins.
struct HistogramAxis {
  std::string name = "x";  ///< label, e.g. "phi"
  double lo = 0;           ///< lower edge
  double hi = 1;           ///< upper edge (> lo)
  std::size_t bins = 50;   ///< number of bins (≥ 1)
  bool periodic = false;   ///< wrap values into [lo, hi) (e.g. dihedrals on [−π, π))
  /// \throws ConfigError naming the axis for hi ≤ lo, non-finite edges or bins = 0.
  void validate() const;
  double width() const { return (hi - lo) / static_cast<double>(bins); }
  double center(std::size_t b) const { return lo + (static_cast<double>(b) + 0.5) * width(); }
  /// Bin of value v, or −1 when outside (never for periodic axes, unless v is not finite).
  long bin_of(double v) const;
};

/// A reweighted 1-D histogram and free-energy profile.
struct FreeEnergy1D {
  HistogramAxis axis;
  Eigen::VectorXd probability;         ///< p̂_b
  Eigen::VectorXd probability_stderr;  ///< se(p̂_b)
  Eigen::VectorXd free_energy;         ///< F_b in kT (min 0), +inf for empty bins
  Eigen::VectorXd free_energy_stderr;  ///< se(F_b), +inf for empty bins
  std::size_t samples = 0;             ///< S
  std::size_t outside = 0;             ///< samples outside the range (with positive weight)
  double outside_mass = 0;             ///< their total normalized weight
  double kish_ess = 0;                 ///< ESS of the weights used
};

/// A reweighted 2-D histogram and free-energy surface; matrices are bins_x × bins_y.
struct FreeEnergy2D {
  HistogramAxis x_axis, y_axis;
  RowMatrix probability, probability_stderr, free_energy, free_energy_stderr;
  std::size_t samples = 0, outside = 0;
  double outside_mass = 0;
  double kish_ess = 0;
};

/// 1-D reweighted free-energy profile of values `x` with log-weights `log_weights`
/// (an empty log_weights vector means equal weights).
/// \throws DomainError for length mismatch or invalid weights, ConfigError for a bad axis.
FreeEnergy1D free_energy_1d(const Eigen::VectorXd& x, const Eigen::VectorXd& log_weights,
                            const HistogramAxis& axis);

/// 2-D reweighted free-energy surface of (x, y).
FreeEnergy2D free_energy_2d(const Eigen::VectorXd& x, const Eigen::VectorXd& y,
                            const Eigen::VectorXd& log_weights, const HistogramAxis& x_axis,
                            const HistogramAxis& y_axis);

/// A region of configuration space defined by conditions on named coordinates,
/// parsed from text like "phi<0" or "phi>0&psi<-1.5" (conditions joined by '&',
/// operators <, <=, >, >=). An optional label comes first: "alphaR:phi<0".
struct Region {
  struct Condition {
    std::size_t column = 0;
    bool less = true;       ///< true for < / <=
    bool inclusive = false; ///< true for <= / >=
    double value = 0;
  };
  std::string label;
  std::string spec;
  std::vector<Condition> conditions;
  /// True when every condition holds for `row` (length ≥ the largest column + 1).
  bool contains(const double* row) const;
};

/// Parses a region. `names` are the coordinate names usable in it (e.g. {"phi",
/// "psi"} or {"x0", "x1", ...}). \throws ConfigError naming the text and the problem
/// (unknown name with a suggestion, missing operator, bad number).
Region parse_region(const std::string& text, const std::vector<std::string>& names);

/// Free-energy difference ΔF = F_A − F_B = −log(P_A/P_B) (kT) between regions A and B,
/// P_R = Σ_i w̄_i 1[x_i ∈ R]. Delta-method standard error of log(P_A/P_B):
///   se² = Σ_i w̄_i² (a_i/P_A − b_i/P_B)²
/// (the influence function of the ratio; its weighted mean is 0). Regions may
/// overlap. ΔF or its error is missing (with the reason) when a region is empty.
struct FreeEnergyDifference {
  std::string label_a, label_b;
  double population_a = 0, population_b = 0;  ///< P_A, P_B
  Quantity delta_f;                           ///< F_A − F_B in kT
  Quantity stderr_kt;                         ///< its standard error in kT
  std::size_t count_a = 0, count_b = 0;       ///< samples in A and B
};
FreeEnergyDifference free_energy_difference(const RowMatrix& coords, const Eigen::VectorXd& log_weights,
                                            const Region& a, const Region& b);

/// JSON of a free-energy result (edges, centers, F, se; +inf → null).
nlohmann::json to_json(const FreeEnergy1D& f);
nlohmann::json to_json(const FreeEnergy2D& f);
nlohmann::json to_json(const FreeEnergyDifference& d, double kt_kj_mol = 0);

}  // namespace boltzlab
