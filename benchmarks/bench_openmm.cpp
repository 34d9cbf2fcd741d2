/// \file bench_openmm.cpp
/// Energy+force evaluations per second of arbitrary alanine dipeptide configurations
/// through OpenMMTarget::evaluate_batch (per-thread Contexts) at 1 and 2 threads,
/// against a raw single-Context OpenMM C++ loop (setPositions + getState(Energy|Forces)
/// + copying the forces) in the same invocation. Prints the ratio
///   efficiency = rate(target, t threads) / (rate(raw, 1 context) · t),
/// goal ≥ 0.95. With --platforms it also times a raw Context on each loaded platform
/// per potential (how the platform in each potential file was chosen).
///
/// Measurements are interleaved (raw, 1 thread, 2 threads, repeated --rounds times)
/// and the best round of each is reported, so that load from other processes on a
/// shared machine biases all of them alike. On a machine shared with other jobs the
/// wall-clock ratio at 2 threads measures the load as much as the code, so the
/// benchmark also prints evaluations per CPU-second (process CPU time, all threads):
/// cpu-ratio = (target evals per CPU-s) / (raw evals per CPU-s) is the efficiency
/// that the code controls (per-evaluation overhead of the batched, per-thread path).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <OpenMM.h>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/targets/openmm_target.hpp"

using namespace boltzlab;
namespace fs = std::filesystem;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double cpu_now() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

struct Rate {
  double wall = 0.0;  ///< evaluations per wall-clock second
  double cpu = 0.0;   ///< evaluations per CPU-second (all threads)
};

// Configurations: MD frames from tests/data with Gaussian noise (σ = 0.005 nm), so
// that consecutive evaluations are unrelated "arbitrary" configurations.
RowMatrix configurations(const std::string& key, std::size_t count) {
  const RowMatrix md = read_npy_matrix(fs::path(BOLTZLAB_SOURCE_DIR) / "tests" / "data" / ("ala2_" + key + "_positions.npy"), 66);
  RowMatrix x(static_cast<Eigen::Index>(count), md.cols());
  Rng rng(2026, 0);
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index k = 0; k < x.cols(); ++k) x(i, k) = md(i % md.rows(), k) + 0.005 * rng.normal();
  return x;
}

// A raw OpenMM Context on `platform`: the baseline.
struct RawContext {
  std::unique_ptr<OpenMM::System> system;
  OpenMM::VerletIntegrator integrator{0.001};
  std::unique_ptr<OpenMM::Context> context;
  RawContext(const fs::path& xml, const std::string& platform) {
    std::ifstream in(xml);
    system.reset(OpenMM::XmlSerializer::deserialize<OpenMM::System>(in));
    std::map<std::string, std::string> props;
    if (platform == "CPU") props["Threads"] = "1";
    context = std::make_unique<OpenMM::Context>(*system, integrator, OpenMM::Platform::getPlatformByName(platform), props);
  }
  // Evaluations per second over `x`, repeated for at least `seconds`.
  Rate rate(const RowMatrix& x, double seconds, double& checksum) {
    const std::size_t atoms = static_cast<std::size_t>(x.cols() / 3);
    std::vector<OpenMM::Vec3> pos(atoms);
    std::vector<double> forces(static_cast<std::size_t>(x.cols()));
    std::size_t evals = 0;
    const double t0 = now(), c0 = cpu_now();
    double t = t0;
    while (t - t0 < seconds) {
      for (Eigen::Index i = 0; i < x.rows(); ++i) {
        for (std::size_t a = 0; a < atoms; ++a) pos[a] = OpenMM::Vec3(x(i, 3 * a), x(i, 3 * a + 1), x(i, 3 * a + 2));
        context->setPositions(pos);
        const OpenMM::State s = context->getState(OpenMM::State::Energy | OpenMM::State::Forces);
        const auto& f = s.getForces();
        for (std::size_t a = 0; a < atoms; ++a)
          for (int c = 0; c < 3; ++c) forces[3 * a + static_cast<std::size_t>(c)] = f[a][c];
        checksum += s.getPotentialEnergy() + forces[0];
      }
      evals += static_cast<std::size_t>(x.rows());
      t = now();
    }
    return Rate{static_cast<double>(evals) / (t - t0), static_cast<double>(evals) / (cpu_now() - c0)};
  }
};

