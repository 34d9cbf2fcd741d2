#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/flows/kernels.hpp"
#include "boltzlab/targets/gaussian.hpp"

using namespace boltzlab;

namespace {
RowMatrix normal_matrix(std::size_t n, std::size_t d, std::uint64_t seed, double scale = 1.0) {
  RowMatrix x(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  for (std::size_t i = 0; i < n; ++i) {
    Rng rng = stream_for(seed, i);
    for (std::size_t k = 0; k < d; ++k) x(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(k)) = scale * rng.normal();
  }
  return x;
}
bool bit_identical(const RowMatrix& a, const RowMatrix& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::equal(a.data(), a.data() + a.size(), b.data());
}

/// R simulated MPI ranks, one thread each: sum() adds every rank's values and hands
/// each rank the total, a barrier per call, as mpi::allreduce_sum does; so a rank runs
/// exactly the code of an MPI rank, with its own share of the rows.
class SimulatedRanks {
 public:
  explicit SimulatedRanks(int ranks) : ranks_(ranks) {}
  void sum(double* values, std::size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (arrived_ == 0) total_.assign(count, 0.0);
    for (std::size_t k = 0; k < count; ++k) total_[k] += values[k];
    const std::uint64_t round = round_;
    if (++arrived_ == ranks_) {
      result_ = total_;
      arrived_ = 0;
      ++round_;
      done_.notify_all();
    } else {
      done_.wait(lock, [&] { return round_ != round; });
    }
    std::copy(result_.begin(), result_.end(), values);
  }
  /// body(rank) on every rank, in parallel.
  void run(const std::function<void(int)>& body) {
    std::vector<std::thread> threads;
    for (int r = 0; r < ranks_; ++r) threads.emplace_back([&body, r] { body(r); });
    for (std::thread& t : threads) t.join();
  }
  /// Every rank's `local` concatenated in rank order, on every rank (mpi::allgatherv).
  std::vector<double> gather(int rank, const std::vector<double>& local) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (arrived_ == 0) pieces_.assign(static_cast<std::size_t>(ranks_), {});
    pieces_[static_cast<std::size_t>(rank)] = local;
    const std::uint64_t round = round_;
    if (++arrived_ == ranks_) {
      result_.clear();
      for (const std::vector<double>& p : pieces_) result_.insert(result_.end(), p.begin(), p.end());
      arrived_ = 0;
      ++round_;
      done_.notify_all();
    } else {
      done_.wait(lock, [&] { return round_ != round; });
    }
    return result_;
  }
  /// The share of `rank` of the rows `rows`, combined through this simulation.
  MedianShare share(int rank, RowRange rows) {
    return {rows, [this](double* values, std::size_t count) { sum(values, count); },
            [this, rank](const std::vector<double>& local) { return gather(rank, local); }};
  }

 private:
  int ranks_;
  std::mutex mutex_;
  std::condition_variable done_;
  int arrived_ = 0;
  std::uint64_t round_ = 0;
  std::vector<double> total_, result_;
  std::vector<std::vector<double>> pieces_;
};

/// [begin, end) of `rank` when n rows are split in contiguous blocks (as mpi::block_of).
RowRange block_rows(std::size_t n, int rank, int ranks) {
  const std::size_t base = n / static_cast<std::size_t>(ranks), extra = n % static_cast<std::size_t>(ranks);
  const std::size_t r = static_cast<std::size_t>(rank);
  const std::size_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}
}  // namespace

