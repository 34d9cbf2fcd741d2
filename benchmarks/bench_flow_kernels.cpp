/// \file bench_flow_kernels.cpp
/// Achieved throughput of the particle-flow kernels against the machine's measured
/// GEMM peak, in one invocation:
///
///  - GEMM probe: float64 dgemm (n × n × n, 2n³ flops) of the system BLAS, resolved at
///    run time through libblas.so.3 (on this machine OpenBLAS), at 1 and 2 threads
///    (openblas_set_num_threads when the library has it), and Eigen's own product in
///    this binary (compiled for the baseline x86-64 ISA, as the library is);
///  - interacting-flow kernels at N = 1000, d = 39 (LJ13-sized): exact median of the
///    pair distances, Gaussian kernel sums (the SVGD pass), one SVGD direction, one
///    blob diffusion velocity, the two kernel sums of an MMD update (M = N target
///    samples), the IMQ kernel Stein discrepancy;
///  - Langevin flows on ManyWell-32 (ULA, MALA, BAOAB): nanoseconds per coordinate-step
///    and coordinate-steps per second, plus the normal generator alone.
///
/// Flop counts (multiply-adds as 2 flops; exp, sqrt and O(N d) work not counted):
///   median     N(N−1)/2 · 2d                    (pair dot products)
///   sums(p)    N·M · (2d + 2p)                  (dot products + weighted sums of p columns)
///   SVGD       median + sums(d+1)            (sums without the 2d of dot products when
///   blob       median + sums(1) + sums(2d+1)  the median pass keeps D²: d ≥ 8, N ≤ 2048)
///   MMD        sums(d+1) over the particles + sums(d+1) over the M samples
///   KSD        N(N−1)/2 · 8d                    (four pair dot products: x·x, s·s, x·s, s·x)
/// Every row reports the best of --rounds rounds at 1 and at 2 threads (rounds
/// interleaved) and its share of the probe's peak at the same thread count.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <malloc.h>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/rng_lanes.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/flows/blob.hpp"
#include "boltzlab/flows/kernels.hpp"
#include "boltzlab/flows/langevin.hpp"
#include "boltzlab/flows/svgd.hpp"
#include "boltzlab/targets/registry.hpp"
#include "gemm_probe.hpp"

using namespace boltzlab;

namespace {

/// Best wall time of `rounds` calls of f at 1 and 2 threads (interleaved; one warm-up each).
struct Timing {
  double t1 = 1e300, t2 = 1e300;
  double cpu1 = 1e300;  ///< best process CPU seconds at 1 thread (insensitive to other load)
};
Timing best_times(int rounds, const std::function<void()>& f) {
  Timing t;
  for (int r = 0; r <= rounds; ++r) {
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      const double start = wall_seconds(), cpu_start = cpu_seconds();
      f();
      const double dt = wall_seconds() - start;
      if (r == 0) continue;
      if (threads == 1) t.cpu1 = std::min(t.cpu1, cpu_seconds() - cpu_start);
      (threads == 1 ? t.t1 : t.t2) = std::min(threads == 1 ? t.t1 : t.t2, dt);
    }
  }
  return t;
}

struct Peak {
  double g1 = 0.0, g2 = 0.0;
};

Peak gemm_peak(int rounds, int n) {
  const bench::GemmPeak probe = bench::gemm_probe(n, rounds);
  Peak peak{probe.gflops_1, probe.gflops_2};
  if (probe.gflops_1 > 0) {
    std::printf("GEMM probe, system BLAS dgemm %d^3 (%s): %.1f GFLOP/s at 1 thread, %.1f at 2 threads\n", n,
                probe.library.c_str(), peak.g1, peak.g2);
  } else {
    std::printf("GEMM probe: no libblas.so.3 with dgemm_ found\n");
  }
  const RowMatrix a = RowMatrix::Random(n, n), b = RowMatrix::Random(n, n);
  RowMatrix c(n, n);
  const double flops = 2.0 * n * static_cast<double>(n) * n;
  const Timing te = best_times(rounds, [&] { c.noalias() = a * b; });
  std::printf("GEMM probe, Eigen %d.%d.%d product in this binary (baseline ISA, single-threaded): %.1f GFLOP/s\n",
              EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION, flops / te.t1 * 1e-9);
  if (probe.gflops_1 <= 0) peak = Peak{flops / te.t1 * 1e-9, flops / te.t1 * 1e-9};
  return peak;
}

