#include "boltzlab/io/json_file.hpp"

#include <fstream>
#include <iterator>
#include <set>
#include <vector>

#include "boltzlab/core/error.hpp"

namespace boltzlab {
namespace {

/// "/a/0/b": the JSON pointer (RFC 6901) of a key or index path.
std::string escape_pointer_token(const std::string& token) {
  std::string out;
  for (const char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

/// Tracks the open objects and arrays while nlohmann's parser reports its events, and
/// refuses a key seen before in the same object. nlohmann's own DOM builder keeps the
/// last value of a duplicate key; this check runs first, at the key event.
class DuplicateKeyCheck {
 public:
  explicit DuplicateKeyCheck(std::string source) : source_(std::move(source)) {}

  bool operator()(int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        if (static_cast<std::size_t>(depth) >= kMaxJsonDepth) {
          throw ConfigError(source_ + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
        }
        open_.push_back(Level{event == Event::object_start, {}, {}, 0});
        break;
      case Event::key:
        on_key(parsed.get<std::string>());
        break;
      case Event::object_end:
      case Event::array_end:
        open_.pop_back();
        element_done();
        break;
      case Event::value:
        element_done();
        break;
    }
    return true;  // keep everything: this callback only checks
  }

 private:
  /// One open object (its keys so far, the current one) or array (elements so far).
  struct Level {
    bool object = false;
    std::set<std::string> keys;
    std::string key;
    std::size_t index = 0;
  };

  void on_key(const std::string& key) {
    Level& level = open_.back();
    if (!level.keys.insert(key).second) {
      throw ConfigError(source_ + ": duplicate key '" + key + "' " + where());
    }
    level.key = key;
  }

  void element_done() {
    if (!open_.empty() && !open_.back().object) ++open_.back().index;
  }

  /// "in /parameters/means" for the innermost open object, "at the top level" for the root.
  std::string where() const {
    if (open_.size() == 1) return "at the top level";
    std::string path;
    for (std::size_t k = 0; k + 1 < open_.size(); ++k) {
      path += "/" + (open_[k].object ? escape_pointer_token(open_[k].key) : std::to_string(open_[k].index));
    }
    return "in " + path;
  }

  std::string source_;
  std::vector<Level> open_;
};

}  // namespace

nlohmann::json parse_json(std::string_view text, const std::string& source) {
  DuplicateKeyCheck check(source);
  try {
    return nlohmann::json::parse(text.begin(), text.end(), std::ref(check), /*allow_exceptions=*/true,
                                 /*ignore_comments=*/true);
  } catch (const nlohmann::json::exception& e) {
    // nlohmann's message: "[json.exception.parse_error.101] parse error at line 3, column 5: ..."
    const std::string what = e.what();
    const auto pos = what.find("parse error");
    throw ConfigError(source + ": malformed JSON: " + (pos == std::string::npos ? what : what.substr(pos)));
  }
}

nlohmann::json parse_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open file for reading");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) throw IoError(path.string() + ": read failed");
  return parse_json(text, path.string());
}

}  // namespace boltzlab
