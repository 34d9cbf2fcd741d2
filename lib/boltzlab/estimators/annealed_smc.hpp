#pragma once
/// \file annealed_smc.hpp
/// Annealed importance sampling with resampling: a sequential Monte Carlo sampler (Neal 2001,
/// "Annealed importance sampling"; Del Moral, Doucet & Jasra 2006, "Sequential Monte Carlo
/// samplers") along the geometric path from a normalized reference density p₀ = e^{−u₀}
/// (∫ e^{−u₀} = 1, drawn exactly) to an unnormalized target e^{−u₁} with Z₁ = ∫ e^{−u₁}:
///
///   γ_β(z) = exp(−(1 − β) u₀(z) − β u₁(z)),   0 = β₀ < β₁ < … < β_K = 1.
///
/// Rung k: (1) the next β_k, fixed (linear in k) or adaptive, the largest β whose conditional
/// ESS fraction (Σ W_i a_i)² / Σ W_i a_i² stays ≥ `cess` (Zhou, Johansen & Aston 2016), with
/// a_i = exp(−(β_k − β_{k−1}) (u₁ − u₀)(z_i)) and W the normalized weights; (2) log w_i +=
/// log a_i; (3) multinomial resampling when the ESS falls below `resample_threshold`·N (never at
/// β = 1: the final particles keep their weights, whose ESS is the figure of merit); (4)
/// `mala_steps` Metropolis-adjusted Langevin steps that leave γ_{β_k} invariant, one step
/// size for all particles adapted toward `target_acceptance`; with `precondition`, the steps
/// are scaled per column by the particles' weighted variance at the rung (a diagonal mass
/// matrix, y = z − τ M∇u_β + √(2τ) M^{1/2} ξ; circular variance −2 log R for periodic
/// columns), as adaptive SMC samplers do (Buchholz, Chopin & Jacob 2021): columns the target
/// pins down get small steps, loose ones large steps.
///
/// Estimates: Ẑ = Π over resampling epochs of the mean weight, unbiased for Z₁; the weighted
/// final particles estimate expectations under π₁ = e^{−u₁}/Z₁. The relative variance of Ẑ
/// is estimated from the particles' ancestry (Lee & Whiteley 2018, "Variance estimation in the
/// particle filter", Biometrika 105; valid for multinomial resampling, which is why it is used):
///   V̂/Ẑ² = 1 − (N/(N−1))^{r+1} Σ_{i,j: E_i ≠ E_j} W_i W_j,
/// r the number of resampling events, E_i the index of particle i's ancestor at β = 0; and
/// se(log Ẑ) ≈ √(V̂)/Ẑ. Without resampling (threshold 0) this is the usual importance-sampling
/// variance of the mean weight. When every particle descends from one ancestor the estimate is
/// 1 (no information): `distinct_ancestors` says how many lines survive.
///
/// Determinism: the reference draws come from streams (seed, i) (AnnealingPath); particle slot i
/// draws its moves from stream (seed ^ kSmcMoveMix, i), independent of its reference draw; the
/// resampling uniforms from stream (seed ^ kSmcResampleMix, rung). Sums over particles are formed in
/// fixed blocks combined in block order, so results do not depend on the thread count.
///
/// Non-finite target energies (u₁ = +∞ or NaN: no mass there) give weight 0 and rejected
/// moves; they are counted, never passed on as numbers.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include <Eigen/Core>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab {

/// Stream mixes of the moves and of the resampling uniforms.
inline constexpr std::uint64_t kSmcMoveMix = 0xA0761D6478BD642FULL;
inline constexpr std::uint64_t kSmcResampleMix = 0x5DEECE66DULL;

/// u₀, u₁ and their gradients at N points.
struct PathValues {
  Eigen::VectorXd u0, u1;  ///< N each; u1 = +∞ where the target has no mass or is not finite
  RowMatrix g0, g1;        ///< N × d: ∇u₀, ∇u₁ (rows of infinite u1 are not read)
};

