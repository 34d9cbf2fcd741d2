// bg-sample: train (or load) an OT-Boltzmann generator and draw weighted samples.
// All logic lives in lib/boltzlab/app/bg_run.* (see its header for the run-directory
// contract); this file maps flags to BgSampleOptions and tunes the process's allocator.
// Exit status, error lines, --quiet and --seed follow app/cli.hpp; the closing lines are
// the run's verdict (app/console.hpp).
#include <malloc.h>

#include <CLI/CLI.hpp>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/app/bg_run.hpp"
#include "boltzlab/app/cli.hpp"
#include "boltzlab/core/mpi.hpp"
#include "boltzlab/app/console.hpp"
#include "boltzlab/generators/presets.hpp"

namespace {

struct Flags {
  boltzlab::generators::BgSampleOptions run;
  bool quiet = false;
};

void setup(CLI::App& app, Flags& f) {
  auto& o = f.run;
  app.description(
      "Train an OT-Boltzmann generator (OT-Flow potential, v = -grad Phi) on a potential file, or "
      "load one, and write weighted samples with exact log q to a run directory.");
  app.add_option("--potential", o.potential, "potential file (potentials/*.json)");
  app.add_option("--model", o.model,
                 "trained model (model.pt of an earlier run, verified against the model.json beside it); "
                 "skips training");
  app.add_flag("--allow-other-potential", o.allow_other_potential,
               "use a --model trained on another potential (a warning instead of an error)");
  app.add_option("--samples", o.samples, "number of samples (default generator.samples or 100000)");
  app.add_option("--smc", o.smc,
                 "after the flow, annealed SMC with N particles from the flow's first N draws to the target "
                 "(settings: generator.smc); writes smc_*.npy and summary smc");
  app.add_option("--data", o.data, "samples of the target (.npy, N x d) for the forward KL");
  app.add_option("--out", o.out, "run directory (default bg-run)");
  boltzlab::add_seed_option(app, o.seed, "seed of the training and the base draws (default 1)");
  app.add_option("--threads", o.threads, "threads for oneTBB and LibTorch (0: all cores)");
  app.add_option("--evaluate", o.evaluate, "configurations (.npy) whose log q to write (needs --model)");
  app.add_option("--reference", o.reference,
                 "reference phi/psi (.npy, N x 2, radians) of a long MD run of the same system: "
                 "Ramachandran KL/TV and phi>0 population in summary.json (overrides generator.reference_dihedrals)");
  app.add_option("--iterations", o.iterations, "override generator.iterations");
  app.add_option("--preset", o.preset, boltzlab::generators::preset_help());
  app.add_option("--lambda", o.lambda, "override generator.lambda (weight of the forward KL)");
  app.add_option("--netcdf", o.netcdf,
                 "also write the weighted samples as NetCDF (ArviZ InferenceData: one chain, posterior x, "
                 "sample_stats log_weight, log_q, reduced_energy, lp)");
  app.add_flag("--resume", o.resume, "resume training from <out>.checkpoint.pt");
  app.add_flag("--refine", o.refine,
               "with --model: refine the loaded model by generator.refinement (weighted forward KL on its own "
               "fresh draws) before sampling; the refined model is saved");
  boltzlab::add_quiet_flag(app, f.quiet);
  app.add_flag("--no-progress", f.quiet)->group("");  // the former spelling of --quiet, hidden
}

/// Allocator: the flows allocate and free many MB-sized tensors per RK4 stage. With
/// glibc's defaults those are mmap'ed and unmapped every time (or trimmed back to the
/// kernel), and the page faults of re-zeroed pages dominated training on particle
/// systems (LJ13: 3.5 min of system time in a 4 min run). Keeping them on the heap
/// (mmap threshold at glibc's 32 MiB maximum, trimming only above 2 GiB, 512 MiB top
/// pad) cut that run's system time from 3.5 min to 1 s, with identical results:
/// allocation does not touch the arithmetic.
void tune_allocator() {
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 2047 * 1024 * 1024);
  mallopt(M_TOP_PAD, 512 * 1024 * 1024);
}

}  // namespace

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  // Under mpirun the training batch's chunks are split over the ranks (data-parallel
  // training; README "Running on several processes").
  boltzlab::mpi::Session mpi_session(argc, argv);
  CLI::App app{"bg-sample"};
  Flags flags;
  setup(app, flags);
  auto& o = flags.run;
  const int status = boltzlab::run_tool(
      "bg-sample", app, argc, argv,
      {[&] {
         boltzlab::mpi::run_step([&] {
           o.progress = !flags.quiet && boltzlab::mpi::is_root();
           o.validate();
           return 0;
         });
       },
       [&] {
         return boltzlab::mpi::run_step([&] {
           tune_allocator();
           const auto summary = boltzlab::generators::run_bg_sample(o);
           if (boltzlab::mpi::is_root()) boltzlab::run_verdict("bg-sample", summary, "wrote " + o.out.string()).print();
           return boltzlab::kExitOk;
         });
       }});
  return mpi_session.finish(status);
}
