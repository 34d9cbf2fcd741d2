#pragma once
/// \file bg_smc.hpp
/// bg-sample's annealed SMC stage after a flow generator ("generator": {"smc": {…}} or --smc N):
/// N particles start from the flow's first N base draws (the same draws as samples.npy's first
/// N rows), and annealed SMC (estimators/annealed_smc.hpp) runs in the flow's base space from
/// the flow's density to the target (generators/latent_path.hpp). The run directory gets
///   smc_samples.npy (N × d target configurations), smc_log_weights.npy (their log-weights,
///   offset so that log mean exp = log Ẑ), smc_reduced_energies.npy,
/// and summary["smc"]: the options, the flow-only ESS and log Z of the N starting draws, the
/// post-SMC ESS, log Ẑ ± se (ancestry variance), rungs (β, ESS, resampling, acceptance, step),
/// resamplings, surviving ancestors, target evaluations (N starting draws, N per MALA step and N
/// for the final particles' energies) and wall time.
///
/// Keys of "smc" (all optional): "particles" (default 10000), "rungs" (0: adaptive), "cess",
/// "max_rungs", "mala_steps", "step_size", "target_acceptance", "resample_threshold",
/// "precondition" (AnnealedSmcOptions). Flow rows only (not the score or bridge rows), deterministic flows.
#include <optional>

#include <nlohmann/json.hpp>

#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/estimators/annealed_smc.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/molecular_space.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab::generators {

/// The stage's settings.
struct SmcSettings {
  AnnealedSmcOptions options;
  long long particles = 10000;
  nlohmann::json to_json() const;
};

/// "smc" of the generator section (absent: none); `particles_flag` (--smc N) enables it or
/// overrides "particles". \throws ConfigError naming the file and key.
std::optional<SmcSettings> read_smc(JsonReader& r, std::optional<long long> particles_flag);

/// What the stage produced, for the caller's own summaries (molecular populations).
struct SmcOutcome {
  RowMatrix x;                  ///< N × d target configurations
  Eigen::VectorXd u;            ///< reduced energies (+∞ where there is no mass)
  Eigen::VectorXd log_weights;  ///< log mean exp = log Ẑ
  nlohmann::json summary;       ///< summary["smc"]
};

/// Runs the stage on `model` (`space`: molecules, else null) with base seed `seed`, writes the
/// three arrays into `run` and returns them with the summary section. `progress`: one line per
/// rung on stderr. \throws ConfigError for a stochastic flow, DomainError when the SMC fails.
SmcOutcome run_smc_stage(BoltzmannGenerator& model, const Target& target, const MolecularFlowSpace* space,
                         const SmcSettings& settings, std::uint64_t seed, bool progress, RunDirectory& run);

}  // namespace boltzlab::generators
