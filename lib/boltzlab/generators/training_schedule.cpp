#include "boltzlab/generators/training_schedule.hpp"

#include <cmath>

#include "boltzlab/core/constants.hpp"

namespace boltzlab::generators {

TrainingSchedule::TrainingSchedule(const TrainOptions& options)
    : iterations_(options.iterations),
      warmup_iterations_(options.warmup_iterations),
      initial_rate_(options.learning_rate),
      final_ratio_(options.lr_final_ratio),
      weights_(options.weights) {}

double TrainingSchedule::learning_rate(int iteration) const {
  const double frac = iterations_ > 1 ? static_cast<double>(iteration) / (iterations_ - 1) : 1.0;
  return initial_rate_ * (final_ratio_ + (1.0 - final_ratio_) * 0.5 * (1.0 + std::cos(kPi * frac)));
}

LossWeights TrainingSchedule::weights(int iteration) const {
  LossWeights w = weights_;
  if (iteration < warmup_iterations_) w.lambda = 1.0;
  return w;
}

}  // namespace boltzlab::generators
