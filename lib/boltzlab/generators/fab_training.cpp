#include "boltzlab/generators/fab_training.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <limits>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/estimators/annealed_smc.hpp"
#include "boltzlab/generators/latent_path.hpp"
#include "boltzlab/generators/training_schedule.hpp"
#include "boltzlab/generators/training_step.hpp"
#include "boltzlab/io/seed.hpp"

namespace boltzlab::generators {

// ---------------------------------------------------------------------------------------------
// Options

void FabOptions::read(JsonReader& r) {
  enabled = true;
  iterations = static_cast<int>(r.get_int("iterations", iterations));
  particles = static_cast<int>(r.get_int("particles", particles));
  ais_rungs = static_cast<int>(r.get_int("ais_rungs", ais_rungs));
  mala_steps = static_cast<int>(r.get_int("mala_steps", mala_steps));
  step_size = r.get_double("step_size", step_size);
  steps_per_batch = static_cast<int>(r.get_int("steps_per_batch", steps_per_batch));
  buffer_batches = static_cast<int>(r.get_int("buffer_batches", buffer_batches));
  batch_size = static_cast<int>(r.get_int("batch_size", batch_size));
  learning_rate = r.get_double("learning_rate", learning_rate);
  max_weight_adjust = r.get_double("max_weight_adjust", max_weight_adjust);
  check_every = static_cast<int>(r.get_int("check_every", check_every));
  check_samples = static_cast<int>(r.get_int("check_samples", check_samples));
  seed = read_seed(r, "seed", seed);
  r.finish();
  try {
    validate();
  } catch (const ConfigError& e) {  // name the file: the keys come from its generator section
    throw ConfigError(r.file_prefix() + e.what());
  }
}

void FabOptions::validate() const {
  auto bad = [](const std::string& key, const std::string& value, const std::string& need) {
    throw ConfigError("generator.fab." + key + " is " + value + ", but must be " + need);
  };
  if (iterations < 1) bad("iterations", std::to_string(iterations), ">= 1");
  if (particles < 2) bad("particles", std::to_string(particles), ">= 2");
  if (ais_rungs < 1) bad("ais_rungs", std::to_string(ais_rungs), ">= 1");
  if (mala_steps < 0) bad("mala_steps", std::to_string(mala_steps), ">= 0");
  if (!(step_size > 0.0) || !std::isfinite(step_size)) bad("step_size", std::to_string(step_size), "finite and > 0");
  if (steps_per_batch < 1) bad("steps_per_batch", std::to_string(steps_per_batch), ">= 1");
  if (buffer_batches < 0) bad("buffer_batches", std::to_string(buffer_batches), ">= 0 (0: no buffer)");
  if (batch_size < 0) bad("batch_size", std::to_string(batch_size), ">= 1 (or 0: the training batch_size)");
  if (!(learning_rate >= 0.0) || !std::isfinite(learning_rate))
    bad("learning_rate", std::to_string(learning_rate), "> 0 (or 0: the training learning_rate)");
  if (!(max_weight_adjust >= 1.0)) bad("max_weight_adjust", std::to_string(max_weight_adjust), ">= 1");
  if (check_every < 0) bad("check_every", std::to_string(check_every), ">= 0 (0: first and last only)");
  if (check_samples < 2) bad("check_samples", std::to_string(check_samples), ">= 2");
}

nlohmann::json FabOptions::to_json() const {
  return {{"iterations", iterations},       {"particles", particles},
          {"ais_rungs", ais_rungs},         {"mala_steps", mala_steps},
          {"step_size", step_size},         {"steps_per_batch", steps_per_batch},
          {"buffer_batches", buffer_batches}, {"batch_size", batch_size},
          {"learning_rate", learning_rate}, {"max_weight_adjust", max_weight_adjust},
          {"check_every", check_every},     {"check_samples", check_samples},
          {"seed", seed}};
}

// ---------------------------------------------------------------------------------------------
// Histories

nlohmann::json FabIteration::to_json() const {
  nlohmann::json j = {{"iteration", iteration},
                      {"ais_ess_fraction", ais_ess_fraction},
                      {"ais_log_z", ais_log_z},
                      {"ais_log_z_se", ais_log_z_se},
                      {"initial_ess_fraction", initial_ess_fraction},
                      {"acceptance", acceptance},
                      {"buffer_rows", buffer_rows},
                      {"buffer_ess_fraction", buffer_ess_fraction},
                      {"forward_kl", forward_kl},
                      {"energy_evaluations", energy_evaluations},
                      {"seconds", seconds}};
  sanitize_non_finite(j);
  return j;
}

nlohmann::json FabCheck::to_json() const {
  nlohmann::json j = {{"iteration", iteration},
                      {"samples", samples},
                      {"ess_fraction", ess_fraction},
                      {"energy_evaluations", energy_evaluations}};
  put_quantity(j, "log_z", log_z);
  put_quantity(j, "log_z_se", log_z_se);
  sanitize_non_finite(j);
  return j;
}

std::size_t FabHistory::energy_evaluations() const {
  std::size_t n = stage1.energy_evaluations + training.energy_evaluations;
  for (const FabIteration& it : iterations) n += it.energy_evaluations;
  for (const FabCheck& c : checks) n += c.energy_evaluations;
  return n;
}

TrainHistory FabHistory::combined() const {
  TrainHistory h = stage1;
  const TrainHistory& t = training;
  for (auto [to, from] : {std::pair{&h.loss, &t.loss}, {&h.forward_kl, &t.forward_kl},
                          {&h.reverse_kl, &t.reverse_kl}, {&h.transport, &t.transport}, {&h.hjb, &t.hjb},
                          {&h.terminal, &t.terminal}, {&h.grad_norm, &t.grad_norm},
                          {&h.learning_rate, &t.learning_rate}, {&h.step_seconds, &t.step_seconds}})
    to->insert(to->end(), from->begin(), from->end());
  h.iterations_done = stage1.iterations_done + t.iterations_done;
  h.energy_evaluations = energy_evaluations();
  h.non_finite += t.non_finite;
  h.wall_seconds = wall_seconds;
  return h;
}

nlohmann::json FabHistory::to_json() const {
  nlohmann::json rows = nlohmann::json::array(), checks_json = nlohmann::json::array();
  for (const FabIteration& it : iterations) rows.push_back(it.to_json());
  for (const FabCheck& c : checks) checks_json.push_back(c.to_json());
  return {{"stage1", {{"iterations", stage1.iterations_done},
                      {"energy_evaluations", stage1.energy_evaluations},
                      {"wall_seconds", stage1.wall_seconds}}},
          {"iterations", rows},
          {"checks", checks_json},
          {"gradient_steps", training.iterations_done},
          {"energy_evaluations", energy_evaluations()},
          {"wall_seconds", wall_seconds}};
}

// ---------------------------------------------------------------------------------------------
// The training

FabCheck fab_check(BoltzmannGenerator& model, const Target& target, int samples, std::uint64_t seed, Execution exec) {
  EnergyCounters counters;
  const GeneratedSamples s = model.sample(samples, seed);
  const Eigen::VectorXd lw = flow_log_weights(s.x, s.log_q, target, nullptr, &counters, nullptr, exec);
  FabCheck c;
  c.samples = static_cast<std::size_t>(samples);
  c.energy_evaluations = counters.evaluations.load();
  if (count_log_weights(lw).finite == 0) {
    c.log_z = c.log_z_se = Quantity::missing("every weight is zero");
    return c;
  }
  c.ess_fraction = kish_ess(lw) / samples;
  const LogZEstimate lz = estimate_log_z(lw);
  c.log_z = Quantity::of(lz.estimate);
  c.log_z_se = Quantity::of(lz.standard_error);
  return c;
}

namespace {

/// The replay buffer: configurations, their current log-weights (targeting p²/q_θ) and the log q
/// at which those weights were last adjusted; whole AIS batches, oldest first.
struct ReplayBuffer {
  std::deque<RowMatrix> x;
  std::deque<Eigen::VectorXd> log_w, log_q;

