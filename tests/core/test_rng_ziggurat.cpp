// Tests of the ziggurat normal generator in lib/boltzlab/core/rng.hpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "boltzlab/core/rng.hpp"

using namespace boltzlab;

namespace {
double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }
}  // namespace

TEST_CASE("rng: ziggurat tables are consistent") {
  const ZigguratTables& t = ziggurat_tables();
  // Every layer has area V: edge[i]·(f(edge[i+1]) − f(edge[i])) = V for i ≥ 1, and the
  // top layer ends at the mode.
  for (int i = 1; i < ZigguratTables::kLayers - 1; ++i) {
    const double area = t.edge[i] * (std::exp(-0.5 * t.edge[i + 1] * t.edge[i + 1]) -
                                     std::exp(-0.5 * t.edge[i] * t.edge[i]));
    CHECK(area == doctest::Approx(ZigguratTables::kV).epsilon(1e-6));
  }
  // The last layer reaches (up to the rounding of R and V) the height f(0) = 1.
  const double top = t.edge[255];
  CHECK(top * (1.0 - std::exp(-0.5 * top * top)) == doctest::Approx(ZigguratTables::kV).epsilon(1e-4));
}

TEST_CASE("rng: ziggurat normals match N(0,1) (moments, tails, Kolmogorov-Smirnov)") {
  // 2e6 draws: SE of the mean 7e-4, of E x² 1e-3, of E x⁴ 7e-3 (Var x⁴ = 96).
  const std::size_t n = 2000000;
  std::vector<double> v(n);
  Rng rng(123, 7);
  rng.fill_normal(v.data(), n);
  double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
  std::size_t tail = 0, beyond2 = 0;
  for (double x : v) {
    m1 += x;
    m2 += x * x;
    m3 += x * x * x;
    m4 += x * x * x * x;
    tail += std::fabs(x) > ZigguratTables::kR;
    beyond2 += std::fabs(x) > 2.0;
  }
  const double dn = static_cast<double>(n);
  CHECK(std::fabs(m1 / dn) < 4 * std::sqrt(1.0 / dn));
  CHECK(std::fabs(m2 / dn - 1.0) < 4 * std::sqrt(2.0 / dn));
  CHECK(std::fabs(m3 / dn) < 4 * std::sqrt(15.0 / dn));
  CHECK(std::fabs(m4 / dn - 3.0) < 4 * std::sqrt(96.0 / dn));
  // Tail (served by the slow path) and a mid-range probability, binomial SEs.
  const double p_tail = 2.0 * (1.0 - normal_cdf(ZigguratTables::kR));
  CHECK(std::fabs(tail / dn - p_tail) < 4 * std::sqrt(p_tail / dn));
  const double p2 = 2.0 * (1.0 - normal_cdf(2.0));
  CHECK(std::fabs(beyond2 / dn - p2) < 4 * std::sqrt(p2 * (1 - p2) / dn));
  // KS: the 0.1 % critical value is 1.95/√n.
  std::sort(v.begin(), v.end());
  double ks = 0.0;
  for (std::size_t i = 0; i < n; i += 7) {
    const double f = normal_cdf(v[i]);
    ks = std::max({ks, std::fabs(f - static_cast<double>(i) / dn), std::fabs(f - static_cast<double>(i + 1) / dn)});
  }
  CHECK(ks < 1.95 / std::sqrt(dn));
}

TEST_CASE("rng: streams are reproducible and distinct") {
  Rng a = stream_for(5, 3), b = stream_for(5, 3), c = stream_for(5, 4);
  double xa[8], xb[8], xc[8];
  a.fill_normal(xa, 8);
  b.fill_normal(xb, 8);
  c.fill_normal(xc, 8);
  CHECK(std::equal(xa, xa + 8, xb));
  CHECK_FALSE(std::equal(xa, xa + 8, xc));
}
