// A seeded mutation fuzzer of the readers of untrusted files: .npy arrays (io/npy) and
// potential files (io/json_file → targets/registry load_potential, and the MD and
// replica-exchange sections of flows/). No libFuzzer: valid inputs are mutated by
// random byte edits (bit flips, random bytes, insertions, deletions, truncation, copied
// ranges, dictionary tokens) and by structured edits (npy: random shapes with huge, zero
// and overflowing dimensions, wrong dtypes and versions, wrong data sizes; JSON:
// duplicate keys, values of the wrong type, extreme numbers), from a fixed seed.
//
// Every outcome must be a successful read whose result is self-consistent, or a
// boltzlab::Error; any other exception fails the test, and a crash kills it.
// Allocation bound of the .npy reader (checked with test::AllocationGuard on every
// input): no single request above 2 × input size + 64 KiB and at most 3 × input size +
// 80 KiB in total (the doubles of the result are at most twice the bytes of 4-byte
// elements, the header is part of the input, plus one 64 KiB conversion buffer).
// The potential reader must never ask for more than 64 MiB at once (the shipped
// potentials need < 1 MiB): sizes in a file are bounded before they are allocated.
//
// 10^4 mutated inputs per reader by default (a few seconds); BOLTZLAB_FUZZ_ITERATIONS=N
// sets N per reader, BOLTZLAB_FUZZ_SEED=S another seed (to run longer campaigns).
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/flows/openmm_md.hpp"
#include "boltzlab/flows/replica_exchange.hpp"
#include "boltzlab/io/json_file.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/targets/registry.hpp"
#include "support/allocation_guard.hpp"
#include "support/npy_bytes.hpp"

using namespace boltzlab;
namespace fs = std::filesystem;
using boltzlab::testing::npy_bytes;

namespace {

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

std::size_t fuzz_iterations() { return static_cast<std::size_t>(env_or("BOLTZLAB_FUZZ_ITERATIONS", 10000)); }
std::uint64_t fuzz_seed() { return env_or("BOLTZLAB_FUZZ_SEED", 20240601); }

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// Writes a fresh file (removed first: ext4 flushes a file truncated to 0 and rewritten
/// on close, which would make every iteration wait for the disk).
void write_bytes(const fs::path& p, const std::string& bytes) {
  fs::remove(p);
  std::ofstream(p, std::ios::binary) << bytes;
}

/// The first 600 bytes of an input, escaped, for a failure message.
std::string excerpt(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < 600; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

/// Random edits of a byte string, drawn from one Rng stream.
class Mutator {
 public:
  Mutator(std::uint64_t seed, std::uint64_t stream) : rng_(seed, stream) {}

  std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng_() % n); }
  bool coin() { return (rng_() & 1) != 0; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

  /// 1 to 4 byte-level edits; `tokens` is the dictionary of the format.
  std::string mutate(std::string s, const std::vector<std::string>& tokens) {
    const std::size_t edits = 1 + below(4);
    for (std::size_t e = 0; e < edits; ++e) edit(s, tokens);
    return s;
  }

 private:
  void edit(std::string& s, const std::vector<std::string>& tokens) {
    const std::size_t at = below(s.size() + 1);
    switch (below(8)) {
      case 0:
        if (at < s.size()) s[at] = static_cast<char>(s[at] ^ (1 << below(8)));
        break;
      case 1:
        if (at < s.size()) s[at] = static_cast<char>(below(256));
        break;
      case 2:
        for (std::size_t k = 1 + below(8); k > 0; --k) s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), static_cast<char>(below(256)));
        break;
      case 3:
        s.erase(std::min(at, s.size()), 1 + below(16));
        break;
      case 4:
        s.resize(below(s.size() + 1));
        break;
      case 5: {  // copy a range elsewhere
        const std::size_t from = below(s.size() + 1);
        s.insert(at, s.substr(from, 1 + below(32)));
        break;
      }
      case 6:
        s.insert(at, pick(tokens));
        break;
      default: {  // overwrite with a token
        const std::string& t = pick(tokens);
        s.replace(std::min(at, s.size()), t.size(), t);
        break;
      }
    }
  }

  Rng rng_;
};

