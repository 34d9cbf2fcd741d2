#include "boltzlab/flows/kernels.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <tbb/enumerable_thread_specific.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/simd.hpp"
#include "boltzlab/core/vector_math.hpp"

namespace boltzlab {
namespace kernel_detail {

#define BOLTZLAB_INLINE BOLTZLAB_SIMD_INLINE
using namespace simd;
typedef double v4d __attribute__((vector_size(32)));
typedef double v4d_unaligned __attribute__((vector_size(32), aligned(8), may_alias));

constexpr std::size_t kLanes = 8;      // doubles per vector
constexpr std::size_t kRows = 4;       // rows i per register block
constexpr std::size_t kColBlock = 256; // columns j per cache block (K tile 4×256 = 8 KiB)

BOLTZLAB_INLINE v8d vmax(v8d a, v8d b) { return max_lanes(a, b); }
BOLTZLAB_INLINE v8d vsqrt(v8d a) { return sqrt_pairs(a); }
BOLTZLAB_INLINE v8d vmin(v8d a, v8d b) { return min_lanes(a, b); }
BOLTZLAB_INLINE v8d vexp(v8d x) { return exp_lanes(x); }

/// Column-side data, transposed and zero-padded, packed in panels of 16 columns (as a
/// GEMM packs its right-hand side): panel P holds y_jk for j = 16P … 16P + 15 at
/// yt[16P·d + 16k + j − 16P], so that the micro-kernel's d pairs of loads are one
/// contiguous stream (a column-major copy made them d streams 8·N bytes apart, which
/// the prefetchers did not follow: the median pass waited on L2).
struct Columns {
  static constexpr std::size_t kPanel = 2 * kLanes;
  std::size_t m = 0, mp = 0, d = 0;
  std::vector<double> yt;     // panels: ⌈mp/16⌉ × d × 16
  std::vector<double> norms;  // |y_j|², 0 in the padding
  /// Where y_{j,0} is in yt; y_{j,k} is 16k further (y_{j+l,k} 16k + l, l < 16 − j mod 16).
  std::size_t offset(std::size_t j) const { return (j / kPanel) * kPanel * d + j % kPanel; }
  const double* panel(std::size_t j) const { return yt.data() + offset(j); }
};

Columns transpose_columns(const RowMatrix& y) {
  Columns c;
  c.m = static_cast<std::size_t>(y.rows());
  c.d = static_cast<std::size_t>(y.cols());
  c.mp = (c.m + kLanes - 1) / kLanes * kLanes;
  const std::size_t panels = (c.m + Columns::kPanel - 1) / Columns::kPanel;
  c.yt.assign(panels * Columns::kPanel * c.d, 0.0);
  c.norms.assign(c.mp, 0.0);
  for (std::size_t j = 0; j < c.m; ++j) {
    const double* row = y.row(static_cast<Eigen::Index>(j)).data();
    double* out = c.yt.data() + c.offset(j);
    double s = 0.0;
    for (std::size_t k = 0; k < c.d; ++k) {
      out[k * Columns::kPanel] = row[k];
      s += row[k] * row[k];
    }
    c.norms[j] = s;
  }
  return c;
}

/// Rows i of a register block (the 4 rows i0..i0+3; rows past N point at zeros).
struct RowBlock {
  const double* x[kRows];
  double norm[kRows];
};

/// Dot products x_r·y_j for the 4 rows of `rows` and the 16 (or 8) columns from j:
/// the GEMM micro-kernel (1–2 column loads, 4 broadcasts, 4–8 FMAs per k).
BOLTZLAB_INLINE void dots16(const RowBlock& rows, const Columns& cols, std::size_t j, v8d a[kRows],
                            v8d b[kRows]) {
  for (std::size_t r = 0; r < kRows; ++r) a[r] = b[r] = splat(0.0);
  const double* yt0 = cols.panel(j);  // j ≡ 8 (mod 16): two panels
  const double* yt1 = cols.panel(j + kLanes);
  for (std::size_t k = 0; k < cols.d; ++k) {
    const v8d y0 = load(yt0 + k * Columns::kPanel);
    const v8d y1 = load(yt1 + k * Columns::kPanel);
    for (std::size_t r = 0; r < kRows; ++r) {
      const v8d xr = BOLTZLAB_SPLAT(rows.x[r][k]);
      a[r] += xr * y0;
      b[r] += xr * y1;
    }
  }
}
BOLTZLAB_INLINE void dots8(const RowBlock& rows, const Columns& cols, std::size_t j, v8d a[kRows]) {
  for (std::size_t r = 0; r < kRows; ++r) a[r] = splat(0.0);
  const double* yt = cols.panel(j);
  for (std::size_t k = 0; k < cols.d; ++k) {
    const v8d y0 = load(yt + k * Columns::kPanel);
    for (std::size_t r = 0; r < kRows; ++r) a[r] += BOLTZLAB_SPLAT(rows.x[r][k]) * y0;
  }
}

/// |x_r − y_j|² = (|x_r|² + |y_j|²) − 2 x_r·y_j, clamped at 0 (bitwise symmetric in r, j).
BOLTZLAB_INLINE v8d sq_dist(double xnorm, const double* ynorm, v8d dot) {
  return vmax((splat(xnorm) + load(ynorm)) - splat(2.0) * dot, splat(0.0));
}

/// acc_r[q0 + 8v + l] += Σ_{jj ∈ [jb, je)} k_r,jj v_jj[q0 + 8v + l] for v < NV: the
/// 4 × NV accumulators stay in registers over the whole jj loop (NV loads and 4
/// broadcasts per 4·NV multiply-adds). k_r,jj = ktile[r·RowStride + (jj − j0)·ColStride]:
/// a tile stored by rows (kColBlock, 1) or by columns (1, kRows).
template <std::size_t NV, std::size_t RowStride, std::size_t ColStride>
BOLTZLAB_INLINE void accumulate_columns(const double* v, std::size_t pp, std::size_t q0, std::size_t jb,
                                        std::size_t je, const double* ktile, std::size_t j0, double* acc) {
  v8d s[kRows][NV];
  for (std::size_t r = 0; r < kRows; ++r)
    for (std::size_t c = 0; c < NV; ++c) s[r][c] = load(acc + r * pp + q0 + c * kLanes);
  for (std::size_t jj = jb; jj < je; ++jj) {
    v8d vv[NV];
    for (std::size_t c = 0; c < NV; ++c) vv[c] = load(v + jj * pp + q0 + c * kLanes);
    const double* k = ktile + (jj - j0) * ColStride;
    for (std::size_t r = 0; r < kRows; ++r) {
      const v8d kr = BOLTZLAB_SPLAT(k[r * RowStride]);
      for (std::size_t c = 0; c < NV; ++c) s[r][c] += kr * vv[c];
    }
  }
  for (std::size_t r = 0; r < kRows; ++r)
    for (std::size_t c = 0; c < NV; ++c) store(acc + r * pp + q0 + c * kLanes, s[r][c]);
}

/// Phase B of the kernel sums: acc_r += Σ_{jj ∈ [jb, je)} k_r,jj v_jj for the 4 rows,
/// k from the tile ktile (4 × kColBlock from column j0, layout as in accumulate_columns),
/// vectorized over the weight columns q in chunks of up to 5 vectors (20 accumulators),
/// jj ascending for every output.
template <std::size_t RowStride = kColBlock, std::size_t ColStride = 1>
BOLTZLAB_INLINE void accumulate_tile(const double* v, std::size_t pp, std::size_t jb, std::size_t je,
                                     const double* ktile, std::size_t j0, double* acc) {
  constexpr std::size_t kChunk = 5 * kLanes;
  std::size_t q = 0;
  for (; q + kChunk <= pp; q += kChunk) accumulate_columns<5, RowStride, ColStride>(v, pp, q, jb, je, ktile, j0, acc);
  switch ((pp - q) / kLanes) {
    case 4: accumulate_columns<4, RowStride, ColStride>(v, pp, q, jb, je, ktile, j0, acc); break;
    case 3: accumulate_columns<3, RowStride, ColStride>(v, pp, q, jb, je, ktile, j0, acc); break;
    case 2: accumulate_columns<2, RowStride, ColStride>(v, pp, q, jb, je, ktile, j0, acc); break;
    case 1: accumulate_columns<1, RowStride, ColStride>(v, pp, q, jb, je, ktile, j0, acc); break;
    default: break;
  }
}

/// Kernel sums for the 4 rows of `rows`: acc[r·pp + q] = Σ_j exp(−c d²_rj) v_jq.
/// v is mp × pp row-major, zero-padded (so padded columns contribute exactly 0).
BOLTZLAB_MULTIVERSION
void kernel_sums_block(const RowBlock& rows, const Columns& cols, const double* v, std::size_t pp,
                       double c, double* acc, double* ktile) {
  std::fill(acc, acc + kRows * pp, 0.0);
  const v8d minus_c = splat(-c);
  for (std::size_t jb = 0; jb < cols.mp; jb += kColBlock) {
    const std::size_t je = std::min(cols.mp, jb + kColBlock);
    // Phase A: the 4 × (je − jb) tile of kernel values.
    std::size_t j = jb;
    for (; j + 2 * kLanes <= je; j += 2 * kLanes) {
      v8d a[kRows], b[kRows];
      dots16(rows, cols, j, a, b);
      for (std::size_t r = 0; r < kRows; ++r) {
        store(ktile + r * kColBlock + (j - jb),
              vexp(minus_c * sq_dist(rows.norm[r], cols.norms.data() + j, a[r])));
        store(ktile + r * kColBlock + (j - jb) + kLanes,
              vexp(minus_c * sq_dist(rows.norm[r], cols.norms.data() + j + kLanes, b[r])));
      }
    }
    for (; j < je; j += kLanes) {
      v8d a[kRows];
      dots8(rows, cols, j, a);
      for (std::size_t r = 0; r < kRows; ++r) {
        store(ktile + r * kColBlock + (j - jb),
              vexp(minus_c * sq_dist(rows.norm[r], cols.norms.data() + j, a[r])));
      }
    }
    accumulate_tile(v, pp, jb, je, ktile, jb, acc);
  }
}

/// kernel_sums_block from kept squared distances (`kernel`: kernel values, no exp):
/// d2rows[r] is row i0 + r of the N × mp matrix D² (zero in the padding columns, whose
/// weights are 0). With `upper` (i0 a multiple of 4, every row kept in d2, only the
/// columns j ≥ ⌊i0/8⌋·8 written) the columns left of that are read from the transpose:
/// rows j, j + 1 at columns i0..i0+3, one vector of 8, whose kernel values land in a tile
/// stored by columns (ktile + kRows·kColBlock), so no shuffles are needed. Same values as
/// kernel_sums_block, which computes each D²_ij by the same arithmetic, and the same
/// order of the sums. ktile: 2·kRows·kColBlock doubles.
BOLTZLAB_MULTIVERSION
void kernel_sums_block_kept(const double* const* d2rows, const double* d2, bool upper, bool kernel, std::size_t i0,
                            std::size_t mp, const double* v, std::size_t pp, double c, double* acc, double* ktile) {
  std::fill(acc, acc + kRows * pp, 0.0);
  const v8d minus_c = splat(-c);
  double* const by_columns = ktile + kRows * kColBlock;
  const std::size_t transposed_end = upper ? i0 / kLanes * kLanes : 0;
  for (std::size_t jb = 0; jb < mp; jb += kColBlock) {
    const std::size_t je = std::min(mp, jb + kColBlock);
    const std::size_t split = std::min(je, std::max(jb, transposed_end));
    for (std::size_t j = jb; j < split; j += 2) {
      const v4d first = *reinterpret_cast<const v4d_unaligned*>(d2 + j * mp + i0);
      const v4d second = *reinterpret_cast<const v4d_unaligned*>(d2 + (j + 1) * mp + i0);
      const v8d pair = __builtin_shufflevector(first, second, 0, 1, 2, 3, 4, 5, 6, 7);
      store(by_columns + (j - jb) * kRows, kernel ? pair : vexp(minus_c * pair));
    }
    for (std::size_t j = split; j < je; j += kLanes)
      for (std::size_t r = 0; r < kRows; ++r) {
        const v8d kept = load(d2rows[r] + j);
        store(ktile + r * kColBlock + (j - jb), kernel ? kept : vexp(minus_c * kept));
      }
    accumulate_tile<1, kRows>(v, pp, jb, split, by_columns, jb, acc);
    accumulate_tile(v, pp, split, je, ktile, jb, acc);
  }
}

/// out[t] = |x_i − x_j|² for the pairs (i, j) = (pairs[2t], pairs[2t + 1]), t < count, of
/// the rows of the row-major n × d matrix x: 8 coordinates per vector operation (the
/// bracket sample).
BOLTZLAB_MULTIVERSION
void pair_squared_distances(const double* x, std::size_t d, const std::uint32_t* pairs, std::size_t count,
                            double* out) {
  for (std::size_t t = 0; t < count; ++t) {
    const double* a = x + pairs[2 * t] * d;
    const double* b = x + pairs[2 * t + 1] * d;
    v8d acc = splat(0.0);
    std::size_t k = 0;
    for (; k + kLanes <= d; k += kLanes) {
      const v8d diff = load(a + k) - load(b + k);
      acc += diff * diff;
    }
    double s = 0.0;
    for (; k < d; ++k) s += (a[k] - b[k]) * (a[k] - b[k]);
    for (std::size_t l = 0; l < kLanes; ++l) s += acc[l];
    out[t] = s;
  }
}

/// What one median counting pass does, shared by its tiles.
struct CountSpec {
  std::size_t n = 0;          ///< columns j < n (N)
  std::size_t row_end = 0;    ///< only rows i < row_end are counted and kept
  double lo = 0.0, hi = 0.0;  ///< the bracket: values below lo are counted, those in [lo, hi] kept
  double* kept_d2 = nullptr;  ///< D² storage (null: nothing kept)
  std::size_t kept_row0 = 0;  ///< row of D² stored first in kept_d2
  bool rows_only = false;     ///< keep whole rows (all j): one rank's rows; else j ≥ ⌊i0/8⌋·8
};

/// Writes the 4 × 8 tile of squared distances (rows i0.., columns j..) into the kept
/// rows of D² (row stride mp): the rows below spec.row_end, the columns below N.
BOLTZLAB_INLINE void keep_tile(const CountSpec& spec, std::size_t mp, std::size_t i0, std::size_t j,
                               const double (*tile)[kLanes]) {
  for (std::size_t r = 0; r < kRows && i0 + r < spec.row_end; ++r) {
    double* row = spec.kept_d2 + (i0 + r - spec.kept_row0) * mp;
    if (j + kLanes <= spec.n) {
      store(row + j, load(tile[r]));
    } else {
      for (std::size_t l = 0; l < kLanes && j + l < spec.n; ++l) row[j + l] = tile[r][l];
    }
  }
}

/// Running state of one median counting pass over a row block.
struct PairCount {
  v8u count = v8u{} + 0;         ///< per lane: interior pair values below lo
  std::uint64_t edge_count = 0;  ///< edge-tile pair values below lo
  std::size_t pos = 0;           ///< values kept so far
};

/// An edge tile of the median counting pass (some of its 4 × 8 pairs are not pairs
/// j > i, j < n, i < row_end): count_tile's scalar path. `out` has room for 32 values
/// past st.pos.
BOLTZLAB_INLINE void count_edge_tile(const RowBlock& rows, const Columns& cols, std::size_t i0, std::size_t j,
                                     const v8d* a, const CountSpec& spec, PairCount& st, double* out) {
  const std::size_t n = spec.n;
  const double lo = spec.lo, hi = spec.hi;
  double tile[kRows][kLanes];
  for (std::size_t r = 0; r < kRows; ++r) {
    store(tile[r], sq_dist(rows.norm[r], cols.norms.data() + j, a[r]));
    const std::size_t i = i0 + r;
    for (std::size_t l = 0; l < kLanes; ++l) {
      const std::size_t jl = j + l;
      if (!(jl > i && jl < n && i < spec.row_end)) continue;
      const double v = tile[r][l];
      if (v < lo) ++st.edge_count;
      if (v >= lo && v <= hi) out[st.pos++] = v;
    }
  }
  if (spec.kept_d2) keep_tile(spec, cols.mp, i0, j, tile);
}

/// One 4 × 8 tile (columns j..j+7, dot products a) of the median counting pass: counts
/// the pair values d²_ij < lo (pairs j > i, j < n, i < row_end), appends those in
/// [lo, hi] to kept, and writes the tile into the kept D² when there is one (keep_tile).
/// Interior tiles (all 4×8 pairs valid) count with vector selects and append
/// branch-free, and only when some value falls in [lo, hi]; edge tiles go through a
/// scalar path.
BOLTZLAB_INLINE void count_tile(const RowBlock& rows, const Columns& cols, std::size_t i0, std::size_t j,
                                const v8d* a, const CountSpec& spec, PairCount& st, std::vector<double>& kept) {
  const std::size_t n = spec.n;
  const double lo = spec.lo, hi = spec.hi;
  // Indicators from sign bits (GCC lowers vector compare-selects poorly): for finite or
  // infinite lo ≤ hi and d² ≥ 0, d² < lo ⇔ sign(d² − lo) = 1, d² > hi ⇔ sign(hi − d²) = 1.
  double tile[kRows][kLanes];
  if (kept.size() < st.pos + kRows * kLanes) kept.resize(2 * (st.pos + kRows * kLanes));
  double* out = kept.data();
  if (j > i0 + kRows - 1 && j + kLanes <= n && i0 + kRows <= spec.row_end) {
    v8u outside = v8u{} + 1;
    for (std::size_t r = 0; r < kRows; ++r) {
      const v8d v = sq_dist(rows.norm[r], cols.norms.data() + j, a[r]);
      store(tile[r], v);
      const v8u below_bit = (v8u)(v - splat(lo)) >> 63;
      st.count += below_bit;
      outside &= below_bit | ((v8u)(splat(hi) - v) >> 63);
    }
    if (spec.kept_d2) keep_tile(spec, cols.mp, i0, j, tile);
    std::uint64_t all_outside = 1;
    for (std::size_t l = 0; l < kLanes; ++l) all_outside &= outside[l];
    if (all_outside) return;
    for (std::size_t r = 0; r < kRows; ++r)
      for (std::size_t l = 0; l < kLanes; ++l) {
        const double v = tile[r][l];
        out[st.pos] = v;
        st.pos += static_cast<std::size_t>((v >= lo) & (v <= hi));
      }
    return;
  }
  count_edge_tile(rows, cols, i0, j, a, spec, st, out);
}

/// For a rank that keeps whole rows: the tiles of the 4 rows from i0 left of the
/// diagonal tile (columns j < j_end), stored into the kept D², not counted (the pair
/// (j, i) is counted by the rank of row j).
BOLTZLAB_INLINE void keep_rows_before(const RowBlock& rows, const Columns& cols, std::size_t i0, std::size_t j_end,
                                      const CountSpec& spec) {
  double tile[kRows][kLanes];
  std::size_t j = 0;
  for (; j + 2 * kLanes <= j_end; j += 2 * kLanes) {
    v8d a[kRows], b[kRows];
    dots16(rows, cols, j, a, b);
    for (std::size_t r = 0; r < kRows; ++r) store(tile[r], sq_dist(rows.norm[r], cols.norms.data() + j, a[r]));
    keep_tile(spec, cols.mp, i0, j, tile);
    for (std::size_t r = 0; r < kRows; ++r) store(tile[r], sq_dist(rows.norm[r], cols.norms.data() + j + kLanes, b[r]));
    keep_tile(spec, cols.mp, i0, j + kLanes, tile);
  }
  for (; j < j_end; j += kLanes) {
    v8d a[kRows];
    dots8(rows, cols, j, a);
    for (std::size_t r = 0; r < kRows; ++r) store(tile[r], sq_dist(rows.norm[r], cols.norms.data() + j, a[r]));
    keep_tile(spec, cols.mp, i0, j, tile);
  }
}

/// Pass of the exact median for the 4 rows i0..i0+3 (those below spec.row_end) and all
/// columns j > i (j < N): count_tile over the tiles from the diagonal on, the dot
/// products 16 columns at a time (dots16: the same sums as dots8, lane for lane). Adds
/// the count below lo to *below, appends the values in [lo, hi] to kept[*size …] (kept
/// grows as needed; *size is the number used), and writes the kept D² when there is one
/// (a rank's whole rows: the tiles left of the diagonal as well).
BOLTZLAB_MULTIVERSION
void count_pairs_block(const RowBlock& rows, const Columns& cols, std::size_t i0, const CountSpec& spec,
                       std::uint64_t* below, std::vector<double>& kept, std::size_t* size) {
  if (spec.rows_only && spec.kept_d2) keep_rows_before(rows, cols, i0, i0 / kLanes * kLanes, spec);
  PairCount st;
  st.pos = *size;
  std::size_t j = i0 / kLanes * kLanes;
  for (; j + 2 * kLanes <= cols.mp; j += 2 * kLanes) {
    v8d a[kRows], b[kRows];
    dots16(rows, cols, j, a, b);
    count_tile(rows, cols, i0, j, a, spec, st, kept);
    count_tile(rows, cols, i0, j + kLanes, b, spec, st, kept);
  }
  for (; j < cols.mp; j += kLanes) {
    v8d a[kRows];
    dots8(rows, cols, j, a);
    count_tile(rows, cols, i0, j, a, spec, st, kept);
  }
  *size = st.pos;
  std::uint64_t total = st.edge_count;
  for (std::size_t l = 0; l < kLanes; ++l) total += st.count[l];
  *below += total;
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define BOLTZLAB_COUNT_DISPATCH 1
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4")
namespace isa_v4 {

/// count_tile with AVX-512 masks: the same counts, and the same values appended in the
/// same order (row by row, lane order), by one compress per row instead of the scalar
/// loop over the tile's 32 values (which ran for most tiles: with a bracket holding a few
/// per cent of the pairs, most 4 × 8 tiles hold one of them).
BOLTZLAB_INLINE void count_tile_v4(const RowBlock& rows, const Columns& cols, std::size_t i0, std::size_t j,
                                const v8d* a, const CountSpec& spec, PairCount& st, std::vector<double>& kept) {
  if (kept.size() < st.pos + kRows * kLanes) kept.resize(2 * (st.pos + kRows * kLanes));
  double* out = kept.data();
  if (!(j > i0 + kRows - 1 && j + kLanes <= spec.n && i0 + kRows <= spec.row_end)) {
    count_edge_tile(rows, cols, i0, j, a, spec, st, out);
    return;
  }
  double tile[kRows][kLanes];
  const __m512d lo = _mm512_set1_pd(spec.lo), hi = _mm512_set1_pd(spec.hi);
  std::uint64_t below = 0;
  for (std::size_t r = 0; r < kRows; ++r) {
    const v8d v = sq_dist(rows.norm[r], cols.norms.data() + j, a[r]);
    store(tile[r], v);
    const __m512d x = reinterpret_cast<__m512d>(v);
    // Below lo: the sign bit of d² − lo, as the generic path counts.
    below += static_cast<std::uint64_t>(__builtin_popcount(_mm512_movepi64_mask(_mm512_castpd_si512(_mm512_sub_pd(x, lo)))));
    const __mmask8 inside = _mm512_cmp_pd_mask(x, lo, _CMP_GE_OQ) & _mm512_cmp_pd_mask(x, hi, _CMP_LE_OQ);
    _mm512_storeu_pd(out + st.pos, _mm512_maskz_compress_pd(inside, x));
    st.pos += static_cast<std::size_t>(__builtin_popcount(inside));
  }
  st.edge_count += below;
  if (spec.kept_d2) keep_tile(spec, cols.mp, i0, j, tile);
}

/// count_pairs_block (below) with the AVX-512 count_tile.
void count_pairs_block(const RowBlock& rows, const Columns& cols, std::size_t i0, const CountSpec& spec,
                       std::uint64_t* below, std::vector<double>& kept, std::size_t* size) {
  if (spec.rows_only && spec.kept_d2) keep_rows_before(rows, cols, i0, i0 / kLanes * kLanes, spec);
  PairCount st;
  st.pos = *size;
  std::size_t j = i0 / kLanes * kLanes;
  for (; j + 2 * kLanes <= cols.mp; j += 2 * kLanes) {
    v8d a[kRows], b[kRows];
    dots16(rows, cols, j, a, b);
    count_tile_v4(rows, cols, i0, j, a, spec, st, kept);
    count_tile_v4(rows, cols, i0, j + kLanes, b, spec, st, kept);
  }
  for (; j < cols.mp; j += kLanes) {
    v8d a[kRows];
    dots8(rows, cols, j, a);
    count_tile_v4(rows, cols, i0, j, a, spec, st, kept);
  }
  *size = st.pos;
  *below += st.edge_count;
}

}  // namespace isa_v4
#pragma GCC pop_options
#endif

using CountPairsBlock = void (*)(const RowBlock&, const Columns&, std::size_t, const CountSpec&, std::uint64_t*,
                                 std::vector<double>&, std::size_t*);

/// The median counting pass for this processor: the AVX-512 one where there is
/// AVX-512, else the multi-versioned one (the same counts and values either way).
CountPairsBlock pick_count_pairs_block() {
#ifdef BOLTZLAB_COUNT_DISPATCH
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return isa_v4::count_pairs_block;
#endif
  return count_pairs_block;
}

/// KSD row sums for the 4 rows i0..i0+3: rowsum[r] = Σ_{j>i} u(x_i, x_j).
/// xs/sx columns: the transposed positions and scores; self_xs[j] = x_j·s_j.
BOLTZLAB_MULTIVERSION
void ksd_block(const RowBlock& xrows, const RowBlock& srows, const Columns& xcols, const Columns& scols,
               const double* self_xs, std::size_t i0, std::size_t n, double c2, double* rowsum) {
  const std::size_t d = xcols.d;
  v8d total[kRows];
  for (std::size_t r = 0; r < kRows; ++r) total[r] = splat(0.0);
  const v8d vc2 = splat(c2), vd = splat(static_cast<double>(d));
  for (std::size_t j = i0 / kLanes * kLanes; j < xcols.mp; j += kLanes) {
    v8d xx[kRows], ss[kRows], xs[kRows], sx[kRows];
    for (std::size_t r = 0; r < kRows; ++r) xx[r] = ss[r] = xs[r] = sx[r] = splat(0.0);
    for (std::size_t k = 0; k < d; ++k) {
      const v8d yx = load(xcols.panel(j) + k * Columns::kPanel);
      const v8d ys = load(scols.panel(j) + k * Columns::kPanel);
      for (std::size_t r = 0; r < kRows; ++r) {
        const v8d xr = BOLTZLAB_SPLAT(xrows.x[r][k]), sr = BOLTZLAB_SPLAT(srows.x[r][k]);
        xx[r] += xr * yx;
        ss[r] += sr * ys;
        xs[r] += xr * ys;
        sx[r] += sr * yx;
      }
    }
    const v8d self_j = load(self_xs + j);
    for (std::size_t r = 0; r < kRows; ++r) {
      const std::size_t i = i0 + r;
      const v8d r2 = sq_dist(xrows.norm[r], xcols.norms.data() + j, xx[r]);
      const v8d q = vc2 + r2;
      const v8d k = splat(1.0) / vsqrt(q);
      const v8d kq = k / q;
      // (s_i − s_j)·(x_i − x_j) = s_i·x_i − s_i·x_j − x_i·s_j + s_j·x_j
      const v8d g = (splat(srows.norm[r]) - sx[r]) - xs[r] + self_j;
      const v8d u = k * ss[r] + kq * g + vd * kq - splat(3.0) * r2 * kq / q;
      if (j > i && j + kLanes <= n) {  // every pair of the tile counts
        total[r] += u;
        continue;
      }
      double ua[kLanes];
      store(ua, u);
      for (std::size_t l = 0; l < kLanes; ++l) {
        const std::size_t jl = j + l;
        if (!(jl > i && jl < n)) ua[l] = 0.0;
      }
      total[r] += load(ua);
    }
  }
  for (std::size_t r = 0; r < kRows; ++r) {
    double t[kLanes];
    store(t, total[r]);
    double s = 0.0;
    for (std::size_t l = 0; l < kLanes; ++l) s += t[l];
    rowsum[r] = s;
  }
}

}  // namespace kernel_detail

namespace {
using namespace kernel_detail;

std::size_t rows_of(const RowMatrix& m) { return static_cast<std::size_t>(m.rows()); }
std::size_t cols_of(const RowMatrix& m) { return static_cast<std::size_t>(m.cols()); }

/// Register block of rows i0..i0+3 of x (rows past the end read `zeros`).
RowBlock row_block(const RowMatrix& x, const std::vector<double>& norms, std::size_t i0,
                   const std::vector<double>& zeros) {
  RowBlock b;
  const std::size_t n = rows_of(x);
  for (std::size_t r = 0; r < kRows; ++r) {
    const std::size_t i = i0 + r;
    b.x[r] = i < n ? x.row(static_cast<Eigen::Index>(i)).data() : zeros.data();
    b.norm[r] = i < n ? norms[i] : 0.0;
  }
  return b;
}

std::vector<double> row_norms(const RowMatrix& x) {
  std::vector<double> out(rows_of(x));
  for (std::size_t i = 0; i < out.size(); ++i) {
    const double* row = x.row(static_cast<Eigen::Index>(i)).data();
    double s = 0.0;
    for (std::size_t k = 0; k < cols_of(x); ++k) s += row[k] * row[k];
    out[i] = s;
  }
  return out;
}

constexpr std::size_t kGroupsPerTask = 4;  // 16 rows per oneTBB task

/// Where the median of the full N×N matrix of squared distances falls among the
/// P = N(N−1)/2 pair values t_(0) ≤ … ≤ t_(P−1) (pairs j > i). The sorted matrix is:
/// N zeros, then each t_(m) twice; its one or two middle entries map to pair ranks
/// r1 ≤ r2, where −1 stands for a diagonal zero.
struct MedianRanks {
  std::ptrdiff_t r1 = -1, r2 = -1;
  bool odd = false;  ///< N² odd: one middle entry (r1 = r2)
  std::size_t first() const { return static_cast<std::size_t>(r1 < 0 ? r2 : r1); }
  std::size_t last() const { return static_cast<std::size_t>(r2); }
};

MedianRanks median_ranks(std::size_t n) {
  const std::size_t total = n * n;
  auto pair_rank = [&](std::size_t p) -> std::ptrdiff_t { return p < n ? -1 : static_cast<std::ptrdiff_t>((p - n) / 2); };
  MedianRanks m;
  m.odd = total % 2 != 0;
  m.r2 = pair_rank(total / 2);
  m.r1 = m.odd ? m.r2 : pair_rank(total / 2 - 1);
  return m;
}

/// Squared distances [lo, hi] that bracket pair ranks first..last.
struct Bracket {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
};

std::array<double, 2> order_statistics(std::vector<double>& values, std::size_t k1, std::size_t k2, double lo,
                                       double hi);

/// Floyd & Rivest (1975) pivots from a fixed pseudo-random sample of pairs: they
/// bracket ranks first..last with overwhelming probability. Few pairs: (−∞, +∞).
/// Sample size: about 1.6 % of the pairs (at most 2^16), so that the bracket holds ~1–6 %
/// of them; drawn in chunks of 1024 pairs, chunk c from its own random stream, in
/// parallel (the same sample for any thread count).
Bracket sample_bracket(const RowMatrix& x, std::size_t first, std::size_t last, Execution exec) {
  const std::size_t n = rows_of(x), pairs = n * (n - 1) / 2;
  constexpr std::size_t kChunk = 1 << 10;
  const std::size_t sample_size =
      std::min<std::size_t>(1 << 16, std::max<std::size_t>(1 << 12, pairs / 64)) / kChunk * kChunk;
  Bracket bracket;
  if (pairs <= 16 * (1 << 12)) return bracket;
  std::vector<double> sample(sample_size);
  for_each_index(
      sample_size / kChunk,
      [&](std::size_t c) {
        Rng rng(0x6d656469616eULL, c);
        std::array<std::uint32_t, 2 * kChunk> ij;
        auto index = [&] {  // uniform on [0, n): the high word of a 64 × 64-bit product
          return static_cast<std::uint32_t>((static_cast<unsigned __int128>(rng()) * n) >> 64);
        };
        for (std::size_t t = 0; t < kChunk; ++t) {
          do {
            ij[2 * t] = index();
            ij[2 * t + 1] = index();
          } while (ij[2 * t] == ij[2 * t + 1]);
        }
        pair_squared_distances(x.data(), cols_of(x), ij.data(), kChunk, sample.data() + c * kChunk);
      },
      exec);
  auto sample_rank = [&](double rank_fraction, double shift) {
    const double s = static_cast<double>(sample_size);
    const double centre = rank_fraction * s;
    const double spread = 5.0 * std::sqrt(s * rank_fraction * (1.0 - rank_fraction)) + 16.0;
    return static_cast<std::size_t>(std::min(s - 1.0, std::max(0.0, centre + shift * spread)));
  };
  const double unbounded = std::numeric_limits<double>::infinity();
  const std::array<double, 2> t =
      order_statistics(sample, sample_rank((static_cast<double>(first) + 0.5) / static_cast<double>(pairs), -1.0),
                       sample_rank((static_cast<double>(last) + 0.5) / static_cast<double>(pairs), +1.0),
                       -unbounded, unbounded);
  bracket.lo = t[0];
  bracket.hi = t[1];
  return bracket;
}

/// One pass over the pairs (i, j > i) of the rows `rows` (no O(N²) storage unless D² is
/// kept): the number of pair values below lo (an integer count: exact, whatever the
/// scheduling) and the values in [lo, hi].
struct BracketCount {
  std::uint64_t below = 0;
  std::vector<double> kept;
};

BracketCount count_in_bracket(const RowMatrix& x, const Columns& cols, RowRange rows, const CountSpec& spec,
                              Execution exec) {
  struct Kept {
    std::vector<double> values;
    std::size_t size = 0;
    std::uint64_t below = 0;
  };
  const std::vector<double> zeros(cols_of(x) + 1, 0.0);
  const std::size_t groups = (rows.size() + kRows - 1) / kRows;
  tbb::enumerable_thread_specific<Kept> local;
  static const CountPairsBlock count_block = pick_count_pairs_block();
  for_each_block(
      groups, 1,
      [&](std::size_t gb, std::size_t ge) {
        Kept& k = local.local();
        for (std::size_t g = gb; g < ge; ++g) {
          const std::size_t i0 = rows.begin + g * kRows;
          const RowBlock block = row_block(x, cols.norms, i0, zeros);
          count_block(block, cols, i0, spec, &k.below, k.values, &k.size);
        }
      },
      exec);
  BracketCount out;
  for (const Kept& k : local) {
    out.below += k.below;
    out.kept.insert(out.kept.end(), k.values.begin(), k.values.begin() + static_cast<std::ptrdiff_t>(k.size));
  }
  return out;
}

/// Sizes *keep for the rows `rows` of D² (N ≤ kMaxKeptPairDistances) and returns its
/// storage; null when nothing is to be kept.
double* prepare_kept(PairDistances* keep, std::size_t n, RowRange rows) {
  if (!keep || n > kMaxKeptPairDistances) return nullptr;
  const std::size_t stride = (n + kLanes - 1) / kLanes * kLanes, count = rows.size();
  if (keep->d2.size() != count * stride) {
    keep->d2.assign(count * stride, 0.0);
  } else {  // reused storage: every entry below N is overwritten; zero the padding
    for (std::size_t r = 0; r < count; ++r)
      std::fill(keep->d2.begin() + static_cast<std::ptrdiff_t>(r * stride + n),
                keep->d2.begin() + static_cast<std::ptrdiff_t>((r + 1) * stride), 0.0);
  }
  keep->n = n;
  keep->row_begin = rows.begin;
  keep->rows = count;
  keep->stride = stride;
  keep->upper = rows.begin == 0 && rows.end == n;  // one process: the upper triangle
  return keep->d2.data();
}

/// The order statistics k1 ≤ k2 of `values` (none NaN, all in [lo, hi]; infinite bounds:
/// the extremes of the values; the vector is reordered). A counting pass over B = size/16
/// equal bins of [lo, hi] first: the bin of v, ⌊(v − lo)·B/(hi − lo)⌋, never decreases as
/// v grows, so every value of a bin is ≤ every value of a later bin, and each rank lies in
/// the bin where the running count crosses it. Only that bin's values (about 16) are then
/// selected: exact, as a selection over all of them, in linear time with a small constant
/// (nth_element over every value cost a sixth of the median pass).
std::array<double, 2> order_statistics(std::vector<double>& values, std::size_t k1, std::size_t k2, double lo,
                                       double hi) {
  const std::size_t size = values.size();
  const std::size_t bins = std::min<std::size_t>(1 << 16, size / 16);
  if ((!std::isfinite(lo) || !std::isfinite(hi)) && size > 0) {  // no finite bounds given: the extremes
    const Eigen::Map<const Eigen::ArrayXd> all(values.data(), static_cast<Eigen::Index>(size));
    lo = all.minCoeff();
    hi = all.maxCoeff();
  }
  const double scale = static_cast<double>(bins) / (hi - lo);
  auto select = [](std::vector<double>& v, std::size_t k1, std::size_t k2) -> std::array<double, 2> {
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k1), v.end());
    const double t1 = v[k1];
    if (k2 == k1) return {t1, t1};
    // After the selection of k1 every value past it is ≥ t1.
    std::nth_element(v.begin() + static_cast<std::ptrdiff_t>(k1) + 1, v.begin() + static_cast<std::ptrdiff_t>(k2),
                     v.end());
    return {t1, v[k2]};
  };
  if (bins < 64 || !std::isfinite(scale) || !(scale > 0)) return select(values, k1, k2);
  const std::size_t last_bin = bins - 1;
  const auto bin_of = [lo, scale, last_bin](double v) {
    return std::min(last_bin, static_cast<std::size_t>((v - lo) * scale));
  };
  std::vector<std::uint32_t> counts(bins, 0);
  for (const double v : values) ++counts[bin_of(v)];
  std::size_t b1 = 0, before1 = 0;
  while (before1 + counts[b1] <= k1) before1 += counts[b1++];
  std::size_t b2 = b1, before2 = before1;
  while (before2 + counts[b2] <= k2) before2 += counts[b2++];
  // The values of bin b (count c), in a vector of their own; branch-free copy, stopping
  // once all are found.
  auto values_of_bin = [&](std::size_t b, std::size_t c) {
    std::vector<double> part(c);
    std::size_t used = 0;
    for (const double v : values) {
      part[used] = v;
      used += static_cast<std::size_t>(bin_of(v) == b);
      if (used == c) break;
    }
    return part;
  };
  std::vector<double> first = values_of_bin(b1, counts[b1]);
  if (b2 == b1) return select(first, k1 - before1, k2 - before1);
  std::vector<double> second = values_of_bin(b2, counts[b2]);
  return {select(first, k1 - before1, k1 - before1)[0], select(second, k2 - before2, k2 - before2)[0]};
}

std::uint64_t bits_of(double v) {
  std::uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}
double double_of(std::uint64_t b) {
  double v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

/// Adjacent order statistics k and k + 1 in different bins [first, first + width) and
/// [second, second + width) of bit patterns (the bins between them empty): the largest
/// value of the first bin and the smallest of the second, over all ranks.
std::array<double, 2> split_bins(const std::vector<double>& kept, std::uint64_t first, std::uint64_t second,
                                 std::uint64_t width, const MedianShare& share) {
  double largest = -1.0, smallest = std::numeric_limits<double>::infinity();  // values are ≥ 0
  for (const double v : kept) {
    const std::uint64_t b = bits_of(v);
    if (b >= first && b - first < width) largest = std::max(largest, v);
    if (b >= second && b - second < width) smallest = std::min(smallest, v);
  }
  const std::vector<double> all = share.gather({largest, smallest});
  for (std::size_t r = 0; r + 1 < all.size(); r += 2) {
    largest = std::max(largest, all[r]);
    smallest = std::min(smallest, all[r + 1]);
  }
  return {largest, smallest};
}

/// The order statistics k1 ≤ k2 ≤ k1 + 1 of the union of every rank's `kept` values,
/// all in the bracket [lo, hi] and ≥ +0, so that their bit patterns, as unsigned
/// integers, sort as the values. The candidates are the values whose bits lie in
/// [from, to]; while more than kGatherAtMost of them are left (over all ranks), a round
/// sums the ranks' counts of them in 256 equal bins of [from, to] and narrows it to the
/// bin holding ranks k1 and k2 (or, in two bins, ends with split_bins). Then the
/// candidates are gathered and selected on every rank. Exact: counts are integers.
std::array<double, 2> select_over_ranks(const std::vector<double>& kept, Bracket bracket,
                                        std::array<std::uint64_t, 2> k, std::uint64_t candidates,
                                        const MedianShare& share) {
  constexpr std::uint64_t kBins = 256, kGatherAtMost = 1 << 14;
  std::uint64_t from = bits_of(std::max(bracket.lo, 0.0)), to = bits_of(bracket.hi);
  std::vector<double> counts(kBins);
  while (candidates > kGatherAtMost) {
    const std::uint64_t width = ((to - from) >> 8) + 1;  // (to − from)/width < 256 bins
    std::fill(counts.begin(), counts.end(), 0.0);
    for (const double v : kept) {
      const std::uint64_t b = bits_of(v);
      if (b >= from && b <= to) counts[(b - from) / width] += 1.0;
    }
    share.sum(counts.data(), counts.size());
    std::array<std::uint64_t, 2> bin{kBins, kBins};
    std::uint64_t before = 0, before_first = 0;
    for (std::uint64_t i = 0; i < kBins; ++i) {
      const auto c = static_cast<std::uint64_t>(counts[i]);
      for (std::size_t t = 0; t < 2; ++t)
        if (bin[t] == kBins && k[t] < before + c) {
          bin[t] = i;
          if (t == 0) before_first = before;
        }
      before += c;
    }
    if (bin[1] == kBins) throw DomainError("median_squared_distance: the ranks' pair counts do not add up");
    candidates = 0;
    for (std::uint64_t i = bin[0]; i <= bin[1]; ++i) candidates += static_cast<std::uint64_t>(counts[i]);
    k = {k[0] - before_first, k[1] - before_first};
    if (width == 1) return {double_of(from + bin[0]), double_of(from + bin[1])};  // one value per bin
    if (bin[0] != bin[1]) return split_bins(kept, from + bin[0] * width, from + bin[1] * width, width, share);
    from += bin[0] * width;
    to = std::min(to, from + width - 1);
  }
  std::vector<double> mine;
  for (const double v : kept) {
    const std::uint64_t b = bits_of(v);
    if (b >= from && b <= to) mine.push_back(v);
  }
  std::vector<double> all = share.gather(mine);
  if (all.size() != candidates || k[1] >= candidates) {
    throw DomainError("median_squared_distance: the ranks' pair counts do not add up");
  }
  return order_statistics(all, static_cast<std::size_t>(k[0]), static_cast<std::size_t>(k[1]), double_of(from),
                          double_of(to));
}

}  // namespace

RowRange RowRange::clamp(std::size_t n) const {
  const RowRange r{begin, std::min(end, n)};
  if (r.begin > r.end) {
    throw DomainError("row range [" + std::to_string(begin) + ", " + std::to_string(end) + ") is past the " +
                      std::to_string(n) + " rows");
  }
  return r;
}

RowRange pair_row_share(std::size_t n, int rank, int ranks) {
  if (ranks < 1 || rank < 0 || rank >= ranks) {
    throw DomainError("pair_row_share: rank " + std::to_string(rank) + " of " + std::to_string(ranks));
  }
  const std::uint64_t total = static_cast<std::uint64_t>(n) * (n - (n > 0 ? 1 : 0)) / 2;
  auto boundary = [&](int r) -> std::size_t {
    if (r == 0) return 0;
    if (r == ranks) return n;
    // Pairs (i, j > i) in the rows before b: b(N − 1) − b(b − 1)/2.
    for (std::size_t b = 0; b < n; b += kLanes) {
      const std::uint64_t before = static_cast<std::uint64_t>(b) * (n - 1) - static_cast<std::uint64_t>(b) * (b - (b > 0 ? 1 : 0)) / 2;
      if (before * static_cast<std::uint64_t>(ranks) >= static_cast<std::uint64_t>(r) * total) return b;
    }
    return n;
  };
  return {boundary(rank), boundary(rank + 1)};
}

double median_squared_distance(const RowMatrix& x, Execution exec, PairDistances* keep, const MedianShare& share) {
  const std::size_t n = rows_of(x);
  if (n < 2) throw DomainError("median_squared_distance: needs at least 2 particles, got " + std::to_string(n));
  if (keep) keep->clear();
  const RowRange rows = share.rows.clamp(n);
  const bool whole = rows.begin == 0 && rows.end == n;
  const bool over_ranks = share.sum && share.gather;
  if (!whole && !over_ranks) {
    throw DomainError("median_squared_distance: a share of the rows needs a sum and a gather over ranks");
  }
  const MedianRanks ranks = median_ranks(n);
  if (ranks.r2 < 0) return 0.0;  // the middle entries are diagonal zeros
  CountSpec spec;
  spec.n = n;
  spec.row_end = rows.end;
  spec.kept_d2 = prepare_kept(keep, n, rows);
  spec.kept_row0 = rows.begin;
  spec.rows_only = !whole;
  const std::size_t first = ranks.first(), last = ranks.last();
  // Exact selection by sampling: count the pairs below the sampled bracket, keep those
  // in it, and select the ranks exactly among the kept ones (over ranks: the counts
  // summed). If the bracket missed, the pass is repeated with (−∞, +∞). The value is the
  // exact order statistic, so it depends neither on the sample, nor on the thread
  // count, nor on the number of ranks.
  Bracket bracket = sample_bracket(x, first, last, exec);
  const Columns cols = transpose_columns(x);
  for (int attempt = 0; attempt < 2; ++attempt) {
    spec.lo = bracket.lo;
    spec.hi = bracket.hi;
    BracketCount count = count_in_bracket(x, cols, rows, spec, exec);
    double totals[2] = {static_cast<double>(count.below), static_cast<double>(count.kept.size())};
    if (over_ranks) share.sum(totals, 2);
    const auto below = static_cast<std::uint64_t>(totals[0]), inside = static_cast<std::uint64_t>(totals[1]);
    if (first < below || last >= below + inside) {  // bracket missed: gather everything
      bracket = Bracket{};
      continue;
    }
    const std::array<double, 2> t =
        over_ranks ? select_over_ranks(count.kept, bracket, {first - below, last - below}, inside, share)
                   : order_statistics(count.kept, first - below, last - below, bracket.lo, bracket.hi);
    if (ranks.r1 < 0) return 0.5 * t[0];  // N² even, middle entries: a diagonal zero and t_(r2)
    return last == first ? t[0] : 0.5 * (t[0] + t[1]);
  }
  throw DomainError("median_squared_distance: non-finite squared distances");
}

double median_heuristic_bandwidth2(const RowMatrix& x, Execution exec, PairDistances* keep, const MedianShare& share) {
  return 0.5 * median_squared_distance(x, exec, keep, share) / std::log(static_cast<double>(x.rows()) + 1.0);
}

void gaussian_kernel_sums(const RowMatrix& x, const RowMatrix& y, const RowMatrix& v, double c,
                          RowMatrix& out, Execution exec, RowRange rows) {
  const std::size_t n = rows_of(x), m = rows_of(y), d = cols_of(x), p = cols_of(v);
  if (cols_of(y) != d) {
    throw DomainError("gaussian_kernel_sums: x has " + std::to_string(d) + " columns but y has " +
                      std::to_string(cols_of(y)));
  }
  if (rows_of(v) != m) {
    throw DomainError("gaussian_kernel_sums: v has " + std::to_string(rows_of(v)) + " rows but y has " +
                      std::to_string(m));
  }
  if (!(c >= 0) || !std::isfinite(c)) {
    throw DomainError("gaussian_kernel_sums: c is " + std::to_string(c) + ", but must be finite and >= 0");
  }
  const RowRange range = rows.clamp(n);
  out.resize(static_cast<Eigen::Index>(range.size()), static_cast<Eigen::Index>(p));
  if (range.size() == 0 || p == 0) return;
  const Columns cols = transpose_columns(y);
  const std::size_t pp = (p + kLanes - 1) / kLanes * kLanes;
  std::vector<double> vpad(cols.mp * pp, 0.0);
  for (std::size_t j = 0; j < m; ++j)
    for (std::size_t q = 0; q < p; ++q) vpad[j * pp + q] = v(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(q));
  const std::vector<double> norms = row_norms(x);
  const std::vector<double> zeros(d + 1, 0.0);
  // Groups of 4 rows from range.begin: a row's sums do not depend on its neighbours.
  const std::size_t groups = (range.size() + kRows - 1) / kRows;
  for_each_block(
      groups, kGroupsPerTask,
      [&](std::size_t gb, std::size_t ge) {
        std::vector<double> acc(kRows * pp), ktile(kRows * kColBlock);
        for (std::size_t g = gb; g < ge; ++g) {
          const std::size_t i0 = range.begin + g * kRows;
          const RowBlock block = row_block(x, norms, i0, zeros);
          kernel_sums_block(block, cols, vpad.data(), pp, c, acc.data(), ktile.data());
          for (std::size_t r = 0; r < kRows && i0 + r < range.end; ++r) {
            const auto i = static_cast<Eigen::Index>(i0 + r - range.begin);
            for (std::size_t q = 0; q < p; ++q) out(i, static_cast<Eigen::Index>(q)) = acc[r * pp + q];
          }
        }
      },
      exec);
}

void gaussian_kernel_sums(const PairDistances& pairs, const RowMatrix& v, double c, RowMatrix& out, Execution exec,
                          RowRange rows) {
  const std::size_t n = pairs.n, p = cols_of(v);
  if (pairs.empty() || rows_of(v) != n) {
    throw DomainError("gaussian_kernel_sums: v has " + std::to_string(rows_of(v)) + " rows but the kept distances are " +
                      std::to_string(n) + "x" + std::to_string(n) + (pairs.empty() ? " (none kept)" : ""));
  }
  if (!(c >= 0) || !std::isfinite(c)) {
    throw DomainError("gaussian_kernel_sums: c is " + std::to_string(c) + ", but must be finite and >= 0");
  }
  if (pairs.kernel_c >= 0 && pairs.kernel_c != c) {
    throw DomainError("gaussian_kernel_sums: the kept kernel values are for c = " + std::to_string(pairs.kernel_c) +
                      ", not " + std::to_string(c));
  }
  const RowRange range = rows.all() ? RowRange{pairs.row_begin, pairs.row_begin + pairs.rows} : rows.clamp(n);
  if (range.begin < pairs.row_begin || range.end > pairs.row_begin + pairs.rows) {
    throw DomainError("gaussian_kernel_sums: rows [" + std::to_string(range.begin) + ", " + std::to_string(range.end) +
                      ") are not among the kept rows [" + std::to_string(pairs.row_begin) + ", " +
                      std::to_string(pairs.row_begin + pairs.rows) + ")");
  }
  out.resize(static_cast<Eigen::Index>(range.size()), static_cast<Eigen::Index>(p));
  if (p == 0 || range.size() == 0) return;
  const std::size_t mp = pairs.stride, pp = (p + kLanes - 1) / kLanes * kLanes;
  std::vector<double> vpad(mp * pp, 0.0);
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t q = 0; q < p; ++q) vpad[j * pp + q] = v(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(q));
  const std::vector<double> zeros(mp, 0.0);
  // Blocks of 4 rows from range.begin; from a multiple of 4 for the upper triangle (so
  // that a block's rows share their first written column). A row's sums do not depend
  // on its block.
  const std::size_t first = pairs.upper ? range.begin / kRows * kRows : range.begin;
  const std::size_t groups = (range.end - first + kRows - 1) / kRows;
  for_each_block(
      groups, kGroupsPerTask,
      [&](std::size_t gb, std::size_t ge) {
        std::vector<double> acc(kRows * pp), ktile(2 * kRows * kColBlock);
        for (std::size_t g = gb; g < ge; ++g) {
          const std::size_t i0 = first + g * kRows;
          const double* d2rows[kRows];
          for (std::size_t r = 0; r < kRows; ++r) {
            const std::size_t i = i0 + r;
            d2rows[r] = i < pairs.row_begin + pairs.rows ? pairs.d2.data() + (i - pairs.row_begin) * mp : zeros.data();
          }
          kernel_sums_block_kept(d2rows, pairs.d2.data(), pairs.upper, pairs.kernel_c >= 0, i0, mp, vpad.data(), pp, c,
                                 acc.data(), ktile.data());
          for (std::size_t r = 0; r < kRows; ++r) {
            const std::size_t i = i0 + r;
            if (i < range.begin || i >= range.end) continue;
            for (std::size_t q = 0; q < p; ++q)
              out(static_cast<Eigen::Index>(i - range.begin), static_cast<Eigen::Index>(q)) = acc[r * pp + q];
          }
        }
      },
      exec);
}

