#include "boltzlab/generators/score_model.hpp"

#include <cmath>
#include <string>

#include "boltzlab/core/constants.hpp"
#include "boltzlab/core/error.hpp"

namespace boltzlab::generators {

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

void check_inputs(const ScoreField& model, const torch::Tensor& y, const torch::Tensor& s, unsigned needs) {
  if (y.dim() != 2 || y.size(1) != model.dim())
    throw DomainError("score model: y must be B×" + std::to_string(model.dim()));
  if (s.dim() != 1 || s.size(0) != y.size(0)) throw DomainError("score model: one noising time per row of y");
  if ((needs & ~model.supported()) != 0)
    throw DomainError("score model: " + model.describe().value("type", std::string("model")) +
                      " cannot compute the requested derivatives (" + std::to_string(needs) + ")");
}

/// GELU(a) = a Φ(a) and its first two derivatives.
struct Gelu {
  torch::Tensor value, first, second;
};

Gelu gelu(const torch::Tensor& a, bool first, bool second) {
  const auto cdf = 0.5 * (1.0 + torch::erf(a * M_SQRT1_2));
  Gelu g;
  g.value = a * cdf;
  if (first || second) {
    const auto pdf = torch::exp(-0.5 * a * a) * (1.0 / std::sqrt(2.0 * kPi));
    if (first) g.first = cdf + a * pdf;
    if (second) g.second = pdf * (2.0 - a * a);
  }
  return g;
}

}  // namespace

void MlpScoreOptions::validate() const {
  if (dim < 1) throw ConfigError("generator.dim must be ≥ 1");
  if (hidden.empty()) throw ConfigError("generator.hidden must list at least one layer width");
  for (int w : hidden)
    if (w < 1 || w > 4096) throw ConfigError("generator.hidden: widths must be in [1, 4096]");
}

nlohmann::json MlpScoreOptions::to_json() const { return {{"dim", dim}, {"hidden", hidden}}; }

MlpScoreOptions MlpScoreOptions::from_json(const nlohmann::json& j) {
  MlpScoreOptions o;
  o.dim = j.at("dim").get<int>();
  o.hidden = j.at("hidden").get<std::vector<int>>();
  o.validate();
  return o;
}

MlpScore::MlpScore(const MlpScoreOptions& options, std::uint64_t seed)
    : options_(options), module_(std::make_shared<torch::nn::Module>("MlpScore")) {
  options_.validate();
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  std::vector<int> widths = {options_.dim + 1};
  widths.insert(widths.end(), options_.hidden.begin(), options_.hidden.end());
  widths.push_back(options_.dim);
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(widths[l]));
    auto w = torch::rand({widths[l + 1], widths[l]}, gen, kF64) * (2.0 * bound) - bound;
    auto b = torch::rand({widths[l + 1]}, gen, kF64) * (2.0 * bound) - bound;
    weight_.push_back(module_->register_parameter("w" + std::to_string(l), w));
    bias_.push_back(module_->register_parameter("b" + std::to_string(l), b));
  }
}

ScoreEvaluation MlpScore::divergence_by_trace(const torch::Tensor& y, const torch::Tensor& s) const {
  const int d = options_.dim;
  const auto& w1 = weight_[0];
  const auto& wo = weight_.back();
  const auto w1y = w1.narrow(1, 0, d);  // h1×d: the y columns of the first layer
  const Gelu g1 = gelu(torch::addmm(bias_[0], torch::cat({y, s.unsqueeze(1)}, 1), w1.t()), true, false);
  ScoreEvaluation out;
  if (weight_.size() == 2) {
    // J = W2 G1 W1y:  tr J = Σ_b g1_b (W1y W2)_bb.
    out.score = torch::addmm(bias_[1], g1.value, wo.t());
    out.divergence = torch::mv(g1.first, (w1y * wo.t()).sum(1));
    return out;
  }
  // J = W3 G2 W2 G1 W1y:  tr J = Σ_{a,b} g2_a W2_ab g1_b (W1y W3)_ba = g2ᵀ C g1, C = W2 ⊙ (W1y W3)ᵀ.
  const auto& w2 = weight_[1];
  const Gelu g2 = gelu(torch::addmm(bias_[1], g1.value, w2.t()), true, false);
  out.score = torch::addmm(bias_[2], g2.value, wo.t());
  const auto c = w2 * torch::mm(w1y, wo).t();  // h2×h1
  out.divergence = (torch::mm(g1.first, c.t()) * g2.first).sum(1);
  return out;
}

