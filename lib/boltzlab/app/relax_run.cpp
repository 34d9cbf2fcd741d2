#include "boltzlab/app/relax_run.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/mpi.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/io/json_file.hpp"
#include "boltzlab/io/netcdf.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/io/seed.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/app/run_outputs.hpp"
#include "boltzlab/targets/registry.hpp"

namespace fs = std::filesystem;

namespace boltzlab {
namespace {

/// Largest frames.npy the tool will record in memory (F·N·d doubles).
constexpr double kMaxFrameBytes = 2.0 * 1024 * 1024 * 1024;

}  // namespace

void RelaxOptions::validate() const {
  auto bad = [](const std::string& flag, const std::string& value, const std::string& rule) {
    throw ConfigError(flag + " is " + value + ", but must be " + rule);
  };
  if (potential.empty()) throw ConfigError("--potential is required");
  if (out.empty()) throw ConfigError("--out is required");
  if (particles && *particles < 1) bad("--particles", std::to_string(*particles), ">= 1");
  if (steps && *steps < 0) bad("--steps", std::to_string(*steps), ">= 0");
  if (warmup && *warmup < 0) bad("--warmup", std::to_string(*warmup), ">= 0");
  if (step_size && !(*step_size > 0 && std::isfinite(*step_size))) bad("--step-size", format_number(*step_size), "> 0");
  if (thin && *thin < 0) bad("--thin", std::to_string(*thin), ">= 0");
  if (max_frames && *max_frames < 0) bad("--max-frames", std::to_string(*max_frames), ">= 0");
  if (beta_start && !(*beta_start > 0 && std::isfinite(*beta_start))) bad("--beta-start", format_number(*beta_start), "> 0");
  if (beta_steps && *beta_steps < 0) bad("--beta-steps", std::to_string(*beta_steps), ">= 0");
  if (tolerance && !(*tolerance >= 0 && std::isfinite(*tolerance))) bad("--tolerance", format_number(*tolerance), ">= 0");
  if (monitor_every && *monitor_every < 1) bad("--monitor-every", std::to_string(*monitor_every), ">= 1");
  if (threads < 0) bad("--threads", std::to_string(threads), ">= 0 (0: all cores)");
  if (threads > 1024) bad("--threads", std::to_string(threads), "<= 1024");
  if (init_scale && !(*init_scale > 0 && std::isfinite(*init_scale))) bad("--init-scale", format_number(*init_scale), "> 0");
}

void InitSpec::validate(const std::string& context) const {
  if (kind != "normal" && kind != "lattice" && kind != "reference") {
    throw ConfigError(context + ".kind: '" + kind + "' is not 'normal', 'lattice' or 'reference'");
  }
  if (!(scale > 0) || !std::isfinite(scale)) throw ConfigError(context + ".scale: " + format_number(scale) + ", but must be > 0");
  if (!std::isfinite(mean)) throw ConfigError(context + ".mean: must be finite");
  if (!(spacing > 0) || !std::isfinite(spacing)) {
    throw ConfigError(context + ".spacing: " + format_number(spacing) + ", but must be > 0");
  }
  if (!(jitter >= 0) || !std::isfinite(jitter)) {
    throw ConfigError(context + ".jitter: " + format_number(jitter) + ", but must be >= 0");
  }
}

Ensemble make_initial_ensemble(const Target& target, std::size_t n, const InitSpec& spec, std::uint64_t seed) {
  const std::size_t d = target.dim();
  const auto [np, s] = target.particle_layout();
  if (spec.kind == "lattice" && np == 0) {
    throw ConfigError("init: kind 'lattice' needs a particle system, but target '" + target.name() + "' is not one");
  }
  const std::vector<double> reference = target.reference_configuration();
  if (spec.kind == "reference" && reference.size() != d) {
    throw ConfigError("init: kind 'reference' needs a target with a reference configuration, but target '" +
                      target.name() + "' has none");
  }
  Ensemble e(n, d);
  // Lattice sites: the first np points of the smallest s-dimensional cubic grid.
  std::vector<double> sites;
  if (spec.kind == "lattice") {
    std::size_t side = 1;
    while (static_cast<double>(std::pow(static_cast<double>(side), static_cast<double>(s))) < static_cast<double>(np)) ++side;
    sites.resize(np * s);
    for (std::size_t p = 0; p < np; ++p) {
      std::size_t rest = p;
      for (std::size_t a = 0; a < s; ++a) {
        sites[p * s + a] = spec.spacing * static_cast<double>(rest % side);
        rest /= side;
      }
    }
  }
  const std::uint64_t init_seed = seed + 0x9E3779B97F4A7C15ULL;
  for_each_index(
      n,
      [&](std::size_t i) {
        Rng rng = stream_for(init_seed, i);
        double* x = e.particle(i);
        rng.fill_normal(x, d);
        if (spec.kind == "lattice") {
          for (std::size_t k = 0; k < d; ++k) x[k] = sites[k] + spec.jitter * spec.spacing * x[k];
        } else if (spec.kind == "reference") {
          for (std::size_t k = 0; k < d; ++k) x[k] = reference[k] + spec.scale * x[k];
        } else {
          for (std::size_t k = 0; k < d; ++k) x[k] = spec.mean + spec.scale * x[k];
        }
        if (np > 0) remove_center_of_mass(x, np, s);
      },
      Execution::kParallel, 64);
  return e;
}

nlohmann::json parse_params(const std::vector<std::string>& params) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& p : params) {
    const auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw ConfigError("--param '" + p + "': expected key=value (e.g. --param friction=2.0)");
    }
    const std::string key = p.substr(0, eq), value = p.substr(eq + 1);
    nlohmann::json v = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
    if (v.is_discarded()) {
      v = value;  // not JSON: a plain string
    } else {
      v = parse_json(value, "--param " + key);  // JSON: refuse duplicate keys
    }
    out[key] = v;
  }
  return out;
}

