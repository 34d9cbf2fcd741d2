#pragma once
/// \file path_measures.hpp
/// What a learned flow costs and how straight it is, measured on base draws: the path length
/// E∫|v| dt (the sum of |x(t_{k+1}) − x(t_k)| on a fine RK4 path), the transport E∫½|v|² dt, and
/// the NFE a user pays for accurate samples: the fewest RK4 steps (4 evaluations each) whose
/// end points agree with the fine path's to `tolerance` (max over the draws). Deterministic
/// flows (noise 0), gradient or free velocity.
#include <cstdint>
#include <vector>

#include "boltzlab/generators/generator.hpp"

namespace boltzlab::generators {

struct PathMeasures {
  double path_length = 0.0;  ///< E Σ_k |x_{k+1} − x_k| (target coordinates)
  double transport = 0.0;    ///< E ∫ ½|v|² dt (flow space)
  int nfe = -1;              ///< 4 × the fewest RK4 steps within `tolerance` (−1: none up to 32 steps)
  FlowPath path;             ///< the fine path (for plots)
};

/// Measures `model` on `n` base draws of stream `seed`, with a fine path of `fine_steps` RK4 steps.
/// \throws DomainError for a stochastic flow.
PathMeasures measure_paths(BoltzmannGenerator& model, std::int64_t n, std::uint64_t seed, int fine_steps = 64,
                           double tolerance = 1e-2);

}  // namespace boltzlab::generators
