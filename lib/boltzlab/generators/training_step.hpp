#pragma once
/// \file training_step.hpp
/// One optimizer step of train() (trainer.hpp): draw the mini-batches, evaluate the loss
/// terms with their gradients, sum them, clip the global gradient norm and take the
/// Adam step. Returns the step's StepRecord; train() appends it to the history.
///
/// Random streams: the data rows of step `it` are drawn with replacement from the
/// stream (seed, kDataStream + it), the base draws are the streams it·B … it·B + B − 1
/// (BoltzmannGenerator::base_sample), so a resumed run draws what an uninterrupted run
/// draws. With data weights (train()'s `data_weights`), row i is drawn with probability
/// w_i / Σ w (inverse CDF of one uniform per row, the same stream), so the step's data term
/// is an unbiased estimate of the weighted forward KL −Σ_i w̄_i log q(x_i). Fixed chunks of `chunk_size` batch rows run as oneTBB tasks, each with its own
/// autograd graph; their gradients are summed in chunk order (data term first), so the
/// step does not depend on the thread count.
#include <cstdint>
#include <vector>

#include "boltzlab/core/rng.hpp"
#include "boltzlab/generators/trainer.hpp"

namespace boltzlab::generators {

/// Refuses loss terms the model cannot have: the relaxed game (ε) off the deterministic gradient
/// flow or with a flow-space map (`mapped`), the terminal condition of a stochastic flow, the HJB
/// residual or terminal condition of a free velocity, and any of the three for a spline
/// coupling flow. \throws ConfigError "generator.<key>: …".
void check_loss_for_model(const GeneratorOptions& model, const LossWeights& weights, bool mapped);

class TrainingStep {
 public:
  /// Binds the step to the run's inputs; all must outlive it. `data` may be null when no
  /// step has λ > 0; `map` may be null (see train()); `data_weights` (may be null: uniform)
  /// are non-negative weights of the data rows. Decides the forward-KL path once
  /// (uses_fused_data_term). \throws ConfigError as uses_fused_data_term, DomainError for
  /// weights of the wrong length, negative or non-finite, or summing to zero.
  TrainingStep(BoltzmannGenerator& model, const Target& target, const RowMatrix* data, const TrainOptions& options,
               const FlowSpaceMap* map, const Eigen::VectorXd* data_weights = nullptr);

  /// Takes step `iteration` with the loss weights `w` and learning rate `learning_rate`
  /// on `adam` (an Adam over the model's parameters). A non-finite loss or gradient norm
  /// skips the Adam step (StepRecord::applied = false).
  StepRecord operator()(int iteration, const LossWeights& w, double learning_rate, torch::optim::Adam& adam);

 private:
  /// The step's mini-batches: data rows (λ > 0; as a tensor for the autograd path) and
  /// base draws (λ < 1).
  struct Batch {
    RowMatrix rows;
    torch::Tensor data, base;
    torch::Tensor data_noise, base_noise;  ///< stochastic flows: steps × B × d increments
  };
  /// Loss parts and gradients of one chunk task.
  struct ChunkResult {
    double fwd = 0, rev = 0, game = 0, transport = 0, hjb = 0, terminal = 0;
    std::int64_t valid = 0, invalid = 0;
    std::vector<torch::Tensor> grads;
  };

  Batch draw_batch(int iteration, const LossWeights& w, bool fused_data) const;
  Eigen::Index draw_row(Rng& rng) const;
  std::vector<ChunkResult> chunk_terms(const Batch& batch, const LossWeights& w, bool autograd_data);
  void sum_terms(const Batch& batch, const LossWeights& w, bool fused_data, const std::vector<ChunkResult>& chunks,
                 StepRecord& record);
  void clip_and_step(torch::optim::Adam& adam, StepRecord& record);

  BoltzmannGenerator& model_;
  const Target& target_;
  const RowMatrix* data_;
  const TrainOptions& options_;
  const FlowSpaceMap* map_;
  std::vector<torch::Tensor> params_;  ///< the model's parameters (the ones Adam updates)
  std::vector<double> cumulative_;     ///< running sums of the data weights (empty: uniform rows)
  bool fused_path_;                    ///< forward-KL term by fused_otflow.hpp
  EnergyCounters counters_;            ///< of the current step
};

}  // namespace boltzlab::generators
