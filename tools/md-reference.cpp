/// md-reference: reference sampling of an OpenMM potential with OpenMM's
/// LangevinMiddleIntegrator (minimize, equilibrate, production, thinned frames),
/// written as a standard run directory with molecular outputs. The protocol comes
/// from the potential file's "reference" section; flags override it.
///
///   md-reference --potential potentials/alanine_dipeptide.json --out runs/ala2_md
///     (then: --production-ns 10 --frame-interval-ps 1)
#include <iostream>

#include <CLI/CLI.hpp>

#include "boltzlab/core/error.hpp"
#include "boltzlab/app/md_reference.hpp"

using namespace boltzlab;

namespace {

struct Options {
  MdReferenceOptions run;
  double production_ns = 0, equilibration_ps = 0, timestep_fs = 0, friction_per_ps = 0, frame_interval_ps = 0,
         temperature = 0;
  long long seed = 0;
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
  app.add_option("--seed", o.seed, "run seed (replica r uses stream r)");
  app.add_option("--replicas", o.run.replicas, "independent trajectories, run in parallel");
  app.add_option("--threads", o.run.threads, "worker threads (0: all cores)");
  app.add_flag("--no-minimize", o.no_minimize, "skip the energy minimization");
  app.add_flag("--quiet", o.quiet, "no progress lines");
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
  if (app.count("--seed")) o.run.protocol["seed"] = o.seed;
  if (o.no_minimize) o.run.protocol["minimize"] = false;
  o.run.progress = !o.quiet;
  const Json summary = run_md_reference(o.run);
  std::cout << "md-reference: " << summary["counts"]["frames"] << " frames in " << o.run.out.string() << " ("
            << summary["timings"]["md"] << " s of MD)\n";
  return summary["counts"]["failed_replicas"].get<std::size_t>() == 0 ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Reference MD of an OpenMM potential (LangevinMiddleIntegrator) into a run directory"};
  Options o;
  setup(app, o);
  CLI11_PARSE(app, argc, argv);
  try {
    return run(app, o);
  } catch (const std::exception& e) {
    std::cerr << "md-reference: " << e.what() << "\n";
    return 1;
  }
}
