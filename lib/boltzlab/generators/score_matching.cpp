#include "boltzlab/generators/score_matching.hpp"

#include <cmath>
#include <string>

#include "boltzlab/core/constants.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/progress.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/generators/target_bridge.hpp"

namespace boltzlab::generators {

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

torch::Tensor weight_of(const NoisingSde& sde, const torch::Tensor& s, ScoreWeighting weighting) {
  return weighting == ScoreWeighting::kDiffusion ? sde.diffusion_squared(s) : sde.variance(s);
}

torch::Tensor power(const torch::Tensor& r, int p) { return p == 1 ? r.abs() : r * r; }

const char* objective_name(ScoreObjective o) { return o == ScoreObjective::kImplicit ? "implicit" : "denoising"; }
const char* weighting_name(ScoreWeighting w) { return w == ScoreWeighting::kDiffusion ? "diffusion" : "variance"; }

}  // namespace

ScoreBatch draw_score_batch(const RowMatrix& data, const NoisingSde& sde, int batch, std::uint64_t seed, int it) {
  const int d = static_cast<int>(data.cols());
  Rng rng = stream_for(seed, static_cast<std::uint64_t>(it));
  ScoreBatch b{torch::empty({batch, d}, kF64), torch::empty({batch}, kF64), torch::empty({batch, d}, kF64)};
  double* y = b.y0.data_ptr<double>();
  double* s = b.s.data_ptr<double>();
  double* xi = b.noise.data_ptr<double>();
  const double lo = sde.options().t_min, hi = sde.options().time;
  const auto n = static_cast<std::uint64_t>(data.rows());
  for (int i = 0; i < batch; ++i) {
    const auto row = static_cast<Eigen::Index>(rng() % n);
    for (int k = 0; k < d; ++k) y[i * d + k] = data(row, k);
    s[i] = lo + (hi - lo) * rng.uniform();
    for (int k = 0; k < d; ++k) xi[i * d + k] = rng.normal();
  }
  return b;
}

void ScoreLossOptions::validate() const {
  auto non_negative = [](double v, const char* field) {
    if (!(std::isfinite(v) && v >= 0.0)) throw ConfigError(std::string("generator.") + field + " must be finite and ≥ 0");
  };
  non_negative(alpha0, "alpha0");
  non_negative(alpha1, "alpha1");
  non_negative(alpha2, "alpha2");
  if (alpha0 + alpha1 + alpha2 <= 0.0) throw ConfigError("generator.alpha0, alpha1, alpha2: at least one must be > 0");
  if (p != 1 && p != 2) throw ConfigError("generator.p is " + std::to_string(p) + ", but must be 1 or 2");
}

nlohmann::json ScoreLossOptions::to_json() const {
  return {{"objective", objective_name(objective)}, {"weighting", weighting_name(weighting)},
          {"alpha0", alpha0}, {"alpha1", alpha1}, {"alpha2", alpha2}, {"p", p}};
}

torch::Tensor score_matching_terms(ScoreField& model, const NoisingSde& sde, const torch::Tensor& y0,
                                   const torch::Tensor& s, const torch::Tensor& noise, ScoreObjective objective,
                                   ScoreWeighting weighting) {
  const auto y = sde.perturb(y0, s, noise);
  const auto w = weight_of(sde, s, weighting);
  if (objective == ScoreObjective::kImplicit) {
    const ScoreEvaluation e = model.evaluate(y, s, kDivergence);
    return w * (0.5 * (e.score * e.score).sum(1) + e.divergence);
  }
  const ScoreEvaluation e = model.evaluate(y, s, kScoreOnly);
  const auto target = -noise / torch::sqrt(sde.variance(s)).unsqueeze(1);
  const auto diff = e.score - target;
  return w * 0.5 * (diff * diff).sum(1);
}