/// Counts outcomes; keeps the first few unexpected ones.
struct FuzzTally {
  std::size_t inputs = 0, parsed = 0, refused = 0, unexpected = 0;
  std::string first_unexpected;

  void fail(std::size_t iteration, const std::string& what, const std::string& input) {
    if (unexpected++ < 5) {
      first_unexpected += "\niteration " + std::to_string(iteration) + ": " + what + "\n  input: " + excerpt(input);
    }
  }
};

// ---------------------------------------------------------------- .npy

std::string npy_dict(const std::string& descr, bool fortran, const std::string& shape) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + shape + ", }";
}

/// Valid .npy files of several dtypes, shapes, orders and versions, plus numpy's own.
std::vector<std::string> npy_seeds() {
  std::vector<std::string> seeds;
  const std::vector<std::pair<std::string, std::size_t>> dtypes = {{"<f8", 8}, {"<f4", 4}, {"<i8", 8}, {"<i4", 4}};
  const std::vector<std::pair<std::string, std::size_t>> shapes = {{"()", 1}, {"(0,)", 0}, {"(5,)", 5},
                                                                   {"(3, 4)", 12}, {"(2, 3, 4)", 24}, {"(1, 1, 1, 1)", 1}};
  int version = 0;
  for (const auto& [descr, item] : dtypes) {
    for (const auto& [shape, n] : shapes) {
      std::string data(n * item, '\0');
      for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 37 + 11);
      seeds.push_back(npy_bytes(npy_dict(descr, (version & 1) != 0, shape), data, 1 + version % 3, 64));
      ++version;
    }
  }
  const fs::path data = BOLTZLAB_TEST_DATA;
  for (const char* name : {"numpy_f8.npy", "numpy_f4.npy", "numpy_i8.npy", "numpy_f8_fortran.npy"}) {
    seeds.push_back(read_bytes(data / name));
  }
  return seeds;
}

const std::vector<std::string>& npy_tokens() {
  static const std::vector<std::string> tokens = {
      "(", ")", ",", ", ", "-", "0", "1", "9", "'", "\"", "{", "}", ":", " ", "\n", "True", "False", "'shape': ",
      "'descr': ", "'fortran_order': ", "'<f8'", "'<f4'", "'>f8'", "'<c16'", "'|O'", "9223372036854775807",
      "9223372036854775808", "18446744073709551615", "18446744073709551616", "4294967296", "1000000000",
      "(9223372036854775807, 2)", "(0, 9223372036854775807)", "\x93NUMPY", std::string("\x01\x00", 2),
      std::string("\x02\x00", 2), std::string("\xff\xff", 2), std::string("\x00", 1)};
  return tokens;
}

/// A structured .npy: a random dtype, shape, order, version, alignment and data size.
std::string structured_npy(Mutator& m) {
  static const std::vector<std::string> descrs = {"<f8", "<f4", "<i8", "<i4", "=f8", "f8", ">f8", "<f2", "|u1",
                                                  "<c16", "|O", "", "<f8'", "V8"};
  static const std::vector<std::string> dims = {"0", "1", "2", "3", "7", "255", "65536", "4294967296",
                                                "1000000000", "9223372036854775807", "9223372036854775808",
                                                "18446744073709551615", "99999999999999999999999", "-1", "2.5"};
  const std::size_t nd = m.below(5);
  std::string shape = "(";
  for (std::size_t k = 0; k < nd; ++k) shape += (k ? ", " : "") + m.pick(dims);
  shape += nd == 1 ? ",)" : ")";
  const std::size_t data_bytes = m.coin() ? 8 * m.below(64) : m.below(300);
  const int major = static_cast<int>(1 + m.below(4));
  const std::size_t align = m.pick(std::vector<std::size_t>{64, 64, 16, 0, 7});
  return npy_bytes(npy_dict(m.pick(descrs), m.coin(), shape), std::string(data_bytes, '\x3f'), major, align);
}

/// The reader's result must describe itself: the shape's size is the data's, within
/// the bytes of the input.
std::string npy_inconsistency(const NpyArray& a, std::size_t input_size) {
  std::size_t n = 1;
  for (const std::size_t d : a.shape) n *= d;
  if (n != a.data.size()) return "shape " + shape_string(a.shape) + " but " + std::to_string(a.data.size()) + " values";
  if (a.data.size() * 4 > input_size) return "more values than the input's bytes allow";
  return "";
}

