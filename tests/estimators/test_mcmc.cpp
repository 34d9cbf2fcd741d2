// MCMC diagnostics: FFT autocovariance vs the direct sum, ESS and τ of AR(1)
// chains against the exact τ = (1+ρ)/(1−ρ), R̂ detecting a shifted chain, rank
// invariance, and the bad-input cases (one chain, too few draws, non-finite).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include <boost/math/distributions/normal.hpp>

#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/estimators/mcmc.hpp"

using namespace boltzlab;

namespace {

/// Stationary AR(1) chains x_t = ρ x_{t−1} + ε_t, ε ~ N(0,1); chain c uses stream c.
RowMatrix ar1_chains(int chains, int draws, double rho, std::uint64_t seed) {
  RowMatrix x(chains, draws);
  for (int c = 0; c < chains; ++c) {
    Rng rng(seed, static_cast<std::uint64_t>(c));
    x(c, 0) = rng.normal() / std::sqrt(1 - rho * rho);
    for (int t = 1; t < draws; ++t) x(c, t) = rho * x(c, t - 1) + rng.normal();
  }
  return x;
}

}  // namespace

TEST_CASE("estimators.mcmc: FFT autocovariance equals the direct sum") {
  Rng rng(1, 0);
  for (std::size_t n : {1u, 2u, 3u, 17u, 64u, 1000u}) {
    std::vector<double> x(n);
    for (auto& v : x) v = rng.normal() + 3.0;
    const auto fast = autocovariance(x.data(), n);
    const auto slow = autocovariance_direct(x.data(), n);
    REQUIRE(fast.size() == n);
    for (std::size_t t = 0; t < n; ++t) CHECK(fast[t] == doctest::Approx(slow[t]).epsilon(1e-12).scale(slow[0] + 1));
  }
}

TEST_CASE("estimators.mcmc: ESS and integrated autocorrelation time of AR(1) chains match tau = (1+rho)/(1-rho)") {
  // 4 chains × 5000 draws, ρ = 0.8: τ = 9, ESS = 20000/9 ≈ 2222. The relative sd of
  // Geyer's τ̂ is about √(2(2W+1)/N) with window W ≈ 5τ (Sokal 1997), i.e. ≈ 10% here;
  // 30% is 3 sd. Bulk-ESS of a Gaussian AR(1) equals the mean-ESS up to the same noise.
  const double rho = 0.8, tau = (1 + rho) / (1 - rho);
  const RowMatrix x = ar1_chains(4, 5000, rho, 42);
  const ChainDiagnostics d = chain_diagnostics(x);
  REQUIRE(d.iat.ok());
  CHECK(*d.iat.value == doctest::Approx(tau).epsilon(0.3));
  REQUIRE(d.ess_mean.ok());
  CHECK(*d.ess_mean.value == doctest::Approx(20000 / tau).epsilon(0.3));
  REQUIRE(d.ess_bulk.ok());
  CHECK(*d.ess_bulk.value == doctest::Approx(20000 / tau).epsilon(0.3));
  REQUIRE(d.ess_tail.ok());
  CHECK(*d.ess_tail.value > 0);
  CHECK(*d.ess_tail.value < 20000);
  REQUIRE(d.rhat.ok());
  CHECK(*d.rhat.value < 1.01);  // converged chains

  // Independent draws: τ ≈ 1 (ESS ≈ S; sd of ESS/S ≈ √(2/N·…) ≈ 2%, allow 10%).
  const RowMatrix iid = ar1_chains(4, 2000, 0.0, 43);
  CHECK(*integrated_autocorrelation_time(iid).value == doctest::Approx(1.0).epsilon(0.1));
}

TEST_CASE("estimators.mcmc: rank-normalized R-hat flags a chain stuck elsewhere") {
  // One of four chains shifted by 2 stationary sd: the between-chain variance of the
  // split-chain means is O(1) while the within-chain variance stays O(1) — R̂ is
  // far above the usual 1.01 alarm (about √(1 + 0.75) ≈ 1.3 before rank normalization).
  RowMatrix x = ar1_chains(4, 1000, 0.5, 7);
  x.row(3).array() += 2.0 / std::sqrt(1 - 0.25);
  const Quantity r = rhat_rank(x);
  REQUIRE(r.ok());
  CHECK(*r.value > 1.1);
  // Scale-only differences are caught by the folded part (tail R̂): chain 3 has 3× the spread.
  RowMatrix y = ar1_chains(4, 1000, 0.0, 8);
  y.row(3) *= 3.0;
  CHECK(*rhat_rank(y).value > 1.05);
}

