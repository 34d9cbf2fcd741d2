#include "boltzlab/generators/score_sampler.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/generators/target_bridge.hpp"

namespace boltzlab::generators {

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

/// Standard normals of rows `first`.. of a chunk, each row from its own stream.
torch::Tensor normals(std::vector<Rng>& rngs, int d) {
  auto out = torch::empty({static_cast<std::int64_t>(rngs.size()), d}, kF64);
  double* p = out.data_ptr<double>();
  for (std::size_t i = 0; i < rngs.size(); ++i)
    for (int k = 0; k < d; ++k) p[i * static_cast<std::size_t>(d) + static_cast<std::size_t>(k)] = rngs[i].normal();
  return out;
}

/// Runs `body(first, count)` over chunks of rows as oneTBB tasks, without gradients.
template <class Body>
void for_each_chunk(std::int64_t n, std::int64_t chunk, Body&& body) {
  if (chunk < 1) throw DomainError("score sampler: chunk must be ≥ 1");
  const std::int64_t chunks = (n + chunk - 1) / chunk;
  for_each_index(static_cast<std::size_t>(chunks), [&](std::size_t c) {
    torch::NoGradGuard no_grad;
    const std::int64_t first = static_cast<std::int64_t>(c) * chunk;
    body(first, std::min(chunk, n - first));
  });
}

/// RK4 of dy/ds = −c y − ½ g² s_θ(y, s) with dℓ/ds = c d + ½ g² ∇·s_θ from s0 to s1.
std::pair<torch::Tensor, torch::Tensor> integrate_flow(ScoreField& model, const NoisingSde& sde, torch::Tensor y,
                                                       double s0, double s1, int steps) {
  const double c = sde.drift_coefficient();
  const double d = static_cast<double>(y.size(1));
  const double h = (s1 - s0) / steps;
  auto ell = torch::zeros({y.size(0)}, kF64);
  auto rhs = [&](const torch::Tensor& yy, double s) {
    const ScoreEvaluation e = model.evaluate(yy, torch::full({yy.size(0)}, s, kF64), kDivergence);
    const double g2 = sde.diffusion_squared(s);
    return std::make_pair(-c * yy - 0.5 * g2 * e.score, c * d + 0.5 * g2 * e.divergence);
  };
  for (int k = 0; k < steps; ++k) {
    const double s = s0 + k * h;
    const auto [v1, l1] = rhs(y, s);
    const auto [v2, l2] = rhs(y + 0.5 * h * v1, s + 0.5 * h);
    const auto [v3, l3] = rhs(y + 0.5 * h * v2, s + 0.5 * h);
    const auto [v4, l4] = rhs(y + h * v3, s + h);
    y = y + (h / 6.0) * (v1 + 2.0 * v2 + 2.0 * v3 + v4);
    ell = ell + (h / 6.0) * (l1 + 2.0 * l2 + 2.0 * l3 + l4);
  }
  return {y, ell};
}

void check_steps(int steps, const char* what) {
  if (steps < 1) throw ConfigError(std::string(what) + " must be ≥ 1");
}

}  // namespace

void ReverseSdeOptions::validate() const {
  check_steps(steps, "reverse SDE steps");
  if (corrector_steps < 0) throw ConfigError("corrector steps must be ≥ 0");
  if (!(std::isfinite(snr) && snr > 0.0)) throw ConfigError("corrector snr must be finite and > 0");
}

RowMatrix sample_reverse_sde(ScoreField& model, const NoisingSde& sde, std::int64_t n, std::uint64_t seed,
                             const ReverseSdeOptions& options, std::int64_t chunk) {
  options.validate();
  const int d = model.dim();
  RowMatrix out(n, d);
  const double c = sde.drift_coefficient();
  const double eps = sde.options().t_min, horizon = sde.horizon();
  const double h = (horizon - eps) / options.steps;
  for_each_chunk(n, chunk, [&](std::int64_t first, std::int64_t m) {
    std::vector<Rng> rngs;
    for (std::int64_t i = 0; i < m; ++i) rngs.push_back(stream_for(seed, static_cast<std::uint64_t>(first + i)));
    auto y = std::sqrt(sde.prior_variance()) * normals(rngs, d);
    for (int k = 0; k < options.steps; ++k) {
      const double s = horizon - k * h;
      const double g2 = sde.diffusion_squared(s);
      const auto score = model.evaluate(y, torch::full({m}, s, kF64), kScoreOnly).score;
      y = y + (c * y + g2 * score) * h + std::sqrt(g2 * h) * normals(rngs, d);
      const auto level = torch::full({m}, s - h, kF64);
      const double mean_scale = sde.mean_scale(s - h);
      const double delta = 2.0 * options.snr * options.snr * (mean_scale * mean_scale + sde.variance(s - h));
      for (int j = 0; j < options.corrector_steps; ++j) {
        const auto sc = model.evaluate(y, level, kScoreOnly).score;
        y = y + delta * sc + std::sqrt(2.0 * delta) * normals(rngs, d);
      }
    }
    out.middleRows(first, m) = to_matrix(y.contiguous());
  });
  return out;
}

ScoreSamples sample_probability_flow(ScoreField& model, const NoisingSde& sde, std::int64_t n, std::uint64_t seed,
                                     int steps, std::int64_t chunk) {
  check_steps(steps, "probability-flow steps");
  const int d = model.dim();
  ScoreSamples out{RowMatrix(n, d), Eigen::VectorXd(n)};
  for_each_chunk(n, chunk, [&](std::int64_t first, std::int64_t m) {
    std::vector<Rng> rngs;
    for (std::int64_t i = 0; i < m; ++i) rngs.push_back(stream_for(seed, static_cast<std::uint64_t>(first + i)));
    const auto y_t = std::sqrt(sde.prior_variance()) * normals(rngs, d);
    const auto [y, ell] = integrate_flow(model, sde, y_t, sde.horizon(), sde.options().t_min, steps);
    out.x.middleRows(first, m) = to_matrix(y.contiguous());
    out.log_q.segment(first, m) = to_vector(sde.prior_log_density(y_t) + ell);
  });
  return out;
}

Eigen::VectorXd probability_flow_log_q(ScoreField& model, const NoisingSde& sde, const RowMatrix& x, int steps,
                                       std::int64_t chunk) {
  check_steps(steps, "probability-flow steps");
  if (x.cols() != model.dim()) throw DomainError("probability-flow log q: points must have the model's dimension");
  Eigen::VectorXd out(x.rows());
  for_each_chunk(x.rows(), chunk, [&](std::int64_t first, std::int64_t m) {
    const auto y0 = to_tensor(RowMatrix(x.middleRows(first, m)));
    const auto [y, ell] = integrate_flow(model, sde, y0, sde.options().t_min, sde.horizon(), steps);
    out.segment(first, m) = to_vector(sde.prior_log_density(y) - ell);
  });
  return out;
}

}  // namespace boltzlab::generators
