#include "boltzlab/app/bg_score.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <utility>

#include "boltzlab/app/bg_molecular.hpp"
#include "boltzlab/app/bg_outputs.hpp"
#include "boltzlab/app/run_outputs.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/estimators/ramachandran_compare.hpp"
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
ScoreConfig read_score_config(const Potential& pot, const BgSampleOptions& o, const GeneratorConfig& cfg, int dim) {
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
  c.model.read(r, dim);
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
  std::vector<Series> series = {{"total loss", h.iteration, h.loss}};
  if (std::any_of(h.matching.begin(), h.matching.end(), [](double v) { return v != 0.0; }))
    series.push_back({"score matching", h.iteration, h.matching});
  if (std::any_of(h.residual.begin(), h.residual.end(), [](double v) { return v != 0.0; }))
    series.push_back({"HJB residual", h.iteration, h.residual});
  if (std::any_of(h.terminal.begin(), h.terminal.end(), [](double v) { return v != 0.0; }))
    series.push_back({"terminal condition", h.iteration, h.terminal});
  const PlotResult r = plot_lines(series, "score-model training (means over blocks of steps)", "iteration",
                                  "loss", run.path("training_loss.png"));
  if (!r.ok) notes.push_back(r.note);
}

}  // namespace

bool is_score_run(const BgSampleOptions& o, const GeneratorConfig& cfg) {
  if (!o.model.empty()) return ScoreGenerator::is_score_model(o.model);
  return find_loss_preset(cfg.train.preset).family == ModelFamily::kScore;
}

