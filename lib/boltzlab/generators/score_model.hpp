#pragma once
/// \file score_model.hpp
/// Score models s(y, s) ≈ ∇_y log η(y, s) of a noising SDE (noising.hpp; the seed paper's
/// §4, eqs. 36–37), behind one interface that returns the derivatives the losses and the
/// samplers need, all in closed form (no nested autograd):
///
/// - `MlpScore`: the seed's §7 model, a vector field s: ℝ^d × ℝ → ℝ^d given by an MLP on
///   (y, s) with GELU hidden layers (GELU(a) = a Φ(a), Φ the normal CDF; Hendrycks & Gimpel
///   2016). Derivatives by forward-mode propagation through the layers:
///     ȧ_k = Ẇ h_k (direction k = each input coordinate), ḣ = g'(a) ⊙ ȧ,
///     ḧ_kk = g''(a) ⊙ ȧ_k² + g'(a) ⊙ ä_kk,    g' = Φ + aφ,  g'' = φ (2 − a²),
///   giving the Jacobian ∂s_i/∂y_j, ∂s/∂s, the divergence ∇·s and the Laplacians Δs_i
///   at O(d) times the cost of the forward pass.
/// - `PotentialScore`: s = ∇φ with φ = −Φ the OT-Flow potential of ot_potential.hpp (the
///   seed's §6.1 "learn the log-density", eq. 84): its closed-form ∇Φ, ΔΦ and ∂ₜΦ give
///   the score, its exact divergence and ∂_s φ, so implicit score matching and the
///   scalar HJB residual cost one pass.
/// - `GaussianScore`: the exact score of a Gaussian π = N(μ, diag Σ) under the noising,
///   η(·, s) = N(m μ, m² Σ + v): the known answer the tests check models against.
///
/// Parameters are float64. Models are deterministic given their seed.
#include <cstdint>
#include <memory>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "boltzlab/generators/noising.hpp"
#include "boltzlab/generators/ot_potential.hpp"

namespace boltzlab::generators {

/// What evaluate() must compute besides the score (bit flags).
enum ScoreNeeds : unsigned {
  kScoreOnly = 0,
  kDivergence = 1,  ///< ∇·s (and ∂_s φ for gradient models)
  kJacobian = 2,    ///< ∂s_i/∂y_j and ∂s/∂s
  kLaplacian = 4,   ///< Δs_i for each component
};

/// A score model's outputs at rows y (B×d) and noising times s (B).
struct ScoreEvaluation {
  torch::Tensor score;            ///< B×d
  torch::Tensor divergence;       ///< B: ∇·s (kDivergence)
  torch::Tensor jacobian;         ///< B×d×d: [b, i, j] = ∂s_i/∂y_j (kJacobian)
  torch::Tensor time_derivative;  ///< B×d: ∂s/∂s (kJacobian)
  torch::Tensor laplacian;        ///< B×d: Δs_i (kLaplacian)
  torch::Tensor log_density_dt;   ///< B: ∂_s φ of a gradient model s = ∇φ (kDivergence)
};

/// A score model.
class ScoreField {
 public:
  virtual ~ScoreField() = default;
  virtual int dim() const = 0;
  /// True when s = ∇φ of a scalar φ (then log_density_dt is available, the Jacobian is not).
  virtual bool is_gradient() const = 0;
  /// Which ScoreNeeds this model can compute.
  virtual unsigned supported() const = 0;
  /// \throws DomainError when `needs` asks for what supported() lacks.
  virtual ScoreEvaluation evaluate(const torch::Tensor& y, const torch::Tensor& s, unsigned needs) = 0;
  /// Trainable parameters (empty for analytic scores).
  virtual std::vector<torch::Tensor> parameters() { return {}; }
  /// Architecture as JSON (the summary's "model").
  virtual nlohmann::json describe() const = 0;
  /// Saves / loads the parameters (analytic scores: nothing). \throws IoError.
  virtual void write(torch::serialize::OutputArchive& /*archive*/) const {}
  virtual void read(torch::serialize::InputArchive& /*archive*/) {}
};

/// Architecture of the MLP score.
struct MlpScoreOptions {
  int dim = 2;                      ///< d
  std::vector<int> hidden = {32, 32};  ///< widths of the GELU hidden layers (the seed's §7: 2 × 32)
  void validate() const;
  nlohmann::json to_json() const;
  static MlpScoreOptions from_json(const nlohmann::json& j);
};

/// The vector-field score s(y, s) = W_L GELU(… GELU(W_1 (y, s) + b_1) …) + b_L.
class MlpScore final : public ScoreField {
 public:
  /// Layers initialized nn.Linear-style, uniform(±1/√fan_in), from `seed`.
  MlpScore(const MlpScoreOptions& options, std::uint64_t seed);
  int dim() const override { return options_.dim; }
  bool is_gradient() const override { return false; }
  unsigned supported() const override { return kDivergence | kJacobian | kLaplacian; }
  ScoreEvaluation evaluate(const torch::Tensor& y, const torch::Tensor& s, unsigned needs) override;
  std::vector<torch::Tensor> parameters() override { return module_->parameters(); }
  nlohmann::json describe() const override;
  void write(torch::serialize::OutputArchive& archive) const override { module_->save(archive); }
  void read(torch::serialize::InputArchive& archive) override { module_->load(archive); }
  const MlpScoreOptions& options() const { return options_; }

