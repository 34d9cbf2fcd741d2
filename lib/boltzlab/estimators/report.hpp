#pragma once
/// \file report.hpp
/// Typed diagnostics reports: the importance-weight report (ImportanceReport) and
/// the Markov-chain report (ChainsReport), each with `to_json()` for summary.json,
/// the readable text blocks of `iw-diag`'s table, and the plots.
///
/// The structs carry the numbers; JSON is produced only by `to_json()` (at the edge,
/// when a summary.json is written or printed). A value that cannot be computed is a
/// Quantity without value; in JSON it is null with "<key>_reason" next to it (a
/// non-finite value likewise, with the reason "value is not finite").
///
/// summary.json contract (keys other tools and users rely on):
///   kish_ess, ess_fraction, psis_khat, psis_reliable, log_z {estimate, stderr}
///   and, for chains, rhat, ess_bulk, ess_tail (arrays, one entry per parameter).
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "boltzlab/estimators/free_energy.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/estimators/mcmc.hpp"
#include "boltzlab/estimators/ramachandran_compare.hpp"
#include "boltzlab/io/plot.hpp"

namespace boltzlab {

/// Options of the importance-weight report.
struct ImportanceReportOptions {
  double r_eff = 1.0;                ///< relative efficiency of the draws for PSIS (1: independent)
  double clip_fraction = 1e-4;       ///< fraction of largest log-weights clipped for the clipped ESS
  double level = 0.95;               ///< confidence level of the log Z interval
  double kt_kj_mol = 0;              ///< kT in kJ/mol (> 0 for molecules: F = −kT log Z also in kJ/mol)
  std::optional<double> exact_log_z; ///< known log Z of the target (reported with the z-score)
  /// \throws ConfigError naming the field.
  void validate() const;
};

/// log Z = log((1/S) Σ w_i) with its delta-method standard error (estimate_log_z),
/// the free energy F = −kT log Z in kJ/mol for molecules, and the z-score
/// (log Ẑ − log Z)/se against a known exact value.
struct LogZReport {
  std::optional<LogZEstimate> estimate;  ///< empty with fewer than 2 samples
  std::string missing_reason;            ///< why `estimate` is empty
  double kt_kj_mol = 0;                  ///< kT in kJ/mol; 0: no free energy in kJ/mol
  std::optional<double> exact;           ///< known log Z of the target
  bool psis_reliable = true;             ///< false adds a warning: the stderr is not trustworthy
  /// F = −kT log Ẑ in kJ/mol (needs `estimate` and kt_kj_mol > 0).
  std::optional<double> free_energy_kj_mol() const;
  /// kT · se(log Ẑ) in kJ/mol.
  std::optional<double> stderr_kj_mol() const;
  /// (log Ẑ − exact)/se (needs `estimate` and `exact`).
  std::optional<double> z_score() const;
  /// Keys: estimate, stderr (null with estimate_reason, stderr_reason when `estimate`
  /// is empty; then nothing else), ci_low, ci_high, level, method; kt_kj_mol,
  /// free_energy_kj_mol, stderr_kj_mol when kt_kj_mol > 0; exact, z_score when
  /// known; warning when PSIS says the weights are unreliable.
  nlohmann::json to_json() const;
};

/// The importance-weight report of one set of log-weights.
struct ImportanceReport {
  WeightDiagnostics weights;            ///< Kish ESS (plain and clipped), max share, log-weight stats
  std::size_t non_finite_energies = 0;  ///< samples whose energy was not finite (log w = −inf)
  PsisResult psis;                      ///< PSIS k̂, its verdict and the smoothed log-weights
  double r_eff = 1.0;                   ///< relative efficiency used for PSIS
  LogZReport log_z;                     ///< log Z with its interval
  /// Keys: samples, zero_weight, non_finite_energies, kish_ess, ess_fraction,
  /// kish_ess_clipped, ess_fraction_clipped, clipped, clip_fraction,
  /// max_weight_share, log_weight {max, mean, sd}, psis_khat, psis_reliable,
  /// psis_diagnosis, psis_threshold, psis_min_sample_size, psis_tail_length,
  /// psis_sigma, psis_kish_ess, r_eff, psis_definition, log_z (LogZReport::to_json);
  /// psis_khat, psis_threshold, psis_min_sample_size and psis_sigma may be null with
  /// their "_reason".
  nlohmann::json to_json() const;
};

/// Computes the importance-weight report (weight_diagnostics, PSIS with
/// options.r_eff, estimate_log_z at options.level when S ≥ 2).
/// \throws ConfigError for invalid options, DomainError for invalid log-weights
///   (empty, NaN, +inf, all −inf).
ImportanceReport importance_report(const Eigen::VectorXd& log_weights, std::size_t non_finite_energies,
                                   const ImportanceReportOptions& options);

/// The Markov-chain report: per-parameter diagnostics and their summaries.
struct ChainsReport {
  std::size_t chains = 0, draws = 0, params = 0;  ///< shape of the diagnosed array
  std::vector<std::string> parameter_names;       ///< one per parameter (x<p> by default)
  std::vector<ChainDiagnostics> diagnostics;      ///< one per parameter
  Quantity rhat_max;                              ///< worst (largest) R̂
  Quantity ess_bulk_min;                          ///< smallest bulk-ESS
  Quantity ess_tail_min;                          ///< smallest tail-ESS
  /// R̂ < 1.01 and bulk/tail ESS > 400 (Vehtari et al. 2021, §4.4); empty when it
  /// cannot be assessed, with `converged_reason`.
  std::optional<bool> converged;
  std::string converged_reason;
  std::string verdict;                            ///< one line for the table
  bool independent_chains = true;                 ///< false for interacting particles
  std::vector<std::string> notes;                 ///< e.g. interacting_particles_note()
  std::optional<std::string> source;              ///< where the chains came from (iw-diag sets it)
  /// Keys: chains, draws, params, parameter_names, rhat, ess_bulk, ess_tail, ess_mean,
  /// iat (arrays, one entry per parameter, null where missing, with a
  /// "<key>_reason" array when any is), rhat_max, ess_bulk_min, ess_tail_min (null
  /// + "_reason" when missing), converged (null + converged_reason when it cannot be
  /// assessed), verdict, independent_chains, notes, definitions, and source when set.
  nlohmann::json to_json() const;
};

/// Diagnoses every parameter of `chains` (chain_diagnostics; in parallel, collected
/// in order). Parameter names default to x<p>; `interacting` sets
/// independent_chains = false and adds interacting_particles_note().
/// \throws DomainError for an invalid array.
ChainsReport chains_report(const ChainArray& chains, const std::vector<std::string>& parameter_names,
                           bool interacting);

/// Text block "Importance weights (...)" of the table: ESS, clipped ESS, largest
/// share, PSIS k̂ and verdict, log Z (and F in kJ/mol, the exact log Z).
std::string format_importance_report(const ImportanceReport& report);

/// Text block "Chains (...)": one row per parameter (at most 20), the verdict and notes.
std::string format_chains_report(const ChainsReport& report);

/// Text block "Free-energy difference F(A) − F(B)" in kT (and kJ/mol when kt_kj_mol > 0).
std::string format_free_energy_difference(const FreeEnergyDifference& difference, double kt_kj_mol);

/// Text block "Ramachandran vs reference": KL and TV with their noise floors, φ ≥ 0 population.
std::string format_ramachandran_comparison(const RamachandranComparison& comparison, const std::string& reference);

/// Two panels: histogram of log10 of the normalized weights, and the empirical
/// survival function P(W ≥ w) of the largest weights on log-log axes with the
/// fitted generalized Pareto tail (M/S)·(1 + k̂(w − u)/σ̂)^{−1/k̂} above the cutoff u.
PlotResult plot_weight_distribution(const Eigen::VectorXd& log_weights, const PsisResult& psis,
                                    const std::filesystem::path& png);

/// Kish ESS of the first n draws against n (log-log), with the ideal ESS = n.
PlotResult plot_ess_curve(const std::vector<std::pair<std::size_t, double>>& curve,
                          const std::filesystem::path& png);

/// Heat map of a 2-D free-energy surface in kT (empty bins left blank).
PlotResult plot_free_energy_2d(const FreeEnergy2D& f, const std::string& title, const std::filesystem::path& png);

/// 1-D free-energy profile with error bars.
PlotResult plot_free_energy_1d(const FreeEnergy1D& f, const std::string& title, const std::filesystem::path& png);

}  // namespace boltzlab
