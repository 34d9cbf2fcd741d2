/// replica-exchange: replica exchange (parallel tempering) of an OpenMM potential
/// with the project's LangevinMiddle stepper, written as a standard run directory
/// whose samples are the frames at the lowest temperature. Defaults come from the
/// potential file's "replica_exchange" section; flags override it.
///
///   replica-exchange --potential potentials/alanine_dipeptide.json --out runs/ala2_rex
///       --t-max 600 --replicas 4 --production-ns 20
///   (killed? the same command with --resume continues from runs/ala2_rex.checkpoint.rex)
#include <optional>
#include <sstream>

#include <CLI/CLI.hpp>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/app/cli.hpp"
#include "boltzlab/app/console.hpp"
#include "boltzlab/app/replica_exchange_run.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/mpi.hpp"

using namespace boltzlab;

namespace {

struct Options {
  ReplicaExchangeRunOptions run;
  std::string temperatures, swaps;
  double t_max = 0, production_ns = 0, equilibration_ps = 0, exchange_interval_ps = 0, frame_interval_ps = 0,
         timestep_fs = 0, friction_per_ps = 0;
  long long replicas = 0, checkpoint_exchanges = 0;
  std::optional<std::uint64_t> seed;
  bool no_minimize = false, quiet = false;
};

void setup(CLI::App& app, Options& o) {
  app.add_option("--potential", o.run.potential, "potential file (type openmm)")->required();
  app.add_option("--out", o.run.out, "run directory to write")->required();
  app.add_option("--temperatures", o.temperatures, "temperature ladder T1,T2,... (K, ascending; T1: samples)");
  app.add_option("--t-max", o.t_max, "highest temperature of a geometric ladder from the potential's (K)");
  app.add_option("--replicas", o.replicas, "number of temperatures of the geometric ladder");
  app.add_option("--production-ns", o.production_ns, "production length per replica (ns)");
  app.add_option("--equilibration-ps", o.equilibration_ps, "equilibration with swaps, not recorded (ps)");
  app.add_option("--exchange-interval-ps", o.exchange_interval_ps, "MD time between swap attempts (ps)");
  app.add_option("--frame-interval-ps", o.frame_interval_ps, "time between recorded frames (ps)");
  app.add_option("--swaps", o.swaps, "swap scheme: neighbors (even/odd) or all-pairs");
  app.add_option("--timestep-fs", o.timestep_fs, "integration step (fs)");
  app.add_option("--friction", o.friction_per_ps, "collision rate (1/ps)");
  add_seed_option(app, o.seed, "run seed (replica r uses stream r)");
  app.add_option("--threads", o.run.threads, "worker threads (0: all cores); results do not depend on it");
  app.add_option("--checkpoint-seconds", o.run.checkpoint_seconds, "wall time between checkpoints (0: off)");
  app.add_option("--checkpoint-exchanges", o.checkpoint_exchanges, "also a checkpoint every N exchanges (0: off)");
  app.add_flag("--resume", o.run.resume, "continue from <out>.checkpoint.rex");
  app.add_option("--netcdf", o.run.netcdf,
                 "also write the T_0 frames as NetCDF (ArviZ InferenceData: one chain, posterior x, "
                 "sample_stats reduced_energy, lp, potential_energy)");
  app.add_flag("--no-minimize", o.no_minimize, "skip the energy minimization");
  add_quiet_flag(app, o.quiet);
}

/// "300,350.5" as numbers. \throws ConfigError naming the flag and the bad item.
Json parse_temperatures(const std::string& text) {
  Json list = Json::array();
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || item.find_first_not_of(" \t", used) != std::string::npos) {
      throw ConfigError("--temperatures: '" + item + "' is not a number (expected T1,T2,... in K)");
    }
    list.push_back(v);
  }
  return list;
}

/// The flag values that need no file. \throws ConfigError naming the flag.
void check(const Options& o) {
  o.run.validate();
  if (o.checkpoint_exchanges < 0)
    throw ConfigError("--checkpoint-exchanges is " + std::to_string(o.checkpoint_exchanges) + ", but must be >= 0");
}

int run(const CLI::App& app, Options& o) {
  // Only the flags given on the command line override the potential's section.
  auto set = [&](const char* flag, const char* key, double v) {
    if (app.count(flag)) o.run.protocol[key] = v;
  };
  if (app.count("--temperatures")) o.run.protocol["temperatures"] = parse_temperatures(o.temperatures);
  set("--t-max", "t_max", o.t_max);
  if (app.count("--replicas")) o.run.protocol["replicas"] = o.replicas;
  set("--production-ns", "production_ns", o.production_ns);
  set("--equilibration-ps", "equilibration_ps", o.equilibration_ps);
  set("--exchange-interval-ps", "exchange_interval_ps", o.exchange_interval_ps);
  set("--frame-interval-ps", "frame_interval_ps", o.frame_interval_ps);
  set("--timestep-fs", "timestep_fs", o.timestep_fs);
  set("--friction", "friction_per_ps", o.friction_per_ps);
  if (app.count("--swaps")) o.run.protocol["swaps"] = o.swaps;
  if (o.seed) o.run.protocol["seed"] = *o.seed;
  if (o.no_minimize) o.run.protocol["minimize"] = false;
  o.run.checkpoint_exchanges = static_cast<std::size_t>(o.checkpoint_exchanges);
  o.run.progress = !o.quiet;
  const Json summary = run_replica_exchange_tool(o.run);
  if (mpi::is_root()) run_verdict("replica-exchange", summary, "wrote " + o.run.out.string()).print();
  const std::size_t non_finite = summary["counts"]["non_finite_replicas"].get<std::size_t>();
  if (non_finite > 0)
    throw BackendError(std::to_string(non_finite) + " replica(s) reached a non-finite energy; " + o.run.out.string() +
                       " holds what was recorded");
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  // Under mpirun the replicas are split over the ranks (README "Running on several processes").
  mpi::Session mpi_session(argc, argv);
  CLI::App app{"Replica exchange (parallel tempering) of an OpenMM potential into a run directory"};
  Options o;
  setup(app, o);
  const int status = run_tool("replica-exchange", app, argc, argv,
                              {[&] { mpi::run_step([&] { check(o); return 0; }); },
                               [&] { return mpi::run_step([&] { return run(app, o); }); }});
  return mpi_session.finish(status);
}
