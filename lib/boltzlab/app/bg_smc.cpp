#include "boltzlab/app/bg_smc.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/generators/latent_path.hpp"

namespace boltzlab::generators {
namespace {

nlohmann::json rungs_json(const std::vector<SmcRung>& rungs) {
  nlohmann::json out = nlohmann::json::array();
  for (const SmcRung& r : rungs)
    out.push_back({{"beta", r.beta},
                   {"ess_fraction", r.ess_fraction},
                   {"resampled", r.resampled},
                   {"acceptance", r.acceptance},
                   {"step_size", r.step_size},
                   {"preconditioner_min", r.scale_min},
                   {"preconditioner_max", r.scale_max}});
  return out;
}

nlohmann::json result_json(const AnnealedSmcResult& r, const SmcSettings& s, const Target& target, double seconds) {
  nlohmann::json j = {{"options", s.to_json()},
                      {"flow_only", {{"ess_fraction", r.initial_ess_fraction}, {"log_z", r.initial_log_z}}},
                      {"ess_fraction", kish_ess(r.log_weights) / static_cast<double>(r.log_weights.size())},
                      {"log_z", {{"estimate", r.log_z}, {"stderr", r.log_z_se}}},
                      {"rungs", rungs_json(r.rungs)},
                      {"resamplings", r.resamplings},
                      {"distinct_ancestors", r.distinct_ancestors},
                      {"energy_evaluations", r.evaluations},
                      {"non_finite_energies", r.non_finite},
                      {"seconds", seconds}};
  if (const auto exact = target.log_z()) {
    j["log_z"]["exact"] = *exact;
    j["log_z"]["z_score"] = r.log_z_se > 0.0 ? (r.log_z - *exact) / r.log_z_se : std::nan("");
  }
  return j;
}

}  // namespace

nlohmann::json SmcSettings::to_json() const {
  return {{"particles", particles},
          {"rungs", options.rungs},
          {"cess", options.cess},
          {"max_rungs", options.max_rungs},
          {"mala_steps", options.mala_steps},
          {"step_size", options.step_size},
          {"target_acceptance", options.target_acceptance},
          {"resample_threshold", options.resample_threshold},
          {"precondition", options.precondition}};
}

std::optional<SmcSettings> read_smc(JsonReader& r, std::optional<long long> particles_flag) {
  if (!r.has("smc") && !particles_flag) return std::nullopt;
  SmcSettings s;
  if (r.has("smc")) {
    const Json& section = r.get_json("smc");
    if (!section.is_object()) r.fail("smc", "must be an object of SMC settings");
    JsonReader sr(section, r.context_of("smc"));
    AnnealedSmcOptions& o = s.options;
    s.particles = sr.get_int("particles", s.particles);
    o.rungs = static_cast<int>(sr.get_int("rungs", o.rungs));
    o.cess = sr.get_double("cess", o.cess);
    o.max_rungs = static_cast<int>(sr.get_int("max_rungs", o.max_rungs));
    o.mala_steps = static_cast<int>(sr.get_int("mala_steps", o.mala_steps));
    o.step_size = sr.get_double("step_size", o.step_size);
    o.target_acceptance = sr.get_double("target_acceptance", o.target_acceptance);
    o.resample_threshold = sr.get_double("resample_threshold", o.resample_threshold);
    if (sr.has("precondition")) o.precondition = sr.get_bool("precondition");
    sr.finish();
  }
  if (particles_flag) s.particles = *particles_flag;
  const std::string file = r.file_prefix();
  if (s.particles < 2)
    throw ConfigError(file + "generator.smc.particles (or --smc) is " + std::to_string(s.particles) +
                      ", but must be >= 2");
  try {
    s.options.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(file + "generator." + e.what());
  }
  return s;
}

SmcOutcome run_smc_stage(BoltzmannGenerator& model, const Target& target, const MolecularFlowSpace* space,
                         const SmcSettings& settings, std::uint64_t seed, bool progress, RunDirectory& run) {
  if (model.options().stochastic())
    throw ConfigError("generator.smc: needs a deterministic flow (exact log q); this model has noise " +
                      std::to_string(model.options().noise));
  const double t0 = wall_seconds();
  const GeneratorLatentPath path(model, target, space);
  AnnealedSmcOptions o = settings.options;
  o.seed = seed;
  auto report = [&](const SmcRung& r) {
    if (progress)
      std::fprintf(stderr, "bg-sample: smc beta %.4f  ess %.3f%s  acceptance %.2f  step %.3g\n", r.beta,
                   r.ess_fraction, r.resampled ? " (resampled)" : "", r.acceptance, r.step_size);
  };
  const AnnealedSmcResult res = run_annealed_smc(path, static_cast<std::size_t>(settings.particles), o, report);
  SmcOutcome out;
  out.x = path.configurations(res.z);
  // u at the final particles (u₁ = u − log|det| is not u): one more evaluation each.
  EnergyCounters final_energies;
  out.u = target_energy_values(out.x, target, &final_energies);
  out.log_weights = res.log_weights;
  run.write_array("smc_samples.npy", out.x);
  run.write_array("smc_log_weights.npy", out.log_weights);
  run.write_array("smc_reduced_energies.npy", out.u);
  out.summary = result_json(res, settings, target, wall_seconds() - t0);
  out.summary["energy_evaluations"] = res.evaluations + final_energies.evaluations.load();
  return out;
}

}  // namespace boltzlab::generators
