#pragma once
/// \file kernels.hpp
/// O(N²d) kernel sums shared by the interacting-particle flows (SVGD, blob-method KL
/// flow, MMD flow) and the kernel Stein discrepancy.
///
/// Performance and determinism design:
///  - positions are row-major (particle i contiguous); each call packs the "column"
///    particles transposed and zero-padded in panels of 16 (as a GEMM packs its
///    right-hand side) so that the pair loop vectorizes over j (8 doubles per vector)
///    with register blocking over 4 rows i — a small GEMM micro-kernel with the
///    distance, exp and accumulation fused into its epilogue;
///  - squared distances use precomputed norms: |x−y|² = (|x|²+|y|²) − 2 x·y (clamped ≥ 0),
///    which is bitwise symmetric in (x, y);
///  - the hot loops are compiled for AVX-512, AVX2 and baseline x86-64 (GCC function
///    multi-versioning, chosen once at load time), so the library needs no -march flag;
///  - parallel over blocks of rows with oneTBB; every output row is computed by one
///    task in a fixed j order, and scalar results are per-row partial sums combined
///    serially in index order: bit-identical for any thread count (and Execution);
///  - symmetry is used where it pays: the median pass and the KSD visit only pairs
///    j > i. The kernel-sum pass does not: mirroring a pair into row j from the task
///    owning row i would need atomics (non-deterministic) or an N×N buffer;
///  - for SVGD and blob (kernel sums over the particles themselves, right after the
///    exact-median pass) the median pass keeps the squared distances it computes when d
///    is large enough that the dot products outweigh a memory read (PairDistances): the
///    upper triangle, row by row, which the kernel sums read (the lower triangle
///    transposed, 2 × 4 blocks) instead of recomputing the dot products — same values,
///    bit for bit. Once the bandwidth is known, the kept values become kernel values in
///    place (to_gaussian_kernel), so each pair's exp is evaluated once, not once per
///    row and per sum;
///  - the median is an exact selection: a sampled bracket, one counting pass that keeps
///    the values inside it, and a counting pass over bins of the bracket that leaves a
///    handful of values to select among;
///  - over MPI ranks (the callers in flows/interacting.* and the flows) every pass takes
///    a RowRange: a rank computes the output rows of its own block, each row by the same
///    arithmetic in the same j order as on one process, so gathering the rows gives the
///    one-process bits. The exact median counts the pairs of a rank's rows and combines
///    integer counts over the ranks (MedianShare), so it is the same double on any number
///    of ranks.
#include <cstddef>
#include <functional>
#include <limits>
#include <vector>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab {

/// The rows [begin, end) of an N-row matrix that a pass computes (an MPI rank's block);
/// the default is every row (end is clamped to N).
struct RowRange {
  std::size_t begin = 0;
  std::size_t end = std::numeric_limits<std::size_t>::max();
  /// True for the default (every row, whatever N).
  bool all() const { return begin == 0 && end == std::numeric_limits<std::size_t>::max(); }
  /// [begin, min(end, n)). \throws DomainError when begin > min(end, n).
  RowRange clamp(std::size_t n) const;
  std::size_t size() const { return end - begin; }
};

/// A balanced share of the N(N−1)/2 pairs (i, j > i) for `rank` of `ranks`: contiguous
/// rows, in rank order (the shares of all ranks partition [0, N)), boundaries multiples
/// of 8 (so that row blocks are those of one process), each holding about
/// N(N−1)/(2·ranks) pairs. For the median pass and the KSD over ranks.
RowRange pair_row_share(std::size_t n, int rank, int ranks);