void to_gaussian_kernel(PairDistances& pairs, double c, Execution exec) {
  if (pairs.empty()) throw DomainError("to_gaussian_kernel: no squared distances are kept");
  if (pairs.kernel_c >= 0) throw DomainError("to_gaussian_kernel: the kept values already are kernel values");
  if (!(c >= 0) || !std::isfinite(c)) {
    throw DomainError("to_gaussian_kernel: c is " + std::to_string(c) + ", but must be finite and >= 0");
  }
  // The written part of each kept row: from ⌊i/8⌋·8 for the upper triangle.
  for_each_block(
      pairs.rows, 8,
      [&](std::size_t rb, std::size_t re) {
        for (std::size_t r = rb; r < re; ++r) {
          const std::size_t i = pairs.row_begin + r, first = pairs.upper ? i / kLanes * kLanes : 0;
          // The sums' exp of the sums' product −c·D²: the same bits as computed on the fly.
          exp_in_place(pairs.d2.data() + r * pairs.stride + first, pairs.stride - first, -c);
        }
      },
      exec);
  pairs.kernel_c = c;
}

void gaussian_kernel_sums_reference(const RowMatrix& x, const RowMatrix& y, const RowMatrix& v, double c,
                                    RowMatrix& out) {
  out = RowMatrix::Zero(x.rows(), v.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index j = 0; j < y.rows(); ++j) {
      const double k = std::exp(-c * (x.row(i) - y.row(j)).squaredNorm());
      out.row(i) += k * v.row(j);
    }
}

