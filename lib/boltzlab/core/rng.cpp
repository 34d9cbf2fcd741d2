#include "boltzlab/core/rng.hpp"

#include <cmath>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() values, which
// -Wmaybe-uninitialized reports inside the intrinsic headers (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define BOLTZLAB_RNG_AVX512 1
#endif

namespace boltzlab {

/// The multi-stream ziggurat (fill_normal_streams): lane l carries stream l's
/// xoshiro256++ state. The fast path is exact integer and double arithmetic
/// (u = (bits >> 11)·2⁻⁵², |u| < ratio[layer], u·edge[layer]: one rounding), so a lane
/// produces bit for bit what Rng::fill_normal gives; a failing lane runs its own
/// stream's slow path with the lane's state and continues from where it left it.
struct RngLanes {
  /// Portable path: the lanes' draws interleaved (independent dependency chains).
  static void portable(Rng* const* streams, std::size_t count, std::size_t n, double* out, std::size_t stride) {
    const ZigguratTables& t = ziggurat_tables();
    for (std::size_t k = 0; k < n; ++k)
      for (std::size_t l = 0; l < count; ++l) out[l * stride + k] = streams[l]->normal_ziggurat(t);
  }

#ifdef BOLTZLAB_RNG_AVX512
#define BOLTZLAB_AVX512 __attribute__((target("avx512f,avx512dq")))
  /// Eight xoshiro256++ states, one per lane.
  struct Lanes {
    __m512i s0, s1, s2, s3;
    /// One step of every lane; returns the raw draws (Rng::operator()).
    BOLTZLAB_AVX512 __m512i next() {
      const __m512i bits = _mm512_add_epi64(_mm512_rol_epi64(_mm512_add_epi64(s0, s3), 23), s0);
      const __m512i tt = _mm512_slli_epi64(s1, 17);
      s2 = _mm512_xor_si512(s2, s0);
      s3 = _mm512_xor_si512(s3, s1);
      s1 = _mm512_xor_si512(s1, s2);
      s0 = _mm512_xor_si512(s0, s3);
      s2 = _mm512_xor_si512(s2, tt);
      s3 = _mm512_rol_epi64(s3, 45);
      return bits;
    }
    /// Lane l's state into r, or r's state into lane l. Through registers (lane extract,
    /// masked broadcast), not memory: a 64-byte store reloaded as 8-byte words (or the
    /// reverse) defeats store-to-load forwarding and stalls for tens of cycles.
    BOLTZLAB_AVX512 void get(unsigned l, Rng& r) const {
      r.s_[0] = lane(s0, l), r.s_[1] = lane(s1, l), r.s_[2] = lane(s2, l), r.s_[3] = lane(s3, l);
    }
    BOLTZLAB_AVX512 void set(unsigned l, const Rng& r) {
      const __mmask8 m = static_cast<__mmask8>(1u << l);
      s0 = _mm512_mask_set1_epi64(s0, m, static_cast<long long>(r.s_[0]));
      s1 = _mm512_mask_set1_epi64(s1, m, static_cast<long long>(r.s_[1]));
      s2 = _mm512_mask_set1_epi64(s2, m, static_cast<long long>(r.s_[2]));
      s3 = _mm512_mask_set1_epi64(s3, m, static_cast<long long>(r.s_[3]));
    }
    BOLTZLAB_AVX512 static std::uint64_t lane(__m512i v, unsigned l) {
      return static_cast<std::uint64_t>(_mm_cvtsi128_si64(
          _mm512_castsi512_si128(_mm512_permutexvar_epi64(_mm512_set1_epi64(static_cast<long long>(l)), v))));
    }
  };

  /// table[layer] for each lane. Loads through memory: faster than vgatherqpd on the
  /// CPUs measured.
  BOLTZLAB_AVX512 static __m512d lookup(const double* table, const std::int64_t* layer) {
    alignas(64) double v[kNormalLanes];
    for (std::size_t l = 0; l < kNormalLanes; ++l) v[l] = table[layer[l]];
    return _mm512_load_pd(v);
  }

