#pragma once
/// \file bg_outputs.hpp
/// What bg-sample writes besides the arrays' arithmetic: training and density plots, the
/// summary entries of a generator, and the run directory (run_outputs.hpp) of both its paths
/// (plain and molecular).
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "boltzlab/app/bg_config.hpp"
#include "boltzlab/app/bg_run.hpp"
#include "boltzlab/app/molecular_outputs.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/molecular_space.hpp"
#include "boltzlab/generators/target_bridge.hpp"
#include "boltzlab/generators/trainer.hpp"

namespace boltzlab::generators {

/// training_loss.png, training_costs.png and training_ess.png (every running-ESS
/// evaluation, so at least the one after the last iteration; without any, a note says
/// why it is skipped); a plot that cannot be made adds a note.
void plot_training(const RunDirectory& run, const TrainHistory& h, nlohmann::json& notes);

/// 2-D density plot (density.png): target and model side by side on the target's domain,
/// with samples (density_comparison_script in run_outputs.hpp).
void plot_density_2d(const RunDirectory& run, const Target& target, BoltzmannGenerator& model,
                     const RowMatrix& samples, nlohmann::json& notes);

/// summary["training"] entries common to both paths: options, iterations, energy
/// evaluations, non-finite and cut energies, wall seconds, history.
nlohmann::json training_summary(const TrainOptions& options, const TrainHistory& history);

/// Arrays of a generated sample set (rows of `samples` ↔ entries of the vectors).
struct GeneratedArrays {
  const RowMatrix* samples;
  const Eigen::VectorXd* reduced_energies;
  const Eigen::VectorXd* log_q;
  const Eigen::VectorXd* log_weights;
};

/// What the run directory records of the model behind a sample set: its options
/// ({"samples", "generator"[, "training"]}) and, when it was trained here, the energy
/// evaluations and wall time of that training (zero for a loaded model).
struct GeneratorRecord {
  nlohmann::json options;
  std::size_t training_energy_evaluations = 0;
  double training_seconds = 0.0;
};
/// The record of a flow model: `history` is null when the model was loaded.
GeneratorRecord flow_record(const GeneratorConfig& cfg, const BoltzmannGenerator& model, const TrainHistory* history);

/// The run-directory contract of every bg-sample path (plain, molecular, score): arrays,
/// counts (training + sampling energy evaluations), timings, the importance report as
/// `statistics`, notes, and every other summary entry as extra keys; then commits.
/// `reference` (molecules) puts the reference run beside the model in ramachandran.png.
nlohmann::json write_generator_run(RunDirectory& run, const BgSampleOptions& o, const Potential& pot,
                                   const GeneratorRecord& record, const EnergyCounters& counters,
                                   const GeneratedArrays& arrays, const nlohmann::json& summary,
                                   const nlohmann::json& notes, double t_start,
                                   const MolecularReference& reference = {});

/// Mixture components per torsion column of a molecular base (for summary.json).
std::vector<int> base_components_of_torsions(const BaseDensity& base);

/// The conditional block of a molecular base, for summary.json (null without one).
nlohmann::json conditional_summary(const ConditionalGaussian* c);

}  // namespace boltzlab::generators
