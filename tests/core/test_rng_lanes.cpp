// Tests of the Box–Muller normals drawn side by side (lib/boltzlab/core/rng_lanes.*).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng_lanes.hpp"

using namespace boltzlab;

namespace {

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

/// The next n normals of 8 streams (seed, first..first+7), `calls` calls of n each,
/// concatenated per call: [call][lane][k].
std::vector<double> draw_lanes(std::uint64_t seed, std::uint64_t first, std::size_t n, std::size_t calls) {
  std::vector<Rng> rng;
  for (std::size_t j = 0; j < kNormalLanes; ++j) rng.push_back(stream_for(seed, first + j));
  std::vector<double> out(calls * kNormalLanes * n);
  for (std::size_t c = 0; c < calls; ++c) fill_normal_lanes(rng.data(), kNormalLanes, out.data() + c * kNormalLanes * n, n);
  return out;
}

}  // namespace

TEST_CASE("rng lanes: each normal is the Box-Muller value of its stream's two words, to 1e-14") {
  // The reference recomputes every pair from the stream's own words with std::log,
  // std::sqrt, std::cos and std::sin (θ = t·π/4, bit 0 swaps cos and sin, bits 1 and 2
  // are the signs). The polynomial log, cos and sin must agree to ≲ 1e-14 of the value.
  const std::size_t n = 37;  // odd: the last pair's second normal is dropped
  Rng lanes[kNormalLanes], scalar[kNormalLanes];
  for (std::size_t j = 0; j < kNormalLanes; ++j) lanes[j] = scalar[j] = stream_for(2024, j);
  std::vector<double> out(kNormalLanes * n);
  double worst = 0.0;
  for (int call = 0; call < 400; ++call) {
    fill_normal_lanes(lanes, kNormalLanes, out.data(), n);
    for (std::size_t j = 0; j < kNormalLanes; ++j) {
      for (std::size_t k = 0; k < n; k += 2) {
        const std::uint64_t w1 = scalar[j](), w2 = scalar[j]();
        const double u = (static_cast<double>(w1 >> 11) + 1.0) * 0x1.0p-53;
        const long double r = std::sqrt(-2.0L * std::log(static_cast<long double>(u)));
        const long double theta = static_cast<long double>(w2 >> 11) * 0x1.0p-53L * (3.14159265358979323846264338L / 4);
        long double a = std::cos(theta), b = std::sin(theta);
        if (w2 & 1) std::swap(a, b);
        if (w2 & 2) a = -a;
        if (w2 & 4) b = -b;
        const double ref[2] = {static_cast<double>(r * a), static_cast<double>(r * b)};
        for (std::size_t h = 0; h < 2 && k + h < n; ++h) {
          const double got = out[j * n + k + h];
          worst = std::max(worst, std::fabs(got - ref[h]) / std::max(std::fabs(ref[h]), 1e-300));
        }
      }
    }
    // Both copies of every stream are in step after each call (2·⌈n/2⌉ words per lane).
    for (std::size_t j = 0; j < kNormalLanes; ++j) REQUIRE(lanes[j].state().words == scalar[j].state().words);
  }
  MESSAGE("largest relative difference to the long-double reference: " << worst);
  CHECK(worst < 1e-14);
}

TEST_CASE("rng lanes: a stream's draws do not depend on its lane, its partners or their number") {
  const std::size_t n = 33;
  const std::vector<double> eight = draw_lanes(7, 100, n, 3);
  for (std::size_t j = 0; j < kNormalLanes; ++j) {
    Rng alone = stream_for(7, 100 + j);
    std::vector<double> one(n);
    for (std::size_t c = 0; c < 3; ++c) {
      fill_normal_box_muller(alone, one.data(), n);
      for (std::size_t k = 0; k < n; ++k) REQUIRE(one[k] == eight[c * kNormalLanes * n + j * n + k]);
    }
  }
  // Three streams in lanes 0..2 of a partial call, next to other partners.
  Rng three[3] = {stream_for(7, 105), stream_for(7, 100), stream_for(7, 107)};
  std::vector<double> out(3 * n);
  fill_normal_lanes(three, 3, out.data(), n);
  for (std::size_t k = 0; k < n; ++k) {
    CHECK(out[k] == eight[5 * n + k]);
    CHECK(out[n + k] == eight[k]);
    CHECK(out[2 * n + k] == eight[7 * n + k]);
  }
  // Distinct streams give distinct values.
  CHECK(eight[0] != eight[n]);
  std::vector<double> dummy(9 * n);
  Rng nine[9];
  CHECK_THROWS_AS(fill_normal_lanes(nine, 9, dummy.data(), n), ConfigError);
}

