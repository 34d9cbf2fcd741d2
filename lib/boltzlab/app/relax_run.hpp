#pragma once
/// \file relax_run.hpp
/// The logic of the `wgf-relax` tool: load a potential, build the initial ensemble,
/// run any registered flow (flows/registry.cpp), write the standard run directory
/// (app/run_outputs.hpp). The tool itself only parses flags into RelaxOptions.
///
/// Precedence of every setting: command-line flag > the potential file's "sampler"
/// section > built-in default. The "sampler" section (all keys optional, unknown
/// keys rejected):
///
///     "sampler": {
///       "flow": "mala", "particles": 4096, "steps": 2000, "warmup": 500,
///       "step_size": 0.05, "thin": 0, "max_frames": 1000, "monitor_every": 10,
///       "beta_start": 0.1, "beta_steps": 500, "beta_schedule": "geometric",
///       "tolerance": 0.0, "seed": 0,
///       "init": {"kind": "normal", "scale": 1.0, "mean": 0.0}   // or
///               {"kind": "lattice", "spacing": 1.1, "jitter": 0.05}   // or
///               {"kind": "reference", "scale": 0.001},  // target's reference configuration + scale·ξ
///       "params": {"mala": {"target_acceptance": 0.574}, "baoab": {"friction": 1.0}}
///     }
///
/// Built-in defaults: flow "mala", 1024 particles, 1000 steps, warm-up steps/4,
/// the flow's default step size, no frames, β = 1, no tolerance, seed 0.
/// Initial ensemble: --init X.npy (N×d float64/float32, finite; its row count is
/// the particle count, and --particles must agree when given), else "init" from the
/// sampler section, else the target's reference configuration (molecules: the PDB/crd
/// structure) jittered by N(0, 0.001²) when it has one, else N(0, I). "normal": x = mean + scale·ξ; "lattice" (particle
/// systems): the n particles on the first n points of a cubic grid of the given
/// spacing, plus jitter·spacing·ξ. Initial draws use streams stream_for(seed', i) with
/// seed' = seed + 0x9E3779B97F4A7C15 (disjoint from the flow's stream_for(seed, i)),
/// so the initial ensemble, too, is independent of the thread count. Particle systems
/// are centred (target.hpp convention).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/flows/flow.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab {

/// wgf-relax options as given on the command line (unset: take the sampler section
/// or the built-in default).
struct RelaxOptions {
  std::filesystem::path potential;          ///< --potential FILE (required)
  std::filesystem::path out;                ///< --out DIR (required)
  std::optional<std::string> flow;          ///< --flow NAME
  std::optional<long long> particles;       ///< --particles N (≥ 1)
  std::optional<long long> steps;           ///< --steps (≥ 0, after warm-up)
  std::optional<long long> warmup;          ///< --warmup (≥ 0)
  std::optional<double> step_size;          ///< --step-size (> 0)
  std::optional<long long> thin;            ///< --thin: frame every k steps (0: none)
  std::optional<long long> max_frames;      ///< --max-frames
  std::optional<double> beta_start;         ///< --beta-start (> 0)
  std::optional<long long> beta_steps;      ///< --beta-steps (≥ 0)
  std::optional<double> tolerance;          ///< --tolerance (≥ 0)
  std::optional<long long> monitor_every;   ///< --monitor-every (≥ 1)
  std::optional<std::uint64_t> seed;        ///< --seed, any value in [0, 2^64)
  int threads = 0;                          ///< --threads (0: all cores)
  std::filesystem::path init;               ///< --init X.npy (empty: default init)
  std::optional<double> init_scale;         ///< --init-scale (normal init)
  std::vector<std::string> params;          ///< --param key=value (value parsed as JSON, else string)
  bool quiet = false;                       ///< --quiet: no progress lines
  bool plots = true;                        ///< --no-plots clears it
  bool strict = false;                      ///< --strict: diverged or stuck particles fail the run (exit 1)
  /// --netcdf FILE: also write the samples in ArviZ's InferenceData layout (io/netcdf.hpp):
  /// posterior "x" (chain = particle, draw = recorded frame, or the final ensemble as one
  /// draw without --thin, x_dim_0 = coordinate), sample_stats "reduced_energy" (u) and
  /// "lp" (−u) at every draw (frames are evaluated once more for them). Empty: none.
  std::filesystem::path netcdf;
  /// Checks the flag values that need no file. \throws ConfigError naming the flag.
  void validate() const;
};