torch::Tensor hjb_residual(ScoreField& model, const NoisingSde& sde, const torch::Tensor& y, const torch::Tensor& s,
                           int p) {
  const double c = sde.drift_coefficient();
  const auto g2 = sde.diffusion_squared(s);
  if (model.is_gradient()) {
    const ScoreEvaluation e = model.evaluate(y, s, kDivergence);
    const auto r = e.log_density_dt - c * (y * e.score).sum(1) - 0.5 * g2 * (e.score * e.score).sum(1) -
                   c * static_cast<double>(y.size(1)) - 0.5 * g2 * e.divergence;
    return power(r, p);
  }
  const ScoreEvaluation e = model.evaluate(y, s, kJacobian | kLaplacian);
  // (Jᵀ v)_i = Σ_j v_j ∂s_j/∂y_i with J[b, j, i] = ∂s_j/∂y_i.
  auto jt = [&](const torch::Tensor& v) { return torch::matmul(v.unsqueeze(1), e.jacobian).squeeze(1); };
  const auto g2c = g2.unsqueeze(1);
  const auto r = e.time_derivative - c * e.score - c * jt(y) - g2c * jt(e.score) - 0.5 * g2c * e.laplacian;
  return power(r, p).sum(1);
}

ScoreLossTerms score_loss(ScoreField& model, const NoisingSde& sde, const torch::Tensor& y0, const torch::Tensor& s,
                          const torch::Tensor& noise, const ScoreLossOptions& options) {
  ScoreLossTerms out;
  out.total = torch::zeros({}, kF64);
  if (options.alpha0 > 0.0) {
    const auto m = score_matching_terms(model, sde, y0, s, noise, options.objective, options.weighting).mean();
    out.matching = m.item<double>();
    out.total = out.total + options.alpha0 * m;
  }
  if (options.alpha1 > 0.0) {
    const auto r = hjb_residual(model, sde, sde.perturb(y0, s, noise), s, options.p).mean();
    out.residual = r.item<double>();
    out.total = out.total + options.alpha1 * r;
  }
  if (options.alpha2 > 0.0) {
    const ScoreEvaluation e = model.evaluate(y0, torch::zeros({y0.size(0)}, kF64), kDivergence);
    const auto t = ((e.score * e.score).sum(1) + 2.0 * e.divergence).mean();
    out.terminal = t.item<double>();
    out.total = out.total + options.alpha2 * t;
  }
  return out;
}

void ScoreTrainOptions::read_loss(JsonReader& r) {
  if (r.has("objective")) {
    const auto o = r.get_string("objective");
    if (o == "implicit") loss.objective = ScoreObjective::kImplicit;
    else if (o == "denoising") loss.objective = ScoreObjective::kDenoising;
    else r.fail("objective", "is '" + o + "', but must be \"implicit\" or \"denoising\"");
  }
  if (r.has("weighting")) {
    const auto w = r.get_string("weighting");
    if (w == "diffusion") loss.weighting = ScoreWeighting::kDiffusion;
    else if (w == "variance") loss.weighting = ScoreWeighting::kVariance;
    else r.fail("weighting", "is '" + w + "', but must be \"diffusion\" or \"variance\"");
  }
  loss.alpha0 = r.get_double("alpha0", loss.alpha0);
  loss.alpha1 = r.get_double("alpha1", loss.alpha1);
  loss.alpha2 = r.get_double("alpha2", loss.alpha2);
  loss.p = static_cast<int>(r.get_int("p", loss.p));
}

void ScoreTrainOptions::read_schedule(JsonReader& r) {
  iterations = static_cast<int>(r.get_int("iterations", iterations));
  batch_size = static_cast<int>(r.get_int("batch_size", batch_size));
  learning_rate = r.get_double("learning_rate", learning_rate);
  lr_final_ratio = r.get_double("lr_final_ratio", lr_final_ratio);
  clip_grad_norm = r.get_double("clip_grad_norm", clip_grad_norm);
}

