#pragma once
/// \file training_checkpoint.hpp
/// Checkpoints of train() (trainer.hpp): everything a resumed run needs to continue
/// exactly as the uninterrupted run, in one LibTorch archive with the entries
///   "checkpoint_format_version"  int, kModelFormatVersion (generator.hpp)
///   "model"                      BoltzmannGenerator::write (options, standardization, base, Φ)
///   "adam"                       torch::optim::Adam::save (moments and step counts)
///   "history"                    TrainHistory::to_json().dump() (iterations_done: where to go on)
/// written to "<path>.tmp" and renamed over `path`, so a crash never leaves half a file.
/// (The mini-batches need no state: their random streams are tied to the iteration,
/// training_step.hpp.)
#include <filesystem>

#include "boltzlab/generators/trainer.hpp"

namespace boltzlab::generators {

class Checkpointer {
 public:
  /// `every` > 0: a checkpoint every `every` steps and after the last (0: none).
  Checkpointer(std::filesystem::path path, int every);

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
  /// the Adam state. \throws IoError when the file is unreadable.
  Resumed load(BoltzmannGenerator& model) const;

 private:
  std::filesystem::path path_;
  int every_;
};

}  // namespace boltzlab::generators