TEST_CASE("estimators.mcmc: rank-based diagnostics are invariant under monotone transforms") {
  const RowMatrix x = ar1_chains(3, 400, 0.6, 9);
  const RowMatrix ex = x.array().exp().matrix();
  CHECK(*ess_bulk(ex).value == doctest::Approx(*ess_bulk(x).value).epsilon(1e-12));
  CHECK(*ess_tail(ex).value == doctest::Approx(*ess_tail(x).value).epsilon(1e-12));
  // The folded part uses |x − median|, which exp does not preserve; the bulk part must match.
  const RowMatrix zx = rank_normalize(split_chains(x)), zex = rank_normalize(split_chains(ex));
  CHECK((zx - zex).cwiseAbs().maxCoeff() < 1e-14);
}

TEST_CASE("estimators.mcmc: split chains drop the middle draw and ranks average ties") {
  RowMatrix x(1, 5);
  x << 1, 2, 3, 4, 5;
  const RowMatrix s = split_chains(x);
  REQUIRE(s.rows() == 2);
  REQUIRE(s.cols() == 2);
  CHECK(s(0, 0) == 1);
  CHECK(s(0, 1) == 2);
  CHECK(s(1, 0) == 4);
  CHECK(s(1, 1) == 5);
  RowMatrix t(1, 4);
  t << 0.5, 0.5, 0.2, 0.9;
  const RowMatrix z = rank_normalize(t);
  CHECK(z(0, 0) == z(0, 1));                    // tie → same average rank 2.5
  CHECK(z(0, 2) < z(0, 0));
  CHECK(z(0, 3) == doctest::Approx(-z(0, 2)));  // ranks 1 and 4 are symmetric
  CHECK(quantile_type7(t, 0.5) == doctest::Approx(0.5));
  CHECK(quantile_type7(t, 0.05) == doctest::Approx(0.2 + 0.15 * 0.3));
}

TEST_CASE("estimators.mcmc: one chain, too few draws, non-finite and constant draws give reasons, never NaN") {
  const RowMatrix one = ar1_chains(1, 100, 0.3, 1);
  const Quantity r = rhat_rank(one);
  CHECK_FALSE(r.ok());
  CHECK(r.reason.find("at least 2 chains") != std::string::npos);
  CHECK(ess_bulk(one).ok());  // ESS works on one chain (split in two)

  const RowMatrix short_chains = ar1_chains(4, 3, 0.3, 2);
  for (const Quantity& q : {rhat_rank(short_chains), ess_bulk(short_chains), ess_tail(short_chains)}) {
    CHECK_FALSE(q.ok());
    CHECK(q.reason.find("at least 4 draws") != std::string::npos);
  }
  RowMatrix bad = ar1_chains(2, 50, 0.3, 3);
  bad(1, 7) = std::numeric_limits<double>::quiet_NaN();
  CHECK_FALSE(ess_bulk(bad).ok());
  CHECK(ess_bulk(bad).reason.find("non-finite") != std::string::npos);
  const RowMatrix constant = RowMatrix::Constant(2, 50, 1.5);
  const ChainDiagnostics d = chain_diagnostics(constant);
  CHECK_FALSE(d.rhat.ok());
  CHECK_FALSE(d.rhat.reason.empty());
  nlohmann::json j;
  put_quantity(j, "rhat", d.rhat);
  CHECK(j["rhat"].is_null());
  CHECK(j.contains("rhat_reason"));
}

TEST_CASE("estimators.mcmc: chains x draws x params arrays") {
  ChainArray a;
  a.chains = 2;
  a.draws = 3;
  a.params = 2;
  a.data = {0, 10, 1, 11, 2, 12, 3, 13, 4, 14, 5, 15};
  const RowMatrix p1 = a.parameter(1);
  CHECK(p1(0, 0) == 10);
  CHECK(p1(1, 2) == 15);
  CHECK_THROWS(a.parameter(2));
  a.data.pop_back();
  CHECK_THROWS(a.validate());
}

TEST_CASE("estimators.mcmc: inverse normal CDF to full precision and thread-count independence") {
  const boost::math::normal_distribution<double> normal;
  double max_rel = 0;
  for (double p : {1e-300, 1e-100, 1e-20, 1e-8, 1e-3, 0.02, 0.02425, 0.1, 0.3, 0.5, 0.7, 0.97575, 0.999, 1 - 1e-10}) {
    const double ours = standard_normal_quantile(p), ref = boost::math::quantile(normal, p);
    max_rel = std::max(max_rel, std::abs(ours - ref) / std::max(1.0, std::abs(ref)));
  }
  CHECK(max_rel < 1e-13);
  CHECK(standard_normal_quantile(0.5) == 0.0);
  // Chains diagnosed with 1 and with all threads give bit-identical results.
  const RowMatrix x = ar1_chains(64, 300, 0.7, 12);
  set_num_threads(1);
  const ChainDiagnostics serial = chain_diagnostics(x);
  set_num_threads(0);
  const ChainDiagnostics parallel = chain_diagnostics(x);
  CHECK(*serial.ess_bulk.value == *parallel.ess_bulk.value);
  CHECK(*serial.ess_tail.value == *parallel.ess_tail.value);
  CHECK(*serial.rhat.value == *parallel.rhat.value);
}
