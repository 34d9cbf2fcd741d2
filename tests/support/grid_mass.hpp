#pragma once
/// \file grid_mass.hpp
/// The midpoint rule for a 2-D density: ∫ q over [lo0, hi0] × [lo1, hi1] with n × n cells,
/// q given as log q of the cell midpoints (rows ordered i·n + j, i along the first axis).
#include <cmath>
#include <functional>

#include "boltzlab/core/ensemble.hpp"

namespace boltzlab::testing {

inline double grid_mass(const std::function<Eigen::VectorXd(const RowMatrix&)>& log_q, double lo0, double hi0,
                        double lo1, double hi1, int n) {
  const double h0 = (hi0 - lo0) / n, h1 = (hi1 - lo1) / n;
  RowMatrix grid(static_cast<Eigen::Index>(n) * n, 2);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      grid(i * n + j, 0) = lo0 + (i + 0.5) * h0;
      grid(i * n + j, 1) = lo1 + (j + 0.5) * h1;
    }
  return log_q(grid).array().exp().sum() * h0 * h1;
}

}  // namespace boltzlab::testing
