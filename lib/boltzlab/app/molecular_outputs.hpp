#pragma once
/// \file molecular_outputs.hpp
/// Outputs of molecular run directories: backbone dihedrals, Ramachandran histogram
/// and free energy, PNG plot, and a trajectory readable by MDTraj/VMD.
/// Every tool that writes a run directory for a target with a topology() calls
/// write_molecular_outputs().
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/estimators/ramachandran.hpp"
#include "boltzlab/io/plot.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab {

/// At most this many models in trajectory.pdb (the DCD always holds every frame).
inline constexpr std::size_t kMaxPdbModels = 1000;

/// Heat map of F − min F (kT, capped at 10) over φ, ψ in degrees (gnuplot).
PlotResult plot_ramachandran(const RamachandranHistogram& h, const std::filesystem::path& png, const std::string& title);

/// Writes the molecular files for `samples` (N×3n, nm) into `run`, weighted by
/// exp(log_weights) when given, and adds their summary (basin populations, files
/// written, notes for skipped plots) under summary["molecular"]. Does nothing when
/// target.topology() is null. Files: trajectory.dcd (all frames, Å) + topology.pdb,
/// trajectory.pdb (≤ kMaxPdbModels models), dihedrals.npy (N×2: φ, ψ in radians),
/// ramachandran_histogram.npy, ramachandran_free_energy.npy, ramachandran.png.
void write_molecular_outputs(const RunDirectory& run, const Target& target, const RowMatrix& samples,
                             const Eigen::VectorXd* log_weights, nlohmann::json& summary);

}  // namespace boltzlab
