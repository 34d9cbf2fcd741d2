#include "boltzlab/estimators/mcmc.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <numeric>
#include <sstream>


#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"

namespace boltzlab {

namespace {

using Complex = std::complex<double>;

/// Twiddle factors e^{−2πik/n}, k < n/2, computed directly (not by repeated
/// multiplication) for accuracy and cached per thread for the last size used.
const std::vector<Complex>& twiddles(std::size_t n) {
  thread_local std::vector<Complex> table;
  thread_local std::size_t size = 0;
  if (size != n) {
    const double pi = std::acos(-1.0);
    table.resize(n / 2);
    for (std::size_t k = 0; k < n / 2; ++k) {
      const double angle = -2 * pi * static_cast<double>(k) / static_cast<double>(n);
      table[k] = Complex(std::cos(angle), std::sin(angle));
    }
    size = n;
  }
  return table;
}

/// In-place iterative radix-2 Cooley–Tukey FFT; `inverse` uses e^{+2πi/n} and does
/// not divide by n. a.size() must be a power of two.
void fft(std::vector<Complex>& a, bool inverse) {
  const std::size_t n = a.size();
  for (std::size_t i = 1, j = 0; i < n; ++i) {
    std::size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i], a[j]);
  }
  const std::vector<Complex>& w = twiddles(n);
  for (std::size_t len = 2; len <= n; len <<= 1) {
    const std::size_t half = len / 2, stride = n / len;
    for (std::size_t i = 0; i < n; i += len) {
      for (std::size_t k = 0; k < half; ++k) {
        // Plain complex arithmetic: std::complex's operator* checks for NaN/inf
        // (Annex G) and is several times slower without -ffast-math.
        const double tr = w[k * stride].real(), ti = inverse ? -w[k * stride].imag() : w[k * stride].imag();
        const Complex b = a[i + k + half];
        const Complex v(b.real() * tr - b.imag() * ti, b.real() * ti + b.imag() * tr);
        const Complex u = a[i + k];
        a[i + k] = u + v;
        a[i + k + half] = u - v;
      }
    }
  }
}

std::string shape_text(const RowMatrix& d) {
  return std::to_string(d.rows()) + " chains × " + std::to_string(d.cols()) + " draws";
}

/// Reason why `draws` cannot be diagnosed, or empty. Mirrors ArviZ's not_valid
/// (min_draws 4) and additionally rejects ±inf, which ArviZ lets through to NaN.
std::string invalid_reason(const RowMatrix& draws, std::size_t min_chains) {
  if (draws.rows() == 0 || draws.cols() == 0) return "no draws (" + shape_text(draws) + ")";
  if (static_cast<std::size_t>(draws.rows()) < min_chains) {
    return "needs at least " + std::to_string(min_chains) + " chains, got " + std::to_string(draws.rows());
  }
  if (draws.cols() < 4) return "needs at least 4 draws per chain, got " + std::to_string(draws.cols());
  for (Eigen::Index i = 0; i < draws.size(); ++i) {
    if (!std::isfinite(draws.data()[i])) return "draws contain non-finite values";
  }
  return {};
}

/// R̂ of a chains × n matrix (ArviZ `_rhat`).
double rhat_core(const RowMatrix& a) {
  const auto chains = static_cast<double>(a.rows());
  const auto n = static_cast<double>(a.cols());
  Eigen::VectorXd means = a.rowwise().mean();
  double within = 0;
  for (Eigen::Index c = 0; c < a.rows(); ++c) {
    within += (a.row(c).array() - means[c]).square().sum() / (n - 1);
  }
  within /= chains;
  const double grand = means.mean();
  const double between = n * (means.array() - grand).square().sum() / (chains - 1);
  return std::sqrt((between / within + n - 1) / n);
}

double median(const RowMatrix& a) {
  std::vector<double> v(a.data(), a.data() + a.size());
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Quantity checked(double v, const std::string& what) {
  if (std::isfinite(v)) return Quantity::of(v);
  return Quantity::missing(what + " is not finite (zero within-chain variance or degenerate draws)");
}

}  // namespace

