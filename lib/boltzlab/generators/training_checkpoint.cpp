#include "boltzlab/generators/training_checkpoint.hpp"

#include <string>
#include <utility>

#include "boltzlab/core/error.hpp"

namespace boltzlab::generators {

Checkpointer::Checkpointer(std::filesystem::path path, int every) : path_(std::move(path)), every_(every) {}

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
  const auto tmp = path_.string() + ".tmp";
  try {
    archive.save_to(tmp);
    std::filesystem::rename(tmp, path_);
  } catch (const std::exception& e) {
    throw IoError(path_.string() + ": cannot write checkpoint (" + e.what() + ")");
  }
}

Checkpointer::Resumed Checkpointer::load(BoltzmannGenerator& model) const {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path_.string());
  } catch (const c10::Error& e) {
    throw IoError(path_.string() + ": unreadable checkpoint (" + e.what_without_backtrace() + ")");
  }
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