/// parse_npy of one input under the allocation bound; the outcome goes into `tally`.
void fuzz_npy_once(const std::string& input, std::size_t iteration, FuzzTally& tally) {
  ++tally.inputs;
  const std::size_t single = 2 * input.size() + (64 << 10), total = 3 * input.size() + (80 << 10);
  try {
    test::AllocationGuard guard(single);
    NpyArray a;
    try {
      a = parse_npy(input, "fuzz.npy");
    } catch (const Error&) {
      if (guard.total_bytes() > total) tally.fail(iteration, "allocated " + std::to_string(guard.total_bytes()), input);
      ++tally.refused;
      return;
    }
    if (guard.total_bytes() > total) tally.fail(iteration, "allocated " + std::to_string(guard.total_bytes()), input);
    const std::string bad = npy_inconsistency(a, input.size());
    if (!bad.empty()) tally.fail(iteration, bad, input);
    ++tally.parsed;
  } catch (const std::bad_alloc&) {
    tally.fail(iteration, "an allocation above the bound (" + std::to_string(single) + " bytes)", input);
  } catch (const std::exception& e) {
    tally.fail(iteration, std::string("non-boltzlab exception: ") + e.what(), input);
  }
}

/// Every 64th input also goes through read_npy from a file: same outcome as parse_npy.
void check_file_reader_agrees(const std::string& input, const fs::path& file, std::size_t iteration,
                              FuzzTally& tally) {
  write_bytes(file, input);
  std::string from_memory, from_file;
  NpyArray a, b;
  try {
    a = parse_npy(input, file.string());
  } catch (const Error& e) {
    from_memory = e.what();
  }
  try {
    b = read_npy(file);
  } catch (const Error& e) {
    from_file = e.what();
  }
  // Bitwise (NaN payloads included); memcmp of empty vectors would pass it null pointers.
  const bool same_data = a.data.size() == b.data.size() &&
                         (a.data.empty() ||
                          std::memcmp(a.data.data(), b.data.data(), a.data.size() * sizeof(double)) == 0);
  if (from_memory != from_file || a.shape != b.shape || !same_data) {
    tally.fail(iteration, "read_npy and parse_npy disagree: '" + from_file + "' vs '" + from_memory + "'", input);
  }
}

// ---------------------------------------------------------------- potential files

/// Interesting replacement values for structured JSON edits.
const std::vector<std::string>& json_values() {
  static const std::vector<std::string> values = {
      "0", "-1", "-0.0", "0.5", "1e-320", "1e308", "-1e308", "9007199254740993", "9223372036854775807",
      "9223372036854775808", "18446744073709551615", "18446744073709551616", "1e19", "1000000000", "100000",
      "null", "true", "false", "\"\"", "\"x\"", "\"../../../../etc/passwd\"", "[]", "[1, 2]", "[[1, 2], [3]]",
      "{}", "{\"a\": 1}", "[0, -1, 1e308]"};
  return values;
}

const std::vector<std::string>& json_tokens() {
  static const std::vector<std::string> tokens = {
      "{", "}", "[", "]", ",", ":", "\"", "\\", "\\u0000", "-", "0", "1e999", "-1", "18446744073709551616",
      "null", "true", "\"type\": ", "\"dim\": ", "\"parameters\": {}, ", "/*", "*/", "//", "\n", "[[[[[[[[",
      "]]]]]]]]", "\xc3\xa9", "\xff"};
  return tokens;
}

/// Pre-order JSON pointers of every node of `j`.
void collect_pointers(const Json& j, const Json::json_pointer& at, std::vector<Json::json_pointer>& out) {
  out.push_back(at);
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) collect_pointers(v, at / k, out);
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i) collect_pointers(j[i], at / i, out);
  }
}

