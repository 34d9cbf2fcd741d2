#pragma once
/// \file simd.hpp
/// The eight-lane double vectors (GCC vector extensions) of the hand-vectorized loops
/// (flows/kernels.cpp, flows/langevin.cpp, core/rng_lanes.cpp, targets/manywell.cpp), and the
/// multi-versioning they are compiled with: the library is built for the baseline x86-64 ISA,
/// and BOLTZLAB_MULTIVERSION clones a function for AVX-512 (x86-64-v4), AVX2 with FMA
/// (x86-64-v3) and the baseline, chosen once at load time. The helpers are always inlined
/// into their callers, so they take the caller's ISA. Implementation files only (this header
/// turns off GCC's ABI note for 64-byte vector arguments, moot for inlined functions).
#include <immintrin.h>

#pragma GCC diagnostic ignored "-Wpsabi"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define BOLTZLAB_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BOLTZLAB_MULTIVERSION
#endif
#define BOLTZLAB_SIMD_INLINE inline __attribute__((always_inline))

namespace boltzlab::simd {

typedef double v8d __attribute__((vector_size(64)));
typedef long long v8l __attribute__((vector_size(64)));
typedef unsigned long long v8u __attribute__((vector_size(64)));
typedef double v8d_unaligned __attribute__((vector_size(64), aligned(8), may_alias));

BOLTZLAB_SIMD_INLINE v8d splat(double a) { return v8d{} + a; }
/// a in every lane, as one broadcast (from memory where a is loaded), for hot loops:
/// a − 0 is an identity GCC drops, where v8d{} + a is not (−0 + 0 = +0) and costs a
/// scalar addition before every broadcast. A macro, so that it is expanded in the
/// caller's target (an inline function written for the baseline ISA, inlined into an
/// AVX-512 clone, turns into eight masked broadcasts).
#define BOLTZLAB_SPLAT(a) ((a) - ::boltzlab::simd::v8d{})
BOLTZLAB_SIMD_INLINE v8d load(const double* p) { return *reinterpret_cast<const v8d_unaligned*>(p); }
BOLTZLAB_SIMD_INLINE void store(double* p, v8d a) { *reinterpret_cast<v8d_unaligned*>(p) = a; }

/// Lane-wise √a, correctly rounded as std::sqrt, by SSE2 sqrtpd on pairs: baseline ISA, so
/// every clone has it, and no errno path (which keeps GCC from vectorizing std::sqrt).
BOLTZLAB_SIMD_INLINE v8d sqrt_pairs(v8d a) {
  v8d r;
  for (int h = 0; h < 4; ++h) {
    const __m128d pair = _mm_sqrt_pd(_mm_set_pd(a[2 * h + 1], a[2 * h]));
    r[2 * h] = _mm_cvtsd_f64(pair);
    r[2 * h + 1] = _mm_cvtsd_f64(_mm_unpackhi_pd(pair, pair));
  }
  return r;
}

BOLTZLAB_SIMD_INLINE v8d max_lanes(v8d a, v8d b) { return a > b ? a : b; }
BOLTZLAB_SIMD_INLINE v8d min_lanes(v8d a, v8d b) { return a < b ? a : b; }

/// exp(x) for a vector x: n = round(x·log2 e), r = x − n ln2 (Cody–Waite, two parts),
/// exp(r) by its Taylor polynomial of degree 13 (|r| ≤ ln2/2: truncation < 5e−18),
/// times 2^n built in the exponent bits. x < −708 gives 0 (true value < 3e−308).
BOLTZLAB_SIMD_INLINE v8d exp_lanes(v8d x) {
  const v8d magic = splat(0x1.8p52);
  const v8d xc = min_lanes(max_lanes(x, splat(-708.0)), splat(709.0));
  const v8d m = xc * splat(1.4426950408889634074) + magic;
  const v8d n = m - magic;
  const v8d r = (xc - n * splat(6.93147180369123816490e-01)) - n * splat(1.90821492927058770002e-10);
  v8d p = splat(1.0 / 6227020800.0);  // 1/13!
  p = p * r + splat(1.0 / 479001600.0);
  p = p * r + splat(1.0 / 39916800.0);
  p = p * r + splat(1.0 / 3628800.0);
  p = p * r + splat(1.0 / 362880.0);
  p = p * r + splat(1.0 / 40320.0);
  p = p * r + splat(1.0 / 5040.0);
  p = p * r + splat(1.0 / 720.0);
  p = p * r + splat(1.0 / 120.0);
  p = p * r + splat(1.0 / 24.0);
  p = p * r + splat(1.0 / 6.0);
  p = p * r + splat(0.5);
  p = p * r + splat(1.0);
  p = p * r + splat(1.0);
  const v8l ni = (v8l)m - (v8l)magic;  // n as an integer (same exponent as magic)
  const v8d scale = (v8d)((ni + 1023) << 52);
  const v8d result = p * scale;
  return x < splat(-708.0) ? splat(0.0) : result;
}

}  // namespace boltzlab::simd
