#pragma once
/// \file openmm_langevin.hpp
/// Flow "openmm-langevin": every particle of the ensemble is an independent Langevin
/// trajectory of an OpenMM target with the splitting of OpenMM's
/// LangevinMiddleIntegrator ("BAOA", Zhang, Liu & Tuckerman, J. Phys. Chem. A 123,
/// 6056 (2019)), at bath temperature T/β(step) from the flow's β schedule. Reference
/// sampling through `wgf-relax --flow openmm-langevin --potential potentials/alanine_dipeptide.json`.
///
/// Why not OpenMM's own integrator object per particle: the Reference platform's
/// integrators draw from one process-global random generator
/// (SimTKOpenMMUtilities), so concurrent trajectories would race on it and depend on
/// the thread schedule. Here forces come from the target's per-thread Contexts and
/// noise from particle i's stream Rng(seed, i): bit-identical results for any thread
/// count, on any platform. tests/flows/test_openmm_langevin.cpp checks that with
/// zero friction the stepper reproduces OpenMM's LangevinMiddleIntegrator trajectory.
///
/// FlowOptions: steps = MD steps after `warmup`; step_size, when > 0, is the timestep
/// in ps (else the parameter timestep_fs); thin/max_frames record frames;
/// monitor_every is the segment length between monitor readings.
#include <memory>
#include <vector>

#include "boltzlab/core/rng.hpp"
#include "boltzlab/flows/flow.hpp"
#include "boltzlab/targets/openmm_target.hpp"

namespace boltzlab {

/// Phase-space state of one trajectory: positions (nm), velocities (nm/ps), forces
/// at the positions (kJ/mol/nm) and the potential energy there (kJ/mol).
struct LangevinState {
  std::vector<double> x, v, f;
  double energy = 0.0;
};

/// Inverse masses 1/m_i (mol/g) of the target's particles, per coordinate (3n).
std::vector<double> inverse_masses(const OpenMMTarget& target);

/// Velocities from Maxwell–Boltzmann at kT (kJ/mol): v_k ~ N(0, kT/m_k), then the
/// centre-of-mass velocity removed (unless `remove_com` is false).
void draw_velocities(LangevinState& state, const std::vector<double>& inv_mass, double kT, Rng& rng,
                     bool remove_com = true);

/// Whether the target's System has a CMMotionRemover (then OpenMM's integrators keep
/// the centre-of-mass velocity at zero; without one, removing it would change the
/// sampled distribution of a system held by external forces).
bool removes_com_motion(const OpenMMTarget& target);

/// Minimizes x (nm) in place with OpenMM's LocalEnergyMinimizer (tolerance 10
/// kJ/mol/nm) on a fresh Context of the target's platform (a VerletIntegrator of step
/// `dt` ps, never stepped). Returns OpenMM's error message, or "" on success.
std::string minimize_positions(const OpenMMTarget& target, std::vector<double>& x, double dt);

/// Evaluates f and energy at state.x. Returns false when they are not finite.
bool compute_forces(const OpenMMTarget& target, LangevinState& state);

/// One LangevinMiddle step with Δt (ps), friction γ (1/ps), bath kT (kJ/mol):
///   remove centre-of-mass velocity (as OpenMM's CMMotionRemover each step);
///   B: v ← v + Δt F/m;   A: x ← x + v Δt/2;
///   O: v ← e^{−γΔt} v + sqrt((1 − e^{−2γΔt}) kT/m) ξ,  ξ ~ N(0, 1) from `rng`;
///   A: x ← x + v Δt/2;   then F ← F(x).
/// `remove_com` false skips the first line (systems without a CMMotionRemover).
/// Returns false when the new energy or forces are not finite.
bool langevin_middle_step(const OpenMMTarget& target, LangevinState& state, const std::vector<double>& inv_mass,
                          double dt_ps, double friction_per_ps, double kT, Rng& rng, bool remove_com = true);

class OpenMMLangevinFlow : public Flow {
 public:
  struct Params {
    double timestep_fs = 1.0;      ///< MD step (fs), unless FlowOptions::step_size > 0 (ps)
    double friction_per_ps = 1.0;  ///< collision rate γ (1/ps); 0: plain velocity Verlet (NVE)
    bool minimize = false;         ///< minimize each particle's start configuration first
    /// \throws ConfigError naming the parameter.
    void validate() const;
  };
  explicit OpenMMLangevinFlow(Params params);
  std::string name() const override { return "openmm-langevin"; }

 protected:
  /// \throws ConfigError if `target` is not an OpenMM target. A particle whose
  /// energy or forces become non-finite stops; it is counted in non_finite and its
  /// energy is +inf.
  FlowResult evolve(const Target& target, Ensemble& ensemble, const FlowOptions& options) override;

 private:
  struct Trajectories;  // per-particle states and streams of one run (openmm_langevin.cpp)
  /// Start of every trajectory: optional minimization, velocities at the bath
  /// temperature of step 0, forces; a failure stops that trajectory.
  void start(const OpenMMTarget& target, const Ensemble& ensemble, const FlowOptions& options, double dt,
             const std::vector<double>& inv_mass, Trajectories& tr) const;
  /// Integrates all steps in segments between monitor and frame points; records
  /// monitors, frames and the tolerance stop.
  FlowResult integrate(const OpenMMTarget& target, Ensemble& ensemble, const FlowOptions& options, double dt,
                       const std::vector<double>& inv_mass, Trajectories& tr) const;
  /// Final energies through the target (+inf for stopped trajectories) and statistics.
  void finish(const OpenMMTarget& target, Ensemble& ensemble, const FlowOptions& options, double dt,
              const Trajectories& tr, FlowResult& result) const;

  Params params_;
};

/// Factory: parameters "timestep_fs", "friction_per_ps", "minimize" (all optional).
std::unique_ptr<Flow> make_openmm_langevin(JsonReader& params);

}  // namespace boltzlab
