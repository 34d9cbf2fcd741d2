#include "boltzlab/estimators/wasserstein.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "boltzlab/core/error.hpp"

namespace boltzlab {

namespace {

/// One measure, sorted by value, with cumulative normalized weights.
struct SortedMeasure {
  std::vector<double> value;       ///< ascending
  std::vector<long double> cum;    ///< cumulative weight / total; last entry exactly 1
  std::size_t non_finite = 0, zero_weight = 0;
};

SortedMeasure prepare(const Eigen::VectorXd& x, const Eigen::VectorXd& w, const char* name) {
  if (x.size() != w.size())
    throw DomainError(std::string("wasserstein2_1d: ") + name + " has " + std::to_string(x.size()) +
                      " values but " + std::to_string(w.size()) + " weights");
  SortedMeasure m;
  std::vector<std::pair<double, double>> kept;
  kept.reserve(static_cast<std::size_t>(x.size()));
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    if (!std::isfinite(w[i]) || w[i] < 0.0)
      throw DomainError(std::string("wasserstein2_1d: weight ") + name + "[" + std::to_string(i) +
                        "] = " + std::to_string(w[i]) + " (must be finite and >= 0)");
    if (w[i] == 0.0) {
      ++m.zero_weight;
    } else if (!std::isfinite(x[i])) {
      ++m.non_finite;
    } else {
      kept.emplace_back(x[i], w[i]);
    }
  }
  // Sort by value (ties by weight, so the order is fully determined).
  std::sort(kept.begin(), kept.end());
  long double total = 0.0L;
  for (const auto& [v, wt] : kept) total += wt;
  m.value.reserve(kept.size());
  m.cum.reserve(kept.size());
  long double c = 0.0L;
  for (const auto& [v, wt] : kept) {
    c += wt;
    m.value.push_back(v);
    m.cum.push_back(c / total);
  }
  if (!m.cum.empty()) m.cum.back() = 1.0L;
  return m;
}

}  // namespace

nlohmann::json Wasserstein1D::to_json() const {
  nlohmann::json j;
  put_quantity(j, "w2", distance);
  put_quantity(j, "w2_squared", squared);
  j["used_a"] = used_a;
  j["used_b"] = used_b;
  j["non_finite_a"] = non_finite_a;
  j["non_finite_b"] = non_finite_b;
  j["zero_weight_a"] = zero_weight_a;
  j["zero_weight_b"] = zero_weight_b;
  return j;
}

Wasserstein1D wasserstein2_1d(const Eigen::VectorXd& x, const Eigen::VectorXd& a, const Eigen::VectorXd& y,
                              const Eigen::VectorXd& b) {
  const SortedMeasure mu = prepare(x, a, "a");
  const SortedMeasure nu = prepare(y, b, "b");
  Wasserstein1D r;
  r.used_a = mu.value.size();
  r.used_b = nu.value.size();
  r.non_finite_a = mu.non_finite;
  r.non_finite_b = nu.non_finite;
  r.zero_weight_a = mu.zero_weight;
  r.zero_weight_b = nu.zero_weight;
  if (mu.value.empty() || nu.value.empty()) {
    const std::string why = std::string("no finite value with positive weight in ") +
                            (mu.value.empty() ? "the first" : "the second") + " measure";
    r.distance = Quantity::missing(why);
    r.squared = Quantity::missing(why);
    return r;
  }
  // Merge the breakpoints of the two step quantile functions: on (p, next] F⁻¹ = x_i
  // and G⁻¹ = y_j, so the integral gains (next − p)·(x_i − y_j)².
  long double sum = 0.0L, p = 0.0L;
  std::size_t i = 0, j = 0;
  while (i < mu.value.size() && j < nu.value.size()) {
    const long double next = std::min(mu.cum[i], nu.cum[j]);
    const long double d = static_cast<long double>(mu.value[i]) - static_cast<long double>(nu.value[j]);
    sum += (next - p) * d * d;
    p = next;
    if (mu.cum[i] <= next) ++i;
    if (nu.cum[j] <= next) ++j;
  }
  const double w2sq = static_cast<double>(sum);
  r.squared = Quantity::of(w2sq);
  r.distance = Quantity::of(std::sqrt(w2sq));
  return r;
}

Wasserstein1D wasserstein2_1d(const Eigen::VectorXd& x, const Eigen::VectorXd& y) {
  return wasserstein2_1d(x, Eigen::VectorXd::Ones(x.size()), y, Eigen::VectorXd::Ones(y.size()));
}

}  // namespace boltzlab