/// The squared distances D²_ij of pairs of rows of an N × d matrix x, kept by the
/// exact-median pass for the kernel sums that follow at the same positions (SVGD, blob):
/// those then skip their own O(N²d) dot products. Rows row_begin … row_begin + rows − 1
/// are kept (all N on one process; an MPI rank keeps only its own rows, for all j).
/// Entries are computed exactly as gaussian_kernel_sums(x, x, …) computes them,
/// (|x_i|² + |x_j|²) − 2 x_i·x_j clamped at 0 (bitwise symmetric), so sums from them are
/// bit-identical. One process keeps the upper triangle only (`upper`): row i holds the
/// columns j ≥ ⌊i/8⌋·8, and D²_ij for smaller j is read at (j, i) — half the memory
/// traffic of the median pass, which writes only contiguous row segments. A rank keeps
/// whole rows. Padding columns j ≥ N hold 0.
struct PairDistances {
  std::size_t n = 0;          ///< N: columns (0: nothing kept)
  std::size_t row_begin = 0;  ///< first kept row
  std::size_t rows = 0;       ///< number of kept rows
  std::size_t stride = 0;     ///< row stride: N rounded up to a multiple of 8
  bool upper = false;         ///< rows hold only the columns j ≥ ⌊i/8⌋·8 (one process)
  /// ≥ 0: the entries are Gaussian kernel values exp(−c·D²) for c = kernel_c
  /// (to_gaussian_kernel), padding columns 1; < 0: squared distances.
  double kernel_c = -1.0;
  std::vector<double> d2;     ///< rows × stride (storage reused by the next pass)
  bool empty() const { return n == 0; }
  void clear() {
    n = rows = row_begin = 0;
    kernel_c = -1.0;
  }
  /// The kept entry (i, j) — D²_ij, or its kernel value once kernel_c ≥ 0 — for kept
  /// rows i (any row j when `upper`, which keeps every row).
  double at(std::size_t i, std::size_t j) const {
    if (upper && j < i / 8 * 8) return d2[j * stride + i];
    return d2[(i - row_begin) * stride + j];
  }
};

/// Element-wise sum of `count` doubles over every rank taking part, in place, the same
/// on every rank (mpi::allreduce_sum). The median pass sums only integer counts (exact
/// below 2^53) with it.
using SumOverRanks = std::function<void(double* values, std::size_t count)>;
/// Every rank's `local` values concatenated in rank order, on every rank (mpi::allgatherv).
using GatherOverRanks = std::function<std::vector<double>(const std::vector<double>& local)>;

/// One rank's part of a distributed exact median: it counts the pairs (i, j > i) of
/// rows i in `rows`; the rows of all ranks must partition [0, N). `sum` and `gather`
/// combine the ranks' counts and candidate values; both empty: this process is the
/// only one (then `rows` must be every row).
struct MedianShare {
  RowRange rows;
  SumOverRanks sum;
  GatherOverRanks gather;
};

/// Largest N whose squared distances the median pass keeps (N² doubles: 32 MiB at 2048).
constexpr std::size_t kMaxKeptPairDistances = 2048;
/// Smallest dimension d at which keeping them pays: the dot products they save cost 2d
/// flops per pair, reading a kept value costs one 8-byte load (measured break-even ≈ 4).
constexpr std::size_t kMinDimKeptPairDistances = 8;

/// Exact median of the N² entries of the squared-distance matrix D²_ij = |x_i − x_j|²
/// (the N zero diagonal entries included, each off-diagonal pair counted twice) —
/// numpy.median(squareform(pdist(x))**2) as in the original SVGD code (Liu & Wang 2016).
/// Computed from the N(N−1)/2 pairs j > i by exact selection, so the value does not
/// depend on the algorithm or on the thread count. With `keep` non-null and
/// N ≤ kMaxKeptPairDistances, the pass also fills *keep with the rows share.rows of D²
/// (all j; else *keep is left empty).
/// Over ranks (share.sum set): the pairs are counted per rank, the counts below and
/// inside a sampled bracket are summed, and the order statistics are found by a
/// selection on the bit patterns of the values (non-negative doubles sort as their bit
/// patterns): 256-bin histograms of the candidates' bit range, summed over the ranks,
/// narrow the range until at most 2^14 candidates are left, which are gathered and
/// selected on every rank. Exact, so the result is the double one process gives;
/// usually one histogram round or none (two or three collectives per median).
/// \throws DomainError for N < 2.
double median_squared_distance(const RowMatrix& x, Execution exec = Execution::kParallel,
                               PairDistances* keep = nullptr, const MedianShare& share = {});

