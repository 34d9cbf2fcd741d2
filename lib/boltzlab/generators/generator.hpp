#pragma once
/// \file generator.hpp
/// The OT-Boltzmann generator model: a base density ρ₀, an affine standardization
/// and the OT-Flow CNF with v = −∇ₓΦ on t ∈ [0, T] (seed paper §6.2, eq. 85):
///
///   z ~ ρ₀ = N(0, I) in the flow space,  y = z(T) by the CNF,  x = μ + σ ⊙ y,
///   log q(x) = log ρ₀(z) − ℓ(0→T) − Σ_k log σ_k,
///
/// with ℓ the integrated divergence of cnf.hpp. Particle systems (targets with a
/// particle layout) live on the centre-of-mass-free subspace of dimension
/// (n−1)·s (target.hpp convention): z is projected onto it, Φ is translation
/// invariant, σ is isotropic and μ = 0, and densities refer to that subspace.
///
/// Flows on ℝ^{d−p} × T^p (torsions): with a torus base (set_base, a BaseDensity:
/// standard normal on the non-periodic columns, uniform or von Mises on the p periodic
/// ones) and a potential Φ that is 2π-periodic in those columns
/// (OtPotentialOptions::periodic, the network sees (cos, sin) features), the velocity
/// v = −∇Φ is 2π-periodic there, so the time-T flow map F commutes with 2π shifts:
/// F(z + 2πk) = F(z) + 2πk (k ∈ ℤ^p on the periodic columns). F therefore descends to a
/// diffeomorphism of the torus with the same log-det, and the density of the wrapped
/// samples w(F(z)) (w: wrap into [−π, π)) is exactly log ρ₀(z) − ℓ(0→T): any preimage
/// z + 2πk of a point has the same base density (ρ₀ is periodic) and the same ℓ. So
/// sample() wraps the periodic columns of its output into [−π, π), and log_q() accepts
/// periodic columns in any representative. This is the construction "flow on ℝ^m with a
/// periodic vector field, projected to the torus"; see Rezende et al., "Normalizing flows
/// on tori and spheres", ICML 2020, for flows on tori in general (their circular
/// coupling/Möbius layers are a discrete alternative).
///
/// Saved models are LibTorch archives carrying kModelFormatVersion, the options
/// (JSON), the base density (JSON, version ≥ 2; von Mises mixtures from version 3, conditional
/// Gaussian blocks from version 4, their bin correction from version 5, spline coupling flows
/// from version 6, the whitening of whitened flows from version 7) and the parameters; load() accepts
/// versions 1 (Gaussian base) to 7 and rejects
/// others.
///
/// Spline coupling models (GeneratorOptions::flow): the CNF is replaced by the coupling flow F of
/// spline_coupling.hpp, y = F(z), log q(x) = log ρ₀(z) − log|det ∂F/∂z| − Σ_k log σ_k; `steps`
/// are then unused. On a torus base its circular splines map the periodic columns into [−π, π].
/// save() writes the model's record beside it (model_file.hpp: its SHA-256 and the potential it
/// was trained on), and load() checks the file against that record before LibTorch reads it.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/generators/base_options.hpp"
#include "boltzlab/generators/cnf.hpp"
#include "boltzlab/generators/model_file.hpp"
#include "boltzlab/generators/molecular_space.hpp"
#include "boltzlab/generators/ot_potential.hpp"
#include "boltzlab/generators/spline_coupling.hpp"
#include "boltzlab/generators/velocity_field.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab::generators {

/// Stream mix of the stochastic flow's Brownian increments (noise_sample).
inline constexpr std::uint64_t kNoiseSeedMix = 0x9E3779B97F4A7C15ULL;

/// Version of the saved model format (spline coupling flows from version 6, whitened flows from 7).
inline constexpr int kModelFormatVersion = 7;

