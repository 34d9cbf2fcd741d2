// ULA throughput on ManyWell-32 (particle-steps per second) at a given thread count,
// against the equivalent vectorized PyTorch ULA (benchmarks/ula_torch.py) run in the
// same invocation through /usr/bin/python3. Prints both rates and the ratio.
//
//   build/bin/bench_ula [--particles 4096] [--steps 1000] [--threads 2] [--no-torch]
//
// Both sides: float64, analytic gradient, one N(0, I) draw per coordinate and step,
// best of --repeats timed runs after an untimed warm-up run. The PyTorch baseline is
// the faster of torch.set_num_threads(threads) and of 1 thread (on a machine shared
// with other jobs, OpenMP spin-waiting can make 2 threads slower than 1; the more
// favourable baseline is the honest one), with OMP_WAIT_POLICY=PASSIVE and glibc's
// allocator set as the tools set it (MALLOC_*_, as mallopt in tools/wgf-relax.cpp). The
// PyTorch JSON line names the BLAS it runs on.
#include <algorithm>
#include <ctime>
#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/flows/langevin.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/targets/registry.hpp"

namespace {

/// Runs the PyTorch baseline; returns its wall-clock rate and sets `cpu_rate`
/// (particle-steps per CPU-second of the process, all threads).
double torch_rate(const std::string& script, std::size_t particles, std::size_t steps, int threads,
                  std::string& detail, double& cpu_rate) {
  const std::string cmd = boltzlab::blas_environment_for_children() + "OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=2146435072 "
                          "MALLOC_TOP_PAD_=536870912 /usr/bin/python3 '" + script + "' --particles " +
                          std::to_string(particles) + " --steps " + std::to_string(steps) + " --threads " +
                          std::to_string(threads) + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  if (!pipe) return 0.0;
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe.get())) out += buf;
  // The JSON line is the last line that starts with '{' (it holds nested objects).
  std::size_t brace = !out.empty() && out.front() == '{' ? 0 : std::string::npos;
  const auto line = out.rfind("\n{");
  if (line != std::string::npos) brace = line + 1;
  if (brace == std::string::npos) {
    detail = out;
    return 0.0;
  }
  const auto j = nlohmann::json::parse(out.substr(brace), nullptr, false);
  if (j.is_discarded() || !j.contains("particle_steps_per_second")) {
    detail = out;
    return 0.0;
  }
  detail = j.dump();
  cpu_rate = j.value("particle_steps_per_cpu_second", 0.0);
  return j["particle_steps_per_second"].get<double>();
}

}  // namespace

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  CLI::App app{"bench_ula: ULA on ManyWell-32, boltzlab vs vectorized PyTorch"};
  std::size_t particles = 4096, steps = 1000, torch_steps = 200;
  int threads = 2, repeats = 3;
  bool no_torch = false;
  app.add_option("--particles", particles, "particles");
  app.add_option("--steps", steps, "ULA steps per timed run (boltzlab)");
  app.add_option("--torch-steps", torch_steps, "ULA steps per timed run (PyTorch)");
  app.add_option("--threads", threads, "threads for both");
  app.add_option("--repeats", repeats, "timed runs (best is reported)");
  app.add_flag("--no-torch", no_torch, "skip the PyTorch baseline");
  CLI11_PARSE(app, argc, argv);
  try {
    boltzlab::set_num_threads(threads);
    const std::string src = BOLTZLAB_SOURCE_DIR;
    const boltzlab::Potential pot = boltzlab::load_potential(src + "/potentials/manywell32.json");
    const boltzlab::Target& target = *pot.target;
    boltzlab::UlaFlow ula;
    boltzlab::FlowOptions opt;
    opt.steps = steps;
    opt.step_size = 0.01;
    opt.progress = false;
    opt.monitor_every = 100;
    double best = 1e300, best_cpu = 1e300;
    double mean_energy = 0.0;
    for (int r = 0; r <= repeats; ++r) {
      boltzlab::Ensemble ens(particles, target.dim());
      for (std::size_t i = 0; i < particles; ++i) {
        boltzlab::Rng rng(1, i);
        rng.fill_normal(ens.particle(i), target.dim());
      }
      const double t0 = boltzlab::wall_seconds();
      const std::clock_t c0 = std::clock();  // process CPU time, all threads
      const boltzlab::FlowResult res = ula.run(target, ens, opt);
      const double dt = boltzlab::wall_seconds() - t0;
      const double dc = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
      if (r > 0) {  // run 0 is the untimed warm-up
        best = std::min(best, dt);
        best_cpu = std::min(best_cpu, dc);
      }
      mean_energy = res.monitors.at("mean_energy").back();
    }
    const double work = static_cast<double>(particles) * static_cast<double>(steps);
    const double rate = work / best, cpu_rate = work / best_cpu;
    std::printf("boltzlab ULA  ManyWell-32: %zu particles x %zu steps, %d threads: %.3g particle-steps/s "
                "(best of %d: %.3f s; %.3g per CPU-second; final <u> = %.2f)\n",
                particles, steps, threads, rate, repeats, best, cpu_rate, mean_energy);
    if (no_torch) return 0;
    const std::string script = src + "/benchmarks/ula_torch.py";
    std::string detail_n, detail_1;
    double cpu_n = 0.0, cpu_1 = 0.0;
    const double torch_n = torch_rate(script, particles, torch_steps, threads, detail_n, cpu_n);
    const double torch_1 = threads != 1 ? torch_rate(script, particles, torch_steps, 1, detail_1, cpu_1) : 0.0;
    if (torch_n <= 0 && torch_1 <= 0) {
      std::printf("PyTorch baseline failed: %s\n", detail_n.c_str());
      return 1;
    }
    std::printf("PyTorch ULA   (%d threads): %.3g particle-steps/s  %s\n", threads, torch_n, detail_n.c_str());
    if (threads != 1) std::printf("PyTorch ULA   (1 thread):  %.3g particle-steps/s  %s\n", torch_1, detail_1.c_str());
    const double baseline = std::max(torch_n, torch_1);
    std::printf("ratio boltzlab / PyTorch (wall clock, faster PyTorch setting): %.1fx\n", rate / baseline);
    // On a machine shared with other jobs wall-clock rates depend on the CPU share each
    // process got; throughput per CPU-second does not (it is what 2 idle cores deliver
    // per core).
    const double cpu_baseline = std::max(cpu_n, cpu_1);
    if (cpu_baseline > 0) {
      std::printf("ratio per CPU-second (insensitive to other load on the machine): %.1fx\n",
                  cpu_rate / cpu_baseline);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_ula: error: %s\n", e.what());
    return 1;
  }
}