namespace {

// ---------------------------------------------------------------- stage 1: settings

/// The initial-ensemble recipe: the target's reference configuration (molecules,
/// jittered by 1e-3 nm) or N(0, I), then sampler.init, then --init-scale.
InitSpec resolve_init_spec(JsonReader& sampler, const Target& target, const RelaxOptions& opt,
                           const std::string& sctx) {
  InitSpec spec;
  if (!target.reference_configuration().empty()) {
    spec.kind = "reference";
    spec.scale = 1e-3;
  }
  if (sampler.has("init")) {
    JsonReader init(sampler.get_json("init"), sampler.context_of("init"));
    spec.kind = init.get_string("kind", spec.kind);
    spec.scale = init.get_double("scale", spec.scale);
    spec.mean = init.get_double("mean", spec.mean);
    spec.spacing = init.get_double("spacing", spec.spacing);
    spec.jitter = init.get_double("jitter", spec.jitter);
    init.finish();
  }
  if (opt.init_scale) {
    spec.kind = "normal";
    spec.scale = *opt.init_scale;
  }
  spec.validate(sctx + ".init");
  return spec;
}

/// sampler.params[flow_name] (an object), if any.
nlohmann::json section_flow_params(JsonReader& sampler, const std::string& flow_name) {
  nlohmann::json params = nlohmann::json::object();
  if (!sampler.has("params")) return params;
  const nlohmann::json& all = sampler.get_json("params");
  if (!all.is_object()) sampler.fail("params", "expected an object {flow name: {parameters}}");
  if (all.contains(flow_name)) params = all.at(flow_name);
  if (!params.is_object()) sampler.fail("params", flow_name + ": expected an object");
  return params;
}

}  // namespace

