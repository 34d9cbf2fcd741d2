#pragma once
/// \file bg_score.hpp
/// bg-sample's path for the score rows of the preset table (presets.hpp, family kScore):
/// read the "generator.score" section, train a ScoreGenerator on data (or load --model),
/// draw samples by the row's sampler (probability-flow ODE with exact log q, or the reverse
/// SDE without a density), evaluate u at the samples, and write the run directory. With
/// log q the importance report, log Z and the density plot are those of any generator;
/// reverse-SDE samples get the energy statistics and a note saying why there are no
/// weights.
///
/// Keys: the shared top-level training keys of "generator" ("preset", "iterations",
/// "batch_size", "learning_rate", "lr_final_ratio", "clip_grad_norm", "samples", "data")
/// and, in "generator.score", the model and noising (ScoreGeneratorOptions::read) and the
/// loss ("objective", "weighting", "alpha0", "alpha1", "alpha2", "p") over the row's values.
#include <nlohmann/json.hpp>

#include "boltzlab/app/bg_config.hpp"
#include "boltzlab/app/bg_run.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/targets/registry.hpp"

namespace boltzlab::generators {

/// True when the run is a score run: the preset (flag over generator.preset) is a score row,
/// or --model is a saved score generator.
bool is_score_run(const BgSampleOptions& o, const GeneratorConfig& cfg);

/// The score path of bg-sample (see the file comment); commits `run`.
/// \throws ConfigError (molecular target, no data, bad keys), DomainError, IoError.
nlohmann::json run_score(const BgSampleOptions& o, const Potential& pot, const GeneratorConfig& cfg,
                         RunDirectory& run, nlohmann::json summary, double t_start);

}  // namespace boltzlab::generators
