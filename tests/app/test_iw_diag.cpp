// Tests of lib/boltzlab/app/iw_diag.* where the importance weights decide what may be
// reported: no reweighted free energy when PSIS k̂ ≥ 1, and an exploded run (NaN, +inf
// or all −inf log-weights, coordinates beyond the double range) reported as nulls with
// counts and reasons instead of failing the whole report. The checks read the JSON
// summary and the table, the outputs users see.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <variant>

#include "boltzlab/app/iw_diag.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"

using namespace boltzlab;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

/// n draws of a 2-D standard normal as samples, with log-weights from `log_weight(u)`
/// of a uniform u ∈ (0, 1].
template <class F>
IwDiagInput weighted_input(int n, std::uint64_t seed, F log_weight) {
  IwDiagInput in;
  in.description = "test";
  Rng rng(seed, 0);
  Eigen::VectorXd lw(n);
  RowMatrix x(n, 2);
  for (int i = 0; i < n; ++i) {
    lw[i] = log_weight(rng.uniform_pos());
    x(i, 0) = rng.normal();
    x(i, 1) = rng.normal();
  }
  in.log_weights = lw;
  in.samples = x;
  return in;
}

IwDiagOptions quiet_options() {
  IwDiagOptions o;
  o.plots = false;
  o.regions = {"A:x0<0", "B:x0>=0"};
  return o;
}

}  // namespace

TEST_CASE("iw-diag: PSIS k-hat >= 1: no reweighted free-energy surface or difference, and why") {
  // w = U^{-k} with U uniform is Pareto with tail index 1/k: P(W > w) = w^{-1/k}, so
  // the PSIS shape is k. k = 1.5 has no finite mean; k̂ over 4000 draws has a standard
  // error of ~0.1 (Vehtari et al. 2024), far from the threshold 1.
  const IwDiagInput heavy = weighted_input(4000, 3, [](double u) { return -1.5 * std::log(u); });
  const IwDiagReport r = iw_diagnose(heavy, quiet_options(), nullptr);
  const nlohmann::json s = r.to_json();
  REQUIRE(s["psis_khat"].is_number());
  CHECK(s["psis_khat"].get<double>() > 1.2);
  CHECK(s["free_energy"].is_null());
  CHECK(s.value("free_energy_reason", "").find("PSIS k̂ = ") == 0);
  CHECK(s.value("free_energy_reason", "").find("≥ 1: the importance weights have no finite mean") != std::string::npos);
  CHECK(s["free_energy_difference"].is_null());
  CHECK(s.value("free_energy_difference_reason", "") == s.value("free_energy_reason", "x"));
  const std::string table = format_report(r);
  CHECK(table.find("Free-energy surface: not computed (PSIS k̂ = ") != std::string::npos);
  CHECK(table.find("Free-energy difference: not computed (PSIS k̂ = ") != std::string::npos);
  // Control: a light tail (k = 0.3) gets its surface and difference.
  const IwDiagInput light = weighted_input(4000, 3, [](double u) { return -0.3 * std::log(u); });
  const nlohmann::json ls = iw_diagnose(light, quiet_options(), nullptr).to_json();
  CHECK(ls["psis_khat"].get<double>() < 0.7);
  CHECK(ls["free_energy"].is_object());
  CHECK(ls["free_energy_difference"].is_object());
  CHECK_FALSE(ls.contains("free_energy_reason"));
}