/// The two ends of the path. Implementations evaluate batches (in parallel if they like,
/// with results independent of the thread count).
class AnnealingPath {
 public:
  virtual ~AnnealingPath() = default;
  /// Dimension d of the points.
  virtual std::size_t dim() const = 0;
  /// n exact draws of p₀, row i from a stream of (seed, i).
  virtual RowMatrix sample_reference(std::size_t n, std::uint64_t seed) const = 0;
  /// Values and gradients at the rows of z into `out`; returns the target evaluations made.
  virtual std::size_t evaluate(const RowMatrix& z, PathValues& out) const = 0;
  /// Columns that are angles of period 2π (both ends periodic in them): wrapped into [−π, π)
  /// after each move.
  virtual std::vector<std::size_t> periodic_columns() const { return {}; }
  /// Projects a vector (a gradient or a noise draw, length d) onto the subspace the points
  /// live on (e.g. centre-of-mass free); identity by default.
  virtual void project(double* /*v*/) const {}
  /// Whether moves may scale the columns independently (false when project() mixes columns:
  /// the preconditioner is then one scalar).
  virtual bool columnwise() const { return true; }
};

/// p₀ = N(mean, sd² I) to a Target's e^{−u}: the path for analytic targets.
class GaussianReferencePath : public AnnealingPath {
 public:
  /// \throws DomainError when mean has not target.dim() entries or sd ≤ 0.
  GaussianReferencePath(const Target& target, Eigen::VectorXd mean, double sd);
  std::size_t dim() const override { return target_.dim(); }
  RowMatrix sample_reference(std::size_t n, std::uint64_t seed) const override;
  std::size_t evaluate(const RowMatrix& z, PathValues& out) const override;

 private:
  const Target& target_;
  Eigen::VectorXd mean_;
  double sd_;
};

/// Settings of the sampler.
struct AnnealedSmcOptions {
  int rungs = 0;                    ///< > 0: fixed schedule β_k = k/rungs; 0: adaptive (cess)
  double cess = 0.9;                ///< adaptive: conditional ESS fraction kept per rung, in (0, 1)
  int max_rungs = 1000;             ///< adaptive: refuse to go on past this many rungs
  int mala_steps = 2;               ///< MALA steps per rung (0: plain reweighting)
  double step_size = 0.05;          ///< initial MALA step τ (y = z − τ∇u_β + √(2τ) ξ)
  double target_acceptance = 0.574; ///< the step size is adapted toward this mean acceptance
  double resample_threshold = 0.5;  ///< resample when ESS < threshold · N; 0: never (plain AIS)
  bool precondition = true;         ///< scale the moves by the particles' per-column variance
  std::uint64_t seed = 1;
  /// \throws ConfigError naming the field.
  void validate() const;
};

/// One rung of the run (after its moves).
struct SmcRung {
  double beta = 0.0;
  double ess_fraction = 0.0;  ///< ESS / N after reweighting, before resampling
  bool resampled = false;
  double acceptance = 0.0;    ///< mean MALA acceptance probability at this rung
  double step_size = 0.0;     ///< τ used by the last move of this rung
  double scale_min = 1.0, scale_max = 1.0;  ///< smallest and largest entry of the preconditioner M
};

/// Result of run_annealed_smc.
struct AnnealedSmcResult {
  RowMatrix z;                  ///< N × d final particles
  Eigen::VectorXd log_weights;  ///< final log-weights, offset so that log mean exp = log Ẑ
  Eigen::VectorXd u1;           ///< u₁ at the final particles
  double log_z = 0.0;           ///< log Ẑ
  double log_z_se = 0.0;        ///< √(V̂)/Ẑ (Lee & Whiteley)
  double initial_ess_fraction = 0.0;  ///< ESS/N of plain importance sampling p₀ → π₁ (the rung-0 draws)
  double initial_log_z = 0.0;         ///< log mean exp(u₀ − u₁) of the rung-0 draws
  std::vector<SmcRung> rungs;
  std::size_t resamplings = 0;
  std::size_t distinct_ancestors = 0;  ///< distinct rung-0 ancestors among the final particles
  std::size_t evaluations = 0;         ///< target evaluations, the N initial ones included
  std::size_t non_finite = 0;          ///< evaluations where u₁ was not finite
};

/// Runs the sampler with n particles. `on_rung` (if set) is called after each rung.
/// \throws ConfigError on bad options, DomainError when n < 2, every weight vanishes, or the
/// adaptive schedule needs more than max_rungs rungs.
AnnealedSmcResult run_annealed_smc(const AnnealingPath& path, std::size_t n, const AnnealedSmcOptions& options,
                                   const std::function<void(const SmcRung&)>& on_rung = {},
                                   Execution exec = Execution::kParallel);

}  // namespace boltzlab
