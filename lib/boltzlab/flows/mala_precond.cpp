#include "boltzlab/flows/mala_precond.hpp"

#include <cmath>
#include <vector>

#include "boltzlab/core/error.hpp"

namespace boltzlab {
namespace {

/// ũ(z) = u(S z), S = diag(scale): the target in preconditioned coordinates z = S⁻¹x.
/// ∇ũ(z) = S ∇u(S z). Same particle layout (S acts alike on every particle).
class ScaledTarget : public Target {
 public:
  ScaledTarget(const Target& inner, std::vector<double> scale) : inner_(inner), scale_(std::move(scale)) {}
  std::string name() const override { return inner_.name(); }
  std::size_t dim() const override { return inner_.dim(); }
  std::pair<std::size_t, std::size_t> particle_layout() const override { return inner_.particle_layout(); }
  double kT() const override { return inner_.kT(); }
  double reduced_energy(const double* z, double* grad) const override {
    thread_local std::vector<double> x;  // per thread: reduced_energy runs concurrently
    x.resize(scale_.size());
    to_x(z, x.data());
    const double u = inner_.reduced_energy(x.data(), grad);
    if (grad) {
      for (std::size_t k = 0; k < scale_.size(); ++k) grad[k] *= scale_[k];
    }
    return u;
  }
  /// x = S z (the one place the map is computed, so u(x) is exactly the energy of z).
  void to_x(const double* z, double* x) const {
    for (std::size_t k = 0; k < scale_.size(); ++k) x[k] = scale_[k] * z[k];
  }