TEST_CASE("iw-diag: an exploded run gives null weights with counts, not a failed report") {
  IwDiagInput in = weighted_input(500, 4, [](double u) { return std::log(u); });
  (*in.log_weights)[3] = std::numeric_limits<double>::quiet_NaN();
  (*in.log_weights)[7] = kInf;
  (*in.log_weights)[9] = -kInf;
  in.chains = ChainArray{4, 10, 1, std::vector<double>(40, 0.5)};
  for (std::size_t k = 0; k < 40; ++k) in.chains->data[k] = std::sin(static_cast<double>(k * k));
  IwDiagReport r;
  REQUIRE_NOTHROW(r = iw_diagnose(in, quiet_options(), nullptr));
  const nlohmann::json s = r.to_json();
  CHECK(s["kish_ess"].is_null());
  CHECK(s["kish_ess_reason"].get<std::string>().find("1 NaN and 1 +inf of 500 log-weights") != std::string::npos);
  CHECK(s["log_z"]["estimate"].is_null());
  REQUIRE(s.contains("weight_counts"));
  CHECK(s["weight_counts"]["nan"] == 1);
  CHECK(s["weight_counts"]["positive_infinite"] == 1);
  CHECK(s["weight_counts"]["zero_weight"] == 1);
  CHECK(s["weight_counts"]["finite"] == 497);
  CHECK(s["free_energy"].is_null());
  CHECK(s.value("free_energy_reason", "").find("the importance weights are unusable") == 0);
  CHECK(s["free_energy_difference"].is_null());
  CHECK(s["chains"].is_object());  // the rest of the report is still there
  CHECK(format_report(r).find("Importance weights: n/a (log-weights: 1 NaN and 1 +inf") != std::string::npos);

  // Every energy of the run non-finite: all log-weights −inf, counted, still a report.
  IwDiagInput dead = in;
  dead.log_weights.reset();
  dead.reduced_energies = Eigen::VectorXd::Constant(500, kInf);
  dead.log_q = Eigen::VectorXd::Zero(500);
  const nlohmann::json d = iw_diagnose(dead, quiet_options(), nullptr).to_json();
  CHECK(d["kish_ess"].is_null());
  CHECK(d["kish_ess_reason"].get<std::string>().find("all 500 log-weights are -inf") != std::string::npos);
  CHECK(d["weight_counts"]["zero_weight"] == 500);
  CHECK(d["weights_reason"] == d["kish_ess_reason"]);

  // Unusable weights and nothing else to analyse: one clear error.
  IwDiagInput only;
  only.log_weights = in.log_weights;
  CHECK_THROWS_WITH_AS(iw_diagnose(only, IwDiagOptions{}, nullptr), doctest::Contains("nothing else to analyse"),
                       DomainError);
}

TEST_CASE("iw-diag: coordinates beyond the double range skip the surface with the reason") {
  IwDiagInput in;
  in.description = "exploded samples";
  RowMatrix x(4, 2);
  x << 1e308, 0.0, -1e308, 1.0, 0.5, 0.5, std::numeric_limits<double>::quiet_NaN(), 2.0;
  in.samples = x;
  IwDiagReport r;
  REQUIRE_NOTHROW(r = iw_diagnose(in, IwDiagOptions{}, nullptr));
  const nlohmann::json s = r.to_json();
  CHECK(s["free_energy"].is_null());
  CHECK(s.value("free_energy_reason", "").find("beyond the double range (exploded samples)") != std::string::npos);
}

// The binning of the free-energy maps.
namespace {

/// Bins per axis of the 2-D map iw_diagnose made.
std::size_t map_bins_of(const IwDiagReport& r) {
  REQUIRE(r.free_energy.has_value());
  const auto* f = std::get_if<FreeEnergy2D>(&r.free_energy->result);
  REQUIRE(f != nullptr);
  CHECK(f->x_axis.bins == f->y_axis.bins);
  return f->x_axis.bins;
}

}  // namespace

TEST_CASE("iw-diag: free-energy map bins follow the sample size") {
  // 512 samples on 50 x 50 bins leave ~0.2 samples per bin: a map of noise. The rule
  // round(sqrt(n/10)) in [8, 64] gives 8 x 8 (8 samples per bin on average).
  Rng rng(3, 0);
  RowMatrix x(512, 2);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    x(i, 0) = rng.normal();
    x(i, 1) = rng.normal();
  }
  IwDiagInput in;
  in.samples = x;
  IwDiagOptions options;
  CHECK(map_bins_of(iw_diagnose(in, options, nullptr)) == 8);
  // Weighted samples count by their Kish ESS: 4000 samples, half of them with weight 0
  // (ESS 2000) give round(sqrt(200)) = 14.
  RowMatrix y(4000, 2);
  Eigen::VectorXd lw(4000);
  for (Eigen::Index i = 0; i < y.rows(); ++i) {
    y(i, 0) = rng.normal();
    y(i, 1) = rng.normal();
    lw[i] = i % 2 ? 0.0 : -std::numeric_limits<double>::infinity();
  }
  IwDiagInput weighted;
  weighted.samples = y;
  weighted.log_weights = lw;
  CHECK(map_bins_of(iw_diagnose(weighted, options, nullptr)) == 14);
  // --bins decides when given.
  options.bins = 30;
  CHECK(map_bins_of(iw_diagnose(in, options, nullptr)) == 30);
}
