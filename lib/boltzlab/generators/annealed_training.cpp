#include "boltzlab/generators/annealed_training.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/generators/training_schedule.hpp"
#include "boltzlab/generators/training_step.hpp"

namespace boltzlab::generators {

// ---------------------------------------------------------------------------------------------
// TemperedTarget

TemperedTarget::TemperedTarget(const Target& inner, double tau) : inner_(inner), tau_(tau) {
  if (!(tau > 0.0) || !std::isfinite(tau))
    throw ConfigError("tempered target '" + inner.name() + "': tau is " + std::to_string(tau) +
                      ", but must be finite and > 0");
}

std::string TemperedTarget::name() const {
  std::ostringstream s;
  s << inner_.name() << "@tau=" << tau_;
  return s.str();
}

double TemperedTarget::reduced_energy(const double* x, double* grad) const {
  const double u = inner_.reduced_energy(x, grad);
  if (grad != nullptr)
    for (std::size_t k = 0; k < inner_.dim(); ++k) grad[k] /= tau_;
  return u / tau_;
}

nlohmann::json TemperedTarget::describe() const { return {{"tempered", inner_.describe()}, {"tau", tau_}}; }

BatchStats TemperedTarget::evaluate_batch(const RowMatrix& x, Eigen::VectorXd& u, RowMatrix* grad,
                                          Execution exec) const {
  const BatchStats stats = inner_.evaluate_batch(x, u, grad, exec);
  u /= tau_;  // +inf (a failed evaluation) stays +inf
  if (grad != nullptr) *grad /= tau_;
  return stats;
}

// ---------------------------------------------------------------------------------------------
// Options

std::string to_string(WeightSmoothing s) {
  switch (s) {
    case WeightSmoothing::kNone: return "none";
    case WeightSmoothing::kTruncate: return "truncate";
    case WeightSmoothing::kPsis: return "psis";
  }
  return "psis";
}

namespace {

// The "smoothing" key of an annealing or refinement object.
WeightSmoothing read_smoothing(JsonReader& r, WeightSmoothing fallback) {
  const std::string s = r.get_string("smoothing", to_string(fallback));
  if (s == "none") return WeightSmoothing::kNone;
  if (s == "truncate") return WeightSmoothing::kTruncate;
  if (s == "psis") return WeightSmoothing::kPsis;
  r.fail("smoothing", "is \"" + s + "\", but must be \"none\", \"truncate\" or \"psis\"");
}

}  // namespace

std::vector<double> AnnealingOptions::ladder() const {
  std::vector<double> tau(static_cast<std::size_t>(rungs) + 1, 1.0);  // τ_K exactly 1, whatever the rounding
  for (int k = 0; k < rungs; ++k) {
    const double f = static_cast<double>(k) / rungs;
    tau[static_cast<std::size_t>(k)] = spacing == "linear" ? t_high - f * (t_high - 1.0) : std::pow(t_high, 1.0 - f);
  }
  return tau;
}

void AnnealingOptions::read(JsonReader& r) {
  enabled = true;
  t_high = r.get_double("t_high", t_high);
  rungs = static_cast<int>(r.get_int("rungs", rungs));
  spacing = r.get_string("spacing", spacing);
  samples_per_rung = static_cast<int>(r.get_int("samples_per_rung", samples_per_rung));
  steps_per_rung = static_cast<int>(r.get_int("steps_per_rung", steps_per_rung));
  batch_size = static_cast<int>(r.get_int("batch_size", batch_size));
  learning_rate = r.get_double("learning_rate", learning_rate);
  refine_rungs = static_cast<int>(r.get_int("refine_rungs", refine_rungs));
  refine_steps_per_rung = static_cast<int>(r.get_int("refine_steps_per_rung", refine_steps_per_rung));
  smoothing = read_smoothing(r, smoothing);
  r.finish();
  try {
    validate();
  } catch (const ConfigError& e) {  // name the file: the keys come from its generator section
    throw ConfigError(r.file_prefix() + e.what());
  }
}

void AnnealingOptions::validate() const {
  auto bad = [](const std::string& key, const std::string& value, const std::string& need) {
    throw ConfigError("generator.annealing." + key + " is " + value + ", but must be " + need);
  };
  if (!(t_high >= 1.0) || !std::isfinite(t_high)) bad("t_high", std::to_string(t_high), "finite and >= 1");
  if (t_high > 1.0 && rungs < 1) bad("rungs", std::to_string(rungs), ">= 1 (a ladder from t_high down to 1)");
  if (t_high == 1.0 && rungs != 0)
    bad("rungs", std::to_string(rungs), "0 when t_high is 1 (no ladder; refine_rungs trains at tau 1)");
  if (refine_rungs < 0) bad("refine_rungs", std::to_string(refine_rungs), ">= 0");
  if (rungs + refine_rungs < 1)
    bad("refine_rungs", std::to_string(refine_rungs), ">= 1 when there is no ladder (t_high 1)");
  if (refine_steps_per_rung < 0)
    bad("refine_steps_per_rung", std::to_string(refine_steps_per_rung), ">= 1 (or 0: steps_per_rung)");
  if (spacing != "geometric" && spacing != "linear") bad("spacing", "\"" + spacing + "\"", "\"geometric\" or \"linear\"");
  if (samples_per_rung < 2) bad("samples_per_rung", std::to_string(samples_per_rung), ">= 2");
  if (steps_per_rung < 1) bad("steps_per_rung", std::to_string(steps_per_rung), ">= 1");
  if (batch_size < 0) bad("batch_size", std::to_string(batch_size), ">= 1 (or 0: the training batch_size)");
  if (!(learning_rate >= 0.0) || !std::isfinite(learning_rate))
    bad("learning_rate", std::to_string(learning_rate), "> 0 (or 0: the training learning_rate)");
}

nlohmann::json AnnealingOptions::to_json() const {
  return {{"t_high", t_high},
          {"rungs", rungs},
          {"spacing", spacing},
          {"ladder", ladder()},
          {"samples_per_rung", samples_per_rung},
          {"steps_per_rung", steps_per_rung},
          {"batch_size", batch_size},
          {"learning_rate", learning_rate},
          {"smoothing", to_string(smoothing)},
          {"refine_rungs", refine_rungs},
          {"refine_steps_per_rung", refine_steps_per_rung}};
}

AnnealingOptions RefinementOptions::as_annealing() const {
  AnnealingOptions a;
  a.enabled = enabled;
  a.t_high = 1.0;
  a.rungs = 0;
  a.samples_per_rung = samples_per_rung;
  a.steps_per_rung = steps_per_rung;
  a.batch_size = batch_size;
  a.learning_rate = learning_rate;
  a.smoothing = smoothing;
  a.refine_rungs = rungs;
  a.refine_steps_per_rung = steps_per_rung;
  return a;
}

void RefinementOptions::read(JsonReader& r) {
  enabled = true;
  rungs = static_cast<int>(r.get_int("rungs", rungs));
  samples_per_rung = static_cast<int>(r.get_int("samples_per_rung", samples_per_rung));
  steps_per_rung = static_cast<int>(r.get_int("steps_per_rung", steps_per_rung));
  batch_size = static_cast<int>(r.get_int("batch_size", batch_size));
  learning_rate = r.get_double("learning_rate", learning_rate);
  smoothing = read_smoothing(r, smoothing);
  r.finish();
  try {
    validate();
  } catch (const ConfigError& e) {
    throw ConfigError(r.file_prefix() + e.what());
  }
}

void RefinementOptions::validate() const {
  auto bad = [](const std::string& key, const std::string& value, const std::string& need) {
    throw ConfigError("generator.refinement." + key + " is " + value + ", but must be " + need);
  };
  if (rungs < 1) bad("rungs", std::to_string(rungs), ">= 1");
  if (samples_per_rung < 2) bad("samples_per_rung", std::to_string(samples_per_rung), ">= 2");
  if (steps_per_rung < 1) bad("steps_per_rung", std::to_string(steps_per_rung), ">= 1");
  if (batch_size < 0) bad("batch_size", std::to_string(batch_size), ">= 1 (or 0: the training batch_size)");
  if (!(learning_rate >= 0.0) || !std::isfinite(learning_rate))
    bad("learning_rate", std::to_string(learning_rate), "> 0 (or 0: the training learning_rate)");
}

nlohmann::json RefinementOptions::to_json() const {
  return {{"rungs", rungs},
          {"samples_per_rung", samples_per_rung},
          {"steps_per_rung", steps_per_rung},
          {"batch_size", batch_size},
          {"learning_rate", learning_rate},
          {"smoothing", to_string(smoothing)}};
}

// ---------------------------------------------------------------------------------------------
// Weights

Eigen::VectorXd smoothed_weights(const Eigen::VectorXd& log_weights, WeightSmoothing smoothing) {
  if (smoothing == WeightSmoothing::kPsis) {
    const PsisResult p = pareto_smoothed_importance_sampling(log_weights);
    Eigen::VectorXd w = p.smoothed_log_weights.array().exp().matrix();
    return w / w.sum();
  }
  const RelativeWeights r = relative_weights(log_weights);
  Eigen::VectorXd w = r.relative / r.sum;
  if (smoothing == WeightSmoothing::kTruncate) {
    // Ionides (2008): cap at √M times the mean weight (the mean of w̄ is 1/M), then renormalize.
    const double m = static_cast<double>(w.size());
    w = w.cwiseMin(std::sqrt(m) / m);
    w /= w.sum();
  }
  return w;
}

RungWeights rung_weights(const GeneratedSamples& samples, const Target& target, double tau, WeightSmoothing smoothing,
                         const FlowSpaceMap* map, EnergyCounters* counters, Execution exec) {
  const TemperedTarget tempered(target, tau);
  RungWeights out;
  out.log_weights = flow_log_weights(samples.x, samples.log_q, tempered, map, counters, &out.invalid, exec);
  if (count_log_weights(out.log_weights).finite == 0)
    throw DomainError("annealed training: no finite importance weight at tau " + std::to_string(tau) + " among " +
                      std::to_string(samples.x.rows()) + " draws (every energy non-finite or every row invalid)");
  out.weights = smoothed_weights(out.log_weights, smoothing);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Histories

nlohmann::json AnnealingRung::to_json() const {
  nlohmann::json j = {{"rung", rung},
                      {"tau", tau},
                      {"tau_model", tau_model},
                      {"samples", samples},
                      {"zero_weight", zero_weight},
                      {"ess_fraction", ess_fraction},
                      {"ess_fraction_smoothed", ess_fraction_smoothed},
                      {"energy_evaluations", energy_evaluations},
                      {"seconds", seconds},
                      {"training_iterations", training.iterations_done},
                      {"final_forward_kl", training.forward_kl.empty() ? 0.0 : training.forward_kl.back()}};
  put_quantity(j, "khat", khat);
  put_quantity(j, "log_z", log_z);
  put_quantity(j, "log_z_se", log_z_se);
  sanitize_non_finite(j);
  return j;
}

TrainHistory AnnealedHistory::combined() const {
  TrainHistory h = stage1;
  int offset = stage1.iterations_done;
  for (const AnnealingRung& r : rungs) {
    const TrainHistory& t = r.training;
    for (auto [to, from] : {std::pair{&h.loss, &t.loss}, {&h.forward_kl, &t.forward_kl},
                            {&h.reverse_kl, &t.reverse_kl}, {&h.transport, &t.transport}, {&h.hjb, &t.hjb},
                            {&h.terminal, &t.terminal}, {&h.grad_norm, &t.grad_norm},
                            {&h.learning_rate, &t.learning_rate}, {&h.step_seconds, &t.step_seconds}})
      to->insert(to->end(), from->begin(), from->end());
    for (std::size_t k = 0; k < t.eval_iteration.size(); ++k) {
      h.eval_iteration.push_back(t.eval_iteration[k] + offset);
      h.eval_ess.push_back(t.eval_ess[k]);
    }
    offset += t.iterations_done;
    h.energy_evaluations += t.energy_evaluations + r.energy_evaluations;
    h.non_finite += t.non_finite;
    h.cut += t.cut;
    h.invalid += t.invalid;
  }
  h.energy_evaluations += stage1_check.energy_evaluations + final_check.energy_evaluations;
  h.iterations_done = offset;
  h.wall_seconds = wall_seconds;
  return h;
}

TrainHistory RefinementHistory::combined(const TrainHistory& before) const {
  AnnealedHistory h;
  h.stage1 = before;
  h.rungs = rungs;
  h.final_check = final_check;
  h.wall_seconds = before.wall_seconds + wall_seconds;
  return h.combined();
}

nlohmann::json RefinementHistory::to_json() const {
  nlohmann::json rows = nlohmann::json::array();
  std::size_t evaluations = final_check.energy_evaluations;
  for (const AnnealingRung& r : rungs) {
    rows.push_back(r.to_json());
    evaluations += r.energy_evaluations + r.training.energy_evaluations;
  }
  return {{"rungs", rows},
          {"final", final_check.samples > 0 ? final_check.to_json() : nlohmann::json(nullptr)},
          {"energy_evaluations", evaluations},
          {"wall_seconds", wall_seconds}};
}

nlohmann::json AnnealedHistory::to_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const AnnealingRung& r : rungs) rows.push_back(r.to_json());
  std::size_t evaluations =
      stage1.energy_evaluations + stage1_check.energy_evaluations + final_check.energy_evaluations;
  for (const AnnealingRung& r : rungs) evaluations += r.energy_evaluations + r.training.energy_evaluations;
  return {{"stage1", {{"iterations", stage1.iterations_done},
                      {"energy_evaluations", stage1.energy_evaluations},
                      {"wall_seconds", stage1.wall_seconds},
                      {"final_reverse_kl", stage1.reverse_kl.empty() ? 0.0 : stage1.reverse_kl.back()},
                      {"check", stage1_check.samples > 0 ? stage1_check.to_json() : nlohmann::json(nullptr)}}},
          {"rungs", rows},
          {"final", final_check.samples > 0 ? final_check.to_json() : nlohmann::json(nullptr)},
          {"energy_evaluations", evaluations},
          {"wall_seconds", wall_seconds}};
}