/// One structured edit of a valid document: a value replaced (extreme number, wrong
/// type) or a key of some object repeated with another value.
std::string structured_json(Mutator& m, const Json& doc) {
  std::vector<Json::json_pointer> nodes;
  collect_pointers(doc, Json::json_pointer(), nodes);
  Json j = doc;
  const Json::json_pointer at = m.pick(nodes);
  const std::string value = m.pick(json_values());
  if (!(m.coin() && j.at(at).is_object() && !j.at(at).empty())) {
    if (at.empty()) return value;
    j.at(at) = Json::parse(value);
    return j.dump(m.coin() ? 2 : -1);
  }
  // A duplicate: the object's text with one of its keys repeated at the front.
  const Json& object = j.at(at);
  auto it = object.begin();
  std::advance(it, static_cast<std::ptrdiff_t>(m.below(object.size())));
  const std::string duplicate = Json(it.key()).dump() + ": " + value + ", ";
  const std::string marker = "\"@@duplicate@@\"";
  std::string object_text = object.dump();
  object_text.insert(1, duplicate);
  if (at.empty()) return object_text;
  j.at(at) = "@@duplicate@@";
  std::string text = j.dump();
  text.replace(text.find(marker), marker.size(), object_text);
  return text;
}

/// What the project reads of a potential file: load_potential (the target built, for
/// analytic types; for OpenMM ones only up to the missing system file, so that no
/// System is built 10^4 times) and the MD and replica-exchange sections. True when the
/// target was built; \throws boltzlab::Error when a section is refused.
bool read_potential(const fs::path& file) {
  bool built = false;
  try {
    const Potential p = load_potential(file);
    if (p.target->dim() == 0) throw std::logic_error("a target of dimension 0");
    std::vector<double> x(p.target->dim(), 0.25), grad(p.target->dim());
    p.target->reduced_energy(x.data(), grad.data());
    (void)p.target->describe().dump();
    built = true;
  } catch (const Error&) {
    // Refused; the sections are still read below (other tools read them).
  }
  const Json raw = parse_json_file(file);
  if (!raw.is_object()) return false;
  if (raw.contains("reference")) md_options_from_json(raw["reference"], "reference");
  if (raw.contains("replica_exchange")) replica_exchange_options_from_json(raw["replica_exchange"], "replica_exchange");
  return built;
}

/// One potential input under the 64 MiB single-request bound.
void fuzz_potential_once(const std::string& input, const fs::path& file, std::size_t iteration, FuzzTally& tally) {
  ++tally.inputs;
  write_bytes(file, input);
  try {
    test::AllocationGuard guard(64 << 20);
    bool built = false;
    try {
      built = read_potential(file);
    } catch (const Error&) {
      built = false;
    }
    ++(built ? tally.parsed : tally.refused);
  } catch (const std::bad_alloc&) {
    tally.fail(iteration, "an allocation above 64 MiB", input);
  } catch (const std::exception& e) {
    tally.fail(iteration, std::string("non-boltzlab exception: ") + e.what(), input);
  }
}

