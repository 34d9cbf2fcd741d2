#pragma once
/// \file zmatrix_builder.hpp
/// A Z-matrix for any molecule, made from its bond graph and a reference structure.
///
/// ## Placement order
/// 1. The *main chain*: for a peptide (backbone dihedrals found from atom names,
///    dihedrals.hpp) the bond path from the first φ's first atom to the last ψ's last
///    atom; otherwise the longest path of the heavy-atom graph (two breadth-first
///    searches, ties to the lowest index). Its three middle atoms are the anchors
///    (a0, a1, a2) — for a peptide the N, CA, C of its central residue — and the rest of
///    the chain is placed outward from them, alternating sides.
/// 2. The other heavy atoms, breadth first from what is placed (lowest index first).
/// 3. Hydrogens, each on its heavy atom, in the order the heavy atoms were placed.
/// Every atom's bond partner j is the atom it was reached from, so the bonds of the
/// Z-matrix are the edges of a spanning tree: ring bonds outside the tree are not
/// coordinates (the ring is closed by the energy, through its hard torsions).
///
/// ## Angle and torsion partners
/// For atom i placed from j: k = the atom j was placed from (for the anchors: a0 → a1,
/// a1 → a0, a2 → a1). The torsion partner l is
///   - the first placed other neighbour of j (a *sibling*: an improper torsion, which is
///     hard — ±120° at sp³, 180° at sp² centres — and fixes the handedness), if there is one;
///   - else a placed neighbour of k other than j, the atom k was placed from first (a
///     *proper* torsion about the bond j–k: these are the soft rotors — backbone φ, ψ, ω,
///     side-chain χ, methyl rotations).
/// So each rotatable bond carries exactly one proper torsion and the other substituents
/// follow it rigidly, and for a peptide every backbone φ_r, ψ_r is a torsion column
/// (InternalCoordinates::find_torsion finds it).
///
/// ## Stereocentres
/// An atom with four neighbours whose four branches are constitutionally different
/// (different extended-connectivity invariants — Morgan, J. Chem. Doc. 5, 107 (1965) —
/// computed from elements and the bond graph) is a stereocentre; its expected sign is
/// the sign of the triple product in the reference structure. Methyl and methylene
/// centres (equivalent hydrogens) are not stereocentres and are not checked.
#include <cstdint>
#include <vector>

#include "boltzlab/molecules/dihedrals.hpp"
#include "boltzlab/molecules/molecular_graph.hpp"
#include "boltzlab/molecules/zmatrix.hpp"

namespace boltzlab::molecules {

/// The main chain of the placement order (see the file comment): atom indices in path order.
std::vector<std::int64_t> main_chain(const MolecularGraph& graph, const std::vector<Dihedral>& backbone);

/// Extended-connectivity invariants (one class number per atom; equal numbers = equivalent atoms).
std::vector<std::int64_t> atom_classes(const MolecularGraph& graph);

/// Stereocentres of `graph` with the signs of the `reference` structure (flat 3n).
std::vector<ChiralCenter> find_stereocentres(const MolecularGraph& graph, const std::vector<double>& reference);

/// The Z-matrix of the file comment, with stereocentres and atom names. The molecule needs
/// at least three atoms and one connected bond graph. \throws ConfigError naming `context`.
ZMatrix build_zmatrix(const MolecularGraph& graph, const std::vector<double>& reference, const std::string& context);

}  // namespace boltzlab::molecules