RelaxPlan resolve_relax_plan(const RelaxOptions& opt, const nlohmann::json& section, const Target& target,
                             const std::string& sctx) {
  const nlohmann::json empty = nlohmann::json::object();
  JsonReader sampler(section.is_null() ? empty : section, sctx);
  RelaxPlan plan;
  const std::string section_flow = sampler.get_string("flow", "mala");
  plan.flow_name = opt.flow ? *opt.flow : section_flow;
  auto from = [&](const std::optional<long long>& flag, const std::string& key, long long fallback,
                  long long min_value) {
    const long long v = sampler.get_int(key, fallback);
    if (v < min_value) sampler.fail(key, std::to_string(v) + ", but must be >= " + std::to_string(min_value));
    return flag ? *flag : v;
  };
  auto from_d = [&](const std::optional<double>& flag, const std::string& key, double fallback) {
    const double v = sampler.get_double(key, fallback);
    return flag ? *flag : v;
  };
  FlowOptions& fo = plan.flow_options;
  const long long steps = from(opt.steps, "steps", 1000, 0);
  const long long warmup_section = sampler.get_int("warmup", -1);
  if (sampler.has("warmup") && warmup_section < 0) sampler.fail("warmup", std::to_string(warmup_section) + ", but must be >= 0");
  fo.steps = static_cast<std::size_t>(steps);
  fo.warmup = static_cast<std::size_t>(opt.warmup ? *opt.warmup : (warmup_section >= 0 ? warmup_section : steps / 4));
  fo.thin = static_cast<std::size_t>(from(opt.thin, "thin", 0, 0));
  fo.monitor_every = static_cast<std::size_t>(from(opt.monitor_every, "monitor_every", 10, 1));
  fo.beta.steps = static_cast<std::size_t>(from(opt.beta_steps, "beta_steps", 0, 0));
  const std::uint64_t section_seed = read_seed(sampler, "seed", 0);
  fo.seed = opt.seed ? *opt.seed : section_seed;
  plan.particles = static_cast<std::size_t>(from(opt.particles, "particles", 1024, 1));
  plan.max_frames = static_cast<std::size_t>(from(opt.max_frames, "max_frames", 1000, 0));
  // FlowOptions::step_size 0 means "the flow's default": only an absent key may ask for it.
  fo.step_size = from_d(opt.step_size, "step_size", 0.0);
  if (sampler.has("step_size")) {
    const double section_step = sampler.get_double("step_size");
    if (!(section_step > 0 && std::isfinite(section_step))) {
      sampler.fail("step_size", format_number(section_step) + ", but must be > 0");
    }
  }
  fo.beta.start = from_d(opt.beta_start, "beta_start", 1.0);
  fo.beta.end = 1.0;
  fo.tolerance = from_d(opt.tolerance, "tolerance", 0.0);
  fo.beta.kind = sampler.get_string("beta_schedule", "geometric");
  fo.progress = !opt.quiet && mpi::is_root();  // one progress line per job
  fo.exec = Execution::kParallel;
  plan.init = resolve_init_spec(sampler, target, opt, sctx);
  plan.flow_params = section_flow_params(sampler, plan.flow_name);
  sampler.finish();
  const nlohmann::json cli_params = parse_params(opt.params);
  for (const auto& [k, v] : cli_params.items()) plan.flow_params[k] = v;
  plan.flow = make_flow(plan.flow_name, plan.flow_params, "--flow " + plan.flow_name + " (--param / sampler.params)");
  try {
    fo.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(sctx + ": " + e.what());
  }
  return plan;
}