/// A scratch folder laid out as the repository (potentials/ beside a link to data/), so
/// that relative paths in the potential files resolve; the OpenMM system files are not
/// there.
fs::path potential_scratch() {
  const fs::path root = fs::temp_directory_path() / ("boltzlab_fuzz_potentials_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "potentials");
  fs::create_directory_symlink(fs::path(BOLTZLAB_SOURCE_DIR) / "data", root / "data");
  return root;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("fuzz: the .npy reader returns consistent arrays or an IoError, within its allocation bound") {
  const std::vector<std::string> seeds = npy_seeds();
  // The seeds themselves are read (else every mutated input could be refused vacuously).
  for (const std::string& s : seeds) CHECK(npy_inconsistency(parse_npy(s, "seed.npy"), s.size()).empty());
  const std::size_t n = fuzz_iterations();
  const fs::path file = fs::temp_directory_path() / ("boltzlab_fuzz_" + std::to_string(::getpid()) + ".npy");
  Mutator m(fuzz_seed(), 1);
  FuzzTally tally;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    std::string input = m.below(4) == 0 ? structured_npy(m) : m.pick(seeds);
    if (m.below(4) != 0) input = m.mutate(std::move(input), npy_tokens());
    fuzz_npy_once(input, i, tally);
    if (i % 64 == 0) check_file_reader_agrees(input, file, i, tally);
  }
  fs::remove(file);
  MESSAGE("npy fuzz: " << tally.inputs << " inputs (seed " << fuzz_seed() << "), " << tally.parsed << " read, "
                       << tally.refused << " refused, " << tally.unexpected << " unexpected, "
                       << seconds_since(t0) << " s");
  CHECK_MESSAGE(tally.unexpected == 0, tally.first_unexpected);
  // Both outcomes occur: the mutations reach past the magic string into the reader.
  CHECK(tally.parsed > n / 50);
  CHECK(tally.refused > n / 50);
}

TEST_CASE("fuzz: potential files give a target or a boltzlab error, never another exception or a huge allocation") {
  const fs::path dir = fs::path(BOLTZLAB_SOURCE_DIR) / "potentials";
  std::vector<std::string> seeds;
  std::vector<Json> docs;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    seeds.push_back(read_bytes(entry.path()));
    docs.push_back(parse_json(seeds.back(), entry.path().string()));
  }
  REQUIRE(seeds.size() >= 10);
  const fs::path root = potential_scratch();
  const fs::path file = root / "potentials" / "fuzz.json";
  const std::size_t n = fuzz_iterations();
  Mutator m(fuzz_seed(), 2);
  FuzzTally tally;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = m.below(seeds.size());
    std::string input = m.below(2) == 0 ? structured_json(m, docs[k]) : seeds[k];
    if (m.below(3) != 0) input = m.mutate(std::move(input), json_tokens());
    fuzz_potential_once(input, file, i, tally);
  }
  fs::remove_all(root);
  MESSAGE("potential fuzz: " << tally.inputs << " inputs (seed " << fuzz_seed() << "), " << tally.parsed << " read, "
                             << tally.refused << " refused, " << tally.unexpected << " unexpected, "
                             << seconds_since(t0) << " s");
  CHECK_MESSAGE(tally.unexpected == 0, tally.first_unexpected);
  CHECK(tally.parsed > n / 50);
  CHECK(tally.refused > n / 50);
}

TEST_CASE("fuzz: inputs the fuzzer found are read within the bounds or refused naming the key") {
  // Each of these once escaped as std::length_error or std::bad_alloc, or allocated
  // hundreds of MB (four_wells kept its whole (m + 1)² log Z grid, 288 MB at m = 6000).
  const fs::path root = potential_scratch();
  const fs::path file = root / "potentials" / "found.json";
  const std::vector<std::pair<std::string, std::string>> refused = {
      {R"({"type": "dw4", "parameters": {"n_particles": 9223372036854775807}})",
       "parameters.n_particles: is 9223372036854775807, but must be <= 10000"},
      {R"({"type": "lennard_jones", "parameters": {"n_particles": 1000000000}})", "parameters.n_particles: is 1000000000"},
      {R"({"type": "gaussian", "parameters": {"dim": 1000000, "mean": 0.0}})", "parameters.dim: is 1000000, but must be <= 4096"},
      {R"({"type": "manywell", "parameters": {"dim": 1000000000}})", "parameters.dim: is 1000000000, but must be <= 1000000"},
      {R"({"type": "funnel", "parameters": {"dim": 1000000000}})", "parameters.dim: is 1000000000"},
      {R"({"type": "gaussian", "parameters": {"mean": [0, 0], "std": 1},
           "replica_exchange": {"t_min": 300, "t_max": 600, "replicas": 1000000000}})",
       "replica_exchange.replicas: is 1000000000, but must be <= 1024"},
  };
  for (const auto& [text, fragment] : refused) {
    INFO(text);
    write_bytes(file, text);
    test::AllocationGuard guard(64 << 20);
    try {
      const Potential p = load_potential(file);
      replica_exchange_options_from_json(p.replica_exchange, "replica_exchange");
      FAIL_CHECK("expected a boltzlab::Error");
    } catch (const Error& e) {
      CHECK_MESSAGE(std::string(e.what()).find(fragment) != std::string::npos, std::string(e.what()));
    } catch (const std::exception& e) {
      FAIL_CHECK("expected a boltzlab::Error, got " << std::string(e.what()));
    }
  }
  // A steep four-well potential is valid: built within the bound, with a finite log Z.
  write_bytes(file, R"({"type": "four_wells", "parameters": {"barrier": 100000, "coupling": 1.0}})");
  test::AllocationGuard guard(64 << 20);
  CHECK(read_potential(file));
  CHECK(std::isfinite(*load_potential(file).target->log_z()));
  fs::remove_all(root);
}
