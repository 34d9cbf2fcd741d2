#pragma once
/// \file seed.hpp
/// The "seed" key of a settings section, as every protocol reads it.
#include <cstdint>
#include <string>

#include "boltzlab/io/config.hpp"

namespace boltzlab {

/// An integer ≥ 0 under `key`, or `fallback` when the key is absent.
/// \throws ConfigError "<context>.<key>: is -1, but must be >= 0" (JsonReader::fail).
std::uint64_t read_seed(JsonReader& r, const std::string& key, std::uint64_t fallback);

}  // namespace boltzlab
