#include "boltzlab/app/relax_run.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/app/run_outputs.hpp"
#include "boltzlab/targets/registry.hpp"

namespace fs = std::filesystem;

namespace boltzlab {
namespace {

std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

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
  if (step_size && !(*step_size > 0 && std::isfinite(*step_size))) bad("--step-size", num(*step_size), "> 0");
  if (thin && *thin < 0) bad("--thin", std::to_string(*thin), ">= 0");
  if (max_frames && *max_frames < 0) bad("--max-frames", std::to_string(*max_frames), ">= 0");
  if (beta_start && !(*beta_start > 0 && std::isfinite(*beta_start))) bad("--beta-start", num(*beta_start), "> 0");
  if (beta_steps && *beta_steps < 0) bad("--beta-steps", std::to_string(*beta_steps), ">= 0");
  if (tolerance && !(*tolerance >= 0 && std::isfinite(*tolerance))) bad("--tolerance", num(*tolerance), ">= 0");
  if (monitor_every && *monitor_every < 1) bad("--monitor-every", std::to_string(*monitor_every), ">= 1");
  if (seed && *seed < 0) bad("--seed", std::to_string(*seed), ">= 0");
  if (threads < 0) bad("--threads", std::to_string(threads), ">= 0 (0: all cores)");
  if (threads > 1024) bad("--threads", std::to_string(threads), "<= 1024");
  if (init_scale && !(*init_scale > 0 && std::isfinite(*init_scale))) bad("--init-scale", num(*init_scale), "> 0");
}

void InitSpec::validate(const std::string& context) const {
  if (kind != "normal" && kind != "lattice" && kind != "reference") {
    throw ConfigError(context + ".kind: '" + kind + "' is not 'normal', 'lattice' or 'reference'");
  }
  if (!(scale > 0) || !std::isfinite(scale)) throw ConfigError(context + ".scale: " + num(scale) + ", but must be > 0");
  if (!std::isfinite(mean)) throw ConfigError(context + ".mean: must be finite");
  if (!(spacing > 0) || !std::isfinite(spacing)) {
    throw ConfigError(context + ".spacing: " + num(spacing) + ", but must be > 0");
  }
  if (!(jitter >= 0) || !std::isfinite(jitter)) {
    throw ConfigError(context + ".jitter: " + num(jitter) + ", but must be >= 0");
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
    if (v.is_discarded()) v = value;  // not JSON: a plain string
    out[key] = v;
  }
  return out;
}

RelaxReport run_relax(const RelaxOptions& opt) {
  const double t_start = wall_seconds();
  opt.validate();
  set_num_threads(opt.threads);

  Potential pot = load_potential(opt.potential);
  const Target& target = *pot.target;
  const std::size_t d = target.dim();
  const std::string sctx = opt.potential.string() + ": sampler";

  // Sampler-section defaults (flag > sampler section > built-in).
  const nlohmann::json empty = nlohmann::json::object();
  const nlohmann::json& section = pot.sampler.is_null() ? empty : pot.sampler;
  JsonReader sampler(section, sctx);
  const std::string section_flow = sampler.get_string("flow", "mala");
  const std::string flow_name = opt.flow ? *opt.flow : section_flow;
  // The sampler key is always read (validated, marked known), then the flag wins.
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
  const long long steps = from(opt.steps, "steps", 1000, 0);
  const long long warmup_section = sampler.get_int("warmup", -1);
  if (sampler.has("warmup") && warmup_section < 0) sampler.fail("warmup", std::to_string(warmup_section) + ", but must be >= 0");
  const long long warmup = opt.warmup ? *opt.warmup : (warmup_section >= 0 ? warmup_section : steps / 4);
  const long long thin = from(opt.thin, "thin", 0, 0);
  const long long monitor_every = from(opt.monitor_every, "monitor_every", 10, 1);
  const long long beta_steps = from(opt.beta_steps, "beta_steps", 0, 0);
  const long long seed = from(opt.seed, "seed", 0, 0);
  const long long particles_default = from(std::nullopt, "particles", 1024, 1);
  const long long max_frames_opt = from(opt.max_frames, "max_frames", 1000, 0);
  const double step_size = from_d(opt.step_size, "step_size", 0.0);
  if (!opt.step_size && !(step_size >= 0 && std::isfinite(step_size))) {
    sampler.fail("step_size", num(step_size) + ", but must be > 0");
  }
  const double beta_start = from_d(opt.beta_start, "beta_start", 1.0);
  const double tolerance = from_d(opt.tolerance, "tolerance", 0.0);
  const std::string beta_kind = sampler.get_string("beta_schedule", "geometric");
  InitSpec init_spec;
  if (!target.reference_configuration().empty()) {
    // Molecules: start at the reference structure (PDB/crd), jittered by 1e-3 nm.
    init_spec.kind = "reference";
    init_spec.scale = 1e-3;
  }
  if (sampler.has("init")) {
    JsonReader init(sampler.get_json("init"), sampler.context_of("init"));
    init_spec.kind = init.get_string("kind", init_spec.kind);
    init_spec.scale = init.get_double("scale", init_spec.scale);
    init_spec.mean = init.get_double("mean", init_spec.mean);
    init_spec.spacing = init.get_double("spacing", init_spec.spacing);
    init_spec.jitter = init.get_double("jitter", init_spec.jitter);
    init.finish();
  }
  if (opt.init_scale) {
    init_spec.kind = "normal";
    init_spec.scale = *opt.init_scale;
  }
  init_spec.validate(sctx + ".init");
  nlohmann::json flow_params = nlohmann::json::object();
  if (sampler.has("params")) {
    const nlohmann::json& all = sampler.get_json("params");
    if (!all.is_object()) sampler.fail("params", "expected an object {flow name: {parameters}}");
    if (all.contains(flow_name)) flow_params = all.at(flow_name);
    if (!flow_params.is_object()) sampler.fail("params", flow_name + ": expected an object");
  }
  sampler.finish();
  const nlohmann::json cli_params = parse_params(opt.params);
  for (const auto& [k, v] : cli_params.items()) flow_params[k] = v;
  auto flow = make_flow(flow_name, flow_params, "--flow " + flow_name + " (--param / sampler.params)");

  FlowOptions fo;
  fo.steps = static_cast<std::size_t>(steps);
  fo.warmup = static_cast<std::size_t>(warmup);
  fo.step_size = step_size;
  fo.thin = static_cast<std::size_t>(thin);
  fo.seed = static_cast<std::uint64_t>(seed);
  fo.beta.start = beta_start;
  fo.beta.end = 1.0;
  fo.beta.steps = static_cast<std::size_t>(beta_steps);
  fo.beta.kind = beta_kind;
  fo.tolerance = tolerance;
  fo.monitor_every = static_cast<std::size_t>(monitor_every);
  fo.progress = !opt.quiet;
  fo.exec = Execution::kParallel;
  try {
    fo.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(sctx + ": " + e.what());
  }

  // The output directory is probed before the expensive work.
  RunDirectory run(opt.out);
  const double t_loaded = wall_seconds();

  // Initial ensemble.
  Ensemble ens;
  std::string init_desc;
  if (!opt.init.empty()) {
    RowMatrix x = read_npy_matrix(opt.init, d);
    if (x.rows() == 0) throw IoError(opt.init.string() + ": has no rows (need at least 1 particle)");
    if (opt.particles && *opt.particles != x.rows()) {
      throw ConfigError("--particles is " + std::to_string(*opt.particles) + ", but " + opt.init.string() + " has " +
                        std::to_string(x.rows()) + " rows");
    }
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      for (Eigen::Index k = 0; k < x.cols(); ++k) {
        if (!std::isfinite(x(i, k))) {
          throw IoError(opt.init.string() + ": row " + std::to_string(i) + " has a non-finite coordinate");
        }
      }
    }
    ens = Ensemble(static_cast<std::size_t>(x.rows()), d);
    ens.positions = std::move(x);
    const auto [np, s] = target.particle_layout();
    if (np > 0) {
      for (std::size_t i = 0; i < ens.size(); ++i) remove_center_of_mass(ens.particle(i), np, s);
    }
    init_desc = opt.init.string();
  } else {
    const long long n = opt.particles ? *opt.particles : particles_default;
    ens = make_initial_ensemble(target, static_cast<std::size_t>(n), init_spec, fo.seed);
    init_desc = init_spec.kind == "normal"
                    ? "normal(mean " + num(init_spec.mean) + ", scale " + num(init_spec.scale) + ")"
                : init_spec.kind == "reference"
                    ? "reference configuration + N(0, " + num(init_spec.scale) + "^2)"
                    : "lattice(spacing " + num(init_spec.spacing) + ", jitter " + num(init_spec.jitter) + ")";
  }
  const std::size_t n = ens.size();
  {
    // u and ∇u: a finite energy with a NaN gradient (e.g. coincident particles) is
    // just as unusable for a gradient flow.
    Eigen::VectorXd u0;
    RowMatrix g0;
    const BatchStats st = target.evaluate_batch(ens.positions, u0, &g0);
    if (st.non_finite == n) {
      throw DomainError(opt.potential.string() + ": all " + std::to_string(n) +
                        " initial energies or gradients are non-finite (initial ensemble: " + init_desc + ")");
    }
    if (st.non_finite > 0 && !opt.quiet) {
      std::fprintf(stderr, "wgf-relax: warning: %zu of %zu initial energies or gradients are non-finite (counted in summary.json)\n",
                   st.non_finite, n);
    }
  }
  // Memory guard for frames.
  std::vector<std::string> notes;
  std::size_t max_frames = static_cast<std::size_t>(max_frames_opt);
  const double frame_bytes = static_cast<double>(n) * static_cast<double>(d) * 8.0;
  const auto frame_cap = static_cast<std::size_t>(kMaxFrameBytes / std::max(frame_bytes, 1.0));
  if (thin > 0 && max_frames > frame_cap) {
    max_frames = frame_cap;
    notes.push_back("frames capped at " + std::to_string(frame_cap) + " (2 GiB of frames)");
  }
  fo.max_frames = max_frames;
  const double t_init = wall_seconds();

