#pragma once
/// \file dihedrals.hpp
/// Torsion (dihedral) angles of molecular configurations and the backbone φ/ψ
/// definitions used for Ramachandran plots.
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab {

/// Dihedral angle of atoms (i, j, k, l) in x (flat 3n), in radians in (−π, π], with
/// the IUPAC/IUB sign convention (as MDTraj and OpenMM's PeriodicTorsionForce):
///   b1 = x_j − x_i, b2 = x_k − x_j, b3 = x_l − x_k,
///   θ = atan2(|b2| b1·(b2×b3), (b1×b2)·(b2×b3)).
/// NaN when x is not finite or the atoms are collinear.
double dihedral_angle(const double* x, std::size_t i, std::size_t j, std::size_t k, std::size_t l);

/// A named dihedral: four 0-based atom indices.
struct Dihedral {
  std::string name;                  ///< e.g. "phi2" (residue id appended)
  std::array<std::size_t, 4> atoms{};
};

/// Backbone dihedrals from atom names: for each residue r with atoms N, CA, C,
///   φ_r = (C_{r−1}, N_r, CA_r, C_r)   when the previous residue has a C,
///   ψ_r = (N_r, CA_r, C_r, N_{r+1})   when the next residue has an N.
/// For alanine dipeptide (ACE-ALA-NME): φ = (4, 6, 8, 14), ψ = (6, 8, 14, 16).
std::vector<Dihedral> backbone_dihedrals(const Topology& topology);

/// The φ/ψ pair of the first residue that has both (for the Ramachandran plot).
std::optional<std::pair<Dihedral, Dihedral>> ramachandran_dihedrals(const Topology& topology);

/// Angles of one dihedral for every row of `frames` (N×3n).
Eigen::VectorXd dihedral_series(const RowMatrix& frames, const Dihedral& dihedral);

}  // namespace boltzlab
