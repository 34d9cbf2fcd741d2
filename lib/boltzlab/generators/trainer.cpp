#include "boltzlab/generators/trainer.hpp"

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/generators/fused_otflow.hpp"
#include "boltzlab/generators/training_callbacks.hpp"
#include "boltzlab/generators/training_checkpoint.hpp"
#include "boltzlab/generators/training_schedule.hpp"
#include "boltzlab/generators/training_step.hpp"

namespace boltzlab::generators {

void TrainOptions::read(JsonReader& r, bool have_data) {
  preset = r.get_string("preset", preset);
  weights = LossWeights::preset(preset, have_data);
  weights.lambda = r.get_double("lambda", weights.lambda);
  weights.alpha_transport = r.get_double("alpha_transport", weights.alpha_transport);
  weights.alpha_hjb = r.get_double("alpha_hjb", weights.alpha_hjb);
  weights.alpha_terminal = r.get_double("alpha_terminal", weights.alpha_terminal);
  weights.epsilon = r.get_double("epsilon", weights.epsilon);
  iterations = static_cast<int>(r.get_int("iterations", iterations));
  warmup_iterations = static_cast<int>(r.get_int("warmup_iterations", warmup_iterations));
  batch_size = static_cast<int>(r.get_int("batch_size", batch_size));
  chunk_size = static_cast<int>(r.get_int("chunk_size", chunk_size));
  learning_rate = r.get_double("learning_rate", learning_rate);
  lr_final_ratio = r.get_double("lr_final_ratio", lr_final_ratio);
  clip_grad_norm = r.get_double("clip_grad_norm", clip_grad_norm);
  if (r.has("energy_cut")) {
    JsonReader c(r.get_json("energy_cut"), r.context_of("energy_cut"));
    energy_cut.high = c.get_double("high", energy_cut.high);
    energy_cut.max = c.get_double("max", energy_cut.max);
    c.finish();
  }
  eval_every = static_cast<int>(r.get_int("eval_every", eval_every));
  eval_samples = static_cast<int>(r.get_int("eval_samples", eval_samples));
  checkpoint_every = static_cast<int>(r.get_int("checkpoint_every", checkpoint_every));
  if (r.has("fused")) {
    const auto& f = r.get_json("fused");
    if (f.is_boolean()) fused = f.get<bool>() ? FusedMode::kOn : FusedMode::kOff;
    else if (f.is_string() && f.get<std::string>() == "auto") fused = FusedMode::kAuto;
    else
      throw ConfigError(r.context_of("fused") + " is " + f.dump() + ", but must be \"auto\", true or false");
  }
}

void TrainOptions::validate(bool have_data) const {
  weights.validate();
  if (weights.lambda > 0.0 && !have_data)
    throw ConfigError("generator.lambda is " + std::to_string(weights.lambda) +
                      " (forward KL), but no data were given (--data or generator.data)");
  if (weights.alpha_terminal > 0.0 && weights.lambda >= 1.0)
    throw ConfigError("generator.alpha_terminal is " + std::to_string(weights.alpha_terminal) +
                      ", but the terminal condition is enforced on generated samples, which lambda 1 never draws");
  if (weights.epsilon > 0.0 && weights.lambda >= 1.0)
    throw ConfigError("generator.epsilon is " + std::to_string(weights.epsilon) +
                      ", but the relaxed game replaces the reverse-KL term, which lambda 1 never uses");
  if (weights.epsilon > 0.0 && weights.alpha_terminal > 0.0)
    throw ConfigError("generator.alpha_terminal is not combined with the relaxed game (generator.epsilon > 0)");
  if (iterations < 0) throw ConfigError("generator.iterations must be >= 0");
  if (warmup_iterations < 0) throw ConfigError("generator.warmup_iterations must be >= 0");
  if (warmup_iterations > 0 && !have_data)
    throw ConfigError("generator.warmup_iterations is " + std::to_string(warmup_iterations) +
                      " (forward KL on data), but no data were given (--data or generator.data)");
  if (batch_size < 1) throw ConfigError("generator.batch_size must be >= 1");
  if (chunk_size < 1) throw ConfigError("generator.chunk_size must be >= 1");
  if (!(learning_rate > 0.0)) throw ConfigError("generator.learning_rate must be > 0");
  if (!(lr_final_ratio > 0.0 && lr_final_ratio <= 1.0))
    throw ConfigError("generator.lr_final_ratio must be in (0, 1]");
  if (std::isnan(clip_grad_norm)) throw ConfigError("generator.clip_grad_norm is NaN");
  energy_cut.validate();
  if (eval_every < 0 || eval_samples < 2) throw ConfigError("generator.eval_every >= 0, eval_samples >= 2");
  if (stop_after < 0) throw ConfigError("generator: stop_after must be >= 0");
  if (checkpoint_every < 0) throw ConfigError("generator.checkpoint_every must be >= 0");
  if ((checkpoint_every > 0 || resume) && checkpoint.empty())
    throw ConfigError("generator: checkpointing needs a checkpoint path");
  if (fused == FusedMode::kOn && !(weights.lambda > 0.0) && warmup_iterations == 0)
    throw ConfigError("generator.fused is true, but lambda is 0 without warm-up (the fused path computes the "
                      "forward-KL term)");
}

nlohmann::json TrainOptions::to_json() const {
  return {{"preset", preset},
          {"weights", weights.to_json()},
          {"iterations", iterations},
          {"warmup_iterations", warmup_iterations},
          {"batch_size", batch_size},
          {"chunk_size", chunk_size},
          {"learning_rate", learning_rate},
          {"lr_final_ratio", lr_final_ratio},
          {"clip_grad_norm", clip_grad_norm},
          {"energy_cut", {{"high", energy_cut.high}, {"max", energy_cut.max}}},
          {"eval_every", eval_every},
          {"eval_samples", eval_samples},
          {"checkpoint_every", checkpoint_every},
          {"fused", fused == FusedMode::kAuto ? nlohmann::json("auto") : nlohmann::json(fused == FusedMode::kOn)},
          {"seed", seed}};
}

void TrainHistory::append(const StepRecord& step) {
  loss.push_back(step.loss);
  forward_kl.push_back(step.forward_kl);
  reverse_kl.push_back(step.reverse_kl);
  transport.push_back(step.transport);
  hjb.push_back(step.hjb);
  terminal.push_back(step.terminal);
  grad_norm.push_back(step.grad_norm);
  learning_rate.push_back(step.learning_rate);
  step_seconds.push_back(step.seconds);
  iterations_done = step.iteration + 1;
  energy_evaluations += step.energy_evaluations;
  non_finite += step.non_finite;
  cut += step.cut;
  invalid += step.invalid;
}

nlohmann::json TrainHistory::to_json() const {
  nlohmann::json j = {{"loss", loss},
                      {"forward_kl", forward_kl},
                      {"reverse_kl", reverse_kl},
                      {"transport", transport},
                      {"hjb", hjb},
                      {"terminal", terminal},
                      {"grad_norm", grad_norm},
                      {"learning_rate", learning_rate},
                      {"eval_iteration", eval_iteration},
                      {"eval_ess", eval_ess},
                      {"iterations_done", iterations_done},
                      {"energy_evaluations", energy_evaluations},
                      {"non_finite", non_finite},
                      {"cut", cut},
                      {"invalid", invalid},
                      {"wall_seconds", wall_seconds}};
  sanitize_non_finite(j);
  return j;
}

TrainHistory TrainHistory::from_json(const nlohmann::json& j) {
  TrainHistory h;
  auto vec = [&](const char* k) {
    std::vector<double> v;
    for (const auto& e : j.at(k)) v.push_back(e.is_null() ? std::numeric_limits<double>::quiet_NaN() : e.get<double>());
    return v;
  };
  h.loss = vec("loss");
  h.forward_kl = vec("forward_kl");
  h.reverse_kl = vec("reverse_kl");
  h.transport = vec("transport");
  h.hjb = vec("hjb");
  if (j.contains("terminal")) h.terminal = vec("terminal");
  else h.terminal.assign(h.hjb.size(), 0.0);  // histories written before the terminal term
  h.grad_norm = vec("grad_norm");
  h.learning_rate = vec("learning_rate");
  h.eval_iteration = vec("eval_iteration");
  h.eval_ess = vec("eval_ess");
  h.iterations_done = j.at("iterations_done").get<int>();
  h.energy_evaluations = j.at("energy_evaluations").get<std::size_t>();
  h.non_finite = j.at("non_finite").get<std::size_t>();
  h.cut = j.at("cut").get<std::size_t>();
  h.invalid = j.value("invalid", std::size_t{0});
  h.wall_seconds = j.at("wall_seconds").get<double>();
  return h;
}

bool uses_fused_data_term(const BoltzmannGenerator& model, const TrainOptions& options) {
  // Without a data term there is nothing to fuse (TrainOptions::validate refuses "fused": true then).
  const bool data_term = options.weights.lambda > 0.0 || options.warmup_iterations > 0;
  if (options.fused == FusedMode::kOff || !data_term) return false;
  // fused_otflow.hpp covers nTh = 2 without particles or periodic columns (a torus base
  // needs periodic columns, set_base); a base other than N(0, I) enters through
  // FusedOtFlowOptions::base_neg_log_density.
  const auto& po = model.options().potential;
  const bool supported = fused_otflow_supports(po) && !model.options().stochastic() && !model.options().free_velocity &&
                         !model.options().coupling_flow() && !model.options().whitened;
  if (options.fused == FusedMode::kOn && !supported)
    throw ConfigError("generator.fused is true, but the fused path needs the deterministic gradient flow (flow otflow, "
                      "noise 0, velocity gradient) with layers = 2 without particles or periodic columns (noise = " +
                      std::to_string(model.options().noise) + ", layers = " + std::to_string(po.layers) +
                      ", n_particles = " + std::to_string(po.n_particles) +
                      ", periodic columns = " + std::to_string(po.periodic.size()) + ")");
  return supported;
}

namespace {

// Σ_i |Φ(y_i, T) − δM/δρ(y_i)| over the rows of x (trainer.hpp), with g the per-row
// reverse-KL integrand log q_y + ũ − L.
torch::Tensor terminal_residual(BoltzmannGenerator& model, const torch::Tensor& x, const torch::Tensor& g,
                                double lambda) {
  auto target_value = (1.0 - lambda) * g;
  if (lambda > 0.0) {
    // π_y/q_y = exp(−g − log Z), log Z by the rows' importance estimate (no gradient).
    const auto neg_g = -g.detach();
    const auto log_z = torch::logsumexp(neg_g, 0) - std::log(static_cast<double>(g.size(0)));
    target_value = target_value - lambda * torch::exp(-g - log_z);
  }
  return (model.terminal_potential(x) - target_value).abs().sum();
}

}  // namespace

ReverseKlTerm reverse_kl_term(BoltzmannGenerator& model, const torch::Tensor& z, int steps, bool with_costs,
                              const Target& target, const EnergyCut& cut, const FlowSpaceMap* map,
                              EnergyCounters* counters, Execution exec, const ReverseKlExtras& extras) {
  const FlowBatch f = model.forward(z, steps, with_costs, extras.noise);
  ReverseKlTerm out;
  out.transport = f.transport;
  out.hjb = f.hjb;
  if (map == nullptr || !map->map) {
    const auto g = f.log_q + target_energy(f.x, target, cut, counters, exec);
    out.sum = g.sum();
    if (extras.terminal) out.terminal = terminal_residual(model, f.x, g, extras.lambda);
    out.valid = z.size(0);
    return out;
  }
  // Validity from a gradient-free pass, then the map is differentiated at the valid rows
  // only: an invalid row (e.g. θ ∉ (0, π), where log|sin θ| has an infinite derivative
  // at the boundary) never enters the graph, so its derivatives cannot poison the sum.
  torch::Tensor valid;
  {
    torch::NoGradGuard ng;
    valid = map->map(f.x.detach()).valid.to(torch::kBool);
  }
  const auto idx = valid.nonzero().reshape({-1});
  out.valid = idx.size(0);
  out.invalid = z.size(0) - out.valid;
  if (out.valid == 0) {
    out.sum = 0.0 * f.log_q.sum();  // keeps the graph (zero gradient)
    if (extras.terminal) out.terminal = out.sum;
    return out;
  }
  const auto x_valid = f.x.index_select(0, idx);
  const FlowSpaceImage img = map->map(x_valid);
  const auto u = target_energy(img.x, target, cut, counters, exec);
  const auto g = f.log_q.index_select(0, idx) + u - img.logdet;
  out.sum = g.sum();
  if (extras.terminal) out.terminal = terminal_residual(model, x_valid, g, extras.lambda);
  return out;
}

Eigen::VectorXd flow_log_weights(const RowMatrix& y, const Eigen::VectorXd& log_q_y, const Target& target,
                                 const FlowSpaceMap* map, EnergyCounters* counters, std::size_t* invalid,
                                 Execution exec) {
  const double neg_inf = -std::numeric_limits<double>::infinity();
  if (map == nullptr || !map->map) {
    if (invalid) *invalid = 0;
    const Eigen::VectorXd u = target_energy_values(y, target, counters, exec);
    return log_importance_weights(u, log_q_y);
  }
  torch::NoGradGuard ng;
  const FlowSpaceImage img = map->map(to_tensor(y));
  const auto valid = img.valid.to(torch::kBool);
  const auto idx = valid.nonzero().reshape({-1});
  if (invalid) *invalid = static_cast<std::size_t>(y.rows() - idx.size(0));
  Eigen::VectorXd lw = Eigen::VectorXd::Constant(y.rows(), neg_inf);
  if (idx.size(0) == 0) return lw;
  const RowMatrix x = to_matrix(img.x.index_select(0, idx).contiguous());
  const Eigen::VectorXd u = target_energy_values(x, target, counters, exec);
  const Eigen::VectorXd logdet = to_vector(img.logdet.index_select(0, idx).contiguous());
  const auto* rows = idx.data_ptr<std::int64_t>();
  for (Eigen::Index k = 0; k < u.size(); ++k) {
    const auto i = static_cast<Eigen::Index>(rows[k]);
    const double v = -u[k] + logdet[k] - log_q_y[i];
    lw[i] = std::isfinite(v) ? v : neg_inf;
  }
  return lw;
}

namespace {

// Options, dimensions and data shape, before anything is loaded or trained.
void check_inputs(const BoltzmannGenerator& model, const Target& target, const RowMatrix* data,
                  const TrainOptions& options, const FlowSpaceMap* map) {
  const bool have_data = data != nullptr && data->rows() > 0;
  options.validate(have_data);
  // The target is only evaluated for the reverse KL and the running ESS; a model
  // trained on data alone (λ = 1, e.g. in internal coordinates) may differ in dim.
  const bool uses_target = options.weights.lambda < 1.0 || options.eval_every > 0;
  if (uses_target && map == nullptr && static_cast<int>(target.dim()) != model.dim())
    throw DomainError("train: target '" + target.name() + "' has dim " + std::to_string(target.dim()) +
                      ", the model " + std::to_string(model.dim()));
  if (have_data && data->cols() != model.dim())
    throw DomainError("train: data have " + std::to_string(data->cols()) + " columns, expected " +
                      std::to_string(model.dim()));
}

}  // namespace

TrainHistory train(BoltzmannGenerator& model, const Target& target, const RowMatrix* data,
                   const TrainOptions& options, const FlowSpaceMap* map, const Eigen::VectorXd* data_weights) {
  if (map != nullptr && !map->map) map = nullptr;
  check_inputs(model, target, data, options, map);
  const double t_start = wall_seconds();
  const Checkpointer checkpointer(options.checkpoint, options.checkpoint_every, options.checkpoint_identity);
  TrainHistory history;
  std::optional<Checkpointer::Resumed> resumed;
  if (options.resume && std::filesystem::exists(options.checkpoint)) {
    resumed.emplace(checkpointer.load(model));
    history = std::move(resumed->history);
  }
  torch::optim::Adam adam(model.parameters(), torch::optim::AdamOptions(options.learning_rate));
  if (resumed) adam.load(resumed->adam);
  const double wall_before = history.wall_seconds;
  auto stamp_wall_seconds = [&] { history.wall_seconds = wall_before + (wall_seconds() - t_start); };

  const TrainingSchedule schedule(options);
  TrainingStep step(model, target, data, options, map, data_weights);
  EvaluationCallback evaluation(target, map, options);
  CheckpointCallback checkpoints(checkpointer);
  ProgressCallback progress(options);
  IterationCallback* const callbacks[] = {&evaluation, &checkpoints, &progress};
  for (int it = history.iterations_done; it < options.iterations; ++it) {
    const StepRecord record = step(it, schedule.weights(it), schedule.learning_rate(it), adam);
    history.append(record);
    stamp_wall_seconds();
    const bool last = it + 1 == options.iterations;
    IterationState state{record, last, options.stop_after > 0 && it + 1 >= options.stop_after && !last,
                         model, adam, history};
    for (IterationCallback* callback : callbacks) (*callback)(state);
    stamp_wall_seconds();
    if (state.stopping) break;
  }
  progress.finish();
  return history;
}

}  // namespace boltzlab::generators
