#pragma once
/// \file training_checkpoint.hpp
/// Checkpoints of train() (trainer.hpp): everything a resumed run needs to continue
/// exactly as the uninterrupted run, in one LibTorch archive with the entries
///   "checkpoint_format_version"  int, kModelFormatVersion (generator.hpp)
///   "model"                      BoltzmannGenerator::write (options, standardization, base, Φ)
///   "adam"                       torch::optim::Adam::save (moments and step counts)
///   "history"                    TrainHistory::to_json().dump() (iterations_done: where to go on)
///   "identity"                   the run's identity JSON, dumped (only when one is given)
/// written to "<path>.tmp" and renamed over `path`, so a crash never leaves half a file.
///
/// Identity: what a checkpoint must match to be resumed, chosen by the caller
/// (bg-sample: the potential's name, type, dimension and parameters, the architecture,
/// the seed and the loss weights; TrainOptions::checkpoint_identity). A Checkpointer
/// with an identity refuses (ConfigError, one line naming the first difference) a
/// checkpoint written with another identity or without one, so a checkpoint of another
/// potential of the same dimension is never continued. Without an identity (null)
/// any checkpoint is accepted.
/// (The mini-batches need no state: their random streams are tied to the iteration,
/// training_step.hpp.)
#include <filesystem>

#include <nlohmann/json.hpp>

#include "boltzlab/generators/trainer.hpp"

namespace boltzlab::generators {

class Checkpointer {
 public:
  /// `every` > 0: a checkpoint every `every` steps and after the last (0: none);
  /// `identity`: see the file comment (null: none).
  Checkpointer(std::filesystem::path path, int every, nlohmann::json identity = nullptr);

  /// A checkpoint is due after `iterations_done` steps (`last`: the run's final step).
  bool due(int iterations_done, bool last) const;
  /// Whether checkpoints are written at all (every > 0).
  bool enabled() const { return every_ > 0; }

  /// Writes the checkpoint. \throws IoError when it cannot be written.
  void save(const BoltzmannGenerator& model, const torch::optim::Adam& adam, const TrainHistory& history) const;

  /// What load() restores besides the model.
  struct Resumed {
    TrainHistory history;                 ///< the curves and counters so far
    torch::serialize::InputArchive adam;  ///< for Adam::load on an Adam over the restored parameters
  };
  /// Reads the checkpoint: replaces `model` by the saved one and returns the history and
  /// the Adam state. \throws IoError when the file is unreadable, ConfigError when it
  /// belongs to another run (identity).
  Resumed load(BoltzmannGenerator& model) const;

  /// The check of --resume before any work: \throws ConfigError when there is no
  /// checkpoint at path() or it belongs to another run, IoError when it is unreadable.
  void check_resumable() const;

  const std::filesystem::path& path() const { return path_; }

 private:
  /// \throws ConfigError when the archive's identity differs from identity_.
  void check_identity(torch::serialize::InputArchive& archive) const;

  std::filesystem::path path_;
  int every_;
  nlohmann::json identity_;
};

}  // namespace boltzlab::generators
