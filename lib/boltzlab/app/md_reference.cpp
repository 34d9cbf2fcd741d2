#include "boltzlab/app/md_reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "boltzlab/app/molecular_outputs.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/app/run_outputs.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/progress.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/io/netcdf.hpp"
#include "boltzlab/targets/registry.hpp"

namespace fs = std::filesystem;

namespace boltzlab {

void MdReferenceOptions::validate() const {
  if (potential.empty()) throw ConfigError("--potential: missing");
  if (out.empty()) throw ConfigError("--out: missing");
  if (replicas == 0) throw ConfigError("--replicas: is 0, but must be >= 1");
}

namespace {

/// The frames of all replicas stacked replica-major, with per-frame potential energy
/// (kJ/mol) and replica index, and per-replica summaries.
struct PooledFrames {
  RowMatrix samples;
  Eigen::VectorXd energies, replica_index;
  nlohmann::json replicas = nlohmann::json::array();
  std::size_t failed = 0, md_steps = 0, longest = 0;
  double mean_kinetic_temperature = 0.0;  ///< mean over replicas (K)
};

nlohmann::json replica_summary(const LangevinMdResult& r, std::size_t k, double timestep_fs) {
  const double steps = static_cast<double>(r.production_steps + r.equilibration_steps);
  nlohmann::json rep = {
      {"replica", k},
      {"frames", r.frames.rows()},
      {"start_energy_kJ_per_mol", r.start_energy},
      {"minimized_energy_kJ_per_mol", r.minimized_energy},
      {"equilibration_steps", r.equilibration_steps},
      {"production_steps", r.production_steps},
      {"mean_kinetic_temperature_K", r.mean_kinetic_temperature},
      {"wall_seconds", r.wall_seconds},
      {"ns_per_day", r.wall_seconds > 0 ? steps * timestep_fs * 1e-6 / (r.wall_seconds / 86400.0) : 0.0}};
  if (r.failed) rep["failure"] = r.failure;
  return rep;
}

PooledFrames pool_replicas(const std::vector<LangevinMdResult>& results, std::size_t dim, double timestep_fs) {
  Eigen::Index total = 0;
  for (const auto& r : results) total += r.frames.rows();
  PooledFrames p;
  p.samples.resize(total, static_cast<Eigen::Index>(dim));
  p.energies.resize(total);
  p.replica_index.resize(total);
  Eigen::Index row = 0;
  for (std::size_t k = 0; k < results.size(); ++k) {
    const auto& r = results[k];
    p.samples.middleRows(row, r.frames.rows()) = r.frames;
    p.energies.segment(row, r.frames.rows()) = r.potential_energies;
    p.replica_index.segment(row, r.frames.rows()).setConstant(static_cast<double>(k));
    row += r.frames.rows();
    p.failed += r.failed ? 1 : 0;
    p.md_steps += r.equilibration_steps + r.production_steps;
    p.longest = std::max(p.longest, static_cast<std::size_t>(r.frames.rows()));
    p.mean_kinetic_temperature += r.mean_kinetic_temperature / static_cast<double>(results.size());
    p.replicas.push_back(replica_summary(r, k, timestep_fs));
  }
  return p;
}

/// Mean u over the replicas at each frame time (frame f after (f+1)·steps_per_frame
/// production steps), over the replicas that reached it with a finite u.
void mean_energy_trace(const std::vector<LangevinMdResult>& results, const Eigen::VectorXd& u, std::size_t longest,
                       std::size_t steps_per_frame, std::vector<double>& steps, std::vector<double>& mean_u) {
  for (std::size_t f = 0; f < longest; ++f) {
    double sum = 0.0;
    std::size_t count = 0;
    Eigen::Index offset = 0;
    for (const auto& r : results) {
      if (static_cast<Eigen::Index>(f) < r.frames.rows() && std::isfinite(u[offset + static_cast<Eigen::Index>(f)])) {
        sum += u[offset + static_cast<Eigen::Index>(f)];
        ++count;
      }
      offset += r.frames.rows();
    }
    steps.push_back(static_cast<double>((f + 1) * steps_per_frame));
    mean_u.push_back(count ? sum / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN());
  }
}

/// At most this many replicas in energy_trace.png.
constexpr std::size_t kTraceReplicas = 8;

/// energy_trace.png: E (kJ/mol) and kinetic T (K) of each replica against production time.
MdTrace md_trace(const std::vector<LangevinMdResult>& results, const LangevinMdOptions& md, double bath_k) {
  MdTrace t;
  const double frame_ps = static_cast<double>(md.steps_per_frame()) * md.timestep_fs / 1000.0;
  const std::size_t shown = std::min(results.size(), kTraceReplicas);
  for (std::size_t k = 0; k < shown; ++k) {
    const LangevinMdResult& r = results[k];
    std::vector<double> time(static_cast<std::size_t>(r.potential_energies.size()));
    for (std::size_t f = 0; f < time.size(); ++f) time[f] = static_cast<double>(f + 1) * frame_ps;
    const std::string name = "replica " + std::to_string(k);
    t.energy.push_back({name, time, {r.potential_energies.data(), r.potential_energies.data() + r.potential_energies.size()}});
    t.temperature.push_back(
        {name, time, {r.kinetic_temperatures.data(), r.kinetic_temperatures.data() + r.kinetic_temperatures.size()}});
  }
  t.bath_temperatures = {bath_k};
  t.caption = {"t = 0: start of production, after " + std::string(md.minimize ? "minimization and " : "") +
               format_number(md.equilibration_ps) + " ps of equilibration (not shown)"};
  if (shown < results.size()) {
    t.caption.push_back("the first " + std::to_string(shown) + " of " + std::to_string(results.size()) + " replicas");
  }
  return t;
}

/// --netcdf: replicas as chains, frames as draws (NaN after the end of a replica that
/// stopped early); `u` is the pooled reduced energies (replica-major, as pooled.samples).
InferenceData md_inference_data(const std::vector<LangevinMdResult>& results, const PooledFrames& pooled,
                                const Eigen::VectorXd& u) {
  const std::size_t chains = results.size(), draws = std::max<std::size_t>(pooled.longest, 1);
  const auto d = static_cast<std::size_t>(pooled.samples.cols());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ChainVariable x{"x", {d}, std::vector<double>(chains * draws * d, nan)};
  ChainVariable energy{"reduced_energy", {}, std::vector<double>(chains * draws, nan)};
  ChainVariable lp{"lp", {}, energy.values};
  ChainVariable kj{"potential_energy", {}, energy.values};
  Eigen::Index row = 0;
  for (std::size_t c = 0; c < chains; ++c) {
    for (Eigen::Index f = 0; f < results[c].frames.rows(); ++f, ++row) {
      const std::size_t at = c * draws + static_cast<std::size_t>(f);  // (chain, draw) in C order
      std::copy(pooled.samples.row(row).data(), pooled.samples.row(row).data() + d,
                x.values.begin() + static_cast<std::ptrdiff_t>(at * d));
      energy.values[at] = u[row];
      lp.values[at] = -u[row];
      kj.values[at] = pooled.energies[row];
    }
  }
  InferenceData data;
  data.chains = chains;
  data.draws = draws;
  data.posterior = {std::move(x)};
  data.sample_stats = {std::move(energy), std::move(lp), std::move(kj)};
  return data;
}

/// summary["options"]: the protocol as run.
nlohmann::json protocol_summary(const LangevinMdOptions& md, const OpenMMTarget& target,
                                const MdReferenceOptions& options, bool serial) {
  return {{"integrator", "LangevinMiddleIntegrator (OpenMM)"},
          {"timestep_fs", md.timestep_fs},
          {"friction_per_ps", md.friction_per_ps},
          {"temperature_K", md.temperature > 0 ? md.temperature : target.temperature()},
          {"minimize", md.minimize},
          {"minimize_tolerance_kJ_per_mol_nm", md.minimize_tolerance},
          {"equilibration_ps", md.equilibration_ps},
          {"production_ns", md.production_ps / 1000.0},
          {"frame_interval_ps", md.frame_interval_ps},
          {"replicas", options.replicas},
          {"replicas_in_parallel", !serial && options.replicas > 1},
          {"platform", target.options().platform}};
}

}  // namespace

nlohmann::json run_md_reference(const MdReferenceOptions& options) {
  options.validate();
  if (options.threads != 0) set_num_threads(options.threads);
  Potential potential = load_potential(options.potential);
  const auto* target = dynamic_cast<const OpenMMTarget*>(potential.target.get());
  if (!target) {
    throw ConfigError(options.potential.string() + ": md-reference needs an OpenMM potential (type openmm), got type '" +
                      potential.type + "'");
  }
  LangevinMdOptions md = md_options_from_json(potential.reference, options.potential.string() + ": reference");
  md = md_options_from_json(options.protocol, "options", md);
  md.progress = options.progress;
  RunDirectory run(options.out, potential_files(potential));  // fails early when the output may not be written
  if (!options.netcdf.empty()) check_netcdf_output(options.netcdf, potential_files(potential), options.out);

  const double t0 = wall_seconds();
  std::vector<LangevinMdResult> results(options.replicas);
  // The Reference platform's integrators draw from one process-global random
  // generator (SimTKOpenMMUtilities): concurrent trajectories would race on it, so
  // Reference replicas run one after another (each still has its own seed).
  const bool serial = target->options().platform == "Reference";
  for_each_index(
      options.replicas, [&](std::size_t r) { results[r] = run_langevin_md(*target, target->initial_positions(), md, r); },
      serial ? Execution::kSerial : Execution::kParallel);
  const double md_seconds = wall_seconds() - t0;
  const PooledFrames pooled = pool_replicas(results, target->dim(), md.timestep_fs);

  // u of the frames through the target (identical to E/kT unless a cut/cap is set).
  Eigen::VectorXd u;
  const BatchStats stats = target->evaluate_batch(pooled.samples, u, nullptr);
  RunOutputs o;
  mean_energy_trace(results, u, pooled.longest, md.steps_per_frame(), o.trace_steps, o.traces["mean_energy"]);
  run.write_array("potential_energies.npy", pooled.energies);
  run.write_array("replica.npy", pooled.replica_index);

  const Eigen::Index total = pooled.samples.rows();
  o.tool = "md-reference";
  o.potential_path = options.potential;
  o.potential_name = potential.name;
  o.target = target;
  o.seed = md.seed;
  o.options = protocol_summary(md, *target, options, serial);
  o.samples = &pooled.samples;
  o.reduced_energies = &u;
  o.counts = {{"frames", total}, {"replicas", options.replicas}, {"failed_replicas", pooled.failed},
              {"md_steps", pooled.md_steps}, {"non_finite_evaluations", stats.non_finite}};
  o.timings = {{"md", md_seconds}};
  o.md_trace = md_trace(results, md, md.temperature > 0 ? md.temperature : target->temperature());
  o.statistics = {{"mean_potential_energy_kJ_per_mol", total ? pooled.energies.mean() : 0.0},
                  {"mean_kinetic_temperature_K", pooled.mean_kinetic_temperature},
                  {"replicas", pooled.replicas}};
  o.extra = {{"md_files", {{"potential_energies.npy", "E of each frame (kJ/mol), from the MD Context"},
                           {"replica.npy", "replica index of each frame"}}}};
  if (pooled.failed) {
    o.notes.push_back(std::to_string(pooled.failed) +
                      " replica(s) stopped early on an OpenMM error (see statistics.replicas)");
  }
  nlohmann::json summary = write_run(run, o);
  run.commit();
  if (!options.netcdf.empty()) {
    InferenceData data = md_inference_data(results, pooled, u);
    data.attributes = {{"tool", "md-reference"}, {"potential", potential.name}, {"seed", std::to_string(md.seed)},
                       {"temperature_K", format_number(md.temperature > 0 ? md.temperature : target->temperature())}};
    write_inference_data(options.netcdf, data);
  }
  return summary;
}

}  // namespace boltzlab
