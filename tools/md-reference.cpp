/// md-reference: reference sampling of an OpenMM potential with OpenMM's
/// LangevinMiddleIntegrator (minimize, equilibrate, production, thinned frames),
/// written as a standard run directory with molecular outputs. The protocol comes
/// from the potential file's "reference" section; flags override it.
///
///   md-reference --potential potentials/alanine_dipeptide.json --out runs/ala2_md
///     (then: --production-ns 10 --frame-interval-ps 1)
#include <optional>

#include <CLI/CLI.hpp>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/app/cli.hpp"
#include "boltzlab/app/console.hpp"
#include "boltzlab/app/md_reference.hpp"
#include "boltzlab/core/error.hpp"

using namespace boltzlab;

namespace {

struct Options {
  MdReferenceOptions run;
  double production_ns = 0, equilibration_ps = 0, timestep_fs = 0, friction_per_ps = 0, frame_interval_ps = 0,
         temperature = 0;
  std::optional<std::uint64_t> seed;
  bool no_minimize = false, quiet = false;
};

void setup(CLI::App& app, Options& o) {
  app.add_option("--potential", o.run.potential, "potential file (type openmm)")->required();
  app.add_option("--out", o.run.out, "run directory to write")->required();
  app.add_option("--production-ns", o.production_ns, "production length per replica (ns)");
  app.add_option("--equilibration-ps", o.equilibration_ps, "equilibration before recording (ps)");
  app.add_option("--timestep-fs", o.timestep_fs, "integration step (fs)");
  app.add_option("--friction", o.friction_per_ps, "collision rate (1/ps)");
  app.add_option("--frame-interval-ps", o.frame_interval_ps, "time between recorded frames (ps)");
  app.add_option("--temperature", o.temperature, "bath temperature (K); default: the potential's");
  add_seed_option(app, o.seed, "run seed (replica r uses stream r)");
  app.add_option("--replicas", o.run.replicas, "independent trajectories, run in parallel");
  app.add_option("--threads", o.run.threads, "worker threads (0: all cores)");
  app.add_option("--netcdf", o.run.netcdf,
                 "also write the frames as NetCDF (ArviZ InferenceData: replicas as chains, posterior x, "
                 "sample_stats reduced_energy, lp, potential_energy)");
  app.add_flag("--no-minimize", o.no_minimize, "skip the energy minimization");
  add_quiet_flag(app, o.quiet);
}

int run(const CLI::App& app, Options& o) {
  // Only the flags given on the command line override the potential's protocol.
  auto set = [&](const char* flag, const char* key, double v) {
    if (app.count(flag)) o.run.protocol[key] = v;
  };
  set("--production-ns", "production_ns", o.production_ns);
  set("--equilibration-ps", "equilibration_ps", o.equilibration_ps);
  set("--timestep-fs", "timestep_fs", o.timestep_fs);
  set("--friction", "friction_per_ps", o.friction_per_ps);
  set("--frame-interval-ps", "frame_interval_ps", o.frame_interval_ps);
  set("--temperature", "temperature", o.temperature);
  if (o.seed) o.run.protocol["seed"] = *o.seed;
  if (o.no_minimize) o.run.protocol["minimize"] = false;
  o.run.progress = !o.quiet;
  const Json summary = run_md_reference(o.run);
  run_verdict("md-reference", summary, "wrote " + o.run.out.string()).print();
  const std::size_t failed = summary["counts"]["failed_replicas"].get<std::size_t>();
  if (failed > 0)
    throw BackendError(std::to_string(failed) + " of " + std::to_string(o.run.replicas) +
                       " replicas stopped early on an OpenMM error; " + o.run.out.string() + " holds what was recorded");
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  CLI::App app{"Reference MD of an OpenMM potential (LangevinMiddleIntegrator) into a run directory"};
  Options o;
  setup(app, o);
  return run_tool("md-reference", app, argc, argv, {[&] { o.run.validate(); }, [&] { return run(app, o); }});
}
