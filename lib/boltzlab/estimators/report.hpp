#pragma once
/// \file report.hpp
/// The diagnostics report of `iw-diag` (and of any tool that wants the same
/// numbers in its summary.json): JSON sections for importance weights and for
/// Markov chains, a readable text table, and the plots.
///
/// summary.json contract (keys other tools and users rely on):
///   kish_ess, ess_fraction, psis_khat, psis_reliable, log_z {estimate, stderr}
///   and, for chains, rhat, ess_bulk, ess_tail (arrays, one entry per parameter).
/// A value that cannot be computed is null with "<key>_reason" next to it.
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "boltzlab/estimators/free_energy.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/estimators/mcmc.hpp"
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

/// The importance-weight section: samples, zero_weight, non_finite_energies,
/// kish_ess, ess_fraction, kish_ess_clipped, ess_fraction_clipped, clipped,
/// max_weight_share, log_weight {max, mean, sd}, psis_khat, psis_reliable,
/// psis_diagnosis, psis_threshold, psis_min_sample_size, psis_tail_length,
/// psis_sigma, psis_kish_ess, r_eff, log_z {estimate, stderr, ci_low, ci_high, level,
/// and for molecules free_energy_kj_mol, stderr_kj_mol; exact, z_score when known}.
/// \throws DomainError for invalid log-weights (empty, NaN, +inf, all −inf).
nlohmann::json importance_report(const Eigen::VectorXd& log_weights, std::size_t non_finite_energies,
                                 const ImportanceReportOptions& options);

/// The chains section: chains, draws, params, parameter_names, and per parameter
/// (arrays) rhat, ess_bulk, ess_tail, ess_mean, iat (null + "<key>_reason" array when
/// missing), plus rhat_max, ess_bulk_min, ess_tail_min, converged (R̂ < 1.01 and
/// bulk/tail ESS > 400, Vehtari et al. 2021 §4.4), verdict, and notes —
/// including interacting_particles_note() and independent_chains = false when
/// `interacting`. \throws DomainError for an invalid array.
nlohmann::json chains_report(const ChainArray& chains, const std::vector<std::string>& parameter_names,
                             bool interacting);

/// A readable multi-line table of a summary built from the sections above
/// (keys "weights", "chains", "free_energy_difference" when present).
std::string format_report(const nlohmann::json& summary);

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