TEST_CASE("rng lanes: the checkpointed state continues the draws exactly") {
  Rng a[kNormalLanes];
  for (std::size_t j = 0; j < kNormalLanes; ++j) a[j] = stream_for(11, j);
  std::vector<double> first(kNormalLanes * 32), again(kNormalLanes * 32);
  fill_normal_lanes(a, kNormalLanes, first.data(), 32);
  Rng::State saved[kNormalLanes];
  for (std::size_t j = 0; j < kNormalLanes; ++j) saved[j] = a[j].state();
  fill_normal_lanes(a, kNormalLanes, first.data(), 32);
  Rng b[kNormalLanes];
  for (std::size_t j = 0; j < kNormalLanes; ++j) b[j].set_state(saved[j]);
  fill_normal_lanes(b, kNormalLanes, again.data(), 32);
  CHECK(first == again);
}

TEST_CASE("rng lanes: normals match N(0,1) (moments, pairs, tails, chi-square, Kolmogorov-Smirnov)") {
  // 8 streams × 125 calls × 2001 draws = 2 001 000 normals (odd n: every call drops one).
  const std::vector<double> v = draw_lanes(123, 0, 2001, 125);
  const double dn = static_cast<double>(v.size());
  double m1 = 0, m2 = 0, m3 = 0, m4 = 0, zmax = 0;
  std::size_t beyond3 = 0, beyond4 = 0;
  for (double x : v) {
    m1 += x;
    m2 += x * x;
    m3 += x * x * x;
    m4 += x * x * x * x;
    beyond3 += std::fabs(x) > 3.0;
    beyond4 += std::fabs(x) > 4.0;
    zmax = std::max(zmax, std::fabs(x));
  }
  // Standard errors of the sample moments: √(Var/n) with Var x = 1, Var x² = 2,
  // Var x³ = 15, Var x⁴ = 105 − 9 = 96; tolerance 4 SE each (a false alarm ~6e-5 per check).
  CHECK(std::fabs(m1 / dn) < 4 * std::sqrt(1.0 / dn));
  CHECK(std::fabs(m2 / dn - 1.0) < 4 * std::sqrt(2.0 / dn));
  CHECK(std::fabs(m3 / dn) < 4 * std::sqrt(15.0 / dn));
  CHECK(std::fabs(m4 / dn - 3.0) < 4 * std::sqrt(96.0 / dn));
  // Tail frequencies, binomial SE √(p(1 − p)/n): P(|z| > 3) = 2.70e-3 (≈ 5400 draws),
  // P(|z| > 4) = 6.33e-5 (≈ 127 draws). No draw beyond √(−2 ln 2⁻⁵³) = 8.5699.
  for (const auto& [t, count] : {std::pair<double, std::size_t>{3.0, beyond3}, {4.0, beyond4}}) {
    const double p = 2.0 * (1.0 - normal_cdf(t));
    CHECK(std::fabs(static_cast<double>(count) / dn - p) < 4 * std::sqrt(p * (1 - p) / dn));
  }
  CHECK(zmax < 8.5700);
  // The two normals of a pair (draws 2p, 2p+1 of a stream) are independent: E z₁z₂ = 0
  // (SE 1/√m), E z₁²z₂² = 1 (Var = 9 − 1 = 8), P(|z₁| > |z₂|) = ½ (SE ½/√m): the last
  // fails if the swap of cos and sin were missing (|z₁| ≥ |z₂| always), the first two if
  // the signs or the radius were shared wrongly.
  double c12 = 0, c22 = 0, larger = 0, pairs = 0;
  for (std::size_t row = 0; row + 2001 <= v.size(); row += 2001) {
    for (std::size_t k = 0; k + 1 < 2001; k += 2) {
      const double a = v[row + k], b = v[row + k + 1];
      c12 += a * b;
      c22 += a * a * b * b;
      larger += std::fabs(a) > std::fabs(b);
      pairs += 1;
    }
  }
  CHECK(std::fabs(c12 / pairs) < 4 / std::sqrt(pairs));
  CHECK(std::fabs(c22 / pairs - 1.0) < 4 * std::sqrt(8.0 / pairs));
  CHECK(std::fabs(larger / pairs - 0.5) < 4 * 0.5 / std::sqrt(pairs));
  // Binned χ² over 64 bins of equal probability (Φ⁻¹ bin edges via the CDF): 63 degrees
  // of freedom, 0.1 % critical value 103.4.
  std::vector<double> counts(64, 0.0);
  for (double x : v) counts[std::min<std::size_t>(63, static_cast<std::size_t>(64.0 * normal_cdf(x)))] += 1;
  double chi2 = 0.0;
  for (double c : counts) chi2 += (c - dn / 64) * (c - dn / 64) / (dn / 64);
  CHECK(chi2 < 103.4);
  // Kolmogorov–Smirnov: the 0.1 % critical value is 1.95/√n.
  std::vector<double> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  double ks = 0.0;
  for (std::size_t i = 0; i < sorted.size(); i += 7) {
    const double f = normal_cdf(sorted[i]);
    ks = std::max({ks, std::fabs(f - static_cast<double>(i) / dn), std::fabs(f - static_cast<double>(i + 1) / dn)});
  }
  CHECK(ks < 1.95 / std::sqrt(dn));
}