void row(const char* name, double flops, const Timing& t, const Peak& peak) {
  const double g1 = flops / t.t1 * 1e-9, g2 = flops / t.t2 * 1e-9;
  std::printf("| %-34s | %8.3f | %8.3f | %6.1f | %6.1f | %5.0f %% | %5.0f %% |\n", name, 1e3 * t.t1, 1e3 * t.t2, g1, g2,
              100.0 * g1 / peak.g1, 100.0 * g2 / peak.g2);
}

RowMatrix normal_matrix(std::size_t n, std::size_t d, std::uint64_t seed, double scale) {
  RowMatrix x(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  for (std::size_t i = 0; i < n; ++i) {
    Rng rng(seed, i);
    for (std::size_t k = 0; k < d; ++k) x(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(k)) = scale * rng.normal();
  }
  return x;
}

void interacting_rows(int rounds, std::size_t n, std::size_t d, const Peak& peak) {
  const RowMatrix x = normal_matrix(n, d, 42, 1.5), scores = -x / 1.5, y = normal_matrix(n, d, 43, 1.0);
  const double nn = static_cast<double>(n), dd = static_cast<double>(d);
  const double median_flops = nn * (nn - 1) / 2 * 2 * dd;
  auto sums_flops = [&](double m, double p) { return nn * m * (2 * dd + 2 * p); };
  std::printf("\nInteracting-particle kernels, N = %zu, d = %zu (best of %d rounds, wall clock)\n\n", n, d, rounds);
  std::printf("| %-34s | ms 1 thr | ms 2 thr | GF/s 1 | GF/s 2 | peak 1  | peak 2  |\n", "kernel");
  std::printf("|%s|----------|----------|--------|--------|---------|---------|\n", std::string(36, '-').c_str());
  double sink = 0.0;
  row("median of pair distances", median_flops, best_times(rounds, [&] { sink += median_squared_distance(x); }), peak);
  RowMatrix w(x.rows(), x.cols() + 1), out;
  w.leftCols(x.cols()) = scores;
  w.col(x.cols()).setOnes();
  row("Gaussian kernel sums, p = d+1", sums_flops(nn, dd + 1),
      best_times(rounds, [&] { gaussian_kernel_sums(x, x, w, 0.1, out); }), peak);
  RowMatrix phi;
  // SVGD and blob: the kernel sums reuse the median pass's distances (no dot products).
  const bool kept = d >= kMinDimKeptPairDistances && n <= kMaxKeptPairDistances;
  auto kept_flops = [&](double p) { return kept ? nn * nn * 2 * p : sums_flops(nn, p); };
  row("SVGD direction (median + sums)", median_flops + kept_flops(dd + 1),
      best_times(rounds, [&] { sink += SvgdFlow::stein_direction(x, scores, 0.0, phi, Execution::kParallel); }), peak);
  row("blob velocity (median + 2 sums)", median_flops + kept_flops(1) + kept_flops(2 * dd + 1),
      best_times(rounds, [&] { sink += BlobFlow::diffusion_velocity(x, 0.0, phi, Execution::kParallel); }), peak);
  RowMatrix out2;
  row("MMD update (2 sums, M = N)", 2 * sums_flops(nn, dd + 1), best_times(rounds, [&] {
        gaussian_kernel_sums(x, x, w, 0.1, out);
        gaussian_kernel_sums(x, y, w, 0.1, out2);
      }),
      peak);
  row("KSD (IMQ, pairs j > i)", nn * (nn - 1) / 2 * 8 * dd,
      best_times(rounds, [&] { sink += kernel_stein_discrepancy(x, scores).v_statistic; }), peak);
  if (sink == 12345.0) std::printf("\n");
}

void langevin_rows(int rounds, std::size_t particles, std::size_t steps) {
  const Potential pot = load_potential(std::string(BOLTZLAB_SOURCE_DIR) + "/potentials/manywell32.json");
  const Target& target = *pot.target;
  const std::size_t d = target.dim();
  const double coord_steps = static_cast<double>(particles) * static_cast<double>(steps) * static_cast<double>(d);
  std::printf("\nLangevin flows on ManyWell-32: %zu particles x %zu steps x d = %zu (best of %d rounds)\n\n", particles,
              steps, d, rounds);
  std::printf("| %-34s | ns/coord-step 1 thr | 1 thr, CPU | 2 thr | coord-steps/s 2 thr |\n", "flow");
  std::printf("|%s|---------------------|------------|-------|---------------------|\n", std::string(36, '-').c_str());
  auto flow_row = [&](const char* name, Flow& flow, std::size_t warmup) {
    FlowOptions opt;
    opt.steps = steps;
    opt.warmup = warmup;
    opt.progress = false;
    opt.monitor_every = 100;
    const Timing t = best_times(rounds, [&] {
      Ensemble ens(particles, d);
      for (std::size_t i = 0; i < particles; ++i) Rng(1, i).fill_normal(ens.particle(i), d);
      flow.run(target, ens, opt);
    });
    const double all = coord_steps * static_cast<double>(steps + warmup) / static_cast<double>(steps);
    std::printf("| %-34s | %19.2f | %10.2f | %5.2f | %19.3g |\n", name, 1e9 * t.t1 / all, 1e9 * t.cpu1 / all,
                1e9 * t.t2 / all, all / t.t2);
  };
  UlaFlow ula;
  MalaFlow mala;
  BaoabFlow baoab;
  flow_row("ULA", ula, 0);
  flow_row("MALA (no warm-up)", mala, 0);
  flow_row("BAOAB", baoab, 0);
  std::vector<double> buf(d);
  std::vector<Rng> streams;
  for (std::size_t i = 0; i < particles; ++i) streams.push_back(stream_for(7, i));
  double sink = 0.0;
  const Timing t = best_times(rounds, [&] {
    for_each_block(particles, 16, [&](std::size_t b, std::size_t e) {
      std::vector<double> local(d);
      for (std::size_t i = b; i < e; ++i)
        for (std::size_t s = 0; s < steps; ++s) streams[i].fill_normal(local.data(), d);
      buf[0] += local[0];
    });
  });
  sink += buf[0];
  std::printf("| %-34s | %19.2f | %10.2f | %5.2f | %19.3g |\n", "normals, ziggurat (fill_normal)",
              1e9 * t.t1 / coord_steps, 1e9 * t.cpu1 / coord_steps, 1e9 * t.t2 / coord_steps, coord_steps / t.t2);
  // The generator of the Langevin flows: eight streams side by side, blocks of 16 as there.
  std::vector<double> lanes_buf(kNormalLanes * d);
  const Timing tl = best_times(rounds, [&] {
    for_each_block(particles, 16, [&](std::size_t b, std::size_t e) {
      std::vector<double> local(kNormalLanes * d);
      for (std::size_t g = b; g < e; g += kNormalLanes)
        for (std::size_t s = 0; s < steps; ++s)
          fill_normal_lanes(&streams[g], std::min(kNormalLanes, e - g), local.data(), d);
      lanes_buf[0] += local[0];
    });
  });
  sink += lanes_buf[0];
  std::printf("| %-34s | %19.2f | %10.2f | %5.2f | %19.3g |\n", "normals, Box-Muller (8 lanes)",
              1e9 * tl.t1 / coord_steps, 1e9 * tl.cpu1 / coord_steps, 1e9 * tl.t2 / coord_steps, coord_steps / tl.t2);
  if (sink == 12345.0) std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  // May restart once with OpenBLAS kernels for this CPU, also for the GEMM probe's later dlopen.
  boltzlab::select_blas_kernels(argv, /*later_load=*/true);
  // The allocator settings of the tools (tools/wgf-relax.cpp): no mmap and unmap of the
  // median pass's per-call buffers, whose page faults were timed otherwise.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 2047 * 1024 * 1024);
  mallopt(M_TOP_PAD, 512 * 1024 * 1024);
  CLI::App app{"bench_flow_kernels: particle-flow kernels against the measured GEMM peak"};
  int rounds = 5, gemm_n = 1000;
  std::size_t n = 1000, d = 39, particles = 4096, steps = 200;
  bool no_langevin = false, no_interacting = false;
  app.add_option("--rounds", rounds, "timed rounds (best reported)");
  app.add_option("--gemm-n", gemm_n, "GEMM probe size");
  app.add_option("--n", n, "particles of the interacting kernels");
  app.add_option("--d", d, "dimension of the interacting kernels");
  app.add_option("--particles", particles, "Langevin particles");
  app.add_option("--steps", steps, "Langevin steps per round");
  app.add_flag("--no-langevin", no_langevin, "skip the Langevin rows");
  app.add_flag("--no-interacting", no_interacting, "skip the interacting-kernel rows");
  CLI11_PARSE(app, argc, argv);
  try {
    const Peak peak = gemm_peak(rounds, gemm_n);
    if (!no_interacting) interacting_rows(rounds, n, d, peak);
    if (!no_langevin) langevin_rows(rounds, particles, steps);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_flow_kernels: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
