#pragma once
/// \file model_file.hpp
/// The record beside a saved model: `DIR/model.pt` gets `DIR/model.json` with
///
///   { "format_version": 1, "model_file": "model.pt", "bytes": 81234,
///     "sha256": "<SHA-256 of the model file's bytes>",
///     "potential": { "name": "gmm40", "dim": 2, "sha256": "<identity hash>", "path": "..." } }
///
/// ("potential" is null for a model saved without one, e.g. by a benchmark). Loading
/// (BoltzmannGenerator::load) reads the model's bytes once, checks their length and SHA-256
/// against the record and only then hands them to LibTorch, so a corrupted or altered file is
/// refused with one line before any parsing (LibTorch's zip reader skips its CRC checks). A
/// model without its record is refused as unverifiable.
///
/// The potential's identity is its name, the target's dimension and the SHA-256 of the
/// canonical JSON (keys sorted, no whitespace: nlohmann::json::dump()) of the file's
/// definition of π: every top-level key except the tool settings "description",
/// "generator", "sampler", "reference" and "replica_exchange". Editing the training or
/// sampling settings keeps the identity; changing the type, the name or a parameter changes
/// it. bg-sample refuses a model whose record names another potential unless asked to
/// (check_model_potential).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "boltzlab/targets/registry.hpp"

namespace boltzlab::generators {

/// Version of the model record (model.json) format.
inline constexpr int kModelRecordVersion = 1;

/// Which potential a model was trained on.
struct PotentialIdentity {
  std::string name;    ///< the potential file's "name"
  std::size_t dim = 0; ///< the target's dimension
  std::string sha256;  ///< SHA-256 of the canonical JSON of the definition (see the file comment)
  std::string path;    ///< the file it was read from (information only: never compared)
  /// Same name, dimension and hash.
  bool same_potential(const PotentialIdentity& other) const;
  /// "'gmm40' (dim 2, sha256 1a2b3c4d5e6f)": the first 12 hex digits of the hash.
  std::string describe() const;
  nlohmann::json to_json() const;
  /// \throws ConfigError naming `context` and the key.
  static PotentialIdentity from_json(const nlohmann::json& j, const std::string& context);
};

/// The identity of a loaded potential file (see the file comment).
PotentialIdentity potential_identity(const Potential& potential);

/// The contents of model.json.
struct ModelFileRecord {
  std::string model_file;                     ///< the model's file name (no directory)
  std::uint64_t bytes = 0;                    ///< length of the model file
  std::string sha256;                         ///< SHA-256 of the model file's bytes
  std::optional<PotentialIdentity> potential; ///< what it was trained on (none: not recorded)
  nlohmann::json to_json() const;
  /// \throws ConfigError naming `context` and the key.
  static ModelFileRecord from_json(const nlohmann::json& j, const std::string& context);
};

/// Where the record of `model` lives: the same path with the extension ".json"
/// (model.pt → model.json; a model named *.json gets *.json.record.json).
std::filesystem::path model_record_path(const std::filesystem::path& model);

/// Writes the record of the model file as it is now (its length and SHA-256, and `potential`)
/// atomically beside it, and returns it. \throws IoError naming the file.
ModelFileRecord sign_model_file(const std::filesystem::path& model, const std::optional<PotentialIdentity>& potential);

/// The bytes of a model file. \throws IoError naming the file when missing or unreadable.
std::string read_model_bytes(const std::filesystem::path& model);

/// Reads the record beside `model` and checks `bytes` (the model file's contents) against it.
/// \throws IoError "<model>: ..." when the record is missing or malformed, or the length or
/// SHA-256 differ (a corrupted or altered file); nothing else is parsed.
ModelFileRecord verify_model_bytes(const std::filesystem::path& model, std::string_view bytes);

/// Checks that a model (its verified record) was trained on `potential`. Returns nothing when
/// it was; otherwise, with `allow_other`, the warning to print ("<model>: trained on ...,
/// used with ..."), and without it \throws ConfigError naming both potentials and the flag
/// `allow_flag` that permits it.
std::optional<std::string> check_model_potential(const ModelFileRecord& record, const std::filesystem::path& model,
                                                 const PotentialIdentity& potential, bool allow_other,
                                                 const std::string& allow_flag);

}  // namespace boltzlab::generators