ScoreEvaluation MlpScore::evaluate(const torch::Tensor& y, const torch::Tensor& s, unsigned needs) {
  check_inputs(*this, y, s, needs);
  // The divergence alone of a one- or two-hidden-layer net: a closed-form trace at the cost of
  // one more layer, instead of d forward-mode directions.
  if (needs == kDivergence && options_.hidden.size() <= 2) return divergence_by_trace(y, s);
  const int d = options_.dim;
  const auto batch = y.size(0);
  const bool first = needs != kScoreOnly;
  const bool second = (needs & kLaplacian) != 0;
  const int directions = (needs & kJacobian) ? d + 1 : d;  // input coordinates differentiated
  auto h = torch::cat({y, s.unsqueeze(1)}, 1);
  torch::Tensor dh, ddh;  // B×K×n: ∂h/∂in_k;  B×d×n: ∂²h/∂y_k²
  const std::size_t hidden = options_.hidden.size();
  for (std::size_t l = 0; l < hidden; ++l) {
    const auto& w = weight_[l];
    const auto a = torch::addmm(bias_[l], h, w.t());
    torch::Tensor da, dda;
    if (first)
      da = l == 0 ? w.t().narrow(0, 0, directions).unsqueeze(0).expand({batch, directions, w.size(0)})
                  : torch::matmul(dh, w.t());
    if (second && l > 0) dda = torch::matmul(ddh, w.t());
    const Gelu g = gelu(a, first, second);
    h = g.value;
    // contiguous: the next layer's matmul is then one product, not one per row.
    if (first) dh = (g.first.unsqueeze(1) * da).contiguous();
    if (second) {
      const auto dy = da.narrow(1, 0, d);
      ddh = g.second.unsqueeze(1) * dy * dy;
      if (dda.defined()) ddh = ddh + g.first.unsqueeze(1) * dda;
      ddh = ddh.contiguous();
    }
  }
  const auto& wo = weight_[hidden];
  ScoreEvaluation out;
  out.score = torch::addmm(bias_[hidden], h, wo.t());
  if (first) {
    const auto ds = torch::matmul(dh, wo.t());  // B×K×d: [b, k, i] = ∂s_i/∂in_k
    const auto dy = ds.narrow(1, 0, d);
    out.divergence = dy.diagonal(0, 1, 2).sum(-1);
    if (needs & kJacobian) {
      out.jacobian = dy.transpose(1, 2);
      out.time_derivative = ds.select(1, d);
    }
  }
  if (second) out.laplacian = torch::matmul(ddh, wo.t()).sum(1);
  return out;
}

nlohmann::json MlpScore::describe() const {
  auto j = options_.to_json();
  j["type"] = "mlp";
  j["activation"] = "gelu";
  std::int64_t n = 0;
  for (const auto& p : module_->parameters()) n += p.numel();
  j["parameters"] = n;
  return j;
}

PotentialScore::PotentialScore(const OtPotentialOptions& options, std::uint64_t seed) : phi_(options) {
  if (options.pair_basis > 0 || !options.network || options.n_particles > 0)
    throw DomainError("potential score: only network potentials without particles or pair terms");
  phi_->reset_parameters(seed);
}

