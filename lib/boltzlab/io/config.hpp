#pragma once
/// \file config.hpp
/// Strict JSON configuration reading: every key must be consumed, unknown keys are
/// rejected with the closest known key suggested, and every error names the file
/// (or flag) and the key: "potentials/x.json: parameters.temprature: unknown key
/// (did you mean 'temperature'?)".
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace boltzlab {

using Json = nlohmann::json;

/// Levenshtein distance, for "did you mean" suggestions.
std::size_t edit_distance(const std::string& a, const std::string& b);

/// The closest of `candidates` to `key` if within a small edit distance, else "".
std::string closest_key(const std::string& key, const std::vector<std::string>& candidates);

/// `v` as an ostream prints it by default (up to 6 significant digits: "0.1", "1e-05",
/// "inf"), for messages that quote a value.
std::string format_number(double v);

/// Reads a JSON file. \throws IoError if unreadable, ConfigError if malformed (with
/// the line/column reported by the parser).
Json read_json_file(const std::filesystem::path& path);

/// A view of one JSON object that records which keys were read. Call finish() when
/// done: it throws ConfigError naming the first unknown key and its closest match.
class JsonReader {
 public:
  /// `context` names where the object lives, e.g. "potentials/gmm40.json: parameters".
  JsonReader(const Json& object, std::string context);

  bool has(const std::string& key) const;
  /// Required keys. \throws ConfigError if missing or of the wrong type.
  double get_double(const std::string& key);
  long long get_int(const std::string& key);
  std::string get_string(const std::string& key);
  bool get_bool(const std::string& key);
  std::vector<double> get_doubles(const std::string& key);
  /// A nested object or any JSON value (marked as read; the caller validates it).
  const Json& get_json(const std::string& key);
  /// Optional keys with defaults.
  double get_double(const std::string& key, double fallback);
  long long get_int(const std::string& key, long long fallback);
  std::string get_string(const std::string& key, const std::string& fallback);
  bool get_bool(const std::string& key, bool fallback);
  /// Marks a key as known without reading it (it is handled elsewhere).
  void ignore(const std::string& key);
  /// Context string for nested readers: context + "." + key.
  std::string context_of(const std::string& key) const;
  const std::string& context() const { return context_; }
  /// The file part of the context, "path.json: " (empty when the context names no file): what
  /// an options struct's own validate() message is prefixed with when its keys came from here.
  std::string file_prefix() const;
  /// \throws ConfigError on the first key never read.
  void finish() const;

  /// Throws a ConfigError "context.key: message".
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

 private:
  const Json& find(const std::string& key);
  const Json& object_;
  std::string context_;
  mutable std::set<std::string> read_;  // keys asked for (present or not): the known keys
};

/// Replaces non-finite numbers in a JSON tree by null (JSON has no NaN); the
/// caller puts the reason next to it. Returns the number replaced.
std::size_t sanitize_non_finite(nlohmann::json& j);

}  // namespace boltzlab
