#pragma once
/// \file molecular.hpp
/// Outputs of molecular run directories: backbone dihedrals, Ramachandran histogram
/// and free energy, PNG plot, and a trajectory readable by MDTraj/VMD.
/// Every tool that writes a run directory for a target with a topology() calls
/// write_molecular_outputs().
#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/io/run_directory.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab {

/// Writes the molecular files for `samples` (N×3n, nm) into `run`, weighted by
/// exp(log_weights) when given, and adds their summary (basin populations, files
/// written, notes for skipped plots) under summary["molecular"]. Does nothing when
/// target.topology() is null.
void write_molecular_outputs(const RunDirectory& run, const Target& target, const RowMatrix& samples,
                             const Eigen::VectorXd* log_weights, nlohmann::json& summary);

}  // namespace boltzlab
