#pragma once
/// \file molecular_graph.hpp
/// The covalent bond graph of a molecule, with the checks that make it safe to build
/// internal coordinates on: bonds from the OpenMM System (HarmonicBondForce terms and
/// constraints), elements from the structure file checked against the System's masses
/// (a PDB whose atom order differs from the System's is refused), one connected molecule,
/// and bond lengths of the reference structure in a physical range.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "boltzlab/io/topology.hpp"

namespace boltzlab {
class OpenMMTarget;
}

namespace boltzlab::molecules {

/// Atoms (names, residues, elements) and covalent bonds; neighbour lists sorted by index.
struct MolecularGraph {
  Topology topology;
  std::vector<std::vector<std::int64_t>> neighbors;

  std::int64_t atoms() const { return static_cast<std::int64_t>(neighbors.size()); }
  bool is_hydrogen(std::int64_t a) const { return topology.elements[static_cast<std::size_t>(a)] == "H"; }
  /// "ALA2 CA": residue name, residue id and atom name of atom a.
  std::string label(std::int64_t a) const;
  /// Number of connected components (1 for one molecule).
  std::int64_t components() const;
};

/// The graph of `topology` with `bonds` (0-based pairs). Elements missing from the topology
/// are left empty here; molecular_graph(target) fills them from the System's masses.
/// \throws ConfigError naming `context` (a bond out of range or to itself, duplicates are merged).
MolecularGraph graph_from_bonds(const Topology& topology, const std::vector<std::pair<std::int64_t, std::int64_t>>& bonds,
                                const std::string& context);

/// Element symbol of an atomic mass (g/mol) for the elements of biomolecules and common
/// ligands (H, C, N, O, F, P, S, Cl, Br, I, …); "" when none is within 0.5 g/mol.
std::string element_of_mass(double mass);

/// The graph of an OpenMM target: bonds of every HarmonicBondForce and every constraint of
/// its System, elements from the structure file (or from the masses when the file has none).
/// Checks, each failing with one line that names `context`:
///   every atom's element agrees with its System mass (else the structure file's atom order
///   is not the System's — the line names the first atom that differs);
///   the bonds connect all atoms (one molecule);
///   every bond of the reference structure is 0.05–0.3 nm long.
/// \throws ConfigError.
MolecularGraph molecular_graph(const OpenMMTarget& target, const std::string& context);

}  // namespace boltzlab::molecules
