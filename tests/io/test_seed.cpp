#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/io/seed.hpp"

using namespace boltzlab;

namespace {

std::uint64_t seed_of(const std::string& value) {
  const Json j = Json::parse("{\"seed\": " + value + "}");
  JsonReader r(j, "f.json: sampler");
  const std::uint64_t seed = read_seed(r, "seed", 99);
  r.finish();
  return seed;
}

}  // namespace

TEST_CASE("seed: every integer from 0 to 2^64 - 1 is read exactly and gives its own stream") {
  // Seeds at and above 2^63 − 1 used to wrap negative (and be refused) or be clamped;
  // each must come back as itself, so that different seeds give different streams.
  const std::uint64_t kTop = 18446744073709551615ULL;
  CHECK(seed_of("0") == 0);
  CHECK(seed_of("9223372036854775806") == 9223372036854775806ULL);
  CHECK(seed_of("9223372036854775807") == 9223372036854775807ULL);
  CHECK(seed_of("9223372036854775808") == 9223372036854775808ULL);
  CHECK(seed_of("18446744073709551614") == kTop - 1);
  CHECK(seed_of("18446744073709551615") == kTop);
  CHECK(seed_of("1e3") == 1000);
  // Rng mixes the whole 64-bit seed: neighbouring seeds at the top give other streams.
  const std::uint64_t seeds[] = {9223372036854775806ULL, 9223372036854775807ULL, 9223372036854775808ULL, kTop - 1,
                                 kTop};
  for (std::size_t a = 0; a < 5; ++a)
    for (std::size_t b = a + 1; b < 5; ++b) CHECK(stream_for(seeds[a], 0)() != stream_for(seeds[b], 0)());
  const Json empty = Json::object();
  JsonReader r(empty, "ctx");
  CHECK(read_seed(r, "seed", 42) == 42);
  // JSON built in code holds a signed integer (the tools put their --seed flag so).
  Json built;
  built["seed"] = 3LL;
  REQUIRE(built["seed"].is_number_unsigned() == false);
  JsonReader rb(built, "options");
  CHECK(read_seed(rb, "seed", 42) == 3);
  built["seed"] = -3LL;
  JsonReader rn(built, "options");
  CHECK_THROWS_AS(read_seed(rn, "seed", 42), ConfigError);
}

TEST_CASE("seed: negative, fractional, too large and non-numeric seeds are refused naming the field") {
  for (const char* bad : {"-1", "1.5", "18446744073709551616", "1e300", "9007199254740993.0", "\"7\"", "true"}) {
    INFO(bad);
    try {
      seed_of(bad);
      FAIL("expected ConfigError");
    } catch (const ConfigError& e) {
      CHECK(std::string(e.what()).find("f.json: sampler.seed: is ") == 0);
      CHECK(std::string(e.what()).find("must be an integer in [0, 2^64 - 1]") != std::string::npos);
    }
  }
}
