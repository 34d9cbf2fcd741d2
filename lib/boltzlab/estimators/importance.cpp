#include "boltzlab/estimators/importance.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <tuple>
#include <utility>

#include <boost/math/distributions/normal.hpp>

#include "boltzlab/core/error.hpp"

namespace boltzlab {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

std::string fmt(double v, int precision = 3) {
  std::ostringstream s;
  s.precision(precision);
  s << v;
  return s.str();
}

/// Indices sorting `x` ascending; ties keep their original order (stable), so the
/// result does not depend on the sort implementation.
std::vector<std::size_t> ascending_order(const Eigen::VectorXd& x) {
  std::vector<std::size_t> order(static_cast<std::size_t>(x.size()));
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return x[static_cast<Eigen::Index>(a)] < x[static_cast<Eigen::Index>(b)];
  });
  return order;
}

}  // namespace

void put_quantity(nlohmann::json& out, const std::string& key, const Quantity& q) {
  if (q.finite()) {
    out[key] = *q.value;
  } else {
    out[key] = nullptr;
    out[key + "_reason"] = q.missing_reason();
  }
}

double log_sum_exp(const Eigen::VectorXd& a) {
  if (a.size() == 0) return kNegInf;
  double m = kNegInf;
  for (Eigen::Index i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i])) return a[i];
    m = std::max(m, a[i]);
  }
  if (!std::isfinite(m)) return m;  // −inf (all zero) or +inf
  double sum = 0;
  for (Eigen::Index i = 0; i < a.size(); ++i) sum += std::exp(a[i] - m);
  return m + std::log(sum);
}

RelativeWeights relative_weights(const Eigen::VectorXd& log_weights, const std::string& what) {
  validate_log_weights(log_weights, what);
  RelativeWeights r;
  r.log_max = log_weights.maxCoeff();
  r.relative.resize(log_weights.size());
  r.sum = 0;
  for (Eigen::Index i = 0; i < log_weights.size(); ++i) {
    // a − max ≤ 0 (−inf for a zero weight or a difference beyond the double range).
    // std::exp, not Eigen's vectorized exp: that one clamps its argument at ≈ −709.8
    // and returns a subnormal ≈ 3e-309 instead of 0 for a zero weight.
    r.relative[i] = std::exp(log_weights[i] - r.log_max);
    r.sum += r.relative[i];
  }
  return r;
}

Eigen::VectorXd log_importance_weights(const Eigen::VectorXd& reduced_energies,
                                       const Eigen::VectorXd& log_q, std::size_t* non_finite) {
  if (reduced_energies.size() == 0) throw DomainError("importance weights: no samples (empty arrays)");
  if (reduced_energies.size() != log_q.size()) {
    throw DomainError("importance weights: " + std::to_string(reduced_energies.size()) +
                      " reduced energies but " + std::to_string(log_q.size()) +
                      " log q values (lengths must match)");
  }
  Eigen::VectorXd lw(reduced_energies.size());
  std::size_t bad = 0;
  for (Eigen::Index i = 0; i < lw.size(); ++i) {
    if (!std::isfinite(log_q[i])) {
      throw DomainError("importance weights: log q[" + std::to_string(i) + "] is " + fmt(log_q[i]) +
                        "; a draw from the proposal must have a finite log-density");
    }
    if (!std::isfinite(reduced_energies[i])) {
      lw[i] = kNegInf;
      ++bad;
    } else {
      lw[i] = -reduced_energies[i] - log_q[i];
    }
  }
  if (non_finite) *non_finite = bad;
  return lw;
}

void validate_log_weights(const Eigen::VectorXd& log_weights, const std::string& what) {
  if (log_weights.size() == 0) throw DomainError(what + ": empty array (no samples)");
  bool any_finite = false;
  for (Eigen::Index i = 0; i < log_weights.size(); ++i) {
    const double v = log_weights[i];
    if (std::isnan(v)) throw DomainError(what + ": entry " + std::to_string(i) + " is NaN");
    if (v == std::numeric_limits<double>::infinity()) {
      throw DomainError(what + ": entry " + std::to_string(i) + " is +inf");
    }
    if (std::isfinite(v)) any_finite = true;
  }
  if (!any_finite) {
    throw DomainError(what + ": all " + std::to_string(log_weights.size()) +
                      " log-weights are -inf (every sample has zero weight, e.g. all energies non-finite)");
  }
}

