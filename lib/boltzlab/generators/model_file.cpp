#include "boltzlab/generators/model_file.hpp"

#include <fstream>
#include <iterator>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/sha256.hpp"
#include "boltzlab/io/config.hpp"

namespace fs = std::filesystem;

namespace boltzlab::generators {
namespace {

/// Top-level keys of a potential file that hold tool settings, not the definition of π.
const char* const kSettingsKeys[] = {"description", "generator", "sampler", "reference", "replica_exchange"};

std::string short_hash(const std::string& hex) { return hex.substr(0, 12); }

/// Writes `text` to `path` through a temporary file and a rename. \throws IoError.
void write_atomically(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw IoError(tmp.string() + ": cannot write");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw IoError(path.string() + ": cannot write (" + ec.message() + ")");
}

}  // namespace

bool PotentialIdentity::same_potential(const PotentialIdentity& other) const {
  return name == other.name && dim == other.dim && sha256 == other.sha256;
}

std::string PotentialIdentity::describe() const {
  return "'" + name + "' (dim " + std::to_string(dim) + ", sha256 " + short_hash(sha256) + ")";
}

nlohmann::json PotentialIdentity::to_json() const {
  return {{"name", name}, {"dim", dim}, {"sha256", sha256}, {"path", path}};
}

PotentialIdentity PotentialIdentity::from_json(const nlohmann::json& j, const std::string& context) {
  if (!j.is_object()) throw ConfigError(context + ": expected an object");
  JsonReader r(j, context);
  PotentialIdentity p;
  p.name = r.get_string("name");
  const long long dim = r.get_int("dim");
  if (dim < 1) r.fail("dim", "is " + std::to_string(dim) + ", but must be >= 1");
  p.dim = static_cast<std::size_t>(dim);
  p.sha256 = r.get_string("sha256");
  p.path = r.get_string("path", "");
  r.finish();
  return p;
}

PotentialIdentity potential_identity(const Potential& potential) {
  nlohmann::json definition = potential.raw;
  if (definition.is_object()) {
    for (const char* key : kSettingsKeys) definition.erase(key);
  }
  PotentialIdentity p;
  p.name = potential.name;
  p.dim = potential.target ? potential.target->dim() : 0;
  p.sha256 = sha256_hex(definition.dump());
  p.path = potential.path.string();
  return p;
}

nlohmann::json ModelFileRecord::to_json() const {
  return {{"format_version", kModelRecordVersion},
          {"model_file", model_file},
          {"bytes", bytes},
          {"sha256", sha256},
          {"potential", potential ? potential->to_json() : nlohmann::json(nullptr)}};
}

ModelFileRecord ModelFileRecord::from_json(const nlohmann::json& j, const std::string& context) {
  if (!j.is_object()) throw ConfigError(context + ": expected a JSON object");
  JsonReader r(j, context);
  const long long version = r.get_int("format_version");
  if (version != kModelRecordVersion)
    r.fail("format_version", "is " + std::to_string(version) + ", but this build reads version " +
                                 std::to_string(kModelRecordVersion));
  ModelFileRecord m;
  m.model_file = r.get_string("model_file");
  const long long bytes = r.get_int("bytes");
  if (bytes < 0) r.fail("bytes", "is " + std::to_string(bytes) + ", but must be >= 0");
  m.bytes = static_cast<std::uint64_t>(bytes);
  m.sha256 = r.get_string("sha256");
  if (m.sha256.size() != 64 || m.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
    r.fail("sha256", "is \"" + m.sha256 + "\", but must be 64 lower-case hex digits");
  const nlohmann::json& p = r.get_json("potential");
  if (!p.is_null()) m.potential = PotentialIdentity::from_json(p, r.context_of("potential"));
  r.finish();
  return m;
}

fs::path model_record_path(const fs::path& model) {
  if (model.extension() == ".json") return fs::path(model.string() + ".record.json");
  fs::path record = model;
  return record.replace_extension(".json");
}

ModelFileRecord sign_model_file(const fs::path& model, const std::optional<PotentialIdentity>& potential) {
  const std::string bytes = read_model_bytes(model);
  ModelFileRecord m;
  m.model_file = model.filename().string();
  m.bytes = bytes.size();
  m.sha256 = sha256_hex(bytes);
  m.potential = potential;
  write_atomically(model_record_path(model), m.to_json().dump(2) + "\n");
  return m;
}

std::string read_model_bytes(const fs::path& model) {
  if (!fs::is_regular_file(model)) throw IoError(model.string() + ": model file not found");
  std::ifstream in(model, std::ios::binary);
  if (!in) throw IoError(model.string() + ": cannot open the model file");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) throw IoError(model.string() + ": read error");
  return std::move(bytes).str();
}

ModelFileRecord verify_model_bytes(const fs::path& model, std::string_view bytes) {
  const fs::path record_path = model_record_path(model);
  if (!fs::is_regular_file(record_path))
    throw IoError(model.string() + ": no record " + record_path.filename().string() +
                  " beside the model (its checksum, written when it was saved): refusing an unverifiable model file");
  ModelFileRecord record;
  try {
    record = ModelFileRecord::from_json(read_json_file(record_path), record_path.string() + ": record");
  } catch (const ConfigError& e) {
    throw IoError(std::string(e.what()) + " (the model record is malformed)");
  }
  if (record.bytes != bytes.size())
    throw IoError(model.string() + ": the file has " + std::to_string(bytes.size()) + " bytes, its record " +
                  record_path.filename().string() + " says " + std::to_string(record.bytes) +
                  ": the model file is corrupted or was changed after saving");
  const std::string actual = sha256_hex(bytes);
  if (actual != record.sha256)
    throw IoError(model.string() + ": checksum mismatch (SHA-256 " + short_hash(actual) + "…, its record " +
                  record_path.filename().string() + " says " + short_hash(record.sha256) +
                  "…): the model file is corrupted or was changed after saving");
  return record;
}

std::optional<std::string> check_model_potential(const ModelFileRecord& record, const fs::path& model,
                                                 const PotentialIdentity& potential, bool allow_other,
                                                 const std::string& allow_flag) {
  if (record.potential && record.potential->same_potential(potential)) return std::nullopt;
  const std::string trained =
      record.potential ? "was trained on potential " + record.potential->describe()
                       : "records no potential it was trained on";
  const std::string message = model.string() + " " + trained + ", but the potential is " + potential.describe();
  if (!allow_other) throw ConfigError(message + "; pass " + allow_flag + " to use it anyway");
  return message + " (used anyway: " + allow_flag + ")";
}

}  // namespace boltzlab::generators
