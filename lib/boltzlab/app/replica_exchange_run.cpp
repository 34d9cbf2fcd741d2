#include "boltzlab/app/replica_exchange_run.hpp"

#include <cmath>
#include <iomanip>
#include <limits>
#include <memory>
#include <sstream>
#include <system_error>

#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/app/run_outputs.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/mpi.hpp"
#include "boltzlab/estimators/conformations.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/io/netcdf.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/io/plot.hpp"
#include "boltzlab/targets/registry.hpp"

namespace fs = std::filesystem;

namespace boltzlab {

void ReplicaExchangeRunOptions::validate() const {
  if (potential.empty()) throw ConfigError("--potential: missing");
  if (out.empty()) throw ConfigError("--out: missing");
  if (!(checkpoint_seconds >= 0) || !std::isfinite(checkpoint_seconds)) {
    throw ConfigError("--checkpoint-seconds: is " + format_number(checkpoint_seconds) + ", but must be >= 0");
  }
}

fs::path replica_exchange_checkpoint_path(const fs::path& out) { return checkpoint_path(out, ".checkpoint.rex"); }

ReplicaExchangeOptions resolve_replica_exchange_options(const Json& section, const Json& protocol,
                                                        double temperature, const std::string& potential) {
  if (!section.is_null() && !section.is_object()) {
    throw ConfigError(potential + ": replica_exchange: expected an object, got " + section.dump());
  }
  Json merged = section.is_null() ? Json::object() : section;
  const bool ladder_flags = protocol.contains("temperatures") || protocol.contains("t_max") ||
                            protocol.contains("replicas") || protocol.contains("t_min");
  if (ladder_flags) {
    for (const char* key : {"temperatures", "t_max", "replicas", "t_min"}) merged.erase(key);
  }
  for (const auto& [key, value] : protocol.items()) merged[key] = value;
  const std::string context = protocol.empty() ? potential + ": replica_exchange" : "options";
  if (!merged.contains("temperatures") && !merged.contains("t_max")) {
    throw ConfigError("--temperatures: no temperature ladder: give --temperatures T1,T2,... or --t-max with --replicas "
                      "(or a replica_exchange section in " + potential + ")");
  }
  ReplicaExchangeOptions base;
  base.temperatures = {temperature};
  return replica_exchange_options_from_json(merged, context, base);
}

namespace {

/// Accepted / attempted per pair (NaN where never attempted).
RowMatrix acceptance_matrix(const ReplicaExchangeResult& r) {
  RowMatrix a(r.swap_attempts.rows(), r.swap_attempts.cols());
  for (Eigen::Index i = 0; i < a.rows(); ++i)
    for (Eigen::Index j = 0; j < a.cols(); ++j)
      a(i, j) = r.swap_attempts(i, j) > 0 ? r.swap_accepted(i, j) / r.swap_attempts(i, j)
                                          : std::numeric_limits<double>::quiet_NaN();
  return a;
}

/// At most this many production exchanges and replicas in mixing.png (a longer run
/// shows its first kMixingExchanges; the whole history is in replica_states.npy).
constexpr std::size_t kMixingExchanges = 1000;
constexpr std::size_t kMixingReplicas = 8;

/// mixing.png: one panel per replica, its temperature index against production time.
std::string plot_mixing(const ReplicaExchangeResult& r, double exchange_ps, const fs::path& png) {
  const auto P = std::min(kMixingExchanges, static_cast<std::size_t>(r.replica_states.rows()));
  const auto K = static_cast<std::size_t>(r.replica_states.cols());
  const std::size_t shown = std::min(K, kMixingReplicas);
  if (P < 2) return "mixing.png skipped: fewer than 2 production exchanges";
  std::ostringstream s;
  for (std::size_t rep = 0; rep < shown; ++rep) {
    std::vector<double> t, k;
    for (std::size_t p = 0; p < P; ++p) {
      t.push_back(static_cast<double>(p + 1) * exchange_ps);
      k.push_back(r.replica_states(static_cast<Eigen::Index>(p), static_cast<Eigen::Index>(rep)));
    }
    s << gnuplot_datablock("r" + std::to_string(rep), {t, k});
  }
  s << "set multiplot layout " << shown << ",1 title "
    << gnuplot_string("temperature index of each replica, first " + std::to_string(P) +
                      " exchanges (all: replica_states.npy)")
    << "\nset yrange [-0.3:" << static_cast<double>(K) - 0.7
    << "]\nset ytics (";
  for (std::size_t k = 0; k < K; ++k) {
    s << (k ? ", " : "") << "'" << std::fixed << std::setprecision(0) << r.temperatures[k] << " K' " << k;
  }
  s << ")\nset grid\nset lmargin 12\nset tmargin 0.5\nset bmargin 1.5\n";
  for (std::size_t rep = 0; rep < shown; ++rep) {
    s << "set tmargin " << (rep == 0 ? "2.5" : "0.5") << "\n";
    if (rep + 1 == shown) s << "set xlabel 'production time (ps)'\nset bmargin 3.5\n";
    s << "set ylabel 'replica " << rep << "'\nplot $r" << rep << " using 1:2 with steps lw 1.5 lc " << rep + 1
      << " notitle\n";
  }
  s << "unset multiplot\n";
  const PlotResult res = run_gnuplot(s.str(), png, 1000, static_cast<int>(120 * shown + 130));
  return res.ok ? "ok" : res.note;
}

/// energy_trace.png: E (kJ/mol) at each temperature (the first kMixingReplicas) against
/// production time; the kinetic temperatures are recorded as means only (in the caption).
MdTrace rex_trace(const ReplicaExchangeResult& r, const ReplicaExchangeOptions& o) {
  MdTrace t;
  const std::size_t shown = std::min(r.temperatures.size(), kMixingReplicas);
  std::ostringstream caption;
  caption << "mean kinetic T (recorded as means only):";
  for (std::size_t k = 0; k < shown; ++k) {
    const Eigen::VectorXd& e = r.potential_energies[k];
    std::vector<double> time(static_cast<std::size_t>(e.size()));
    for (std::size_t f = 0; f < time.size(); ++f) time[f] = static_cast<double>(f + 1) * o.frame_interval_ps;
    t.energy.push_back({format_number(r.temperatures[k]) + " K", time, {e.data(), e.data() + e.size()}});
    caption << (k ? ", " : " ") << std::fixed << std::setprecision(1) << r.mean_kinetic_temperature[k] << " K ("
            << std::setprecision(0) << r.temperatures[k] << " K bath)";
  }
  t.caption = {"t = 0: start of production, after " + format_number(o.equilibration_ps) + " ps of equilibration",
               caption.str()};
  if (shown < r.temperatures.size()) {
    t.caption.push_back("the first " + std::to_string(shown) + " of " + std::to_string(r.temperatures.size()) +
                        " temperatures");
  }
  return t;
}

/// The extra arrays and the mixing plot; returns {file: what it holds}.
nlohmann::json write_replica_files(const RunDirectory& run, const ReplicaExchangeResult& r,
                                   const ReplicaExchangeOptions& o, nlohmann::json& plots) {
  const std::size_t K = r.temperatures.size();
  const auto F = static_cast<std::size_t>(r.frames[0].rows());
  const auto d = static_cast<std::size_t>(r.frames[0].cols());
  run.write_array("temperatures.npy", Eigen::VectorXd(Eigen::Map<const Eigen::VectorXd>(r.temperatures.data(),
                                                                                          static_cast<Eigen::Index>(K))));
  std::vector<NpyPiece> frames, energies;
  for (std::size_t k = 0; k < K; ++k) {
    frames.push_back({r.frames[k].data(), F * d});
    energies.push_back({r.potential_energies[k].data(), F});
  }
  write_npy_pieces(run.path("frames_by_temperature.npy"), {K, F, d}, frames);
  write_npy_pieces(run.path("energies_by_temperature.npy"), {K, F}, energies);
  run.write_array("potential_energies.npy", r.potential_energies[0]);
  run.write_array("swap_attempts.npy", RowMatrix(r.swap_attempts));
  run.write_array("swap_acceptance.npy", acceptance_matrix(r));
  run.write_array("replica_states.npy", r.replica_states);
  plots["mixing.png"] = plot_mixing(r, o.exchange_interval_ps, run.path("mixing.png"));
  return {{"temperatures.npy", "(K) the temperature ladder (K)"},
          {"frames_by_temperature.npy", "(K, F, 3n) frames at each temperature (nm); [0] = samples.npy"},
          {"energies_by_temperature.npy", "(K, F) potential energy of those frames (kJ/mol)"},
          {"potential_energies.npy", "(F) potential energy of the T_0 frames (kJ/mol)"},
          {"swap_attempts.npy", "(K, K) swap attempts by temperature pair (production)"},
          {"swap_acceptance.npy", "(K, K) accepted / attempted swaps (NaN: never attempted)"},
          {"replica_states.npy", "(P, K) temperature index of each replica after each production exchange"}};
}

/// Per temperature: T, mean/std/sem of E (sem from 20 blocks), kinetic temperature.
nlohmann::json per_temperature(const ReplicaExchangeResult& r) {
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t k = 0; k < r.temperatures.size(); ++k) {
    const Eigen::VectorXd& e = r.potential_energies[k];
    const EnergyStats s = energy_stats(e);
    const Eigen::Index blocks = 20, len = e.size() / blocks;
    double sem = std::numeric_limits<double>::quiet_NaN();
    if (len > 0) {
      Eigen::VectorXd means(blocks);
      for (Eigen::Index b = 0; b < blocks; ++b) means[b] = e.segment(b * len, len).mean();
      const double m = means.mean();
      sem = std::sqrt((means.array() - m).square().sum() / static_cast<double>(blocks - 1) / static_cast<double>(blocks));
    }
    out.push_back({{"temperature_K", r.temperatures[k]},
                   {"frames", e.size()},
                   {"mean_potential_energy_kJ_per_mol", s.mean},
                   {"std_potential_energy_kJ_per_mol", s.std},
                   {"sem_potential_energy_kJ_per_mol", sem},
                   {"mean_kinetic_temperature_K", r.mean_kinetic_temperature[k]}});
  }
  return out;
}

nlohmann::json neighbor_summary(const ReplicaExchangeResult& r) {
  nlohmann::json out = nlohmann::json::array();
  const std::vector<double> a = r.neighbor_acceptance();
  for (std::size_t k = 0; k + 1 < r.temperatures.size(); ++k) {
    const auto i = static_cast<Eigen::Index>(k);
    out.push_back({{"pair", {k, k + 1}},
                   {"temperatures_K", {r.temperatures[k], r.temperatures[k + 1]}},
                   {"attempts", r.swap_attempts(i, i + 1)},
                   {"accepted", r.swap_accepted(i, i + 1)},
                   {"acceptance", a[k]}});
  }
  return out;
}

nlohmann::json statistics(const ReplicaExchangeResult& r, const OpenMMTarget& target) {
  std::size_t trips = 0;
  for (std::size_t t : r.round_trips) trips += t;
  nlohmann::json s = {{"temperatures_K", r.temperatures},
                      {"neighbor_acceptance", r.neighbor_acceptance()},
                      {"neighbors", neighbor_summary(r)},
                      {"round_trips", trips},
                      {"round_trips_per_replica", r.round_trips},
                      {"per_temperature", per_temperature(r)},
                      {"integrator", "LangevinMiddle (BAOA), per-replica streams"},
                      {"removes_com_motion", r.removes_com},
                      {"start_energy_kJ_per_mol", r.start_energy},
                      {"minimized_energy_kJ_per_mol", r.minimized_energy},
                      {"platform", target.options().platform}};
  if (r.failed) s["failure"] = r.failure;
  return s;
}

}  // namespace