/// The family of the map from the base to the target.
enum class FlowFamily {
  ot_flow,          ///< the OT-Flow CNF, v = −∇Φ or a free velocity (cnf.hpp)
  spline_coupling,  ///< rational-quadratic spline coupling layers (spline_coupling.hpp)
};

/// Model-level options (architecture and discretization).
struct GeneratorOptions {
  OtPotentialOptions potential;  ///< Φ architecture (dim, width, layers, rank, particles)
  double time = 1.0;             ///< T: flow time horizon
  int steps = 8;                 ///< RK4 steps during training
  int sample_steps = 8;          ///< RK4 steps when sampling / evaluating log q
  /// σ ≥ 0 of the stochastic OT normalizing flow dx = −∇Φ dt + σ dW (cnf.hpp; 0: the ODE).
  /// With σ > 0, log q of a sample is the path-space log F/B of cnf.hpp (an unbiased weight),
  /// and there is no closed-form log q(x) of given points.
  double noise = 0.0;
  bool stochastic() const { return noise > 0.0; }
  /// The velocity: v = −∇Φ (false, the OT-Flow potential) or a free-form MLP field
  /// (velocity_field.hpp) with `velocity_hidden` widths (empty: {width, width}) and
  /// |v| ≤ `velocity_bound` (0: unbounded). Free velocities: plain targets and particle
  /// systems, no periodic columns.
  bool free_velocity = false;
  std::vector<int> velocity_hidden;
  double velocity_bound = 0.0;
  /// The free velocity's architecture from these options.
  FreeVelocityOptions free_velocity_options() const;
  /// The map: the CNF (default) or a spline coupling flow with the architecture `coupling`
  /// (its dim and periodic columns are the potential options'). A coupling flow is a
  /// discrete map: no noise, no free velocity, no particle systems, no path of states.
  FlowFamily flow = FlowFamily::ot_flow;
  SplineCouplingOptions coupling;
  /// The flow acts on the whitened flow space of a conditional-Gaussian whitening
  /// (BoltzmannGenerator::set_whitening): the hard columns are then not periodic for the flow,
  /// so `potential.periodic` holds the soft torsions only.
  bool whitened = false;
  /// Molecules: the coupling flow leaves the base's soft torsions as they are and conditions
  /// every layer on them (SplineCouplingOptions::condition_only, filled from the fitted base).
  /// Read from "coupling_condition_soft"; the saved model keeps the columns themselves.
  bool condition_soft = false;
  bool coupling_flow() const { return flow == FlowFamily::spline_coupling; }
  /// The coupling architecture with dim and periodic columns from `potential`.
  SplineCouplingOptions coupling_options() const;
  void validate() const;
  nlohmann::json to_json() const;
  static GeneratorOptions from_json(const nlohmann::json& j);
};

/// Reads the flow-family keys of a generator section into `o`: "flow" ("otflow" |
/// "spline_coupling", default: o's), and for coupling flows "coupling_layers", "coupling_hidden",
/// "coupling_depth", "spline_bins", "spline_bound" (SplineCouplingOptions). \throws ConfigError
/// naming the key.
void read_flow_options(JsonReader& r, GeneratorOptions& o);

/// Reads the velocity keys of a generator section or saved options into `o`: "velocity"
/// ("gradient" | "free", default: o's), "velocity_hidden" (integer widths), "velocity_bound".
/// \throws ConfigError naming the key.
void read_velocity_options(JsonReader& r, GeneratorOptions& o);

/// Generated samples with their exact (up to the RK4 error) log-density.
struct GeneratedSamples {
  RowMatrix x;            ///< N×d configurations (target coordinates)
  Eigen::VectorXd log_q;  ///< N: log q(x_i)
};

/// Differentiable quantities of one batch (for the trainer).
struct FlowBatch {
  torch::Tensor x;          ///< B×d configurations
  torch::Tensor log_q;      ///< B: log q(x)
  /// B: ∫ ½|∇Φ|² dt; for a coupling flow the cost of its straight-line interpolation,
  /// |F(z) − z|²/(2T) in the flow space (the least kinetic energy of any path from z to F(z)
  /// in time T; the minimal-image difference on periodic columns).
  torch::Tensor transport;
  torch::Tensor hjb;        ///< B: ∫ |∂ₜΦ − ½|∇Φ|²| dt (0 for a coupling flow: no potential)
};

