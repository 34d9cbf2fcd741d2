#include "boltzlab/generators/velocity_field.hpp"

#include <cmath>
#include <string>

#include "boltzlab/core/error.hpp"

namespace boltzlab::generators {

namespace {

MlpScoreOptions mlp_options(const FreeVelocityOptions& o) {
  o.validate();
  MlpScoreOptions m;
  m.dim = o.dim;
  m.hidden = o.hidden;
  return m;
}

// v = s(|w|) ŵ with its Jacobian J_v = f J + (s' − f) ŵ ŵᵀ J (file comment).
void squash(torch::Tensor& w, torch::Tensor& jac, double c) {
  const auto n = w.norm(2, {1}, true);                       // B×1
  const auto safe = torch::clamp_min(n, 1e-300);
  const auto th = torch::tanh(n / c);
  const auto f = torch::where(n > 1e-12, c * th / safe, torch::ones_like(n));  // s/n
  const auto ds = 1.0 - th * th;                              // s'(n)
  const auto unit = w / safe;
  const auto ut_j = torch::matmul(unit.unsqueeze(1), jac);    // B×1×d: ŵᵀ J
  jac = f.unsqueeze(2) * jac + (ds - f).unsqueeze(2) * unit.unsqueeze(2) * ut_j;
  w = f * w;
}

}  // namespace

void FreeVelocityOptions::validate() const {
  if (dim < 1) throw ConfigError("velocity: dim must be >= 1");
  if (hidden.empty()) throw ConfigError("generator.velocity_hidden: needs at least one hidden layer");
  for (const int h : hidden)
    if (h < 1) throw ConfigError("generator.velocity_hidden: widths must be >= 1, got " + std::to_string(h));
  if (!(bound >= 0.0) || !std::isfinite(bound))
    throw ConfigError("generator.velocity_bound is " + std::to_string(bound) + ", but must be finite and >= 0");
  if (n_particles > 0 && n_particles * spatial_dim != dim)
    throw ConfigError("velocity: particles x spatial_dim must equal dim");
}

FreeVelocity::FreeVelocity(const FreeVelocityOptions& options, std::uint64_t seed)
    : options_(options), mlp_(mlp_options(options), seed) {
  torch::NoGradGuard ng;
  auto params = mlp_.parameters();
  for (std::size_t k = params.size() - 2; k < params.size(); ++k) params[k].mul_(0.1);  // output layer
}

VelocityRates FreeVelocity::evaluate(const torch::Tensor& x, double t) {
  const bool need_jacobian = options_.bound > 0.0 || options_.n_particles > 0;
  const auto times = torch::full({x.size(0)}, t, x.options());
  const ScoreEvaluation e = mlp_.evaluate(x, times, need_jacobian ? (kJacobian | kDivergence) : kDivergence);
  VelocityRates r;
  if (!need_jacobian) {
    r.v = e.score;
    r.divergence = e.divergence;
    return r;
  }
  torch::Tensor w = e.score, jac = e.jacobian;  // jac[b, i, j] = ∂v_i/∂x_j
  if (options_.bound > 0.0) squash(w, jac, options_.bound);
  r.divergence = jac.diagonal(0, 1, 2).sum(1);
  if (options_.n_particles > 0) {
    const int n = options_.n_particles, s = options_.spatial_dim;
    const auto b = x.size(0);
    const auto blocks = jac.reshape({b, n, s, n, s}).diagonal(0, 2, 4);  // B×n×n×s: ∂v_{i,a}/∂x_{j,a}
    r.divergence = r.divergence - blocks.sum({1, 2, 3}) / static_cast<double>(n);
    const auto wv = w.reshape({b, n, s});
    w = (wv - wv.mean(1, true)).reshape({b, n * s});
  }
  r.v = w;
  return r;
}

}  // namespace boltzlab::generators