namespace {

/// Stage 1. Every sampler key is read (validated, marked known) even when a flag wins.
RelaxPlan resolve_plan(const RelaxOptions& opt, const Potential& pot) {
  return resolve_relax_plan(opt, pot.sampler, *pot.target, opt.potential.string() + ": sampler");
}

// ---------------------------------------------------------------- stage 2: initial ensemble

/// The initial ensemble and how it was made (for summary.json's options.init).
struct InitialEnsemble {
  Ensemble ensemble;
  std::string description;
};

/// --init X.npy: N×d, finite, its rows the particle count; particle systems centred.
Ensemble read_init_file(const RelaxOptions& opt, const Target& target) {
  RowMatrix x = read_npy_matrix(opt.init, target.dim());
  if (x.rows() == 0) throw IoError(opt.init.string() + ": has no rows (need at least 1 particle)");
  if (opt.particles && *opt.particles != x.rows()) {
    throw ConfigError("--particles is " + std::to_string(*opt.particles) + ", but " + opt.init.string() + " has " +
                      std::to_string(x.rows()) + " rows");
  }
  if (!x.allFinite()) {  // one vectorized pass; the first bad row only on failure
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      if (!x.row(i).allFinite()) {
        throw IoError(opt.init.string() + ": row " + std::to_string(i) + " has a non-finite coordinate");
      }
    }
  }
  // The ensemble takes the matrix as it is read (no zero-filled N×d first).
  Ensemble ens;
  ens.positions = std::move(x);
  ens.reduced_energies = Eigen::VectorXd::Constant(ens.positions.rows(), std::numeric_limits<double>::quiet_NaN());
  ens.log_weights = Eigen::VectorXd::Zero(ens.positions.rows());
  const auto [np, s] = target.particle_layout();
  if (np > 0) {
    for (std::size_t i = 0; i < ens.size(); ++i) remove_center_of_mass(ens.particle(i), np, s);
  }
  return ens;
}

std::string describe_init(const InitSpec& spec) {
  if (spec.kind == "normal") return "normal(mean " + format_number(spec.mean) + ", scale " + format_number(spec.scale) + ")";
  if (spec.kind == "reference") return "reference configuration + N(0, " + format_number(spec.scale) + "^2)";
  return "lattice(spacing " + format_number(spec.spacing) + ", jitter " + format_number(spec.jitter) + ")";
}

/// Stage 2. Fails when every initial u or ∇u is non-finite (a finite energy with a NaN
/// gradient, e.g. coincident particles, is just as unusable for a gradient flow); warns
/// on stderr when some are.
InitialEnsemble build_initial_ensemble(const RelaxOptions& opt, const Target& target, const RelaxPlan& plan) {
  InitialEnsemble init;
  if (!opt.init.empty()) {
    init.ensemble = read_init_file(opt, target);
    init.description = opt.init.string();
  } else {
    init.ensemble = make_initial_ensemble(target, plan.particles, plan.init, plan.flow_options.seed);
    init.description = describe_init(plan.init);
  }
  const std::size_t n = init.ensemble.size();
  // In blocks of rows: the check needs the counts only, not an N×d gradient.
  constexpr std::size_t kCheckRows = 4096;
  const RowMatrix& x = init.ensemble.positions;
  Eigen::VectorXd u0;
  RowMatrix block, g0;
  BatchStats st;
  for (std::size_t i0 = 0; i0 < n; i0 += kCheckRows) {
    const auto rows = static_cast<Eigen::Index>(std::min(kCheckRows, n - i0));
    block = x.middleRows(static_cast<Eigen::Index>(i0), rows);
    st.non_finite += target.evaluate_batch(block, u0, &g0).non_finite;
  }
  if (st.non_finite == n) {
    throw DomainError(opt.potential.string() + ": all " + std::to_string(n) +
                      " initial energies or gradients are non-finite (initial ensemble: " + init.description + ")");
  }
  if (st.non_finite > 0 && !opt.quiet && mpi::is_root()) {
    std::fprintf(stderr, "wgf-relax: warning: %zu of %zu initial energies or gradients are non-finite (counted in summary.json)\n",
                 st.non_finite, n);
  }
  return init;
}

// ---------------------------------------------------------------- stage 3: the flow

/// Wall-clock marks of the stages (seconds, wall_seconds()).
struct RelaxTimes {
  double start = 0.0, loaded = 0.0, initialized = 0.0, flowed = 0.0;
};

