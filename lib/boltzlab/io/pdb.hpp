#pragma once
/// \file pdb.hpp
/// Molecular structure files: a small PDB reader (atom names, residues, elements,
/// coordinates of the first model), a multi-model PDB writer (trajectories that
/// MDTraj, VMD and PyMOL read), and an Amber ASCII coordinate (inpcrd/crd) reader.
/// Coordinates inside boltzlab are in nm; PDB and Amber files use Å.
#include <filesystem>
#include <string>
#include <vector>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/io/topology.hpp"

namespace boltzlab {

/// One structure read from a PDB file.
struct PdbStructure {
  Topology topology;
  std::vector<double> positions_nm;  ///< flat 3n, nm
};

/// Reads the ATOM/HETATM records of the first MODEL of a PDB file. The element is
/// taken from columns 77–78 when present, else inferred from the atom name
/// (columns 13–14, PDB convention: a leading digit or blank means the element is
/// the next letter). \throws IoError naming the file (and line) when it cannot be
/// read, has no atoms, or a coordinate field is not a number.
PdbStructure read_pdb(const std::filesystem::path& path);

/// Reads an Amber ASCII coordinate file (.inpcrd/.crd/.rst7: title line, atom count,
/// then coordinates in Å, six per line in 12-character fields). Returns flat 3n nm.
/// \throws IoError naming the file when unreadable or truncated.
std::vector<double> read_amber_coordinates(const std::filesystem::path& path);

/// Formats one PDB MODEL block (ATOM records, coordinates converted nm → Å).
/// `model` is the 1-based model number (0: no MODEL/ENDMDL lines).
std::string format_pdb_model(const Topology& topology, const double* positions_nm, int model);

/// Writes rows of `frames` (N×3n, nm) as a multi-model PDB file (MODEL 1..N, END).
/// \throws DomainError on a column/atom-count mismatch, IoError when not writable.
void write_pdb_models(const std::filesystem::path& path, const Topology& topology, const RowMatrix& frames);

}  // namespace boltzlab