Eigen::VectorXd normalized_weights(const Eigen::VectorXd& log_weights) {
  const RelativeWeights r = relative_weights(log_weights);
  return r.relative / r.sum;
}

double kish_ess(const Eigen::VectorXd& log_weights) {
  const RelativeWeights r = relative_weights(log_weights);
  return r.sum * r.sum / r.relative.squaredNorm();
}

LogWeightCounts count_log_weights(const Eigen::VectorXd& log_weights) {
  LogWeightCounts c;
  c.samples = static_cast<std::size_t>(log_weights.size());
  for (Eigen::Index i = 0; i < log_weights.size(); ++i) {
    const double v = log_weights[i];
    if (std::isnan(v)) ++c.nan;
    else if (v == std::numeric_limits<double>::infinity()) ++c.positive_infinite;
    else if (v == kNegInf) ++c.zero_weight;
    else ++c.finite;
  }
  return c;
}

std::string LogWeightCounts::problem() const {
  if (samples == 0) return "empty array (no samples)";
  if (nan > 0 || positive_infinite > 0) {
    return std::to_string(nan) + " NaN and " + std::to_string(positive_infinite) + " +inf of " +
           std::to_string(samples) + " log-weights (a broken or exploded run)";
  }
  if (finite == 0) return "all " + std::to_string(samples) + " log-weights are -inf (every sample has zero weight)";
  return "";
}

nlohmann::json LogWeightCounts::to_json() const {
  return {{"samples", samples}, {"finite", finite}, {"zero_weight", zero_weight}, {"nan", nan},
          {"positive_infinite", positive_infinite}};
}

namespace {

/// Mean and sample standard deviation of the finite entries of `a` (count ≥ 1),
/// computed on a / max|a| so that entries near ±DBL_MAX do not overflow the sums.
std::pair<double, double> finite_mean_sd(const Eigen::VectorXd& a, std::size_t count) {
  double scale = 0;
  for (Eigen::Index i = 0; i < a.size(); ++i)
    if (std::isfinite(a[i])) scale = std::max(scale, std::abs(a[i]));
  if (scale == 0) return {0.0, 0.0};
  double sum = 0, sum2 = 0;
  for (Eigen::Index i = 0; i < a.size(); ++i)
    if (std::isfinite(a[i])) sum += a[i] / scale;
  const double mean = sum / static_cast<double>(count);
  for (Eigen::Index i = 0; i < a.size(); ++i)
    if (std::isfinite(a[i])) sum2 += (a[i] / scale - mean) * (a[i] / scale - mean);
  const double sd = count > 1 ? std::sqrt(sum2 / static_cast<double>(count - 1)) : 0.0;
  return {mean * scale, sd * scale};
}

}  // namespace

