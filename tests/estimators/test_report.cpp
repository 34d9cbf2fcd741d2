// The typed reports (importance weights, chains, iw-diag): to_json() has exactly the
// documented keys, null + reason instead of NaN, the typed numbers are the JSON ones,
// the interacting-particle flag (read from summary.json or inferred from the flow
// name), and the in-memory analysis writing a run directory atomically.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <unistd.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/app/iw_diag.hpp"
#include "boltzlab/estimators/report.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/io/npy.hpp"

using namespace boltzlab;
namespace fs = std::filesystem;

namespace {

Eigen::VectorXd normal_log_weights(int n, double scale, std::uint64_t seed) {
  Rng rng(seed, 0);
  Eigen::VectorXd lw(n);
  for (int i = 0; i < n; ++i) lw[i] = scale * rng.normal();
  return lw;
}

/// Weighted samples: normal log-weights (scale 0.5) and n × 2 standard normal samples.
IwDiagInput weighted_gaussian_input(const std::string& description, int n, std::uint64_t seed) {
  IwDiagInput in;
  in.description = description;
  in.log_weights = normal_log_weights(n, 0.5, seed);
  RowMatrix x(n, 2);
  Rng rng(seed + 1, 0);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = rng.normal();
  in.samples = x;
  return in;
}

/// Chains of iid standard normal draws.
ChainArray normal_chains(std::size_t chains, std::size_t draws, std::size_t params, std::uint64_t seed) {
  ChainArray c;
  c.chains = chains;
  c.draws = draws;
  c.params = params;
  c.data.resize(chains * draws * params);
  Rng rng(seed, 0);
  for (double& v : c.data) v = rng.normal();
  return c;
}

/// Keys of a JSON object.
std::set<std::string> keys_of(const nlohmann::json& j) {
  std::set<std::string> k;
  for (const auto& [key, value] : j.items()) k.insert(key);
  return k;
}

}  // namespace

TEST_CASE("estimators.report: importance section has the contract keys, S = 1 gives null log Z with a reason") {
  ImportanceReportOptions o;
  o.kt_kj_mol = 2.494;
  o.exact_log_z = 0.0;
  const ImportanceReport r = importance_report(normal_log_weights(500, 1.0, 1), 3, o);
  const nlohmann::json j = r.to_json();
  for (const char* key : {"kish_ess", "ess_fraction", "psis_khat", "psis_reliable", "log_z", "max_weight_share",
                          "kish_ess_clipped", "psis_threshold", "psis_diagnosis"}) {
    CHECK(j.contains(key));
  }
  CHECK(j["non_finite_energies"] == 3);
  CHECK(j["log_z"]["free_energy_kj_mol"].get<double>() ==
        doctest::Approx(-2.494 * j["log_z"]["estimate"].get<double>()));
  CHECK(j["log_z"].contains("z_score"));
  // The typed fields are what the JSON shows.
  REQUIRE(r.log_z.estimate);
  CHECK(j["log_z"]["estimate"].get<double>() == r.log_z.estimate->estimate);
  CHECK(j["log_z"]["z_score"].get<double>() == *r.log_z.z_score());
  CHECK(j["kish_ess"].get<double>() == r.weights.kish_ess);
  CHECK(j["psis_khat"].get<double>() == *r.psis.khat.value);

  const ImportanceReport one = importance_report(Eigen::VectorXd::Zero(1), 0, ImportanceReportOptions{});
  CHECK(!one.log_z.estimate);
  const nlohmann::json oj = one.to_json();
  CHECK(oj["log_z"]["estimate"].is_null());
  CHECK(oj["log_z"]["estimate_reason"].get<std::string>().find("2 samples") != std::string::npos);
  CHECK(oj["psis_khat"].is_null());
  CHECK(oj.contains("psis_khat_reason"));
  nlohmann::json copy = oj;
  CHECK(sanitize_non_finite(copy) == 0);  // nothing non-finite slipped through
}