/// Sets flow_options.max_frames: the requested cap, lowered so that the frames held in
/// memory stay within kMaxFrameBytes. Returns the note to record when it was lowered.
std::vector<std::string> cap_frames(RelaxPlan& plan, std::size_t n, std::size_t d) {
  std::vector<std::string> notes;
  std::size_t max_frames = plan.max_frames;
  const double frame_bytes = static_cast<double>(n) * static_cast<double>(d) * 8.0;
  const auto frame_cap = static_cast<std::size_t>(kMaxFrameBytes / std::max(frame_bytes, 1.0));
  if (plan.flow_options.thin > 0 && max_frames > frame_cap) {
    max_frames = frame_cap;
    notes.push_back("frames capped at " + std::to_string(frame_cap) + " (2 GiB of frames)");
  }
  plan.flow_options.max_frames = max_frames;
  return notes;
}

// ---------------------------------------------------------------- stage 4: outputs

/// Mean final u over the healthy particles (healthy_particle), summed in particle
/// order; none when no particle is healthy.
std::optional<double> healthy_mean_energy(const Ensemble& ens, const FlowOptions& options) {
  double sum = 0.0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < ens.size(); ++i) {
    if (!healthy_particle(ens, i, options)) continue;
    sum += ens.reduced_energies[static_cast<Eigen::Index>(i)];
    ++count;
  }
  if (count == 0) return std::nullopt;
  return sum / static_cast<double>(count);
}

/// Stage 4a: what the run directory records. Pointers refer into `init` and `res`.
RunOutputs relax_outputs(const RelaxOptions& opt, const Potential& pot, const RelaxPlan& plan,
                         const InitialEnsemble& init, const FlowResult& res, const RelaxTimes& times,
                         std::optional<double> mean_healthy, std::vector<std::string> notes) {
  const FlowOptions& fo = plan.flow_options;
  RunOutputs o;
  o.tool = "wgf-relax";
  o.potential_path = opt.potential;
  o.potential_name = pot.name;
  o.target = pot.target.get();
  o.options = {{"flow", plan.flow_name},
               {"flow_params", plan.flow_params},
               {"particles", init.ensemble.size()},
               {"steps", fo.steps},
               {"warmup", fo.warmup},
               {"step_size", fo.step_size > 0 ? nlohmann::json(fo.step_size) : nlohmann::json("flow default")},
               {"thin", fo.thin},
               {"max_frames", fo.max_frames},
               {"monitor_every", fo.monitor_every},
               {"beta_start", fo.beta.start},
               {"beta_steps", fo.beta.steps},
               {"beta_schedule", fo.beta.kind},
               {"tolerance", fo.tolerance},
               {"init", init.description},
               {"out", opt.out.string()}};
  o.seed = fo.seed;
  o.threads = num_threads();
  o.samples = &init.ensemble.positions;
  o.reduced_energies = &init.ensemble.reduced_energies;
  o.frames = &res.frames;
  o.counts = {{"steps_done", res.steps_done},
              {"energy_evaluations", res.energy_evaluations},
              {"non_finite_evaluations", res.non_finite},
              {"frames", res.frames.size()},
              {"non_finite_positions", res.health.non_finite_positions},
              {"exploded_particles", res.health.exploded},
              {"stuck_particles",
               res.health.stuck_assessed ? nlohmann::json(res.health.stuck) : nlohmann::json(nullptr)},
              {"healthy_particles", res.health.healthy()}};
  o.statistics = res.statistics;
  o.statistics["converged_on_tolerance"] = res.converged;
  o.statistics["health"] = res.health.to_json();
  o.statistics["mean_energy_healthy"] = mean_healthy ? nlohmann::json(*mean_healthy) : nlohmann::json(nullptr);
  if (!mean_healthy) o.statistics["mean_energy_healthy_reason"] = "no healthy particle (all diverged)";
  o.trace_steps = res.monitor_steps;
  o.traces = res.monitors;
  o.trace_markers = {static_cast<double>(fo.warmup), fo.beta.start < 1.0 ? static_cast<double>(fo.beta.steps) : 0.0};
  const double sampling = times.flowed - times.initialized;
  const double particle_steps = static_cast<double>(init.ensemble.size()) * static_cast<double>(res.steps_done);
  o.timings = {{"load", times.loaded - times.start},
               {"init", times.initialized - times.loaded},
               {"flow", sampling},
               {"particle_steps_per_second", sampling > 0 ? particle_steps / sampling : 0.0},
               {"communication", mpi::communication_seconds()}};
  // "ranks", like "threads", says how the run went, never what it computed.
  o.extra = {{"interacting", flow_info(plan.flow_name).interacting}, {"ranks", mpi::size()}};
  if (!res.health.ok()) notes.push_back("warning: " + res.health.problem());
  o.plots = opt.plots;
  if (opt.plots && res.health.diverged() > 0) {
    // Diverged particles make the traces and sample plots meaningless (and gnuplot may
    // leave empty files): skip them and say why.
    o.plots = false;
    notes.push_back("plots skipped: " + std::to_string(res.health.diverged()) + " of " +
                    std::to_string(res.health.particles) + " particles diverged (non-finite or exploded)");
  }
  o.notes = std::move(notes);
  return o;
}