/// Median-heuristic squared bandwidth h² = ½ · median(D²) / log(N + 1), D² as in
/// median_squared_distance (the rule of the original SVGD code). 0 when all rows coincide.
/// `keep` as in median_squared_distance. \throws DomainError for N < 2.
double median_heuristic_bandwidth2(const RowMatrix& x, Execution exec = Execution::kParallel,
                                   PairDistances* keep = nullptr, const MedianShare& share = {});

/// Gaussian-kernel weighted sums
///   out_i = Σ_j exp(−c·|x_i − y_j|²) · v_j,   i < N (rows of x), j < M (rows of y),
/// with v an M×p matrix of per-column-particle weights (stack several weight vectors
/// as columns to get several sums in one pass). c ≥ 0 (c = 1/(2h²) for bandwidth h).
/// exp is a vectorized double-precision exp (max relative error 2.2e−16 vs std::exp,
/// measured on [−708, 0]);
/// arguments below −708 give 0. Only the rows i in `rows` are computed: out is resized
/// to rows.size() × p, out row r holding row rows.begin + r; each row is the same bits
/// whatever the range (one task, fixed j order).
/// Flops: N·M·(2d + 2p) multiply-adds counted as 2 flops each (plus N·M exp).
/// \throws DomainError on mismatched shapes, c < 0 or a range past N.
void gaussian_kernel_sums(const RowMatrix& x, const RowMatrix& y, const RowMatrix& v, double c,
                          RowMatrix& out, Execution exec = Execution::kParallel, RowRange rows = {});

/// gaussian_kernel_sums(x, x, v, c, out, exec, rows) from the squared distances of x kept
/// by the median pass (or the kernel values to_gaussian_kernel made of them for this c):
/// the same values, bit for bit, without the dot products (flops N²·2p). The default
/// `rows`: the kept rows. \throws DomainError when nothing is kept, v has not N rows,
/// c < 0, the kept kernel values are for another c, or `rows` are not all kept.
void gaussian_kernel_sums(const PairDistances& pairs, const RowMatrix& v, double c, RowMatrix& out,
                          Execution exec = Execution::kParallel, RowRange rows = {});

/// Turns the kept squared distances into Gaussian kernel values exp(−c·D²) in place (the
/// same exp, lane for lane, as the sums evaluate), for gaussian_kernel_sums(pairs, …) at
/// the same c: the sums then evaluate no exp — N²/2 exp per step for SVGD instead of N²,
/// and for the blob method's two sums instead of 2N². Parallel over rows.
/// \throws DomainError when nothing is kept, the values already are kernel values, or
/// c < 0 or not finite.
void to_gaussian_kernel(PairDistances& pairs, double c, Execution exec = Execution::kParallel);

/// Scalar reference of gaussian_kernel_sums (plain loops, std::exp, direct (x−y)²):
/// what the tests compare the fast path against.
void gaussian_kernel_sums_reference(const RowMatrix& x, const RowMatrix& y, const RowMatrix& v,
                                    double c, RowMatrix& out);