WeightDiagnostics weight_diagnostics(const Eigen::VectorXd& log_weights, double clip_fraction) {
  validate_log_weights(log_weights);
  if (!(clip_fraction >= 0 && clip_fraction < 1)) {
    throw DomainError("weight diagnostics: clip_fraction is " + fmt(clip_fraction) + ", but must be in [0, 1)");
  }
  WeightDiagnostics d;
  const auto n = static_cast<std::size_t>(log_weights.size());
  d.samples = n;
  d.clip_fraction = clip_fraction;
  const RelativeWeights r = relative_weights(log_weights);
  d.kish_ess = r.sum * r.sum / r.relative.squaredNorm();
  d.ess_fraction = d.kish_ess / static_cast<double>(n);
  d.max_weight_share = 1.0 / r.sum;  // the largest relative weight is exactly 1
  d.log_weight_max = r.log_max;
  const LogWeightCounts counts = count_log_weights(log_weights);
  d.zero_weight = counts.zero_weight;
  std::tie(d.log_weight_mean, d.log_weight_sd) = finite_mean_sd(log_weights, counts.finite);

  // Clipping: the ⌊clip_fraction·S⌋ largest log-weights are set to the largest
  // unclipped one; below 1/clip_fraction draws nothing is clipped (never on small batches).
  d.clipped = static_cast<std::size_t>(std::floor(clip_fraction * static_cast<double>(n)));
  if (d.clipped > 0 && d.clipped < n) {
    const std::vector<std::size_t> order = ascending_order(log_weights);
    Eigen::VectorXd clipped = log_weights;
    const double cap = log_weights[static_cast<Eigen::Index>(order[n - d.clipped - 1])];
    for (std::size_t j = n - d.clipped; j < n; ++j) clipped[static_cast<Eigen::Index>(order[j])] = cap;
    if (std::isfinite(cap)) {
      d.kish_ess_clipped = kish_ess(clipped);
    } else {
      d.kish_ess_clipped = kish_ess(log_weights);
      d.clipped = 0;
    }
  } else {
    d.clipped = 0;
    d.kish_ess_clipped = d.kish_ess;
  }
  d.ess_fraction_clipped = d.kish_ess_clipped / static_cast<double>(n);
  return d;
}

std::vector<std::pair<std::size_t, double>> kish_ess_curve(const Eigen::VectorXd& log_weights,
                                                           std::size_t points) {
  validate_log_weights(log_weights);
  const auto n = static_cast<std::size_t>(log_weights.size());
  std::vector<std::size_t> sizes;
  const std::size_t first = std::min<std::size_t>(10, n);
  points = std::max<std::size_t>(points, 2);
  for (std::size_t j = 0; j < points; ++j) {
    const double t = static_cast<double>(j) / static_cast<double>(points - 1);
    const double v = std::exp(std::log(static_cast<double>(first)) * (1 - t) + std::log(static_cast<double>(n)) * t);
    sizes.push_back(std::clamp<std::size_t>(static_cast<std::size_t>(std::llround(v)), first, n));
  }
  sizes.push_back(n);
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  std::vector<std::pair<std::size_t, double>> curve;
  // Running log-sum-exp of w and w² over the prefix (fixed order, O(S)).
  double m = kNegInf, s1 = 0, s2 = 0;
  std::size_t next = 0;
  for (std::size_t i = 0; i < n && next < sizes.size(); ++i) {
    const double lw = log_weights[static_cast<Eigen::Index>(i)];
    if (std::isfinite(lw)) {
      if (lw > m) {
        const double scale = std::isfinite(m) ? std::exp(m - lw) : 0.0;
        s1 *= scale;
        s2 *= scale * scale;
        m = lw;
      }
      const double e = std::exp(lw - m);
      s1 += e;
      s2 += e * e;
    }
    if (i + 1 == sizes[next]) {
      if (s2 > 0) curve.emplace_back(i + 1, s1 * s1 / s2);
      ++next;
    }
  }
  return curve;
}

SnisEstimate snis_estimate(const Eigen::VectorXd& log_weights, const Eigen::VectorXd& values) {
  if (values.size() != log_weights.size()) {
    throw DomainError("SNIS estimate: " + std::to_string(values.size()) + " values but " +
                      std::to_string(log_weights.size()) + " log-weights (lengths must match)");
  }
  const Eigen::VectorXd w = normalized_weights(log_weights);
  SnisEstimate e;
  for (Eigen::Index i = 0; i < w.size(); ++i) {
    if (w[i] == 0) continue;
    if (!std::isfinite(values[i])) {
      throw DomainError("SNIS estimate: value " + std::to_string(i) + " is " + fmt(values[i]) +
                        " but its weight is positive");
    }
    e.mean += w[i] * values[i];
  }
  double var = 0;
  for (Eigen::Index i = 0; i < w.size(); ++i) {
    if (w[i] == 0) continue;
    var += w[i] * w[i] * (values[i] - e.mean) * (values[i] - e.mean);
  }
  e.standard_error = std::sqrt(var);
  e.ess = 1.0 / w.squaredNorm();
  return e;
}

