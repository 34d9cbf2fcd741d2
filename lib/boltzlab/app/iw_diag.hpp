#pragma once
/// \file iw_diag.hpp
/// The logic of the `iw-diag` tool (the tool only parses flags and, for
/// --potential, evaluates the energies): gather the inputs (a run directory or
/// plain arrays), compute the weight, chain and free-energy diagnostics into a typed
/// IwDiagReport, write summary.json (IwDiagReport::to_json), arrays and plots into a
/// RunDirectory, and format the table.
///
/// Inputs of a run directory (README "Run directory"): log_weights.npy, or
/// log_q.npy + reduced_energies.npy (log w = −u − log q); samples.npy; dihedrals.npy
/// (N×2 φ/ψ, molecular runs) for the Ramachandran free energy; chains.npy
/// (chains × draws [× params]), else frames.npy (F×N×d: particles as chains,
/// frames as draws), else replica.npy (MD replicas as chains) for the chain
/// diagnostics; summary.json for kT, the exact log Z and whether the particles
/// interact: its top-level boolean "interacting" (written by wgf-relax from the flow
/// registry), or, for runs written before that key existed, a guess from the name
/// in options.flow, noted in the chains section.
///
/// With reference dihedrals (--reference) the (weighted) φ/ψ are compared with the
/// reference MD run: forward KL, total variation, their noise floor and the φ ≥ 0
/// population (summary["ramachandran_vs_reference"]).
///
/// Output files: summary.json (IwDiagReport::to_json; report.hpp for the sections),
/// psis_log_weights.npy, weight_distribution.png, ess_curve.png, and free_energy.npy
/// (+ _stderr) with free_energy.png (2-D) or ramachandran_free_energy.png (molecules).
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/estimators/free_energy.hpp"
#include "boltzlab/estimators/mcmc.hpp"
#include "boltzlab/estimators/ramachandran_compare.hpp"
#include "boltzlab/estimators/report.hpp"
#include "boltzlab/io/netcdf.hpp"
#include "boltzlab/app/run_directory.hpp"

