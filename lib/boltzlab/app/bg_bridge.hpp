#pragma once
/// \file bg_bridge.hpp
/// bg-sample's path for the bridge rows of the preset table (presets.hpp, family kBridge):
/// a Schrödinger-bridge sampler (bridge_sampler.hpp) trained on the energy alone (or loaded
/// with --model), its samples weighted exactly, and the run directory of every generator.
///
/// Keys: the shared top-level training keys of "generator" ("iterations", "batch_size",
/// "learning_rate", "lr_final_ratio", "clip_grad_norm", "energy_cut", "width", "layers",
/// "samples") and, in "generator.bridge", "sigma", "time", "steps", "alpha_interaction",
/// "interaction_length", "width", "layers" (BridgeOptions::read). Targets without molecules or
/// particle layouts.
#include <nlohmann/json.hpp>

#include "boltzlab/app/bg_config.hpp"
#include "boltzlab/app/bg_run.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/targets/registry.hpp"

namespace boltzlab::generators {

/// True when the run is a bridge run: the preset is a bridge row, or --model is a saved bridge.
bool is_bridge_run(const BgSampleOptions& o, const GeneratorConfig& cfg);

/// The bridge path of bg-sample (see the file comment); commits `run`.
/// \throws ConfigError (molecular or particle target, bad keys), DomainError, IoError.
nlohmann::json run_bridge(const BgSampleOptions& o, const Potential& pot, const GeneratorConfig& cfg,
                          RunDirectory& run, nlohmann::json summary, double t_start);

}  // namespace boltzlab::generators
