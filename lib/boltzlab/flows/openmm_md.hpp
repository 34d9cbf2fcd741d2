#pragma once
/// \file openmm_md.hpp
/// Reference sampling of OpenMM targets with OpenMM's own integrators: local energy
/// minimization, equilibration and production with LangevinMiddleIntegrator
/// (BAOAB-type "middle" splitting; Zhang et al., J. Phys. Chem. A 123, 6056 (2019)),
/// recording thinned frames. These runs are the ground truth and training data of the
/// Boltzmann generators, and `md-reference` (app/md_reference.hpp) writes them as a run directory.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/targets/openmm_target.hpp"

namespace OpenMM {
class LangevinMiddleIntegrator;
}

namespace boltzlab {

/// Settings of one Langevin MD trajectory (defaults: 1 fs steps, friction 1/ps, 100 ps
/// equilibration, 1 ns production, a frame every ps).
struct LangevinMdOptions {
  double timestep_fs = 1.0;          ///< integration step Δt (fs)
  double friction_per_ps = 1.0;      ///< collision rate γ (1/ps)
  double temperature = 0.0;          ///< bath temperature (K); 0: the target's temperature
  bool minimize = true;              ///< LocalEnergyMinimizer (L-BFGS) before equilibration
  double minimize_tolerance = 10.0;  ///< minimizer force tolerance (kJ/mol/nm)
  double equilibration_ps = 100.0;   ///< discarded equilibration (ps)
  double production_ps = 1000.0;     ///< recorded production (ps)
  double frame_interval_ps = 1.0;    ///< time between recorded frames (ps)
  std::uint64_t seed = 1;            ///< run seed; replica r draws from stream_for(seed, r)
  bool progress = false;             ///< progress lines on stderr
  /// \throws ConfigError naming the option (non-positive step, interval not a
  /// multiple of the step, ...).
  void validate() const;
  std::size_t steps_for(double ps) const;  ///< round(ps / Δt)
  std::size_t steps_per_frame() const { return steps_for(frame_interval_ps); }
};

/// Applies a protocol given as JSON on top of `base` (all keys optional): timestep_fs,
/// friction_per_ps, temperature, minimize, minimize_tolerance, equilibration_ps,
/// production_ns, frame_interval_ps, seed. Used for the "reference" section of a
/// potential file and for command-line overrides. Unknown keys are rejected.
LangevinMdOptions md_options_from_json(const Json& protocol, const std::string& context,
                                       LangevinMdOptions base = {});

/// One trajectory's output.
struct LangevinMdResult {
  RowMatrix frames;                     ///< F×3n positions (nm), one per frame interval
  Eigen::VectorXd potential_energies;   ///< E at the frames (kJ/mol, platform's MD Context)
  Eigen::VectorXd kinetic_temperatures; ///< 2 KE / (k_B · dof) at the frames (K)
  double start_energy = 0.0;            ///< E of the start configuration (kJ/mol)
  double minimized_energy = 0.0;        ///< E after minimization (kJ/mol; = start when off)
  std::size_t equilibration_steps = 0;
  std::size_t production_steps = 0;     ///< production steps actually run
  /// ⟨2 KE / (k_B · dof)⟩ over frames (K), dof = 3n − 3: a thermostat check (the
  /// 10 ns alanine dipeptide reference run gives 299.9 K at a 300 K bath).
  double mean_kinetic_temperature = 0;
  double wall_seconds = 0.0;            ///< wall time of equilibration + production
  bool failed = false;                  ///< OpenMM raised an error (e.g. NaN positions): run stopped
  std::string failure;                  ///< its message
};

/// A LangevinMiddleIntegrator Context on the target's platform at `positions` (nm),
/// with velocities drawn from Maxwell–Boltzmann at `temperature`; OpenMM random
/// seeds are derived from Rng(seed, stream) (never 0, which OpenMM treats as "random").
OpenMMContext make_langevin_context(const OpenMMTarget& target, const double* positions, double temperature,
                                    double friction_per_ps, double timestep_ps, std::uint64_t seed,
                                    std::uint64_t stream);

/// Runs one trajectory from `start` (flat 3n, nm): minimize (optional), equilibrate,
/// then record a frame every frame_interval_ps for production_ps. Replica `replica`
/// uses random stream (seed, replica), so replicas are independent of thread count.
LangevinMdResult run_langevin_md(const OpenMMTarget& target, const std::vector<double>& start,
                                 const LangevinMdOptions& options, std::size_t replica = 0);

}  // namespace boltzlab