namespace {

/// Everything of the run directory besides the engine's result.
struct ToolRun {
  Potential potential;
  const OpenMMTarget* target = nullptr;
  ReplicaExchangeOptions options;
};

ToolRun prepare(const ReplicaExchangeRunOptions& options) {
  ToolRun t;
  t.potential = load_potential(options.potential);
  t.target = dynamic_cast<const OpenMMTarget*>(t.potential.target.get());
  if (!t.target) {
    throw ConfigError(options.potential.string() +
                      ": replica-exchange needs an OpenMM potential (type openmm), got type '" + t.potential.type + "'");
  }
  t.options = resolve_replica_exchange_options(t.potential.replica_exchange, options.protocol,
                                               t.target->temperature(), options.potential.string());
  t.options.progress = options.progress && mpi::is_root();
  return t;
}

/// --netcdf: the T_0 frames as one chain, with u (reduced_energies.npy), −u and E.
InferenceData rex_inference_data(const ToolRun& t, const ReplicaExchangeResult& r, const Eigen::VectorXd& u) {
  const RowMatrix& x = r.frames[0];
  const Eigen::VectorXd& e = r.potential_energies[0];
  InferenceData data;
  data.chains = 1;
  data.draws = static_cast<std::size_t>(x.rows());
  data.posterior = {{"x", {static_cast<std::size_t>(x.cols())}, {x.data(), x.data() + x.size()}}};
  const Eigen::VectorXd lp = -u;
  data.sample_stats = {{"reduced_energy", {}, {u.data(), u.data() + u.size()}},
                       {"lp", {}, {lp.data(), lp.data() + lp.size()}},
                       {"potential_energy", {}, {e.data(), e.data() + e.size()}}};
  std::string ladder;
  for (double temperature : r.temperatures) ladder += (ladder.empty() ? "" : ",") + format_number(temperature);
  data.attributes = {{"tool", "replica-exchange"}, {"potential", t.potential.name},
                     {"seed", std::to_string(t.options.seed)}, {"temperature_K", format_number(r.temperatures[0])},
                     {"temperatures_K", ladder}};
  return data;
}

/// Writes the run directory (not committed); `u` is u of the T_0 frames.
nlohmann::json write_outputs(RunDirectory& run, const ToolRun& t, const ReplicaExchangeRunOptions& options,
                             const ReplicaExchangeResult& r, const Eigen::VectorXd& u, const BatchStats& stats) {
  const RowMatrix& samples = r.frames[0];
  RunOutputs o;
  o.tool = "replica-exchange";
  o.potential_path = options.potential;
  o.potential_name = t.potential.name;
  o.target = t.target;
  o.seed = t.options.seed;
  o.options = t.options.to_json();
  o.options["platform"] = t.target->options().platform;
  o.samples = &samples;
  o.reduced_energies = &u;
  const std::size_t K = r.temperatures.size();
  o.counts = {{"frames", samples.rows()},
              {"temperatures", K},
              {"exchanges", r.exchanges_done},
              {"equilibration_exchanges", r.equilibration_exchanges},
              {"md_steps_per_replica", r.md_steps},
              {"md_steps", r.md_steps * K},
              {"non_finite_replicas", r.non_finite_replicas},
              {"non_finite_evaluations", stats.non_finite},
              {"checkpoints_written", r.checkpoints_written}};
  o.timings = {{"replica_exchange", r.wall_seconds}, {"md", r.md_seconds}, {"communication", mpi::communication_seconds()}};
  o.statistics = statistics(r, *t.target);
  o.statistics["md_steps_per_second"] = r.md_seconds > 0 ? static_cast<double>(r.md_steps * K) / r.md_seconds : 0.0;
  if (r.resumed) o.statistics["resumed_at_exchange"] = r.resumed_at_exchange;
  if (r.failed) o.notes.push_back("the run stopped early: " + r.failure + " (outputs hold what was recorded)");
  if (std::abs(r.temperatures[0] - t.target->temperature()) > 1e-9) {
    o.notes.push_back("T_0 differs from the potential's temperature: reduced_energies.npy is E/kT at the potential's");
  }
  nlohmann::json plots = nlohmann::json::object();
  o.extra = {{"replica_exchange_files", write_replica_files(run, r, t.options, plots)}};
  o.md_trace = rex_trace(r, t.options);
  // Basin populations of the T_0 frames per residue (batch means: the frames are a correlated series).
  if (t.target->topology() != nullptr && samples.rows() >= 40) {
    try {
      o.extra["conformations"] = conformation_populations(*t.target->topology(), samples, nullptr).to_json();
    } catch (const DomainError&) {
      // no φ/ψ pair (not a peptide) or no finite angle: nothing to report
    }
  }
  nlohmann::json summary = write_run(run, o);
  // write_run wrote summary.json already: add the mixing plot's status and rewrite it.
  for (const auto& [name, status] : plots.items()) summary["plots"][name] = status;
  summary["ranks"] = mpi::size();  // like "threads": how it ran, never what it computed
  run.write_summary(summary);
  return summary;
}

}  // namespace