ScoreEvaluation PotentialScore::evaluate(const torch::Tensor& y, const torch::Tensor& s, unsigned needs) {
  check_inputs(*this, y, s, needs);
  const bool div = (needs & kDivergence) != 0;
  const PotentialDerivatives der = phi_->derivatives(y, s, div);
  ScoreEvaluation out;
  out.score = -der.grad_x;
  if (div) {
    out.divergence = -der.laplacian;
    out.log_density_dt = -der.dt;
  }
  return out;
}

nlohmann::json PotentialScore::describe() const {
  auto j = phi_->options().to_json();
  j["type"] = "potential";
  std::int64_t n = 0;
  for (const auto& p : phi_->parameters()) n += p.numel();
  j["parameters"] = n;
  return j;
}

GaussianScore::GaussianScore(const NoisingSde& sde, Eigen::VectorXd mean, Eigen::VectorXd variance) : sde_(sde) {
  if (mean.size() < 1 || mean.size() != variance.size())
    throw DomainError("Gaussian score: mean and variance must have the same, positive length");
  for (Eigen::Index k = 0; k < variance.size(); ++k)
    if (!(variance[k] > 0.0) || !std::isfinite(mean[k])) throw DomainError("Gaussian score: variances must be > 0");
  mean_ = torch::from_blob(mean.data(), {1, mean.size()}, kF64).clone();
  variance_ = torch::from_blob(variance.data(), {1, variance.size()}, kF64).clone();
}

GaussianScore::Moments GaussianScore::moments(const torch::Tensor& s) const {
  const auto m = sde_.mean_scale(s).unsqueeze(1);
  const auto v = sde_.variance(s).unsqueeze(1);
  // m' = −c m (c the drift coefficient); v' = β e^{−βs} (VP) or g² (VE).
  const double c = sde_.drift_coefficient();
  const auto dm = -c * m;
  const auto dv = sde_.options().kind == NoisingKind::kVariancePreserving
                      ? sde_.options().beta * (1.0 - v)
                      : sde_.diffusion_squared(s).unsqueeze(1);
  Moments out;
  out.mean = m * mean_;
  out.var = m * m * variance_ + v;
  out.mean_dt = dm * mean_;
  out.var_dt = 2.0 * m * dm * variance_ + dv;
  return out;
}

ScoreEvaluation GaussianScore::evaluate(const torch::Tensor& y, const torch::Tensor& s, unsigned needs) {
  check_inputs(*this, y, s, needs);
  const Moments mo = moments(s);
  const auto r = y - mo.mean;
  ScoreEvaluation out;
  out.score = -r / mo.var;
  if (needs & kDivergence) {
    out.divergence = -(1.0 / mo.var).sum(1);
    // ∂_s log η = Σ_i [−½ c'_i / c_i + r_i μ'_i / c_i + ½ r_i² c'_i / c_i²].
    out.log_density_dt =
        (-0.5 * mo.var_dt / mo.var + r * mo.mean_dt / mo.var + 0.5 * r * r * mo.var_dt / (mo.var * mo.var)).sum(1);
  }
  if (needs & kJacobian) {
    out.jacobian = torch::diag_embed(-1.0 / mo.var);
    // ∂_s (−r/c) = μ'/c + r c'/c².
    out.time_derivative = mo.mean_dt / mo.var + r * mo.var_dt / (mo.var * mo.var);
  }
  if (needs & kLaplacian) out.laplacian = torch::zeros_like(y);
  return out;
}

torch::Tensor GaussianScore::log_density(const torch::Tensor& y, const torch::Tensor& s) const {
  const Moments mo = moments(s);
  const auto r = y - mo.mean;
  return (-0.5 * r * r / mo.var - 0.5 * torch::log(2.0 * kPi * mo.var)).sum(1);
}

nlohmann::json GaussianScore::describe() const {
  return {{"type", "gaussian"}, {"dim", dim()}};
}

}  // namespace boltzlab::generators