  /// A raw draw split as the ziggurat does: layer (low 8 bits), u ∈ [−1, 1) (high 53).
  BOLTZLAB_AVX512 static __m512d split(__m512i bits, __m512i& layer) {
    layer = _mm512_and_si512(bits, _mm512_set1_epi64(0xFF));
    return _mm512_mul_pd(_mm512_cvtepi64_pd(_mm512_srai_epi64(bits, 11)), _mm512_set1_pd(0x1.0p-52));
  }

  /// Finishes the draws of the lanes in `pending` (fast-path test failed, ≈ 1.5 % of
  /// draws) with each stream's own scalar slow path, from the lane's state.
  BOLTZLAB_AVX512 __attribute__((noinline, cold)) static void finish_slow(Rng* const* streams, Lanes& st,
                                                                          const std::int64_t* layer, __m512d u,
                                                                          unsigned pending, double* value) {
    const ZigguratTables& t = ziggurat_tables();
    alignas(64) double us[kNormalLanes];
    _mm512_store_pd(us, u);
    for (unsigned l = 0; l < kNormalLanes; ++l) {
      if (!((pending >> l) & 1u)) continue;
      Rng& r = *streams[l];
      st.get(l, r);
      value[l] = r.normal_ziggurat_slow(t, static_cast<int>(layer[l]), us[l]);
      st.set(l, r);
    }
  }

  /// AVX-512 path. Unused lanes hold the all-zero state, whose draws (0: layer 0,
  /// u = 0) always take the fast path and are never stored.
  BOLTZLAB_AVX512 static void avx512(Rng* const* streams, std::size_t count, std::size_t n, double* out,
                                     std::size_t stride) {
    const ZigguratTables& t = ziggurat_tables();
    alignas(64) std::uint64_t w[4][kNormalLanes] = {};
    for (std::size_t l = 0; l < count; ++l)
      for (int q = 0; q < 4; ++q) w[q][l] = streams[l]->s_[q];
    Lanes st{_mm512_load_si512(w[0]), _mm512_load_si512(w[1]), _mm512_load_si512(w[2]), _mm512_load_si512(w[3])};
    const __mmask8 active = static_cast<__mmask8>((1u << count) - 1u);
    alignas(64) double value[kNormalLanes];
    alignas(64) std::int64_t layer_of[kNormalLanes];
    for (std::size_t k = 0; k < n; ++k) {
      __m512i layer;
      const __m512d u = split(st.next(), layer);
      _mm512_store_si512(layer_of, layer);
      const __mmask8 fast = _mm512_cmp_pd_mask(_mm512_abs_pd(u), lookup(t.ratio.data(), layer_of), _CMP_LT_OQ);
      _mm512_store_pd(value, _mm512_mul_pd(u, lookup(t.edge.data(), layer_of)));
      const unsigned slow = static_cast<__mmask8>(~fast & active);
      if (__builtin_expect(slow != 0, 0)) finish_slow(streams, st, layer_of, u, slow, value);
      for (std::size_t l = 0; l < count; ++l) out[l * stride + k] = value[l];
    }
    _mm512_store_si512(w[0], st.s0), _mm512_store_si512(w[1], st.s1);
    _mm512_store_si512(w[2], st.s2), _mm512_store_si512(w[3], st.s3);
    for (std::size_t l = 0; l < count; ++l)
      for (int q = 0; q < 4; ++q) streams[l]->s_[q] = w[q][l];
  }

  static bool have_avx512() {
    static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    return yes;
  }
#endif
};

void fill_normal_streams(Rng* const* streams, std::size_t count, std::size_t n, double* out, std::size_t stride) {
#ifdef BOLTZLAB_RNG_AVX512
  if (RngLanes::have_avx512()) {
    RngLanes::avx512(streams, count, n, out, stride);
    return;
  }
#endif
  RngLanes::portable(streams, count, n, out, stride);
}

void fill_normal_streams_portable(Rng* const* streams, std::size_t count, std::size_t n, double* out,
                                  std::size_t stride) {
  RngLanes::portable(streams, count, n, out, stride);
}

}  // namespace boltzlab