/// A base → target trajectory at the RK4 step boundaries t_k = k·T/steps, k = 0 … steps.
struct FlowPath {
  FlowBatch end;                   ///< the end point, as forward() (with the path costs)
  std::vector<double> t;           ///< t_k
  std::vector<torch::Tensor> y;    ///< B×d flow-space points y(t_k)
  std::vector<torch::Tensor> x;    ///< B×d configurations x(t_k) = μ + σ ⊙ y(t_k)
  std::vector<torch::Tensor> log_q;  ///< B: log ρ_{t_k}(x(t_k)) in model coordinates
};

/// Writes `fill`'s archive (plus "metadata") to `path` through a temporary file, then the
/// model record beside it (sign_model_file): the save of every saved model kind.
/// \throws IoError naming the file.
void save_model_archive(const std::filesystem::path& path,
                        const std::function<void(torch::serialize::OutputArchive&)>& fill,
                        const nlohmann::json& metadata, const std::optional<PotentialIdentity>& potential);

/// True when `path` (verified against its record first) is an archive holding `version_key`:
/// how a saved model's kind (score model, bridge sampler, …) is told from a flow's.
bool model_archive_has(const std::filesystem::path& path, const char* version_key);

/// Verifies `path` against its record, opens it, checks that `version_key` holds `version`, then
/// runs `read` and returns the archive's "metadata". Errors name the file and `what` ("score
/// model", …): IoError for an unreadable archive or another kind of model, ConfigError for
/// another format version or malformed contents.
nlohmann::json load_model_archive(const std::filesystem::path& path, const char* version_key, int version,
                                  const std::string& what,
                                  const std::function<void(torch::serialize::InputArchive&)>& read);

/// The string entry `key` of an archive. \throws ConfigError "missing 'key'".
std::string read_archive_string(torch::serialize::InputArchive& archive, const char* key);

class BoltzmannGenerator {
 public:
  /// A fresh model (parameters from `seed`), identity standardization.
  BoltzmannGenerator(const GeneratorOptions& options, std::uint64_t seed);

  const GeneratorOptions& options() const { return options_; }
  /// Changes the RK4 steps of training and of sampling (e.g. of a loaded model).
  /// \throws ConfigError for steps < 1.
  void set_integration_steps(int steps, int sample_steps);
  int dim() const { return options_.potential.dim; }
  /// Degrees of freedom: d, or (n−1)·s for particle systems.
  int degrees_of_freedom() const;
  /// The OT-Flow potential Φ (unused by a free-velocity model, whose field is velocity()).
  OtPotential& potential() { return phi_; }
  /// The free velocity field, or null for a gradient model.
  FreeVelocity* velocity() { return velocity_.get(); }
  /// The spline coupling flow, or null for a CNF.
  SplineCouplingFlowImpl* coupling() { return coupling_ ? coupling_.get() : nullptr; }
  /// The trainable parameters: Φ's, the free velocity's or the coupling flow's.
  std::vector<torch::Tensor> parameters();

  /// Sets x = μ + σ ⊙ y. For particle systems μ must be 0 and σ isotropic.
  /// \throws DomainError on wrong sizes, σ ≤ 0, or a particle-system violation.
  void set_standardization(const Eigen::VectorXd& shift, const Eigen::VectorXd& scale);
  /// μ, σ from data (per-coordinate mean and std; for particle systems μ = 0 and
  /// σ = the rms of the centred coordinates).
  void standardize_from_data(const RowMatrix& data);
  const Eigen::VectorXd& shift() const { return shift_; }
  const Eigen::VectorXd& scale() const { return scale_; }