double standard_normal_quantile(double p) {
  if (!(p > 0 && p < 1)) {
    if (p == 0) return -std::numeric_limits<double>::infinity();
    if (p == 1) return std::numeric_limits<double>::infinity();
    return std::numeric_limits<double>::quiet_NaN();
  }
  // Upper half by symmetry (1 − p is exact for p ≥ ½), so the Halley correction
  // below never suffers cancellation in Φ(x) − p near 1.
  if (p > 0.5) return -standard_normal_quantile(1 - p);
  // Acklam's rational approximation (relative error < 1.2e-9) ...
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  double x;
  if (p < 0.02425) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p > 1 - 0.02425) {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  // ... refined by Halley steps on Φ(x) − p with Φ(x) = erfc(−x/√2)/2 (cubic
  // convergence: two steps reach full double precision).
  for (int step = 0; step < 2; ++step) {
    const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
    const double u = e * std::sqrt(2 * 3.14159265358979323846) * std::exp(0.5 * x * x);
    x -= u / (1 + 0.5 * x * u);
  }
  return x;
}

std::vector<double> autocovariance(const double* x, std::size_t n) {
  if (n == 0) return {};
  std::size_t m = 1;
  while (m < 2 * n) m <<= 1;
  double mean = 0;
  for (std::size_t i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<double>(n);
  std::vector<Complex> a(m, Complex(0, 0));
  for (std::size_t i = 0; i < n; ++i) a[i] = Complex(x[i] - mean, 0);
  fft(a, false);
  for (auto& v : a) v = Complex(v.real() * v.real() + v.imag() * v.imag(), 0);
  fft(a, true);
  std::vector<double> acov(n);
  for (std::size_t t = 0; t < n; ++t) acov[t] = a[t].real() / static_cast<double>(m) / static_cast<double>(n);
  return acov;
}

std::vector<double> autocovariance_direct(const double* x, std::size_t n) {
  if (n == 0) return {};
  double mean = 0;
  for (std::size_t i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<double>(n);
  std::vector<double> acov(n, 0.0);
  for (std::size_t t = 0; t < n; ++t) {
    double s = 0;
    for (std::size_t i = 0; i + t < n; ++i) s += (x[i] - mean) * (x[i + t] - mean);
    acov[t] = s / static_cast<double>(n);
  }
  return acov;
}

RowMatrix split_chains(const RowMatrix& draws) {
  const Eigen::Index half = draws.cols() / 2;
  RowMatrix out(2 * draws.rows(), half);
  out.topRows(draws.rows()) = draws.leftCols(half);
  out.bottomRows(draws.rows()) = draws.rightCols(half);
  return out;
}

RowMatrix rank_normalize(const RowMatrix& draws) {
  const auto size = static_cast<std::size_t>(draws.size());
  const double* v = draws.data();
  std::vector<std::size_t> order(size);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
  RowMatrix z(draws.rows(), draws.cols());
  const double denom = static_cast<double>(size) + 0.25;  // size − 2c + 1 with c = 3/8
  for (std::size_t i = 0; i < size;) {
    std::size_t j = i;
    while (j + 1 < size && v[order[j + 1]] == v[order[i]]) ++j;
    const double rank = 0.5 * static_cast<double>(i + j) + 1;  // average 1-based rank of the tie group
    const double zi = standard_normal_quantile((rank - 0.375) / denom);
    for (std::size_t k = i; k <= j; ++k) z.data()[order[k]] = zi;
    i = j + 1;
  }
  return z;
}

double quantile_type7(const RowMatrix& draws, double prob) {
  std::vector<double> v(draws.data(), draws.data() + draws.size());
  const auto n = static_cast<double>(v.size());
  // scipy mquantiles(alphap=1, betap=1): aleph = n·p + 1 − p (1-based), as R type 7.
  const double aleph = n * prob + 1 - prob;
  const double k = std::clamp(std::floor(aleph), 1.0, n - 1);
  const double gamma = std::clamp(aleph - k, 0.0, 1.0);
  const auto ki = static_cast<std::size_t>(k);
  // Order statistics k−1 and k (0-based) by selection instead of a full sort.
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(ki - 1), v.end());
  const double lower = v[ki - 1];
  const double upper = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(ki), v.end());
  return (1 - gamma) * lower + gamma * upper;
}

