/// \file bench_svgd.cpp
/// SVGD step time of boltzlab (SvgdFlow::stein_direction: exact median heuristic +
/// fused Gaussian kernel sums, plus the scores and the position update) against a
/// vectorized PyTorch implementation of the same update (benchmarks/svgd_torch.py,
/// /usr/bin/python3, torch.set_num_threads(2)) run in the same invocation, at
/// N = 1000, d = 39 (LJ13-sized) and N = 4096, d = 2.
///
/// Target (both sides): Gaussian, mean 0, diagonal variances 1 + 0.5 (k mod 3); the
/// start is N(0, 1.5² I) written to a temporary .npy that both sides read. Before
/// timing, φ at the start is compared between the two implementations (max relative
/// difference), so the ratio compares the same update.
///
/// Reported: seconds per step (best and median of --rounds rounds of --steps steps;
/// rounds of C++ at 1 thread, C++ at 2 threads are interleaved, PyTorch runs after),
/// the ratio PyTorch / boltzlab, and GFLOP/s counting the multiply-adds of the kernel
/// sums as 2 flops each (below), also as a share of the machine's float64 GEMM peak
/// measured in the same invocation (gemm_probe.hpp: the system BLAS's dgemm).
///
/// The PyTorch baseline is the faster of torch.set_num_threads(1) and (2), both with
/// OMP_WAIT_POLICY=PASSIVE (on a machine shared with other jobs, spin-waiting OpenMP
/// threads can make PyTorch several times slower: the favourable setting is the honest
/// baseline), and glibc's allocator set as the tools set it (mallopt here, MALLOC_*_
/// for Python). The BLAS it runs on (its build setting and the BLAS shared objects
/// mapped into the Python process) is printed. The boltzlab figure in the ratio is its
/// faster thread setting as well.
/// Flops:
///   median pass  N(N−1)/2 · 2d      (pair dot products)
///   kernel pass  N² · (2d + 2(d+1)) (dot products + weighted sums of [s − x/h², 1]),
///                N² · 2(d+1) when the median pass keeps the distances (d ≥ 8, N ≤ 2048)
/// (exp, scores and O(N d) work not counted).
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/flows/svgd.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/targets/gaussian.hpp"
#include "gemm_probe.hpp"

using namespace boltzlab;
namespace fs = std::filesystem;

