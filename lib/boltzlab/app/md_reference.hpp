#pragma once
/// \file md_reference.hpp
/// The `md-reference` tool: OpenMM Langevin reference MD (flows/openmm_md.hpp) of a
/// molecular potential, written as a standard run directory.
#include <cstddef>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "boltzlab/flows/openmm_md.hpp"

namespace boltzlab {

/// Options of an md-reference run (the tool `md-reference`).
struct MdReferenceOptions {
  std::filesystem::path potential;  ///< potential file (type openmm)
  std::filesystem::path out;        ///< run directory
  /// Protocol overrides (md_options_from_json keys) applied after the potential's
  /// "reference" section, e.g. from command-line flags.
  Json protocol = Json::object();
  bool progress = true;             ///< progress lines on stderr
  std::size_t replicas = 1;         ///< independent trajectories
  int threads = 0;                  ///< worker threads (0: all cores)
  /// --netcdf FILE: also write the frames in ArviZ's InferenceData layout (io/netcdf.hpp):
  /// chain = replica, draw = frame (time order), posterior "x" (the coordinates, nm,
  /// x_dim_0 = coordinate; the rows of samples.npy), sample_stats "reduced_energy" (u),
  /// "lp" (−u) and "potential_energy" (kJ/mol). A replica that stopped early is padded
  /// with NaN to the longest. Checked before the run. Empty: none.
  std::filesystem::path netcdf;
  /// \throws ConfigError naming the flag.
  void validate() const;
};

/// Runs `replicas` trajectories (in parallel, except on the Reference platform whose
/// integrators share one global random generator) and writes the standard run
/// directory through app/run_outputs (samples.npy = all frames, replica-major;
/// reduced_energies.npy = u of the frames; energy_trace.png; summary.json; molecular
/// outputs: trajectory.dcd/.pdb, dihedrals, Ramachandran histogram and plot), plus
/// potential_energies.npy (kJ/mol) and replica.npy (replica index per frame).
/// Returns the summary. \throws ConfigError/IoError/BackendError naming what failed.
nlohmann::json run_md_reference(const MdReferenceOptions& options);

}  // namespace boltzlab
