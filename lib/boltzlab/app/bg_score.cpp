#include "boltzlab/app/bg_score.hpp"

#include <cmath>
#include <string>

#include "boltzlab/app/bg_outputs.hpp"
#include "boltzlab/app/run_outputs.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/generators/presets.hpp"
#include "boltzlab/generators/score_generator.hpp"
#include "boltzlab/generators/target_bridge.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/io/plot.hpp"

namespace boltzlab::generators {

namespace {

struct ScoreConfig {
  ScoreGeneratorOptions model;
  ScoreTrainOptions train;
};

/// The row's loss and sampler, then generator.score and the shared top-level keys over them
/// (the top level's unknown keys were refused by the flow reader, bg_run.cpp).
ScoreConfig read_score_config(const Potential& pot, const BgSampleOptions& o, const GeneratorConfig& cfg) {
  const LossPreset& row = find_loss_preset(cfg.train.preset);
  ScoreConfig c;
  c.train.loss = row.score;
  c.model.sampler = row.sampler;
  const Json empty = Json::object();
  const Json& section = pot.generator.is_object() ? pot.generator : empty;
  const std::string where = pot.path.string() + ": generator";
  JsonReader top(section, where);
  c.train.read_schedule(top);
  const Json& nested = section.contains("score") ? section.at("score") : empty;
  if (!nested.is_object()) throw ConfigError(where + ".score: must be an object");
  JsonReader r(nested, where + ".score");
  c.model.read(r, static_cast<int>(pot.target->dim()));
  c.train.read_loss(r);
  r.finish();
  if (o.iterations) c.train.iterations = *o.iterations;
  c.train.seed = o.seed;
  c.train.progress = o.progress;
  try {
    c.model.validate();
    c.train.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(pot.path.string() + ": " + e.what());
  }
  return c;
}

void plot_score_training(const RunDirectory& run, const ScoreTrainHistory& h, nlohmann::json& notes) {
  std::vector<Series> series = {{"total loss", h.loss, h.iteration}};
  if (std::any_of(h.matching.begin(), h.matching.end(), [](double v) { return v != 0.0; }))
    series.push_back({"score matching", h.matching, h.iteration});
  if (std::any_of(h.residual.begin(), h.residual.end(), [](double v) { return v != 0.0; }))
    series.push_back({"HJB residual", h.residual, h.iteration});
  if (std::any_of(h.terminal.begin(), h.terminal.end(), [](double v) { return v != 0.0; }))
    series.push_back({"terminal condition", h.terminal, h.iteration});
  const PlotResult r = plot_lines(series, "score-model training (means over blocks of steps)", "iteration",
                                  "loss", run.path("training_loss.png"));
  if (!r.ok) notes.push_back(r.note);
}

}  // namespace

bool is_score_run(const BgSampleOptions& o, const GeneratorConfig& cfg) {
  if (!o.model.empty()) return ScoreGenerator::is_score_model(o.model);
  return find_loss_preset(cfg.train.preset).family == ModelFamily::kScore;
}

Eigen::VectorXd score_model_log_q(const std::filesystem::path& model, const RowMatrix& x, int* dim_out) {
  ScoreGenerator g = ScoreGenerator::load(model);
  if (dim_out) *dim_out = g.dim();
  return g.log_q(x);
}

namespace {

/// A trained (on cfg.data) or loaded (--model) score generator; fills summary["training"] or
/// summary["model"], `history`, `options["training"]` and the training plot.
ScoreGenerator train_or_load(const BgSampleOptions& o, const Potential& pot, const GeneratorConfig& cfg,
                             RunDirectory& run, nlohmann::json& summary, nlohmann::json& options,
                             ScoreTrainHistory& history, nlohmann::json& notes) {
  const Target& target = *pot.target;
  if (!o.model.empty()) {
    nlohmann::json meta;
    ScoreGenerator model = ScoreGenerator::load(o.model, &meta);
    if (model.dim() != static_cast<int>(target.dim()))
      throw ConfigError(o.model.string() + ": model dim " + std::to_string(model.dim()) +
                        " does not match target dim " + std::to_string(target.dim()));
    summary["model"] = o.model.string();
    summary["model_metadata"] = meta;
    return model;
  }
  const ScoreConfig sc = read_score_config(pot, o, cfg);
  if (cfg.data.empty())
    throw ConfigError(pot.path.string() + ": preset '" + cfg.train.preset +
                      "' trains on samples of pi: give --data or generator.data");
  const RowMatrix data = read_npy_matrix(cfg.data, target.dim());
  ScoreGenerator model(sc.model, o.seed);
  model.standardize_from_data(data);
  history = model.train(data, sc.train);
  summary["training"] = {{"options", sc.train.to_json()},        {"preset", cfg.train.preset},
                         {"data", cfg.data.string()},            {"data_count", data.rows()},
                         {"iterations", history.iterations_done}, {"skipped_steps", history.skipped},
                         {"wall_seconds", history.wall_seconds},  {"history", history.to_json()}};
  options["training"] = sc.train.to_json();
  plot_score_training(run, history, notes);
  return model;
}

}  // namespace

nlohmann::json run_score(const BgSampleOptions& o, const Potential& pot, const GeneratorConfig& cfg,
                         RunDirectory& run, nlohmann::json summary, double t_start) {
  const Target& target = *pot.target;
  if (target.topology() != nullptr || target.particle_layout().first > 0)
    throw ConfigError(pot.path.string() + ": preset '" + cfg.train.preset +
                      "': score models run on targets without molecules or particle layouts");
  if (o.resume) throw ConfigError("--resume: score-model training keeps no checkpoints");
  nlohmann::json notes = nlohmann::json::array(), options = nlohmann::json::object();
  ScoreTrainHistory history;
  ScoreGenerator model = train_or_load(o, pot, cfg, run, summary, options, history, notes);
  summary["generator"] = model.options().to_json();
  summary["generator"]["score_model"] = model.field().describe();

  const double t_sample = wall_seconds();
  const bool with_density = model.options().sampler == ScoreSampler::kProbabilityFlow;
  GeneratedSamples s;
  if (with_density) s = model.sample(cfg.samples, o.seed);
  else s.x = model.sample_reverse_sde(cfg.samples, o.seed);
  EnergyCounters counters;
  const Eigen::VectorXd u = target_energy_values(s.x, target, &counters);
  summary["samples"] = cfg.samples;
  summary["sampling_seconds"] = wall_seconds() - t_sample;
  summary["non_finite_energies"] = counters.non_finite.load();
  Eigen::VectorXd lw;
  if (with_density) {
    std::size_t non_finite_u = 0;
    lw = log_importance_weights(u, s.log_q, &non_finite_u);
    summary["importance"] = generator_importance_report(lw, non_finite_u, target);
  } else {
    summary["importance"] = {{"note", "reverse-SDE samples carry no density: no importance weights "
                                      "(the probability-flow sampler, preset score-flow, gives them)"}};
  }
  nlohmann::json meta = {{"potential", o.potential.string()}, {"seed", o.seed}, {"preset", cfg.train.preset}};
  model.save(run.path("model.pt"), meta, saved_model_potential(pot, summary));
  summary["model_file"] = (o.out / "model.pt").string();
  if (with_density && target.dim() == 2) {
    const LogDensityFunction log_q = [&model](const RowMatrix& x) { return Eigen::VectorXd(model.log_q(x)); };
    const PlotResult r = draw_plot(density_comparison_script(target, log_q, s.x), run.path("density.png"));
    if (!r.ok) notes.push_back(r.note);
  }

  RunOutputs out;
  out.tool = "bg-sample";
  out.potential_path = o.potential;
  out.potential_name = pot.name;
  out.target = &target;
  options["samples"] = cfg.samples;
  options["generator"] = model.options().to_json();
  out.options = options;
  out.seed = o.seed;
  out.samples = &s.x;
  out.reduced_energies = &u;
  if (with_density) {
    out.log_q = &s.log_q;
    out.log_weights = &lw;
  }
  out.counts = {{"energy_evaluations", counters.evaluations.load()},
                {"sampling_energy_evaluations", counters.evaluations.load()}};
  out.timings = {{"training", history.wall_seconds},
                 {"sampling", summary["sampling_seconds"]},
                 {"total_before_write", wall_seconds() - t_start}};
  out.statistics = summary["importance"];
  for (const auto& n : notes) out.notes.push_back(n.get<std::string>());
  for (const auto& [k, v] : summary.items())
    if (k != "tool" && k != "seed" && k != "threads") out.extra[k] = v;
  nlohmann::json written = write_run(run, out);
  run.commit();
  return written;
}

}  // namespace boltzlab::generators