 private:
  const Target& inner_;
  std::vector<double> scale_;
};

/// options.beta from step `offset` on: β'(t) = β(t + offset) (exact for both kinds).
BetaSchedule shifted(const BetaSchedule& beta, std::size_t offset) {
  BetaSchedule out = beta;
  if (beta.steps == 0 || offset >= beta.steps) {
    out.start = beta.end;
    out.steps = 0;
  } else {
    out.start = beta.at(offset);
    out.steps = beta.steps - offset;
  }
  return out;
}

/// Appends `later` (a run that started where `earlier` ended, `offset` steps in) to
/// `earlier`: its step-0 monitor repeats the last one of `earlier` and is dropped.
void append_run(FlowResult& earlier, const FlowResult& later, std::size_t offset) {
  earlier.steps_done += later.steps_done;
  earlier.converged = later.converged;
  earlier.energy_evaluations += later.energy_evaluations;
  earlier.non_finite += later.non_finite;
  earlier.health = later.health;  // the stuck chains of the sampling phase
  for (std::size_t m = 1; m < later.monitor_steps.size(); ++m) {
    earlier.monitor_steps.push_back(later.monitor_steps[m] + static_cast<double>(offset));
  }
  for (const auto& [key, series] : later.monitors) {
    auto& out = earlier.monitors[key];
    if (!series.empty()) out.insert(out.end(), series.begin() + 1, series.end());
  }
}

}  // namespace

std::vector<double> preconditioner_std(const Ensemble& ensemble, std::pair<std::size_t, std::size_t> layout) {
  const std::size_t d = ensemble.dim();
  const auto [np, s] = layout;
  // Coordinate k is pooled into group k (plain targets) or its spatial axis k mod s.
  const std::size_t groups = np > 0 ? s : d;
  std::vector<double> sum(groups, 0.0), sum2(groups, 0.0);
  double count = 0.0;
  for (std::size_t i = 0; i < ensemble.size(); ++i) {
    if (!std::isfinite(ensemble.reduced_energies[static_cast<Eigen::Index>(i)])) continue;
    const double* x = ensemble.particle(i);
    for (std::size_t k = 0; k < d; ++k) sum[k % groups] += x[k];
    count += 1.0;
  }
  const double per_group = count * static_cast<double>(d / groups);
  std::vector<double> mean(groups);
  for (std::size_t g = 0; g < groups; ++g) mean[g] = sum[g] / per_group;
  for (std::size_t i = 0; i < ensemble.size(); ++i) {
    if (!std::isfinite(ensemble.reduced_energies[static_cast<Eigen::Index>(i)])) continue;
    const double* x = ensemble.particle(i);
    for (std::size_t k = 0; k < d; ++k) sum2[k % groups] += (x[k] - mean[k % groups]) * (x[k] - mean[k % groups]);
  }
  std::vector<double> scale(d, 1.0);
  for (std::size_t k = 0; k < d; ++k) {
    const double var = count >= 2 ? sum2[k % groups] / (per_group - 1.0) : 0.0;
    if (std::isfinite(var) && var > 0) scale[k] = std::sqrt(var);
  }
  return scale;
}

MalaPrecondFlow::MalaPrecondFlow(MalaParams params) : params_(params) { params_.validate(); }

FlowResult MalaPrecondFlow::evolve(const Target& target, Ensemble& ensemble, const FlowOptions& options) {
  options.validate();
  if (ensemble.dim() != target.dim()) {
    throw DomainError("mala-precond: ensemble has dimension " + std::to_string(ensemble.dim()) +
                      ", but the target '" + target.name() + "' has dimension " + std::to_string(target.dim()));
  }
  // Phase 1: plain MALA over the first half of the warm-up.
  const std::size_t w1 = (options.warmup + 1) / 2;
  FlowResult result;
  nlohmann::json phase1 = nlohmann::json::object();
  if (w1 > 0) {
    FlowOptions o1 = options;
    o1.warmup = w1;
    o1.steps = 0;
    o1.thin = 0;
    result = MalaFlow(params_).run(target, ensemble, o1);
    phase1 = std::move(result.statistics);
  }
  // Phase 2: M frozen; MALA on z = M^{-1/2} x for the rest of the warm-up and the steps.
  const std::vector<double> scale = w1 > 0 ? preconditioner_std(ensemble, target.particle_layout())
                                           : std::vector<double>(target.dim(), 1.0);
  const ScaledTarget whitened(target, scale);
  const std::size_t d = target.dim();
  for (std::size_t i = 0; i < ensemble.size(); ++i) {
    double* x = ensemble.particle(i);
    for (std::size_t k = 0; k < d; ++k) x[k] /= scale[k];
  }
  FlowOptions o2 = options;
  o2.warmup = options.warmup - w1;
  o2.seed = options.seed ^ kPhaseTwoSeedMix;
  o2.beta = shifted(options.beta, w1);
  FlowResult phase2 = MalaFlow(params_).run(whitened, ensemble, o2);
  for (std::size_t i = 0; i < ensemble.size(); ++i) {
    whitened.to_x(ensemble.particle(i), ensemble.particle(i));
  }
  for (RowMatrix& frame : phase2.frames) {
    for (Eigen::Index i = 0; i < frame.rows(); ++i) whitened.to_x(frame.row(i).data(), frame.row(i).data());
  }
  if (w1 > 0) {
    append_run(result, phase2, w1);
    result.frames = std::move(phase2.frames);
    result.statistics = std::move(phase2.statistics);
    result.statistics["initial_non_finite"] = phase1["initial_non_finite"];
  } else {
    result = std::move(phase2);
  }
  auto& s = result.statistics;
  s["flow"] = "mala-precond";
  s["warmup_steps"] = options.warmup;
  s["preconditioner_std"] = scale;
  s["preconditioner_from_step"] = w1;
  s["step_size_unpreconditioned"] = w1 > 0 ? phase1["step_size"] : nlohmann::json(nullptr);
  return result;
}

std::unique_ptr<Flow> make_mala_precond(JsonReader& params) {
  // The same parameters as "mala", read by its factory.
  const std::unique_ptr<Flow> mala = make_mala(params);
  return std::make_unique<MalaPrecondFlow>(static_cast<const MalaFlow&>(*mala).params());
}

}  // namespace boltzlab
