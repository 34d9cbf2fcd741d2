#pragma once
/// \file json_file.hpp
/// The one way JSON comes in: a strict parse that refuses what nlohmann::json accepts
/// silently, duplicate keys (last wins) and nesting deep enough to exhaust the stack of a
/// recursive consumer, besides malformed text. Every JSON input the project reads
/// (potential files, Z-matrix files, summary.json, flag values, checkpoint headers) goes
/// through parse_json or parse_json_file (read_json_file of config.hpp calls it).
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace boltzlab {

/// The deepest nesting of arrays and objects accepted (the shipped files use fewer than 6).
inline constexpr std::size_t kMaxJsonDepth = 256;

/// Parses JSON text (comments allowed); `source` names it in messages.
/// \throws ConfigError "SOURCE: malformed JSON: parse error at line 3, column 5: ...",
///   "SOURCE: duplicate key 'k' in /path/to/object" (a JSON pointer; "at the top level"
///   for the outermost object) or "SOURCE: JSON nested deeper than 256 levels".
nlohmann::json parse_json(std::string_view text, const std::string& source);

/// parse_json of a file's contents, the file named in messages.
/// \throws IoError if unreadable; ConfigError as parse_json.
nlohmann::json parse_json_file(const std::filesystem::path& path);

}  // namespace boltzlab
