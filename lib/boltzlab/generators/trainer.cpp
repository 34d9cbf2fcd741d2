#include "boltzlab/generators/trainer.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/progress.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/generators/fused_otflow.hpp"
#include "boltzlab/core/timing.hpp"

namespace boltzlab::generators {

namespace {
constexpr double kPi = 3.14159265358979323846;

// Stream offsets so that data batches, training draws and evaluation draws never
// share a random stream.
constexpr std::uint64_t kDataStream = 0x1000000000ULL;
constexpr std::uint64_t kEvalSeedMix = 0x5DEECE66DULL;
}  // namespace

LossWeights LossWeights::preset(const std::string& name, bool have_data) {
  LossWeights w;
  if (name == "cnf") {
    w = {1.0, 0.0, 0.0};
  } else if (name == "ot-flow") {
    w = {1.0, 0.01, 0.05};
  } else if (name == "bg") {
    w = {have_data ? 0.5 : 0.0, 0.0, 0.0};
  } else if (name == "ot-bg") {
    w = {have_data ? 0.5 : 0.0, 0.01, 0.05};
  } else {
    std::string msg = "generator.preset: unknown preset '" + name + "'";
    const auto guess = closest_key(name, preset_names());
    if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
    throw ConfigError(msg + "; known: cnf, ot-flow, bg, ot-bg");
  }
  return w;
}

std::vector<std::string> LossWeights::preset_names() { return {"bg", "cnf", "ot-bg", "ot-flow"}; }

void LossWeights::validate() const {
  if (!(lambda >= 0.0 && lambda <= 1.0))
    throw ConfigError("generator.lambda is " + std::to_string(lambda) + ", but must be in [0, 1]");
  if (!(alpha_transport >= 0.0) || !std::isfinite(alpha_transport))
    throw ConfigError("generator.alpha_transport must be finite and >= 0");
  if (!(alpha_hjb >= 0.0) || !std::isfinite(alpha_hjb))
    throw ConfigError("generator.alpha_hjb must be finite and >= 0");
}

nlohmann::json LossWeights::to_json() const {
  return {{"lambda", lambda}, {"alpha_transport", alpha_transport}, {"alpha_hjb", alpha_hjb}};
}

void TrainOptions::read(JsonReader& r, bool have_data) {
  preset = r.get_string("preset", preset);
  weights = LossWeights::preset(preset, have_data);
  weights.lambda = r.get_double("lambda", weights.lambda);
  weights.alpha_transport = r.get_double("alpha_transport", weights.alpha_transport);
  weights.alpha_hjb = r.get_double("alpha_hjb", weights.alpha_hjb);
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

nlohmann::json TrainHistory::to_json() const {
  nlohmann::json j = {{"loss", loss},
                      {"forward_kl", forward_kl},
                      {"reverse_kl", reverse_kl},
                      {"transport", transport},
                      {"hjb", hjb},
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

namespace {

void save_checkpoint(const std::filesystem::path& path, const BoltzmannGenerator& model,
                     torch::optim::Adam& adam, const TrainHistory& history) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive, adam_archive;
  model.write(model_archive);
  adam.save(adam_archive);
  archive.write("checkpoint_format_version", c10::IValue(static_cast<int64_t>(kModelFormatVersion)));
  archive.write("model", model_archive);
  archive.write("adam", adam_archive);
  archive.write("history", c10::IValue(history.to_json().dump()));
  const auto tmp = path.string() + ".tmp";
  try {
    archive.save_to(tmp);
    std::filesystem::rename(tmp, path);
  } catch (const std::exception& e) {
    throw IoError(path.string() + ": cannot write checkpoint (" + e.what() + ")");
  }
}

/// Forward-KL part of one step by the fused path (fused_otflow.hpp): loss parts and
/// ∂/∂θ of  λ·[(1/B) Σ_b −log q(x_b) + α_L (1/B) Σ_b L_b + α_HJB (1/B) Σ_b R_b]  for the
/// data batch `rows` (model coordinates). Conventions as BoltzmannGenerator::reverse:
/// y = (x − μ)/σ is integrated from t = T (data) to t = 0 (standard-normal base) with
/// the training RK4 steps, and log q(x) = log q_flow(y) − Σ_k log σ_k; the constant
/// Σ log σ shifts the NLL, not the gradient (μ, σ are fixed during training).
struct FusedDataTerm {
  double nll_mean = 0.0;   ///< (1/B) Σ −log q(x_b) in model coordinates
  double transport = 0.0;  ///< (1/B) Σ L_b
  double hjb = 0.0;        ///< (1/B) Σ R_b
  std::vector<torch::Tensor> grads;  ///< λ·∂J/∂θ, in phi.parameters() order
};

FusedDataTerm fused_data_term(BoltzmannGenerator& model, const RowMatrix& rows, const TrainOptions& options,
                              const LossWeights& w) {
  RowMatrix y = rows;
  const Eigen::VectorXd& mu = model.shift();
  const Eigen::VectorXd& sigma = model.scale();
  for (Eigen::Index i = 0; i < y.rows(); ++i)
    y.row(i) = ((y.row(i).transpose() - mu).array() / sigma.array()).matrix().transpose();
  FusedOtFlowOptions fo;
  fo.t_end = model.options().time;
  fo.steps = model.options().steps;
  fo.alpha_transport = w.alpha_transport;
  fo.alpha_hjb = w.alpha_hjb;
  fo.chunk_size = options.chunk_size;
  if (const BaseDensity* base = model.base()) {  // a fitted (mixture) base without torsions
    fo.base_neg_log_density = [base](const RowMatrix& z, RowMatrix& grad) {
      torch::AutoGradMode enable(true);
      const auto zt = to_tensor(z).requires_grad_(true);
      const auto log_p = base->log_prob(zt);
      grad = to_matrix(-torch::autograd::grad({log_p.sum()}, {zt})[0]);
      const auto lp = log_p.detach().contiguous();
      return Eigen::VectorXd(-Eigen::Map<const Eigen::VectorXd>(lp.data_ptr<double>(), lp.numel()));
    };
  }
  FusedOtFlowResult r = fused_otflow_loss(*model.potential(), y, fo);
  FusedDataTerm out;
  out.nll_mean = r.neg_log_q + sigma.array().log().sum();
  out.transport = r.transport;
  out.hjb = r.hjb;
  out.grads = std::move(r.grads);
  for (auto& g : out.grads) g.mul_(w.lambda);
  return out;
}

}  // namespace

bool uses_fused_data_term(const BoltzmannGenerator& model, const TrainOptions& options) {
  // Without a data term there is nothing to fuse (TrainOptions::validate refuses "fused": true then).
  const bool data_term = options.weights.lambda > 0.0 || options.warmup_iterations > 0;
  if (options.fused == FusedMode::kOff || !data_term) return false;
  // fused_otflow.hpp covers nTh = 2 without particles or periodic columns (a torus base
  // needs periodic columns, set_base); a base other than N(0, I) enters through
  // FusedOtFlowOptions::base_neg_log_density.
  const auto& po = model.options().potential;
  const bool supported = fused_otflow_supports(po);
  if (options.fused == FusedMode::kOn && !supported)
    throw ConfigError("generator.fused is true, but the fused path needs layers = 2 without particles or periodic "
                      "columns (layers = " + std::to_string(po.layers) + ", n_particles = " +
                      std::to_string(po.n_particles) + ", periodic columns = " + std::to_string(po.periodic.size()) + ")");
  return supported;
}

ReverseKlTerm reverse_kl_term(BoltzmannGenerator& model, const torch::Tensor& z, int steps, bool with_costs,
                              const Target& target, const EnergyCut& cut, const FlowSpaceMap* map,
                              EnergyCounters* counters, Execution exec) {
  const FlowBatch f = model.forward(z, steps, with_costs);
  ReverseKlTerm out;
  out.transport = f.transport;
  out.hjb = f.hjb;
  if (map == nullptr || !map->map) {
    out.sum = (f.log_q + target_energy(f.x, target, cut, counters, exec)).sum();
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
    return out;
  }
  const FlowSpaceImage img = map->map(f.x.index_select(0, idx));
  const auto u = target_energy(img.x, target, cut, counters, exec);
  out.sum = (f.log_q.index_select(0, idx) + u - img.logdet).sum();
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

TrainHistory train(BoltzmannGenerator& model, const Target& target, const RowMatrix* data,
                   const TrainOptions& options, const FlowSpaceMap* map) {
  if (map != nullptr && !map->map) map = nullptr;
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
  const int steps = model.options().steps;
  const std::int64_t batch = options.batch_size;

  TrainHistory history;
  const double t_start = wall_seconds();
  const bool resuming = options.resume && std::filesystem::exists(options.checkpoint);
  torch::serialize::InputArchive checkpoint_archive;
  if (resuming) {
    try {
      checkpoint_archive.load_from(options.checkpoint.string());
    } catch (const c10::Error& e) {
      throw IoError(options.checkpoint.string() + ": unreadable checkpoint (" +
                    e.what_without_backtrace() + ")");
    }
    torch::serialize::InputArchive model_archive;
    checkpoint_archive.read("model", model_archive);
    model = BoltzmannGenerator::read(model_archive, options.checkpoint.string());
    c10::IValue hist;
    checkpoint_archive.read("history", hist);
    history = TrainHistory::from_json(nlohmann::json::parse(hist.toStringRef()));
  }
  torch::optim::Adam adam(model.potential()->parameters(),
                          torch::optim::AdamOptions(options.learning_rate));
  if (resuming) {
    torch::serialize::InputArchive adam_archive;
    checkpoint_archive.read("adam", adam_archive);
    adam.load(adam_archive);
  }
  const double wall_before = history.wall_seconds;

  EnergyCounters counters;
  Progress progress("bg-train", static_cast<std::size_t>(options.iterations), options.progress);
  double last_ess = std::numeric_limits<double>::quiet_NaN();
  const auto params = model.potential()->parameters();
  // Forward-KL term by the fused path (fused_data_term) or by autograd chunks below.
  const bool fused_path = uses_fused_data_term(model, options);

  for (int it = history.iterations_done; it < options.iterations; ++it) {
    // Cosine schedule from lr to lr·ratio.
    const double frac = options.iterations > 1 ? static_cast<double>(it) / (options.iterations - 1) : 1.0;
    const double lr = options.learning_rate *
                      (options.lr_final_ratio + (1.0 - options.lr_final_ratio) * 0.5 * (1.0 + std::cos(kPi * frac)));
    for (auto& group : adam.param_groups())
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);

    const double t_step = wall_seconds();
    adam.zero_grad();
    // Warm-up: forward KL only (λ = 1) for the first warmup_iterations steps.
    LossWeights w = options.weights;
    if (it < options.warmup_iterations) w.lambda = 1.0;
    const bool costs = w.alpha_transport > 0.0 || w.alpha_hjb > 0.0;
    const bool fused_data = fused_path && w.lambda > 0.0;
    // Mini-batches: data rows drawn with replacement from stream (seed, data, it);
    // base draws from streams it·B .. it·B + B − 1.
    torch::Tensor xb, zb;
    RowMatrix rows;
    if (w.lambda > 0.0) {
      Rng rng(options.seed, kDataStream + static_cast<std::uint64_t>(it));
      rows.resize(batch, model.dim());
      for (std::int64_t i = 0; i < batch; ++i)
        rows.row(i) = data->row(static_cast<Eigen::Index>(rng.uniform() * data->rows()) % data->rows());
      if (!fused_data) xb = to_tensor(rows);
    }
    if (w.lambda < 1.0) zb = model.base_sample(batch, options.seed, static_cast<std::int64_t>(it) * batch);

    // Fixed chunks of the batch run as oneTBB tasks, each with its own autograd
    // graph; their gradients are summed in chunk order, so the result does not
    // depend on the thread count (LibTorch intra-op threads are 1, see
    // set_generator_threads).
    const std::int64_t chunk = std::max<std::int64_t>(1, options.chunk_size);
    const std::int64_t n_chunks = (batch + chunk - 1) / chunk;
    struct ChunkResult {
      double fwd = 0, rev = 0, transport = 0, hjb = 0;
      std::int64_t valid = 0, invalid = 0;
      std::vector<torch::Tensor> grads;
    };
    const bool autograd_data = w.lambda > 0.0 && !fused_data;
    const int n_terms = (autograd_data ? 1 : 0) + (w.lambda < 1.0 ? 1 : 0);
    std::vector<ChunkResult> results(static_cast<std::size_t>(n_terms * n_chunks));
    const double inv_b = 1.0 / static_cast<double>(batch);
    for_each_index(
        results.size(),
        [&](std::size_t task) {
          const bool data_term = autograd_data && static_cast<std::int64_t>(task) < n_chunks;
          const std::int64_t c = static_cast<std::int64_t>(task) % n_chunks;
          const std::int64_t b0 = c * chunk, m = std::min(chunk, batch - b0);
          ChunkResult& r = results[task];
          torch::Tensor loss_c, transport_c, hjb_c;
          double weight;
          if (data_term) {
            weight = w.lambda;
            const FlowBatch f = model.reverse(xb.narrow(0, b0, m), steps, costs);
            const auto nll = -f.log_q.sum();
            r.fwd = nll.item<double>();
            loss_c = weight * inv_b * nll;
            transport_c = f.transport;
            hjb_c = f.hjb;
          } else {
            weight = 1.0 - w.lambda;
            const ReverseKlTerm rk = reverse_kl_term(model, zb.narrow(0, b0, m), steps, costs, target,
                                                     options.energy_cut, map, &counters, options.exec);
            r.rev = rk.sum.item<double>();
            r.valid = rk.valid;
            r.invalid = rk.invalid;
            // Invalid draws contribute 0: the mean is E_z[1_valid·(log q + ũ − L)].
            loss_c = weight * inv_b * rk.sum;
            transport_c = rk.transport;
            hjb_c = rk.hjb;
          }
          if (costs) {
            const auto tr = transport_c.sum(), hj = hjb_c.sum();
            r.transport = weight * inv_b * tr.item<double>();
            r.hjb = weight * inv_b * hj.item<double>();
            loss_c = loss_c + (w.alpha_transport * weight * inv_b) * tr + (w.alpha_hjb * weight * inv_b) * hj;
          }
          r.grads = torch::autograd::grad({loss_c}, params, {}, false, false, /*allow_unused=*/true);
        },
        options.exec);
    double fwd_value = std::numeric_limits<double>::quiet_NaN();
    double rev_value = std::numeric_limits<double>::quiet_NaN();
    double transport_value = 0.0, hjb_value = 0.0, loss_value = 0.0;
    {
      torch::NoGradGuard ng;
      double fwd_sum = 0, rev_sum = 0;
      std::int64_t n_valid = 0;
      if (fused_data) {  // data term first, as the autograd chunks order it
        const FusedDataTerm f = fused_data_term(model, rows, options, w);
        fwd_sum = f.nll_mean * static_cast<double>(batch);
        if (costs) {
          transport_value += w.lambda * f.transport;
          hjb_value += w.lambda * f.hjb;
        }
        for (std::size_t k = 0; k < params.size(); ++k) params[k].mutable_grad() = f.grads[k];
      }
      for (std::size_t task = 0; task < results.size(); ++task) {
        const ChunkResult& r = results[task];
        fwd_sum += r.fwd;
        rev_sum += r.rev;
        n_valid += r.valid;
        history.invalid += static_cast<std::size_t>(r.invalid);
        transport_value += r.transport;
        hjb_value += r.hjb;
        for (std::size_t k = 0; k < params.size(); ++k) {
          if (!r.grads[k].defined()) continue;
          auto& g = params[k].mutable_grad();
          if (!g.defined()) g = r.grads[k].clone();
          else g.add_(r.grads[k]);
        }
      }
      if (w.lambda > 0.0) fwd_value = fwd_sum * inv_b;
      // Reported reverse KL (− log Z): the mean over the valid draws; the loss uses the
      // batch mean of 1_valid·(…), which is what the gradient follows.
      if (w.lambda < 1.0 && n_valid > 0) rev_value = rev_sum / static_cast<double>(n_valid);
      loss_value = (w.lambda > 0.0 ? w.lambda * fwd_value : 0.0) +
                   (w.lambda < 1.0 ? (1.0 - w.lambda) * rev_sum * inv_b : 0.0) +
                   w.alpha_transport * transport_value + w.alpha_hjb * hjb_value;
    }
    double gnorm = 0.0;
    for (const auto& p : params)
      if (p.grad().defined()) gnorm += p.grad().pow(2).sum().item<double>();
    gnorm = std::sqrt(gnorm);
    if (std::isfinite(gnorm) && std::isfinite(loss_value)) {
      if (options.clip_grad_norm > 0.0 && gnorm > options.clip_grad_norm) {
        torch::NoGradGuard ng;
        for (const auto& p : params)
          if (p.grad().defined()) p.grad().mul_(options.clip_grad_norm / gnorm);
      }
      adam.step();
    }  // else: the step is skipped (recorded as a non-finite loss/gradient)
    history.loss.push_back(loss_value);
    history.forward_kl.push_back(fwd_value);
    history.reverse_kl.push_back(rev_value);
    history.transport.push_back(transport_value);
    history.hjb.push_back(hjb_value);
    history.grad_norm.push_back(gnorm);
    history.learning_rate.push_back(lr);
    history.iterations_done = it + 1;
    history.step_seconds.push_back(wall_seconds() - t_step);

    const bool last = it + 1 == options.iterations;
    if (options.eval_every > 0 && ((it + 1) % options.eval_every == 0 || last)) {
      const GeneratedSamples s = model.sample(options.eval_samples, options.seed ^ kEvalSeedMix);
      // Running ESS on a small batch: a progress indicator only (reported ESS comes
      // from >= 1e5 samples through the estimators in bg-sample / the benchmarks).
      const Eigen::VectorXd lw = flow_log_weights(s.x, s.log_q, target, map, &counters, nullptr, options.exec);
      last_ess = lw.maxCoeff() > -std::numeric_limits<double>::infinity()
                     ? kish_ess(lw) / static_cast<double>(lw.size())
                     : 0.0;
      history.eval_iteration.push_back(it + 1);
      history.eval_ess.push_back(last_ess);
    }
    history.energy_evaluations += counters.evaluations.exchange(0);
    history.non_finite += counters.non_finite.exchange(0);
    history.cut += counters.cut.exchange(0);
    history.wall_seconds = wall_before + (wall_seconds() - t_start);
    if (options.checkpoint_every > 0 && ((it + 1) % options.checkpoint_every == 0 || last))
      save_checkpoint(options.checkpoint, model, adam, history);
    // The forward KL (λ = 0), the reverse KL (λ = 1 steps) and the running ESS (before the
    // first evaluation) may not be computed: shown as "-" then. The loss and the path costs
    // are always computed and printed as they are (a NaN there is a real divergence).
    auto term = [](double v, const char* fmt) {
      if (std::isnan(v)) return std::string("-");
      char buf[32];
      std::snprintf(buf, sizeof buf, fmt, v);
      return std::string(buf);
    };
    char fixed[120];
    std::snprintf(fixed, sizeof fixed, "  L %.3g  HJB %.3g", history.transport.back(), history.hjb.back());
    char loss_text[40];
    std::snprintf(loss_text, sizeof loss_text, "loss %.4g", loss_value);
    const std::string status = std::string(loss_text) + "  fKL " + term(fwd_value, "%.4g") + std::string(fixed) +
                               "  rKL " + term(rev_value, "%.4g") + "  ESS " + term(last_ess, "%.3g");
    progress.update(static_cast<std::size_t>(it + 1), status);
    if (options.stop_after > 0 && it + 1 >= options.stop_after && !last) {
      if (options.checkpoint_every > 0) save_checkpoint(options.checkpoint, model, adam, history);
      break;
    }
  }
  progress.finish();
  return history;
}

}  // namespace boltzlab::generators
