#include "boltzlab/flows/openmm_langevin.hpp"

#include <cmath>
#include <limits>

#include <OpenMM.h>

#include "boltzlab/core/error.hpp"

namespace boltzlab {

std::vector<double> inverse_masses(const OpenMMTarget& target) {
  const std::size_t atoms = target.dim() / 3;
  std::vector<double> inv(3 * atoms);
  for (std::size_t a = 0; a < atoms; ++a) {
    const double m = target.system().getParticleMass(static_cast<int>(a));
    for (int k = 0; k < 3; ++k) inv[3 * a + static_cast<std::size_t>(k)] = m > 0 ? 1.0 / m : 0.0;
  }
  return inv;
}

namespace {

// Subtracts the centre-of-mass velocity Σ m v / Σ m (massless particles untouched).
void remove_com_velocity(std::vector<double>& v, const std::vector<double>& inv_mass) {
  const std::size_t atoms = v.size() / 3;
  double p[3] = {0, 0, 0}, mass = 0.0;
  for (std::size_t a = 0; a < atoms; ++a) {
    if (inv_mass[3 * a] == 0.0) continue;
    const double m = 1.0 / inv_mass[3 * a];
    mass += m;
    for (int k = 0; k < 3; ++k) p[k] += m * v[3 * a + static_cast<std::size_t>(k)];
  }
  if (mass == 0.0) return;
  for (std::size_t a = 0; a < atoms; ++a) {
    if (inv_mass[3 * a] == 0.0) continue;
    for (int k = 0; k < 3; ++k) v[3 * a + static_cast<std::size_t>(k)] -= p[k] / mass;
  }
}

}  // namespace

void draw_velocities(LangevinState& state, const std::vector<double>& inv_mass, double kT, Rng& rng,
                     bool remove_com) {
  state.v.resize(state.x.size());
  for (std::size_t k = 0; k < state.v.size(); ++k) state.v[k] = std::sqrt(kT * inv_mass[k]) * rng.normal();
  if (remove_com) remove_com_velocity(state.v, inv_mass);
}

bool removes_com_motion(const OpenMMTarget& target) {
  const OpenMM::System& system = target.system();
  for (int i = 0; i < system.getNumForces(); ++i)
    if (dynamic_cast<const OpenMM::CMMotionRemover*>(&system.getForce(i))) return true;
  return false;
}

bool compute_forces(const OpenMMTarget& target, LangevinState& state) {
  state.f.resize(state.x.size());
  state.energy = target.potential_energy(state.x.data(), state.f.data());
  if (!std::isfinite(state.energy)) return false;
  for (double fk : state.f)
    if (!std::isfinite(fk)) return false;
  return true;
}

bool langevin_middle_step(const OpenMMTarget& target, LangevinState& s, const std::vector<double>& inv_mass,
                          double dt, double friction, double kT, Rng& rng, bool remove_com) {
  const double vscale = std::exp(-friction * dt);
  const double noise = std::sqrt(std::max(0.0, 1.0 - vscale * vscale) * kT);
  const double half = 0.5 * dt;
  if (remove_com) remove_com_velocity(s.v, inv_mass);
  for (std::size_t k = 0; k < s.x.size(); ++k) {
    if (inv_mass[k] == 0.0) continue;
    double v = s.v[k] + dt * inv_mass[k] * s.f[k];  // B
    double x = s.x[k] + half * v;                   // A
    if (noise > 0) v = vscale * v + noise * std::sqrt(inv_mass[k]) * rng.normal();  // O
    s.x[k] = x + half * v;                          // A
    s.v[k] = v;
  }
  return compute_forces(target, s);
}

void OpenMMLangevinFlow::Params::validate() const {
  if (!(timestep_fs > 0) || !std::isfinite(timestep_fs)) {
    throw ConfigError("openmm-langevin: timestep_fs is " + std::to_string(timestep_fs) + ", but must be > 0");
  }
  if (!(friction_per_ps >= 0) || !std::isfinite(friction_per_ps)) {
    throw ConfigError("openmm-langevin: friction_per_ps is " + std::to_string(friction_per_ps) + ", but must be >= 0");
  }
}

OpenMMLangevinFlow::OpenMMLangevinFlow(Params params) : params_(params) { params_.validate(); }

std::string minimize_positions(const OpenMMTarget& target, std::vector<double>& x, double dt) {
  const std::size_t atoms = x.size() / 3;
  OpenMMContext c = target.make_context(std::make_unique<OpenMM::VerletIntegrator>(dt));
  std::vector<OpenMM::Vec3> pos(atoms);
  for (std::size_t a = 0; a < atoms; ++a) pos[a] = OpenMM::Vec3(x[3 * a], x[3 * a + 1], x[3 * a + 2]);
  try {
    c.context->setPositions(pos);
    OpenMM::LocalEnergyMinimizer::minimize(*c.context, 10.0);
    const OpenMM::State state = c.context->getState(OpenMM::State::Positions);
    const auto& p = state.getPositions();
    for (std::size_t a = 0; a < atoms; ++a)
      for (int k = 0; k < 3; ++k) x[3 * a + static_cast<std::size_t>(k)] = p[a][k];
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

namespace {

/// End of the segment that starts at `step`: the next monitor point, frame point
/// (from the end of warm-up on) or the end of the run, whichever comes first.
std::size_t segment_end(std::size_t step, const FlowOptions& options) {
  const std::size_t total = options.warmup + options.steps;
  std::size_t next = std::min(total, (step / options.monitor_every + 1) * options.monitor_every);
  if (options.thin > 0 && step >= options.warmup) {
    next = std::min(next, options.warmup + ((step - options.warmup) / options.thin + 1) * options.thin);
  } else if (options.thin > 0) {
    next = std::min(next, options.warmup);
  }
  return next;
}

/// Monitor values over the live trajectories: the mean of u = E/kT and the kinetic
/// temperature 2 KE / (k_B · dof), dof = 3n − 3 per particle (NaN when none is live).
struct LangevinMonitor {
  double mean_energy;
  double kinetic_temperature_K;
};

}  // namespace

/// The trajectories of one run, one per particle: phase-space state, random stream
/// (seed, i), whether it is still running, and why it stopped.
struct OpenMMLangevinFlow::Trajectories {
  std::vector<LangevinState> states;
  std::vector<Rng> rngs;
  std::vector<char> alive;
  std::vector<std::string> failures;
  Trajectories(std::size_t n, std::uint64_t seed) : states(n), alive(n, 1), failures(n) {
    rngs.reserve(n);
    for (std::size_t i = 0; i < n; ++i) rngs.push_back(stream_for(seed, i));
  }
  void stop(std::size_t i, std::string why) {
    alive[i] = 0;
    failures[i] = std::move(why);
  }
  /// Reduced in particle order (fixed, whatever the threads); kT of the target.
  LangevinMonitor monitor(const std::vector<double>& inv_mass, double kT) const {
    const std::size_t d = inv_mass.size();
    double sum = 0.0, kinetic = 0.0;
    std::size_t finite = 0;
    for (std::size_t i = 0; i < states.size(); ++i) {
      if (!alive[i]) continue;
      sum += states[i].energy / kT;
      for (std::size_t k = 0; k < d; ++k)
        if (inv_mass[k] > 0) kinetic += 0.5 * states[i].v[k] * states[i].v[k] / inv_mass[k];
      ++finite;
    }
    constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
    const double mean = finite ? sum / static_cast<double>(finite) : kNaN;
    const double dof = static_cast<double>(d) - 3.0;
    return {mean, finite ? 2.0 * kinetic / (static_cast<double>(finite) * dof * kBoltzmannKJPerMolK) : kNaN};
  }
};

FlowResult OpenMMLangevinFlow::evolve(const Target& target_in, Ensemble& ensemble, const FlowOptions& options) {
  options.validate();
  const auto* target = dynamic_cast<const OpenMMTarget*>(&target_in);
  if (!target) {
    throw ConfigError("openmm-langevin: needs an OpenMM target (potential type openmm), got '" + target_in.name() + "'");
  }
  if (ensemble.dim() != target->dim()) {
    throw DomainError("openmm-langevin: ensemble has dimension " + std::to_string(ensemble.dim()) + ", target " +
                      std::to_string(target->dim()));
  }
  const double dt = options.step_size > 0 ? options.step_size : params_.timestep_fs / 1000.0;
  const std::vector<double> inv_mass = inverse_masses(*target);
  Trajectories tr(ensemble.size(), options.seed);
  start(*target, ensemble, options, dt, inv_mass, tr);
  FlowResult result = integrate(*target, ensemble, options, dt, inv_mass, tr);
  finish(*target, ensemble, options, dt, tr, result);
  return result;
}

void OpenMMLangevinFlow::start(const OpenMMTarget& target, const Ensemble& ensemble, const FlowOptions& options,
                               double dt, const std::vector<double>& inv_mass, Trajectories& tr) const {
  const std::size_t d = target.dim();
  const double bath_kT = target.kT() / options.beta.at(0);
  for_each_index(
      ensemble.size(),
      [&](std::size_t i) {
        LangevinState& s = tr.states[i];
        s.x.assign(ensemble.particle(i), ensemble.particle(i) + d);
        if (params_.minimize) tr.failures[i] = minimize_positions(target, s.x, dt);
        draw_velocities(s, inv_mass, bath_kT, tr.rngs[i]);
        if (!tr.failures[i].empty() || !compute_forces(target, s)) {
          tr.alive[i] = 0;
          if (tr.failures[i].empty()) tr.failures[i] = "non-finite energy or forces at the start";
        }
      },
      options.exec);
}

FlowResult OpenMMLangevinFlow::integrate(const OpenMMTarget& target, Ensemble& ensemble, const FlowOptions& options,
                                         double dt, const std::vector<double>& inv_mass, Trajectories& tr) const {
  const std::size_t n = ensemble.size();
  const double kT_target = target.kT();
  FlowResult result;
  const std::size_t total = options.warmup + options.steps;
  Progress progress("openmm-langevin " + target.name(), total, options.progress);
  std::size_t step = 0;
  double previous_monitor = std::numeric_limits<double>::quiet_NaN();
  while (step < total) {
    const std::size_t first = step, next = segment_end(step, options);
    for_each_index(
        n,
        [&](std::size_t i) {
          if (!tr.alive[i]) return;
          LangevinState& s = tr.states[i];
          for (std::size_t k = first; k < next; ++k) {
            const double bath_kT = kT_target / options.beta.at(k);
            if (!langevin_middle_step(target, s, inv_mass, dt, params_.friction_per_ps, bath_kT, tr.rngs[i])) {
              tr.stop(i, "non-finite energy or forces at step " + std::to_string(k + 1));
              break;
            }
          }
          std::copy(s.x.begin(), s.x.end(), ensemble.particle(i));
        },
        options.exec);
    result.energy_evaluations += n * (next - first);
    step = next;
    result.steps_done = step;
    if (step % options.monitor_every == 0 || step == total) {
      const LangevinMonitor m = tr.monitor(inv_mass, kT_target);
      result.monitor_steps.push_back(static_cast<double>(step));
      result.monitors["mean_energy"].push_back(m.mean_energy);
      result.monitors["kinetic_temperature_K"].push_back(m.kinetic_temperature_K);
      if (options.tolerance > 0 && step > options.warmup && std::isfinite(previous_monitor) &&
          std::abs(m.mean_energy - previous_monitor) < options.tolerance) {
        result.converged = true;
      }
      previous_monitor = m.mean_energy;
      progress.update(step, "mean u " + std::to_string(m.mean_energy));
    }
    if (options.thin > 0 && step > options.warmup && (step - options.warmup) % options.thin == 0 &&
        result.frames.size() < options.max_frames) {
      result.frames.push_back(ensemble.positions);
    }
    if (result.converged) break;
  }
  progress.finish(result.converged ? "converged" : "");
  return result;
}

void OpenMMLangevinFlow::finish(const OpenMMTarget& target, Ensemble& ensemble, const FlowOptions& options, double dt,
                                const Trajectories& tr, FlowResult& result) const {
  // Final energies through the target (its cut/cap options apply).
  const std::size_t n = ensemble.size();
  Eigen::VectorXd u;
  const BatchStats stats = target.evaluate_batch(ensemble.positions, u, nullptr, options.exec);
  result.energy_evaluations += n;
  std::size_t failed = 0;
  nlohmann::json failure_list = nlohmann::json::array();
  for (std::size_t i = 0; i < n; ++i) {
    if (tr.alive[i]) continue;
    u[static_cast<Eigen::Index>(i)] = std::numeric_limits<double>::infinity();
    ++failed;
    if (failure_list.size() < 10) failure_list.push_back({{"particle", i}, {"error", tr.failures[i]}});
  }
  ensemble.reduced_energies = u;
  result.non_finite = std::max(stats.non_finite, failed);
  result.statistics = {{"integrator", "LangevinMiddle (BAOA) with per-particle streams"},
                       {"timestep_ps", dt},
                       {"friction_per_ps", params_.friction_per_ps},
                       {"temperature_K", target.temperature()},
                       {"platform", target.options().platform},
                       {"minimized", params_.minimize},
                       {"failed_particles", failed}};
  if (failed) result.statistics["failures"] = failure_list;
}

std::unique_ptr<Flow> make_openmm_langevin(JsonReader& params) {
  OpenMMLangevinFlow::Params p;
  p.timestep_fs = params.get_double("timestep_fs", p.timestep_fs);
  p.friction_per_ps = params.get_double("friction_per_ps", p.friction_per_ps);
  p.minimize = params.get_bool("minimize", p.minimize);
  try {
    return std::make_unique<OpenMMLangevinFlow>(p);
  } catch (const ConfigError& e) {
    throw ConfigError(params.context() + ": " + e.what());
  }
}

}  // namespace boltzlab