TEST_CASE("kernels: Gaussian kernel sums match the scalar reference, odd sizes, any thread count") {
  // Sizes not multiples of the 4-row / 8-lane / 256-column blocking, p spanning the
  // 16- and 8-wide weight paths, and distances spanning exp's range down to underflow.
  for (auto [n, m, d, p] : {std::array<std::size_t, 4>{1, 1, 1, 1}, {7, 13, 3, 4}, {37, 300, 5, 23},
                            {130, 517, 39, 40}}) {
    const RowMatrix x = normal_matrix(n, d, 1, 1.5), y = normal_matrix(m, d, 2, 1.5), v = normal_matrix(m, p, 3);
    for (double c : {0.0, 0.05, 0.7, 40.0}) {
      RowMatrix fast, ref, serial;
      gaussian_kernel_sums(x, y, v, c, fast);
      gaussian_kernel_sums_reference(x, y, v, c, ref);
      gaussian_kernel_sums(x, y, v, c, serial, Execution::kSerial);
      CHECK(bit_identical(fast, serial));
      // Each term has relative error ~1e-15 (distance via norms: absolute error ~1e-15·|x|²·c
      // in the exponent); the sums have |terms| ≤ |v| ≤ ~4, so 1e-11 absolute is ample.
      const double scale = 1.0 + ref.cwiseAbs().maxCoeff();
      CHECK((fast - ref).cwiseAbs().maxCoeff() < 1e-11 * scale);
    }
  }
  const RowMatrix x = normal_matrix(3, 2, 1), y = normal_matrix(4, 3, 2), v = normal_matrix(4, 1, 3);
  RowMatrix out;
  CHECK_THROWS_AS(gaussian_kernel_sums(x, y, v, 1.0, out), DomainError);
}

TEST_CASE("kernels: exact median of the full squared-distance matrix (numpy.median convention)") {
  // n ≥ 800 takes the sampled-bracket path (pairs > 16·4096); the lattice has massive ties.
  for (std::size_t n : {2, 3, 4, 5, 64, 257, 801, 900}) {
    RowMatrix x = normal_matrix(n, 3, 7 + n);
    if (n == 900) x = (x * 2.0).array().round().matrix();
    std::vector<double> all;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j)
        all.push_back((x.row(static_cast<Eigen::Index>(i)) - x.row(static_cast<Eigen::Index>(j))).squaredNorm());
    std::sort(all.begin(), all.end());
    const std::size_t t = all.size();
    const double expected = t % 2 ? all[t / 2] : 0.5 * (all[t / 2 - 1] + all[t / 2]);
    const double got = median_squared_distance(x);
    CHECK(got == doctest::Approx(expected).epsilon(1e-13));
    CHECK(got == median_squared_distance(x, Execution::kSerial));
  }
  CHECK_THROWS_AS(median_squared_distance(normal_matrix(1, 2, 1)), DomainError);
}

