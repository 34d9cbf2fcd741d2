#pragma once
/// \file iw_diag.hpp
/// The logic of the `iw-diag` tool (the tool only parses flags and, for
/// --potential, evaluates the energies): gather the inputs (a run directory or
/// plain arrays), compute the weight, chain and free-energy diagnostics, write
/// summary.json, arrays and plots into a RunDirectory, and format the table.
///
/// Inputs of a run directory (README "Run directory"): log_weights.npy, or
/// log_q.npy + reduced_energies.npy (log w = −u − log q); samples.npy; dihedrals.npy
/// (N×2 φ/ψ, molecular runs) for the Ramachandran free energy; chains.npy
/// (chains × draws [× params]), else frames.npy (F×N×d: particles as chains,
/// frames as draws), else replica.npy (MD replicas as chains) for the chain
/// diagnostics; summary.json for kT, the exact log Z and the flow
/// (interacting-particle flows are flagged).
///
/// With reference dihedrals (--reference) the (weighted) φ/ψ are compared with the
/// reference MD run: forward KL, total variation, their noise floor and the φ ≥ 0
/// population (summary["ramachandran_vs_reference"]).
///
/// Output files: summary.json (see report.hpp for the keys), psis_log_weights.npy,
/// weight_distribution.png, ess_curve.png, and free_energy.npy (+ _stderr) with
/// free_energy.png (2-D) or ramachandran_free_energy.png (molecules).
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/estimators/mcmc.hpp"
#include "boltzlab/estimators/report.hpp"
#include "boltzlab/app/run_directory.hpp"

namespace boltzlab {

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
  double kt_kj_mol = 0;                          ///< > 0 for molecules
  std::optional<double> exact_log_z;             ///< known log Z of the target
  nlohmann::json run_summary;                    ///< summary.json of the analysed run (or null)
  std::vector<std::string> notes;                ///< remarks gathered while loading
};

/// Options of the analysis.
struct IwDiagOptions {
  double r_eff = 1.0;                   ///< --r-eff: relative efficiency for PSIS
  double clip_fraction = 1e-4;          ///< --clip-fraction
  double level = 0.95;                  ///< --level: log Z confidence level
  std::vector<std::string> regions;     ///< --region A --region B: ΔF = F_A − F_B (0 or 2)
  std::size_t bins = 0;                 ///< --bins per axis (0: 64 for φ/ψ, 50 otherwise)
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

/// Runs the analysis. Writes the files into `out` when not null (the caller commits)
/// and returns the summary. \throws DomainError for fatal input problems (empty
/// arrays, all weights zero, NaN log q, mismatched lengths) with one-line messages.
nlohmann::json iw_diagnose(const IwDiagInput& input, const IwDiagOptions& options, const RunDirectory* out);

}  // namespace boltzlab
