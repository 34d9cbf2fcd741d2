#pragma once
/// \file zmatrix.hpp
/// The Z-matrix of a molecule as plain data (no LibTorch): anchors, one row per placed
/// atom, the stereocentres to check and the atom names it was built for, with validation
/// and the JSON form that model files and user-supplied Z-matrix files use.
/// molecules/zmatrix_builder.hpp makes one from the bond graph; molecules/internal_coordinates.hpp
/// turns it into the batched Cartesian ⇄ internal transform.
#include <cstdint>
#include <string>
#include <vector>

#include "boltzlab/io/config.hpp"

namespace boltzlab::molecules {

/// One Z-matrix row: atom `atom` is placed at distance r from `bond`, angle θ at
/// `bond` from `angle`, and dihedral τ(atom, bond, angle, torsion).
struct ZMatrixRow {
  std::int64_t atom = -1;     ///< i, the atom placed
  std::int64_t bond = -1;     ///< j, bond partner (placed before i)
  std::int64_t angle = -1;    ///< k, angle partner (placed before i)
  std::int64_t torsion = -1;  ///< l, torsion partner (placed before i)
};

/// A stereocentre to check: the sign of the triple product
/// s = (x_a − x_c) · ((x_b − x_c) × (x_d − x_c)) must equal `expected_sign`.
struct ChiralCenter {
  std::string name;          ///< label for reports, e.g. "ALA CA"
  std::int64_t center = -1;  ///< c, the stereocentre
  std::int64_t a = -1;       ///< first neighbour
  std::int64_t b = -1;       ///< second neighbour
  std::int64_t d = -1;       ///< third neighbour
  int expected_sign = 1;     ///< +1 or −1: sign of the correct enantiomer
};

/// The molecule description: anchors + Z-matrix rows (+ optional chiral centres).
struct ZMatrix {
  std::int64_t n_atoms = 0;
  std::vector<std::int64_t> anchors;  ///< exactly three atoms a0, a1, a2 (a1 bonded to a0, a2 to a1)
  std::vector<ZMatrixRow> rows;       ///< one row for every non-anchor atom, in placement order
  std::vector<ChiralCenter> chiral_centers;
  std::vector<std::string> atom_names;  ///< optional (empty or n_atoms names)

  /// Checks: n_atoms ≥ 3, three distinct anchors, every atom exactly once (as anchor
  /// or row atom), references in range, distinct from the atom and from each other,
  /// and placed before it; chiral centres in range with sign ±1.
  /// \throws ConfigError naming `context` and the offending row/atom.
  void validate(const std::string& context = "z-matrix") const;
};

/// Reads the JSON form
///   {"n_atoms": 22, "anchors": [6, 8, 14],
///    "z_matrix": [[4, 6, 8, 14], ...],            // rows [i, j, k, l]
///    "chiral_centers": [{"name": "CA", "center": 8, "neighbors": [6, 14, 10], "sign": 1}],  // optional
///    "atom_names": [...]}                          // optional
/// and validates it. Unknown keys are rejected. \throws ConfigError naming `context` and the field.
ZMatrix zmatrix_from_json(const Json& object, const std::string& context);
/// The JSON form (inverse of zmatrix_from_json).
Json zmatrix_to_json(const ZMatrix& z);

}  // namespace boltzlab::molecules
