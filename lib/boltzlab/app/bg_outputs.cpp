#include "boltzlab/app/bg_outputs.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "boltzlab/app/run_outputs.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/io/plot.hpp"

namespace boltzlab::generators {

void plot_training(const RunDirectory& run, const TrainHistory& h, nlohmann::json& notes) {
  std::vector<Series> loss = {{"loss", {}, h.loss}};
  std::vector<double> fkl, rkl;
  bool any_f = false, any_r = false;
  for (double v : h.forward_kl) any_f |= std::isfinite(v);
  for (double v : h.reverse_kl) any_r |= std::isfinite(v);
  if (any_f) loss.push_back({"forward KL (NLL)", {}, h.forward_kl});
  if (any_r) loss.push_back({"reverse KL - log Z", {}, h.reverse_kl});
  auto r1 = plot_lines(loss, "training loss", "iteration", "value", run.path("training_loss.png"));
  if (!r1.ok) notes.push_back(r1.note);
  std::vector<Series> costs = {{"transport", {}, h.transport}, {"HJB residual", {}, h.hjb}};
  auto r2 = plot_lines(costs, "path costs", "iteration", "value", run.path("training_costs.png"));
  if (!r2.ok) notes.push_back(r2.note);
  if (h.eval_ess.empty()) {
    notes.push_back("training_ess.png skipped: no running-ESS evaluation was made (generator.eval_every = 0)");
    return;
  }
  // Evaluations are drawn with markers (line_plot_script), so that a run shorter than
  // the evaluation interval, which evaluates only after its last iteration, shows that point.
  LinePlot ess;
  ess.title = "running Kish ESS (small batches)";
  ess.xlabel = "iteration";
  ess.ylabel = "ESS / N";
  ess.series = {{"running ESS", h.eval_iteration, h.eval_ess}};
  ess.log_y = true;  // ESS / N in (0, 1]: small values stay visible
  ess.x_lo = 0.0;
  ess.x_hi = static_cast<double>(std::max(h.iterations_done, 1));
  ess.y_hi = 1.0;
  ess.caption = {std::to_string(h.eval_ess.size()) + " evaluation(s) in " + std::to_string(h.iterations_done) +
                " iterations; the last: ESS / N = " + format_number(h.eval_ess.back())};
  auto r3 = plot_lines(ess, run.path("training_ess.png"));
  if (!r3.ok) notes.push_back(r3.note);
}

/// 2-D density plot: target and model on the target's domain (density_comparison_script).
void plot_density_2d(const RunDirectory& run, const Target& target, BoltzmannGenerator& model,
                     const RowMatrix& samples, nlohmann::json& notes) {
  if (model.options().stochastic()) {
    notes.push_back("density.png not drawn: a stochastic flow (generator.noise > 0) has no closed-form model density");
    return;
  }
  const LogDensityFunction log_q = [&model](const RowMatrix& x) { return Eigen::VectorXd(model.log_q(x)); };
  const PlotResult r = draw_plot(density_comparison_script(target, log_q, samples), run.path("density.png"));
  if (!r.ok) notes.push_back(r.note);
}

nlohmann::json training_summary(const TrainOptions& options, const TrainHistory& history) {
  return {{"options", options.to_json()},
          {"iterations", history.iterations_done},
          {"energy_evaluations", history.energy_evaluations},
          {"non_finite_energies", history.non_finite},
          {"cut_energies", history.cut},
          {"wall_seconds", history.wall_seconds},
          {"history", history.to_json()}};
}

/// The run-directory contract of both bg-sample paths (plain and molecular): arrays,
/// counts (training + sampling energy evaluations), timings, the importance report as
/// `statistics`, notes, and every other summary entry as extra keys; then commits.
/// `history` is null when the model was loaded instead of trained.
GeneratorRecord flow_record(const GeneratorConfig& cfg, const BoltzmannGenerator& model, const TrainHistory* history) {
  GeneratorRecord r;
  r.options = {{"samples", cfg.samples}, {"generator", model.options().to_json()}};
  if (history) {
    r.options["training"] = cfg.train.to_json();
    r.training_energy_evaluations = history->energy_evaluations;
    r.training_seconds = history->wall_seconds;
  }
  return r;
}

nlohmann::json write_generator_run(RunDirectory& run, const BgSampleOptions& o, const Potential& pot,
                                   const GeneratorRecord& record, const EnergyCounters& counters,
                                   const GeneratedArrays& arrays, const nlohmann::json& summary,
                                   const nlohmann::json& notes, double t_start, const MolecularReference& reference) {
  RunOutputs out;
  out.tool = "bg-sample";
  out.potential_path = o.potential;
  out.potential_name = pot.name;
  out.target = pot.target.get();
  out.options = record.options;
  out.seed = o.seed;
  out.samples = arrays.samples;
  out.reduced_energies = arrays.reduced_energies;
  out.log_q = arrays.log_q;
  out.log_weights = arrays.log_weights;
  out.reference_dihedrals = reference.dihedrals;
  out.reference_name = reference.name;
  const std::size_t sampling_evaluations = counters.evaluations.load();
  // The SMC stage's evaluations (bg_smc.hpp) count toward the total and are shown apart.
  const std::size_t smc_evaluations = summary.contains("smc") ? summary["smc"]["energy_evaluations"].get<std::size_t>() : 0;
  out.counts = {{"energy_evaluations", record.training_energy_evaluations + sampling_evaluations + smc_evaluations},
                {"sampling_energy_evaluations", sampling_evaluations}};
  if (summary.contains("smc")) {
    out.counts["smc_energy_evaluations"] = smc_evaluations;
    out.extra_files = {"smc_samples.npy", "smc_log_weights.npy", "smc_reduced_energies.npy"};
  }
  out.timings = {{"training", record.training_seconds},
                 {"sampling", summary["sampling_seconds"]},
                 {"total_before_write", wall_seconds() - t_start}};
  out.statistics = summary["importance"];
  for (const auto& n : notes) out.notes.push_back(n.get<std::string>());
  for (const auto& [k, v] : summary.items())
    if (k != "tool" && k != "seed" && k != "threads") out.extra[k] = v;
  nlohmann::json written = write_run(run, out);
  run.commit();
  return written;
}

/// Mixture components per torsion column of a molecular base (for summary.json).
std::vector<int> base_components_of_torsions(const BaseDensity& base) {
  const auto per_column = base.components_per_column();
  std::vector<int> out;
  for (std::size_t c = 0; c < per_column.size(); ++c)
    if (base.torsion_mask()[static_cast<std::int64_t>(c)].item<bool>()) out.push_back(per_column[c]);
  return out;
}

/// The conditional block of a molecular base, for summary.json (null without one).
nlohmann::json conditional_summary(const ConditionalGaussian* c) {
  if (c == nullptr) return nullptr;
  return {{"soft_columns", c->soft()},
          {"joint_columns", c->joint()},
          {"components", c->components()},
          {"experts", !c->shared()},
          {"hard_columns", c->hard().size()},
          {"features", c->n_features()},
          {"harmonics", c->harmonics()},
          {"max_periodic_sd", c->max_periodic_sd()},
          {"joint_correction_bins", c->correction_bins()}};
}

}  // namespace boltzlab::generators