  /// Replaces the standard normal base by a density on ℝ^{d−p} × T^p (see the file
  /// comment; p = 0 is allowed, e.g. a fitted Gaussian-mixture base); its periodic columns
  /// must be those of the potential (OtPotentialOptions::periodic) and have the identity
  /// standardization.
  /// \throws DomainError on a mismatch or for particle systems.
  void set_base(const BaseDensity& base);
  /// Sets a base of per-coordinate Gaussian mixtures (BaseDensity::fit_mixture with up to
  /// `options.components` per column and defensive weight `options.defensive`) fitted to `data`
  /// (model coordinates) mapped into the flow space by the current standardization.
  /// \throws DomainError for particle systems, periodic potentials or bad arguments.
  void fit_gaussian_mixture_base(const RowMatrix& data, const GaussianMixtureBaseOptions& options);
  /// Rows of `data` (model coordinates, N × d) in the flow space, y = (x − μ) / σ (no gradient):
  /// what a base density is fitted to (base_registry.hpp). \throws DomainError on a wrong width.
  torch::Tensor flow_coordinates(const RowMatrix& data) const;
  /// The torus base, or null for the standard normal base.
  const BaseDensity* base() const { return base_ ? &*base_ : nullptr; }
  /// Columns wrapped into [−π, π) by sample() (those of the torus base; empty otherwise).
  const std::vector<std::int64_t>& periodic_columns() const { return periodic_columns_; }

  /// Base draws: z_i from Rng stream (seed, first_index + i), projected for particle
  /// systems — independent of batching and thread count.
  torch::Tensor base_sample(std::int64_t n, std::uint64_t seed, std::int64_t first_index = 0) const;
  /// log ρ₀(z) for rows of z (B).
  torch::Tensor base_log_density(const torch::Tensor& z) const;

  /// Standard normal Brownian increments of the stochastic flow for rows first_index …
  /// first_index + n − 1: steps × n × d, row i from Rng stream (seed ^ kNoiseSeedMix,
  /// first_index + i) in step order (projected for particle systems).
  torch::Tensor noise_sample(int steps, std::int64_t n, std::uint64_t seed, std::int64_t first_index = 0) const;

  /// Conjugates the flow F by the whitening W of a pooled conditional-Gaussian block
  /// (ConditionalGaussian::whiten, K = 1): y = W⁻¹(F(W(z))). W makes the hard columns given the
  /// soft torsions standard normal where the data are Gaussian, so F sees the base's residual at
  /// unit scale instead of coordinates whose conditional spread is a few per cent of their
  /// standardized range; log q is unchanged in form (W's log-det is constant and cancels). The
  /// flow's periodic columns are then the soft torsions only (options().whitened, whose
  /// potential.periodic must be every torsion but W's hard ones). Call before set_base.
  /// \throws DomainError when the options are not whitened, W has another dimension, more than
  /// one expert, a non-torsion soft column, or the potential's periodic columns are not W's soft
  /// ones.
  void set_whitening(const ConditionalGaussian& whitening);
  /// The whitening, or null.
  const ConditionalGaussian* whitening() const { return whitening_ ? &*whitening_ : nullptr; }

  /// Differentiable: z (flow space) → x, with log q(x) and the path costs. With σ > 0 and
  /// `noise` (noise_sample), the stochastic flow: log_q is then the path's log F/B. A coupling
  /// flow ignores `steps`. \throws DomainError for a coupling flow with periodic columns but no
  /// torus base.
  FlowBatch forward(const torch::Tensor& z, int steps, bool with_costs, const torch::Tensor& noise = {});
  /// Differentiable: the deterministic flow from z with its states at the step boundaries
  /// (the relaxed game, relaxed_game.hpp; path measures); the running cost weighted e^{−t·decay}.
  /// \throws DomainError for a stochastic flow or a coupling flow (no path of states).
  FlowPath forward_path(const torch::Tensor& z, int steps, bool with_costs, double decay);
  /// Differentiable: data x → base, with log q(x) and the path costs; with σ > 0 and `noise`,
  /// the backward kernel (cnf.hpp), and log_q the path's log F/B (a lower bound of log q(x) in
  /// expectation: its mean over the noise bounds the forward KL from above).
  FlowBatch reverse(const torch::Tensor& x, int steps, bool with_costs, const torch::Tensor& noise = {});

