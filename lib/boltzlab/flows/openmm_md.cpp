#include "boltzlab/flows/openmm_md.hpp"

#include <cmath>
#include <limits>
#include <sstream>

#include <OpenMM.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/seed.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/progress.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/timing.hpp"

namespace boltzlab {
namespace {

// Degrees of freedom for the kinetic temperature: 3n − constraints − 3 when the
// System removes centre-of-mass motion.
double degrees_of_freedom(const OpenMM::System& system) {
  double dof = 3.0 * system.getNumParticles() - system.getNumConstraints();
  for (int i = 0; i < system.getNumForces(); ++i) {
    if (dynamic_cast<const OpenMM::CMMotionRemover*>(&system.getForce(i))) {
      dof -= 3.0;
      break;
    }
  }
  return dof;
}

std::vector<OpenMM::Vec3> to_vec3(const double* x, std::size_t atoms) {
  std::vector<OpenMM::Vec3> v(atoms);
  for (std::size_t a = 0; a < atoms; ++a) v[a] = OpenMM::Vec3(x[3 * a], x[3 * a + 1], x[3 * a + 2]);
  return v;
}

}  // namespace

void LangevinMdOptions::validate() const {
  auto positive = [](double v, const std::string& name, const std::string& unit) {
    if (!(v > 0) || !std::isfinite(v)) {
      throw ConfigError(name + ": is " + format_number(v) + unit + ", but must be > 0");
    }
  };
  positive(timestep_fs, "timestep_fs", " fs");
  positive(friction_per_ps, "friction_per_ps", " /ps");
  positive(frame_interval_ps, "frame_interval_ps", " ps");
  positive(minimize_tolerance, "minimize_tolerance", " kJ/mol/nm");
  if (!(temperature >= 0) || !std::isfinite(temperature)) {
    throw ConfigError("temperature: is " + format_number(temperature) +
                      " K, but must be > 0 (or 0 for the target's)");
  }
  if (!(equilibration_ps >= 0) || !std::isfinite(equilibration_ps)) {
    throw ConfigError("equilibration_ps: is " + format_number(equilibration_ps) + " ps, but must be >= 0");
  }
  if (!(production_ps > 0) || !std::isfinite(production_ps)) {
    throw ConfigError("production_ns: is " + format_number(production_ps / 1000.0) + " ns, but must be > 0");
  }
  const double ratio = frame_interval_ps * 1000.0 / timestep_fs;
  if (std::abs(ratio - std::round(ratio)) > 1e-6 * ratio || std::round(ratio) < 1) {
    throw ConfigError("frame_interval_ps: " + format_number(frame_interval_ps) + " ps is not a whole number of " +
                      format_number(timestep_fs) + " fs steps");
  }
  if (production_ps < frame_interval_ps) {
    throw ConfigError("production_ns: " + format_number(production_ps / 1000.0) + " ns is shorter than one frame interval (" +
                      format_number(frame_interval_ps) + " ps)");
  }
}

std::size_t LangevinMdOptions::steps_for(double ps) const {
  return static_cast<std::size_t>(std::llround(ps * 1000.0 / timestep_fs));
}

LangevinMdOptions md_options_from_json(const Json& protocol, const std::string& context, LangevinMdOptions o) {
  if (protocol.is_null()) return o;
  if (!protocol.is_object()) throw ConfigError(context + ": expected an object, got " + protocol.dump());
  JsonReader r(protocol, context);
  o.timestep_fs = r.get_double("timestep_fs", o.timestep_fs);
  o.friction_per_ps = r.get_double("friction_per_ps", o.friction_per_ps);
  if (r.has("temperature")) {
    // 0 stands for "the target's temperature" inside; a file must give a real one.
    o.temperature = r.get_double("temperature");
    if (!(o.temperature > 0)) r.fail("temperature", "is " + format_number(o.temperature) + " K, but must be > 0");
  }
  o.minimize = r.get_bool("minimize", o.minimize);
  o.minimize_tolerance = r.get_double("minimize_tolerance", o.minimize_tolerance);
  o.equilibration_ps = r.get_double("equilibration_ps", o.equilibration_ps);
  o.production_ps = 1000.0 * r.get_double("production_ns", o.production_ps / 1000.0);
  o.frame_interval_ps = r.get_double("frame_interval_ps", o.frame_interval_ps);
  o.seed = read_seed(r, "seed", o.seed);
  r.finish();
  try {
    o.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(context + "." + e.what());
  }
  return o;
}

OpenMMContext make_langevin_context(const OpenMMTarget& target, const double* positions, double temperature,
                                    double friction_per_ps, double timestep_ps, std::uint64_t seed, std::uint64_t stream) {
  Rng rng(seed, stream);
  // OpenMM seeds are ints and 0 means "pick one at random": map to [1, 2^31 − 1].
  auto draw_seed = [&] { return static_cast<int>(1 + rng() % 2147483646ULL); };
  auto integrator = std::make_unique<OpenMM::LangevinMiddleIntegrator>(temperature, friction_per_ps, timestep_ps);
  integrator->setRandomNumberSeed(draw_seed());
  OpenMMContext c = target.make_context(std::move(integrator));
  c.context->setPositions(to_vec3(positions, target.dim() / 3));
  c.context->setVelocitiesToTemperature(temperature, draw_seed());
  return c;
}

LangevinMdResult run_langevin_md(const OpenMMTarget& target, const std::vector<double>& start,
                                 const LangevinMdOptions& o, std::size_t replica) {
  o.validate();
  if (start.size() != target.dim()) {
    throw DomainError("md: start configuration has " + std::to_string(start.size()) + " coordinates, but " + target.name() +
                      " has " + std::to_string(target.dim()));
  }
  const std::size_t atoms = target.dim() / 3;
  const double temperature = o.temperature > 0 ? o.temperature : target.temperature();
  LangevinMdResult r;
  r.start_energy = target.potential_energy(start.data(), nullptr);
  OpenMMContext c = make_langevin_context(target, start.data(), temperature, o.friction_per_ps, o.timestep_fs / 1000.0,
                                          o.seed, replica);
  if (o.minimize) {
    OpenMM::LocalEnergyMinimizer::minimize(*c.context, o.minimize_tolerance);
    // Fresh Maxwell–Boltzmann velocities at the minimum.
    c.context->setVelocitiesToTemperature(temperature, static_cast<int>(1 + Rng(o.seed, replica + 0x9E37)() % 2147483646ULL));
  }
  r.minimized_energy = c.context->getState(OpenMM::State::Energy).getPotentialEnergy();

  const std::size_t per_frame = o.steps_per_frame();
  const std::size_t frames = o.steps_for(o.production_ps) / per_frame;
  r.equilibration_steps = o.steps_for(o.equilibration_ps);
  r.frames.resize(static_cast<Eigen::Index>(frames), static_cast<Eigen::Index>(target.dim()));
  r.potential_energies.resize(static_cast<Eigen::Index>(frames));
  r.kinetic_temperatures.resize(static_cast<Eigen::Index>(frames));
  const double dof = degrees_of_freedom(target.system());
  const std::size_t total = r.equilibration_steps + frames * per_frame;
  Progress progress("md " + target.name() + (replica ? " replica " + std::to_string(replica) : ""), total, o.progress);
  const double t0 = wall_seconds();
  std::size_t recorded = 0;
  double temperature_sum = 0.0;
  try {
    // Equilibrate in chunks so progress can be reported.
    const std::size_t chunk = std::max<std::size_t>(per_frame, 1000);
    for (std::size_t done = 0; done < r.equilibration_steps;) {
      const std::size_t n = std::min(chunk, r.equilibration_steps - done);
      c.integrator->step(static_cast<int>(n));
      done += n;
      progress.update(done, "equilibration");
    }
    for (std::size_t f = 0; f < frames; ++f) {
      c.integrator->step(static_cast<int>(per_frame));
      const OpenMM::State s = c.context->getState(OpenMM::State::Positions | OpenMM::State::Energy);
      const auto& pos = s.getPositions();
      for (std::size_t a = 0; a < atoms; ++a)
        for (int k = 0; k < 3; ++k) r.frames(static_cast<Eigen::Index>(f), static_cast<Eigen::Index>(3 * a + k)) = pos[a][k];
      r.potential_energies[static_cast<Eigen::Index>(f)] = s.getPotentialEnergy();
      r.kinetic_temperatures[static_cast<Eigen::Index>(f)] = 2.0 * s.getKineticEnergy() / (dof * kBoltzmannKJPerMolK);
      temperature_sum += r.kinetic_temperatures[static_cast<Eigen::Index>(f)];
      ++recorded;
      r.production_steps += per_frame;
      if (f % 100 == 0 || f + 1 == frames) {
        std::ostringstream st;
        st << "production frame " << f + 1 << "/" << frames << ", E = " << s.getPotentialEnergy() << " kJ/mol";
        progress.update(r.equilibration_steps + r.production_steps, st.str());
      }
    }
  } catch (const std::exception& e) {
    r.failed = true;
    r.failure = e.what();
  }
  progress.finish(r.failed ? "failed: " + r.failure : "done");
  r.wall_seconds = wall_seconds() - t0;
  if (recorded < frames) {
    r.frames.conservativeResize(static_cast<Eigen::Index>(recorded), r.frames.cols());
    r.potential_energies.conservativeResize(static_cast<Eigen::Index>(recorded));
    r.kinetic_temperatures.conservativeResize(static_cast<Eigen::Index>(recorded));
  }
  r.mean_kinetic_temperature = recorded ? temperature_sum / static_cast<double>(recorded) : 0.0;
  return r;
}

}  // namespace boltzlab