TEST_CASE("kernels: squared distances kept by the median pass: exact, and bit-identical kernel sums") {
  // Sizes with N mod 8 ≠ 0 (padding columns), 801 on the sampled-bracket path, the same
  // PairDistances reused across sizes (203 twice: storage reused, padding re-zeroed), and
  // an offset ensemble (|x|² ≈ 2.5e3·d ≫ |x − y|²) for the cancellation in
  // |x|² + |y|² − 2x·y.
  PairDistances kept;
  for (auto [n, d, offset] : {std::array<double, 3>{203, 39, 0}, {37, 9, 0}, {801, 12, 0}, {203, 39, 50}}) {
    const std::size_t nn = static_cast<std::size_t>(n), dd = static_cast<std::size_t>(d);
    const RowMatrix x = (normal_matrix(nn, dd, 5, 1.5).array() + offset).matrix();
    const double median = median_squared_distance(x, Execution::kParallel, &kept);
    CHECK(median == median_squared_distance(x));
    REQUIRE(kept.n == nn);
    double worst = 0.0;
    for (std::size_t i = 0; i < nn; ++i)
      for (std::size_t j = 0; j < nn; ++j) {
        const auto ii = static_cast<Eigen::Index>(i), jj = static_cast<Eigen::Index>(j);
        const double got = kept.at(i, j);
        if (j >= i / 8 * 8 && i >= j / 8 * 8) CHECK(got == kept.d2[j * kept.stride + i]);  // both written: bitwise symmetric
        // Each of |x|², |y|², x·y carries a relative rounding error ≤ γ_d = d·u/(1 − d·u)
        // (u = 2^−53, sums of d products), so |error| ≤ γ_d (|x|² + |y|² + 2|x·y|)
        // ≤ 2γ_d (|x|² + |y|²): the bound below (≈ 4e−13 relative to the norms at d = 39,
        // i.e. absolute 1e−9 on the offset ensemble, whose D² are ≈ 2·2.25·39 ≈ 175).
        const double bound = 2.0 * d * 0x1.0p-53 / (1.0 - d * 0x1.0p-53) *
                             (x.row(ii).squaredNorm() + x.row(jj).squaredNorm());
        const double direct = (x.row(ii) - x.row(jj)).squaredNorm();
        worst = std::max(worst, std::fabs(got - direct) / bound);
      }
    CHECK(worst <= 1.0);
    for (std::size_t j = nn; j < kept.stride; ++j) CHECK(kept.d2[j] == 0.0);  // padding of row 0
    const RowMatrix v = normal_matrix(nn, dd + 1, 3);
    for (double c : {0.05, 0.7}) {
      RowMatrix from_kept, from_kept_serial, computed;
      gaussian_kernel_sums(kept, v, c, from_kept);
      gaussian_kernel_sums(kept, v, c, from_kept_serial, Execution::kSerial);
      gaussian_kernel_sums(x, x, v, c, computed);
      CHECK(bit_identical(from_kept, computed));
      CHECK(bit_identical(from_kept_serial, computed));
      // A block of rows not starting at a multiple of 4 (an MPI rank's rows, or any
      // caller's): the same rows, bit for bit.
      RowMatrix part;
      gaussian_kernel_sums(kept, v, c, part, Execution::kParallel, RowRange{6, nn - 3});
      CHECK(bit_identical(part, computed.middleRows(6, static_cast<Eigen::Index>(nn) - 9)));
      // Kernel values made once from a copy of the kept distances: the same sums, twice
      // (as the blob method's two passes), and a refusal at another c.
      PairDistances kernel = kept;
      to_gaussian_kernel(kernel, c);
      // exp_lanes: relative error ≤ 2.2e-16 against std::exp (kernels.hpp), so 4e-16 holds.
      CHECK(kernel.at(1, 0) == doctest::Approx(std::exp(-c * kept.at(1, 0))).epsilon(4e-16));
      RowMatrix from_kernel, again;
      gaussian_kernel_sums(kernel, v, c, from_kernel, Execution::kSerial);
      gaussian_kernel_sums(kernel, v, c, again);
      CHECK(bit_identical(from_kernel, computed));
      CHECK(bit_identical(again, computed));
      CHECK_THROWS_AS(gaussian_kernel_sums(kernel, v, 2 * c, again), DomainError);
      CHECK_THROWS_AS(to_gaussian_kernel(kernel, c), DomainError);
    }
  }
  // Too many particles to keep (N > kMaxKeptPairDistances), or d below the break-even
  // through kernel_width2: nothing kept, and the sums refuse an empty matrix.
  median_squared_distance(normal_matrix(kMaxKeptPairDistances + 1, 2, 9), Execution::kParallel, &kept);
  CHECK(kept.empty());
  RowMatrix out;
  CHECK_THROWS_AS(gaussian_kernel_sums(kept, normal_matrix(3, 1, 1), 1.0, out), DomainError);
}