/// Stage 4c (--netcdf): the draws of the run as InferenceData: the recorded frames (each
/// evaluated for u) or, without frames, the final ensemble as one draw.
InferenceData relax_inference_data(const RelaxPlan& plan, const Potential& pot, const Ensemble& ens,
                                   const FlowResult& res) {
  const std::size_t n = ens.size(), d = ens.dim();
  const std::size_t draws = res.frames.empty() ? 1 : res.frames.size();
  ChainVariable x{"x", {d}, std::vector<double>(n * draws * d)};
  ChainVariable u{"reduced_energy", {}, std::vector<double>(n * draws)};
  for (std::size_t f = 0; f < draws; ++f) {
    Eigen::VectorXd uf = ens.reduced_energies;
    const RowMatrix& xf = res.frames.empty() ? ens.positions : res.frames[f];
    if (!res.frames.empty()) pot.target->evaluate_batch(xf, uf, nullptr);
    for (std::size_t i = 0; i < n; ++i) {  // (chain, draw, x_dim_0) in C order
      const auto row = static_cast<Eigen::Index>(i);
      std::copy(xf.row(row).data(), xf.row(row).data() + d, x.values.begin() + static_cast<std::ptrdiff_t>((i * draws + f) * d));
      u.values[i * draws + f] = uf[row];
    }
  }
  ChainVariable lp{"lp", {}, u.values};
  for (double& v : lp.values) v = -v;
  InferenceData data;
  data.chains = n;
  data.draws = draws;
  data.posterior = {std::move(x)};
  data.sample_stats = {std::move(u), std::move(lp)};
  data.attributes = {{"tool", "wgf-relax"},
                     {"potential", pot.name},
                     {"flow", plan.flow_name},
                     {"interacting", flow_info(plan.flow_name).interacting ? "true" : "false"},
                     {"seed", std::to_string(plan.flow_options.seed)},
                     {"draws", res.frames.empty() ? "final ensemble" : "recorded frames"}};
  return data;
}

/// --netcdf checks before the run (check_netcdf_output, shared with the other tools).
void check_netcdf_path(const RelaxOptions& opt, const std::vector<std::filesystem::path>& inputs) {
  if (!opt.netcdf.empty()) check_netcdf_output(opt.netcdf, inputs, opt.out);
}

/// Stage 4b: the typed report (⟨u⟩ over the healthy particles).
RelaxReport relax_report(const RelaxOptions& opt, const Potential& pot, const RelaxPlan& plan,
                         const Ensemble& ens, const FlowResult& res, const RelaxTimes& times,
                         std::optional<double> mean_healthy) {
  RelaxReport r;
  r.flow = plan.flow_name;
  r.interacting = flow_info(plan.flow_name).interacting;
  r.potential = pot.name;
  r.particles = ens.size();
  r.dim = ens.dim();
  r.steps_done = res.steps_done;
  r.flow_seconds = times.flowed - times.initialized;
  const auto acceptance = res.statistics.find("acceptance_rate");
  if (acceptance != res.statistics.end() && acceptance->is_number()) r.acceptance_rate = acceptance->get<double>();
  r.step_size = res.statistics.value("step_size", 0.0);
  r.mean_energy = mean_healthy;
  r.non_finite_evaluations = res.non_finite;
  r.health = res.health;
  r.out = opt.out;
  return r;
}

}  // namespace

