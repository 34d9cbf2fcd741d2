#include "boltzlab/generators/training_callbacks.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "boltzlab/core/mpi.hpp"
#include "boltzlab/estimators/importance.hpp"

namespace boltzlab::generators {

namespace {
// Evaluation draws: a stream family of their own (the training draws use seed itself).
constexpr std::uint64_t kEvalSeedMix = 0x5DEECE66DULL;
}  // namespace

EvaluationCallback::EvaluationCallback(const Target& target, const FlowSpaceMap* map, const TrainOptions& options)
    : target_(target), map_(map), options_(options) {}

void EvaluationCallback::operator()(IterationState& state) {
  const int done = state.step.iteration + 1;
  if (!(options_.eval_every > 0 && (done % options_.eval_every == 0 || state.last))) return;
  const GeneratedSamples s = state.model.sample(options_.eval_samples, options_.seed ^ kEvalSeedMix);
  EnergyCounters counters;
  const Eigen::VectorXd lw = flow_log_weights(s.x, s.log_q, target_, map_, &counters, nullptr, options_.exec);
  const double ess = lw.maxCoeff() > -std::numeric_limits<double>::infinity()
                         ? kish_ess(lw) / static_cast<double>(lw.size())
                         : 0.0;
  state.history.eval_iteration.push_back(done);
  state.history.eval_ess.push_back(ess);
  state.history.energy_evaluations += counters.evaluations.load();
  state.history.non_finite += counters.non_finite.load();
  state.history.cut += counters.cut.load();
}

void CheckpointCallback::operator()(IterationState& state) {
  if (!mpi::is_root()) return;  // over MPI ranks (identical models) rank 0 alone writes
  if (checkpointer_.due(state.step.iteration + 1, state.last) || (state.stopping && checkpointer_.enabled()))
    checkpointer_.save(state.model, state.adam, state.history);
}

ProgressCallback::ProgressCallback(const TrainOptions& options)
    : progress_("bg-train", static_cast<std::size_t>(options.iterations), options.progress) {}

void ProgressCallback::operator()(IterationState& state) {
  const StepRecord& s = state.step;
  const TrainHistory& h = state.history;
  if (!h.eval_iteration.empty() && h.eval_iteration.back() == s.iteration + 1) last_ess_ = h.eval_ess.back();
  // The forward KL (λ = 0), the reverse KL (λ = 1 steps) and the running ESS (before the
  // first evaluation) may not be computed: shown as "-" then. The loss and the path costs
  // are always computed and printed as they are (a NaN there is a real divergence).
  auto term = [](double v, const char* fmt) {
    if (std::isnan(v)) return std::string("-");
    char buf[32];
    std::snprintf(buf, sizeof buf, fmt, v);
    return std::string(buf);
  };
  char fixed[120];
  std::snprintf(fixed, sizeof fixed, "  L %.3g  HJB %.3g", s.transport, s.hjb);
  char loss_text[40];
  std::snprintf(loss_text, sizeof loss_text, "loss %.4g", s.loss);
  const std::string status = std::string(loss_text) + "  fKL " + term(s.forward_kl, "%.4g") + std::string(fixed) +
                             "  rKL " + term(s.reverse_kl, "%.4g") + "  ESS " + term(last_ess_, "%.3g");
  progress_.update(static_cast<std::size_t>(s.iteration + 1), status);
}

}  // namespace boltzlab::generators