LogZEstimate estimate_log_z(const Eigen::VectorXd& log_weights, double level) {
  validate_log_weights(log_weights);
  if (!(level > 0 && level < 1)) {
    throw DomainError("log Z: confidence level is " + fmt(level) + ", but must be in (0, 1)");
  }
  const auto n = static_cast<std::size_t>(log_weights.size());
  if (n < 2) throw DomainError("log Z: needs at least 2 samples for a standard error, got 1");
  LogZEstimate z;
  z.samples = n;
  z.level = level;
  // Weights relative to the largest one (never m + log Σ − m: at |m| ≳ 1e16 that
  // round trip loses log Σ entirely). The ratio sd(w)/mean(w) is scale-free.
  const RelativeWeights r = relative_weights(log_weights);
  const double mean = r.sum / static_cast<double>(n);
  z.estimate = r.log_max + std::log(mean);
  const double var = (r.relative.array() - mean).square().sum() / static_cast<double>(n - 1);
  z.standard_error = std::sqrt(var) / (std::sqrt(static_cast<double>(n)) * mean);
  const boost::math::normal_distribution<double> normal;
  const double zq = boost::math::quantile(normal, 0.5 * (1 + level));
  z.ci_low = z.estimate - zq * z.standard_error;
  z.ci_high = z.estimate + zq * z.standard_error;
  return z;
}

GpdFit fit_generalized_pareto(const std::vector<double>& x) {
  const std::size_t n = x.size();
  if (n < 5) throw DomainError("GPD fit: needs at least 5 tail values, got " + std::to_string(n));
  for (std::size_t i = 0; i < n; ++i) {
    if (!(x[i] > 0) || !std::isfinite(x[i])) {
      throw DomainError("GPD fit: tail value " + std::to_string(i) + " is " + fmt(x[i]) + ", but must be finite and > 0");
    }
    if (i > 0 && x[i] < x[i - 1]) throw DomainError("GPD fit: tail values must be sorted ascending");
  }
  constexpr double kPriorScale = 3;    // prior_bs in ArviZ
  constexpr double kPriorWeight = 10;  // prior_k: pseudo-observations at k = 0.5
  const auto m = static_cast<std::size_t>(30 + static_cast<std::size_t>(std::sqrt(static_cast<double>(n))));
  const double nd = static_cast<double>(n);
  // x_(⌊n/4 + ½⌋) (1-based) is the first-quartile order statistic of the grid.
  const std::size_t quartile = static_cast<std::size_t>(nd / 4 + 0.5) - 1;
  std::vector<double> theta(m), profile(m);
  for (std::size_t j = 0; j < m; ++j) {
    theta[j] = (1 - std::sqrt(static_cast<double>(m) / (static_cast<double>(j + 1) - 0.5))) /
                   (kPriorScale * x[quartile]) +
               1 / x[n - 1];
    double k = 0;
    for (double xi : x) k += std::log1p(-theta[j] * xi);
    k /= nd;
    profile[j] = nd * (std::log(-theta[j] / k) - k - 1);
  }
  // Posterior weights of the grid points: w_j = 1/Σ_l exp(ℓ_l − ℓ_j).
  std::vector<double> weight(m);
  for (std::size_t j = 0; j < m; ++j) {
    double s = 0;
    for (std::size_t l = 0; l < m; ++l) s += std::exp(profile[l] - profile[j]);
    weight[j] = 1 / s;
  }
  double total = 0, theta_post = 0;
  for (std::size_t j = 0; j < m; ++j) {
    if (weight[j] >= 10 * DBL_EPSILON) total += weight[j];
  }
  for (std::size_t j = 0; j < m; ++j) {
    if (weight[j] >= 10 * DBL_EPSILON) theta_post += theta[j] * weight[j] / total;
  }
  double k = 0;
  for (double xi : x) k += std::log1p(-theta_post * xi);
  k /= nd;
  GpdFit fit;
  fit.k = (nd * k + kPriorWeight * 0.5) / (nd + kPriorWeight);
  fit.sigma = -fit.k / theta_post;
  return fit;
}

