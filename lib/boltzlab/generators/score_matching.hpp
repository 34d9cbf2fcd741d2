#pragma once
/// \file score_matching.hpp
/// Training a score model (score_model.hpp) on samples of π: the score-matching game of the
/// seed paper (Thm 4.1) with its HJB regularizers (§6.1, §7). On a mini-batch of data y₀,
/// noising times s ~ U[ε, T] and noise ξ ~ N(0, I), with y = m(s) y₀ + √v(s) ξ ~ η(·, s):
///
///   J(θ) = α₀ · matching + α₁ · residual + α₂ · terminal,
///
///   matching  = E[w(s) (½|s_θ(y, s)|² + ∇·s_θ(y, s))]            implicit SM (eq. 37), or
///             = E[w(s) ½|s_θ(y, s) + ξ/√v(s)|²]                     denoising SM (Vincent 2011),
///   residual  = E[Σ_i |r_i(y, s)|^p]     (vector models, eq. 92 generalized to the SDE of noising.hpp)
///   r_i = ∂_s s_i − c s_i − c Σ_j y_j ∂_i s_j − g² Σ_j s_j ∂_i s_j − ½ g² Δs_i      (f = c y),
///             = E[|∂_s φ − c y·∇φ − ½ g² |∇φ|² − c d − ½ g² Δφ|^p]   (gradient models s = ∇φ, eq. 84),
///   terminal  = E_π[|s_θ(y₀, 0)|² + 2 ∇·s_θ(y₀, 0)]                 (eqs. 83, 92: the terminal
///               condition of the HJB, an implicit score matching of π itself).
///
/// w(s) is g(s)² (the seed's eqs. 36–37; 1 for the OU process of §7) or v(s) (the
/// "noise-variance" weighting of Song et al. 2021), chosen by `weighting`. Implicit and
/// denoising matching differ by a θ-independent constant (Vincent 2011), which the tests
/// check. α₀ = 0 is the seed's PINN case (§7.1, Fig. 3): the PDE residual and its terminal
/// condition alone determine the score.
///
/// The r_i above is the gradient of the HJB of eq. 40 written for η = e^φ,
/// ∂_s φ = d c + c y·∇φ + ½ g² (Δφ + |∇φ|²), with Δ(∂_i φ) = Δs_i (the seed's eq. 83 form).
///
/// Mini-batches are drawn from Rng stream (seed, iteration): results do not depend on the
/// thread count. Adam with a constant learning rate by default (the seed's §7), optional
/// cosine decay (lr_final_ratio < 1) and gradient-norm clipping.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/generators/noising.hpp"
#include "boltzlab/generators/score_model.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab::generators {

enum class ScoreObjective { kImplicit, kDenoising };
enum class ScoreWeighting { kDiffusion, kVariance };

/// The weights of J(θ) above.
struct ScoreLossOptions {
  ScoreObjective objective = ScoreObjective::kImplicit;
  ScoreWeighting weighting = ScoreWeighting::kDiffusion;
  double alpha0 = 1.0;  ///< score matching
  double alpha1 = 0.0;  ///< HJB residual
  double alpha2 = 0.0;  ///< terminal condition
  int p = 2;            ///< exponent of the residual (1 or 2)
  /// \throws ConfigError naming the field.
  void validate() const;
  nlohmann::json to_json() const;
};

/// The terms of J on one mini-batch (scalars; `total` carries the gradient).
struct ScoreLossTerms {
  torch::Tensor total;
  double matching = 0.0, residual = 0.0, terminal = 0.0;
};

/// J(θ) on the batch y₀ (B×d), s (B), ξ (B×d).
ScoreLossTerms score_loss(ScoreField& model, const NoisingSde& sde, const torch::Tensor& y0, const torch::Tensor& s,
                          const torch::Tensor& noise, const ScoreLossOptions& options);

/// The matching term alone (per row, B), e.g. to compare implicit and denoising matching.
torch::Tensor score_matching_terms(ScoreField& model, const NoisingSde& sde, const torch::Tensor& y0,
                                   const torch::Tensor& s, const torch::Tensor& noise, ScoreObjective objective,
                                   ScoreWeighting weighting);

/// The HJB residual per row (B): Σ_i |r_i|^p for vector models, |r|^p for gradient models.
torch::Tensor hjb_residual(ScoreField& model, const NoisingSde& sde, const torch::Tensor& y, const torch::Tensor& s,
                           int p);

/// One mini-batch: data rows y₀ (B×d), noising times s ~ U[ε, T] (B), noise ξ (B×d).
struct ScoreBatch {
  torch::Tensor y0, s, noise;
};

/// The mini-batch train_score() uses at iteration `it`: all draws from Rng stream (seed, it).
ScoreBatch draw_score_batch(const RowMatrix& data, const NoisingSde& sde, int batch, std::uint64_t seed, int it);

/// Training options of a score model.
struct ScoreTrainOptions {
  ScoreLossOptions loss;
  int iterations = 10000;
  int batch_size = 64;            ///< the seed's §7
  double learning_rate = 1e-3;    ///< the seed's §7
  double lr_final_ratio = 1.0;    ///< cosine decay to learning_rate·ratio (1: constant)
  double clip_grad_norm = 0.0;    ///< ≤ 0: none
  std::uint64_t seed = 0;
  int log_every = 100;            ///< history entries are means over this many steps
  bool progress = true;
  /// Reads the loss keys "objective" ("implicit" | "denoising"), "weighting" ("diffusion" |
  /// "variance"), "alpha0", "alpha1", "alpha2", "p".
  void read_loss(JsonReader& r);
  /// Reads the schedule keys "iterations", "batch_size", "learning_rate", "lr_final_ratio",
  /// "clip_grad_norm".
  void read_schedule(JsonReader& r);
  void validate() const;
  nlohmann::json to_json() const;
};

/// Training curves (means over log_every steps).
struct ScoreTrainHistory {
  std::vector<double> iteration, loss, matching, residual, terminal;
  int iterations_done = 0;
  int skipped = 0;  ///< steps with a non-finite loss or gradient (not applied)
  double wall_seconds = 0.0;
  nlohmann::json to_json() const;
};

/// Trains `model` on rows of `data` (N×d samples of π). \throws ConfigError, DomainError.
ScoreTrainHistory train_score(ScoreField& model, const NoisingSde& sde, const RowMatrix& data,
                              const ScoreTrainOptions& options);

}  // namespace boltzlab::generators