/// Initial-ensemble recipe (sampler.init or the default).
struct InitSpec {
  std::string kind = "normal";  ///< "normal", "lattice" or "reference"
  double scale = 1.0;           ///< normal: standard deviation
  double mean = 0.0;            ///< normal: mean of every coordinate
  double spacing = 1.0;         ///< lattice: grid spacing
  double jitter = 0.05;         ///< lattice: noise, in units of spacing
  void validate(const std::string& context) const;
};

/// Builds the default initial ensemble of n particles for `target` (see the file
/// comment), bit-identical for any thread count.
Ensemble make_initial_ensemble(const Target& target, std::size_t n, const InitSpec& spec, std::uint64_t seed);

/// Parses --param strings "key=value" into a JSON object; the value is parsed as
/// JSON when it is valid JSON, else taken as a string. \throws ConfigError.
nlohmann::json parse_params(const std::vector<std::string>& params);

/// Every wgf-relax setting resolved (flag > the potential's "sampler" section >
/// built-in default), the flow built and its options validated.
struct RelaxPlan {
  std::string flow_name;
  nlohmann::json flow_params = nlohmann::json::object();  ///< sampler.params[flow], then --param
  std::unique_ptr<Flow> flow;
  FlowOptions flow_options;      ///< max_frames is set once the ensemble size is known
  std::size_t particles = 1024;  ///< --particles, else sampler.particles (unused with --init)
  std::size_t max_frames = 1000; ///< requested cap on frames, before the memory guard
  InitSpec init;                 ///< default initial ensemble (unused with --init)
};

/// Stage 1 of run_relax(): resolves every setting from the flags of `options`, then the
/// "sampler" section `section` (null: none; keys as in the file comment, read with
/// `context` as the prefix of its messages, e.g. "potentials/x.json: sampler"), then the
/// defaults, and builds the flow. Also the entry of the Python module's run_flow, so the
/// validation and its messages are the tool's. \throws ConfigError naming the key or flag.
RelaxPlan resolve_relax_plan(const RelaxOptions& options, const nlohmann::json& section, const Target& target,
                             const std::string& context);

/// What run_relax() did (typed; the JSON is summary.json in the run directory).
struct RelaxReport {
  std::string flow;                        ///< registered flow name
  bool interacting = false;                ///< FlowInfo::interacting of the flow
  std::string potential;                   ///< the potential's display name
  std::size_t particles = 0;               ///< N
  std::size_t dim = 0;                     ///< d
  std::size_t steps_done = 0;              ///< steps run, warm-up included
  double flow_seconds = 0.0;               ///< wall time of the flow run
  std::optional<double> acceptance_rate;   ///< main-phase acceptance (Metropolis flows)
  double step_size = 0.0;                  ///< the flow's final step size (0: it reports none)
  /// Mean final u over the healthy particles (FlowHealth: finite and not exploded);
  /// none when no particle is healthy. Diverged particles are excluded, and counted in `health`.
  std::optional<double> mean_energy;
  std::size_t non_finite_evaluations = 0;  ///< evaluations with non-finite u or ∇u
  FlowHealth health;                       ///< diverged and stuck particles of the final ensemble
  std::filesystem::path out;               ///< the committed run directory
  /// One line for the tool's stdout: flow, sizes, time, acceptance, step size, ⟨u⟩
  /// (with the number of particles it is taken over when some diverged).
  std::string message() const;
};

/// Runs the whole wgf-relax job and commits the run directory, in four stages:
/// resolve the settings (flags, the potential's "sampler" section, defaults) and build
/// the flow; build and check the initial ensemble; run warm-up + flow; write the run
/// directory (RunOutputs, plus the top-level "interacting" key) and report.
///
/// Failed particles (FlowResult::health: non-finite positions or energies, exploded,
/// stuck) are never averaged away silently: summary.json "counts" gets
/// non_finite_positions, exploded_particles, stuck_particles (null when not assessed)
/// and healthy_particles, "statistics" gets "health" (FlowHealth::to_json) and
/// "mean_energy_healthy" (null with a reason when no particle is healthy), a note and
/// one warning line on stderr name the counts. The plots of a run with diverged
/// particles are skipped, with a note saying why. With options.strict such a run
/// (diverged or stuck) is written and committed, then reported by a DomainError that
/// starts with "--strict:" and names the counts (wgf-relax exits 1).
/// \throws ConfigError, IoError, DomainError with one-line messages naming the flag,
/// file or key; nothing is left in place of an earlier run at `out` on failure.
RelaxReport run_relax(const RelaxOptions& options);

}  // namespace boltzlab
