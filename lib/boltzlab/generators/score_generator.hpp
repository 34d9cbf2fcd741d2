#pragma once
/// \file score_generator.hpp
/// A score-based generator in a target's coordinates: a score model (score_model.hpp) of a
/// noising SDE (noising.hpp) on standardized coordinates y, x = μ + σ ⊙ y (μ, σ the data's
/// per-coordinate mean and standard deviation). Samples come from the reverse SDE (no
/// density) or from the probability-flow ODE with exact log q (score_sampler.hpp):
///   log q(x) = log q_y((x − μ)/σ) − Σ_k log σ_k.
/// Trained on samples of π by score_matching.hpp. Saved as a LibTorch archive with its own
/// format version ("score_format_version"), the options (JSON), μ, σ and the parameters,
/// signed by model_file.hpp's record like every model.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/model_file.hpp"
#include "boltzlab/generators/noising.hpp"
#include "boltzlab/generators/score_matching.hpp"
#include "boltzlab/generators/score_model.hpp"
#include "boltzlab/generators/score_sampler.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab::generators {

inline constexpr int kScoreModelFormatVersion = 1;

/// How samples are drawn.
enum class ScoreSampler {
  kProbabilityFlow,  ///< PF-ODE with exact log q (reweightable)
  kReverseSde,       ///< reverse SDE (Euler–Maruyama, optional corrector); no density
};

/// Architecture, noising and sampling of a score generator.
struct ScoreGeneratorOptions {
  std::string model = "mlp";  ///< "mlp" (vector field) or "potential" (s = ∇φ, OT-Flow potential)
  MlpScoreOptions mlp;        ///< with model "mlp" (hidden widths; dim from the target)
  OtPotentialOptions potential;  ///< with model "potential" (width, layers; dim from the target)
  NoisingOptions noising;
  ScoreSampler sampler = ScoreSampler::kProbabilityFlow;
  int flow_steps = 100;       ///< RK4 steps of the PF-ODE
  ReverseSdeOptions reverse;  ///< Euler–Maruyama steps, corrector
  int dim() const { return model == "mlp" ? mlp.dim : potential.dim; }
  /// Reads the keys of a "generator.score" section: "model", "hidden", "width", "layers",
  /// "noising", "beta", "sigma_min", "sigma_max", "time", "t_min", "sampler"
  /// ("probability_flow" | "reverse_sde"), "flow_steps", "sde_steps", "corrector_steps", "snr";
  /// other keys are left to the caller. `dim` is the target's dimension.
  void read(JsonReader& r, int dim);
  /// \throws ConfigError naming the field.
  void validate() const;
  nlohmann::json to_json() const;
  static ScoreGeneratorOptions from_json(const nlohmann::json& j);
};

class ScoreGenerator {
 public:
  /// A fresh model (parameters from `seed`), identity standardization.
  ScoreGenerator(const ScoreGeneratorOptions& options, std::uint64_t seed);

  const ScoreGeneratorOptions& options() const { return options_; }
  int dim() const { return options_.dim(); }
  ScoreField& field() { return *field_; }
  const NoisingSde& sde() const { return sde_; }

  /// μ, σ from the data (per-coordinate mean and standard deviation; σ ≥ 1e-12).
  void standardize_from_data(const RowMatrix& data);
  const Eigen::VectorXd& shift() const { return shift_; }
  const Eigen::VectorXd& scale() const { return scale_; }

  /// Score matching on `data` (target coordinates, standardized inside).
  ScoreTrainHistory train(const RowMatrix& data, const ScoreTrainOptions& options);

  /// n samples with log q by the probability-flow ODE (Rng streams (seed, i)).
  GeneratedSamples sample(std::int64_t n, std::uint64_t seed);
  /// n samples of the reverse SDE (no density).
  RowMatrix sample_reverse_sde(std::int64_t n, std::uint64_t seed);
  /// log q(x) of the probability-flow model.
  Eigen::VectorXd log_q(const RowMatrix& x);

  /// Saves options, μ, σ and parameters, then the record beside the file (model_file.hpp).
  void save(const std::filesystem::path& path, const nlohmann::json& metadata = {},
            const std::optional<PotentialIdentity>& potential = std::nullopt) const;
  /// Verifies the file against its record, then reads it. \throws IoError or ConfigError.
  static ScoreGenerator load(const std::filesystem::path& path, nlohmann::json* metadata = nullptr);
  /// True when the (verified) archive bytes hold a score generator rather than a flow.
  static bool is_score_model(const std::filesystem::path& path);

 private:
  RowMatrix to_model_space(const RowMatrix& x) const;
  RowMatrix from_model_space(const RowMatrix& y) const;

  ScoreGeneratorOptions options_;
  NoisingSde sde_;
  std::unique_ptr<ScoreField> field_;
  Eigen::VectorXd shift_, scale_;
};

}  // namespace boltzlab::generators