  /// Differentiable: Φ(y, T) at configurations x (model coordinates, y = (x − μ)/σ): the
  /// potential's terminal value, of the terminal condition (trainer.hpp).
  /// \throws DomainError for a free velocity or a coupling flow (no potential).
  torch::Tensor terminal_potential(const torch::Tensor& x);

  /// N samples (no gradient), periodic columns wrapped into [−π, π); draws base stream
  /// indices 0..N−1 of `seed` (and noise_sample's streams for a stochastic flow). Chunks of
  /// `chunk` rows run as oneTBB tasks (rows are independent: results do not depend
  /// on the thread count or the chunk size).
  GeneratedSamples sample(std::int64_t n, std::uint64_t seed, std::int64_t chunk = 512);
  /// log q(x) for given configurations (no gradient), chunked like sample().
  /// \throws DomainError for a stochastic flow (σ > 0), whose marginal has no closed form.
  Eigen::VectorXd log_q(const RowMatrix& x, std::int64_t chunk = 512);

  /// Saves options, standardization and parameters (with the format version), then the record
  /// beside the file (sign_model_file: its SHA-256 and `potential`, the potential it was trained
  /// on). `metadata` is stored as JSON (e.g. training summary). \throws IoError.
  void save(const std::filesystem::path& path, const nlohmann::json& metadata = {},
            const std::optional<PotentialIdentity>& potential = std::nullopt) const;
  /// Reads the file once, verifies it against its record (verify_model_bytes) and only then
  /// parses it; `record` receives the record. \throws IoError (missing, unverifiable, corrupted
  /// or unreadable file) or ConfigError (wrong version, malformed contents).
  static BoltzmannGenerator load(const std::filesystem::path& path, nlohmann::json* metadata = nullptr,
                                 ModelFileRecord* record = nullptr);

  /// Writes the model into / reads it from an archive (used by checkpoints).
  void write(torch::serialize::OutputArchive& archive) const;
  static BoltzmannGenerator read(torch::serialize::InputArchive& archive, const std::string& where);

 private:
  torch::Tensor to_flow_space(const torch::Tensor& x) const;
  /// Flow space → the space the flow acts on (whitened, or the same) and back.
  torch::Tensor into_flow(const torch::Tensor& y) const;
  torch::Tensor out_of_flow(const torch::Tensor& u) const;
  torch::Tensor from_flow_space(const torch::Tensor& y) const;
  double log_scale_sum() const;
  /// Coupling flows: the transport cost of FlowBatch between base points z and flow points y.
  torch::Tensor coupling_transport(const torch::Tensor& z, const torch::Tensor& y, bool with_costs) const;
  void check_coupling_base() const;
  FlowBatch coupling_forward(const torch::Tensor& z, bool with_costs);
  FlowBatch coupling_reverse(const torch::Tensor& x, bool with_costs);

  GeneratorOptions options_;
  OtPotential phi_;
  std::shared_ptr<FreeVelocity> velocity_;  // free_velocity models only
  SplineCouplingFlow coupling_{nullptr};     // spline coupling models only
  std::optional<BaseDensity> base_;
  std::optional<ConditionalGaussian> whitening_;
  torch::Tensor flow_periodic_mask_;  // Bool d: the potential's periodic columns (coupling transport)
  std::vector<std::int64_t> periodic_columns_;
  torch::Tensor periodic_mask_;  // Bool d (defined with a torus base)
  Eigen::VectorXd shift_, scale_;
  torch::Tensor shift_t_, scale_t_;
};

}  // namespace boltzlab::generators