Quantity ess_geyer(const RowMatrix& a) {
  const Eigen::Index chains = a.rows();
  const Eigen::Index n = a.cols();
  if (chains == 0 || n < 2) return Quantity::missing("needs at least 2 draws per chain");
  const double total = static_cast<double>(chains * n);
  if (a.maxCoeff() - a.minCoeff() < 1e-15) return Quantity::of(total);  // numpy finfo.resolution
  // Per-chain autocovariances in parallel, summed in chain order (deterministic).
  RowMatrix acov(chains, n);
  Eigen::VectorXd chain_mean(chains);
  for_each_index(static_cast<std::size_t>(chains), [&](std::size_t ci) {
    const auto c = static_cast<Eigen::Index>(ci);
    const std::vector<double> ac = autocovariance(a.row(c).data(), static_cast<std::size_t>(n));
    for (Eigen::Index t = 0; t < n; ++t) acov(c, t) = ac[static_cast<std::size_t>(t)];
    chain_mean[c] = a.row(c).mean();
  });
  std::vector<double> mean_acov(static_cast<std::size_t>(n), 0.0);
  for (Eigen::Index c = 0; c < chains; ++c) {
    for (Eigen::Index t = 0; t < n; ++t) mean_acov[static_cast<std::size_t>(t)] += acov(c, t);
  }
  for (double& v : mean_acov) v /= static_cast<double>(chains);
  const double nd = static_cast<double>(n);
  const double mean_var = mean_acov[0] * nd / (nd - 1);
  double var_plus = mean_var * (nd - 1) / nd;
  if (chains > 1) {
    const double grand = chain_mean.mean();
    var_plus += (chain_mean.array() - grand).square().sum() / static_cast<double>(chains - 1);
  }
  auto rho_at = [&](Eigen::Index t) { return 1 - (mean_var - mean_acov[static_cast<std::size_t>(t)]) / var_plus; };
  std::vector<double> rho(static_cast<std::size_t>(n), 0.0);
  auto R = [&](long t) -> double& { return rho[static_cast<std::size_t>(t)]; };
  double rho_even = 1.0;
  double rho_odd = rho_at(1);
  R(0) = rho_even;
  R(1) = rho_odd;
  // Geyer's initial positive sequence: add pairs while their sum is positive.
  long t = 1;
  while (t < n - 3 && rho_even + rho_odd > 0) {
    rho_even = rho_at(t + 1);
    rho_odd = rho_at(t + 2);
    if (rho_even + rho_odd >= 0) {
      R(t + 1) = rho_even;
      R(t + 2) = rho_odd;
    }
    t += 2;
  }
  const long max_t = t - 2;
  if (rho_even > 0) R(max_t + 1) = rho_even;  // max_t + 1 ≥ 0 always
  // Geyer's initial monotone sequence: pair sums must not increase.
  t = 1;
  while (t <= max_t - 2) {
    if (R(t + 1) + R(t + 2) > R(t - 1) + R(t)) {
      R(t + 1) = 0.5 * (R(t - 1) + R(t));
      R(t + 2) = R(t + 1);
    }
    t += 2;
  }
  double tau = -1;
  for (long s = 0; s <= max_t; ++s) tau += 2 * R(s);
  if (max_t + 1 < n) tau += R(max_t + 1);
  tau = std::max(tau, 1 / std::log10(total));
  for (double r : rho) {
    if (std::isnan(r)) return Quantity::missing("autocorrelation is not finite (zero variance)");
  }
  return checked(total / tau, "ESS");
}

