#pragma once
/// \file seed.hpp
/// The "seed" key of a settings section, as every protocol reads it.
#include <cstdint>
#include <string>

#include "boltzlab/io/config.hpp"

namespace boltzlab {

/// The integer in [0, 2^64 − 1] under `key` (every value distinct: a seed is never
/// clamped or wrapped), or `fallback` when the key is absent. An integral float is
/// accepted below 2^53, where doubles still hold every integer.
/// \throws ConfigError "<context>.<key>: is -1, but must be an integer in [0, 2^64 - 1]"
///   (JsonReader::fail) for a negative, fractional, too large or non-numeric value.
std::uint64_t read_seed(JsonReader& r, const std::string& key, std::uint64_t fallback);

}  // namespace boltzlab
