#include "boltzlab/io/seed.hpp"

namespace boltzlab {

std::uint64_t read_seed(JsonReader& r, const std::string& key, std::uint64_t fallback) {
  if (!r.has(key)) {
    r.ignore(key);
    return fallback;
  }
  const long long seed = r.get_int(key);
  if (seed < 0) r.fail(key, "is " + std::to_string(seed) + ", but must be >= 0");
  return static_cast<std::uint64_t>(seed);
}

}  // namespace boltzlab
