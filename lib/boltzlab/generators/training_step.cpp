#include "boltzlab/generators/training_step.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/mpi.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/generators/fused_otflow.hpp"
#include "boltzlab/generators/relaxed_game.hpp"

namespace boltzlab::generators {

namespace {

// Stream offset so that data batches never share a random stream with the base draws
// (streams it·B … it·B + B − 1) or the evaluation draws (seed ^ kEvalSeedMix).
constexpr std::uint64_t kDataStream = 0x1000000000ULL;
// Stream mix of the data trajectories' increments of a stochastic flow (the base
// trajectories' increments use the generator's own noise_sample streams).
constexpr std::uint64_t kDataNoiseSeedMix = 0x7F4A7C15ULL;

// Noise sub-tensor of rows b0 … b0 + m − 1 (undefined stays undefined).
torch::Tensor noise_rows(const torch::Tensor& noise, std::int64_t b0, std::int64_t m) {
  return noise.defined() ? noise.narrow(1, b0, m) : noise;
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

/// Over MPI ranks (data-parallel training): every rank computed the chunk tasks of
/// `mine`; afterwards every rank holds every task's loss parts and gradients (float64,
/// bit for bit), so the sum in task order, the clipping and the Adam step are those of
/// one process. Nothing to do on one rank.
template <class ChunkResult>
void share_chunk_results(std::vector<ChunkResult>& results, const mpi::Block& mine,
                         const std::vector<torch::Tensor>& params) {
  if (mpi::size() == 1) return;
  std::string bytes;
  auto put = [&bytes](const void* p, std::size_t n) { bytes.append(static_cast<const char*>(p), n); };
  for (std::size_t t = mine.begin; t < mine.end; ++t) {
    const ChunkResult& r = results[t];
    const double parts[8] = {r.fwd, r.rev, r.game, r.transport, r.hjb, r.terminal, static_cast<double>(r.valid),
                             static_cast<double>(r.invalid)};
    put(parts, sizeof parts);
    for (std::size_t k = 0; k < params.size(); ++k) {
      const char defined = k < r.grads.size() && r.grads[k].defined() ? 1 : 0;
      put(&defined, 1);
      if (!defined) continue;
      const torch::Tensor g = r.grads[k].to(torch::kFloat64).contiguous();
      put(g.data_ptr<double>(), static_cast<std::size_t>(g.numel()) * sizeof(double));
    }
  }
  const std::string all = mpi::allgatherv(bytes);
  std::size_t pos = 0;
  auto get = [&all, &pos](void* p, std::size_t n) {
    std::memcpy(p, all.data() + pos, n);
    pos += n;
  };
  for (ChunkResult& r : results) {  // rank order is task order
    double parts[8];
    get(parts, sizeof parts);
    r.fwd = parts[0], r.rev = parts[1], r.game = parts[2], r.transport = parts[3], r.hjb = parts[4];
    r.terminal = parts[5], r.valid = static_cast<std::int64_t>(parts[6]), r.invalid = static_cast<std::int64_t>(parts[7]);
    r.grads.assign(params.size(), torch::Tensor());
    for (std::size_t k = 0; k < params.size(); ++k) {
      char defined = 0;
      get(&defined, 1);
      if (!defined) continue;
      torch::Tensor g = torch::empty(params[k].sizes(), torch::TensorOptions().dtype(torch::kFloat64));
      get(g.data_ptr<double>(), static_cast<std::size_t>(g.numel()) * sizeof(double));
      r.grads[k] = g.to(params[k].dtype());
    }
  }
}

// Running sums of the data weights (inverse-CDF row draws); checked here, once.
std::vector<double> cumulative_weights(const Eigen::VectorXd* weights, const RowMatrix* data) {
  std::vector<double> c;
  if (weights == nullptr) return c;
  const Eigen::Index rows = data != nullptr ? data->rows() : 0;
  if (weights->size() != rows)
    throw DomainError("train: " + std::to_string(weights->size()) + " data weights for " + std::to_string(rows) +
                      " data rows");
  c.reserve(static_cast<std::size_t>(rows));
  double sum = 0.0;
  for (Eigen::Index i = 0; i < rows; ++i) {
    const double w = (*weights)[i];
    if (!(w >= 0.0) || !std::isfinite(w))
      throw DomainError("train: data weight " + std::to_string(i) + " is " + std::to_string(w) +
                        ", but must be finite and >= 0");
    c.push_back(sum += w);
  }
  if (!(sum > 0.0)) throw DomainError("train: the data weights sum to 0");
  return c;
}

}  // namespace

void check_loss_for_model(const GeneratorOptions& model, const LossWeights& weights, bool mapped) {
  if (weights.epsilon > 0.0 && (mapped || model.stochastic() || model.free_velocity))
    throw ConfigError("generator.epsilon: the relaxed game runs the deterministic gradient flow (noise 0, velocity "
                      "gradient) on targets without a flow-space map (not on molecules in internal coordinates)");
  if (model.stochastic() && weights.alpha_terminal > 0.0)
    throw ConfigError("generator.alpha_terminal: the terminal condition needs log rho_T of the marginal, which a "
                      "stochastic flow (noise > 0) does not have (its log q is a path ratio)");
  if (model.free_velocity && (weights.alpha_hjb > 0.0 || weights.alpha_terminal > 0.0))
    throw ConfigError("generator.alpha_hjb / alpha_terminal: a free velocity has no potential, so no HJB residual "
                      "or terminal condition (set them to 0)");
  if (model.coupling_flow() && (weights.alpha_hjb > 0.0 || weights.alpha_terminal > 0.0 || weights.epsilon > 0.0))
    throw ConfigError("generator.alpha_hjb / alpha_terminal / epsilon: a spline coupling flow has no potential and no "
                      "path of states, so no HJB residual, terminal condition or relaxed game (set them to 0)");
}

TrainingStep::TrainingStep(BoltzmannGenerator& model, const Target& target, const RowMatrix* data,
                           const TrainOptions& options, const FlowSpaceMap* map, const Eigen::VectorXd* data_weights)
    : model_(model),
      target_(target),
      data_(data),
      options_(options),
      map_(map),
      params_(model.parameters()),
      cumulative_(cumulative_weights(data_weights, data)),
      fused_path_(uses_fused_data_term(model, options)) {
  check_loss_for_model(model.options(), options.weights, map != nullptr);
}

StepRecord TrainingStep::operator()(int iteration, const LossWeights& w, double learning_rate,
                                    torch::optim::Adam& adam) {
  for (auto& group : adam.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(learning_rate);
  const double t_step = wall_seconds();
  StepRecord record;
  record.iteration = iteration;
  record.learning_rate = learning_rate;
  adam.zero_grad();
  const bool fused_data = fused_path_ && w.lambda > 0.0;
  const Batch batch = draw_batch(iteration, w, fused_data);
  const std::vector<ChunkResult> chunks = chunk_terms(batch, w, w.lambda > 0.0 && !fused_data);
  sum_terms(batch, w, fused_data, chunks, record);
  clip_and_step(adam, record);
  record.energy_evaluations = counters_.evaluations.exchange(0);
  record.non_finite = counters_.non_finite.exchange(0);
  record.cut = counters_.cut.exchange(0);
  record.seconds = wall_seconds() - t_step;
  return record;
}

TrainingStep::Batch TrainingStep::draw_batch(int iteration, const LossWeights& w, bool fused_data) const {
  const std::int64_t size = options_.batch_size;
  Batch b;
  if (w.lambda > 0.0) {  // data rows with replacement from stream (seed, data, it)
    Rng rng(options_.seed, kDataStream + static_cast<std::uint64_t>(iteration));
    b.rows.resize(size, model_.dim());
    for (std::int64_t i = 0; i < size; ++i) b.rows.row(i) = data_->row(draw_row(rng));
    if (!fused_data) b.data = to_tensor(b.rows);
  }
  const std::int64_t first = static_cast<std::int64_t>(iteration) * size;
  const bool stochastic = model_.options().stochastic();
  const int steps = model_.options().steps;
  if (w.lambda > 0.0 && stochastic) b.data_noise = model_.noise_sample(steps, size, options_.seed ^ kDataNoiseSeedMix, first);
  if (w.lambda < 1.0) {
    b.base = model_.base_sample(size, options_.seed, first);
    if (stochastic) b.base_noise = model_.noise_sample(steps, size, options_.seed, first);
  }
  return b;
}

// Row index of one data draw: uniform, or with probability w_i / Σ w (the first running
// sum above u·Σ w; rows of weight 0 are never drawn).
Eigen::Index TrainingStep::draw_row(Rng& rng) const {
  const double r = rng.uniform();
  if (cumulative_.empty()) return static_cast<Eigen::Index>(r * data_->rows()) % data_->rows();
  const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), r * cumulative_.back());
  const auto last = static_cast<std::ptrdiff_t>(cumulative_.size()) - 1;
  return static_cast<Eigen::Index>(std::min<std::ptrdiff_t>(it - cumulative_.begin(), last));
}

// Chunk tasks: the autograd data term (chunks 0 … n − 1, when not fused) and the
// reverse-KL term (the next n), each ∂/∂θ of its share of the batch-mean loss.
std::vector<TrainingStep::ChunkResult> TrainingStep::chunk_terms(const Batch& b, const LossWeights& w,
                                                                  bool autograd_data) {
  const int steps = model_.options().steps;
  const std::int64_t batch = options_.batch_size;
  const bool costs = w.alpha_transport > 0.0 || w.alpha_hjb > 0.0;
  // LibTorch intra-op threads are 1 (set_generator_threads): the chunks are the parallelism.
  const std::int64_t chunk = std::max<std::int64_t>(1, options_.chunk_size);
  const std::int64_t n_chunks = (batch + chunk - 1) / chunk;
  const int n_terms = (autograd_data ? 1 : 0) + (w.lambda < 1.0 ? 1 : 0);
  std::vector<ChunkResult> results(static_cast<std::size_t>(n_terms * n_chunks));
  const double inv_b = 1.0 / static_cast<double>(batch);
  const mpi::Block mine = mpi::my_block(results.size());  // this rank's tasks (all on one rank)
  for_each_index(
      mine.size(),
      [&](std::size_t local) {
        const std::size_t task = mine.begin + local;
        const bool data_term = autograd_data && static_cast<std::int64_t>(task) < n_chunks;
        const std::int64_t c = static_cast<std::int64_t>(task) % n_chunks;
        const std::int64_t b0 = c * chunk, m = std::min(chunk, batch - b0);
        ChunkResult& r = results[task];
        torch::Tensor loss_c, transport_c, hjb_c;
        double weight;
        if (data_term) {
          weight = w.lambda;
          const FlowBatch f = model_.reverse(b.data.narrow(0, b0, m), steps, costs, noise_rows(b.data_noise, b0, m));
          const auto nll = -f.log_q.sum();
          r.fwd = nll.item<double>();
          loss_c = weight * inv_b * nll;
          transport_c = f.transport;
          hjb_c = f.hjb;
        } else if (w.epsilon > 0.0) {
          weight = 1.0 - w.lambda;
          const RelaxedGameTerm rg = relaxed_game_term(model_, b.base.narrow(0, b0, m), steps, costs, w.epsilon,
                                                       target_, options_.energy_cut, &counters_, options_.exec);
          r.rev = rg.terminal.item<double>();
          r.game = rg.sum.item<double>();
          r.valid = m;
          loss_c = weight * inv_b * rg.sum;
          transport_c = rg.transport;
          hjb_c = rg.hjb;
        } else {
          weight = 1.0 - w.lambda;
          ReverseKlExtras extras;
          extras.noise = noise_rows(b.base_noise, b0, m);
          extras.terminal = w.alpha_terminal > 0.0;
          extras.lambda = w.lambda;
          const ReverseKlTerm rk = reverse_kl_term(model_, b.base.narrow(0, b0, m), steps, costs, target_,
                                                   options_.energy_cut, map_, &counters_, options_.exec, extras);
          r.rev = rk.sum.item<double>();
          r.game = r.rev;
          r.valid = rk.valid;
          r.invalid = rk.invalid;
          // Invalid draws contribute 0: the mean is E_z[1_valid·(log q + ũ − L)].
          loss_c = weight * inv_b * rk.sum;
          if (extras.terminal) {
            r.terminal = inv_b * rk.terminal.item<double>();
            loss_c = loss_c + (w.alpha_terminal * inv_b) * rk.terminal;
          }
          transport_c = rk.transport;
          hjb_c = rk.hjb;
        }
        if (costs) {
          const auto tr = transport_c.sum(), hj = hjb_c.sum();
          r.transport = weight * inv_b * tr.item<double>();
          r.hjb = weight * inv_b * hj.item<double>();
          loss_c = loss_c + (w.alpha_transport * weight * inv_b) * tr + (w.alpha_hjb * weight * inv_b) * hj;
        }
        r.grads = torch::autograd::grad({loss_c}, params_, {}, false, false, /*allow_unused=*/true);
      },
      options_.exec);
  share_chunk_results(results, mine, params_);
  if (mpi::size() > 1) {  // the step's target evaluations of all ranks
    double counts[3] = {static_cast<double>(counters_.evaluations.exchange(0)),
                        static_cast<double>(counters_.non_finite.exchange(0)), static_cast<double>(counters_.cut.exchange(0))};
    mpi::allreduce_sum(counts, 3);
    counters_.evaluations = static_cast<std::size_t>(counts[0]);
    counters_.non_finite = static_cast<std::size_t>(counts[1]);
    counters_.cut = static_cast<std::size_t>(counts[2]);
  }
  return results;
}

// Sums the terms into the parameters' gradients (fused data term first, then the chunks
// in order) and the record's loss parts.
void TrainingStep::sum_terms(const Batch& b, const LossWeights& w, bool fused_data,
                             const std::vector<ChunkResult>& chunks, StepRecord& record) {
  torch::NoGradGuard ng;
  const double inv_b = 1.0 / static_cast<double>(options_.batch_size);
  const bool costs = w.alpha_transport > 0.0 || w.alpha_hjb > 0.0;
  double fwd_sum = 0, rev_sum = 0, game_sum = 0, transport_value = 0.0, hjb_value = 0.0;
  std::int64_t n_valid = 0;
  if (fused_data) {
    const FusedDataTerm f = fused_data_term(model_, b.rows, options_, w);
    fwd_sum = f.nll_mean * static_cast<double>(options_.batch_size);
    if (costs) {
      transport_value += w.lambda * f.transport;
      hjb_value += w.lambda * f.hjb;
    }
    for (std::size_t k = 0; k < params_.size(); ++k) params_[k].mutable_grad() = f.grads[k];
  }
  for (const ChunkResult& r : chunks) {
    fwd_sum += r.fwd;
    rev_sum += r.rev;
    game_sum += r.game;
    n_valid += r.valid;
    record.invalid += static_cast<std::size_t>(r.invalid);
    transport_value += r.transport;
    hjb_value += r.hjb;
    record.terminal += r.terminal;
    for (std::size_t k = 0; k < params_.size(); ++k) {
      if (!r.grads[k].defined()) continue;
      auto& g = params_[k].mutable_grad();
      if (!g.defined()) g = r.grads[k].clone();
      else g.add_(r.grads[k]);
    }
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  record.forward_kl = w.lambda > 0.0 ? fwd_sum * inv_b : nan;
  // Reported reverse KL (− log Z): the mean over the valid draws; the loss uses the
  // batch mean of 1_valid·(…), which is what the gradient follows.
  record.reverse_kl = w.lambda < 1.0 && n_valid > 0 ? rev_sum / static_cast<double>(n_valid) : nan;
  record.transport = transport_value;
  record.hjb = hjb_value;
  record.loss = (w.lambda > 0.0 ? w.lambda * record.forward_kl : 0.0) +
                (w.lambda < 1.0 ? (1.0 - w.lambda) * game_sum * inv_b : 0.0) + w.alpha_transport * transport_value +
                w.alpha_hjb * hjb_value + w.alpha_terminal * record.terminal;
}

// Global gradient-norm clipping, then Adam; the step is skipped (and recorded as such)
// when the loss or the gradient norm is not finite.
void TrainingStep::clip_and_step(torch::optim::Adam& adam, StepRecord& record) {
  double gnorm = 0.0;
  for (const auto& p : params_)
    if (p.grad().defined()) gnorm += p.grad().pow(2).sum().item<double>();
  gnorm = std::sqrt(gnorm);
  record.grad_norm = gnorm;
  if (!(std::isfinite(gnorm) && std::isfinite(record.loss))) return;
  if (options_.clip_grad_norm > 0.0 && gnorm > options_.clip_grad_norm) {
    torch::NoGradGuard ng;
    for (const auto& p : params_)
      if (p.grad().defined()) p.grad().mul_(options_.clip_grad_norm / gnorm);
  }
  adam.step();
  record.applied = true;
}

}  // namespace boltzlab::generators