/// Kernel Stein discrepancy with the inverse multiquadric kernel
///   k(x, y) = (c² + |x − y|²)^{−1/2}   (Gorham & Mackey 2017, β = −1/2),
/// Stein kernel (Liu, Lee & Jordan 2016; Chwialkowski et al. 2016), s = ∇log π:
///   u(x,y) = s(x)ᵀs(y) k + s(x)ᵀ∇_y k + s(y)ᵀ∇_x k + tr ∇_x∇_y k.
/// With r = x − y, q = c² + |r|², k = q^{−1/2}: ∇_x k = −r k/q, ∇_y k = +r k/q,
/// tr ∇_x∇_y k = ∂_{x_a}(r_a k/q) = d k/q − 3|r|² k/q², hence
///   u(x,y) = k s(x)·s(y) + (k/q) (s(x) − s(y))·(x − y) + d k/q − 3 |r|² k/q².
/// E_{x,y~π iid} u(x,y) = 0, so the U-statistic is unbiased for KSD² = 0 at π; for
/// exact samples N·U converges to a weighted sum of centred χ²₁ (degenerate U-statistic),
/// i.e. U = O(1/N), and V = U·(N−1)/N + (mean of u(x_i,x_i))/N = O(1/N) as well.
struct KsdResult {
  double u_statistic = 0.0;  ///< KSD² U-statistic: Σ_{i≠j} u(x_i,x_j) / (N(N−1)); unbiased, may be < 0
  double v_statistic = 0.0;  ///< KSD² V-statistic: Σ_{i,j} u(x_i,x_j) / N² (≥ 0 up to roundoff)
  double ksd() const;        ///< √max(V, 0): the monitored "ksd" (V-statistic)
};

/// Options of the IMQ kernel Stein discrepancy.
struct KsdOptions {
  double c = 1.0;  ///< IMQ scale c > 0 (target length units)
  /// \throws ConfigError when c ≤ 0 or not finite.
  void validate() const;
};

/// KSD of the particles x (N×d) given their scores s_i = ∇log π(x_i) (N×d).
/// Visits each unordered pair once (u is symmetric); per-row partial sums are combined
/// in index order (thread-count independent):
/// ksd_from_row_sums(ksd_row_sums(x, scores, options, exec), scores, options).
/// \throws DomainError on shape mismatch or N < 2.
KsdResult kernel_stein_discrepancy(const RowMatrix& x, const RowMatrix& scores,
                                   const KsdOptions& options = {},
                                   Execution exec = Execution::kParallel);

/// The KSD's per-row partial sums Σ_{j>i} u(x_i, x_j) for the rows i in `rows` (a rank's
/// share, pair_row_share), in row order; each the same bits whatever the range.
/// \throws DomainError on shape mismatch, N < 2 or a range past N.
std::vector<double> ksd_row_sums(const RowMatrix& x, const RowMatrix& scores, const KsdOptions& options = {},
                                 Execution exec = Execution::kParallel, RowRange rows = {});

/// The KSD from all N per-row partial sums (ksd_row_sums over every row, or the ranks'
/// shares concatenated in row order), added in index order, and the diagonal terms.
/// \throws DomainError when row_sums has not N entries or N < 2.
KsdResult ksd_from_row_sums(const std::vector<double>& row_sums, const RowMatrix& scores,
                            const KsdOptions& options = {});

/// KSD of an ensemble against π_β ∝ exp(−β u) of `target`: evaluates the scores
/// s = −β∇u (one gradient per particle). Particles with non-finite u or ∇u make the
/// KSD meaningless: the result is then NaN in both fields (the caller reports it).
KsdResult kernel_stein_discrepancy(const RowMatrix& x, const Target& target, double beta = 1.0,
                                   const KsdOptions& options = {},
                                   Execution exec = Execution::kParallel);

/// KSD of an ensemble's positions against π ∝ exp(−β u) (convenience for the above).
inline KsdResult ksd(const Ensemble& ensemble, const Target& target, double beta = 1.0,
                     const KsdOptions& options = {}, Execution exec = Execution::kParallel) {
  return kernel_stein_discrepancy(ensemble.positions, target, beta, options, exec);
}

/// Scalar reference of the KSD (all N² ordered pairs, plain loops) for tests.
KsdResult kernel_stein_discrepancy_reference(const RowMatrix& x, const RowMatrix& scores,
                                             const KsdOptions& options = {});

}  // namespace boltzlab
