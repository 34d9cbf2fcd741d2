#include "boltzlab/app/bg_bridge.hpp"

#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "boltzlab/app/bg_outputs.hpp"
#include "boltzlab/app/run_outputs.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/generators/bridge_sampler.hpp"
#include "boltzlab/generators/presets.hpp"
#include "boltzlab/generators/target_bridge.hpp"
#include "boltzlab/io/plot.hpp"

namespace boltzlab::generators {

namespace {

/// The bridge's options: the row's interaction, the top-level width/layers, then
/// generator.bridge over them; and the training schedule of the top-level keys.
std::pair<BridgeOptions, BridgeTrainOptions> read_bridge_config(const Potential& pot, const BgSampleOptions& o,
                                                                const GeneratorConfig& cfg) {
  BridgeOptions b;
  b.potential.width = cfg.model.potential.width;
  b.potential.layers = cfg.model.potential.layers;
  b.alpha_interaction = find_loss_preset(cfg.train.preset).bridge_interaction;
  const Json empty = Json::object();
  const Json& section = pot.generator.is_object() && pot.generator.contains("bridge") ? pot.generator.at("bridge")
                                                                                         : empty;
  const std::string where = pot.path.string() + ": generator.bridge";
  if (!section.is_object()) throw ConfigError(where + ": must be an object");
  JsonReader r(section, where);
  b.read(r, static_cast<int>(pot.target->dim()));
  r.finish();
  BridgeTrainOptions t;
  t.iterations = cfg.train.iterations;
  t.batch_size = cfg.train.batch_size;
  t.learning_rate = cfg.train.learning_rate;
  t.lr_final_ratio = cfg.train.lr_final_ratio;
  t.clip_grad_norm = cfg.train.clip_grad_norm;
  t.energy_cut = cfg.train.energy_cut;
  t.seed = o.seed;
  t.progress = o.progress;
  try {
    b.validate();
    t.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(pot.path.string() + ": " + e.what());
  }
  return {b, t};
}

/// A trained (on the energy) or loaded (--model) bridge; fills summary["training"] / ["model"].
BridgeSampler train_or_load(const BgSampleOptions& o, const Potential& pot, const GeneratorConfig& cfg,
                            RunDirectory& run, nlohmann::json& summary, nlohmann::json& options,
                            BridgeHistory& history, nlohmann::json& notes) {
  if (!o.model.empty()) {
    nlohmann::json meta;
    BridgeSampler b = BridgeSampler::load(o.model, &meta);
    if (b.dim() != static_cast<int>(pot.target->dim()))
      throw ConfigError(o.model.string() + ": model dim " + std::to_string(b.dim()) + " does not match target dim " +
                        std::to_string(pot.target->dim()));
    summary["model"] = o.model.string();
    summary["model_metadata"] = meta;
    return b;
  }
  const auto [bo, to] = read_bridge_config(pot, o, cfg);
  BridgeSampler b(bo, o.seed);
  history = b.train(*pot.target, to);
  summary["training"] = {{"options", to.to_json()}, {"preset", cfg.train.preset}, {"history", history.to_json()}};
  options["training"] = to.to_json();
  for (const auto& [name, values, file] :
       {std::tuple{"path KL - log Z (batch mean)", &history.loss, "training_loss.png"},
        std::tuple{"batch ESS (cut energies)", &history.batch_ess, "training_ess.png"}}) {
    const PlotResult r = plot_lines({{name, {}, *values}}, "bridge training", "iteration", name, run.path(file));
    if (!r.ok) notes.push_back(r.note);
  }
  return b;
}

}  // namespace

bool is_bridge_run(const BgSampleOptions& o, const GeneratorConfig& cfg) {
  if (!o.model.empty()) return BridgeSampler::is_bridge_model(o.model);
  return find_loss_preset(cfg.train.preset).family == ModelFamily::kBridge;
}

nlohmann::json run_bridge(const BgSampleOptions& o, const Potential& pot, const GeneratorConfig& cfg,
                          RunDirectory& run, nlohmann::json summary, double t_start) {
  const Target& target = *pot.target;
  if (target.topology() != nullptr || target.particle_layout().first > 0)
    throw ConfigError(pot.path.string() + ": preset '" + cfg.train.preset +
                      "': bridge samplers run on targets without molecules or particle layouts");
  if (o.resume) throw ConfigError("--resume: bridge training keeps no checkpoints");
  nlohmann::json notes = nlohmann::json::array(), options = nlohmann::json::object();
  BridgeHistory history;
  BridgeSampler model = train_or_load(o, pot, cfg, run, summary, options, history, notes);
  summary["generator"] = model.options().to_json();
  summary["generator"]["family"] = "schrodinger_bridge";

  const double t_sample = wall_seconds();
  const BridgeDraws d = model.sample(cfg.samples, o.seed);
  EnergyCounters counters;
  const Eigen::VectorXd u = target_energy_values(d.x, target, &counters);
  // log q of a draw is not available (the bridge's marginal density is not tractable); its
  // exact path weight is log w = −u + log_path, and −log_path plays log q's part in the files.
  const Eigen::VectorXd log_q = -d.log_path;
  std::size_t non_finite = 0;
  const Eigen::VectorXd lw = log_importance_weights(u, log_q, &non_finite);
  summary["samples"] = cfg.samples;
  summary["sampling_seconds"] = wall_seconds() - t_sample;
  summary["non_finite_energies"] = counters.non_finite.load();
  summary["importance"] = generator_importance_report(lw, non_finite, target);
  nlohmann::json saved = {{"potential", o.potential.string()}, {"seed", o.seed}, {"preset", cfg.train.preset}};
  model.save(run.path("model.pt"), saved, saved_model_potential(pot, summary));
  summary["model_file"] = (o.out / "model.pt").string();
  notes.push_back("log_q.npy holds minus the path log-weight (log N(x_T) + path terms), not the marginal density "
                  "of x_T: the weights log w = -u - log_q are exact path weights");

  GeneratorRecord record;
  record.options = options;
  record.options["samples"] = cfg.samples;
  record.options["generator"] = model.options().to_json();
  record.training_energy_evaluations = history.energy_evaluations;
  record.training_seconds = history.wall_seconds;
  return write_generator_run(run, o, pot, record, counters, {&d.x, &u, &log_q, &lw}, summary, notes, t_start);
}

}  // namespace boltzlab::generators
