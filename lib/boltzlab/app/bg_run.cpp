#include "boltzlab/app/bg_run.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include <dlfcn.h>
#include <torch/torch.h>

#include "boltzlab/app/bg_bridge.hpp"
#include "boltzlab/app/bg_config.hpp"
#include "boltzlab/app/bg_molecular.hpp"
#include "boltzlab/app/bg_outputs.hpp"
#include "boltzlab/app/bg_score.hpp"
#include "boltzlab/app/iw_diag.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/app/run_outputs.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/mpi.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/estimators/report.hpp"
#include "boltzlab/generators/annealed_training.hpp"
#include "boltzlab/generators/base_registry.hpp"
#include "boltzlab/generators/fab_training.hpp"
#include "boltzlab/generators/game_spec.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/model_file.hpp"
#include "boltzlab/generators/score_generator.hpp"
#include "boltzlab/generators/symmetrize.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/generators/training_step.hpp"
#include "boltzlab/generators/training_checkpoint.hpp"
#include "boltzlab/io/netcdf.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/targets/registry.hpp"

namespace fs = std::filesystem;

namespace boltzlab::generators {

void BgSampleOptions::validate() const {
  if (evaluate.empty() && potential.empty())
    throw ConfigError("--potential is required (or --model with --evaluate)");
  if (!evaluate.empty() && model.empty()) throw ConfigError("--evaluate needs --model");
  if (allow_other_potential && model.empty()) throw ConfigError("--allow-other-potential needs --model");
  if (samples && *samples < 2)
    throw ConfigError("--samples is " + std::to_string(*samples) + ", but must be >= 2");
  if (smc && *smc < 2) throw ConfigError("--smc is " + std::to_string(*smc) + ", but must be >= 2");
  if (smc && !evaluate.empty()) throw ConfigError("--smc samples a model; it does not go with --evaluate");
  if (threads < 0) throw ConfigError("--threads is " + std::to_string(threads) + ", but must be >= 0");
  if (iterations && *iterations < 0)
    throw ConfigError("--iterations is " + std::to_string(*iterations) + ", but must be >= 0");
  if (out.empty()) throw ConfigError("--out is empty");
  if (resume && !model.empty()) throw ConfigError("--resume continues a training, but --model skips training");
  if (refine && model.empty())
    throw ConfigError("--refine refines a loaded --model (a trained run refines by generator.refinement itself)");
  if (refine && !evaluate.empty()) throw ConfigError("--refine samples a model; it does not go with --evaluate");
  if (!netcdf.empty() && !evaluate.empty())
    throw ConfigError("--netcdf writes weighted samples, but --evaluate writes only log q");
}

namespace {

/// The BLAS behind libblas.so.3 (Debian's alternatives) may keep a thread pool of its own:
/// OpenBLAS's pthread build starts one thread per core and uses it inside every GEMM, on
/// top of the oneTBB workers that each run a chunk's LibTorch ops (training at --threads 2
/// ran 3× slower than at 1). Its pool is set to one thread when the running BLAS is OpenBLAS
/// (found by symbol; other BLAS libraries are left alone).
void one_blas_thread() {
  using SetThreads = void (*)(int);
  if (auto* set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
}

}  // namespace

void set_generator_threads(int threads) {
  set_num_threads(threads);
  one_blas_thread();
  // The generators parallelize over fixed batch chunks with oneTBB (deterministic,
  // thread-count independent); LibTorch's own intra-op pool would oversubscribe the
  // same cores (and its OpenMP barriers stall badly on a loaded machine), so each
  // oneTBB task runs LibTorch ops on one thread. Inter-op threads follow `threads`.
  torch::set_num_threads(1);
  static bool interop_set = false;  // LibTorch allows setting inter-op threads once
  if (!interop_set) {
    try {
      torch::set_num_interop_threads(num_threads());
    } catch (const c10::Error&) {
      // already started by an earlier parallel region: keep its setting
    }
    interop_set = true;
  }
}

nlohmann::json generator_importance_report(const Eigen::VectorXd& log_weights, std::size_t non_finite_energies,
                                           const Target& target) {
  ImportanceReportOptions opts;
  opts.exact_log_z = target.log_z();
  if (target.topology()) opts.kt_kj_mol = target.kT();
  bool any_finite = false;
  for (Eigen::Index i = 0; i < log_weights.size(); ++i) any_finite |= std::isfinite(log_weights[i]);
  if (!any_finite)
    return {{"samples", log_weights.size()},
            {"ess_fraction", 0.0},
            {"note", "no finite log-weight (every sample has zero weight)"}};
  return importance_report(log_weights, non_finite_energies, opts).to_json();
}

namespace {

/// Verifies --model against its record (model.json) and the potential it was trained on,
/// before either path loads it: summary["model_record"], and a warning when another potential
/// is allowed. \throws IoError (unverifiable or corrupted file) or ConfigError (another potential).
void check_model_file(const BgSampleOptions& o, const Potential& pot, nlohmann::json& summary) {
  const ModelFileRecord record = verify_model_bytes(o.model, read_model_bytes(o.model));
  summary["model_record"] = record.to_json();
  const auto warning =
      check_model_potential(record, o.model, potential_identity(pot), o.allow_other_potential, "--allow-other-potential");
  if (warning) summary["warnings"].push_back(*warning);
}

// generator.game (game_spec.hpp): the preset's terms overridden key by key; the same terms as
// top-level keys beside it are refused (one spelling per run).
void apply_game_section(const Potential& pot, const Json& section, GeneratorConfig& c) {
  if (!section.contains("game")) return;
  const std::string where = pot.path.string() + ": generator";
  for (const auto& key : GameSpec::flat_keys())
    if (section.contains(key))
      throw ConfigError(where + "." + key + " and " + where + ".game both set the game's terms; use one of them");
  if (!section.at("game").is_object()) throw ConfigError(where + ".game: must be an object");
  GameSpec game = GameSpec::of(c.train.weights, c.model);
  JsonReader r(section.at("game"), where + ".game");
  game.read(r);
  game.apply(c.train.weights, c.model);
}

GeneratorConfig read_generator_config(const Potential& pot, const BgSampleOptions& flags, bool have_data_flag) {
  GeneratorConfig c;
  const Json empty = Json::object();
  const Json& section = pot.generator.is_null() ? empty : pot.generator;
  if (!section.is_object()) throw ConfigError(pot.path.string() + ": generator: must be an object");
  JsonReader r(section, pot.path.string() + ": generator");
  const Target& target = *pot.target;
  c.model = read_model_options(r, target);
  read_data_options(r, pot, flags, c);
  c.base = read_base(r, target);
  c.md = read_md_defaults(r);
  if (!flags.data.empty()) c.data = flags.data;
  // Molecular targets train on data (given, or frames of a short MD run): the
  // default preset is OT-Flow (λ = 1).
  const bool molecular = target.topology() != nullptr;
  const bool have_data = have_data_flag || !c.data.empty() || molecular;
  if (molecular) c.train.preset = "ot-flow";
  c.train.read(r, have_data);
  c.annealing = read_annealing(r, target, have_data);
  c.fab = read_fab(r, target, have_data, c.annealing.enabled);
  c.refinement = read_refinement(r, c.annealing.enabled);
  if (flags.refine && !c.refinement.enabled)
    throw ConfigError(pot.path.string() + ": generator.refinement: --refine needs this section (rungs, samples_per_rung, "
                      "steps_per_rung, ...)");
  c.smc = read_smc(r, flags.smc);
  c.symmetrize = read_symmetrize(r, target, c.smc.has_value());
  r.ignore("score");   // the score rows' section (bg_score.hpp)
  r.ignore("bridge");  // the bridge rows' section (bg_bridge.hpp)
  r.ignore("game");   // the game object (apply_game_section)
  r.finish();
  if (flags.preset) {
    c.train.preset = *flags.preset;
    const LossWeights p = LossWeights::preset(*flags.preset, have_data);
    c.train.weights = p;
  }
  // A preset with stochastic dynamics brings its σ unless the file sets generator.noise.
  if (!section.contains("noise")) c.model.noise = find_loss_preset(c.train.preset).noise;
  if (!section.contains("velocity")) c.model.free_velocity = find_loss_preset(c.train.preset).free_velocity;
  apply_game_section(pot, section, c);
  if (flags.lambda) c.train.weights.lambda = *flags.lambda;
  if (flags.iterations) c.train.iterations = *flags.iterations;
  if (flags.samples) c.samples = *flags.samples;
  try {
    c.model.validate();
  } catch (const ConfigError& e) {  // name the file: the architecture keys come from its generator section
    const std::string what = e.what();
    throw ConfigError(pot.path.string() + (what.rfind("generator", 0) == 0 ? ": " : ": generator: ") + what);
  }
  return c;
}

nlohmann::json run_evaluate(const BgSampleOptions& o) {
  const double t0 = wall_seconds();
  nlohmann::json meta;
  ModelFileRecord record;
  std::optional<BoltzmannGenerator> flow;
  std::optional<ScoreGenerator> score;
  if (ScoreGenerator::is_score_model(o.model)) {
    record = verify_model_bytes(o.model, read_model_bytes(o.model));
    score.emplace(ScoreGenerator::load(o.model, &meta));
    if (meta.contains("molecular_space"))
      throw ConfigError("--evaluate: " + o.model.string() + " is a score model of a molecule, whose coordinates "
                        "(internal, torsions on the real line) are not a file format; evaluate flow models");
  } else {
    flow.emplace(BoltzmannGenerator::load(o.model, &meta, &record));
  }
  const int dim = score ? score->dim() : flow->dim();
  const RowMatrix x = read_npy_matrix(o.evaluate, static_cast<std::size_t>(dim));
  RunDirectory run(o.out, {o.model, o.evaluate});
  const Eigen::VectorXd lq = score ? score->log_q(x) : flow->log_q(x);
  std::size_t non_finite = 0;
  double sum = 0.0, sum2 = 0.0;
  for (Eigen::Index i = 0; i < lq.size(); ++i) {
    if (!std::isfinite(lq[i])) { ++non_finite; continue; }
    sum += lq[i];
    sum2 += lq[i] * lq[i];
  }
  const double m = static_cast<double>(lq.size() - static_cast<Eigen::Index>(non_finite));
  run.write_array("log_q.npy", lq);
  nlohmann::json summary = {{"tool", "bg-sample"},
                            {"mode", "evaluate"},
                            {"model", o.model.string()},
                            {"model_format_version", kModelFormatVersion},
                            {"model_record", record.to_json()},
                            {"configurations", o.evaluate.string()},
                            {"threads", num_threads()},
                            {"count", lq.size()},
                            {"non_finite_log_q", non_finite}};
  if (m > 0) {
    const double mean = sum / m;
    summary["nll"] = -mean;
    summary["nll_se"] = m > 1 ? std::sqrt(std::max(0.0, sum2 / m - mean * mean) / (m - 1)) : 0.0;
  }
  summary["wall_seconds"] = wall_seconds() - t0;
  sanitize_non_finite(summary);
  run.write_summary(summary);
  run.commit();
  return summary;
}


/// The model of --model, its dimension checked against the target's.
BoltzmannGenerator load_plain_model(const BgSampleOptions& o, const Target& target, nlohmann::json& summary) {
  nlohmann::json meta;
  BoltzmannGenerator model = BoltzmannGenerator::load(o.model, &meta);
  if (model.dim() != static_cast<int>(target.dim()))
    throw ConfigError(o.model.string() + ": model dim " + std::to_string(model.dim()) +
                      " does not match target dim " + std::to_string(target.dim()));
  summary["model"] = o.model.string();
  summary["model_metadata"] = meta;
  return model;
}

/// A fresh model (parameters from o.seed) with its standardization (from the data, else
/// generator.scale/shift) and base (cfg.base fitted to the standardized data, base_registry.hpp).
BoltzmannGenerator fit_plain_model(const BgSampleOptions& o, const Potential& pot, const GeneratorConfig& cfg,
                                   const RowMatrix* data) {
  const Target& target = *pot.target;
  const BaseKindSpec& spec = base_kind_spec(kind_of(cfg.base));
  if (spec.needs_data && data == nullptr)
    throw ConfigError(pot.path.string() + ": generator.base \"" + spec.name + "\" is fitted to data, but no data "
                      "were given (--data or generator.data)");
  BoltzmannGenerator model(cfg.model, o.seed);
  if (data != nullptr) {
    model.standardize_from_data(*data);
    if (!spec.needs_data) return model;
    std::optional<BaseDensity> base;
    try {
      base = fit_base(cfg.base, BaseFitData{model.flow_coordinates(*data),
                                            torch::zeros({model.dim()}, torch::TensorOptions().dtype(torch::kBool)),
                                            {}});
    } catch (const DomainError& e) {
      throw ConfigError(pot.path.string() + ": generator.base \"" + spec.name + "\": " + e.what());
    }
    if (base) model.set_base(*base);
  } else if (cfg.scale || cfg.shift) {
    model.set_standardization(cfg.shift.value_or(Eigen::VectorXd::Zero(target.dim())),
                              cfg.scale.value_or(Eigen::VectorXd::Ones(target.dim())));
  }
  return model;
}

/// Refines `model` by cfg.refinement; returns `before` followed by the rungs, and their record
/// (summary["training"]["refinement"]) in `record`.
TrainHistory refine_plain_model(BoltzmannGenerator& model, const Target& target, const GeneratorConfig& cfg,
                                const TrainHistory& before, nlohmann::json& record) {
  const RefinementHistory refined = refine_trained(model, target, cfg.train, cfg.refinement);
  record = {{"options", cfg.refinement.to_json()}, {"result", refined.to_json()}};
  return refined.combined(before);
}

/// Trains a fresh model by the section's training (forward/reverse KL, annealing or FAB, then the
/// refinement) and records it in summary["training"].
BoltzmannGenerator train_plain_model(const BgSampleOptions& o, const Potential& pot, GeneratorConfig& cfg,
                                     const RowMatrix* data, TrainHistory& history, nlohmann::json& summary) {
  const Target& target = *pot.target;
  apply_training_flags(cfg.train, o);
  cfg.train.validate(data != nullptr);
  BoltzmannGenerator model = fit_plain_model(o, pot, cfg, data);
  std::optional<AnnealedHistory> annealed;
  std::optional<FabHistory> fab;
  if (cfg.annealing.enabled) annealed = train_annealed(model, target, cfg.train, cfg.annealing);
  if (cfg.fab.enabled) fab = train_fab(model, target, cfg.train, cfg.fab);
  history = annealed ? annealed->combined() : fab ? fab->combined() : train(model, target, data, cfg.train);
  const bool stopped_early = !annealed && !fab && history.iterations_done < cfg.train.iterations;  // resumable
  nlohmann::json refinement;
  if (cfg.refinement.enabled && !stopped_early) history = refine_plain_model(model, target, cfg, history, refinement);
  summary["training"] = training_summary(cfg.train, history);
  if (!refinement.is_null()) summary["training"]["refinement"] = refinement;
  if (annealed)
    summary["training"]["annealing"] = {{"options", cfg.annealing.to_json()}, {"result", annealed->to_json()}};
  if (fab) summary["training"]["fab"] = {{"options", cfg.fab.to_json()}, {"result", fab->to_json()}};
  summary["training"]["game"] = GameSpec::of(cfg.train.weights, model.options()).to_json();
  summary["training"]["data"] = data != nullptr ? cfg.data.string() : "";
  summary["training"]["data_count"] = data != nullptr ? data->rows() : 0;
  if (data == nullptr && !annealed && !fab)
    summary["warnings"].push_back("no training data: trained by reverse KL only (mode-seeking)");
  return model;
}

/// Targets other than molecules: the flow lives in the target's (standardized) coordinates.
nlohmann::json run_plain(const BgSampleOptions& o, const Potential& pot, GeneratorConfig& cfg, RunDirectory& run,
                         nlohmann::json summary, double t_start) {
  const Target& target = *pot.target;
  RowMatrix data;
  const bool have_data = !cfg.data.empty();
  if (have_data) data = read_npy_matrix(cfg.data, target.dim());
  nlohmann::json notes = nlohmann::json::array();
  std::optional<BoltzmannGenerator> model;
  TrainHistory history;
  const bool trained = o.model.empty() || o.refine;  // a refined --model records its training (the rungs)
  if (!o.model.empty()) {
    model.emplace(load_plain_model(o, target, summary));
    if (o.refine) {
      apply_training_flags(cfg.train, o);
      nlohmann::json record;
      history = refine_plain_model(*model, target, cfg, {}, record);
      summary["training"] = training_summary(cfg.train, history);
      summary["training"]["refinement"] = record;
    }
  } else {
    model.emplace(train_plain_model(o, pot, cfg, have_data ? &data : nullptr, history, summary));
  }
  summary["generator"] = model->options().to_json();
  summary["base"] = model->base() != nullptr ? model->base()->kind() : std::string("standard_normal");

  // Sampling and importance weights.
  const double t_sample = wall_seconds();
  std::optional<ParticleSymmetry> group;
  if (cfg.symmetrize) {
    const auto layout = target.particle_layout();
    group.emplace(static_cast<int>(layout.first), static_cast<int>(layout.second), true);
  }
  const GeneratedSamples s =
      group ? symmetrized_sample(*model, *group, cfg.samples, o.seed) : model->sample(cfg.samples, o.seed);
  summary["symmetrized_group_size"] = group ? nlohmann::json(group->size()) : nlohmann::json(nullptr);
  EnergyCounters counters;
  const Eigen::VectorXd u = target_energy_values(s.x, target, &counters);
  std::size_t non_finite_u = 0;
  const Eigen::VectorXd lw = log_importance_weights(u, s.log_q, &non_finite_u);
  summary["samples"] = cfg.samples;
  summary["sampling_seconds"] = wall_seconds() - t_sample;
  summary["sampling_energy_evaluations"] = counters.evaluations.load();
  summary["non_finite_energies"] = counters.non_finite.load();
  summary["importance"] = generator_importance_report(lw, non_finite_u, target);
  if (cfg.smc) summary["smc"] = run_smc_stage(*model, target, nullptr, *cfg.smc, o.seed, o.progress, run).summary;

  nlohmann::json meta = {{"potential", o.potential.string()}, {"seed", o.seed}};
  if (trained) meta["training"] = {{"iterations", history.iterations_done},
                                   {"energy_evaluations", history.energy_evaluations},
                                   {"preset", cfg.train.preset}};
  model->save(run.path("model.pt"), meta, saved_model_potential(pot, summary));
  summary["model_file"] = (o.out / "model.pt").string();
  if (trained) plot_training(run, history, notes);
  if (target.dim() == 2 && target.particle_layout().first == 0) plot_density_2d(run, target, *model, s.x, notes);

  return write_generator_run(run, o, pot, flow_record(cfg, *model, trained ? &history : nullptr), counters,
                             {&s.x, &u, &s.log_q, &lw}, summary, notes, t_start);
}

/// What a checkpoint must match for --resume (training_checkpoint.hpp): the potential
/// (name, type, dimension, parameters less the platform choice), architecture, seed, loss.
nlohmann::json training_identity(const Potential& pot, const GeneratorConfig& cfg, const BgSampleOptions& o) {
  Json parameters = pot.raw.value("parameters", Json::object());
  if (parameters.is_object()) {
    parameters.erase("platform");
    parameters.erase("platform_properties");
  }
  nlohmann::json identity = {{"potential", {{"name", pot.name}, {"type", pot.type}, {"dimension", pot.target->dim()},
                                             {"parameters", parameters}}},
                             {"generator", cfg.model.to_json()},
                             {"seed", o.seed},
                             {"preset", cfg.train.preset},
                             {"loss_weights", cfg.train.weights.to_json()}};
  if (cfg.annealing.enabled) identity["annealing"] = cfg.annealing.to_json();  // stage 1 trains at t_high
  if (cfg.fab.enabled) identity["fab"] = cfg.fab.to_json();
  return identity;
}

/// The summary entries every bg-sample run starts with.
nlohmann::json summary_header(const Target& target, const BgSampleOptions& o) {
  return {{"tool", "bg-sample"},
          {"target", target.describe()},
          {"seed", o.seed},
          {"threads", num_threads()},
          {"warnings", nlohmann::json::array()}};
}

/// The files a run reads (run_directory.hpp: the output may not hold them).
std::vector<fs::path> run_inputs(const BgSampleOptions& o, const Potential& pot, const GeneratorConfig& cfg) {
  std::vector<fs::path> inputs = potential_files(pot);
  for (const fs::path& p : {o.model, o.data, o.reference, cfg.data, cfg.z_matrix, cfg.reference_dihedrals})
    inputs.push_back(p);
  return inputs;
}

/// --netcdf: the committed run directory's arrays (the same values as its .npy files).
void write_netcdf(const BgSampleOptions& o) {
  if (o.netcdf.empty() || !mpi::is_root()) return;  // over MPI ranks rank 0 alone writes
  InferenceData data = run_directory_inference_data(o.out);
  data.attributes["tool"] = "bg-sample";
  data.attributes["seed"] = std::to_string(o.seed);
  write_inference_data(o.netcdf, data);
}

}  // namespace

nlohmann::json run_bg_sample(const BgSampleOptions& o) {
  o.validate();
  set_generator_threads(o.threads);
  if (!o.evaluate.empty()) return run_evaluate(o);

  const double t_start = wall_seconds();
  Potential pot = load_potential(o.potential);
  const Target& target = *pot.target;
  GeneratorConfig cfg = read_generator_config(pot, o, !o.data.empty());
  // The score and bridge families have paths of their own (bg_score.hpp, bg_bridge.hpp).
  const auto family = is_bridge_run(o, cfg) ? &run_bridge : is_score_run(o, cfg) ? &run_score : nullptr;
  if (family != nullptr) {
    if (cfg.annealing.enabled)
      throw ConfigError(o.potential.string() + ": generator.annealing: annealed training is for the flow rows, "
                        "not the score or bridge rows (preset '" + cfg.train.preset + "')");
    if (cfg.fab.enabled)
      throw ConfigError(o.potential.string() + ": generator.fab: FAB training is for the flow rows, "
                        "not the score or bridge rows (preset '" + cfg.train.preset + "')");
    if (cfg.refinement.enabled)
      throw ConfigError(o.potential.string() + ": generator.refinement: refinement is for the flow rows, "
                        "not the score or bridge rows (preset '" + cfg.train.preset + "')");
    if (cfg.smc)
      throw ConfigError(o.potential.string() + ": generator.smc (--smc): annealed SMC runs after the flow rows, "
                        "not the score or bridge rows (preset '" + cfg.train.preset + "')");
    nlohmann::json summary = summary_header(target, o);
    if (!o.model.empty()) check_model_file(o, pot, summary);
    RunDirectory run(o.out, run_inputs(o, pot, cfg));
    if (!o.netcdf.empty() && mpi::is_root()) check_netcdf_output(o.netcdf, run_inputs(o, pot, cfg), o.out);
    nlohmann::json written = family(o, pot, cfg, run, summary, t_start);
    write_netcdf(o);
    return written;
  }

  if (o.model.empty()) {  // the loss terms the section's flow can have, before any work (a loaded model: at its step)
    try {
      check_loss_for_model(cfg.model, cfg.train.weights, target.topology() != nullptr);
    } catch (const ConfigError& e) {
      throw ConfigError(o.potential.string() + ": " + e.what());
    }
  }
  cfg.train.checkpoint_identity = training_identity(pot, cfg, o);
  if (o.resume) Checkpointer(bg_checkpoint_path(o.out), 0, cfg.train.checkpoint_identity).check_resumable();

  nlohmann::json summary = summary_header(target, o);
  if (!o.model.empty()) check_model_file(o, pot, summary);
  RunDirectory run(o.out, run_inputs(o, pot, cfg));  // fails early when `out` may not be written
  if (!o.netcdf.empty() && mpi::is_root()) check_netcdf_output(o.netcdf, run_inputs(o, pot, cfg), o.out);
  nlohmann::json written = target.topology() != nullptr ? run_molecular(o, pot, cfg, run, summary, t_start)
                                                        : run_plain(o, pot, cfg, run, summary, t_start);
  if (o.model.empty() && mpi::is_root()) {  // committed: nothing is left to resume
    std::error_code ec;
    fs::remove(bg_checkpoint_path(o.out), ec);
  }
  write_netcdf(o);
  return written;
}

}  // namespace boltzlab::generators
