#include "boltzlab/generators/molecular_space.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "boltzlab/core/constants.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/generators/circular.hpp"

namespace boltzlab::generators {
namespace {

torch::TensorOptions f64() { return torch::TensorOptions().dtype(torch::kDouble); }
torch::TensorOptions i64() { return torch::TensorOptions().dtype(torch::kLong); }

}  // namespace

InternalNormalization::InternalNormalization(torch::Tensor mean, torch::Tensor std, torch::Tensor torsion_mask)
    : mean_(mean.to(torch::kDouble).contiguous()),
      std_(std.to(torch::kDouble).contiguous()),
      torsion_mask_(torsion_mask.to(torch::kBool).contiguous()) {
  if (mean_.dim() != 1 || std_.sizes() != mean_.sizes() || torsion_mask_.sizes() != mean_.sizes()) {
    throw DomainError("internal normalization: mean, std and torsion mask must be vectors of one length");
  }
  const auto periodic_free_std = std_.masked_select(~torsion_mask_);
  if (!(periodic_free_std > 0).all().item<bool>() || !torch::isfinite(std_).all().item<bool>()) {
    throw DomainError("internal normalization: std must be finite and > 0");
  }
  log_det_ = torch::log(periodic_free_std).sum().item<double>();
}

InternalNormalization InternalNormalization::fit(const torch::Tensor& internal, const torch::Tensor& torsion_mask,
                                                 double min_std) {
  if (internal.dim() != 2 || internal.size(0) < 2) {
    throw DomainError("internal normalization: need data of shape B x m with B >= 2");
  }
  const auto data = internal.to(torch::kDouble).detach();
  const auto mask = torsion_mask.to(torch::kBool);
  // Circular mean atan2(⟨sin τ⟩, ⟨cos τ⟩) for torsions; arithmetic mean otherwise.
  const auto circ = torch::atan2(torch::sin(data).mean(0), torch::cos(data).mean(0));
  const auto mean = torch::where(mask, circ, data.mean(0));
  const auto sd = torch::where(mask, torch::ones_like(circ), data.std(0, /*unbiased=*/true).clamp_min(min_std));
  return InternalNormalization(mean, sd, mask);
}

std::pair<torch::Tensor, torch::Tensor> InternalNormalization::forward(const torch::Tensor& internal) const {
  molecules::check_batch(internal, mean_.size(0), "internal");
  const auto d = internal - mean_;
  const auto y = torch::where(torsion_mask_, circular::wrap(d), d / std_);
  return {y, torch::full({internal.size(0)}, -log_det_, internal.options())};
}

std::pair<torch::Tensor, torch::Tensor> InternalNormalization::inverse(const torch::Tensor& normalized) const {
  molecules::check_batch(normalized, mean_.size(0), "normalized");
  const auto z = torch::where(torsion_mask_, circular::wrap(normalized + mean_), normalized * std_ + mean_);
  return {z, torch::full({normalized.size(0)}, log_det_, normalized.options())};
}

Json InternalNormalization::to_json() const {
  auto vec = [](const torch::Tensor& t) {
    const auto c = t.contiguous();
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  };
  std::vector<bool> mask;
  const auto m = torsion_mask_.contiguous();
  for (std::int64_t c = 0; c < m.numel(); ++c) mask.push_back(m[c].item<bool>());
  return Json{{"mean", vec(mean_)}, {"std", vec(std_)}, {"torsion_mask", mask}};
}

InternalNormalization InternalNormalization::from_json(const Json& object, const std::string& context) {
  JsonReader reader(object, context);
  const auto mean = reader.get_doubles("mean");
  const auto sd = reader.get_doubles("std");
  const Json& mask_json = reader.get_json("torsion_mask");
  reader.finish();
  if (!mask_json.is_array() || mask_json.size() != mean.size() || sd.size() != mean.size()) {
    throw ConfigError(context + ": mean, std and torsion_mask must be arrays of one length");
  }
  std::vector<std::int64_t> mask;
  for (const auto& e : mask_json) {
    if (!e.is_boolean()) throw ConfigError(context + ".torsion_mask: entries must be true/false");
    mask.push_back(e.get<bool>() ? 1 : 0);
  }
  try {
    return InternalNormalization(torch::tensor(mean, f64()), torch::tensor(sd, f64()),
                                 torch::tensor(mask, i64()).to(torch::kBool));
  } catch (const DomainError& e) {
    throw ConfigError(context + ": " + e.what());
  }
}

// ---------------------------------------------------------------- BaseDensity

namespace {

using circular::log_i0;
using circular::ml_kappa;

/// log of the von Mises density at angles t (n; given as cos t and sin t) for parameters
/// (μ, κ) of K components, plus log w_k: an n × K matrix (column k = log w_k + log f(t; μ_k,
/// κ_k)), with κ cos(t − μ) = κ (cos t cos μ + sin t sin μ), so no cosine per point.
Eigen::MatrixXd vm_component_log_density(const Eigen::ArrayXd& cos_t, const Eigen::ArrayXd& sin_t,
                                         const std::vector<double>& mu, const std::vector<double>& kappa,
                                         const std::vector<double>& w) {
  const Eigen::Index n = cos_t.size();
  const auto k_count = static_cast<Eigen::Index>(mu.size());
  Eigen::MatrixXd out(n, k_count);
  for (Eigen::Index k = 0; k < k_count; ++k) {
    const double li0 = log_i0(torch::tensor({kappa[k]}, f64())).item<double>();
    const double c = std::log(w[k]) - std::log(kTwoPi) - li0;
    const double a = kappa[k] * std::cos(mu[k]), b = kappa[k] * std::sin(mu[k]);
    out.col(k) = (c + a * cos_t + b * sin_t).matrix();
  }
  return out;
}

struct VmMixtureFit {
  std::vector<double> mu, kappa, weight;
  double log_likelihood = -std::numeric_limits<double>::infinity();
};

using circular::run_em;

/// EM for a K-component von Mises mixture on angles t from the given start means.
VmMixtureFit em_von_mises(const Eigen::VectorXd& t, std::vector<double> mu, double max_kappa) {
  const auto k_count = mu.size();
  const Eigen::Index n = t.size();
  VmMixtureFit fit;
  fit.mu = std::move(mu);
  fit.kappa.assign(k_count, 4.0 * static_cast<double>(k_count));
  fit.weight.assign(k_count, 1.0 / static_cast<double>(k_count));
  const Eigen::ArrayXd sin_t = t.array().sin(), cos_t = t.array().cos();
  fit.log_likelihood = run_em(
      n, k_count, 300, [&] { return vm_component_log_density(cos_t, sin_t, fit.mu, fit.kappa, fit.weight); },
      [&](std::size_t k, const Eigen::VectorXd& r, double nk) {
        const double s = (r.array() * sin_t).sum(), c = (r.array() * cos_t).sum();
        fit.mu[k] = std::atan2(s, c);
        fit.kappa[k] = ml_kappa(std::sqrt(s * s + c * c) / nk, max_kappa);
        fit.weight[k] = nk / static_cast<double>(n);
      },
      [&](std::size_t k) {  // an empty component: keep it harmless
        fit.weight[k] = 1e-300;
        fit.kappa[k] = 0.0;
      });
  return fit;
}

/// Start means for K components: the K highest local maxima of a smoothed circular
/// histogram (72 bins, 3-bin circular box filter twice), padded with evenly spaced means.
std::vector<double> histogram_peaks(const Eigen::VectorXd& t, std::size_t k_count) {
  constexpr int kBins = 72;
  std::vector<double> h(kBins, 0.0);
  for (Eigen::Index i = 0; i < t.size(); ++i) {
    const double a = t[i] - kTwoPi * std::floor((t[i] + kPi) / kTwoPi);
    h[std::min(kBins - 1, static_cast<int>((a + kPi) / kTwoPi * kBins))] += 1.0;
  }
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<double> g(kBins);
    for (int b = 0; b < kBins; ++b) g[b] = h[(b + kBins - 1) % kBins] + h[b] + h[(b + 1) % kBins];
    h = g;
  }
  std::vector<std::pair<double, int>> peaks;
  for (int b = 0; b < kBins; ++b)
    if (h[b] > h[(b + kBins - 1) % kBins] && h[b] >= h[(b + 1) % kBins]) peaks.emplace_back(h[b], b);
  std::sort(peaks.begin(), peaks.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<double> mu;
  for (std::size_t p = 0; p < peaks.size() && mu.size() < k_count; ++p)
    mu.push_back(-kPi + (peaks[p].second + 0.5) * kTwoPi / kBins);
  for (std::size_t k = mu.size(); k < k_count; ++k) mu.push_back(-kPi + (k + 0.5) * kTwoPi / static_cast<double>(k_count));
  return mu;
}

struct GaussMixtureFit {
  std::vector<double> mu, sd, weight;
  double log_likelihood = -std::numeric_limits<double>::infinity();
};

/// EM for a K-component one-dimensional Gaussian mixture from the given start means
/// (start sds: the column's sd / K; sds floored at `min_sd`).
GaussMixtureFit em_gaussian(const Eigen::VectorXd& t, std::vector<double> mu, double min_sd) {
  const auto k_count = mu.size();
  const Eigen::Index n = t.size();
  const double mean = t.mean();
  const double sd_all = std::sqrt((t.array() - mean).square().mean());
  GaussMixtureFit fit;
  fit.mu = std::move(mu);
  fit.sd.assign(k_count, std::max(min_sd, sd_all / static_cast<double>(k_count)));
  fit.weight.assign(k_count, 1.0 / static_cast<double>(k_count));
  fit.log_likelihood = run_em(
      n, k_count, 500,
      [&] {
        Eigen::MatrixXd lp(n, static_cast<Eigen::Index>(k_count));
        for (std::size_t k = 0; k < k_count; ++k) {
          const double c = std::log(fit.weight[k]) - std::log(fit.sd[k]) - 0.5 * std::log(kTwoPi);
          lp.col(static_cast<Eigen::Index>(k)) = (c - 0.5 * ((t.array() - fit.mu[k]) / fit.sd[k]).square()).matrix();
        }
        return lp;
      },
      [&](std::size_t k, const Eigen::VectorXd& r, double nk) {
        fit.mu[k] = (r.array() * t.array()).sum() / nk;
        fit.sd[k] = std::max(min_sd, std::sqrt((r.array() * (t.array() - fit.mu[k]).square()).sum() / nk));
        fit.weight[k] = nk / static_cast<double>(n);
      },
      [&](std::size_t k) { fit.weight[k] = 1e-300; });  // an empty component: keep it harmless
  return fit;
}

/// Means at the quantiles (k + ½)/K of the data: K-component start values.
std::vector<double> quantile_starts(const Eigen::VectorXd& t, std::size_t k_count) {
  std::vector<double> sorted(t.data(), t.data() + t.size());
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> mu;
  for (std::size_t k = 0; k < k_count; ++k)
    mu.push_back(sorted[static_cast<std::size_t>((k + 0.5) / static_cast<double>(k_count) * (sorted.size() - 1))]);
  return mu;
}

/// Start means for a K-component Gaussian mixture: the K highest local maxima of a smoothed
/// 100-bin histogram over the data range, padded with quantiles.
std::vector<double> gaussian_peak_starts(const Eigen::VectorXd& t, std::size_t k_count) {
  constexpr int kBins = 100;
  const double lo = t.minCoeff(), hi = t.maxCoeff(), width = (hi - lo) / kBins;
  std::vector<double> h(kBins, 0.0);
  if (!(width > 0)) return std::vector<double>(k_count, lo);
  for (Eigen::Index i = 0; i < t.size(); ++i) h[std::min(kBins - 1, static_cast<int>((t[i] - lo) / width))] += 1.0;
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<double> g(kBins);
    for (int b = 0; b < kBins; ++b) g[b] = h[std::max(0, b - 1)] + h[b] + h[std::min(kBins - 1, b + 1)];
    h = g;
  }
  std::vector<std::pair<double, int>> peaks;
  for (int b = 0; b < kBins; ++b)
    if ((b == 0 || h[b] > h[b - 1]) && (b == kBins - 1 || h[b] >= h[b + 1])) peaks.emplace_back(h[b], b);
  std::sort(peaks.begin(), peaks.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<double> mu;
  for (std::size_t p = 0; p < peaks.size() && mu.size() < k_count; ++p) mu.push_back(lo + (peaks[p].second + 0.5) * width);
  const auto quantiles = quantile_starts(t, k_count);
  for (std::size_t k = mu.size(); k < k_count; ++k) mu.push_back(quantiles[k]);
  return mu;
}

/// The fit with the lowest BIC = −2 log L + (3K − 1) log n over K = 1 … max_k and, for
/// each K, every start of `starts(K)`; `fit(start)` runs EM (3K − 1 free parameters:
/// K locations, K widths, K − 1 weights).
template <class Fit, class Starts, class RunFit>
Fit best_by_bic(int max_k, double log_n, Starts starts, RunFit fit) {
  Fit best;
  double best_bic = std::numeric_limits<double>::infinity();
  for (std::size_t k = 1; k <= static_cast<std::size_t>(max_k); ++k) {
    for (const auto& start : starts(k)) {
      Fit f = fit(start);
      const double bic = -2.0 * f.log_likelihood + (3.0 * static_cast<double>(k) - 1.0) * log_n;
      if (bic < best_bic) {
        best_bic = bic;
        best = std::move(f);
      }
    }
  }
  return best;
}

std::vector<double> tensor_values(const torch::Tensor& t) {
  const auto c = t.to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace

BaseDensity::BaseDensity(torch::Tensor torsion_mask)
    : torsion_mask_(torsion_mask.to(torch::kBool).contiguous()) {
  if (torsion_mask_.dim() != 1) throw DomainError("base density: torsion mask must be a vector");
  mu_ = torch::zeros({1, torsion_mask_.size(0)}, f64());
  kappa_ = torch::zeros({1, torsion_mask_.size(0)}, f64());
  weight_ = torch::ones({1, torsion_mask_.size(0)}, f64());
  sd_ = torch::ones({1, torsion_mask_.size(0)}, f64());
}

BaseDensity::BaseDensity(torch::Tensor torsion_mask, torch::Tensor mu, torch::Tensor kappa)
    : BaseDensity(std::move(torsion_mask)) {
  if (mu.sizes() != torsion_mask_.sizes() || kappa.sizes() != torsion_mask_.sizes()) {
    throw DomainError("base density: mu and kappa must have the length of the torsion mask");
  }
  *this = BaseDensity(torsion_mask_, mu.unsqueeze(0), kappa.unsqueeze(0), torch::ones_like(mu, f64()).unsqueeze(0));
}

BaseDensity::BaseDensity(torch::Tensor torsion_mask, torch::Tensor mu, torch::Tensor kappa, torch::Tensor weight,
                         torch::Tensor sd)
    : BaseDensity(std::move(torsion_mask)) {
  const std::int64_t m = torsion_mask_.size(0);
  if (mu.dim() != 2 || mu.size(1) != m || mu.size(0) < 1 || kappa.sizes() != mu.sizes() || weight.sizes() != mu.sizes()) {
    throw DomainError("base density: mixture mu, kappa and weight must be K x m with K >= 1 and m = " +
                      std::to_string(m));
  }
  mu_ = mu.to(torch::kDouble).contiguous();
  kappa_ = kappa.to(torch::kDouble).contiguous();
  weight_ = weight.to(torch::kDouble).contiguous();
  if (!(kappa_ >= 0).all().item<bool>() || !torch::isfinite(kappa_).all().item<bool>() ||
      !torch::isfinite(mu_).all().item<bool>()) {
    throw DomainError("base density: von Mises kappa must be finite and >= 0, mu finite");
  }
  if (!(weight_ >= 0).all().item<bool>() || !torch::isfinite(weight_).all().item<bool>() ||
      (weight_.sum(0) - 1.0).abs().max().item<double>() > 1e-9) {
    throw DomainError("base density: mixture weights must be >= 0 and sum to 1 in every column");
  }
  von_mises_ = true;
  if (!sd.defined()) {
    sd_ = torch::ones_like(mu_);
    return;
  }
  if (sd.sizes() != mu.sizes()) throw DomainError("base density: mixture sd must be K x m like mu");
  sd_ = sd.to(torch::kDouble).contiguous();
  const auto gauss_cols = torsion_mask_.logical_not().unsqueeze(0).expand_as(sd_);
  if (!(torch::isfinite(sd_) & (sd_ > 0)).logical_or(~gauss_cols).all().item<bool>())
    throw DomainError("base density: mixture sd must be finite and > 0 on the non-periodic columns");
  // Standard normal columns: one component (weight 1), μ = 0, s = 1.
  const auto standard = (weight_[0] == 1.0) & (mu_[0] == 0.0) & (sd_[0] == 1.0);
  gaussian_mixture_ = (~standard & torsion_mask_.logical_not()).any().item<bool>();
}

std::string BaseDensity::kind() const {
  std::string torsions;
  if (torsion_mask_.any().item<bool>()) {
    const bool multi = von_mises_ && (weight_.index({torch::indexing::Slice(1)}) > 0)
                                         .logical_and(torsion_mask_.unsqueeze(0)).any().item<bool>();
    torsions = !von_mises_ ? "uniform" : multi ? "von_mises_mixture" : "von_mises";
  }
  std::string out = !gaussian_mixture_ ? (torsions.empty() ? "standard_normal" : torsions)
                                        : (torsions.empty() ? "gaussian_mixture" : torsions + "+gaussian_mixture");
  return conditional_ ? out + "+conditional_gaussian" : out;
}

void BaseDensity::set_conditional(ConditionalGaussian block) {
  if (block.dim() != torsion_mask_.size(0))
    throw DomainError("base density: conditional block has dim " + std::to_string(block.dim()) + ", the base " +
                      std::to_string(torsion_mask_.size(0)));
  for (const auto c : block.soft())
    if (!torsion_mask_[c].item<bool>()) throw DomainError("base density: soft column " + std::to_string(c) + " is not periodic");
  if (gaussian_mixture_) throw DomainError("base density: a conditional block needs N(0, 1) non-periodic columns");
  per_column_ = torch::ones({torsion_mask_.size(0)}, torch::TensorOptions().dtype(torch::kBool));
  for (const auto c : block.joint()) per_column_[c] = false;
  for (const auto c : block.hard()) per_column_[c] = false;
  conditional_ = std::make_shared<const ConditionalGaussian>(std::move(block));
}

BaseDensity BaseDensity::fit_conditional(const torch::Tensor& y, const torch::Tensor& torsion_mask,
                                         const std::vector<std::int64_t>& soft, const std::vector<std::int64_t>& joint,
                                         const ConditionalBaseOptions& options) {
  BaseDensity base = fit_mixture(y, torsion_mask, options.components, 1);
  auto block = ConditionalGaussian::fit(y, torsion_mask, soft, joint, options.harmonics, options.components,
                                        options.experts, options.em_iterations, options.shrinkage);
  if (options.joint_bins > 0) block.fit_joint_correction(y, options.joint_bins, options.joint_defensive);
  base.set_conditional(std::move(block));
  return base;
}

std::vector<std::int64_t> BaseDensity::wide_torsions(const torch::Tensor& y, const torch::Tensor& torsion_mask,
                                                     double threshold, const std::vector<std::int64_t>& always) {
  const auto mask = torsion_mask.to(torch::kBool).contiguous();
  if (y.dim() != 2 || mask.dim() != 1 || y.size(1) != mask.size(0) || y.size(0) < 2)
    throw DomainError("base density: wide_torsions needs data B x m (B >= 2) and a mask of length m");
  const auto data = y.to(torch::kDouble).detach();
  const auto rbar = torch::sqrt(torch::sin(data).mean(0).square() + torch::cos(data).mean(0).square());
  std::set<std::int64_t> out(always.begin(), always.end());
  for (std::int64_t c = 0; c < mask.size(0); ++c) {
    if (!mask[c].item<bool>()) continue;
    const double r = std::clamp(rbar[c].item<double>(), 1e-300, 1.0);
    if (std::sqrt(-2.0 * std::log(r)) > threshold) out.insert(c);
  }
  return {out.begin(), out.end()};
}

std::vector<int> BaseDensity::components_per_column() const {
  const auto used = (weight_ > 1e-200).sum(0).contiguous();
  std::vector<int> out;
  for (std::int64_t c = 0; c < used.size(0); ++c) out.push_back(static_cast<int>(used[c].item<std::int64_t>()));
  return out;
}

BaseDensity BaseDensity::fit_von_mises(const torch::Tensor& y, const torch::Tensor& torsion_mask, double max_kappa) {
  const auto mask = torsion_mask.to(torch::kBool).contiguous();
  if (mask.dim() != 1 || y.dim() != 2 || y.size(1) != mask.size(0) || y.size(0) < 2) {
    throw DomainError("base density: fit_von_mises needs data B x m (B >= 2) and a mask of length m");
  }
  if (!(max_kappa > 0)) throw DomainError("base density: max_kappa must be > 0");
  const auto data = y.to(torch::kDouble).detach();
  const auto s = torch::sin(data).mean(0), c = torch::cos(data).mean(0);
  const auto mu = torch::atan2(s, c).contiguous();
  const auto rbar = torch::sqrt(s * s + c * c).contiguous();
  auto kappa = torch::zeros_like(mu);
  for (std::int64_t col = 0; col < mask.size(0); ++col) {
    if (!mask[col].item<bool>()) continue;
    kappa[col] = ml_kappa(rbar[col].item<double>(), max_kappa);
  }
  return BaseDensity(mask, torch::where(mask, mu, torch::zeros_like(mu)), kappa);
}

BaseDensity BaseDensity::fit_von_mises_mixture(const torch::Tensor& y, const torch::Tensor& torsion_mask,
                                               int max_components, double max_kappa) {
  return fit_mixture(y, torsion_mask, max_components, 1, max_kappa);
}

namespace {

/// K × m parameter tables of a per-column mixture base under construction (fit_mixture):
/// column c holds N(0, 1) (or the uniform density on a torsion) until a fit is stored.
struct MixtureTables {
  torch::Tensor mu, kappa, weight, sd;

  MixtureTables(std::int64_t max_components, std::int64_t m)
      : mu(torch::zeros({max_components, m}, f64())),
        kappa(torch::zeros({max_components, m}, f64())),
        weight(torch::zeros({max_components, m}, f64())),
        sd(torch::ones({max_components, m}, f64())) {
    weight[0].fill_(1.0);
  }

  /// Stores a fit into column `col`, components in order of decreasing weight; empty ones get weight 0.
  void store(std::int64_t col, const std::vector<double>& w, const std::vector<double>& loc,
             const std::vector<double>& conc, const std::vector<double>& scale) {
    std::vector<std::size_t> order(w.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return w[a] > w[b]; });
    double total = 0.0;
    for (const auto k : order) total += w[k] > 1e-200 ? w[k] : 0.0;
    weight[0][col] = 0.0;
    std::int64_t j = 0;
    for (const auto k : order) {
      if (!(w[k] > 1e-200)) continue;
      mu[j][col] = loc[k];
      if (!conc.empty()) kappa[j][col] = conc[k];
      if (!scale.empty()) sd[j][col] = scale[k];
      weight[j][col] = w[k] / total;
      ++j;
    }
  }

  /// The base, without the trailing components no column uses.
  BaseDensity pack(const torch::Tensor& mask, std::int64_t max_components, bool gaussian) const {
    std::int64_t used = 1;
    for (std::int64_t k = 0; k < max_components; ++k)
      if ((weight[k] > 0).any().item<bool>()) used = k + 1;
    using torch::indexing::Slice;
    return BaseDensity(mask, mu.index({Slice(0, used)}), kappa.index({Slice(0, used)}), weight.index({Slice(0, used)}),
                       gaussian ? sd.index({Slice(0, used)}) : torch::Tensor());
  }
};

/// At most kMaxFitRows rows of y (an even stride through the data), double, contiguous: EM
/// costs O(rows · K) per iteration and column, and the BIC choice is settled long before 2·10⁴ rows.
torch::Tensor mixture_fit_rows(const torch::Tensor& y) {
  constexpr std::int64_t kMaxFitRows = 20000;
  auto data = y.to(torch::kDouble).detach();
  if (data.size(0) > kMaxFitRows)
    data = data.index({torch::linspace(0, static_cast<double>(data.size(0) - 1), kMaxFitRows, f64()).to(torch::kLong)});
  return data.contiguous();
}

/// Von Mises mixture of one torsion column t (K ≤ max_k by BIC), plus ε · uniform.
VmMixtureFit fit_torsion_column(const Eigen::VectorXd& t, int max_k, double log_n, double max_kappa,
                                double defensive) {
  VmMixtureFit best = best_by_bic<VmMixtureFit>(
      max_k, log_n,
      [&](std::size_t k) {
        std::vector<std::vector<double>> starts = {histogram_peaks(t, k)};
        if (k > 1) {
          std::vector<double> even;
          for (std::size_t j = 0; j < k; ++j) even.push_back(-kPi + (j + 0.5) * kTwoPi / static_cast<double>(k));
          starts.push_back(even);
        }
        return starts;
      },
      [&](const std::vector<double>& start) { return em_von_mises(t, start, max_kappa); });
  if (defensive > 0.0) {  // + ε · uniform
    for (auto& wk : best.weight) wk *= 1.0 - defensive;
    best.weight.push_back(defensive);
    best.mu.push_back(0.0);
    best.kappa.push_back(0.0);
  }
  return best;
}

/// Gaussian mixture of one non-periodic column t (K ≤ max_k by BIC), plus ε · N(mean, (2 sd)²).
GaussMixtureFit fit_gaussian_column(const Eigen::VectorXd& t, int max_k, double log_n, double defensive) {
  const double mean = t.mean();
  const double min_sd = 1e-3 * std::max(1e-12, std::sqrt((t.array() - mean).square().mean()));
  GaussMixtureFit best = best_by_bic<GaussMixtureFit>(
      max_k, log_n,
      [&](std::size_t k) {
        std::vector<std::vector<double>> starts = {quantile_starts(t, k)};
        if (k > 1) starts.push_back(gaussian_peak_starts(t, k));
        return starts;
      },
      [&](const std::vector<double>& start) { return em_gaussian(t, start, min_sd); });
  if (defensive > 0.0) {  // + ε · N(mean, (2 sd)²)
    for (auto& wk : best.weight) wk *= 1.0 - defensive;
    best.weight.push_back(defensive);
    best.mu.push_back(mean);
    best.sd.push_back(2.0 * std::max(1e-12, std::sqrt((t.array() - mean).square().mean())));
  }
  return best;
}

}  // namespace

BaseDensity BaseDensity::fit_mixture(const torch::Tensor& y, const torch::Tensor& torsion_mask, int torsion_components,
                                     int gaussian_components, double max_kappa, double defensive) {
  const auto mask = torsion_mask.to(torch::kBool).contiguous();
  if (mask.dim() != 1 || y.dim() != 2 || y.size(1) != mask.size(0) || y.size(0) < 2) {
    throw DomainError("base density: fitting a mixture needs data B x m (B >= 2) and a mask of length m");
  }
  if (torsion_components < 1 || gaussian_components < 1)
    throw DomainError("base density: max_components must be >= 1");
  if (!(max_kappa > 0)) throw DomainError("base density: max_kappa must be > 0");
  if (!(defensive >= 0.0 && defensive < 0.5)) throw DomainError("base density: defensive weight must be in [0, 0.5)");
  const std::int64_t m = mask.size(0);
  const int max_components = std::max(torsion_components, gaussian_components) + (defensive > 0.0 ? 1 : 0);
  const auto data = mixture_fit_rows(y);
  const std::int64_t n = data.size(0);
  MixtureTables tables(max_components, m);
  const double log_n = std::log(double(n));
  // Columns are independent fits: over oneTBB, each into its own slot, stored in column order.
  const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> rows(
      data.data_ptr<double>(), n, m);
  std::vector<char> periodic(static_cast<std::size_t>(m));
  for (std::int64_t col = 0; col < m; ++col) periodic[static_cast<std::size_t>(col)] = mask[col].item<bool>() ? 1 : 0;
  std::vector<VmMixtureFit> vm_fits(static_cast<std::size_t>(m));
  std::vector<GaussMixtureFit> gauss_fits(static_cast<std::size_t>(m));
  for_each_index(static_cast<std::size_t>(m), [&](std::size_t col) {
    if (!periodic[col] && gaussian_components == 1) return;  // N(0, 1)
    const Eigen::VectorXd t = rows.col(static_cast<Eigen::Index>(col));
    if (periodic[col])
      vm_fits[col] = fit_torsion_column(t, torsion_components, log_n, max_kappa, defensive);
    else
      gauss_fits[col] = fit_gaussian_column(t, gaussian_components, log_n, defensive);
  });
  for (std::int64_t col = 0; col < m; ++col) {
    const auto c = static_cast<std::size_t>(col);
    if (periodic[c])
      tables.store(col, vm_fits[c].weight, vm_fits[c].mu, vm_fits[c].kappa, {});
    else if (gaussian_components > 1)
      tables.store(col, gauss_fits[c].weight, gauss_fits[c].mu, {}, gauss_fits[c].sd);
  }
  return tables.pack(mask, max_components, gaussian_components > 1);
}

torch::Tensor BaseDensity::log_prob(const torch::Tensor& y) const {
  molecules::check_batch(y, torsion_mask_.size(0), "y");
  const double log_2pi = std::log(kTwoPi);
  torch::Tensor gauss;
  if (gaussian_mixture_) {  // log Σ_k w_k N(y; μ_k, s_k²), K × B × m
    const auto zk = (y.unsqueeze(0) - mu_.unsqueeze(1)) / sd_.unsqueeze(1);
    gauss = torch::logsumexp(torch::log(weight_).unsqueeze(1) - 0.5 * zk * zk - torch::log(sd_).unsqueeze(1) -
                                 0.5 * log_2pi,
                             0);
  } else {
    gauss = -0.5 * y * y - 0.5 * log_2pi;
  }
  torch::Tensor circ;
  if (!von_mises_) {
    circ = torch::full_like(y, -log_2pi);
  } else if (components() == 1) {
    circ = kappa_[0] * torch::cos(y - mu_[0]) - log_2pi - log_i0(kappa_[0]);
  } else {
    // log Σ_k w_k f_k(y): K × B × m, logsumexp over k (w_k = 0 gives −∞, a zero term).
    const auto terms = torch::log(weight_).unsqueeze(1) + kappa_.unsqueeze(1) * torch::cos(y.unsqueeze(0) - mu_.unsqueeze(1)) -
                       log_2pi - log_i0(kappa_).unsqueeze(1);
    circ = torch::logsumexp(terms, 0);
  }
  const auto per_column = torch::where(torsion_mask_, circ, gauss);
  if (!conditional_) return per_column.sum(1);
  return torch::where(per_column_, per_column, torch::zeros_like(per_column)).sum(1) + conditional_->log_prob(y);
}

torch::Tensor BaseDensity::sample(std::int64_t n, std::uint64_t seed, std::int64_t first_index) const {
  if (n < 0) throw DomainError("base density: sample count must be >= 0");
  const std::int64_t m = torsion_mask_.size(0);
  const std::int64_t k_count = components();
  std::vector<char> periodic(static_cast<std::size_t>(m)), own(static_cast<std::size_t>(m), 1);
  for (std::int64_t c = 0; c < m; ++c) periodic[c] = torsion_mask_[c].item<bool>();
  if (conditional_)  // the block draws its joint and hard columns
    for (std::int64_t c = 0; c < m; ++c) own[c] = per_column_[c].item<bool>();
  const auto mu = tensor_values(mu_), kappa = tensor_values(kappa_), weight = tensor_values(weight_),
             sd = tensor_values(sd_);  // K × m row-major
  std::vector<double> out(static_cast<std::size_t>(n * m));
  const std::int64_t h = conditional_ ? static_cast<std::int64_t>(conditional_->hard().size()) : 0;
  std::vector<double> normals(static_cast<std::size_t>(n * h));
  std::vector<std::int64_t> component(conditional_ ? static_cast<std::size_t>(n) : 0);
  for_each_index(static_cast<std::size_t>(n), [&](std::size_t s) {
    Rng rng = stream_for(seed, static_cast<std::uint64_t>(first_index) + s);
    double* row = out.data() + s * static_cast<std::size_t>(m);
    for (std::int64_t c = 0; c < m; ++c) {
      if (!own[c]) continue;
      const bool mixture_column = periodic[c] ? von_mises_ && k_count > 1 : gaussian_mixture_;
      std::int64_t comp = 0;
      if (mixture_column) {  // the component, by inversion of the cumulative weights
        const double u = rng.uniform();
        double cum = 0.0;
        comp = -1;
        for (std::int64_t k = 0; k < k_count; ++k) {
          const double wk = weight[static_cast<std::size_t>(k * m + c)];
          if (wk <= 0.0) continue;
          comp = k;
          cum += wk;
          if (u < cum) break;
        }
      }
      if (!periodic[c]) {
        const auto at = static_cast<std::size_t>(comp * m + c);
        row[c] = gaussian_mixture_ ? mu[at] + sd[at] * rng.normal() : rng.normal();
        continue;
      }
      const auto at = static_cast<std::size_t>(comp * m + c);
      row[c] = circular::sample_von_mises(rng, von_mises_ ? mu[at] : 0.0, von_mises_ ? kappa[at] : 0.0);
    }
    if (conditional_) {  // then the joint group and the normals of the hard block, same stream
      component[s] = conditional_->sample_joint(rng, row);
      for (std::int64_t j = 0; j < h; ++j) normals[s * static_cast<std::size_t>(h) + static_cast<std::size_t>(j)] = rng.normal();
    }
  });
  auto y = torch::from_blob(out.data(), {n, m}, f64()).clone();
  if (conditional_) conditional_->fill_hard(y, torch::from_blob(normals.data(), {n, h}, f64()), component);
  return y;
}

Json BaseDensity::to_json() const {
  std::vector<bool> mask;
  for (std::int64_t c = 0; c < torsion_mask_.numel(); ++c) mask.push_back(torsion_mask_[c].item<bool>());
  Json j{{"torsion_mask", mask}, {"von_mises", von_mises_}, {"mu", tensor_values(mu_[0])}, {"kappa", tensor_values(kappa_[0])}};
  if (components() > 1 || gaussian_mixture_) {
    Json mix{{"mu", Json::array()}, {"kappa", Json::array()}, {"weight", Json::array()}};
    for (std::int64_t k = 0; k < components(); ++k) {
      mix["mu"].push_back(tensor_values(mu_[k]));
      mix["kappa"].push_back(tensor_values(kappa_[k]));
      mix["weight"].push_back(tensor_values(weight_[k]));
      if (gaussian_mixture_) {
        if (!mix.contains("sd")) mix["sd"] = Json::array();
        mix["sd"].push_back(tensor_values(sd_[k]));
      }
    }
    j["mixture"] = mix;
  }
  if (conditional_) j["conditional"] = conditional_->to_json();
  return j;
}

BaseDensity BaseDensity::from_json(const Json& object, const std::string& context) {
  JsonReader reader(object, context);
  const Json& mask_json = reader.get_json("torsion_mask");
  const bool vm = reader.get_bool("von_mises");
  const auto mu = reader.get_doubles("mu");
  const auto kappa = reader.get_doubles("kappa");
  const Json mixture = reader.has("mixture") ? reader.get_json("mixture") : Json();
  const Json conditional = reader.has("conditional") ? reader.get_json("conditional") : Json();
  reader.finish();
  if (!mask_json.is_array() || mask_json.size() != mu.size() || kappa.size() != mu.size())
    throw ConfigError(context + ": torsion_mask, mu and kappa must be arrays of one length");
  std::vector<std::int64_t> mask;
  for (const auto& e : mask_json) {
    if (!e.is_boolean()) throw ConfigError(context + ".torsion_mask: entries must be true/false");
    mask.push_back(e.get<bool>() ? 1 : 0);
  }
  const auto mask_t = torch::tensor(mask, i64()).to(torch::kBool);
  auto matrix = [&](const char* key) {
    const std::string where = context + ".mixture." + key;
    if (!mixture.contains(key) || !mixture[key].is_array() || mixture[key].empty())
      throw ConfigError(where + ": must be a non-empty array of rows");
    std::vector<double> flat;
    for (const auto& row : mixture[key]) {
      if (!row.is_array() || row.size() != mu.size())
        throw ConfigError(where + ": every row must have " + std::to_string(mu.size()) + " numbers");
      for (const auto& v : row) {
        if (!v.is_number()) throw ConfigError(where + ": entries must be numbers, got " + v.dump());
        flat.push_back(v.get<double>());
      }
    }
    return torch::tensor(flat, f64()).view({static_cast<std::int64_t>(mixture[key].size()), static_cast<std::int64_t>(mu.size())});
  };
  try {
    auto make = [&]() {
      if (!vm) return BaseDensity(mask_t);
      if (mixture.is_null()) return BaseDensity(mask_t, torch::tensor(mu, f64()), torch::tensor(kappa, f64()));
      if (!mixture.is_object()) throw ConfigError(context + ".mixture: must be an object");
      return BaseDensity(mask_t, matrix("mu"), matrix("kappa"), matrix("weight"),
                         mixture.contains("sd") ? matrix("sd") : torch::Tensor());
    };
    BaseDensity base = make();
    if (!conditional.is_null())
      base.set_conditional(ConditionalGaussian::from_json(conditional, context + ".conditional"));
    return base;
  } catch (const DomainError& e) {
    throw ConfigError(context + ": " + e.what());
  }
}

// ---------------------------------------------------------------- MolecularFlowSpace

MolecularFlowSpace::MolecularFlowSpace(InternalCoordinates coordinates, InternalNormalization normalization)
    : coordinates_(std::move(coordinates)), normalization_(std::move(normalization)) {
  if (!normalization_.mean().defined() || normalization_.mean().size(0) != coordinates_.n_internal()) {
    throw DomainError("molecular flow space: normalization has the wrong dimension for the z-matrix");
  }
  if (!torch::equal(normalization_.torsion_mask(), coordinates_.torsion_mask())) {
    throw DomainError("molecular flow space: normalization torsion mask differs from the z-matrix torsions");
  }
}

MolecularFlowSpace MolecularFlowSpace::fit(InternalCoordinates coordinates, const torch::Tensor& cartesian_data,
                                           double min_std) {
  const auto z = coordinates.to_internal(cartesian_data.to(torch::kDouble).detach()).first;
  auto norm = InternalNormalization::fit(z, coordinates.torsion_mask(), min_std);
  return MolecularFlowSpace(std::move(coordinates), std::move(norm));
}

std::pair<torch::Tensor, torch::Tensor> MolecularFlowSpace::to_flow(const torch::Tensor& cartesian) const {
  const auto [z, ld_ic] = coordinates_.to_internal(cartesian);
  const auto [y, ld_norm] = normalization_.forward(z);
  return {y, ld_ic + ld_norm};
}

MolecularFlowSpace::Decoded MolecularFlowSpace::from_flow(const torch::Tensor& y) const {
  const auto [z, ld_norm] = normalization_.inverse(y);
  auto [x, ld_ic] = coordinates_.to_cartesian(z);
  Decoded d;
  d.valid = coordinates_.in_domain(z.detach());
  d.chirality_ok = coordinates_.chirality_ok(x.detach());
  d.cartesian = x;
  d.logdet = ld_ic + ld_norm;
  return d;
}

torch::Tensor MolecularFlowSpace::log_q_cartesian(const torch::Tensor& log_q_flow, const Decoded& decoded) const {
  return log_q_flow - decoded.logdet + coordinates_.com_free_log_density_offset();
}

torch::Tensor MolecularFlowSpace::log_weights(const torch::Tensor& reduced_energy, const torch::Tensor& log_q_flow,
                                              const Decoded& decoded, bool require_chirality) const {
  auto keep = decoded.valid & torch::isfinite(reduced_energy);
  if (require_chirality) keep = keep & decoded.chirality_ok;
  const auto log_w = -reduced_energy - log_q_cartesian(log_q_flow, decoded);
  return torch::where(keep, log_w, torch::full_like(log_w, -std::numeric_limits<double>::infinity()));
}

Json MolecularFlowSpace::to_json() const {
  return Json{{"coordinates", coordinates_.to_json()}, {"normalization", normalization_.to_json()}};
}

MolecularFlowSpace MolecularFlowSpace::from_json(const Json& object, const std::string& context) {
  JsonReader reader(object, context);
  auto ic = InternalCoordinates::from_json(reader.get_json("coordinates"), reader.context_of("coordinates"));
  auto norm = InternalNormalization::from_json(reader.get_json("normalization"), reader.context_of("normalization"));
  reader.finish();
  try {
    return MolecularFlowSpace(std::move(ic), std::move(norm));
  } catch (const DomainError& e) {
    throw ConfigError(context + ": " + e.what());
  }
}

// ---------------------------------------------------------------- circular helpers

RowMatrix torsions_to_line(RowMatrix y, const torch::Tensor& torsion_mask) {
  constexpr double kEdge = 1e-12;
  for (Eigen::Index c = 0; c < y.cols(); ++c) {
    if (!torsion_mask[c].item<bool>()) continue;
    for (Eigen::Index i = 0; i < y.rows(); ++i) {
      const double u = std::clamp((y(i, c) + kPi) / kTwoPi, kEdge, 1.0 - kEdge);
      y(i, c) = std::log(u) - std::log1p(-u);
    }
  }
  return y;
}

void torsions_to_circle(RowMatrix& x, Eigen::VectorXd* log_q, const torch::Tensor& torsion_mask) {
  const auto log_sigmoid = [](double t) { return t >= 0 ? -std::log1p(std::exp(-t)) : t - std::log1p(std::exp(t)); };
  for (Eigen::Index c = 0; c < x.cols(); ++c) {
    if (!torsion_mask[c].item<bool>()) continue;
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      const double t = x(i, c);
      if (log_q != nullptr) (*log_q)[i] -= std::log(kTwoPi) + log_sigmoid(t) + log_sigmoid(-t);
      x(i, c) = kTwoPi * std::exp(log_sigmoid(t)) - kPi;
    }
  }
}

}  // namespace boltzlab::generators