  FlowResult res = flow->run(target, ens, fo);
  const double t_flow = wall_seconds();

  RunOutputs o;
  o.tool = "wgf-relax";
  o.potential_path = opt.potential;
  o.potential_name = pot.name;
  o.target = &target;
  o.options = {{"flow", flow_name},
               {"flow_params", flow_params},
               {"particles", n},
               {"steps", steps},
               {"warmup", warmup},
               {"step_size", step_size > 0 ? nlohmann::json(step_size) : nlohmann::json("flow default")},
               {"thin", thin},
               {"max_frames", max_frames},
               {"monitor_every", monitor_every},
               {"beta_start", beta_start},
               {"beta_steps", beta_steps},
               {"beta_schedule", beta_kind},
               {"tolerance", tolerance},
               {"init", init_desc},
               {"out", opt.out.string()}};
  o.seed = fo.seed;
  o.threads = num_threads();
  o.samples = &ens.positions;
  o.reduced_energies = &ens.reduced_energies;
  o.frames = &res.frames;
  o.counts = {{"steps_done", res.steps_done},
              {"energy_evaluations", res.energy_evaluations},
              {"non_finite_evaluations", res.non_finite},
              {"frames", res.frames.size()}};
  o.statistics = res.statistics;
  o.statistics["converged_on_tolerance"] = res.converged;
  o.trace_steps = res.monitor_steps;
  o.traces = res.monitors;
  const double sampling = t_flow - t_init;
  const double particle_steps = static_cast<double>(n) * static_cast<double>(res.steps_done);
  o.timings = {{"load", t_loaded - t_start},
               {"init", t_init - t_loaded},
               {"flow", sampling},
               {"particle_steps_per_second", sampling > 0 ? particle_steps / sampling : 0.0}};
  o.notes = notes;
  o.plots = opt.plots;
  nlohmann::json summary = write_run(run, o);
  run.commit();
  // total time including the writing, patched into the returned summary only.
  summary["timings"]["total"] = wall_seconds() - t_start;

  std::ostringstream msg;
  msg << "wgf-relax: " << flow_name << " on " << pot.name << ": " << n << " particles x " << d << ", "
      << res.steps_done << " steps in " << num(std::round(sampling * 100) / 100) << " s";
  if (res.statistics.contains("acceptance_rate") && res.statistics["acceptance_rate"].is_number()) {
    msg << ", acceptance " << num(std::round(res.statistics["acceptance_rate"].get<double>() * 1000) / 1000);
  }
  msg << ", step size " << num(res.statistics.value("step_size", 0.0));
  const auto& e = summary["energy"]["mean"];
  if (e.is_number()) msg << ", <u> = " << num(e.get<double>());
  if (res.non_finite) msg << ", " << res.non_finite << " non-finite evaluations";
  msg << " -> " << opt.out.string();
  return RelaxReport{summary, msg.str()};
}

}  // namespace boltzlab