// ---------------------------------------------------------------------------------------------
// The annealing

namespace {

// Draws M samples from the model (stream `seed`), weights them at τ and fills the rung's
// diagnostics; returns the draws and their smoothed weights.
std::pair<GeneratedSamples, Eigen::VectorXd> draw_rung(BoltzmannGenerator& model, const Target& target,
                                                       const AnnealingOptions& a, const TrainOptions& o,
                                                       const FlowSpaceMap* map, std::uint64_t seed, AnnealingRung& r) {
  EnergyCounters counters;
  GeneratedSamples s = model.sample(a.samples_per_rung, seed);
  const RungWeights w = rung_weights(s, target, r.tau, a.smoothing, map, &counters, o.exec);
  r.samples = static_cast<std::size_t>(s.x.rows());
  r.energy_evaluations = counters.evaluations.load();
  r.zero_weight = count_log_weights(w.log_weights).zero_weight;
  const double m = static_cast<double>(r.samples);
  r.ess_fraction = kish_ess(w.log_weights) / m;
  r.ess_fraction_smoothed = 1.0 / w.weights.squaredNorm() / m;  // (Σw)²/Σw² with Σw = 1
  const PsisResult psis = pareto_smoothed_importance_sampling(w.log_weights);
  r.khat = psis.khat;
  const LogZEstimate lz = estimate_log_z(w.log_weights);
  r.log_z = Quantity::of(lz.estimate);
  r.log_z_se = Quantity::of(lz.standard_error);
  return {std::move(s), w.weights};
}

// The draws' stream of rung k (file comment of the header).
std::uint64_t rung_sample_seed(const TrainOptions& o, int k) {
  return (o.seed ^ kAnnealSampleSeedMix) + static_cast<std::uint64_t>(k);
}

// The training options of rung k: the weighted forward KL (λ = 1) with stage 1's path costs.
TrainOptions rung_training(const TrainOptions& o, const AnnealingOptions& a, int k) {
  TrainOptions t = o;
  t.preset = "annealed-forward-kl";
  t.weights.lambda = 1.0;
  t.weights.alpha_terminal = 0.0;
  t.weights.epsilon = 0.0;
  t.iterations = a.steps_of_rung(k);
  t.warmup_iterations = 0;
  if (a.batch_size > 0) t.batch_size = a.batch_size;
  if (a.learning_rate > 0.0) t.learning_rate = a.learning_rate;
  t.eval_every = 0;
  t.checkpoint_every = 0;
  t.checkpoint.clear();
  t.resume = false;
  t.stop_after = 0;
  t.seed = (o.seed ^ kAnnealTrainSeedMix) + static_cast<std::uint64_t>(k);
  return t;
}

// The refinement rungs K + 1 … K + R at τ = 1 (file comment, 3.), each on its own fresh draws.
std::vector<AnnealingRung> refine_at_target(BoltzmannGenerator& model, const Target& target,
                                            const TrainOptions& options, const AnnealingOptions& annealing,
                                            const FlowSpaceMap* map) {
  std::vector<AnnealingRung> out;
  if (annealing.refine_rungs == 0) return out;
  // One Adam and one learning-rate schedule over all refinement steps, so that redrawing the
  // buffer does not restart the optimizer (a fresh Adam's first steps move every parameter by
  // about the learning rate, noise that a large flow pays for at every rung).
  const int first = annealing.rungs + 1, steps = annealing.steps_of_rung(first);
  TrainOptions t = rung_training(options, annealing, first);
  t.iterations = steps * annealing.refine_rungs;
  t.validate(true);
  const TrainingSchedule schedule(t);
  torch::optim::Adam adam(model.parameters(), torch::optim::AdamOptions(t.learning_rate));
  for (int j = 0; j < annealing.refine_rungs; ++j) {
    const double t_rung = wall_seconds();
    AnnealingRung r;
    r.rung = first + j;
    const auto [buffer, weights] =
        draw_rung(model, target, annealing, options, map, rung_sample_seed(options, r.rung), r);
    TrainingStep step(model, target, &buffer.x, t, map, &weights);
    for (int it = j * steps; it < (j + 1) * steps; ++it)
      r.training.append(step(it, schedule.weights(it), schedule.learning_rate(it), adam));
    r.training.iterations_done = steps;  // per rung, as the ladder's rungs
    r.seconds = r.training.wall_seconds = wall_seconds() - t_rung;
    if (options.progress)
      std::fprintf(stderr, "refinement rung %d/%d at tau 1: ESS %.2f %% (smoothed %.2f %%), %.1f s\n", j + 1,
                   annealing.refine_rungs, 100.0 * r.ess_fraction, 100.0 * r.ess_fraction_smoothed, r.seconds);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

AnnealedHistory train_annealed(BoltzmannGenerator& model, const Target& target, const TrainOptions& options,
                               const AnnealingOptions& annealing, const FlowSpaceMap* map) {
  annealing.validate();
  if (options.weights.lambda != 0.0)
    throw ConfigError("generator.annealing: stage 1 is the reverse KL at t_high, so lambda must be 0 (is " +
                      std::to_string(options.weights.lambda) + "); annealed training uses no data");
  const double t_start = wall_seconds();
  const std::vector<double> tau = annealing.ladder();
  AnnealedHistory h;
  h.stage1 = train(model, TemperedTarget(target, tau.front()), nullptr, options, map);
  if (h.stage1.iterations_done < options.iterations) {  // stopped early (resumable): no rung yet
    h.wall_seconds = wall_seconds() - t_start;
    return h;
  }
  const auto sample_seed = [&](int k) { return rung_sample_seed(options, k); };
  h.stage1_check.tau = h.stage1_check.tau_model = tau.front();
  draw_rung(model, target, annealing, options, map, sample_seed(0), h.stage1_check);
  if (options.progress)
    std::fprintf(stderr, "annealing: stage 1 at tau %.4g, ESS %.2f %%\n", tau.front(),
                 100.0 * h.stage1_check.ess_fraction);
  for (int k = 1; k <= annealing.rungs; ++k) {
    const double t_rung = wall_seconds();
    AnnealingRung r;
    r.rung = k;
    r.tau = tau[static_cast<std::size_t>(k)];
    r.tau_model = tau[static_cast<std::size_t>(k) - 1];
    const auto [buffer, weights] = draw_rung(model, target, annealing, options, map, sample_seed(k), r);
    r.training = train(model, target, &buffer.x, rung_training(options, annealing, k), map, &weights);
    r.seconds = wall_seconds() - t_rung;
    if (options.progress)
      std::fprintf(stderr, "annealing rung %d/%d: tau %.4g <- %.4g, ESS %.2f %% (smoothed %.2f %%), %.1f s\n", k,
                   annealing.rungs, r.tau, r.tau_model, 100.0 * r.ess_fraction, 100.0 * r.ess_fraction_smoothed,
                   r.seconds);
    h.rungs.push_back(std::move(r));
  }
  for (AnnealingRung& r : refine_at_target(model, target, options, annealing, map)) h.rungs.push_back(std::move(r));
  const int total_rungs = annealing.rungs + annealing.refine_rungs;
  const double t_final = wall_seconds();
  h.final_check.rung = total_rungs + 1;
  draw_rung(model, target, annealing, options, map, sample_seed(total_rungs + 1), h.final_check);
  h.final_check.seconds = wall_seconds() - t_final;
  h.wall_seconds = wall_seconds() - t_start;
  return h;
}

RefinementHistory refine_trained(BoltzmannGenerator& model, const Target& target, const TrainOptions& options,
                                 const RefinementOptions& refinement, const FlowSpaceMap* map) {
  refinement.validate();
  const AnnealingOptions a = refinement.as_annealing();
  const double t_start = wall_seconds();
  RefinementHistory h;
  h.rungs = refine_at_target(model, target, options, a, map);
  const double t_final = wall_seconds();
  h.final_check.rung = refinement.rungs + 1;
  draw_rung(model, target, a, options, map, rung_sample_seed(options, h.final_check.rung), h.final_check);
  h.final_check.seconds = wall_seconds() - t_final;
  h.wall_seconds = wall_seconds() - t_start;
  return h;
}

}  // namespace boltzlab::generators
