// The closing verdict of the tools (app/console.hpp): rows in the words of summary.json,
// warnings, and the elapsed-time ticker.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "boltzlab/app/console.hpp"

using namespace boltzlab;
using Json = nlohmann::json;

namespace {

/// An importance section as ImportanceReport::to_json writes it (the keys the verdict reads).
Json importance(bool reliable) {
  return {{"samples", 100000},
          {"zero_weight", 0},
          {"non_finite_energies", 3},
          {"kish_ess", 790.4},
          {"ess_fraction", 0.00791},
          {"kish_ess_clipped", 800.0},
          {"ess_fraction_clipped", 0.008},
          {"clipped", 10},
          {"psis_khat", reliable ? 0.3 : 1.07},
          {"psis_reliable", reliable},
          {"psis_diagnosis", reliable ? "reliable: k̂ = 0.3 ≤ threshold 0.7 for S = 100000"
                                      : "unreliable: k̂ = 1.07 ≥ 1: the weight distribution has no finite mean"},
          {"log_z",
           {{"estimate", -3.21437}, {"stderr", 0.1512}, {"ci_low", -3.5}, {"ci_high", -2.9}, {"level", 0.95},
            {"exact", 0.0}, {"z_score", -21.26}}}};
}

}  // namespace

TEST_CASE("console: the verdict of a generator run in the words of its summary") {
  Json summary = {{"tool", "bg-sample"}, {"samples", 100000}, {"importance", importance(false)},
                  {"warnings", {"no training data: trained by reverse KL only (mode-seeking)"}}};
  summary["importance"]["log_z"]["warning"] = "PSIS k-hat says the weights are unreliable";
  const ConsoleVerdict v = run_verdict("bg-sample", summary, "wrote runs/x");
  const std::string out = v.format();
  CHECK(out.rfind("bg-sample: wrote runs/x\n", 0) == 0);
  CHECK(out.find("  ESS (Kish)  0.00791 of S = 100000 (790 draws); top 10 clipped: 0.008\n") != std::string::npos);
  // The k̂ row is the report's own diagnosis (never re-derived); "k̂" takes one column.
  CHECK(out.find("  PSIS k̂      unreliable: k̂ = 1.07 ≥ 1: the weight distribution has no finite mean\n") !=
        std::string::npos);
  CHECK(out.find("  log Z       -3.2144 ± 0.15  (0.95 CI -3.5 … -2.9); exact 0, z-score -21.3\n") != std::string::npos);
  const std::string warnings = v.format_warnings();
  CHECK(warnings.find("bg-sample: warning: 3 of 100000 samples have a non-finite energy (weight 0)\n") !=
        std::string::npos);
  CHECK(warnings.find("bg-sample: warning: PSIS k-hat says the weights are unreliable\n") != std::string::npos);
  CHECK(warnings.find("bg-sample: warning: no training data: trained by reverse KL only (mode-seeking)\n") !=
        std::string::npos);
}

TEST_CASE("console: a reliable report has no warnings; no finite weight gives one") {
  Json imp = importance(true);
  imp["non_finite_energies"] = 0;
  const ConsoleVerdict v = run_verdict("iw-diag", {{"weights", imp}}, "diagnosed x");
  CHECK(v.warnings.empty());
  CHECK(v.format().find("reliable: k̂ = 0.3") != std::string::npos);
  const ConsoleVerdict none = run_verdict(
      "bg-sample", {{"importance", {{"samples", 10}, {"ess_fraction", 0.0}, {"note", "no finite log-weight"}}}}, "x");
  REQUIRE(none.warnings.size() == 1);
  CHECK(none.warnings[0].find("no usable importance weights") != std::string::npos);
}

TEST_CASE("console: wgf-relax rows show a step size only when the flow has one") {
  Json s = {{"statistics", {{"flow", "openmm-langevin"}}},
            {"counts", {{"particles", 2}, {"dim", 66}, {"steps_done", 4}, {"non_finite_evaluations", 0}}},
            {"potential", {{"name", "ala2"}}},
            {"timings", {{"flow", 0.25}}},
            {"energy", {{"mean", -12.5}, {"std", 1.0}}}};
  std::string out = run_verdict("wgf-relax", s, "wrote r").format();
  CHECK(out.find("flow  openmm-langevin on ala2: 2 particles × 66, 4 steps in 0.25 s") != std::string::npos);
  CHECK(out.find("step size") == std::string::npos);
  s["statistics"]["step_size"] = 0.0;
  CHECK(run_verdict("wgf-relax", s, "wrote r").format().find("step size") == std::string::npos);
  s["statistics"]["step_size"] = 0.05;
  s["statistics"]["acceptance_rate"] = 0.574;
  out = run_verdict("wgf-relax", s, "wrote r").format();
  CHECK(out.find("step size   0.05\n") != std::string::npos);
  CHECK(out.find("acceptance  0.574\n") != std::string::npos);
  // Non-finite evaluations of wgf-relax (e.g. rejected MALA proposals on a wall) are a row,
  // not a warning: diverged particles get the run's own warning line.
  s["counts"]["non_finite_evaluations"] = 4;
  CHECK(run_verdict("wgf-relax", s, "wrote r").format_warnings().empty());
  CHECK(run_verdict("wgf-relax", s, "wrote r").format().find("4 energy evaluations") != std::string::npos);
  // Diverged particles: the mean is over the healthy ones, and the row says so.
  s["counts"]["healthy_particles"] = 1;
  s["statistics"]["mean_energy_healthy"] = -3.25;
  out = run_verdict("wgf-relax", s, "wrote r").format();
  CHECK(out.find("-3.25 over 1 of 2 particles (1 diverged, excluded)") != std::string::npos);
  CHECK(out.find("-12.5") == std::string::npos);
}

TEST_CASE("console: non-finite energy evaluations of other tools are a warning") {
  const Json s = {{"counts", {{"non_finite_evaluations", 4}}}};
  CHECK(run_verdict("md-reference", s, "wrote r").format_warnings() ==
        "md-reference: warning: 4 energy evaluations were not finite\n");
}

TEST_CASE("console: the elapsed-time ticker prints while alive, and nothing when disabled") {
  std::FILE* out = std::tmpfile();
  REQUIRE(out != nullptr);
  {
    const ElapsedTicker ticker("fit", true, 0.02, out);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  {
    const ElapsedTicker quiet("quiet fit", false, 0.01, out);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::rewind(out);
  std::string text;
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, out)) text += buffer;
  std::fclose(out);
  std::size_t ticks = 0;
  for (std::size_t at = text.find("s elapsed"); at != std::string::npos; at = text.find("s elapsed", at + 1)) ++ticks;
  CHECK(ticks >= 2);  // 150 ms at 20 ms intervals (a loaded machine may skip some)
  CHECK(text.find("fit: done in ") != std::string::npos);
  CHECK(text.find("quiet fit") == std::string::npos);
}
