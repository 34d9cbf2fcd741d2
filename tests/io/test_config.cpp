#include <doctest/doctest.h>

#include <limits>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/config.hpp"

using namespace boltzlab;

TEST_CASE("config: unknown keys are rejected with a suggestion") {
  Json j = Json::parse(R"({"temperature": 300, "temprature": 1})");
  JsonReader r(j, "file.json: parameters");
  CHECK(r.get_double("temperature") == 300.0);
  try {
    r.finish();
    FAIL("expected ConfigError");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) ==
          "file.json: parameters.temprature: unknown key (did you mean 'temperature'?)");
  }
}

TEST_CASE("config: optional keys count as known, type errors name the key") {
  Json j = Json::parse(R"({"stepsize": 0.1, "n": "x"})");
  JsonReader r(j, "ctx");
  CHECK(r.get_double("step_size", 1.0) == 1.0);
  CHECK_THROWS_WITH_AS(r.get_int("n"), "ctx.n: expected an integer, got \"x\"", ConfigError);
  CHECK_THROWS_WITH_AS(r.finish(), "ctx.stepsize: unknown key (did you mean 'step_size'?)", ConfigError);
}

TEST_CASE("config: keys probed with has() are suggested for typos") {
  Json j = Json::parse(R"({"sdt": 1.0})");
  JsonReader r(j, "ctx");
  CHECK_FALSE(r.has("std"));
  CHECK_THROWS_WITH_AS(r.finish(), "ctx.sdt: unknown key (did you mean 'std'?)", ConfigError);
}

TEST_CASE("config: format_number prints a value as messages quote it") {
  CHECK(format_number(0.1) == "0.1");
  CHECK(format_number(1e-5) == "1e-05");
  CHECK(format_number(-2.5) == "-2.5");
  CHECK(format_number(1234567.0) == "1.23457e+06");
  CHECK(format_number(std::numeric_limits<double>::infinity()) == "inf");
}