TEST_CASE("kernels: KSD pair sums match the all-pairs reference, serial == parallel") {
  for (auto [n, d] : {std::array<std::size_t, 2>{2, 1}, {11, 3}, {203, 10}}) {
    const RowMatrix x = normal_matrix(n, d, 11), s = normal_matrix(n, d, 12);
    for (double c : {0.5, 1.0, 3.0}) {
      KsdOptions o;
      o.c = c;
      const KsdResult fast = kernel_stein_discrepancy(x, s, o);
      const KsdResult serial = kernel_stein_discrepancy(x, s, o, Execution::kSerial);
      const KsdResult ref = kernel_stein_discrepancy_reference(x, s, o);
      CHECK(fast.u_statistic == serial.u_statistic);
      CHECK(fast.v_statistic == serial.v_statistic);
      CHECK(fast.u_statistic == doctest::Approx(ref.u_statistic).epsilon(1e-10).scale(1.0));
      CHECK(fast.v_statistic == doctest::Approx(ref.v_statistic).epsilon(1e-10));
    }
  }
  KsdOptions bad;
  bad.c = 0.0;
  CHECK_THROWS_AS(bad.validate(), ConfigError);
}

TEST_CASE("kernels: KSD of exact samples is centred at 0 (U) and detects a shifted or squeezed sample") {
  // Stein identity: E_{x,y iid π} u(x,y) = 0, so over R replicates of N exact samples
  // the mean U-statistic must be 0 within 4 standard errors of the replicate mean.
  // A sample shifted by 0.5 or with standard deviation 0.7 must give a U-statistic
  // far above the spread of the exact-sample replicates (here > mean + 6 sd).
  const std::size_t d = 3, n = 200, replicates = 60;
  GaussianTarget target(Eigen::VectorXd::Zero(d), Eigen::MatrixXd::Identity(d, d));
  std::vector<double> u;
  for (std::size_t r = 0; r < replicates; ++r) u.push_back(kernel_stein_discrepancy(normal_matrix(n, d, 100 + r), target).u_statistic);
  double mean = 0, var = 0;
  for (double a : u) mean += a / replicates;
  for (double a : u) var += (a - mean) * (a - mean) / (replicates - 1);
  const double sd = std::sqrt(var);
  CHECK(std::abs(mean) < 4.0 * sd / std::sqrt(static_cast<double>(replicates)));
  Ensemble shifted(n, d);
  shifted.positions = normal_matrix(n, d, 999);
  shifted.positions.array() += 0.5;
  const RowMatrix squeezed = 0.7 * normal_matrix(n, d, 998);
  CHECK(ksd(shifted, target).u_statistic > mean + 6 * sd);
  CHECK(kernel_stein_discrepancy(squeezed, target).u_statistic > mean + 6 * sd);
}

TEST_CASE("kernels: kernel sums over a row range are the full sums' rows, bit for bit") {
  // Ranges starting anywhere (not multiples of the 4-row block), empty, the whole, and
  // the blocks of 3 ranks; from positions and from the squared distances kept.
  PairDistances kept;
  for (auto [n, m, d, p] : {std::array<std::size_t, 4>{37, 300, 5, 23}, {130, 130, 39, 40}}) {
    const RowMatrix x = normal_matrix(n, d, 1, 1.5), y = normal_matrix(m, d, 2, 1.5), v = normal_matrix(m, p, 3);
    RowMatrix full, part, part_serial;
    gaussian_kernel_sums(x, y, v, 0.3, full);
    std::vector<RowRange> ranges = {{0, n}, {5, 6}, {3, 30}, {n, n}, {0, 1}, {n - 5, n}};
    for (int r = 0; r < 3; ++r) ranges.push_back(block_rows(n, r, 3));
    for (const RowRange range : ranges) {
      gaussian_kernel_sums(x, y, v, 0.3, part, Execution::kParallel, range);
      gaussian_kernel_sums(x, y, v, 0.3, part_serial, Execution::kSerial, range);
      const RowMatrix expected = full.middleRows(static_cast<Eigen::Index>(range.begin),
                                                 static_cast<Eigen::Index>(range.size()));
      CHECK(bit_identical(part, expected));
      CHECK(bit_identical(part_serial, expected));
    }
    RowMatrix out;
    CHECK_THROWS_AS(gaussian_kernel_sums(x, y, v, 0.3, out, Execution::kParallel, RowRange{n + 1, n + 2}), DomainError);
    if (m != n) continue;
    // Kept squared distances of all rows: any range of them gives the rows of the sums.
    median_squared_distance(x, Execution::kParallel, &kept);
    REQUIRE(kept.rows == n);
    gaussian_kernel_sums(x, x, v, 0.3, full);
    for (const RowRange range : ranges) {
      gaussian_kernel_sums(kept, v, 0.3, part, Execution::kParallel, range);
      CHECK(bit_identical(part, full.middleRows(static_cast<Eigen::Index>(range.begin),
                                                static_cast<Eigen::Index>(range.size()))));
    }
  }
}

