#pragma once
/// \file bg_molecular.hpp
/// bg-sample on molecular targets, in stages that a later molecule or generator reuses:
///
///   molecular_system        the internal coordinates of the molecule and its joint torsions
///   obtain_training_frames  Cartesian frames of π: --data / generator.data, or a short
///                           Langevin MD run made here (flows/openmm_md.hpp)
///   fit_molecular_model     the flow space (MolecularFlowSpace fitted to the frames), the model
///                           (periodic in the torsions) and its base (base_registry.hpp)
///   train_molecular_model   training through the flow-space map y → x
///   load_molecular_model    a saved model with its molecular space
///   sample_molecular        samples decoded to Cartesian, exact log q, energies, log-weights
///   run_molecular           all of them, with the summary and the run directory
///
/// The flow lives on normalized internal coordinates y (3n − 6) of MolecularFlowSpace
/// (molecular_space.hpp), a Boltzmann generator on ℝ^{2n−3} × T^{n−3}: Φ is 2π-periodic in the
/// torsion columns (OtPotentialOptions::periodic), the base is one of the molecular kinds of
/// base_registry.hpp, and samples are wrapped into [−π, π) — exact densities on the torus
/// (generator.hpp). Training: λ·forward KL on the data frames (in y) + (1 − λ)·reverse KL
/// through the map y → x (FlowSpaceMap: log π_y = −u(x(y)) + L(y)), with outside-domain and
/// wrong-chirality draws masked out and counted; the running ESS uses the same map. Weights:
/// −∞ outside the domain and for the wrong enantiomer.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "boltzlab/app/bg_config.hpp"
#include "boltzlab/app/bg_run.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/molecular_space.hpp"
#include "boltzlab/generators/target_bridge.hpp"
#include "boltzlab/generators/trainer.hpp"

namespace boltzlab::generators {

/// The molecule's internal coordinates and the torsion columns of the joint group of a
/// conditional base: the backbone φ_r, ψ_r of a peptide (none for other molecules).
struct MolecularSystem {
  InternalCoordinates coordinates;
  std::vector<std::int64_t> joint;
  std::vector<std::string> joint_names;  ///< "phi2", "psi2", … (dihedrals.hpp)
};
/// The Z-matrix of cfg.z_matrix, else built from the System's bond graph and the structure
/// file (zmatrix_builder.hpp), checked against the structure file's atom names and order.
/// \throws ConfigError naming the file.
MolecularSystem molecular_system(const Potential& pot, const GeneratorConfig& cfg);

/// Refuses a Z-matrix whose atom count or (given) atom names differ from the topology's:
/// one ConfigError naming `context` and the first atom that differs.
void check_atom_names(const ZMatrix& z, const Topology& topology, const std::string& context);

/// Cartesian training frames (N × 3n) and where they came from (summary "data").
struct TrainingFrames {
  RowMatrix frames;
  nlohmann::json info;
};
/// cfg.data if set, else a Langevin MD run (cfg.md) from the target's initial positions
/// (OpenMM targets only), which adds a note. \throws ConfigError / BackendError.
TrainingFrames obtain_training_frames(const BgSampleOptions& o, const Potential& pot, const GeneratorConfig& cfg,
                                      nlohmann::json& notes);

/// A molecular model with its flow space.
struct MolecularModel {
  std::optional<MolecularFlowSpace> space;
  std::optional<BoltzmannGenerator> model;
  torch::Tensor y_data;           ///< the training frames in flow coordinates (undefined when loaded)
  double base_fit_seconds = 0.0;  ///< wall time of the base fit
};
/// Fits the flow space to the frames, makes the model (cfg.model on the flow coordinates,
/// periodic in the torsions, parameters from o.seed) and fits its base (cfg.base); a
/// DomainError of the base fit becomes a ConfigError naming generator.base.
MolecularModel fit_molecular_model(const BgSampleOptions& o, const Potential& pot, const GeneratorConfig& cfg,
                                   const MolecularSystem& system, const RowMatrix& frames);
/// Trains m on its y_data (cfg.train with the flags' seed, progress, checkpoint and resume),
/// then refines it on its own weighted draws when cfg.refinement is enabled (the returned
/// history includes the rungs; their record, summary["training"]["refinement"], goes to
/// `refinement_record` when given).
TrainHistory train_molecular_model(const BgSampleOptions& o, const Target& target, GeneratorConfig& cfg,
                                   MolecularModel& m, nlohmann::json* refinement_record = nullptr);
/// Refines m by cfg.refinement through the flow-space map (annealed_training.hpp
/// refine_trained); returns `before` followed by the rungs, and their record in `record`.
TrainHistory refine_molecular_model(const BgSampleOptions& o, const Target& target, GeneratorConfig& cfg,
                                    MolecularModel& m, nlohmann::json& record, const TrainHistory& before);
/// The model of o.model with the molecular space saved with it. \throws ConfigError.
MolecularModel load_molecular_model(const BgSampleOptions& o);

/// Weighted Cartesian samples of a molecular model.
struct MolecularSamples {
  RowMatrix x;                   ///< N × 3n, anchor frame
  Eigen::VectorXd u;             ///< reduced energies
  Eigen::VectorXd log_q;         ///< log q_cf(x) (NaN where not finite)
  Eigen::VectorXd log_weights;   ///< −u − log q; −∞ outside the domain, wrong chirality, non-finite u or q
  std::size_t non_finite_energies = 0;
  std::size_t zero_weight = 0;   ///< outside the domain or wrong chirality
  std::int64_t wrong_chirality = 0, outside_domain = 0;
};
/// n samples (base stream `seed`), decoded, with energies (counted in `counters`) and weights.
void sample_molecular(BoltzmannGenerator& model, const MolecularFlowSpace& space, const Target& target,
                      long long n, std::uint64_t seed, EnergyCounters& counters, MolecularSamples& out);

/// Decodes flow-coordinate samples s (y with log q_y) to Cartesian and weighs them as
/// sample_molecular does.
void weigh_molecular(const GeneratedSamples& s, const MolecularFlowSpace& space, const Target& target,
                     EnergyCounters& counters, MolecularSamples& out);

/// summary["conformations"]: basin populations of the weighted samples per residue, and for the
/// first residue the reference run's (batch means) with z = (model − reference)/√(se² + se²);
/// the same lines on stderr. A note instead when no sample is usable.
nlohmann::json conformations_summary(const Target& target, const MolecularSamples& s,
                                     const std::optional<RowMatrix>& reference, const std::string& reference_name);

/// The molecular path of run_bg_sample (see the file comment). Without --data/generator.data
/// a short Langevin MD run from the target's initial positions provides the frames.
nlohmann::json run_molecular(const BgSampleOptions& o, const Potential& pot, GeneratorConfig& cfg, RunDirectory& run,
                             nlohmann::json summary, double t_start);

}  // namespace boltzlab::generators