namespace {

/// A score generator trained on `data` (the model's coordinates); fills summary["training"],
/// `history`, `options["training"]` and the training plot. `data_info`: where the data came from.
ScoreGenerator train_score_model(const BgSampleOptions& o, const Potential& pot, const GeneratorConfig& cfg,
                                 const RowMatrix& data, const nlohmann::json& data_info, RunDirectory& run,
                                 nlohmann::json& summary, nlohmann::json& options, ScoreTrainHistory& history,
                                 nlohmann::json& notes) {
  const ScoreConfig sc = read_score_config(pot, o, cfg, static_cast<int>(data.cols()));
  ScoreGenerator model(sc.model, o.seed);
  model.standardize_from_data(data);
  history = model.train(data, sc.train);
  summary["training"] = {{"options", sc.train.to_json()},        {"preset", cfg.train.preset},
                         {"data", data_info},                    {"data_count", data.rows()},
                         {"iterations", history.iterations_done}, {"skipped_steps", history.skipped},
                         {"wall_seconds", history.wall_seconds},  {"history", history.to_json()}};
  options["training"] = sc.train.to_json();
  plot_score_training(run, history, notes);
  return model;
}

/// A loaded (--model) score generator of `pot`: a model of a molecule (saved with its molecular
/// space, returned in `space`) for a molecular target, a plain one otherwise; the dimension
/// checked against the target's (or the molecular space's).
ScoreGenerator load_score_model(const BgSampleOptions& o, const Potential& pot, nlohmann::json& summary,
                                std::optional<MolecularFlowSpace>& space) {
  nlohmann::json meta;
  ScoreGenerator model = ScoreGenerator::load(o.model, &meta);
  const bool molecular_model = meta.contains("molecular_space");
  if (molecular_model != (pot.target->topology() != nullptr))
    throw ConfigError(o.model.string() + ": a score model of " +
                      (molecular_model ? "a molecule" : "a target without molecules") + ", not of " + pot.name);
  std::int64_t dim = static_cast<std::int64_t>(pot.target->dim());
  if (molecular_model) {
    space.emplace(MolecularFlowSpace::from_json(meta.at("molecular_space"), o.model.string() + ": molecular_space"));
    check_atom_names(space->coordinates().zmatrix(), *pot.target->topology(), o.model.string());
    dim = space->dim();
  }
  if (model.dim() != dim)
    throw ConfigError(o.model.string() + ": model dim " + std::to_string(model.dim()) + " does not match the " +
                      (molecular_model ? "molecular space's" : "target's") + " dim " + std::to_string(dim));
  summary["model"] = o.model.string();
  meta.erase("molecular_space");
  summary["model_metadata"] = meta;
  return model;
}

/// Samples of the row's sampler: PF-ODE with log q, or reverse SDE (log q left empty).
GeneratedSamples draw_score_samples(ScoreGenerator& model, long long n, std::uint64_t seed) {
  if (model.options().sampler == ScoreSampler::kProbabilityFlow) return model.sample(n, seed);
  return {model.sample_reverse_sde(n, seed), Eigen::VectorXd()};
}

const char* const kReverseSdeNote =
    "reverse-SDE samples carry no density: no importance weights (the probability-flow sampler, preset "
    "score-flow, gives them)";

/// The record of a score model for the run directory.
GeneratorRecord score_record(const GeneratorConfig& cfg, const ScoreGenerator& model, const nlohmann::json& options,
                             const ScoreTrainHistory* history) {
  GeneratorRecord r;
  r.options = options;
  r.options["samples"] = cfg.samples;
  r.options["generator"] = model.options().to_json();
  if (history) r.training_seconds = history->wall_seconds;
  return r;
}

/// The molecular path: the score model lives on MolecularFlowSpace's normalized internal
/// coordinates y with the torsion columns mapped to the real line (torsions_to_line); its
/// probability-flow draws are mapped back, decoded to Cartesian and weighed like a flow's.
nlohmann::json run_score_molecular(const BgSampleOptions& o, const Potential& pot, const GeneratorConfig& cfg,
                                   RunDirectory& run, nlohmann::json summary, double t_start) {
  const Target& target = *pot.target;
  nlohmann::json notes = nlohmann::json::array(), options = nlohmann::json::object(), data_info;
  std::optional<RowMatrix> reference;  // read before training: bad input fails early
  if (!cfg.reference_dihedrals.empty())
    reference = read_reference_dihedrals(cfg.reference_dihedrals, cfg.reference_field);
  ScoreTrainHistory history;
  std::optional<MolecularFlowSpace> space;
  std::optional<ScoreGenerator> model;
  const bool trained = o.model.empty();
  if (trained) {
    const MolecularSystem system = molecular_system(pot, cfg);
    const TrainingFrames f = obtain_training_frames(o, pot, cfg, notes);
    data_info = f.info;
    const torch::Tensor frames = to_tensor(f.frames);
    space.emplace(MolecularFlowSpace::fit(system.coordinates, frames));
    const RowMatrix y = torsions_to_line(to_matrix(space->to_flow(frames).first), space->torsion_mask());
    model.emplace(train_score_model(o, pot, cfg, y, data_info, run, summary, options, history, notes));
  } else {
    model.emplace(load_score_model(o, pot, summary, space));
  }
  summary["generator"] = model->options().to_json();
  summary["generator"]["score_model"] = model->field().describe();

  const double t_sample = wall_seconds();
  const bool with_density = model->options().sampler == ScoreSampler::kProbabilityFlow;
  GeneratedSamples g = draw_score_samples(*model, cfg.samples, o.seed);
  torsions_to_circle(g.x, with_density ? &g.log_q : nullptr, space->torsion_mask());
  if (!with_density) g.log_q = Eigen::VectorXd::Zero(g.x.rows());  // weights computed, then dropped
  EnergyCounters counters;
  MolecularSamples s;
  weigh_molecular(g, *space, target, counters, s);
  const auto& ic = space->coordinates();
  summary["molecular_generator"] = {
      {"coordinates", "internal (Z-matrix of " + std::to_string(ic.n_atoms()) + " atoms), normalized; torsions " +
                          "mapped to the real line by t = logit((tau + pi) / 2 pi)"},
      {"z_matrix", ic.to_json()}, {"flow_dim", space->dim()}, {"data", data_info},
      {"wrong_chirality", s.wrong_chirality},
      {"outside_domain", s.outside_domain}, {"zero_weight", s.zero_weight}};
  summary["samples"] = cfg.samples;
  summary["sampling_seconds"] = wall_seconds() - t_sample;
  summary["non_finite_energies"] = s.non_finite_energies;
  if (with_density) {
    summary["importance"] = generator_importance_report(s.log_weights, s.non_finite_energies, target);
    if (reference)
      summary["ramachandran_vs_reference"] =
          ramachandran_vs_reference(*target.topology(), s.x, &s.log_weights, *reference,
                                    cfg.reference_dihedrals.string()).to_json();
    summary["conformations"] = conformations_summary(target, s, reference, cfg.reference_dihedrals.string());
  } else {
    summary["importance"] = {{"note", kReverseSdeNote}};
  }
  nlohmann::json saved = {{"potential", o.potential.string()}, {"seed", o.seed}, {"preset", cfg.train.preset},
                          {"molecular_space", space->to_json()}};
  model->save(run.path("model.pt"), saved, saved_model_potential(pot, summary));
  summary["model_file"] = (o.out / "model.pt").string();
  return write_generator_run(run, o, pot, score_record(cfg, *model, options, trained ? &history : nullptr), counters,
                             {&s.x, &s.u, with_density ? &s.log_q : nullptr, with_density ? &s.log_weights : nullptr},
                             summary, notes, t_start, {reference ? &*reference : nullptr, cfg.reference_dihedrals.string()});
}

}  // namespace