namespace {

/// The allocator settings of the tools (tools/wgf-relax.cpp, bg-sample): mallopt here,
/// the equivalent glibc environment variables for the PyTorch process (which allocates
/// N×N tensors every step), so that neither side pays mmap/trim page faults per step.
const std::string kMallocEnv =
    "MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=2146435072 MALLOC_TOP_PAD_=536870912 ";
void tune_allocator() {
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 2047 * 1024 * 1024);
  mallopt(M_TOP_PAD, 512 * 1024 * 1024);
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct Config {
  std::size_t n, d;
};

GaussianTarget bench_target(std::size_t d) {
  Eigen::VectorXd var(static_cast<Eigen::Index>(d));
  for (std::size_t k = 0; k < d; ++k) var[static_cast<Eigen::Index>(k)] = 1.0 + 0.5 * static_cast<double>(k % 3);
  return GaussianTarget(Eigen::VectorXd::Zero(static_cast<Eigen::Index>(d)), Eigen::MatrixXd(var.asDiagonal()));
}

/// One SVGD step as a flow step: scores (one gradient per particle), φ, x += εφ; the
/// storage of the kept pair distances reused across steps, as SvgdFlow does.
double svgd_step(const Target& target, RowMatrix& x, double eps, PairDistances& pairs) {
  Eigen::VectorXd u;
  RowMatrix grad, phi;
  target.evaluate_batch(x, u, &grad);
  grad *= -1.0;
  const double h = SvgdFlow::stein_direction(x, grad, 0.0, phi, Execution::kParallel, &pairs);
  x += eps * phi;
  return h;
}

std::string run_command(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw BackendError("cannot run: " + cmd);
  char buf[4096];
  while (fgets(buf, sizeof buf, p)) out += buf;
  const int rc = pclose(p);
  if (rc != 0) throw BackendError("failed (status " + std::to_string(rc) + "): " + cmd);
  return out;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  // May restart once with OpenBLAS kernels for this CPU, also for the GEMM probe's later dlopen.
  boltzlab::select_blas_kernels(argv, /*later_load=*/true);
  CLI::App app{"bench_svgd: boltzlab SVGD step vs vectorized PyTorch"};
  int steps = 10, rounds = 5;
  bool no_torch = false;
  std::string python = "/usr/bin/python3";
  app.add_option("--steps", steps, "steps per timed round");
  app.add_option("--rounds", rounds, "timed rounds (best and median reported)");
  app.add_option("--python", python, "Python with torch (Debian python3-torch)");
  app.add_flag("--no-torch", no_torch, "skip the PyTorch baseline");
  CLI11_PARSE(app, argc, argv);
  tune_allocator();
  try {
    const fs::path script = fs::path(BOLTZLAB_SOURCE_DIR) / "benchmarks" / "svgd_torch.py";
    const fs::path tmp = fs::temp_directory_path() / ("bench_svgd_" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    std::printf("bench_svgd: %d rounds x %d steps; wall-clock seconds per step (best / median of rounds)\n", rounds, steps);
    const bench::GemmPeak peak = bench::gemm_probe();
    std::printf("GEMM probe (float64 dgemm 1000^3, %s): %.1f GFLOP/s at 1 thread, %.1f at 2 threads\n",
                peak.library.empty() ? "no system BLAS found" : peak.library.c_str(), peak.gflops_1, peak.gflops_2);
    for (const Config c : {Config{1000, 39}, Config{4096, 2}}) {
      const GaussianTarget target = bench_target(c.d);
      RowMatrix x0(static_cast<Eigen::Index>(c.n), static_cast<Eigen::Index>(c.d));
      for (std::size_t i = 0; i < c.n; ++i) {
        Rng rng = stream_for(42, i);
        for (std::size_t k = 0; k < c.d; ++k) x0(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(k)) = 1.5 * rng.normal();
      }
      const fs::path xfile = tmp / "x0.npy", check = tmp / "phi_torch.npy";
      write_npy(xfile, x0);
      const double nn = static_cast<double>(c.n), dd = static_cast<double>(c.d);
      // Flops performed: with the median pass's distances kept (d ≥ 8, N ≤ 2048) the
      // kernel pass does no dot products.
      const bool kept = c.d >= kMinDimKeptPairDistances && c.n <= kMaxKeptPairDistances;
      const double flops = nn * (nn - 1) / 2 * 2 * dd + nn * nn * ((kept ? 0 : 2 * dd) + 2 * (dd + 1));

      // C++: 1 and 2 threads, rounds interleaved.
      std::vector<double> t1, t2, cpu1;
      RowMatrix x1 = x0, x2 = x0;
      PairDistances pairs;
      for (int r = 0; r <= rounds; ++r) {
        for (int threads : {1, 2}) {
          set_num_threads(threads);
          RowMatrix& x = threads == 1 ? x1 : x2;
          const double start = now(), cpu_start = cpu_seconds();
          for (int s = 0; s < steps; ++s) svgd_step(target, x, 0.05, pairs);
          const double per = (now() - start) / steps;
          if (r > 0) (threads == 1 ? t1 : t2).push_back(per);  // round 0: warm-up
          if (r > 0 && threads == 1) cpu1.push_back((cpu_seconds() - cpu_start) / steps);
        }
      }
      const bool same = x1 == x2;
      std::printf("\nN = %zu, d = %zu  (%.1f MFLOP per step in the kernel sums%s)\n", c.n, c.d, flops * 1e-6,
                  kept ? ", distances kept by the median pass" : "");
      const double g1 = flops / *std::min_element(t1.begin(), t1.end()) * 1e-9;
      const double g2 = flops / *std::min_element(t2.begin(), t2.end()) * 1e-9;
      std::printf("  boltzlab 1 thread : %8.2f ms / %8.2f ms   %6.1f GFLOP/s (best; %.0f %% of the GEMM probe)\n",
                  1e3 * *std::min_element(t1.begin(), t1.end()), 1e3 * median_of(t1), g1,
                  peak.gflops_1 > 0 ? 100 * g1 / peak.gflops_1 : 0.0);
      std::printf("  boltzlab 2 threads: %8.2f ms / %8.2f ms   %6.1f GFLOP/s (best; %.0f %% of the GEMM probe)   "
                  "[1 vs 2 threads bit-identical: %s]\n",
                  1e3 * *std::min_element(t2.begin(), t2.end()), 1e3 * median_of(t2), g2,
                  peak.gflops_2 > 0 ? 100 * g2 / peak.gflops_2 : 0.0, same ? "yes" : "NO");
      if (no_torch) continue;
      // PyTorch at 1 and 2 threads; the faster is the baseline.
      std::vector<double> tt;
      double torch_cpu1 = 0.0;  // PyTorch at 1 thread: best CPU seconds per step
      int torch_threads = 0;
      for (int threads : {1, 2}) {
        const std::string out = run_command(boltzlab::blas_environment_for_children() + "OMP_WAIT_POLICY=PASSIVE " + kMallocEnv + python + " " + script.string() + " --x " +
                                            xfile.string() + " --check " + check.string() + " --steps " +
                                            std::to_string(steps) + " --rounds " + std::to_string(rounds) +
                                            " --threads " + std::to_string(threads));
        const nlohmann::json j = nlohmann::json::parse(out.substr(out.find('{')));
        const std::vector<double> t = j.at("seconds_per_step").get<std::vector<double>>();
        const double best = *std::min_element(t.begin(), t.end());
        std::printf("  PyTorch %s, %d thread(s): %8.2f ms / %8.2f ms   %6.1f GFLOP/s (best)\n",
                    j.at("torch").get<std::string>().c_str(), threads, 1e3 * best, 1e3 * median_of(t),
                    flops / best * 1e-9);
        if (c.n == 1000) std::printf("    PyTorch BLAS: %s\n", j.at("blas").dump().c_str());
        if (tt.empty() || best < *std::min_element(tt.begin(), tt.end())) tt = t, torch_threads = threads;
        if (threads == 1) {
          const std::vector<double> c1 = j.at("cpu_seconds_per_step").get<std::vector<double>>();
          torch_cpu1 = *std::min_element(c1.begin(), c1.end());
        }
      }
      // Same update? φ at the start from both implementations.
      set_num_threads(2);
      RowMatrix grad, phi;
      Eigen::VectorXd u;
      target.evaluate_batch(x0, u, &grad);
      grad *= -1.0;
      SvgdFlow::stein_direction(x0, grad, 0.0, phi, Execution::kParallel);
      const RowMatrix phi_torch = read_npy_matrix(check, c.d);
      const double rel = (phi - phi_torch).cwiseAbs().maxCoeff() / phi.cwiseAbs().maxCoeff();
      const double best_1 = *std::min_element(t1.begin(), t1.end()), best_2 = *std::min_element(t2.begin(), t2.end());
      const bool two = best_2 <= best_1;
      const double best_t = *std::min_element(tt.begin(), tt.end()), best_b = two ? best_2 : best_1;
      std::printf("  [max |phi - phi_torch| / max |phi| = %.1e]\n", rel);
      std::printf("  speed-up boltzlab (%d thread(s)) vs PyTorch (%d thread(s), the faster): %.1fx best, %.1fx median"
                  "  (goal >= 15x)\n",
                  two ? 2 : 1, torch_threads, best_t / best_b, median_of(tt) / median_of(two ? t2 : t1));
      // On a machine shared with other jobs, wall time depends on the CPU share each
      // process got; CPU time per step at 1 thread does not (it is what one free core gives).
      std::printf("  per CPU-second at 1 thread (insensitive to other load): boltzlab %.2f ms, PyTorch %.2f ms: %.1fx\n",
                  1e3 * *std::min_element(cpu1.begin(), cpu1.end()), 1e3 * torch_cpu1,
                  torch_cpu1 / *std::min_element(cpu1.begin(), cpu1.end()));
    }
    fs::remove_all(tmp);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_svgd: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