std::string RelaxReport::message() const {
  std::ostringstream msg;
  msg << "wgf-relax: " << flow << " on " << potential << ": " << particles << " particles x " << dim << ", "
      << steps_done << " steps in " << format_number(std::round(flow_seconds * 100) / 100) << " s";
  if (acceptance_rate) msg << ", acceptance " << format_number(std::round(*acceptance_rate * 1000) / 1000);
  if (step_size > 0) msg << ", step size " << format_number(step_size);
  if (mean_energy) msg << ", <u> = " << format_number(*mean_energy);
  else msg << ", <u> = n/a";
  if (health.diverged() > 0) {
    msg << " over " << health.healthy() << " of " << particles << " particles (" << health.diverged()
        << " diverged, excluded)";
  }
  if (health.stuck > 0) msg << ", " << health.stuck << " stuck particles";
  if (non_finite_evaluations) msg << ", " << non_finite_evaluations << " non-finite evaluations";
  msg << " -> " << out.string();
  return msg.str();
}

RelaxReport run_relax(const RelaxOptions& opt) {
  RelaxTimes times;
  times.start = wall_seconds();
  opt.validate();
  set_num_threads(opt.threads);
  const Potential pot = load_potential(opt.potential);
  RelaxPlan plan = resolve_plan(opt, pot);
  std::vector<std::filesystem::path> inputs = potential_files(pot);
  inputs.push_back(opt.init);
  for (const auto& value : plan.flow_params) {  // file parameters, e.g. mmd's target_samples
    if (value.is_string()) inputs.emplace_back(value.get<std::string>());
  }
  // Over MPI ranks, rank 0 alone stages, writes and commits the run directory; the
  // others never touch --out.
  std::unique_ptr<RunDirectory> run;
  if (mpi::is_root()) {
    run = std::make_unique<RunDirectory>(opt.out, inputs);  // checked and probed before the expensive work
    check_netcdf_path(opt, inputs);
  }
  times.loaded = wall_seconds();

  InitialEnsemble init = build_initial_ensemble(opt, *pot.target, plan);
  std::vector<std::string> notes = cap_frames(plan, init.ensemble.size(), init.ensemble.dim());
  times.initialized = wall_seconds();

  const FlowResult res = plan.flow->run(*pot.target, init.ensemble, plan.flow_options);
  times.flowed = wall_seconds();

  // One pass for the summary and the report.
  const std::optional<double> mean_healthy = healthy_mean_energy(init.ensemble, plan.flow_options);
  if (mpi::is_root()) {
    write_run(*run, relax_outputs(opt, pot, plan, init, res, times, mean_healthy, std::move(notes)));
    run->commit();
    if (!opt.netcdf.empty()) write_inference_data(opt.netcdf, relax_inference_data(plan, pot, init.ensemble, res));
  }
  if (!res.health.ok() && !opt.strict && mpi::is_root()) {
    // Printed even with --quiet: a failed particle is never silent (with --strict the
    // error line below says it instead).
    std::fprintf(stderr, "wgf-relax: warning: %s (summary.json counts, statistics.health)\n",
                 res.health.problem().c_str());
  }
  if (opt.strict && !res.health.ok()) {
    throw DomainError("--strict: the run failed: " + res.health.problem() + " (run directory written to " +
                      opt.out.string() + ")");
  }
  return relax_report(opt, pot, plan, init.ensemble, res, times, mean_healthy);
}

}  // namespace boltzlab