double KsdResult::ksd() const { return std::sqrt(std::max(v_statistic, 0.0)); }

void KsdOptions::validate() const {
  if (!(c > 0) || !std::isfinite(c)) throw ConfigError("ksd: c is " + std::to_string(c) + ", but must be > 0");
}

namespace {
double ksd_pair(const double* xi, const double* xj, const double* si, const double* sj, std::size_t d,
                double c2) {
  double r2 = 0, ss = 0, g = 0;
  for (std::size_t k = 0; k < d; ++k) {
    const double r = xi[k] - xj[k];
    r2 += r * r;
    ss += si[k] * sj[k];
    g += (si[k] - sj[k]) * r;
  }
  const double q = c2 + r2, k = 1.0 / std::sqrt(q), kq = k / q;
  return k * ss + kq * g + static_cast<double>(d) * kq - 3.0 * r2 * kq / q;
}
}  // namespace

std::vector<double> ksd_row_sums(const RowMatrix& x, const RowMatrix& scores, const KsdOptions& options,
                                 Execution exec, RowRange rows) {
  options.validate();
  const std::size_t n = rows_of(x), d = cols_of(x);
  if (rows_of(scores) != n || cols_of(scores) != d) {
    throw DomainError("ksd: scores are " + std::to_string(scores.rows()) + "x" + std::to_string(scores.cols()) +
                      " but positions are " + std::to_string(n) + "x" + std::to_string(d));
  }
  if (n < 2) throw DomainError("ksd: needs at least 2 particles, got " + std::to_string(n));
  const RowRange range = rows.clamp(n);
  const double c2 = options.c * options.c;
  const Columns xcols = transpose_columns(x), scols = transpose_columns(scores);
  std::vector<double> self_xs(xcols.mp, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    self_xs[i] = x.row(static_cast<Eigen::Index>(i)).dot(scores.row(static_cast<Eigen::Index>(i)));
  const std::vector<double> zeros(d + 1, 0.0);
  // The groups of 4 rows of one process (from a multiple of 4), so that every row's
  // tiles start at the same column whatever the range.
  const std::size_t g0 = range.begin / kRows, g1 = (range.end + kRows - 1) / kRows;
  std::vector<double> rowsum((g1 - g0) * kRows, 0.0);
  for_each_block(
      g1 - g0, 1,
      [&](std::size_t gb, std::size_t ge) {
        for (std::size_t g = gb; g < ge; ++g) {
          const std::size_t i0 = (g0 + g) * kRows;
          RowBlock xr = row_block(x, xcols.norms, i0, zeros);
          // For the score rows, RowBlock::norm carries x_i·s_i (used in g).
          RowBlock sr = row_block(scores, self_xs, i0, zeros);
          ksd_block(xr, sr, xcols, scols, self_xs.data(), i0, n, c2, rowsum.data() + g * kRows);
        }
      },
      exec);
  const auto from = rowsum.begin() + static_cast<std::ptrdiff_t>(range.begin - g0 * kRows);
  return std::vector<double>(from, from + static_cast<std::ptrdiff_t>(range.size()));
}

KsdResult ksd_from_row_sums(const std::vector<double>& row_sums, const RowMatrix& scores, const KsdOptions& options) {
  options.validate();
  const std::size_t n = rows_of(scores), d = cols_of(scores);
  if (row_sums.size() != n) {
    throw DomainError("ksd: " + std::to_string(row_sums.size()) + " row sums for " + std::to_string(n) + " particles");
  }
  if (n < 2) throw DomainError("ksd: needs at least 2 particles, got " + std::to_string(n));
  const double c2 = options.c * options.c;
  double off = 0.0, diag = 0.0;
  for (std::size_t i = 0; i < n; ++i) off += row_sums[i];
  // u(x,x) = |s|²/c + d/c³.
  for (std::size_t i = 0; i < n; ++i)
    diag += scores.row(static_cast<Eigen::Index>(i)).squaredNorm() / options.c +
            static_cast<double>(d) / (c2 * options.c);
  const double nn = static_cast<double>(n);
  KsdResult res;
  res.u_statistic = 2.0 * off / (nn * (nn - 1.0));
  res.v_statistic = (2.0 * off + diag) / (nn * nn);
  return res;
}

KsdResult kernel_stein_discrepancy(const RowMatrix& x, const RowMatrix& scores, const KsdOptions& options,
                                   Execution exec) {
  return ksd_from_row_sums(ksd_row_sums(x, scores, options, exec), scores, options);
}

KsdResult kernel_stein_discrepancy(const RowMatrix& x, const Target& target, double beta,
                                   const KsdOptions& options, Execution exec) {
  if (cols_of(x) != target.dim()) {
    throw DomainError("ksd: particles have " + std::to_string(x.cols()) + " coordinates, but target '" +
                      target.name() + "' has dimension " + std::to_string(target.dim()));
  }
  Eigen::VectorXd u;
  RowMatrix grad;
  const BatchStats stats = target.evaluate_batch(x, u, &grad, exec);
  if (stats.non_finite > 0) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    return KsdResult{nan, nan};
  }
  grad *= -beta;
  return kernel_stein_discrepancy(x, grad, options, exec);
}

KsdResult kernel_stein_discrepancy_reference(const RowMatrix& x, const RowMatrix& scores,
                                             const KsdOptions& options) {
  const std::size_t n = rows_of(x), d = cols_of(x);
  const double c2 = options.c * options.c;
  double off = 0.0, diag = 0.0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      const double u = ksd_pair(x.row(static_cast<Eigen::Index>(i)).data(), x.row(static_cast<Eigen::Index>(j)).data(),
                                scores.row(static_cast<Eigen::Index>(i)).data(),
                                scores.row(static_cast<Eigen::Index>(j)).data(), d, c2);
      (i == j ? diag : off) += u;
    }
  const double nn = static_cast<double>(n);
  return KsdResult{off / (nn * (nn - 1.0)), (off + diag) / (nn * nn)};
}

}  // namespace boltzlab