TEST_CASE("estimators.report: to_json has exactly the keys report.hpp documents") {
  // ImportanceReport::to_json: every key of the header comment, and no other.
  const std::set<std::string> importance_keys = {
      "samples", "zero_weight", "non_finite_energies", "kish_ess", "ess_fraction", "kish_ess_clipped",
      "ess_fraction_clipped", "clipped", "clip_fraction", "max_weight_share", "log_weight", "psis_khat",
      "psis_reliable", "psis_diagnosis", "psis_threshold", "psis_min_sample_size", "psis_tail_length",
      "psis_sigma", "psis_kish_ess", "r_eff", "psis_definition", "log_z"};
  ImportanceReportOptions molecular;
  molecular.kt_kj_mol = 2.494;
  molecular.exact_log_z = 0.0;
  const nlohmann::json full = importance_report(normal_log_weights(2000, 1.0, 3), 0, molecular).to_json();
  CHECK(keys_of(full) == importance_keys);
  CHECK(keys_of(full["log_weight"]) == std::set<std::string>{"max", "mean", "sd"});
  // LogZReport::to_json with kT and the exact value.
  CHECK(keys_of(full["log_z"]) == std::set<std::string>{"estimate", "stderr", "ci_low", "ci_high", "level", "method",
                                                        "kt_kj_mol", "free_energy_kj_mol", "stderr_kj_mol", "exact",
                                                        "z_score"});
  // Without kT and exact value: only the estimate, its interval and the method.
  const nlohmann::json plain = importance_report(normal_log_weights(2000, 1.0, 3), 0, {}).to_json();
  CHECK(keys_of(plain["log_z"]) == std::set<std::string>{"estimate", "stderr", "ci_low", "ci_high", "level", "method"});
  // Heavy-tailed weights (k̂ > 0.7): unreliable, so the log Z section carries the warning.
  const nlohmann::json heavy = importance_report(normal_log_weights(2000, 4.0, 3), 0, {}).to_json();
  REQUIRE(heavy["psis_reliable"] == false);
  CHECK(keys_of(heavy["log_z"]) == std::set<std::string>{"estimate", "stderr", "ci_low", "ci_high", "level", "method",
                                                         "warning"});
  // S = 1: the four quantities that cannot be computed are null with their "_reason".
  const nlohmann::json one = importance_report(Eigen::VectorXd::Zero(1), 0, {}).to_json();
  std::set<std::string> one_keys = importance_keys;
  for (const char* key : {"psis_khat", "psis_threshold", "psis_min_sample_size", "psis_sigma"}) {
    one_keys.insert(std::string(key) + "_reason");
    CHECK(one[key].is_null());
  }
  CHECK(keys_of(one) == one_keys);
  CHECK(keys_of(one["log_z"]) == std::set<std::string>{"estimate", "estimate_reason", "stderr", "stderr_reason"});

  // ChainsReport::to_json: every key of the header comment (source only when set).
  const std::set<std::string> chain_keys = {
      "chains", "draws", "params", "parameter_names", "rhat", "ess_bulk", "ess_tail", "ess_mean", "iat",
      "rhat_max", "ess_bulk_min", "ess_tail_min", "converged", "verdict", "independent_chains", "notes",
      "definitions"};
  ChainArray c = normal_chains(4, 100, 2, 6);
  ChainsReport cr = chains_report(c, {}, false);
  CHECK(keys_of(cr.to_json()) == chain_keys);
  cr.source = "chains.npy";
  std::set<std::string> with_source = chain_keys;
  with_source.insert("source");
  CHECK(keys_of(cr.to_json()) == with_source);
  // One chain: R̂ (and with it the verdict) unavailable, with the reasons.
  c.chains = 1;
  c.draws = 400;
  std::set<std::string> single_keys = chain_keys;
  for (const char* key : {"rhat_reason", "rhat_max_reason", "converged_reason"}) single_keys.insert(key);
  CHECK(keys_of(chains_report(c, {}, false).to_json()) == single_keys);
}

