#include "boltzlab/io/config.hpp"

#include <cmath>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/json_file.hpp"

namespace boltzlab {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string format_number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string closest_key(const std::string& key, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = std::max<std::size_t>(3, key.size() / 3) + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(key, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

Json read_json_file(const std::filesystem::path& path) { return parse_json_file(path); }

JsonReader::JsonReader(const Json& object, std::string context)
    : object_(object), context_(std::move(context)) {
  if (!object_.is_object()) {
    throw ConfigError(context_ + ": expected a JSON object, got " + std::string(object_.type_name()));
  }
}

bool JsonReader::has(const std::string& key) const {
  read_.insert(key);  // asking about a key makes it a known one (for "did you mean")
  return object_.contains(key);
}

std::string JsonReader::context_of(const std::string& key) const {
  return context_.empty() ? key : context_ + "." + key;
}

std::string JsonReader::file_prefix() const {
  const auto colon = context_.rfind(": ");
  return colon == std::string::npos ? std::string() : context_.substr(0, colon + 2);
}

void JsonReader::fail(const std::string& key, const std::string& message) const {
  throw ConfigError(context_of(key) + ": " + message);
}

const Json& JsonReader::find(const std::string& key) {
  auto it = object_.find(key);
  if (it == object_.end()) fail(key, "missing required key");
  read_.insert(key);
  return *it;
}

double JsonReader::get_double(const std::string& key) {
  const Json& v = find(key);
  if (!v.is_number()) fail(key, "expected a number, got " + v.dump());
  return v.get<double>();
}

long long JsonReader::get_int(const std::string& key) {
  const Json& v = find(key);
  constexpr long long kMax = std::numeric_limits<long long>::max();
  if (v.is_number_unsigned()) {  // a non-negative integer literal, up to 2^64 − 1
    if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(kMax)) {
      fail(key, "is " + v.dump() + ", but must be at most " + std::to_string(kMax));
    }
    return v.get<long long>();
  }
  if (v.is_number_integer()) return v.get<long long>();
  if (v.is_number_float()) {
    // An integral float (3.0, 1e3) in range; the cast is checked first, as out-of-range
    // float-to-integer conversion is undefined.
    const double d = v.get<double>();
    constexpr double kTwo63 = 9223372036854775808.0;
    if (d == std::trunc(d) && d >= -kTwo63 && d < kTwo63) return static_cast<long long>(d);
  }
  fail(key, "expected an integer, got " + v.dump());
}

std::string JsonReader::get_string(const std::string& key) {
  const Json& v = find(key);
  if (!v.is_string()) fail(key, "expected a string, got " + v.dump());
  return v.get<std::string>();
}

bool JsonReader::get_bool(const std::string& key) {
  const Json& v = find(key);
  if (!v.is_boolean()) fail(key, "expected true or false, got " + v.dump());
  return v.get<bool>();
}

std::vector<double> JsonReader::get_doubles(const std::string& key) {
  const Json& v = find(key);
  if (!v.is_array()) fail(key, "expected an array of numbers, got " + v.dump());
  std::vector<double> out;
  out.reserve(v.size());
  for (const auto& e : v) {
    if (!e.is_number()) fail(key, "expected an array of numbers, found " + e.dump());
    out.push_back(e.get<double>());
  }
  return out;
}

const Json& JsonReader::get_json(const std::string& key) { return find(key); }

double JsonReader::get_double(const std::string& key, double fallback) {
  read_.insert(key);
  return has(key) ? get_double(key) : fallback;
}
long long JsonReader::get_int(const std::string& key, long long fallback) {
  read_.insert(key);
  return has(key) ? get_int(key) : fallback;
}
std::string JsonReader::get_string(const std::string& key, const std::string& fallback) {
  read_.insert(key);
  return has(key) ? get_string(key) : fallback;
}
bool JsonReader::get_bool(const std::string& key, bool fallback) {
  read_.insert(key);
  return has(key) ? get_bool(key) : fallback;
}

void JsonReader::ignore(const std::string& key) { read_.insert(key); }

void JsonReader::finish() const {
  std::vector<std::string> known(read_.begin(), read_.end());
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (read_.count(it.key())) continue;
    std::string msg = "unknown key";
    const std::string guess = closest_key(it.key(), known);
    if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
    throw ConfigError(context_of(it.key()) + ": " + msg);
  }
}

std::size_t sanitize_non_finite(nlohmann::json& j) {
  std::size_t n = 0;
  if (j.is_number_float()) {
    if (!std::isfinite(j.get<double>())) {
      j = nullptr;
      return 1;
    }
  } else if (j.is_array() || j.is_object()) {
    for (auto& e : j) n += sanitize_non_finite(e);
  }
  return n;
}

}  // namespace boltzlab
