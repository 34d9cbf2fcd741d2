#pragma once
/// \file bridge_sampler.hpp
/// The Schrödinger-bridge rows of the seed's Table 3 (§4.5) as samplers of an unnormalized
/// π ∝ exp(−u), trained on the energy alone. The game:
///
///   M: ρ_T = π,   I = 0 (generalized bridge: I(x, ρ) below),   L = ½|v|²,
///   dynamics dx = σ v dt + σ dW from x(0) = 0,   optimal v* = −σ∇U,
///
/// i.e. the bridge from δ₀ to π with the Brownian reference dX = σ dW on [0, T]: the
/// Schrödinger–Föllmer process (Föllmer 1985; Dai Pra, Appl. Math. Optim. 23, 313 (1991)),
/// whose drift solves a stochastic control problem. As a learned control this is the path
/// integral sampler (Zhang & Chen, ICLR 2022): with the reference's terminal law
/// N(0, σ²T I), the bridge minimizes over v
///
///   J(v) = E[ ∫₀ᵀ ½|v|² dt + ũ(x_T) + log N(x_T; 0, σ²T I) ] = KL(P^v ‖ P^π) − log Z,
///
/// P^π the reference path measure reweighted by π(x_T)/N(x_T). Here v = −∇Φ(x, t) with Φ the
/// OT-Flow potential (ot_potential.hpp), which builds the optimal form in.
///
/// Discretization: K Euler–Maruyama steps, h = T/K, x_{k+1} = x_k + σ v_k h + σ√h ξ_k. The
/// ratio of the reference chain's Gaussian transition to the controlled one's is exactly
/// exp(−½|v_k|² h − v_k·ξ_k √h), and the reference chain ends in N(0, σ²T I) exactly, so
///
///   log w = −u(x_K) − log N(x_K; 0, σ²T I) − Σ_k (½|v_k|² h + v_k·ξ_k √h)
///
/// is an exact importance log-weight of the discrete path for any v: E[e^{log w}] = Z, the
/// same estimators as every generator (ESS, log Z, PSIS). The training loss drops the
/// Girsanov term Σ v_k·ξ_k √h, whose expectation is zero for every θ (ξ_k is independent of
/// v_k), and uses the cut energy ũ (target_bridge.hpp).
///
/// Generalized bridge (Table 3's I(x, ρ); Liu et al., "Deep generalized Schrödinger bridge",
/// NeurIPS 2022): the running cost gains α·∫ I(x_t, ρ_t) dt with the mean-field repulsion
/// I(x, ρ) = E_{y∼ρ} exp(−|x − y|²/(2ℓ²)), estimated over the batch (other rows). It only
/// shapes the training paths (it spreads them, against mode collapse); the weights stay those
/// of the plain bridge above, so they remain exact.
///
/// Random streams: row i of a call with seed s draws its K·d normals from
/// stream_for(s ^ kBridgeSeedMix, first_index + i), so samples do not depend on the thread
/// count or on chunking.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/generators/model_file.hpp"
#include "boltzlab/generators/ot_potential.hpp"
#include "boltzlab/generators/target_bridge.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab::generators {

/// Stream mix of the bridge's Brownian increments.
inline constexpr std::uint64_t kBridgeSeedMix = 0xB5297A4D3F84D5B5ULL;
inline constexpr int kBridgeModelFormatVersion = 1;

/// The bridge's game and discretization.
struct BridgeOptions {
  OtPotentialOptions potential;     ///< Φ (dim from the target)
  double sigma = 1.0;               ///< σ of dx = σ v dt + σ dW (target units)
  double time = 1.0;                ///< T
  int steps = 50;                   ///< K Euler–Maruyama steps
  double alpha_interaction = 0.0;   ///< α of the generalized bridge's I(x, ρ) (0: plain bridge)
  double interaction_length = 1.0;  ///< ℓ of the repulsion kernel
  /// Reads "sigma", "time", "steps", "width", "layers", "alpha_interaction",
  /// "interaction_length" of a "generator.bridge" section; `dim` is the target's.
  void read(JsonReader& r, int dim);
  /// \throws ConfigError naming the field.
  void validate() const;
  nlohmann::json to_json() const;
  static BridgeOptions from_json(const nlohmann::json& j);
};

/// Adam on J(v) (+ the interaction), batches of fresh paths.
struct BridgeTrainOptions {
  int iterations = 1000;
  int batch_size = 256;
  double learning_rate = 2e-3;
  double lr_final_ratio = 0.05;  ///< cosine schedule to learning_rate·ratio
  double clip_grad_norm = 10.0;  ///< ≤ 0: none
  EnergyCut energy_cut;
  std::uint64_t seed = 0;
  bool progress = false;
  /// \throws ConfigError naming the field.
  void validate() const;
  nlohmann::json to_json() const;
};

/// Per-iteration record of a training.
struct BridgeHistory {
  std::vector<double> loss;       ///< J on the batch (with the interaction)
  std::vector<double> batch_ess;  ///< Kish ESS fraction of the batch's exact weights
  std::size_t energy_evaluations = 0, non_finite = 0, skipped = 0;
  int iterations_done = 0;
  double wall_seconds = 0.0;
  nlohmann::json to_json() const;
};

/// Terminal states of simulated paths and their path terms (each B).
struct BridgePaths {
  torch::Tensor x;            ///< B×d: x_K
  torch::Tensor running;      ///< Σ ½|v_k|² h
  torch::Tensor girsanov;     ///< Σ v_k·ξ_k √h
  torch::Tensor interaction;  ///< α Σ I(x_k, ρ_k) h (zeros without it)
};

/// Samples with their exact log-weights: log w = −u(x) + log_path.
struct BridgeDraws {
  RowMatrix x;
  Eigen::VectorXd log_path;  ///< −log N(x; 0, σ²T I) − Σ (½|v|² h + v·ξ √h)
};

class BridgeSampler {
 public:
  /// Φ's parameters from `seed`. \throws ConfigError from options.validate().
  BridgeSampler(const BridgeOptions& options, std::uint64_t seed);
  const BridgeOptions& options() const { return options_; }
  int dim() const { return options_.potential.dim; }

  /// Paths of rows first_index … first_index + n − 1 of `seed` (differentiable in Φ's
  /// parameters unless under a NoGradGuard); the interaction only when `with_interaction`.
  BridgePaths simulate(std::int64_t n, std::uint64_t seed, std::int64_t first_index, bool with_interaction);
  /// The control v(x, t) = −∇Φ(x, t) (B×d); the drift is σ v.
  torch::Tensor control(const torch::Tensor& x, double t);
  /// log N(x; 0, σ²T I) per row.
  torch::Tensor reference_log_density(const torch::Tensor& x) const;

  /// Adam on J; energies through the target bridge (oneTBB-parallel).
  BridgeHistory train(const Target& target, const BridgeTrainOptions& options);
  /// n samples with log_path (chunks of `chunk` rows on oneTBB workers).
  BridgeDraws sample(std::int64_t n, std::uint64_t seed, std::int64_t chunk = 256);

  /// Options and Φ, then the record beside the file (model_file.hpp).
  void save(const std::filesystem::path& path, const nlohmann::json& metadata,
            const std::optional<PotentialIdentity>& potential) const;
  /// \throws IoError / ConfigError naming the file.
  static BridgeSampler load(const std::filesystem::path& path, nlohmann::json* metadata = nullptr);
  /// True when the (verified) archive holds a bridge sampler.
  static bool is_bridge_model(const std::filesystem::path& path);

 private:
  BridgeOptions options_;
  OtPotential phi_;
};

}  // namespace boltzlab::generators