TEST_CASE("estimators.report: chains section per parameter, interacting flag and verdict") {
  ChainArray c = normal_chains(3, 200, 2, 4);
  const ChainsReport r = chains_report(c, {"a"}, true);
  const nlohmann::json j = r.to_json();
  CHECK(j["parameter_names"] == nlohmann::json({"a", "x1"}));
  REQUIRE(j["rhat"].size() == 2);
  CHECK(j["rhat"][0].get<double>() < 1.05);
  CHECK(j["rhat"][0].get<double>() == *r.diagnostics[0].rhat.value);
  CHECK(j["independent_chains"] == false);
  CHECK(j["notes"][0].get<std::string>().find("interacting") != std::string::npos);
  CHECK(j["converged"] == true);  // iid draws: ESS ≈ 600 > 400, R̂ ≈ 1
  REQUIRE(r.converged);
  CHECK(*r.converged);
  const std::string table = format_chains_report(r);
  CHECK(table.find("bulk-ESS") != std::string::npos);
  CHECK(table.find("3 chains × 200 draws × 2 parameters") != std::string::npos);
  CHECK(table.find("note: draws come from interacting particles") != std::string::npos);

  c.chains = 1;
  c.draws = 600;
  const ChainsReport single_report = chains_report(c, {}, false);
  const nlohmann::json single = single_report.to_json();
  CHECK(single["rhat"][0].is_null());
  CHECK(single["rhat_reason"][0].get<std::string>().find("2 chains") != std::string::npos);
  CHECK(single["converged"].is_null());
  CHECK(format_chains_report(single_report).find("R̂: " + single_report.diagnostics[0].rhat.reason) !=
        std::string::npos);
}

TEST_CASE("estimators.report: the importance table shows the typed numbers") {
  ImportanceReportOptions o;
  o.kt_kj_mol = 2.494;
  o.exact_log_z = 0.0;
  const ImportanceReport r = importance_report(normal_log_weights(500, 1.0, 1), 3, o);
  const std::string table = format_importance_report(r);
  CHECK(table.find("Importance weights (500 samples, 3 non-finite energies)") != std::string::npos);
  CHECK(table.find("F = −kT log Z") != std::string::npos);
  CHECK(table.find("exact log Z") != std::string::npos);
  CHECK(table.find(r.psis.diagnosis) != std::string::npos);
  const std::string one = format_importance_report(importance_report(Eigen::VectorXd::Zero(1), 0, {}));
  CHECK(one.find("n/a (needs at least 2 samples)") != std::string::npos);
}

