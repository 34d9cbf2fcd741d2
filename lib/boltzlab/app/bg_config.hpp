#pragma once
/// \file bg_config.hpp
/// The "generator" section of a potential file as bg-sample reads it (the keys are listed in
/// bg_run.hpp), in parts that a later generator job reuses: the model architecture, the data
/// and evaluation paths, the base density (base_registry.hpp) and the MD that makes training
/// frames for a molecule without data. The training keys are TrainOptions::read (trainer.hpp).
/// Every error is one ConfigError naming the file and the key.
#include <filesystem>
#include <optional>
#include <string>

#include <Eigen/Core>

#include "boltzlab/app/bg_run.hpp"
#include "boltzlab/app/bg_smc.hpp"
#include "boltzlab/generators/annealed_training.hpp"
#include "boltzlab/generators/fab_training.hpp"
#include "boltzlab/generators/base_options.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/model_file.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/targets/registry.hpp"

namespace boltzlab::generators {

/// The run that makes training frames for molecular targets without data: "data_source"
/// "replica_exchange" (default; the frames at the lowest temperature of a replica-exchange run,
/// flows/replica_exchange.hpp, with the potential's "replica_exchange" section and the
/// generator's "replica_exchange" object on top) or "md" (one Langevin MD trajectory:
/// "md_equilibration_ps", "md_production_ps", "md_frame_interval_ps").
struct MolecularDefaults {
  std::string source = "replica_exchange";
  nlohmann::json replica_exchange = nlohmann::json::object();  ///< overrides of the potential's section
  double equilibration_ps = 5.0;
  double production_ps = 50.0;
  double frame_interval_ps = 0.025;
};

/// Everything bg-sample takes from the generator section (and the flags overriding it).
struct GeneratorConfig {
  MolecularDefaults md;
  GeneratorOptions model;
  TrainOptions train;
  AnnealingOptions annealing;  ///< "annealing": temperature-annealed training (annealed_training.hpp)
  FabOptions fab;              ///< "fab": α = 2 divergence with AIS (fab_training.hpp)
  RefinementOptions refinement;  ///< "refinement": weighted forward KL on fresh draws after the training
  std::optional<SmcSettings> smc;  ///< "smc" or --smc: annealed SMC after the flow (bg_smc.hpp)
  std::filesystem::path data;
  std::filesystem::path z_matrix;             ///< user Z-matrix file (zmatrix.hpp JSON); empty: built from the bonds
  std::filesystem::path reference_dihedrals;  ///< reference φ/ψ (.npy N×2) for summary["ramachandran_vs_reference"]
  std::string reference_field;                ///< where it was given (for error messages)
  std::optional<Eigen::VectorXd> scale, shift;
  /// "base" and its keys (default: von_mises for molecules, normal otherwise).
  BaseOptions base = NormalBaseOptions{};
  long long samples = 100000;
  /// "symmetrize": draw from q_G, the generator averaged over the particle permutations and a
  /// reflection (generators/symmetrize.hpp); particle systems only, not with smc.
  bool symmetrize = false;
};

/// The architecture keys ("width", "layers", "rank", "network", "pair_*", "time", "steps",
/// "sample_steps") with the target's dimension and particle layout. Not validated (the
/// caller names the file when GeneratorOptions::validate fails).
GeneratorOptions read_model_options(JsonReader& r, const Target& target);

/// "data", "z_matrix", "reference_dihedrals" (all relative to the potential file; --reference overrides
/// the latter, which needs a molecular target), "scale", "shift" (number or array of the
/// target's dimension) and "samples" into `c`.
void read_data_options(JsonReader& r, const Potential& pot, const BgSampleOptions& flags, GeneratorConfig& c);

/// "symmetrize" (default false). \throws ConfigError naming the key for a target without a
/// particle layout, a group too large for its log q_G, or with the SMC stage.
bool read_symmetrize(JsonReader& r, const Target& target, bool smc);

/// "base" and its keys for the potential's target (read_base_options, base_registry.hpp).
BaseOptions read_base(JsonReader& r, const Target& target);

/// "data_source", "replica_exchange", "md_equilibration_ps", "md_production_ps", "md_frame_interval_ps".
/// \throws ConfigError naming the key.
MolecularDefaults read_md_defaults(JsonReader& r);

/// "annealing" (an object, AnnealingOptions::read; absent: no annealing). Annealed training runs
/// from the energy alone on targets without a topology, so data (`have_data`) or a molecular
/// target are refused. \throws ConfigError naming the file and the key.
AnnealingOptions read_annealing(JsonReader& r, const Target& target, bool have_data);

/// "fab" (an object, FabOptions::read; absent: no FAB). Like "annealing": from the energy alone on
/// targets without a topology, so data or a molecular target are refused, and not together with
/// "annealing" (`annealing_enabled`). \throws ConfigError naming the file and the key.
FabOptions read_fab(JsonReader& r, const Target& target, bool have_data, bool annealing_enabled);

/// "refinement" (an object, RefinementOptions::read; absent: none). After any flow training,
/// molecular targets included; not with "annealing", whose "refine_rungs" are the same rungs
/// (`annealing_enabled`). \throws ConfigError naming the file and the key.
RefinementOptions read_refinement(JsonReader& r, bool annealing_enabled);

/// <out>.checkpoint.pt, beside the run directory (run_directory.hpp checkpoint_path); removed
/// once a trained run is committed.
std::filesystem::path bg_checkpoint_path(const std::filesystem::path& out);

/// The potential a run's model.pt is bound to (model_file.hpp): the one a loaded model was
/// trained on (summary["model_record"], possibly none), else `pot`, which the model was trained on.
std::optional<PotentialIdentity> saved_model_potential(const Potential& pot, const nlohmann::json& summary);

/// The training settings that come from the flags: seed, progress, resume, and checkpoints in
/// <out>.checkpoint.pt every checkpoint_every iterations (0: iterations / 10, at least 1).
/// Leaves train.checkpoint_identity (set by run_bg_sample) alone.
void apply_training_flags(TrainOptions& train, const BgSampleOptions& flags);

}  // namespace boltzlab::generators
