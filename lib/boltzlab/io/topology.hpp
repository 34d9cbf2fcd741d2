#pragma once
/// \file topology.hpp
/// The atom-level description that structure files carry (PDB, the System's
/// companion files): names, residues, elements. Plain data, so that io can read and
/// write it without knowing targets; molecules/ builds its analyses on it.
#include <cstddef>
#include <string>
#include <vector>

namespace boltzlab {

/// Atom-level description of a molecular target (for trajectories and observables).
struct Topology {
  std::vector<std::string> atom_names;     ///< e.g. "CA"
  std::vector<std::string> residue_names;  ///< per atom, e.g. "ALA"
  std::vector<int> residue_ids;            ///< per atom, 1-based as in PDB
  std::vector<std::string> elements;       ///< per atom, e.g. "C"
  std::size_t atoms() const { return atom_names.size(); }
};

}  // namespace boltzlab