namespace boltzlab {

/// The analysed run (summary["source_run"]): the tool that wrote it and its potential.
struct SourceRun {
  std::string tool;       ///< "tool" of the run's summary.json ("" when absent)
  std::string potential;  ///< potential name, else its path ("" when absent)
};

/// Everything iw-diag can analyse; absent members are simply not analysed.
struct IwDiagInput {
  std::string description;                       ///< where the data came from (for the table)
  std::optional<Eigen::VectorXd> log_weights;    ///< given directly
  std::optional<Eigen::VectorXd> reduced_energies;  ///< with log_q: log w = −u − log q
  std::optional<Eigen::VectorXd> log_q;
  std::optional<RowMatrix> samples;              ///< N×d, for the generic free-energy surface
  std::optional<RowMatrix> dihedrals;            ///< N×2 (φ, ψ) radians: Ramachandran free energy
  /// N×2 (φ, ψ) radians of a reference MD run (--reference): summary["ramachandran_vs_reference"]
  /// (estimators/ramachandran_compare.hpp); needs `dihedrals`
  std::optional<RowMatrix> reference_dihedrals;
  std::string reference_source;                  ///< where the reference came from
  std::optional<ChainArray> chains;
  std::vector<std::string> chain_names;          ///< parameter names (default x0, x1, ...)
  std::string chains_source;                     ///< e.g. "frames.npy (particles as chains)"
  bool interacting = false;                      ///< chains are interacting particles
  /// The flow name when `interacting` was guessed from it (a run directory written
  /// before summary.json carried "interacting"); empty when the flag is known.
  /// iw_diagnose notes the guess in the chains section.
  std::string interacting_inferred_from_flow;
  double kt_kj_mol = 0;                          ///< > 0 for molecules
  std::optional<double> exact_log_z;             ///< known log Z of the target
  std::optional<SourceRun> source_run;           ///< from the analysed run's summary.json
  std::vector<std::string> notes;                ///< remarks gathered while loading
  /// Files and directories the input was read from (the run directory of
  /// load_run_directory); iw_diagnose refuses an output that holds one of them,
  /// or chains_source / reference_source when they name files (run_directory.hpp).
  std::vector<std::filesystem::path> sources;
};

/// Options of the analysis.
struct IwDiagOptions {
  double r_eff = 1.0;                   ///< --r-eff: relative efficiency for PSIS
  double clip_fraction = 1e-4;          ///< --clip-fraction
  double level = 0.95;                  ///< --level: log Z confidence level
  std::vector<std::string> regions;     ///< --region A --region B: ΔF = F_A − F_B (0 or 2)
  std::size_t bins = 0;                 ///< --bins per axis (0: 2-D maps √(ESS/10) in [8, 64], profiles 50)
  std::vector<std::size_t> fes_columns = {0, 1};  ///< --fes-columns of samples for the generic surface
  std::size_t max_chain_params = 32;    ///< frames.npy: diagnose at most this many coordinates
  bool plots = true;                    ///< --no-plots clears it
  /// \throws ConfigError naming the flag.
  void validate() const;
};

/// Reads a run directory. Missing optional files are fine; a directory without any
/// analysable array, unreadable files or inconsistent lengths \throw IoError /
/// DomainError naming the file.
IwDiagInput load_run_directory(const std::filesystem::path& dir);

/// The samples of `input` as InferenceData (io/netcdf.hpp), the layout of the Python
/// module's inference_data_from_run: one chain whose draws are the rows of `samples`
/// (posterior "x", dims chain, draw, x_dim_0) and, in sample_stats, those given of
/// "log_weight" (the log-weights, else −u − log q when both are given), "log_q",
/// "reduced_energy" (u) and "lp" (−u). Attributes: "tool" and "potential" of the source
/// run (when known) and "input" (the description).
/// \throws ConfigError when `input` has no samples; DomainError when an array's length
/// is not the number of samples (naming the variable).
InferenceData importance_inference_data(const IwDiagInput& input);

/// importance_inference_data of load_run_directory(dir): a run directory's samples.npy,
/// log_weights.npy, log_q.npy and reduced_energies.npy. \throws as both.
InferenceData run_directory_inference_data(const std::filesystem::path& dir);

/// Reads a chains array from .npy: (chains, draws) or (chains, draws, params).
/// \throws IoError/DomainError naming the file and the shape.
ChainArray read_chains_npy(const std::filesystem::path& path);

/// Chains from the frames of independent MD replicas (md-reference's replica.npy:
/// replica index per frame, frames in time order within a replica): chains =
/// replicas, draws = frames (truncated to the shortest replica, noted), parameters
/// u and, when `dihedrals` is given, φ and ψ centred on their circular means.
/// Sets `names`; appends remarks to `notes`. \throws DomainError on length mismatch.
ChainArray replica_chains(const Eigen::VectorXd& replica, const Eigen::VectorXd& reduced_energies,
                          const RowMatrix* dihedrals, std::vector<std::string>& names,
                          std::vector<std::string>& notes);

/// The free-energy section: a 2-D surface (φ/ψ or two sample columns) or a 1-D
/// profile (one-dimensional samples).
struct FreeEnergySection {
  std::variant<FreeEnergy2D, FreeEnergy1D> result;
  std::string kind;  ///< what the 2-D surface is (summary "kind"); empty for the 1-D profile (no key)
  /// to_json of the surface (free_energy.hpp) plus "kind" when set.
  nlohmann::json to_json() const;
};

/// Everything iw_diagnose computed. A section that could not be computed is empty
/// and its "_reason" says why.
struct IwDiagReport {
  std::string input;                        ///< IwDiagInput::description
  std::optional<SourceRun> source_run;      ///< set when the input had a summary.json
  std::optional<ImportanceReport> weights;  ///< importance weights, when given and usable
  std::string weights_reason;               ///< why `weights` is empty
  /// Counts of finite, zero (−inf), +inf and NaN log-weights, set when weights were
  /// given but are unusable (an exploded run: NaN/+inf entries or all −inf).
  std::optional<LogWeightCounts> weight_counts;
  std::optional<ChainsReport> chains;       ///< chain diagnostics (source set), when given
  std::string chains_reason;                ///< why `chains` is empty
  std::optional<FreeEnergySection> free_energy;
  /// Why no free-energy surface was made although there were coordinates: the weights
  /// are unusable, PSIS k̂ ≥ 1 (reweighting is meaningless), or the coordinates have
  /// no finite range (exploded samples). Empty otherwise.
  std::string free_energy_reason;
  std::optional<RamachandranComparison> ramachandran;  ///< vs the reference dihedrals
  std::string reference_source;                        ///< where the reference came from
  std::optional<FreeEnergyDifference> free_energy_difference;
  std::string free_energy_difference_reason;  ///< why regions were given but no ΔF computed
  double kt_kj_mol = 0;                         ///< > 0: ΔF also in kJ/mol
  std::map<std::string, std::string> plots;     ///< file name → "ok" or why it is missing
  std::vector<std::string> notes;               ///< remarks for the user
  /// summary.json of iw-diag (without format_version, which the writer adds). Keys:
  /// tool ("iw-diag"), input, source_run {tool, potential} (when set);
  /// weights (ImportanceReport::to_json) or weights_reason; mirrored from it at the
  /// top level: kish_ess, ess_fraction, kish_ess_clipped, ess_fraction_clipped,
  /// max_weight_share, psis_khat, psis_reliable, psis_diagnosis (null + "_reason"
  /// without weights) and log_z {estimate, stderr, and where present estimate_reason,
  /// stderr_reason, ci_low, ci_high, level, free_energy_kj_mol, stderr_kj_mol, exact,
  /// z_score}; chains (ChainsReport::to_json) or chains_reason, with rhat, ess_bulk,
  /// ess_tail (+ "_reason") mirrored at the top level (null + "_reason" without
  /// chains); free_energy (FreeEnergySection), ramachandran_vs_reference
  /// (RamachandranComparison::to_json + "reference"), free_energy_difference
  /// (free_energy.hpp to_json) when computed; plots; notes. Only when set:
  /// weight_counts (LogWeightCounts::to_json, unusable weights), free_energy: null with
  /// free_energy_reason, free_energy_difference: null with free_energy_difference_reason.
  nlohmann::json to_json() const;
};

/// The table printed by iw-diag: input, importance weights, chains, free-energy
/// difference, Ramachandran comparison, plots and notes.
std::string format_report(const IwDiagReport& report);

/// Runs the analysis. Writes the files into `out` when not null (the caller commits)
/// and returns the report.
///
/// Unusable weights (NaN or +inf log-weights, or all −inf, e.g. every energy of an
/// exploded run non-finite) do not fail the report when there is anything else to
/// analyse (samples, dihedrals, chains): the weight section is null with its reason and
/// weight_counts, and the reweighted sections (free energy, ΔF, Ramachandran
/// comparison) are skipped with their reasons. With PSIS k̂ ≥ 1 the weights have no
/// finite mean (Vehtari et al. 2024, §3): the reweighted free-energy surface and ΔF are
/// not computed, with the reason in summary.json and the table.
/// \throws DomainError for fatal input problems (empty arrays, mismatched lengths, a
/// non-finite log q, unusable weights with nothing else to analyse) with one-line messages.
IwDiagReport iw_diagnose(const IwDiagInput& input, const IwDiagOptions& options, const RunDirectory* out);

}  // namespace boltzlab