TEST_CASE("estimators.report: iw_diagnose writes the run directory atomically and rejects bad input") {
  const fs::path base = fs::temp_directory_path() / ("boltzlab_iwdiag_" + std::to_string(::getpid()));
  fs::remove_all(base);
  const IwDiagInput in = weighted_gaussian_input("test", 2000, 9);
  IwDiagOptions options;
  options.plots = false;
  options.regions = {"A:x0<0", "B:x0>=0"};
  {
    RunDirectory out(base / "run");
    const IwDiagReport report = iw_diagnose(in, options, &out);
    out.commit();
    const nlohmann::json s = report.to_json();
    CHECK(s["free_energy_difference"]["region_a"] == "A");
    CHECK(s["rhat"].is_null());
    CHECK(s.contains("rhat_reason"));
    CHECK(!report.chains);
    REQUIRE(report.weights);
    CHECK(s["kish_ess"].get<double>() == report.weights->weights.kish_ess);
    CHECK(s["weights"] == report.weights->to_json());
    // summary.json is to_json() plus the format version.
    nlohmann::json written = read_json_file(base / "run" / "summary.json");
    CHECK(written["format_version"] == kRunFormatVersion);
    written.erase("format_version");
    CHECK(written == s);
    const std::string table = format_report(report);
    CHECK(table.find("iw-diag: test") == 0);
    CHECK(table.find("Chains: n/a (no chains given") != std::string::npos);
    CHECK(table.find("Free-energy difference F(A) − F(B)") != std::string::npos);
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

TEST_CASE("estimators.report: iw-diag summary has exactly the keys iw_diag.hpp documents") {
  IwDiagInput in = weighted_gaussian_input("keys", 1000, 11);
  in.source_run = SourceRun{"wgf-relax", "gaussian2d"};
  in.chains = normal_chains(4, 50, 1, 14);
  IwDiagOptions options;
  options.plots = false;
  options.regions = {"x0<0", "x0>=0"};
  const nlohmann::json s = iw_diagnose(in, options, nullptr).to_json();
  const std::set<std::string> expected = {
      "tool", "input", "source_run", "weights", "kish_ess", "ess_fraction", "kish_ess_clipped",
      "ess_fraction_clipped", "max_weight_share", "psis_khat", "psis_reliable", "psis_diagnosis", "log_z", "chains",
      "rhat", "ess_bulk", "ess_tail", "free_energy", "free_energy_difference", "plots", "notes"};
  CHECK(keys_of(s) == expected);
  CHECK(keys_of(s["source_run"]) == std::set<std::string>{"tool", "potential"});
  CHECK(keys_of(s["log_z"]) == std::set<std::string>{"estimate", "stderr", "ci_low", "ci_high", "level"});
  CHECK(s["chains"]["source"] == "");
  CHECK(s["free_energy"]["kind"] == "2-D marginal, reweighted to the target");

  // Neither weights nor chains: the contract keys are null with their reasons.
  IwDiagInput bare;
  bare.samples = RowMatrix(in.samples->leftCols(1));
  const nlohmann::json b = iw_diagnose(bare, IwDiagOptions{}, nullptr).to_json();
  std::set<std::string> bare_keys = {"tool", "input", "weights_reason", "log_z", "chains_reason", "free_energy",
                                     "plots", "notes"};
  for (const char* key : {"kish_ess", "ess_fraction", "kish_ess_clipped", "ess_fraction_clipped", "max_weight_share",
                          "psis_khat", "psis_reliable", "psis_diagnosis", "rhat", "ess_bulk", "ess_tail"}) {
    bare_keys.insert(key);
    bare_keys.insert(std::string(key) + "_reason");
    CHECK(b[key].is_null());
  }
  CHECK(keys_of(b) == bare_keys);
  CHECK(!b["free_energy"].contains("kind"));  // the 1-D profile has no "kind"
}

TEST_CASE("estimators.report: the interacting flag of a run directory, read or inferred from the flow name") {
  const fs::path base = fs::temp_directory_path() / ("boltzlab_iwdiag_flag_" + std::to_string(::getpid()));
  fs::remove_all(base);
  fs::create_directories(base);
  ChainArray c = normal_chains(4, 60, 1, 13);
  auto run_dir = [&](const std::string& name, const nlohmann::json& summary) {
    const fs::path d = base / name;
    fs::create_directories(d);
    write_npy(d / "chains.npy", {c.chains, c.draws}, c.data.data());
    std::ofstream(d / "summary.json") << summary.dump();
    return d;
  };
  auto chain_notes = [](const IwDiagInput& in) {
    IwDiagOptions o;
    o.plots = false;
    return iw_diagnose(in, o, nullptr).chains->notes;
  };
  // The flag wins over the name: a flow named like an interacting one, flagged independent.
  const IwDiagInput flagged = load_run_directory(run_dir("flag", {{"interacting", false}, {"options", {{"flow", "svgd"}}}}));
  CHECK(!flagged.interacting);
  CHECK(flagged.interacting_inferred_from_flow.empty());
  CHECK(chain_notes(flagged).empty());
  const IwDiagInput custom =
      load_run_directory(run_dir("custom", {{"interacting", true}, {"options", {{"flow", "my-flow"}}}}));
  CHECK(custom.interacting);
  CHECK(chain_notes(custom).size() == 1);  // interacting_particles_note() only
  // Written before the flag existed: guessed from the name, and the guess is noted.
  const IwDiagInput old = load_run_directory(run_dir("old", {{"options", {{"flow", "svgd"}}}}));
  CHECK(old.interacting);
  CHECK(old.interacting_inferred_from_flow == "svgd");
  const std::vector<std::string> notes = chain_notes(old);
  REQUIRE(notes.size() == 2);
  CHECK(notes[1].find("inferred from the flow name 'svgd'") != std::string::npos);
  const IwDiagInput old_mala = load_run_directory(run_dir("old_mala", {{"options", {{"flow", "mala"}}}}));
  CHECK(!old_mala.interacting);
  CHECK(chain_notes(old_mala).at(0).find("interacting = false was inferred") == 0);
  CHECK_THROWS_WITH_AS(load_run_directory(run_dir("bad", {{"interacting", "yes"}})),
                       doctest::Contains("\"interacting\" is \"yes\", but must be true or false"), DomainError);
  fs::remove_all(base);
}
