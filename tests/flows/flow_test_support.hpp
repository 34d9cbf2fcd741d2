#pragma once
/// \file flow_test_support.hpp
/// Helpers shared by the flow tests: running a registered flow on an initial
/// ensemble, and moments with standard errors over particles.
///
/// Error bars: every flow here runs the particles as independent chains with their
/// own streams, so at a fixed step the N particles are independent replicas. A
/// moment over particles at the final step then has the ordinary i.i.d. standard
/// error (no autocorrelation correction needed); when several frames are averaged
/// per particle first ("batch means" with one batch per particle), the error comes
/// from the spread of the per-particle averages, which accounts for autocorrelation.
#include <cmath>
#include <string>
#include <vector>

#include "boltzlab/core/rng.hpp"
#include "boltzlab/flows/flow.hpp"

namespace boltzlab::testing {

/// Mean and standard error of the mean of values assumed independent.
struct MeanSe {
  double mean = 0.0;
  double se = 0.0;
};

inline MeanSe mean_se(const std::vector<double>& v) {
  const double n = static_cast<double>(v.size());
  double m = 0.0;
  for (double x : v) m += x;
  m /= n;
  double s2 = 0.0;
  for (double x : v) s2 += (x - m) * (x - m);
  s2 /= (n - 1.0);
  return {m, std::sqrt(s2 / n)};
}

/// Column k of a matrix as a vector.
inline std::vector<double> column(const RowMatrix& x, Eigen::Index k) {
  std::vector<double> out(static_cast<std::size_t>(x.rows()));
  for (Eigen::Index i = 0; i < x.rows(); ++i) out[static_cast<std::size_t>(i)] = x(i, k);
  return out;
}

/// Sample variance of independent values and its standard error, from the fourth
/// central moment: Var(s²) ≈ (μ4 − σ⁴)/n.
inline MeanSe variance_se(const std::vector<double>& v) {
  const double n = static_cast<double>(v.size());
  double m = 0.0;
  for (double x : v) m += x;
  m /= n;
  double m2 = 0.0, m4 = 0.0;
  for (double x : v) {
    const double c = (x - m) * (x - m);
    m2 += c;
    m4 += c * c;
  }
  m2 /= n;
  m4 /= n;
  return {m2 * n / (n - 1.0), std::sqrt(std::max(0.0, m4 - m2 * m2) / n)};
}

/// N particles drawn i.i.d. N(mean, scale²) from a test stream (not a particle stream).
inline Ensemble normal_ensemble(std::size_t n, std::size_t d, double scale, std::uint64_t seed,
                                double mean = 0.0) {
  Ensemble e(n, d);
  Rng rng(seed, 987654321);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < d; ++k) e.particle(i)[k] = mean + scale * rng.normal();
  }
  return e;
}

/// Runs the registered flow `name` with JSON params on `ensemble`.
inline FlowResult run_flow(const std::string& name, const Json& params, const Target& target,
                           Ensemble& ensemble, FlowOptions options) {
  options.progress = false;
  auto flow = make_flow(name, params, "test");
  return flow->run(target, ensemble, options);
}

}  // namespace boltzlab::testing
