// Tests of lib/boltzlab/flows/openmm_md.*: reading the MD protocol of a potential file.
#include <doctest/doctest.h>

#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/flows/openmm_md.hpp"

using namespace boltzlab;

TEST_CASE("openmm md: a protocol temperature that is not > 0 is refused, not replaced by the target's") {
  // LangevinMdOptions::temperature 0 means "the target's temperature" inside; a file
  // saying "temperature": 0 used to run at the target's temperature without a word.
  for (const char* bad : {"0", "-300", "0.0"}) {
    INFO(bad);
    const Json j = Json::parse(std::string(R"({"temperature": )") + bad + "}");
    CHECK_THROWS_WITH_AS(md_options_from_json(j, "p.json: reference"),
                         doctest::Contains("p.json: reference.temperature: is "), ConfigError);
  }
  CHECK(md_options_from_json(Json::parse(R"({"temperature": 310})"), "p.json: reference").temperature == 310.0);
  // Absent: the target's temperature (0 inside), as documented.
  CHECK(md_options_from_json(Json::parse("{}"), "p.json: reference").temperature == 0.0);
  // The other positive quantities are refused at 0 as well, naming the key.
  for (const char* key : {"timestep_fs", "friction_per_ps", "frame_interval_ps", "production_ns", "minimize_tolerance"}) {
    INFO(key);
    const Json j = Json::parse(std::string("{\"") + key + "\": 0}");
    const std::string expected = std::string("p.json: reference.") + key + ": is 0";
    CHECK_THROWS_WITH_AS(md_options_from_json(j, "p.json: reference"), doctest::Contains(expected.c_str()),
                         ConfigError);
  }
}
