#pragma once
/// \file training_schedule.hpp
/// The per-iteration schedule of train() (trainer.hpp): Adam's learning rate and the
/// loss weights of step `it` (0-based) of a run of N = `iterations` steps.
///
///   learning rate (cosine from η₀ to η₀·r):
///     η(it) = η₀·(r + (1 − r)·½·(1 + cos(π·f))),   f = it/(N − 1)  (f = 1 when N ≤ 1),
///   with η₀ = learning_rate and r = lr_final_ratio;
///   weights (the two-stage warm-up): λ = 1 (forward KL on the data only, no energies)
///     for it < warmup_iterations, then the configured weights.
#include "boltzlab/generators/trainer.hpp"

namespace boltzlab::generators {

class TrainingSchedule {
 public:
  /// Takes iterations, warmup_iterations, learning_rate, lr_final_ratio and weights.
  explicit TrainingSchedule(const TrainOptions& options);
  /// η(it) above.
  double learning_rate(int iteration) const;
  /// The loss weights of step `iteration` (λ = 1 during the warm-up).
  LossWeights weights(int iteration) const;

 private:
  int iterations_;
  int warmup_iterations_;
  double initial_rate_;
  double final_ratio_;
  LossWeights weights_;
};

}  // namespace boltzlab::generators