nlohmann::json run_replica_exchange_tool(const ReplicaExchangeRunOptions& options) {
  options.validate();
  if (options.threads != 0) set_num_threads(options.threads);
  const ToolRun t = prepare(options);
  ReplicaExchangeCheckpointing ck;
  ck.path = replica_exchange_checkpoint_path(options.out);
  ck.every_seconds = options.checkpoint_seconds;
  ck.every_exchanges = options.checkpoint_exchanges;
  ck.resume = options.resume;
  if (options.resume && !fs::exists(ck.path)) {
    throw ConfigError("--resume: no checkpoint at '" + ck.path.string() + "'");
  }
  // Over MPI ranks, rank 0 alone stages, writes and commits the run directory and the
  // checkpoints; the other ranks never touch --out (they read a checkpoint to resume).
  std::unique_ptr<RunDirectory> run;
  if (mpi::is_root()) {
    run = std::make_unique<RunDirectory>(options.out, potential_files(t.potential));  // fails early when the output may not be written
    if (!options.netcdf.empty()) check_netcdf_output(options.netcdf, potential_files(t.potential), options.out);
  }
  const ReplicaExchangeResult r = run_replica_exchange(*t.target, t.target->initial_positions(), t.options, &ck);
  if (r.frames.empty() || r.frames[0].rows() == 0) {
    throw BackendError("replica exchange stopped before the first frame: " + r.failure);
  }
  std::string summary_text;
  if (mpi::is_root()) {
    Eigen::VectorXd u;
    const BatchStats stats = t.target->evaluate_batch(r.frames[0], u, nullptr);
    const nlohmann::json summary = write_outputs(*run, t, options, r, u, stats);
    run->commit();
    std::error_code ec;
    fs::remove(ck.path, ec);
    if (!options.netcdf.empty()) write_inference_data(options.netcdf, rex_inference_data(t, r, u));
    summary_text = summary.dump();
  }
  mpi::bcast(summary_text);  // every rank returns the same summary (and exit status)
  return nlohmann::json::parse(summary_text);
}

}  // namespace boltzlab
