#include "boltzlab/generators/training_checkpoint.hpp"

#include <string>
#include <utility>
#include <vector>

#include "boltzlab/core/error.hpp"

namespace boltzlab::generators {
namespace {

/// "'name' (dimension d)" of an object with those keys, else its JSON.
std::string brief(const nlohmann::json& v) {
  if (v.is_object() && v.contains("name")) {
    std::string s = "'" + v["name"].dump() + "'";
    if (v["name"].is_string()) s = "'" + v["name"].get<std::string>() + "'";
    if (v.contains("dimension")) s += " (dimension " + v["dimension"].dump() + ")";
    return s;
  }
  return v.dump();
}

/// The one-line reason why a checkpoint with identity `saved` is not this run's (`now`).
std::string identity_mismatch(const nlohmann::json& saved, const nlohmann::json& now, const std::string& file) {
  const std::string where = "--resume: checkpoint '" + file + "'";
  if (!saved.is_object()) {
    return where + " does not record which run wrote it (an older version?): remove it, or run without --resume";
  }
  std::vector<std::string> keys;  // "potential" first: the most telling difference
  if (now.contains("potential")) keys.push_back("potential");
  for (const auto& [key, value] : now.items())
    if (key != "potential") keys.push_back(key);
  for (const std::string& key : keys) {
    const nlohmann::json& value = now[key];
    if (saved.contains(key) && saved[key] == value) continue;
    const nlohmann::json theirs = saved.contains(key) ? saved[key] : nlohmann::json();
    if (value.is_object() && brief(value) == brief(theirs)) {
      return where + " was written for " + key + " " + brief(theirs) + " with other settings (" + theirs.dump() +
             " there, " + value.dump() + " here)";
    }
    if (value.is_object()) {
      return where + " belongs to a run of " + key + " " + brief(theirs) + ", not " + brief(value);
    }
    return where + " was written with " + key + " " + theirs.dump() + ", this run has " + value.dump();
  }
  return where + " belongs to another run";
}

torch::serialize::InputArchive open_archive(const std::filesystem::path& path) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path.string());
  } catch (const c10::Error& e) {
    throw IoError(path.string() + ": unreadable checkpoint (" + e.what_without_backtrace() + ")");
  }
  return archive;
}

}  // namespace

Checkpointer::Checkpointer(std::filesystem::path path, int every, nlohmann::json identity)
    : path_(std::move(path)), every_(every), identity_(std::move(identity)) {}

bool Checkpointer::due(int iterations_done, bool last) const {
  return every_ > 0 && (iterations_done % every_ == 0 || last);
}

void Checkpointer::save(const BoltzmannGenerator& model, const torch::optim::Adam& adam,
                        const TrainHistory& history) const {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive, adam_archive;
  model.write(model_archive);
  adam.save(adam_archive);
  archive.write("checkpoint_format_version", c10::IValue(static_cast<int64_t>(kModelFormatVersion)));
  archive.write("model", model_archive);
  archive.write("adam", adam_archive);
  archive.write("history", c10::IValue(history.to_json().dump()));
  if (!identity_.is_null()) archive.write("identity", c10::IValue(identity_.dump()));
  const auto tmp = path_.string() + ".tmp";
  try {
    archive.save_to(tmp);
    std::filesystem::rename(tmp, path_);
  } catch (const std::exception& e) {
    throw IoError(path_.string() + ": cannot write checkpoint (" + e.what() + ")");
  }
}

void Checkpointer::check_identity(torch::serialize::InputArchive& archive) const {
  if (identity_.is_null()) return;
  nlohmann::json saved;  // null: written without an identity
  c10::IValue v;
  if (archive.try_read("identity", v) && v.isString()) {
    saved = nlohmann::json::parse(v.toStringRef(), nullptr, /*allow_exceptions=*/false);
  }
  if (saved != identity_) throw ConfigError(identity_mismatch(saved, identity_, path_.string()));
}

void Checkpointer::check_resumable() const {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path_, ec)) {
    throw ConfigError("--resume: no checkpoint at '" + path_.string() + "'");
  }
  torch::serialize::InputArchive archive = open_archive(path_);
  check_identity(archive);
}

Checkpointer::Resumed Checkpointer::load(BoltzmannGenerator& model) const {
  torch::serialize::InputArchive archive = open_archive(path_);
  check_identity(archive);
  torch::serialize::InputArchive model_archive;
  archive.read("model", model_archive);
  model = BoltzmannGenerator::read(model_archive, path_.string());
  c10::IValue hist;
  archive.read("history", hist);
  Resumed out;
  out.history = TrainHistory::from_json(nlohmann::json::parse(hist.toStringRef()));
  archive.read("adam", out.adam);
  return out;
}

}  // namespace boltzlab::generators