  void add(RowMatrix xs, Eigen::VectorXd lw, Eigen::VectorXd lq, std::size_t capacity) {
    x.push_back(std::move(xs));
    log_w.push_back(std::move(lw));
    log_q.push_back(std::move(lq));
    while (x.size() > capacity) {
      x.pop_front();
      log_w.pop_front();
      log_q.pop_front();
    }
  }
};

/// The training rows and their weights: each buffered batch carried to the current flow (the
/// file comment's step 3), all rows stacked oldest first. The newest batch has ratio 1.
std::pair<RowMatrix, Eigen::VectorXd> training_rows(BoltzmannGenerator& model, ReplayBuffer& b, double cap,
                                                   std::int64_t chunk) {
  Eigen::Index rows = 0;
  for (const RowMatrix& x : b.x) rows += x.rows();
  RowMatrix all(rows, b.x.front().cols());
  Eigen::VectorXd log_train(rows);
  Eigen::Index at = 0;
  for (std::size_t k = 0; k < b.x.size(); ++k) {
    const Eigen::Index n = b.x[k].rows();
    all.middleRows(at, n) = b.x[k];
    Eigen::VectorXd adjust = Eigen::VectorXd::Zero(n);
    if (k + 1 < b.x.size()) {  // an earlier batch: q has changed since it was last adjusted
      const Eigen::VectorXd lq = model.log_q(b.x[k], chunk);
      adjust = b.log_q[k] - lq;
      b.log_q[k] = lq;
    }
    for (Eigen::Index i = 0; i < n; ++i) {
      const double a = std::isfinite(adjust[i]) ? adjust[i] : -std::numeric_limits<double>::infinity();
      log_train[at + i] = b.log_w[k][i] + std::min(a, std::log(cap));
      b.log_w[k][i] += a;
    }
    at += n;
  }
  return {std::move(all), std::move(log_train)};
}

/// The options of the gradient steps: the weighted forward KL (λ = 1) with stage 1's path costs
/// (as the annealed-training rungs), over all iterations (one cosine schedule).
TrainOptions step_options(const TrainOptions& o, const FabOptions& f, std::uint64_t seed) {
  TrainOptions t = o;
  t.preset = "fab-forward-kl";
  t.weights.lambda = 1.0;
  t.weights.alpha_terminal = 0.0;
  t.weights.epsilon = 0.0;
  t.iterations = f.iterations * f.steps_per_batch;
  t.warmup_iterations = 0;
  if (f.batch_size > 0) t.batch_size = f.batch_size;
  if (f.learning_rate > 0.0) t.learning_rate = f.learning_rate;
  t.eval_every = 0;
  t.checkpoint_every = 0;
  t.checkpoint.clear();
  t.resume = false;
  t.stop_after = 0;
  t.seed = seed ^ kFabTrainSeedMix;
  return t;
}

/// Step 1 of the file comment: plain AIS from q to p²/q in the base space; the configurations
/// of its end points, their log-weights and the iteration's AIS diagnostics.
std::pair<RowMatrix, Eigen::VectorXd> run_ais(BoltzmannGenerator& model, const Target& target, const FabOptions& f,
                                             const TrainOptions& t, std::uint64_t seed, FabIteration& it) {
  EnergyCounters counters;
  const GeneratorLatentPath path(model, target, nullptr, &counters, t.chunk_size, 2.0);
  AnnealedSmcOptions so;
  so.rungs = f.ais_rungs;
  so.mala_steps = f.mala_steps;
  so.step_size = f.step_size;
  so.resample_threshold = 0.0;  // plain AIS, as FAB
  so.seed = seed;
  const AnnealedSmcResult r = run_annealed_smc(path, static_cast<std::size_t>(f.particles), so, {}, t.exec);
  it.energy_evaluations = counters.evaluations.load();
  it.ais_ess_fraction = kish_ess(r.log_weights) / f.particles;
  it.ais_log_z = r.log_z;
  it.ais_log_z_se = r.log_z_se;
  it.initial_ess_fraction = r.initial_ess_fraction;
  double acceptance = 0.0;
  for (const SmcRung& rung : r.rungs) acceptance += rung.acceptance;
  it.acceptance = r.rungs.empty() ? 0.0 : acceptance / static_cast<double>(r.rungs.size());
  return {path.configurations(r.z), r.log_weights};
}

}  // namespace

FabHistory train_fab(BoltzmannGenerator& model, const Target& target, const TrainOptions& options,
                     const FabOptions& fab) {
  fab.validate();
  if (target.topology() != nullptr)
    throw ConfigError("generator.fab: FAB training is implemented for targets without a topology, not for '" +
                      target.name() + "'");
  if (options.weights.lambda != 0.0)
    throw ConfigError("generator.fab: stage 1 is the reverse KL, so lambda must be 0 (is " +
                      std::to_string(options.weights.lambda) + "); FAB uses no data");
  const double t_start = wall_seconds();
  FabHistory h;
  if (options.iterations > 0) h.stage1 = train(model, target, nullptr, options);
  if (h.stage1.iterations_done < options.iterations) {  // stage 1 stopped early (resumable): no FAB yet
    h.wall_seconds = wall_seconds() - t_start;
    return h;
  }
  const std::uint64_t seed = fab.seed != 0 ? fab.seed : options.seed;
  const TrainOptions t = step_options(options, fab, seed);
  const TrainingSchedule schedule(t);
  torch::optim::Adam adam(model.parameters(), torch::optim::AdamOptions(t.learning_rate));
  auto check = [&](int k) {
    FabCheck c = fab_check(model, target, fab.check_samples, seed ^ kFabCheckSeedMix, t.exec);
    c.iteration = k;
    if (options.progress)
      std::fprintf(stderr, "fab: after %d iterations, flow ESS %.2f %%\n", k, 100.0 * c.ess_fraction);
    h.checks.push_back(c);
  };
  check(0);
  ReplayBuffer buffer;
  int step_index = 0;
  for (int k = 0; k < fab.iterations; ++k) {
    const double t_it = wall_seconds();
    FabIteration it;
    it.iteration = k;
    auto [x, log_w] = run_ais(model, target, fab, t, (seed ^ kFabAisSeedMix) + static_cast<std::uint64_t>(k), it);
    Eigen::VectorXd log_q = model.log_q(x, t.chunk_size);
    buffer.add(std::move(x), std::move(log_w), std::move(log_q), static_cast<std::size_t>(std::max(1, fab.buffer_batches)));
    const auto [rows, log_train] = training_rows(model, buffer, fab.max_weight_adjust, t.chunk_size);
    const Eigen::VectorXd weights = normalized_weights(log_train);
    it.buffer_rows = static_cast<std::size_t>(rows.rows());
    it.buffer_ess_fraction = kish_ess(log_train) / static_cast<double>(rows.rows());
    TrainingStep step(model, target, &rows, t, nullptr, &weights);
    for (int j = 0; j < fab.steps_per_batch; ++j, ++step_index) {
      const StepRecord record = step(step_index, schedule.weights(step_index), schedule.learning_rate(step_index), adam);
      h.training.append(record);
      it.forward_kl = record.forward_kl;
    }
    it.seconds = wall_seconds() - t_it;
    h.iterations.push_back(it);
    if (options.progress)
      std::fprintf(stderr, "fab %d/%d: AIS ESS %.2f %% (q alone %.2f %%), log Z2 %.4f, buffer ESS %.2f %%, %.2f s\n",
                   k + 1, fab.iterations, 100.0 * it.ais_ess_fraction, 100.0 * it.initial_ess_fraction, it.ais_log_z,
                   100.0 * it.buffer_ess_fraction, it.seconds);
    const bool last = k + 1 == fab.iterations;
    if (last || (fab.check_every > 0 && (k + 1) % fab.check_every == 0)) check(k + 1);
  }
  h.wall_seconds = wall_seconds() - t_start;
  return h;
}

}  // namespace boltzlab::generators
