#pragma once
/// \file noising.hpp
/// The forward (noising) SDE of a score-based generative model, in the seed paper's
/// notation (§4, eq. 34; noising time s ∈ [0, T]):
///
///   dY = −f(Y, s) ds + g(s) dW,   Y(0) ~ π,
///
/// with two families, both with the Gaussian transition Y(s) | Y(0) = y₀ ~ N(m(s) y₀, v(s) I):
///   - variance preserving (Ornstein–Uhlenbeck, the seed's §7 with β = 1): f = β y / 2, g = √β,
///       m(s) = e^{−βs/2},  v(s) = 1 − e^{−βs},  prior N(0, I);
///   - variance exploding (Song et al., "Score-based generative modeling through SDEs", ICLR 2021):
///       f = 0,  v(s) = σ_min² ((σ_max/σ_min)^{2s/T} − 1),  g(s)² = dv/ds,  m = 1,  prior N(0, v(T) I).
///
/// The generative (reverse) dynamics of eq. 35 run in t = T − s:
///   dX = [f(X) + g² ∇log η(X, T − t)] dt + g dW,
/// and the probability-flow ODE (Thm 4.3) dX/dt = f(X) + ½ g² ∇log η(X, T − t).
/// All time arguments of this class are noising times s.
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "boltzlab/io/config.hpp"

namespace boltzlab::generators {

enum class NoisingKind { kVariancePreserving, kVarianceExploding };

/// Parameters of the noising SDE.
struct NoisingOptions {
  NoisingKind kind = NoisingKind::kVariancePreserving;
  double beta = 1.0;        ///< VP: f = β y / 2, g = √β
  double sigma_min = 0.01;  ///< VE: smallest noise scale
  double sigma_max = 10.0;  ///< VE: largest noise scale (≈ the data's diameter)
  double time = 3.0;        ///< T: horizon (the seed's §7: 3)
  double t_min = 1e-3;      ///< ε: smallest noising time of training and the end of sampling

  /// \throws ConfigError naming the field (β, σ_min < σ_max, 0 < ε < T).
  void validate() const;
  nlohmann::json to_json() const;
  static NoisingOptions from_json(const nlohmann::json& j);
  /// Reads "noising" ("vp" | "ve"), "beta", "sigma_min", "sigma_max", "time", "t_min"
  /// of a "generator" section; other keys are left to the caller.
  void read(JsonReader& r);
};

/// The noising SDE (time-homogeneous drift; all functions are of the noising time s).
class NoisingSde {
 public:
  explicit NoisingSde(const NoisingOptions& options);
  const NoisingOptions& options() const { return options_; }
  double horizon() const { return options_.time; }

  /// m(s) and v(s) of the transition N(m y₀, v I), elementwise on a tensor of times.
  torch::Tensor mean_scale(const torch::Tensor& s) const;
  torch::Tensor variance(const torch::Tensor& s) const;
  double variance(double s) const;
  double mean_scale(double s) const;
  /// g(s)².
  torch::Tensor diffusion_squared(const torch::Tensor& s) const;
  double diffusion_squared(double s) const;
  /// The coefficient c of the linear drift f = c·y (β/2 for VP, 0 for VE).
  double drift_coefficient() const;
  /// Y(s) = m(s) y₀ + √v(s) ε for rows y₀ (B×d), times s (B) and noise ε (B×d).
  torch::Tensor perturb(const torch::Tensor& y0, const torch::Tensor& s, const torch::Tensor& noise) const;
  /// Variance of the prior N(0, σ² I) the generative dynamics start from (1 for VP, v(T) for VE).
  double prior_variance() const;
  /// log N(y; 0, prior_variance I) of rows y (B).
  torch::Tensor prior_log_density(const torch::Tensor& y) const;

 private:
  NoisingOptions options_;
  double log_ratio_ = 0.0;  // VE: log(σ_max/σ_min)
};

}  // namespace boltzlab::generators