TEST_CASE("kernels: pair_row_share partitions the rows, balanced by pairs, at multiples of 8") {
  for (std::size_t n : {2, 9, 100, 1000, 1001}) {
    for (int ranks : {1, 2, 3, 7}) {
      const std::uint64_t pairs = n * (n - 1) / 2;
      std::size_t next = 0;
      for (int r = 0; r < ranks; ++r) {
        const RowRange share = pair_row_share(n, r, ranks);
        CHECK(share.begin == next);
        CHECK((share.begin % 8 == 0 || share.begin == n));
        next = share.end;
        std::uint64_t mine = 0;
        for (std::size_t i = share.begin; i < share.end; ++i) mine += n - 1 - i;
        // A boundary moves by at most 8 rows of at most N − 1 pairs each.
        CHECK(std::fabs(static_cast<double>(mine) - static_cast<double>(pairs) / ranks) <= 2.0 * 8.0 * (n - 1));
      }
      CHECK(next == n);
    }
  }
  CHECK_THROWS_AS(pair_row_share(10, 2, 2), DomainError);
}

TEST_CASE("kernels: the median over simulated ranks is the one-process median, bit for bit") {
  // n ≥ 800: the sampled bracket (then a histogram round before the gather); 257: the
  // whole range (several rounds); 900: a lattice with massive ties; even and odd N² (one or two middle
  // entries), a rank with no rows (3 rows over 5 ranks), balanced pair shares and plain
  // blocks of rows.
  // Two-valued 1-D sets of 400 points (D² ∈ {0, 1}, far more tied pairs than are
  // gathered at once): 200 + 200, whose two middle entries are the last 0 and the first
  // 1 (the selection ends with the two values in different bins, median 0.5), and
  // 100 + 300, whose middle entries are a tie of 49 800 zero pairs (narrowed to one bit
  // pattern).
  std::vector<RowMatrix> sets;
  for (std::size_t n : {3, 4, 5, 64, 257, 801, 900}) {
    sets.push_back(normal_matrix(n, 3, 7 + n));
    if (n == 900) sets.back() = (sets.back() * 2.0).array().round().matrix();
  }
  for (Eigen::Index zeros : {200, 100}) {
    sets.push_back(RowMatrix::Ones(400, 1));
    sets.back().topRows(zeros).setZero();
  }
  CHECK(median_squared_distance(sets[sets.size() - 2]) == 0.5);
  CHECK(median_squared_distance(sets.back()) == 0.0);
  for (const RowMatrix& x : sets) {
    const std::size_t n = static_cast<std::size_t>(x.rows());
    const double serial = median_squared_distance(x, Execution::kSerial);
    for (int ranks : {2, 3, 5}) {
      for (bool balanced : {true, false}) {
        SimulatedRanks sim(ranks);
        std::vector<double> got(static_cast<std::size_t>(ranks), -1.0);
        sim.run([&](int r) {
          const MedianShare share = sim.share(r, balanced ? pair_row_share(n, r, ranks) : block_rows(n, r, ranks));
          const Execution exec = r % 2 ? Execution::kSerial : Execution::kParallel;
          got[static_cast<std::size_t>(r)] = median_squared_distance(x, exec, nullptr, share);
        });
        for (double g : got) CHECK(g == serial);
      }
    }
  }
  // Without a sum over ranks, a share of the rows is refused.
  CHECK_THROWS_AS(median_squared_distance(normal_matrix(10, 2, 1), Execution::kParallel, nullptr, MedianShare{{0, 5}, {}, {}}),
                  DomainError);
}

