#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/config.hpp"

using namespace boltzlab;
namespace fs = std::filesystem;

namespace {

fs::path write_text(const std::string& name, const std::string& text) {
  const fs::path dir = fs::temp_directory_path() / "boltzlab_test_json_file";
  fs::create_directories(dir);
  std::ofstream(dir / name) << text;
  return dir / name;
}

/// The ConfigError message of reading `text` from a file called `name` ("" if none).
std::string error_of(const std::string& name, const std::string& text) {
  const fs::path p = write_text(name, text);
  try {
    read_json_file(p);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("json: a duplicate key at any depth is refused, naming the file, the key and the object") {
  // nlohmann::json keeps the last of two equal keys without a word; a potential file
  // with "temperature" twice would silently run at the second value.
  const std::string dir = (fs::temp_directory_path() / "boltzlab_test_json_file").string();
  CHECK(error_of("top.json", R"({"type": "gaussian", "type": "manywell"})") ==
        dir + "/top.json: duplicate key 'type' at the top level");
  CHECK(error_of("nested.json", R"({"parameters": {"dim": 2, "std": 1, "dim": 3}})") ==
        dir + "/nested.json: duplicate key 'dim' in /parameters");
  CHECK(error_of("array.json", R"({"a": [{"k": 1}, {"x": {"k": 1, "k": 2}}]})") ==
        dir + "/array.json: duplicate key 'k' in /a/1/x");
  CHECK(error_of("escaped.json", R"({"a/b": {"c~d": {"k": 1, "k": 1}}})") ==
        dir + "/escaped.json: duplicate key 'k' in /a~1b/c~0d");
  // Equal keys in different objects are fine, and so are equal values.
  const fs::path ok = write_text("ok.json", R"({"k": {"k": 1}, "j": [{"k": 1}, {"k": 1}]})");
  CHECK(read_json_file(ok)["j"][1]["k"] == 1);
}

TEST_CASE("json: malformed text and absurd nesting are one-line ConfigErrors naming the file") {
  const std::string syntax = error_of("syntax.json", "{\"a\": 1,}");
  CHECK(syntax.find("syntax.json: malformed JSON: parse error at line 1") != std::string::npos);
  CHECK(error_of("trailing.json", "{\"a\": 1} x").find("trailing.json: malformed JSON") != std::string::npos);
  CHECK(error_of("overflow.json", "{\"a\": 1e999}").find("overflow.json: malformed JSON") != std::string::npos);
  // 100000 nested arrays: parsed without recursion, then refused before anything
  // recursive (dump, destruction, readers) can overflow the stack.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK(error_of("deep.json", deep).find("deep.json: JSON nested deeper than 256 levels") != std::string::npos);
  const std::string ok = std::string(200, '[') + std::string(200, ']');
  CHECK(read_json_file(write_text("nested_ok.json", ok)).is_array());
  CHECK_THROWS_AS(read_json_file(fs::temp_directory_path() / "boltzlab_no_such_file.json"), IoError);
}

TEST_CASE("json: JsonReader::get_int refuses integers outside long long instead of wrapping them") {
  // 2^64 − 1 is stored by nlohmann as an unsigned integer; reading it as long long used
  // to wrap it to −1 (so "particles": 18446744073709551615 was reported as -1).
  const Json j = Json::parse(R"({"u": 18446744073709551615, "f": 1e300, "n": -3, "x": 4.0, "h": 2.5})");
  JsonReader r(j, "ctx");
  CHECK_THROWS_WITH_AS(r.get_int("u"), "ctx.u: is 18446744073709551615, but must be at most 9223372036854775807",
                       ConfigError);
  CHECK_THROWS_WITH_AS(r.get_int("f"), "ctx.f: expected an integer, got 1e+300", ConfigError);
  CHECK_THROWS_AS(r.get_int("h"), ConfigError);
  CHECK(r.get_int("n") == -3);
  CHECK(r.get_int("x") == 4);
}
