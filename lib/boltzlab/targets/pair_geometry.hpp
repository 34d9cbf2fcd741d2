#pragma once
/// \file pair_geometry.hpp
/// Inner-loop helper of the pair potentials (DW, LJ): the difference vector of two
/// particles with the spatial dimension S fixed at compile time.
#include <cstddef>

namespace boltzlab {

/// diff = x_i − x_j (S entries); returns |x_i − x_j|².
template <int S>
inline double pair_difference(const double* xi, const double* xj, double* diff) {
  double d2 = 0.0;
  for (int k = 0; k < S; ++k) {
    diff[k] = xi[k] - xj[k];
    d2 += diff[k] * diff[k];
  }
  return d2;
}

}  // namespace boltzlab
