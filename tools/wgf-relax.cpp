// wgf-relax: run a particle flow (ULA, MALA, BAOAB, and every other flow in
// lib/boltzlab/flows/registry.cpp) on a potential file and write the standard run
// directory. Thin: flags → RelaxOptions, the logic is run_relax() in
// lib/boltzlab/app/relax_run.hpp (which documents defaults and the "sampler" section).
// The flows and their one-line descriptions come from the flow table (flows/flow.hpp).
//
//   wgf-relax --potential potentials/manywell32.json --flow mala --particles 4096
//             --steps 2000 --out runs/mw32 [--step-size H] [--seed S] [--threads T] [--init X.npy]
#include <malloc.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/app/cli.hpp"
#include "boltzlab/app/console.hpp"
#include "boltzlab/app/relax_run.hpp"
#include "boltzlab/core/mpi.hpp"
#include "boltzlab/flows/flow.hpp"
#include "boltzlab/io/config.hpp"

namespace {

/// Flags whose "unset" state matters (the potential's sampler section fills them).
struct Optionals {
  std::vector<std::function<void()>> apply;
  template <class T>
  void add(CLI::App& app, const std::string& flags, std::optional<T>& target, const std::string& help) {
    auto value = std::make_shared<T>();
    CLI::Option* o = app.add_option(flags, *value, help);
    apply.push_back([o, value, &target] {
      if (o->count() > 0) target = *value;
    });
  }
};

/// Flags that are not RelaxOptions fields as they are.
struct Switches {
  bool no_plots = false;
};

void setup(CLI::App& app, boltzlab::RelaxOptions& opt, Optionals& optionals, Switches& switches) {
  // The flow list is the flow table: name, whether the particles interact, description.
  std::size_t width = 0;
  for (const auto& row : boltzlab::flow_table()) width = std::max(width, row.name.size());
  std::string flows = "Flows (--flow NAME; interacting: the particles move together, independent: one chain each):\n";
  for (const auto& row : boltzlab::flow_table()) {
    flows += "  " + row.name + std::string(width + 2 - row.name.size(), ' ') +
             (row.interacting ? "interacting  " : "independent  ") + row.description + "\n";
  }
  app.description(
      "Relax/sample a particle ensemble toward exp(-u) with a particle flow and write a run directory "
      "(samples.npy, reduced_energies.npy, summary.json, plots). Unset options come from the potential "
      "file's \"sampler\" section, else built-in defaults (see README).");
  app.add_option("--potential", opt.potential, "potential file (potentials/*.json)")->required();
  app.add_option("--out", opt.out, "output run directory (replaced atomically)")->required();
  optionals.add(app, "--flow", opt.flow, "flow, one of the list below (default mala)");
  optionals.add(app, "--particles", opt.particles, "number of particles (default 1024, or the rows of --init)");
  optionals.add(app, "--steps", opt.steps, "steps after warm-up (default 1000)");
  optionals.add(app, "--warmup", opt.warmup, "warm-up steps: burn-in, MALA step-size adaptation (default steps/4)");
  optionals.add(app, "--step-size", opt.step_size, "step size tau / time step h (default: the flow's)");
  boltzlab::add_seed_option(app, opt.seed, "run seed; particle i draws from stream (seed, i) (default 0)");
  app.add_option("--threads", opt.threads, "worker threads (0: all cores); results do not depend on it");
  app.add_option("--init", opt.init, "initial ensemble, an (N, d) .npy file")->check(CLI::ExistingFile);
  optionals.add(app, "--init-scale", opt.init_scale, "default init N(0, scale^2 I) (default 1)");
  optionals.add(app, "--thin", opt.thin, "record a frame every k steps after warm-up into frames.npy (0: none)");
  optionals.add(app, "--max-frames", opt.max_frames, "at most this many frames (default 1000)");
  optionals.add(app, "--beta-start", opt.beta_start, "annealing: initial inverse temperature (default 1)");
  optionals.add(app, "--beta-steps", opt.beta_steps, "annealing: steps from beta-start to 1 (geometric; default 0)");
  optionals.add(app, "--tolerance", opt.tolerance, "stop when <u> changes by less than tol*max(1,|<u>|) between monitors");
  optionals.add(app, "--monitor-every", opt.monitor_every, "steps between mean-energy monitors (default 10)");
  app.add_option("--param", opt.params, "flow parameter key=value (JSON value), repeatable, e.g. --param friction=2");
  boltzlab::add_quiet_flag(app, opt.quiet);
  app.add_flag("--no-plots", switches.no_plots, "skip the PNG plots");
  app.add_option("--netcdf", opt.netcdf, "also write the samples as NetCDF (ArviZ InferenceData: posterior, sample_stats)");
  app.add_flag("--strict", opt.strict, "exit 1 when particles diverged (non-finite, exploded) or got stuck");
  app.footer(flows);
}

/// Allocator (as bg-sample): the interacting flows allocate and free several N×d
/// buffers per step; with glibc's defaults the heap top is trimmed back to the kernel
/// and regrown every step, and the page faults cost ~20 % of an SVGD run on LJ13
/// (1000 particles). Keeping them on the heap changes no result.
void tune_allocator() {
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 2047 * 1024 * 1024);
  mallopt(M_TOP_PAD, 512 * 1024 * 1024);
}

}  // namespace

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  tune_allocator();
  // Under mpirun the particles are split over the ranks (README "Running on several processes").
  boltzlab::mpi::Session mpi_session(argc, argv);
  CLI::App app{"wgf-relax"};
  boltzlab::RelaxOptions opt;
  Optionals optionals;
  Switches switches;
  setup(app, opt, optionals, switches);
  const int status = boltzlab::run_tool(
      "wgf-relax", app, argc, argv,
      {[&] {
         boltzlab::mpi::run_step([&] {
           for (auto& f : optionals.apply) f();
           opt.plots = !switches.no_plots;
           opt.validate();
           return 0;
         });
       },
       [&] {
         return boltzlab::mpi::run_step([&] {
           const boltzlab::RelaxReport report = boltzlab::run_relax(opt);
           if (!boltzlab::mpi::is_root()) return boltzlab::kExitOk;  // rank 0 wrote and reports
           const nlohmann::json summary = boltzlab::read_json_file(report.out / "summary.json");
           boltzlab::run_verdict("wgf-relax", summary, "wrote " + report.out.string()).print();
           return boltzlab::kExitOk;
         });
       }});
  return mpi_session.finish(status);
}
