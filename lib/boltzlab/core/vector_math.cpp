#include "boltzlab/core/vector_math.hpp"

#include <algorithm>

#include "boltzlab/core/simd.hpp"

namespace boltzlab {

BOLTZLAB_MULTIVERSION void exp_in_place(double* x, std::size_t n, double scale) {
  using simd::v8d;
  constexpr std::size_t kLanes = 8;
  const v8d s = simd::splat(scale);  // 1·x is x exactly: scale 1 changes no bit
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) simd::store(x + i, simd::exp_lanes(s * simd::load(x + i)));
  if (i < n) {  // the tail through a zero-padded vector
    double tail[kLanes] = {};
    std::copy(x + i, x + n, tail);
    simd::store(tail, simd::exp_lanes(s * simd::load(tail)));
    std::copy(tail, tail + (n - i), x + i);
  }
}

}  // namespace boltzlab