 private:
  /// Score and divergence of a net with one or two hidden layers by the trace of the Jacobian's
  /// factors (J = W₃ G₂ W₂ G₁ W₁: tr J = g₂ᵀ (W₂ ⊙ (W₁W₃)ᵀ) g₁), O(h₁h₂) per row instead of O(d h₁h₂).
  ScoreEvaluation divergence_by_trace(const torch::Tensor& y, const torch::Tensor& s) const;

  MlpScoreOptions options_;
  std::shared_ptr<torch::nn::Module> module_;
  std::vector<torch::Tensor> weight_, bias_;  // layer l: n_out × n_in, n_out
};

/// s = ∇φ, φ = −Φ(y, s) of the OT-Flow potential (time input = noising time).
class PotentialScore final : public ScoreField {
 public:
  /// `options.dim` is d; pair terms and particle layouts are refused (DomainError).
  PotentialScore(const OtPotentialOptions& options, std::uint64_t seed);
  int dim() const override { return phi_->options().dim; }
  bool is_gradient() const override { return true; }
  unsigned supported() const override { return kDivergence; }
  ScoreEvaluation evaluate(const torch::Tensor& y, const torch::Tensor& s, unsigned needs) override;
  std::vector<torch::Tensor> parameters() override { return phi_->parameters(); }
  nlohmann::json describe() const override;
  void write(torch::serialize::OutputArchive& archive) const override { phi_->save(archive); }
  void read(torch::serialize::InputArchive& archive) override { phi_->load(archive); }
  OtPotential& potential() { return phi_; }

 private:
  OtPotential phi_;
};

/// The exact score of π = N(μ, diag Σ) noised by `sde`: η(·, s) = N(m(s) μ, m(s)² Σ + v(s)).
class GaussianScore final : public ScoreField {
 public:
  GaussianScore(const NoisingSde& sde, Eigen::VectorXd mean, Eigen::VectorXd variance);
  int dim() const override { return static_cast<int>(mean_.size(1)); }
  bool is_gradient() const override { return true; }
  unsigned supported() const override { return kDivergence | kJacobian | kLaplacian; }
  ScoreEvaluation evaluate(const torch::Tensor& y, const torch::Tensor& s, unsigned needs) override;
  nlohmann::json describe() const override;
  /// log η(y, s) (B).
  torch::Tensor log_density(const torch::Tensor& y, const torch::Tensor& s) const;
  /// Per-coordinate mean m μ and variance c = m² Σ + v of η(·, s) (each B×d), and their
  /// s-derivatives.
  struct Moments {
    torch::Tensor mean, var, mean_dt, var_dt;
  };
  Moments moments(const torch::Tensor& s) const;

 private:
  NoisingSde sde_;
  torch::Tensor mean_, variance_;  // 1×d
};

}  // namespace boltzlab::generators
