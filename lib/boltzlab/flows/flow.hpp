#pragma once
/// \file flow.hpp
/// Particle flows: samplers and Wasserstein-gradient-flow discretizations that move
/// an Ensemble toward π ∝ exp(−β u). Every flow is one row of the flow table in
/// flows/registry.cpp (FlowInfo: name, factory, interacting, description) and runs as
/// `wgf-relax --flow NAME`.
///
/// Determinism contract: particle i draws only from stream_for(seed, i) (core/rng.hpp)
/// and every reduction over particles is done in a fixed order (for_each_block with a
/// fixed grain, then a serial combine), so results are bit-identical for any thread count.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/progress.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab {

/// Inverse-temperature schedule β(step) for annealing: from `start` to `end` over
/// the first `steps` steps (0: constant `end`), then constant `end`.
struct BetaSchedule {
  double start = 1.0;           ///< β at step 0
  double end = 1.0;             ///< β after the annealing phase (the target's β)
  std::size_t steps = 0;        ///< length of the annealing phase
  std::string kind = "geometric";  ///< "geometric" or "linear" interpolation
  /// β at `step`. Geometric: start·(end/start)^(step/steps).
  double at(std::size_t step) const;
  /// \throws ConfigError when β ≤ 0 or kind unknown.
  void validate() const;
};

/// Options every flow takes (wgf-relax flags). Flow-specific settings go in `params`.
struct FlowOptions {
  std::size_t steps = 1000;     ///< number of steps (after warm-up)
  double step_size = 0.0;       ///< step size τ (target units² per unit u); 0: the flow's default
  std::size_t warmup = 0;       ///< warm-up steps (adaptation; not recorded)
  std::size_t thin = 0;         ///< record a frame every `thin` steps after warm-up (0: none)
  std::size_t max_frames = 1000;  ///< cap on recorded frames (memory guard)
  std::uint64_t seed = 0;       ///< run seed; particle i uses stream_for(seed, i)
  BetaSchedule beta;            ///< annealing schedule
  double tolerance = 0.0;       ///< stop early when the flow's monitored quantity changes less (0: off)
  std::size_t monitor_every = 10;  ///< steps between monitor evaluations (mean energy, ...)
  Execution exec = Execution::kParallel;
  bool progress = true;         ///< progress lines on stderr
  /// A final particle with a finite energy |u| above this is "exploded" (FlowHealth).
  /// No sampled Boltzmann distribution puts mass at |u| > 1e30 kT.
  double exploded_energy = 1e30;
  /// A final particle with a finite coordinate |x_k| above this (target units) is
  /// "exploded": far outside any physical or analytic target's support.
  double exploded_position = 1e10;
  /// \throws ConfigError naming the option.
  void validate() const;
};

/// Particles of a finished run that failed, counted by Flow::run for every flow on the
/// final ensemble (and, for Metropolis flows, from the chains' acceptance). Disjoint
/// classes: a particle is non-finite (a NaN/inf coordinate or a non-finite final u),
/// else exploded (|u| > exploded_energy or some |x_k| > exploded_position), else
/// healthy. Stuck particles (FlowResult::statistics of MALA) are healthy by position
/// but did not move; they are counted apart.
struct FlowHealth {
  std::size_t particles = 0;             ///< N
  std::size_t non_finite_positions = 0;  ///< particles with a NaN or ±inf coordinate
  std::size_t non_finite_energies = 0;   ///< particles with finite coordinates but a non-finite u
  std::size_t exploded = 0;              ///< finite, but beyond the bounds of FlowOptions
  /// Metropolis flows (MalaParams): whether stuck chains were assessed, how many, and the
  /// rule: no accepted move in the last stuck_window sampling steps, or a sampling
  /// acceptance rate below stuck_acceptance (assessed when sampling_steps ≥ stuck_window).
  bool stuck_assessed = false;
  std::size_t stuck = 0;                 ///< chains that stopped moving (0 when not assessed)
  std::size_t stuck_window = 0;          ///< the rule's window (0: the flow has no acceptance test)
  double stuck_acceptance = 0;           ///< the rule's acceptance threshold
  std::size_t sampling_steps = 0;        ///< sampling steps the rule looked at
  double exploded_energy = 0;            ///< the bounds used
  double exploded_position = 0;
  /// Particles that are non-finite or exploded.
  std::size_t diverged() const { return non_finite_positions + non_finite_energies + exploded; }
  /// N − diverged(): the particles averages may be taken over.
  std::size_t healthy() const { return particles - diverged(); }
  /// No particle diverged and none is stuck.
  bool ok() const { return diverged() == 0 && stuck == 0; }
  /// One line naming the counts of what went wrong ("" when ok()).
  std::string problem() const;
  /// The stuck rule in words, or why stuck chains were not assessed.
  std::string stuck_rule() const;
  /// {particles, healthy, non_finite_positions, non_finite_energies, exploded,
  ///  exploded_energy_bound, exploded_position_bound, stuck (null when not assessed),
  ///  stuck_rule}.
  nlohmann::json to_json() const;
};