nlohmann::json run_score(const BgSampleOptions& o, const Potential& pot, const GeneratorConfig& cfg,
                         RunDirectory& run, nlohmann::json summary, double t_start) {
  const Target& target = *pot.target;
  if (o.resume) throw ConfigError("--resume: score-model training keeps no checkpoints");
  if (target.topology() != nullptr) return run_score_molecular(o, pot, cfg, run, std::move(summary), t_start);
  if (target.particle_layout().first > 0)
    throw ConfigError(pot.path.string() + ": preset '" + cfg.train.preset +
                      "': score models run on molecules (internal coordinates) or on targets without particle "
                      "layouts");
  nlohmann::json notes = nlohmann::json::array(), options = nlohmann::json::object();
  ScoreTrainHistory history;
  const bool trained = o.model.empty();
  std::optional<ScoreGenerator> loaded;
  std::optional<MolecularFlowSpace> no_space;
  if (!trained) {
    loaded.emplace(load_score_model(o, pot, summary, no_space));
  } else if (cfg.data.empty()) {
    throw ConfigError(pot.path.string() + ": preset '" + cfg.train.preset +
                      "' trains on samples of pi: give --data or generator.data");
  }
  ScoreGenerator model = trained ? train_score_model(o, pot, cfg, read_npy_matrix(cfg.data, target.dim()),
                                                     cfg.data.string(), run, summary, options, history, notes)
                                 : std::move(*loaded);
  summary["generator"] = model.options().to_json();
  summary["generator"]["score_model"] = model.field().describe();

  const double t_sample = wall_seconds();
  const bool with_density = model.options().sampler == ScoreSampler::kProbabilityFlow;
  const GeneratedSamples s = draw_score_samples(model, cfg.samples, o.seed);
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
    summary["importance"] = {{"note", kReverseSdeNote}};
  }
  nlohmann::json saved = {{"potential", o.potential.string()}, {"seed", o.seed}, {"preset", cfg.train.preset}};
  model.save(run.path("model.pt"), saved, saved_model_potential(pot, summary));
  summary["model_file"] = (o.out / "model.pt").string();
  if (with_density && target.dim() == 2) {
    const LogDensityFunction log_q = [&model](const RowMatrix& x) { return Eigen::VectorXd(model.log_q(x)); };
    const PlotResult r = draw_plot(density_comparison_script(target, log_q, s.x), run.path("density.png"));
    if (!r.ok) notes.push_back(r.note);
  }
  return write_generator_run(run, o, pot, score_record(cfg, model, options, trained ? &history : nullptr), counters,
                             {&s.x, &u, with_density ? &s.log_q : nullptr, with_density ? &lw : nullptr}, summary,
                             notes, t_start);
}

}  // namespace boltzlab::generators
