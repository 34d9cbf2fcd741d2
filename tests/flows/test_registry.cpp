// Tests of the flow table (lib/boltzlab/flows/registry.cpp, flows/flow.hpp): one row per
// flow with its factory, whether its particles interact, and the one-line description
// that `wgf-relax --help` prints.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/flows/flow.hpp"

using namespace boltzlab;

TEST_CASE("flow table: sorted unique names, one-line descriptions, names match the flows built") {
  const auto& table = flow_table();
  REQUIRE(table.size() >= 7);
  const std::vector<std::string> names = flow_names();
  CHECK(std::is_sorted(names.begin(), names.end()));
  CHECK(std::set<std::string>(names.begin(), names.end()).size() == names.size());
  for (const FlowInfo& row : table) {
    CAPTURE(row.name);
    CHECK(&flow_info(row.name) == &row);
    CHECK(!row.description.empty());
    CHECK(row.description.find('\n') == std::string::npos);
    CHECK(row.description.size() <= 110);  // one line of --help next to the name
    CHECK(static_cast<bool>(row.factory));
    if (row.name == "mmd") {
      // The only flow that cannot be built without parameters (it needs target samples).
      CHECK_THROWS_WITH_AS(make_flow(row.name, {}), doctest::Contains("target_samples"), ConfigError);
    } else {
      CHECK(make_flow(row.name, {})->name() == row.name);
    }
  }
}

TEST_CASE("flow table: interacting-particle flows are marked, independent chains are not") {
  for (const char* name : {"svgd", "blob", "mmd"}) {
    CAPTURE(name);
    CHECK(flow_info(name).interacting);
  }
  for (const char* name : {"ula", "mala", "baoab", "openmm-langevin"}) {
    CAPTURE(name);
    CHECK_FALSE(flow_info(name).interacting);
  }
}

TEST_CASE("flow table: an unknown name is one ConfigError with a suggestion and the list") {
  CHECK_THROWS_WITH_AS(flow_info("svdg", "wgf-relax --flow"),
                       doctest::Contains("wgf-relax --flow: unknown flow 'svdg' (did you mean 'svgd'?); available: "),
                       ConfigError);
  CHECK_THROWS_WITH_AS(make_flow("baoa", {}, "--flow"), doctest::Contains("did you mean 'baoab'"), ConfigError);
}