double gpd_quantile(double p, double k, double sigma) {
  if (!(sigma > 0)) return std::numeric_limits<double>::quiet_NaN();
  if (p <= 0) return 0;
  if (p >= 1) return k >= 0 ? std::numeric_limits<double>::infinity() : -sigma / k;
  if (std::abs(k) < DBL_EPSILON) return -sigma * std::log1p(-p);
  return sigma * std::expm1(-k * std::log1p(-p)) / k;
}

void PsisOptions::validate() const {
  if (!(r_eff > 0) || !std::isfinite(r_eff)) {
    throw ConfigError("psis: r_eff is " + fmt(r_eff) + ", but must be finite and > 0");
  }
}

double psis_khat_threshold(std::size_t samples) {
  if (samples <= 1) return -std::numeric_limits<double>::infinity();
  return std::min(1 - 1 / std::log10(static_cast<double>(samples)), 0.7);
}

namespace {

/// Sets min_sample_size, reliable and the one-line diagnosis of a PSIS result from
/// its k̂ (Vehtari et al. 2024, §3): reliable when k̂ ≤ threshold; without k̂,
/// reliable only when the largest weights are all equal (`flat_top`).
void psis_verdict(PsisResult& r, bool flat_top) {
  if (!r.khat.ok()) {
    r.min_sample_size = Quantity::missing("k̂ unavailable");
    if (flat_top) {
      r.reliable = true;
      r.diagnosis = "reliable: the largest weights are all equal (bounded weights, no tail)";
    } else {
      r.reliable = false;
      r.diagnosis = "unreliable: k̂ could not be computed (" + r.khat.reason + ")";
    }
    return;
  }
  const std::size_t n = r.samples;
  const double k = *r.khat.value;
  if (k < 1) {
    // ArviZ (arviz_stats `_pareto_min_ss`) floors k̂ at 0: never fewer than 10 draws.
    r.min_sample_size = Quantity::of(std::pow(10.0, 1 / (1 - std::max(k, 0.0))));
  } else {
    r.min_sample_size = Quantity::missing("k̂ ≥ 1: no finite sample size suffices");
  }
  r.reliable = k <= r.threshold;
  const std::string ks = "k̂ = " + fmt(k);
  if (r.reliable) {
    r.diagnosis = "reliable: " + ks + " ≤ threshold " + fmt(r.threshold) + " for S = " + std::to_string(n);
  } else if (k >= 1) {
    r.diagnosis = "unreliable: " + ks + " ≥ 1: the weight distribution has no finite mean; "
                  "importance-sampling estimates are not usable";
  } else if (k > 0.7) {
    r.diagnosis = "unreliable: " + ks + " > 0.7: the weights are too heavy-tailed; estimates converge "
                  "far too slowly (more draws barely help; improve the proposal)";
  } else {
    r.diagnosis = "unreliable: " + ks + " > threshold " + fmt(r.threshold) + " for S = " + std::to_string(n) +
                  ": needs at least " + fmt(*r.min_sample_size.value) + " draws";
  }
}

/// Fits the generalized Pareto tail of `x` (log-weights relative to the max) and
/// replaces the tail by the fitted quantiles (see pareto_smoothed_importance_sampling).
/// Sets r.khat (missing, with the reason, when no fit is possible), r.sigma,
/// r.tail_length and r.log_cutoff. Returns true when the M + 1 largest weights are
/// all equal (nothing heavy-tailed to fit).
bool smooth_pareto_tail(Eigen::VectorXd& x, PsisResult& r) {
  const std::size_t n = r.samples;
  if (r.tail_length + 1 > n) {
    r.tail_length = 0;
    r.khat = Quantity::missing("only " + std::to_string(n) + " draws; the Pareto tail fit needs at least 25");
    return false;
  }
  const std::vector<std::size_t> order = ascending_order(x);
  const double log_tiny = std::log(DBL_MIN);
  const double cutoff = std::max(x[static_cast<Eigen::Index>(order[n - r.tail_length - 1])], log_tiny);
  r.log_cutoff = cutoff;
  const std::size_t planned_tail = r.tail_length;
  // The tail: every draw strictly above the cutoff (ties at the cutoff stay in the body).
  std::vector<std::size_t> tail;
  for (std::size_t j = 0; j < n; ++j) {
    if (x[static_cast<Eigen::Index>(order[j])] > cutoff) tail.push_back(order[j]);
  }
  r.tail_length = tail.size();
  if (tail.size() <= 4) {
    const bool flat_top = cutoff == 0.0;
    r.khat = Quantity::missing(
        flat_top ? "the " + std::to_string(planned_tail + 1) + " largest weights are equal: no tail to fit"
                 : "only " + std::to_string(tail.size()) +
                       " draws in the weight tail (ties or negligible weights); the Pareto fit needs ≥ 5");
    return flat_top;
  }
  const double exp_cutoff = std::exp(cutoff);
  std::vector<double> exceed(tail.size());
  for (std::size_t j = 0; j < tail.size(); ++j) exceed[j] = std::exp(x[static_cast<Eigen::Index>(tail[j])]) - exp_cutoff;
  bool positive = true;
  for (double e : exceed) positive = positive && e > 0;
  if (!positive) {
    r.khat = Quantity::missing("the weight tail is degenerate (exceedances round to zero)");
    return false;
  }
  const GpdFit fit = fit_generalized_pareto(exceed);
  if (!std::isfinite(fit.k) || !std::isfinite(fit.sigma)) {
    r.khat = Quantity::missing("the generalized Pareto fit failed (degenerate tail)");
    return false;
  }
  r.khat = Quantity::of(fit.k);
  r.sigma = fit.sigma;
  if (!(fit.sigma > 0)) {
    // The prior adjustment can move a slightly negative raw k across 0, which makes
    // σ̂ = −k̂/θ̂ negative (light, bounded tails). Legacy ArviZ's _gpinv then returns
    // NaN and poisons every weight; we keep the raw tail instead (k̂ is still valid).
    return false;
  }
  const double m = static_cast<double>(tail.size());
  for (std::size_t j = 0; j < tail.size(); ++j) {
    const double q = gpd_quantile((static_cast<double>(j) + 0.5) / m, fit.k, fit.sigma);
    // Truncate at the largest raw weight (0 after subtracting the max).
    x[static_cast<Eigen::Index>(tail[j])] = std::min(std::log(q + exp_cutoff), 0.0);
  }
  return false;
}

}  // namespace

