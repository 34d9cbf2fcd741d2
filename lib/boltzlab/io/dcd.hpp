#pragma once
/// \file dcd.hpp
/// CHARMM/NAMD DCD trajectory writer (binary, little-endian Fortran records, float32
/// coordinates in Å), the format VMD, MDTraj and MDAnalysis read with a PDB topology:
///   mdtraj.load("trajectory.dcd", top="topology.pdb").
#include <filesystem>
#include <string>

#include "boltzlab/core/ensemble.hpp"

namespace boltzlab {

/// Writes each row of `frames` (N×3n, nm) as one DCD frame (Å). `timestep_ps` is
/// the time between frames (stored in AKMA units, informational; 0 if unknown).
/// \throws DomainError if the column count is not a multiple of 3, IoError if the
/// file cannot be written.
void write_dcd(const std::filesystem::path& path, const RowMatrix& frames, double timestep_ps = 0.0,
               const std::string& title = "boltzlab trajectory");

}  // namespace boltzlab
