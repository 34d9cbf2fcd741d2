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
  /// \throws ConfigError naming the option.
  void validate() const;
};

/// What a flow run reports (written to summary.json by wgf-relax).
struct FlowResult {
  std::size_t steps_done = 0;           ///< steps run (warm-up included)
  bool converged = false;               ///< stopped on tolerance
  std::size_t energy_evaluations = 0;   ///< calls of u (with or without ∇u), over all particles
  std::size_t non_finite = 0;           ///< evaluations with non-finite u or ∇u
  nlohmann::json statistics = nlohmann::json::object();  ///< acceptance, adapted step size, ...
  std::vector<double> monitor_steps;    ///< steps at which monitors were recorded
  std::map<std::string, std::vector<double>> monitors;  ///< "mean_energy" always; flow-specific others
  std::vector<RowMatrix> frames;        ///< recorded frames (thinning), each N×d
};

class Flow {
 public:
  virtual ~Flow() = default;
  virtual std::string name() const = 0;
  /// Runs the flow on `ensemble` in place. On return ensemble.reduced_energies
  /// holds u at the final positions (+inf where not finite).
  virtual FlowResult run(const Target& target, Ensemble& ensemble, const FlowOptions& options) = 0;
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