PsisResult pareto_smoothed_importance_sampling(const Eigen::VectorXd& log_weights, const PsisOptions& options) {
  validate_log_weights(log_weights);
  options.validate();
  PsisResult r;
  const auto n = static_cast<std::size_t>(log_weights.size());
  r.samples = n;
  r.threshold = psis_khat_threshold(n);
  Eigen::VectorXd x = log_weights.array() - log_weights.maxCoeff();
  const double sd = static_cast<double>(n);
  r.tail_length = static_cast<std::size_t>(std::ceil(std::min(sd / 5, 3 * std::sqrt(sd / options.r_eff))));
  const bool flat_top = smooth_pareto_tail(x, r);
  // x ≤ 0 with max 0 after smoothing (the tail is truncated at the largest raw weight),
  // so Σ exp(x) ∈ [1, S] and log Σ is small: subtracting it loses nothing.
  Eigen::VectorXd relative(x.size());
  for (Eigen::Index i = 0; i < x.size(); ++i) relative[i] = std::exp(x[i]);  // exact 0 for −inf (see relative_weights)
  const double sum = relative.sum();
  x.array() -= std::log(sum);
  r.smoothed_log_weights = x;
  r.kish_ess = sum * sum / relative.squaredNorm();
  psis_verdict(r, flat_top);
  return r;
}

}  // namespace boltzlab
