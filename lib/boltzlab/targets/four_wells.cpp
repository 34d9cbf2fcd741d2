#include "boltzlab/targets/four_wells.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "boltzlab/core/error.hpp"

namespace boltzlab {
namespace {

/// exp(v), skipping the library call where it would return 0 anyway (v < −746: below
/// the smallest subnormal), which is most of a grid around deep, narrow wells.
double exp_or_zero(double v) { return v < -746.0 ? 0.0 : std::exp(v); }

/// log ∫∫_{[−L, L]²} exp(−u) by the tensor-product composite Simpson rule with m
/// (even) intervals per axis, evaluated as exp(−(u − u_min)) with u_min the smallest
/// grid value (no overflow for deep wells). Two passes over the grid (u_min, then the
/// sum) keep memory O(m): the grid itself would be 8 (m + 1)² bytes, 288 MB at m = 6000.
double log_z_simpson_2d(const FourWellsTarget& target, double L, long m) {
  const double h = 2.0 * L / static_cast<double>(m);
  std::vector<double> node(static_cast<std::size_t>(m + 1)), weight(static_cast<std::size_t>(m + 1));
  for (long i = 0; i <= m; ++i) {
    node[static_cast<std::size_t>(i)] = -L + h * static_cast<double>(i);
    weight[static_cast<std::size_t>(i)] = (i == 0 || i == m) ? 1.0 : (i % 2 ? 4.0 : 2.0);
  }
  auto u_at = [&](std::size_t i, std::size_t j) {
    const double x[2] = {node[i], node[j]};
    return target.reduced_energy(x, nullptr);
  };
  double u_min = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < node.size(); ++i) {
    for (std::size_t j = 0; j < node.size(); ++j) u_min = std::min(u_min, u_at(i, j));
  }
  double sum = 0.0;
  for (std::size_t i = 0; i < node.size(); ++i) {
    double row = 0.0;
    for (std::size_t j = 0; j < node.size(); ++j) row += weight[j] * exp_or_zero(-(u_at(i, j) - u_min));
    sum += weight[i] * row;
  }
  return -u_min + std::log(sum * (h / 3.0) * (h / 3.0));
}

}  // namespace

void FourWellsOptions::validate() const {
  auto bad = [](const std::string& field, double v, const std::string& need) {
    throw_bad_parameter("four_wells", field, v, need);
  };
  if (!(barrier > 0) || !std::isfinite(barrier)) bad("barrier", barrier, "> 0");
  if (!(std::fabs(coupling) < 2.0 * barrier)) bad("coupling", coupling, "in (-2 barrier, 2 barrier) for four minima");
}

FourWellsTarget::FourWellsTarget(const FourWellsOptions& options) : options_(options) {
  options_.validate();
  const double a = options_.barrier, c = std::fabs(options_.coupling);
  // Integration box [−L, L]²: with |x·y| ≤ (x² + y²)/2, u(x, y) ≥ g(x) + g(y) for
  // g(s) = a(s² − 1)² − |c|s²/2, whose minimum is g* = −|c|/2 − c²/(16a) and which
  // increases for s² > 1 + |c|/(4a) (< 1.5², as |c| < 2a). The lowest minimum of u is
  // below u(1, −sign c) = −|c|. So outside the box u − min u ≥ g(L) + g* + |c|; grow L
  // until that is ≥ 50 (the neglected mass is < e^−50 of Z).
  auto g = [a, c](double s) { return a * (s * s - 1.0) * (s * s - 1.0) - 0.5 * c * s * s; };
  const double g_min = -0.5 * c - c * c / (16.0 * a);
  double L = 1.5;
  while (g(L) + g_min + c < 50.0) L *= 1.1;
  // Grid: the narrowest well has curvature ≤ 8a + 3|c| < 14a along its axes, width
  // σ ≥ 1/√(14a); h ≤ σ/20 resolves it (Simpson's error ~ (h/σ)⁴/180 ≈ 3e-8 at worst,
  // far less in practice for an integrand this smooth: see the test's brute-force check).
  const double h = std::min(0.01, 0.05 / std::sqrt(14.0 * a));
  // Clamped as a double: for a huge barrier h underflows to 0 and L / h is inf, which
  // no integer holds (converting it is undefined).
  const long m = 2 * (static_cast<long>(std::min(3000.0, L / h)) + 1);
  log_z_ = log_z_simpson_2d(*this, L, m);
}

double FourWellsTarget::reduced_energy(const double* x, double* grad) const {
  const double a = options_.barrier, c = options_.coupling;
  const double qx = x[0] * x[0] - 1.0, qy = x[1] * x[1] - 1.0;
  if (grad) {
    grad[0] = 4.0 * a * x[0] * qx + c * x[1];
    grad[1] = 4.0 * a * x[1] * qy + c * x[0];
  }
  return a * (qx * qx + qy * qy) + c * x[0] * x[1];
}

nlohmann::json FourWellsTarget::describe() const {
  return {{"name", name()}, {"barrier", options_.barrier}, {"coupling", options_.coupling}, {"log_z", log_z_}};
}

std::unique_ptr<Target> make_four_wells(JsonReader& params, const std::filesystem::path&) {
  FourWellsOptions o;
  o.barrier = params.get_double("barrier", o.barrier);
  if (!(o.barrier > 0) || !std::isfinite(o.barrier)) {
    params.fail("barrier", "is " + std::to_string(o.barrier) + ", but must be > 0");
  }
  o.coupling = params.get_double("coupling", o.coupling);
  if (!(std::fabs(o.coupling) < 2.0 * o.barrier)) {
    params.fail("coupling", "is " + std::to_string(o.coupling) + ", but |coupling| must be < 2 barrier = " +
                                std::to_string(2.0 * o.barrier) + " (else the potential has fewer than four minima)");
  }
  return std::make_unique<FourWellsTarget>(o);
}

}  // namespace boltzlab
