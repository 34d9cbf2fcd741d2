#include "boltzlab/core/rng_lanes.hpp"

#include <cstdint>
#include <string>

#include <immintrin.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/simd.hpp"

namespace boltzlab {
namespace {

#define BOLTZLAB_LANES_INLINE BOLTZLAB_SIMD_INLINE
using namespace simd;

// The generator is compiled three times, for AVX-512 (x86-64-v4), AVX2 with FMA
// (x86-64-v3) and the baseline ISA, and chosen once at run time. (GCC's target_clones
// cannot be used: the square root must be one vector instruction per clone, and the
// errno semantics of std::sqrt keep GCC from vectorizing it.)
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define BOLTZLAB_LANES_DISPATCH 1
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4")
namespace isa_v4 {
BOLTZLAB_LANES_INLINE v8d vsqrt(v8d a) { return reinterpret_cast<v8d>(_mm512_maskz_sqrt_pd(0xFF, reinterpret_cast<__m512d>(a))); }
#include "boltzlab/core/rng_lanes_body.inc"
}  // namespace isa_v4
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
namespace isa_v3 {
BOLTZLAB_LANES_INLINE v8d vsqrt(v8d a) {
  typedef double v4d __attribute__((vector_size(32)));
  const v4d lo = reinterpret_cast<v4d>(_mm256_sqrt_pd(_mm256_set_pd(a[3], a[2], a[1], a[0])));
  const v4d hi = reinterpret_cast<v4d>(_mm256_sqrt_pd(_mm256_set_pd(a[7], a[6], a[5], a[4])));
  return v8d{lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]};
}
#include "boltzlab/core/rng_lanes_body.inc"
}  // namespace isa_v3
#pragma GCC pop_options
#endif

namespace isa_base {
BOLTZLAB_LANES_INLINE v8d vsqrt(v8d a) { return sqrt_pairs(a); }
#include "boltzlab/core/rng_lanes_body.inc"
}  // namespace isa_base

using FillLanes = void (*)(std::uint64_t (*)[kNormalLanes], std::size_t, double*, std::size_t);

/// The widest instruction set this processor has.
FillLanes pick_fill_lanes() {
#ifdef BOLTZLAB_LANES_DISPATCH
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return isa_v4::fill_lanes;
  if (__builtin_cpu_supports("x86-64-v3")) return isa_v3::fill_lanes;
#endif
  return isa_base::fill_lanes;
}

}  // namespace

void fill_normal_lanes(Rng* streams, std::size_t lanes, double* out, std::size_t n) {
  if (lanes > kNormalLanes) {
    throw ConfigError("fill_normal_lanes: lanes is " + std::to_string(lanes) + ", but must be <= " +
                      std::to_string(kNormalLanes));
  }
  // Lanes past `lanes` run on all-zero states (xoshiro's fixed point) and are dropped.
  std::uint64_t words[4][kNormalLanes] = {};
  for (std::size_t j = 0; j < lanes; ++j)
    for (std::size_t k = 0; k < 4; ++k) words[k][j] = streams[j].s_[k];
  static const FillLanes fill_lanes = pick_fill_lanes();
  fill_lanes(words, lanes, out, n);
  for (std::size_t j = 0; j < lanes; ++j)
    for (std::size_t k = 0; k < 4; ++k) streams[j].s_[k] = words[k][j];
}

}  // namespace boltzlab
