// Model files (generators/model_file.hpp): the record beside model.pt, a corrupted or
// unrecorded file refused before LibTorch reads it, the potential a model is bound to, and a
// seeded mutation fuzz of the loader.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/torch_doctest.hpp"

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/sha256.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/model_file.hpp"
#include "boltzlab/io/config.hpp"

namespace bg = boltzlab::generators;
namespace fs = std::filesystem;

namespace {

/// A fresh directory under the system temp directory.
fs::path scratch(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("boltzlab_test_model_file_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

bg::BoltzmannGenerator small_model() {
  bg::GeneratorOptions o;
  o.potential.dim = 2;
  o.potential.width = 6;
  o.steps = 2;
  o.sample_steps = 2;
  return bg::BoltzmannGenerator(o, 11);
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

boltzlab::Potential potential_from(const fs::path& dir, const std::string& name, const std::string& text) {
  write_bytes(dir / name, text);
  return boltzlab::load_potential(dir / name);
}

const char* const kGauss =
    R"({"type": "gaussian", "name": "g2", "parameters": {"mean": [1.0, -0.5], "covariance": [[2.0, 0.9], [0.9, 1.0]]},
        "generator": {"iterations": 60}})";

/// One random change of `bytes` (never the identity): a bit flip, a byte set, a run
/// overwritten, a truncation or appended bytes, drawn from `rng`.
std::string mutate(const std::string& bytes, boltzlab::Rng& rng) {
  std::string m = bytes;
  const auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  switch (pick(5)) {
    case 0: m[pick(m.size())] ^= static_cast<char>(1u << pick(8)); break;
    case 1: { const std::size_t i = pick(m.size()); m[i] = static_cast<char>(m[i] ^ (1 + pick(255))); break; }
    case 2: {
      const std::size_t i = pick(m.size());
      for (std::size_t k = i; k < std::min(m.size(), i + 1 + pick(16)); ++k) m[k] = static_cast<char>(rng() & 0xff);
      break;
    }
    case 3: m.resize(pick(m.size())); break;
    default: for (std::size_t k = 0, n = 1 + pick(32); k < n; ++k) m += static_cast<char>(rng() & 0xff);
  }
  if (m == bytes) m += '\0';  // an overwrite that drew the same bytes
  return m;
}

}  // namespace

TEST_CASE("model file: save writes the record beside the model; load verifies it") {
  const fs::path dir = scratch("record");
  const boltzlab::Potential pot = potential_from(dir, "g2.json", kGauss);
  const bg::PotentialIdentity id = bg::potential_identity(pot);
  auto model = small_model();
  model.save(dir / "model.pt", {{"note", "x"}}, id);
  REQUIRE(fs::is_regular_file(dir / "model.json"));
  const auto record = bg::ModelFileRecord::from_json(boltzlab::read_json_file(dir / "model.json"), "model.json");
  const std::string bytes = bg::read_model_bytes(dir / "model.pt");
  CHECK(record.model_file == "model.pt");
  CHECK(record.bytes == bytes.size());
  CHECK(record.sha256 == boltzlab::sha256_hex(bytes));
  REQUIRE(record.potential);
  CHECK(record.potential->same_potential(id));
  bg::ModelFileRecord loaded_record;
  nlohmann::json meta;
  auto again = bg::BoltzmannGenerator::load(dir / "model.pt", &meta, &loaded_record);
  CHECK(meta.at("note") == "x");
  CHECK(loaded_record.sha256 == record.sha256);
  CHECK((again.sample(20, 3).x - model.sample(20, 3).x).cwiseAbs().maxCoeff() == 0.0);
  fs::remove_all(dir);
}

TEST_CASE("model file: one flipped byte, a changed length or a missing record is refused before parsing") {
  const fs::path dir = scratch("corrupt");
  small_model().save(dir / "model.pt");
  const std::string bytes = bg::read_model_bytes(dir / "model.pt");
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x01;
  write_bytes(dir / "model.pt", flipped);
  CHECK_THROWS_AS(bg::BoltzmannGenerator::load(dir / "model.pt"), boltzlab::IoError);
  CHECK_THROWS_WITH(bg::BoltzmannGenerator::load(dir / "model.pt"),
                    doctest::Contains("model.pt: checksum mismatch"));
  write_bytes(dir / "model.pt", bytes + "x");
  CHECK_THROWS_WITH(bg::BoltzmannGenerator::load(dir / "model.pt"),
                    doctest::Contains(("the file has " + std::to_string(bytes.size() + 1) + " bytes").c_str()));
  write_bytes(dir / "model.pt", bytes);
  CHECK_NOTHROW(bg::BoltzmannGenerator::load(dir / "model.pt"));  // the original passes (the checks have power)
  write_bytes(dir / "model.json", "{\"format_version\": 1, \"model_file\": \"model.pt\"}");
  CHECK_THROWS_WITH(bg::BoltzmannGenerator::load(dir / "model.pt"), doctest::Contains("model.json: record.bytes: missing"));
  fs::remove(dir / "model.json");
  CHECK_THROWS_AS(bg::BoltzmannGenerator::load(dir / "model.pt"), boltzlab::IoError);
  CHECK_THROWS_WITH(bg::BoltzmannGenerator::load(dir / "model.pt"), doctest::Contains("no record model.json"));
  fs::remove_all(dir);
}

TEST_CASE("model file: the potential's identity, and models used with another potential") {
  const fs::path dir = scratch("identity");
  const auto a = bg::potential_identity(potential_from(dir, "a.json", kGauss));
  // Tool settings are not part of the identity; the definition of π is.
  std::string settings = kGauss;
  settings.replace(settings.find("60"), 2, "99");
  const auto a2 = bg::potential_identity(potential_from(dir, "a2.json", settings));
  CHECK(a2.same_potential(a));
  std::string moved = kGauss;
  moved.replace(moved.find("1.0, -0.5"), 9, "1.5, -0.5");
  const auto b = bg::potential_identity(potential_from(dir, "b.json", moved));
  CHECK(b.dim == a.dim);
  CHECK_FALSE(b.same_potential(a));

  bg::ModelFileRecord record;
  record.potential = a;
  CHECK_FALSE(bg::check_model_potential(record, "m.pt", a2, false, "--allow-other-potential"));
  CHECK_THROWS_AS(bg::check_model_potential(record, "m.pt", b, false, "--allow-other-potential"), boltzlab::ConfigError);
  CHECK_THROWS_WITH(bg::check_model_potential(record, "m.pt", b, false, "--allow-other-potential"),
                    doctest::Contains(("m.pt was trained on potential 'g2' (dim 2, sha256 " + a.sha256.substr(0, 12) +
                                       "), but the potential is 'g2' (dim 2, sha256 " + b.sha256.substr(0, 12) +
                                       "); pass --allow-other-potential")
                                          .c_str()));
  const auto warning = bg::check_model_potential(record, "m.pt", b, true, "--allow-other-potential");
  REQUIRE(warning);
  CHECK(warning->find("used anyway") != std::string::npos);
  record.potential.reset();
  CHECK_THROWS_WITH(bg::check_model_potential(record, "m.pt", a, false, "--allow-other-potential"),
                    doctest::Contains("records no potential"));
  fs::remove_all(dir);
}

TEST_CASE("model file: seeded mutation fuzz of the loader") {
  const fs::path dir = scratch("fuzz");
  const fs::path path = dir / "model.pt";
  small_model().save(path);
  const std::string original = bg::read_model_bytes(path);
  const std::string record = bg::read_model_bytes(dir / "model.json");
  boltzlab::Rng rng(20240611, 0);

  // (1) 10^4 mutants under the original record: every one refused by the length or checksum
  // check, with an IoError naming the file, before LibTorch sees a byte. The loader's check is
  // verify_model_bytes on the bytes it read; the first 200 mutants go through load() from disk.
  const auto t0 = std::chrono::steady_clock::now();
  int refused = 0;
  for (int i = 0; i < 10000; ++i) {
    const std::string mutant = mutate(original, rng);
    try {
      if (i < 200) {
        write_bytes(path, mutant);
        bg::BoltzmannGenerator::load(path);
      } else {
        bg::verify_model_bytes(path, mutant);
      }
    } catch (const boltzlab::IoError& e) {
      const std::string what = e.what();
      refused += what.rfind(path.string() + ": ", 0) == 0 &&
                 (what.find("checksum mismatch") != std::string::npos || what.find(" bytes, its record") != std::string::npos);
    }
  }
  const double checked_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(refused == 10000);

  // (2) Re-signed mutants reach LibTorch's parser: each is loaded or refused with a boltzlab
  // error (IoError, ConfigError, DomainError), never another exception; as many as fit in ~2 s.
  const auto t1 = std::chrono::steady_clock::now();
  int parsed = 0, accepted = 0, foreign = 0;
  double slowest = 0;
  std::string first_foreign;
  while (parsed < 5000 && std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count() < 2.0) {
    write_bytes(path, mutate(original, rng));
    bg::sign_model_file(path, std::nullopt);
    ++parsed;
    const auto start = std::chrono::steady_clock::now();
    try {
      bg::BoltzmannGenerator::load(path);
      ++accepted;
    } catch (const boltzlab::Error&) {
    } catch (const std::exception& e) {
      if (foreign++ == 0) first_foreign = e.what();
    }
    slowest = std::max(slowest, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  CHECK_MESSAGE(foreign == 0, "first non-boltzlab exception: " << first_foreign);
  CHECK(parsed >= 100);
  MESSAGE("model fuzz: 10000 mutants refused by the checksum in " << checked_seconds << " s; " << parsed
          << " re-signed mutants parsed (" << accepted << " loaded, " << parsed - accepted
          << " refused; slowest load " << slowest << " s)");
  write_bytes(path, original);
  write_bytes(dir / "model.json", record);
  CHECK_NOTHROW(bg::BoltzmannGenerator::load(path));
  fs::remove_all(dir);
}
