#include "boltzlab/io/seed.hpp"

#include <cmath>

namespace boltzlab {

std::uint64_t read_seed(JsonReader& r, const std::string& key, std::uint64_t fallback) {
  if (!r.has(key)) {
    r.ignore(key);
    return fallback;
  }
  const Json& v = r.get_json(key);
  // nlohmann parses a non-negative integer literal as uint64 (all of [0, 2^64)), a
  // negative one as int64, anything else (2^64 and beyond, 1.5, 1e3) as a double; JSON
  // built in code (a tool's flags) may hold a non-negative int64 too.
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(v.get<std::int64_t>());
  if (v.is_number_float()) {
    // An integral float is taken only where a double holds every integer (< 2^53), so
    // two different seeds can never read as the same one.
    const double d = v.get<double>();
    if (d >= 0 && d == std::trunc(d) && d < 9007199254740992.0) return static_cast<std::uint64_t>(d);
  }
  r.fail(key, "is " + v.dump() + ", but must be an integer in [0, 2^64 - 1]");
}

}  // namespace boltzlab
