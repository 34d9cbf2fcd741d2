#pragma once
/// \file registry.hpp
/// The one place that maps target type names to factories, and the loader of
/// potential files (potentials/*.json):
///
///   { "type": "manywell",            // registry name
///     "name": "manywell32",          // optional display name
///     "description": "...",          // optional
///     "parameters": { ... },         // type-specific, unknown keys rejected
///     "generator": { ... },          // optional, read by bg-sample
///     "sampler": { ... },            // optional defaults for wgf-relax
///     "reference": { ... },          // optional, read by reference-MD tools
///     "replica_exchange": { ... } }  // optional, defaults of replica-exchange
///                                    // (flows/replica_exchange.hpp)
///
/// Relative paths inside parameters are relative to the potential file's folder.
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "boltzlab/io/config.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab {

/// Builds a target from its "parameters" reader; `dir` is the folder of the
/// potential file (for relative paths). Must call params.finish().
using TargetFactory = std::function<std::unique_ptr<Target>(JsonReader& params,
                                                            const std::filesystem::path& dir)>;

/// Registered target type names, sorted.
std::vector<std::string> target_types();

/// Builds a target of `type` from `parameters`. \throws ConfigError for an
/// unknown type (suggesting the closest) or invalid parameters.
std::unique_ptr<Target> make_target(const std::string& type, const Json& parameters,
                                    const std::filesystem::path& dir, const std::string& context);

/// A loaded potential file.
struct Potential {
  std::filesystem::path path;
  std::string type;
  std::string name;
  Json raw;         ///< the whole file
  Json generator;   ///< "generator" section or null
  Json sampler;     ///< "sampler" section or null
  Json reference;   ///< "reference" section or null
  Json replica_exchange;  ///< "replica_exchange" section or null
  std::unique_ptr<Target> target;
};

/// Reads and validates a potential file and builds its target.
/// \throws IoError / ConfigError naming the file and key.
Potential load_potential(const std::filesystem::path& path);

}  // namespace boltzlab
