#pragma once
/// \file bg_run.hpp
/// The logic of the `bg-sample` tool (the tool itself only parses flags):
///
///   bg-sample --potential P.json [--model M] [--samples N] [--data D.npy] [--out DIR]
///             [--seed S] [--threads T] [--reference R.npy]
///     trains an OT-Boltzmann generator on P (settings from P's "generator" section,
///     overridable by flags) unless a model is given, samples N configurations with
///     exact log q, and writes the run directory: samples.npy, log_q.npy,
///     reduced_energies.npy, log_weights.npy (log w = −u − log q), model.pt,
///     summary.json (ESS, clipped ESS, log Z ± se, training history, counters) and
///     plots (training curves; density for 2-D; molecular outputs for molecules).
///
///   with --netcdf FILE also the samples as NetCDF (BgSampleOptions::netcdf).
///
///   bg-sample --model M --evaluate X.npy --out DIR
///     writes log_q.npy for given configurations (held-out likelihood).
///
/// model.pt is saved with its record model.json (generators/model_file.hpp: SHA-256 of the file
/// and the potential's identity). A --model is verified against its record before it is read,
/// and one trained on another potential is refused unless allow_other_potential (then a
/// warning in summary["warnings"]). Training without data (reverse KL only) is a warning too.
///
/// "generator" section keys (all optional): model — "width", "layers", "rank",
/// "time", "steps", "sample_steps"; data/standardization — "data" (.npy relative to
/// the potential file), "scale" (number or array), "shift" (array); run — "samples";
/// evaluation (molecules) — "reference_dihedrals" (.npy N×2 φ/ψ in radians of a long
/// reference MD run of the same system, relative to the potential file; --reference
/// overrides it): summary.json gets "ramachandran_vs_reference" (forward KL and TV
/// against the reference, their noise floor, the φ ≥ 0 population with errors);
/// training — see TrainOptions::read ("preset", "lambda", "alpha_transport",
/// "alpha_hjb", "iterations", "warmup_iterations", "batch_size", "learning_rate", ...);
/// base density — "base" and its keys (base_options.hpp; the kinds and the targets they apply
/// to in base_registry.hpp): molecules "von_mises" (default: per-torsion von Mises fitted to the
/// data), "von_mises_mixture" (up to "base_components" von Mises per torsion, EM + BIC),
/// "conditional_gaussian" (soft torsions, the other coordinates Gaussian given them) or
/// "uniform" (torsion base of the flow on ℝ^{2n−3} × T^{n−3}); other targets "normal"
/// (default, N(0, I) after standardization) or "gaussian_mixture" (per-coordinate Gaussian
/// mixtures fitted to the standardized data; needs data). A two-stage schedule
/// is "warmup_iterations": K with "lambda": λ < 1: K steps of forward KL on the data,
/// then λ·forward + (1−λ)·reverse KL. Training from the energy alone with a temperature ladder
/// is "annealing": {"t_high", "rungs", "spacing", "samples_per_rung", "steps_per_rung",
/// "batch_size", "learning_rate", "smoothing"} (generators/annealed_training.hpp; no data, flow
/// rows, targets without a topology; summary["training"]["annealing"] holds the per-rung ESS).
/// FAB (α = 2 divergence with AIS toward p²/q, generators/fab_training.hpp) is "fab": {"iterations",
/// "particles", "ais_rungs", "mala_steps", "step_size", "steps_per_batch", "buffer_batches",
/// "batch_size", "learning_rate", "max_weight_adjust", "check_every", "check_samples", "seed"}
/// (the same refusals, and not with "annealing"; summary["training"]["fab"]).
/// Annealed SMC after the flow is "smc" (or --smc N; bg_smc.hpp).
/// Unknown keys are rejected naming the file.
/// The stages of a run: bg_config.hpp (reading), bg_molecular.hpp (molecules), bg_outputs.hpp
/// (plots, summary entries, run directory).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "boltzlab/targets/target.hpp"

namespace boltzlab::generators {

/// Flags of bg-sample. Optional fields override the potential file's "generator" section.
struct BgSampleOptions {
  std::filesystem::path potential;  ///< potential file (required unless --evaluate)
  std::filesystem::path model;      ///< trained model (empty: train)
  bool allow_other_potential = false;  ///< --allow-other-potential: use a model of another potential
  std::filesystem::path data;       ///< samples of π for the forward KL (empty: generator.data)
  std::filesystem::path evaluate;   ///< configurations for log q (evaluate mode)
  /// reference φ/ψ (.npy N×2, radians) overriding generator.reference_dihedrals:
  /// summary["ramachandran_vs_reference"] (estimators/ramachandran_compare.hpp)
  std::filesystem::path reference;
  std::filesystem::path out = "bg-run";  ///< run directory
  std::optional<long long> samples;       ///< N (default generator.samples or 100000)
  /// --smc N: annealed SMC with N particles after the flow (bg_smc.hpp; overrides generator.smc.particles)
  std::optional<long long> smc;
  std::uint64_t seed = 1;           ///< training and base-draw seed, any value in [0, 2^64)
  int threads = 0;                  ///< 0: all cores (oneTBB and LibTorch alike)
  std::optional<int> iterations;    ///< override generator.iterations
  std::optional<std::string> preset;  ///< override generator.preset
  std::optional<double> lambda;     ///< override generator.lambda
  bool resume = false;              ///< resume training from <out>.checkpoint.pt (must exist, of this run)
  /// --refine: with --model, refine the loaded model by generator.refinement (weighted forward
  /// KL on its own fresh draws, annealed_training.hpp) before sampling; the refined model is saved.
  bool refine = false;
  bool progress = true;             ///< progress lines on stderr (--quiet clears it)
  /// --netcdf FILE: also write the weighted samples in ArviZ's InferenceData layout
  /// (io/netcdf.hpp), read back from the committed run directory
  /// (run_directory_inference_data, app/iw_diag.hpp): one chain, posterior "x" (the rows
  /// of samples.npy), sample_stats "log_weight", "log_q", "reduced_energy" and "lp" (−u).
  /// The path is checked before the run; not with --evaluate. Empty: none.
  std::filesystem::path netcdf;
  /// Checks the flag values alone. \throws ConfigError naming the flag.
  void validate() const;
};

/// The one thread setting of the generators: oneTBB gets `threads` (0: all cores)
/// and parallelizes over fixed batch chunks; LibTorch's intra-op pool is set to 1
/// thread (no oversubscription, results independent of `threads`) and its inter-op
/// pool to `threads` (settable once per process; later calls leave it). Process-wide
/// allocator settings are the program's choice (tools/bg-sample.cpp tunes glibc's malloc
/// for the MB-sized tensors of each RK4 stage).
void set_generator_threads(int threads);

/// Runs bg-sample; returns the summary written. \throws boltzlab::Error subclasses
/// with one clear line; nothing is left half-written (RunDirectory staging).
nlohmann::json run_bg_sample(const BgSampleOptions& options);

/// The importance section of a generator run (estimators/report.hpp
/// importance_report: Kish ESS, clipped ESS, PSIS k̂, log Z with its standard error,
/// compared with the exact log Z when the target knows it). When no weight is finite
/// the section says so instead of throwing.
nlohmann::json generator_importance_report(const Eigen::VectorXd& log_weights, std::size_t non_finite_energies,
                                           const Target& target);

}  // namespace boltzlab::generators