TEST_CASE("kernels: each simulated rank keeps only its rows of D², and its sums from them are bit-identical") {
  // d ≥ kMinDimKeptPairDistances as in SVGD/blob; 801 on the sampled-bracket path; the
  // same PairDistances per rank reused for two sizes (padding re-zeroed).
  const int ranks = 3;
  std::vector<PairDistances> kept(ranks);
  for (std::size_t n : {203, 801, 37}) {
    const RowMatrix x = normal_matrix(n, 12, 5, 1.5), v = normal_matrix(n, 13, 3);
    PairDistances whole;  // one process: the upper triangle (whole.at reads the rest)
    const double serial = median_squared_distance(x, Execution::kParallel, &whole);
    CHECK(whole.upper);
    RowMatrix full;
    gaussian_kernel_sums(x, x, v, 0.2, full);
    SimulatedRanks sim(ranks);
    std::vector<double> got(ranks);
    sim.run([&](int r) {
      const MedianShare share = sim.share(r, block_rows(n, r, ranks));
      got[static_cast<std::size_t>(r)] = median_squared_distance(x, Execution::kParallel, &kept[static_cast<std::size_t>(r)], share);
    });
    for (int r = 0; r < ranks; ++r) {
      const PairDistances& mine = kept[static_cast<std::size_t>(r)];
      const RowRange rows = block_rows(n, r, ranks);
      CHECK(got[static_cast<std::size_t>(r)] == serial);
      REQUIRE(mine.n == n);
      CHECK(mine.row_begin == rows.begin);
      REQUIRE(mine.rows == rows.size());
      CHECK(mine.d2.size() == rows.size() * whole.stride);
      bool same = true;
      for (std::size_t i = rows.begin; i < rows.end; ++i)
        for (std::size_t j = 0; j < whole.stride; ++j)
          same = same && mine.d2[(i - rows.begin) * mine.stride + j] == (j < n ? whole.at(i, j) : whole.d2[i * whole.stride + j]);
      CHECK(same);  // every entry, the padding zeros included
      RowMatrix part;
      gaussian_kernel_sums(mine, v, 0.2, part);
      CHECK(bit_identical(part, full.middleRows(static_cast<Eigen::Index>(rows.begin),
                                                static_cast<Eigen::Index>(rows.size()))));
      RowMatrix out;
      if (rows.begin > 0) CHECK_THROWS_AS(gaussian_kernel_sums(mine, v, 0.2, out, Execution::kParallel, {0, 1}), DomainError);
    }
  }
}

TEST_CASE("kernels: KSD row sums over shares, added in index order, give the one-process KSD bits") {
  for (auto [n, d] : {std::array<std::size_t, 2>{11, 3}, {203, 10}}) {
    const RowMatrix x = normal_matrix(n, d, 11), s = normal_matrix(n, d, 12);
    const KsdResult whole = kernel_stein_discrepancy(x, s);
    const std::vector<double> all = ksd_row_sums(x, s);
    for (int ranks : {2, 3, 5}) {
      std::vector<double> joined;
      for (int r = 0; r < ranks; ++r) {
        const std::vector<double> part = ksd_row_sums(x, s, {}, Execution::kSerial, pair_row_share(n, r, ranks));
        joined.insert(joined.end(), part.begin(), part.end());
      }
      const KsdResult split = ksd_from_row_sums(joined, s);
      CHECK(split.u_statistic == whole.u_statistic);
      CHECK(split.v_statistic == whole.v_statistic);
    }
    // A range starting inside a 4-row block: the same bits as those rows of the whole.
    const std::vector<double> inner = ksd_row_sums(x, s, {}, Execution::kParallel, {5, n - 1});
    CHECK(std::equal(inner.begin(), inner.end(), all.begin() + 5));
    CHECK_THROWS_AS(ksd_from_row_sums(inner, s), DomainError);
  }
}