Quantity rhat_rank(const RowMatrix& draws) {
  const std::string why = invalid_reason(draws, 2);
  if (!why.empty()) return Quantity::missing("R̂: " + why);
  const RowMatrix split = split_chains(draws);
  const double bulk = rhat_core(rank_normalize(split));
  const double med = median(split);
  const RowMatrix folded = (split.array() - med).abs().matrix();
  const double tail = rhat_core(rank_normalize(folded));
  if (std::isnan(bulk) || std::isnan(tail)) return Quantity::missing("R̂: zero within-chain variance");
  return checked(std::max(bulk, tail), "R̂");
}

Quantity ess_bulk(const RowMatrix& draws) {
  const std::string why = invalid_reason(draws, 1);
  if (!why.empty()) return Quantity::missing("bulk-ESS: " + why);
  return ess_geyer(rank_normalize(split_chains(draws)));
}

Quantity ess_tail(const RowMatrix& draws, double prob) {
  const std::string why = invalid_reason(draws, 1);
  if (!why.empty()) return Quantity::missing("tail-ESS: " + why);
  if (!(prob > 0 && prob < 1)) throw DomainError("tail-ESS: prob must be in (0, 1)");
  const double lo_p = std::min(prob, 1 - prob), hi_p = std::max(prob, 1 - prob);
  double result = std::numeric_limits<double>::infinity();
  for (double p : {lo_p, hi_p}) {
    const double q = quantile_type7(draws, p);
    const RowMatrix indicator = (draws.array() <= q).cast<double>().matrix();
    const Quantity e = ess_geyer(split_chains(indicator));
    if (!e.ok()) return Quantity::missing("tail-ESS: " + e.reason);
    result = std::min(result, *e.value);
  }
  return Quantity::of(result);
}

Quantity ess_mean(const RowMatrix& draws) {
  const std::string why = invalid_reason(draws, 1);
  if (!why.empty()) return Quantity::missing("ESS: " + why);
  return ess_geyer(split_chains(draws));
}

Quantity integrated_autocorrelation_time(const RowMatrix& draws) {
  const Quantity e = ess_mean(draws);
  if (!e.ok()) return Quantity::missing("τ: " + e.reason);
  const double total = static_cast<double>(draws.rows() * 2 * (draws.cols() / 2));
  return Quantity::of(total / *e.value);
}

ChainDiagnostics chain_diagnostics(const RowMatrix& draws) {
  ChainDiagnostics d;
  d.rhat = rhat_rank(draws);
  d.ess_bulk = ess_bulk(draws);
  d.ess_tail = ess_tail(draws);
  d.ess_mean = ess_mean(draws);
  if (d.ess_mean.ok()) {
    d.iat = Quantity::of(static_cast<double>(draws.rows() * 2 * (draws.cols() / 2)) / *d.ess_mean.value);
  } else {
    d.iat = Quantity::missing("τ: " + d.ess_mean.reason);
  }
  return d;
}

void ChainArray::validate() const {
  if (chains == 0 || draws == 0 || params == 0) {
    throw DomainError("chains array: empty (" + std::to_string(chains) + " chains, " + std::to_string(draws) +
                      " draws, " + std::to_string(params) + " parameters)");
  }
  if (data.size() != chains * draws * params) {
    throw DomainError("chains array: " + std::to_string(data.size()) + " values do not fill " +
                      std::to_string(chains) + "×" + std::to_string(draws) + "×" + std::to_string(params));
  }
}

RowMatrix ChainArray::parameter(std::size_t p) const {
  validate();
  if (p >= params) {
    throw DomainError("chains array: parameter " + std::to_string(p) + " out of range (" + std::to_string(params) + ")");
  }
  RowMatrix m(chains, draws);
  for (std::size_t c = 0; c < chains; ++c) {
    for (std::size_t t = 0; t < draws; ++t) {
      m(static_cast<Eigen::Index>(c), static_cast<Eigen::Index>(t)) = data[(c * draws + t) * params + p];
    }
  }
  return m;
}

std::string interacting_particles_note() {
  return "draws come from interacting particles: chains are not independent, so R̂ and ESS "
         "(which assume independent chains) are indicative only and may overstate the information";
}

}  // namespace boltzlab