void ScoreTrainOptions::validate() const {
  loss.validate();
  if (iterations < 1) throw ConfigError("generator.iterations must be ≥ 1");
  if (batch_size < 1) throw ConfigError("generator.batch_size must be ≥ 1");
  if (!(std::isfinite(learning_rate) && learning_rate > 0.0))
    throw ConfigError("generator.learning_rate must be finite and > 0");
  if (!(lr_final_ratio > 0.0 && lr_final_ratio <= 1.0)) throw ConfigError("generator.lr_final_ratio must be in (0, 1]");
  if (!std::isfinite(clip_grad_norm)) throw ConfigError("generator.clip_grad_norm must be finite");
  if (log_every < 1) throw ConfigError("score training: log_every must be ≥ 1");
}

nlohmann::json ScoreTrainOptions::to_json() const {
  auto j = loss.to_json();
  j["iterations"] = iterations;
  j["batch_size"] = batch_size;
  j["learning_rate"] = learning_rate;
  j["lr_final_ratio"] = lr_final_ratio;
  j["clip_grad_norm"] = clip_grad_norm;
  j["seed"] = seed;
  return j;
}

nlohmann::json ScoreTrainHistory::to_json() const {
  return {{"iteration", iteration}, {"loss", loss}, {"matching", matching}, {"residual", residual},
          {"terminal", terminal}, {"iterations_done", iterations_done}, {"skipped_steps", skipped},
          {"wall_seconds", wall_seconds}};
}

ScoreTrainHistory train_score(ScoreField& model, const NoisingSde& sde, const RowMatrix& data,
                              const ScoreTrainOptions& options) {
  options.validate();
  if (data.rows() < 1 || data.cols() != model.dim())
    throw DomainError("score training: data must be N×" + std::to_string(model.dim()) + " with N ≥ 1");
  auto params = model.parameters();
  if (params.empty()) throw DomainError("score training: the model has no parameters");
  torch::optim::Adam adam(params, torch::optim::AdamOptions(options.learning_rate));
  ScoreTrainHistory h;
  const double start = wall_seconds();
  Progress progress("score matching", static_cast<std::size_t>(options.iterations), options.progress);
  double acc[4] = {0, 0, 0, 0};
  int acc_n = 0;
  for (int it = 0; it < options.iterations; ++it) {
    const double frac = static_cast<double>(it) / options.iterations;
    const double lr = options.learning_rate *
                      (options.lr_final_ratio + (1.0 - options.lr_final_ratio) * 0.5 * (1.0 + std::cos(kPi * frac)));
    for (auto& group : adam.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    const ScoreBatch b = draw_score_batch(data, sde, options.batch_size, options.seed, it);
    adam.zero_grad();
    const ScoreLossTerms terms = score_loss(model, sde, b.y0, b.s, b.noise, options.loss);
    const double loss = terms.total.item<double>();
    bool ok = std::isfinite(loss);
    if (ok) {
      terms.total.backward();
      const double norm = options.clip_grad_norm > 0.0
                              ? torch::nn::utils::clip_grad_norm_(params, options.clip_grad_norm)
                              : torch::nn::utils::clip_grad_norm_(params, 1e300);
      ok = std::isfinite(norm);
    }
    if (ok) adam.step();
    else ++h.skipped;
    acc[0] += loss, acc[1] += terms.matching, acc[2] += terms.residual, acc[3] += terms.terminal;
    ++acc_n;
    if (acc_n == options.log_every || it + 1 == options.iterations) {
      h.iteration.push_back(it + 1);
      h.loss.push_back(acc[0] / acc_n);
      h.matching.push_back(acc[1] / acc_n);
      h.residual.push_back(acc[2] / acc_n);
      h.terminal.push_back(acc[3] / acc_n);
      acc[0] = acc[1] = acc[2] = acc[3] = 0.0;
      acc_n = 0;
    }
    h.iterations_done = it + 1;
    progress.update(static_cast<std::size_t>(it + 1));
  }
  progress.finish();
  h.wall_seconds = wall_seconds() - start;
  return h;
}

}  // namespace boltzlab::generators
