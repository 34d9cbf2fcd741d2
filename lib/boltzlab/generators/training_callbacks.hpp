#pragma once
/// \file training_callbacks.hpp
/// Iteration callbacks of train() (trainer.hpp), after Ceres' IterationCallback: after
/// each optimizer step the loop calls, in this order, the running-ESS evaluation, the
/// checkpoints and the progress line, each through one small interface, so that each
/// concern is testable alone and the loop stays short.
#include <limits>

#include "boltzlab/core/progress.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/generators/training_checkpoint.hpp"

namespace boltzlab::generators {

/// What a callback sees after step `step.iteration`.
struct IterationState {
  const StepRecord& step;      ///< the step just taken (already in `history`)
  bool last;                   ///< the run's final step (iteration + 1 == options.iterations)
  bool stopping;               ///< stop_after reached before the end: train() returns after the callbacks
  BoltzmannGenerator& model;   ///< after the step
  const torch::optim::Adam& adam;
  TrainHistory& history;       ///< callbacks may add to it (the evaluation does)
};

class IterationCallback {
 public:
  virtual ~IterationCallback() = default;
  virtual void operator()(IterationState& state) = 0;
};

/// Running ESS every `eval_every` steps and after the last: the normalized Kish ESS of
/// `eval_samples` draws (stream seed ^ kEvalSeedMix, the same draws at every
/// evaluation) with log w = −u(x(y)) + L(y) − log q_y(y) (flow_log_weights); 0 when no
/// weight is finite. Appended to history.eval_iteration / eval_ess, its energy
/// evaluations added to the history's counters. A progress indicator only: reported
/// ESS comes from ≥ 1e5 samples through the estimators (bg-sample, the benchmarks).
class EvaluationCallback : public IterationCallback {
 public:
  /// `target`, `map` (may be null) and `options` must outlive the callback.
  EvaluationCallback(const Target& target, const FlowSpaceMap* map, const TrainOptions& options);
  void operator()(IterationState& state) override;

 private:
  const Target& target_;
  const FlowSpaceMap* map_;
  const TrainOptions& options_;
};

/// Checkpoints when Checkpointer::due, and when stopping early (if enabled), so that a
/// stopped run can be resumed.
class CheckpointCallback : public IterationCallback {
 public:
  explicit CheckpointCallback(const Checkpointer& checkpointer) : checkpointer_(checkpointer) {}
  void operator()(IterationState& state) override;

 private:
  const Checkpointer& checkpointer_;
};

/// Progress lines on stderr (core/progress.hpp): loss, forward KL, path costs, reverse
/// KL and the latest running ESS of this call ("-" for terms not computed yet).
class ProgressCallback : public IterationCallback {
 public:
  explicit ProgressCallback(const TrainOptions& options);
  void operator()(IterationState& state) override;
  /// The final line.
  void finish() { progress_.finish(); }

 private:
  Progress progress_;
  double last_ess_ = std::numeric_limits<double>::quiet_NaN();
};

}  // namespace boltzlab::generators