/// Counts the non-finite and exploded particles of `ensemble` (positions and its
/// reduced_energies) with the bounds of `options`; stuck chains are left unassessed.
FlowHealth assess_health(const Ensemble& ensemble, const FlowOptions& options);

/// Whether particle i of `ensemble` is healthy in the sense of FlowHealth.
bool healthy_particle(const Ensemble& ensemble, std::size_t i, const FlowOptions& options);

/// What a flow run reports (written to summary.json by wgf-relax).
struct FlowResult {
  std::size_t steps_done = 0;           ///< steps run (warm-up included)
  bool converged = false;               ///< stopped on tolerance
  std::size_t energy_evaluations = 0;   ///< calls of u (with or without ∇u), over all particles
  std::size_t non_finite = 0;           ///< evaluations with non-finite u or ∇u
  FlowHealth health;                    ///< diverged and stuck particles at the end (Flow::run)
  nlohmann::json statistics = nlohmann::json::object();  ///< acceptance, adapted step size, ...
  std::vector<double> monitor_steps;    ///< steps at which monitors were recorded
  std::map<std::string, std::vector<double>> monitors;  ///< "mean_energy" always; flow-specific others
  std::vector<RowMatrix> frames;        ///< recorded frames (thinning), each N×d
};

class Flow {
 public:
  virtual ~Flow() = default;
  virtual std::string name() const = 0;
  /// Runs the flow on `ensemble` in place (evolve()), then counts the diverged particles
  /// of the final ensemble into FlowResult::health (assess_health; a flow's own stuck
  /// count is kept). On return ensemble.reduced_energies holds u at the final positions
  /// (+inf where not finite). Never throws for diverged particles: the caller decides.
  FlowResult run(const Target& target, Ensemble& ensemble, const FlowOptions& options);

 protected:
  /// The flow itself: moves `ensemble` and sets its final reduced energies.
  virtual FlowResult evolve(const Target& target, Ensemble& ensemble, const FlowOptions& options) = 0;
};

/// Builds a flow from its flow-specific parameters (e.g. {"gamma": 1.0}); the
/// factory must call params.finish().
using FlowFactory = std::function<std::unique_ptr<Flow>(JsonReader& params)>;

/// One row of the flow table (flows/registry.cpp): everything the tools need to know
/// about a flow without building it. Adding a flow adds one row.
struct FlowInfo {
  std::string name;          ///< --flow NAME
  FlowFactory factory;       ///< builds the flow from its "params"
  /// Whether the particles interact: true when the update of one particle depends on
  /// the others (SVGD, blob, MMD), so the final particles are NOT independent replicas;
  /// false when every particle is an independent chain with its own random stream
  /// (the Langevin samplers), so per-particle averages have i.i.d. error bars.
  /// Written to summary.json as "interacting".
  bool interacting = false;
  std::string description;   ///< one line, printed by `wgf-relax --help`
};

/// The flow table, sorted by name.
const std::vector<FlowInfo>& flow_table();

/// Registered flow names, sorted.
std::vector<std::string> flow_names();

/// The row of flow `name`. \throws ConfigError for an unknown name, prefixed with
/// `context`, suggesting the closest name and listing all.
const FlowInfo& flow_info(const std::string& name, const std::string& context = "flow");

/// Builds flow `name` from its parameters (null: none).
/// \throws ConfigError for an unknown name (as flow_info) or bad params.
std::unique_ptr<Flow> make_flow(const std::string& name, const Json& params,
                                const std::string& context = "flow");

}  // namespace boltzlab