Rate target_rate(const Target& target, const RowMatrix& x, double seconds, double& checksum) {
  Eigen::VectorXd u;
  RowMatrix grad;
  std::size_t evals = 0;
  const double t0 = now(), c0 = cpu_now();
  double t = t0;
  while (t - t0 < seconds) {
    const BatchStats s = target.evaluate_batch(x, u, &grad, Execution::kParallel);
    if (s.non_finite) throw DomainError("bench_openmm: non-finite energies in the benchmark set");
    checksum += u.sum() + grad(0, 0);
    evals += static_cast<std::size_t>(x.rows());
    t = now();
  }
  return Rate{static_cast<double>(evals) / (t - t0), static_cast<double>(evals) / (cpu_now() - c0)};
}

}  // namespace

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  CLI::App app{"OpenMM target throughput vs a raw single-Context loop"};
  double seconds = 1.0;
  int rounds = 3;
  bool platforms = false;
  std::vector<std::string> names = {"alanine_dipeptide_vacuum", "alanine_dipeptide", "alanine_dipeptide_obc1"};
  std::vector<int> thread_counts = {1, 2};
  app.add_option("--seconds", seconds, "time per measurement")->check(CLI::PositiveNumber);
  app.add_option("--rounds", rounds, "interleaved rounds; the best is reported")->check(CLI::PositiveNumber);
  app.add_option("--potentials", names, "potential file stems under potentials/");
  app.add_option("--threads", thread_counts, "thread counts for the target");
  app.add_flag("--platforms", platforms, "also time a raw Context on every loaded platform");
  CLI11_PARSE(app, argc, argv);
  try {
    std::printf("%-26s %-9s %7s %11s %11s %7s %11s %11s %9s\n", "potential", "platform", "threads", "raw ctx/s",
                "target/s", "ratio", "raw/cpu-s", "tgt/cpu-s", "cpu-ratio");
    double checksum = 0.0;
    for (const auto& stem : names) {
      const fs::path file = fs::path(BOLTZLAB_SOURCE_DIR) / "potentials" / (stem + ".json");
      Potential p = load_potential(file);
      const auto& target = dynamic_cast<const OpenMMTarget&>(*p.target);
      const std::string key = stem == "alanine_dipeptide" ? "obc2" : stem.substr(std::string("alanine_dipeptide_").size());
      const bool slow = key == "obc1";
      const RowMatrix x = configurations(key, slow ? 64 : 512);
      RawContext raw(target.options().system_xml, target.options().platform);
      // Warm up every thread's Context before timing.
      for (int t : thread_counts) {
        set_num_threads(t);
        target_rate(target, x, 0.05, checksum);
      }
      Rate best_raw;
      std::vector<Rate> best(thread_counts.size());
      auto keep_best = [](Rate& b, const Rate& r) {
        b.wall = std::max(b.wall, r.wall);
        b.cpu = std::max(b.cpu, r.cpu);
      };
      for (int r = 0; r < rounds; ++r) {
        keep_best(best_raw, raw.rate(x, seconds, checksum));
        for (std::size_t k = 0; k < thread_counts.size(); ++k) {
          set_num_threads(thread_counts[k]);
          keep_best(best[k], target_rate(target, x, seconds, checksum));
        }
      }
      for (std::size_t k = 0; k < thread_counts.size(); ++k) {
        std::printf("%-26s %-9s %7d %11.0f %11.0f %6.1f%% %11.0f %11.0f %8.1f%%\n", stem.c_str(),
                    target.options().platform.c_str(), thread_counts[k], best_raw.wall, best[k].wall,
                    100.0 * best[k].wall / (best_raw.wall * thread_counts[k]), best_raw.cpu, best[k].cpu,
                    100.0 * best[k].cpu / best_raw.cpu);
      }
      if (platforms) {
        for (const auto& plat : openmm_platform_names()) {
          try {
            RawContext other(target.options().system_xml, plat);
            double b = 0.0;
            for (int r = 0; r < rounds; ++r) b = std::max(b, other.rate(x, seconds, checksum).wall);
            std::printf("%-26s %-9s %7s %12.0f   (raw single Context%s)\n", stem.c_str(), plat.c_str(), "-", b,
                        plat == "CPU" ? ", Threads=1" : "");
          } catch (const std::exception& e) {
            std::printf("%-26s %-9s unavailable: %s\n", stem.c_str(), plat.c_str(), e.what());
          }
        }
      }
      std::fflush(stdout);
    }
    std::printf("(checksum %.6g; goal: ratio >= 95%%; machine: %u hardware threads, shared)\n", checksum,
                std::thread::hardware_concurrency());
  } catch (const std::exception& e) {
    std::cerr << "bench_openmm: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
