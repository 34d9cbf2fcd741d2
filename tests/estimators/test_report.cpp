// The iw-diag report: contract keys, null + reason instead of NaN, the interacting-
// particle flag, and the in-memory analysis writing a run directory atomically.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include <unistd.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/app/iw_diag.hpp"
#include "boltzlab/estimators/report.hpp"
#include "boltzlab/app/run_directory.hpp"

using namespace boltzlab;
namespace fs = std::filesystem;

namespace {

Eigen::VectorXd normal_log_weights(int n, double scale, std::uint64_t seed) {
  Rng rng(seed, 0);
  Eigen::VectorXd lw(n);
  for (int i = 0; i < n; ++i) lw[i] = scale * rng.normal();
  return lw;
}

}  // namespace

TEST_CASE("estimators.report: importance section has the contract keys, S = 1 gives null log Z with a reason") {
  ImportanceReportOptions o;
  o.kt_kj_mol = 2.494;
  o.exact_log_z = 0.0;
  const nlohmann::json j = importance_report(normal_log_weights(500, 1.0, 1), 3, o);
  for (const char* key : {"kish_ess", "ess_fraction", "psis_khat", "psis_reliable", "log_z", "max_weight_share",
                          "kish_ess_clipped", "psis_threshold", "psis_diagnosis"}) {
    CHECK(j.contains(key));
  }
  CHECK(j["non_finite_energies"] == 3);
  CHECK(j["log_z"]["free_energy_kj_mol"].get<double>() ==
        doctest::Approx(-2.494 * j["log_z"]["estimate"].get<double>()));
  CHECK(j["log_z"].contains("z_score"));

  const nlohmann::json one = importance_report(Eigen::VectorXd::Zero(1), 0, ImportanceReportOptions{});
  CHECK(one["log_z"]["estimate"].is_null());
  CHECK(one["log_z"]["estimate_reason"].get<std::string>().find("2 samples") != std::string::npos);
  CHECK(one["psis_khat"].is_null());
  CHECK(one.contains("psis_khat_reason"));
  nlohmann::json copy = one;
  CHECK(sanitize_non_finite(copy) == 0);  // nothing non-finite slipped through
}

TEST_CASE("estimators.report: chains section per parameter, interacting flag and verdict") {
  ChainArray c;
  c.chains = 3;
  c.draws = 200;
  c.params = 2;
  c.data.resize(3 * 200 * 2);
  Rng rng(4, 0);
  for (double& v : c.data) v = rng.normal();
  const nlohmann::json j = chains_report(c, {"a"}, true);
  CHECK(j["parameter_names"] == nlohmann::json({"a", "x1"}));
  REQUIRE(j["rhat"].size() == 2);
  CHECK(j["rhat"][0].get<double>() < 1.05);
  CHECK(j["independent_chains"] == false);
  CHECK(j["notes"][0].get<std::string>().find("interacting") != std::string::npos);
  CHECK(j["converged"] == true);  // iid draws: ESS ≈ 600 > 400, R̂ ≈ 1
  const std::string table = format_report({{"chains", j}});
  CHECK(table.find("bulk-ESS") != std::string::npos);

  c.chains = 1;
  c.draws = 600;
  const nlohmann::json single = chains_report(c, {}, false);
  CHECK(single["rhat"][0].is_null());
  CHECK(single["rhat_reason"][0].get<std::string>().find("2 chains") != std::string::npos);
  CHECK(single["converged"].is_null());
}

TEST_CASE("estimators.report: iw_diagnose writes the run directory atomically and rejects bad input") {
  const fs::path base = fs::temp_directory_path() / ("boltzlab_iwdiag_" + std::to_string(::getpid()));
  fs::remove_all(base);
  IwDiagInput in;
  in.description = "test";
  in.log_weights = normal_log_weights(2000, 0.5, 9);
  RowMatrix x(2000, 2);
  Rng rng(10, 0);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = rng.normal();
  in.samples = x;
  IwDiagOptions options;
  options.plots = false;
  options.regions = {"A:x0<0", "B:x0>=0"};
  {
    RunDirectory out(base / "run");
    const nlohmann::json s = iw_diagnose(in, options, &out);
    out.commit();
    CHECK(s["free_energy_difference"]["region_a"] == "A");
    CHECK(s["rhat"].is_null());
    CHECK(s.contains("rhat_reason"));
  }
  CHECK(fs::exists(base / "run" / "summary.json"));
  CHECK(fs::exists(base / "run" / "psis_log_weights.npy"));
  CHECK(fs::exists(base / "run" / "free_energy.npy"));

  IwDiagInput bad = in;
  bad.samples = RowMatrix::Zero(10, 2);
  {
    RunDirectory out(base / "run");
    CHECK_THROWS_WITH_AS(iw_diagnose(bad, options, &out), doctest::Contains("lengths must match"), DomainError);
  }  // not committed: the earlier run stays
  CHECK(fs::exists(base / "run" / "summary.json"));
  IwDiagOptions one_region = options;
  one_region.regions = {"x0<0"};
  CHECK_THROWS_AS(iw_diagnose(in, one_region, nullptr), ConfigError);
  fs::remove_all(base);
}
