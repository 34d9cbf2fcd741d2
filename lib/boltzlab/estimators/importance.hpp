#pragma once
/// \file importance.hpp
/// Importance weights and their diagnostics: log-weights from energies and proposal
/// log-densities, normalized weights, self-normalized (SNIS) estimates with
/// delta-method standard errors, Kish effective sample size (plain and clipped), the
/// largest-weight share, log Z with a confidence interval, and Pareto-smoothed
/// importance sampling (PSIS) with its k̂ diagnostic.
///
/// Conventions (ARCHITECTURE.md): log w_i = −u(x_i) − log q(x_i); a non-finite
/// energy gives log w_i = −inf — the sample is kept and counted, never dropped
/// silently. Every estimator works in float64 on log-weights (log-sum-exp), so
/// weights spanning hundreds of orders of magnitude are handled.
///
/// A value that cannot be computed is returned as a Quantity without value and with
/// the reason (JSON: null plus "<key>_reason"), never as NaN.
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

namespace boltzlab {

/// A number that may be unavailable, with the reason when it is.
struct Quantity {
  std::optional<double> value;  ///< empty when it cannot be computed
  std::string reason;           ///< why not (empty when value is set)

  static Quantity of(double v) { return Quantity{v, {}}; }
  static Quantity missing(std::string why) { return Quantity{std::nullopt, std::move(why)}; }
  bool ok() const { return value.has_value(); }
  /// True when the value is set and finite (what JSON shows as a number).
  bool finite() const { return value && std::isfinite(*value); }
  /// Why the value is not shown: `reason`, or "value is not finite" for ±inf/NaN.
  std::string missing_reason() const { return value ? std::string("value is not finite") : reason; }
};

/// Writes q into `out[key]` when q.finite(), else null and `out[key + "_reason"]` =
/// q.missing_reason().
void put_quantity(nlohmann::json& out, const std::string& key, const Quantity& q);

/// Numerically stable log Σ_i exp(a_i) = m + log Σ_i exp(a_i − m), m = max_i a_i.
/// Entries equal to −inf contribute nothing; returns −inf when every entry is −inf
/// (or a is empty), +inf when an entry is +inf, NaN when an entry is NaN.
/// Note: never normalize by subtracting this value from the a_i when |m| is large: at
/// |m| ≳ 1e16 the sum m + log Σ rounds to m and the difference loses log Σ entirely.
/// Use relative_weights() (the sum is kept apart from the max) instead.
double log_sum_exp(const Eigen::VectorXd& a);

/// Weights relative to the largest one, r_i = exp(log w_i − max_j log w_j) ∈ [0, 1],
/// and their sum Σ r_i ∈ [1, S]: the one representation every estimator here
/// normalizes through, w̄_i = r_i / Σ r. The max is subtracted before exponentiating
/// and never added back before dividing, so the result does not depend on a common
/// offset of the log-weights (1e17 or −1e300 alike) and log-weights spanning the whole
/// double range (±1e308) stay finite.
struct RelativeWeights {
  Eigen::VectorXd relative;  ///< r_i (0 for log w_i = −inf; exactly 1 at the max)
  double sum = 0;            ///< Σ r_i
  double log_max = 0;        ///< max_i log w_i (finite)
};
/// \throws DomainError as validate_log_weights (naming `what`).
RelativeWeights relative_weights(const Eigen::VectorXd& log_weights, const std::string& what = "log-weights");

/// Log importance weights log w_i = −u_i − log q_i.
/// A non-finite reduced energy u_i (NaN or ±inf, as evaluate_batch reports
/// failures) gives log w_i = −inf and is counted in `*non_finite` when given. A
/// difference beyond the double range (u and log q both near ∓DBL_MAX) gives ±inf:
/// +inf is then rejected, naming the entry, by validate_log_weights.
/// \throws DomainError if the lengths differ, the input is empty, or any log q_i is
///   not finite (a draw from q has finite log-density; NaN means a broken proposal),
///   naming the first offending index.
Eigen::VectorXd log_importance_weights(const Eigen::VectorXd& reduced_energies,
                                       const Eigen::VectorXd& log_q,
                                       std::size_t* non_finite = nullptr);

/// Checks log-weights for use by the estimators below: non-empty, no NaN, no +inf,
/// at least one finite entry. \throws DomainError naming `what` and the problem.
void validate_log_weights(const Eigen::VectorXd& log_weights, const std::string& what = "log-weights");

/// How many log-weights are finite, −inf (zero weight), +inf or NaN: what a report
/// shows instead of estimates when the weights are unusable (an exploded run).
struct LogWeightCounts {
  std::size_t samples = 0;            ///< S
  std::size_t finite = 0;             ///< finite log w
  std::size_t zero_weight = 0;        ///< log w = −inf
  std::size_t positive_infinite = 0;  ///< log w = +inf
  std::size_t nan = 0;                ///< log w = NaN
  /// Why the estimators cannot use these weights ("" when they can): NaN or +inf
  /// entries, no finite entry, or no entry at all.
  std::string problem() const;
  /// {samples, finite, zero_weight, nan, positive_infinite}.
  nlohmann::json to_json() const;
};
LogWeightCounts count_log_weights(const Eigen::VectorXd& log_weights);

/// Normalized weights w̄_i = r_i / Σ_j r_j (relative_weights; sum to 1).
/// \throws DomainError as validate_log_weights.
Eigen::VectorXd normalized_weights(const Eigen::VectorXd& log_weights);

/// Kish effective sample size (Σw)²/Σw² = (Σ r)²/Σ r² (Kish 1965) on the relative
/// weights, so S equal log-weights give S at any offset. \throws DomainError as validate_log_weights.
double kish_ess(const Eigen::VectorXd& log_weights);

/// Summary of a set of importance weights.
struct WeightDiagnostics {
  std::size_t samples = 0;        ///< S, all draws including those with log w = −inf
  std::size_t zero_weight = 0;    ///< draws with log w = −inf (e.g. non-finite energy)
  double kish_ess = 0;            ///< (Σw)²/Σw²
  double ess_fraction = 0;        ///< kish_ess / S
  double max_weight_share = 0;    ///< max_i w̄_i
  /// Kish ESS after clipping the largest `clip_fraction` of log-weights to the
  /// value of the largest unclipped one (as several Boltzmann-generator papers
  /// report, e.g. Midgley et al. 2023, FAB); ceil(clip_fraction·S) draws are clipped.
  double kish_ess_clipped = 0;
  double ess_fraction_clipped = 0;
  std::size_t clipped = 0;        ///< number of log-weights clipped
  double clip_fraction = 1e-4;    ///< the fraction used
  double log_weight_max = 0;      ///< largest log w
  double log_weight_mean = 0;     ///< mean of the finite log w
  double log_weight_sd = 0;       ///< standard deviation of the finite log w
};

/// Computes WeightDiagnostics. `clip_fraction` in [0, 1).
/// \throws DomainError as validate_log_weights, or for a bad clip_fraction.
WeightDiagnostics weight_diagnostics(const Eigen::VectorXd& log_weights, double clip_fraction = 1e-4);

/// Kish ESS of the first n draws for n on a roughly geometric grid of `points`
/// sizes from min(10, S) to S (for the "ESS against number of samples" plot).
/// Returns pairs (n, ESS(n)); prefixes whose weights are all zero are skipped.
std::vector<std::pair<std::size_t, double>> kish_ess_curve(const Eigen::VectorXd& log_weights,
                                                           std::size_t points = 30);

/// Self-normalized importance-sampling estimate of E_π[f]:
///   μ̂ = Σ w̄_i f_i,  se² = Σ w̄_i² (f_i − μ̂)²  (delta method for the ratio estimator;
/// Owen, "Monte Carlo theory, methods and examples", 2013, §9.2, eq. 9.8).
struct SnisEstimate {
  double mean = 0;
  double standard_error = 0;
  double ess = 0;  ///< Kish ESS of the weights used
};
/// Entries with w̄_i = 0 are ignored even when f_i is not finite; a non-finite f_i
/// with positive weight \throws DomainError. \throws DomainError for length mismatch.
SnisEstimate snis_estimate(const Eigen::VectorXd& log_weights, const Eigen::VectorXd& values);

/// Importance-sampling estimate of log Z = log E_q[w] = log((1/S) Σ w_i)
/// (log-mean-exp: max log w + log((1/S) Σ r_i) with the relative weights r). Delta-method standard error of log Ẑ:
///   se = sd(w) / (√S · mean(w)),  sd with ddof = 1,
/// and the normal confidence interval log Ẑ ± z_{(1+level)/2}·se.
/// When log w = −u − log q with normalized q, Z = ∫ e^{−u} dx.
struct LogZEstimate {
  double estimate = 0;        ///< log Ẑ
  double standard_error = 0;  ///< delta-method se of log Ẑ
  double ci_low = 0;          ///< lower end of the confidence interval
  double ci_high = 0;         ///< upper end
  double level = 0.95;        ///< confidence level
  std::size_t samples = 0;
};
/// \throws DomainError as validate_log_weights, or for level outside (0, 1).
LogZEstimate estimate_log_z(const Eigen::VectorXd& log_weights, double level = 0.95);

/// Generalized Pareto distribution fit (shape k, scale σ; location 0).
struct GpdFit {
  double k = 0;      ///< shape k̂ (after the prior adjustment)
  double sigma = 0;  ///< scale σ̂ > 0
};

/// Empirical-Bayes GPD fit of Zhang & Stephens (2009, Technometrics 51:316) with the
/// weakly informative prior of Vehtari et al. (2024, JMLR 25(72), "Pareto smoothed
/// importance sampling", App. C): grid of m = 30 + ⌊√n⌋ values
///   θ_j = 1/x_(n) + (1 − √(m/(j − ½))) / (3·x_(⌊n/4 + ½⌋)),
/// profile log-likelihood ℓ(θ) = n(log(−θ/k(θ)) − k(θ) − 1), k(θ) = mean log(1 − θ x_i),
/// posterior-mean θ̂ (grid weights below 10·ε dropped), k = mean log(1 − θ̂ x_i),
/// k̂ = (n·k + 10·0.5)/(n + 10), σ̂ = −k̂/θ̂. Matches ArviZ's `_gpdfit`.
/// `exceedances` must be sorted ascending, positive, with n ≥ 5 entries.
/// Note the sign convention: ArviZ and loo report k with tail P(X > x) ~ x^{−1/k}.
/// \throws DomainError for fewer than 5 values, unsorted or non-positive input.
GpdFit fit_generalized_pareto(const std::vector<double>& exceedances);

/// Quantile function of the GPD(k, σ) at p ∈ [0, 1]: σ·((1 − p)^{−k} − 1)/k
/// (σ·(−log(1 − p)) when |k| < ε). Matches ArviZ's `_gpinv`.
double gpd_quantile(double p, double k, double sigma);

/// Options of PSIS.
struct PsisOptions {
  /// Relative efficiency r_eff = ESS/S of the draws (1 for independent draws).
  double r_eff = 1.0;
  void validate() const;
};

/// Result of Pareto-smoothed importance sampling (Vehtari et al. 2024).
struct PsisResult {
  Eigen::VectorXd smoothed_log_weights;  ///< normalized (log Σ = 0); raw normalized ones if no fit
  Quantity khat;                         ///< Pareto shape k̂ of the weight tail
  double sigma = 0;                      ///< GPD scale of the fit (relative to the max weight)
  std::size_t tail_length = 0;           ///< M, number of draws in the fitted tail
  double log_cutoff = 0;                 ///< log of the tail threshold (relative to the max weight)
  std::size_t samples = 0;               ///< S
  double threshold = 0.7;                ///< k̂ threshold min(1 − 1/log10 S, 0.7)
  Quantity min_sample_size;              ///< 10^{1/(1−max(k̂,0))} for k̂ < 1, else missing
  bool reliable = false;                 ///< k̂ ≤ threshold
  std::string diagnosis;                 ///< one line: why reliable or not
  double kish_ess = 0;                   ///< Kish ESS of the smoothed weights
};

/// Pareto-smoothed importance sampling of log-weights, matching the legacy ArviZ
/// `psislw`/`_psislw` (arviz ≥ 0.12, arviz/stats/stats.py):
///  - tail length M = ⌈min(S/5, 3√(S/r_eff))⌉; the cutoff is the (M+1)-th largest
///    log-weight (relative to the max), floored at log(DBL_MIN); the tail is every
///    draw strictly above the cutoff;
///  - with ≥ 5 tail draws, fit_generalized_pareto on w − w_cutoff (weights relative
///    to the max weight); replace the sorted tail by cutoff + GPD quantiles at
///    (i − ½)/M, clipped at the largest raw weight; normalize.
///  - reliability (Vehtari et al. 2024, §3): k̂ ≤ min(1 − 1/log10 S, 0.7).
/// \throws DomainError as validate_log_weights.
PsisResult pareto_smoothed_importance_sampling(const Eigen::VectorXd& log_weights,
                                               const PsisOptions& options = {});

/// The k̂ threshold min(1 − 1/log10 S, 0.7) (Vehtari et al. 2024, eq. 13).
double psis_khat_threshold(std::size_t samples);

}  // namespace boltzlab
