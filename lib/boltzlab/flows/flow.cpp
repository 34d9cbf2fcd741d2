#include "boltzlab/flows/flow.hpp"

#include <cmath>
#include <limits>

#include "boltzlab/io/config.hpp"

namespace boltzlab {

bool healthy_particle(const Ensemble& ensemble, std::size_t i, const FlowOptions& options) {
  const double u = ensemble.reduced_energies[static_cast<Eigen::Index>(i)];
  if (!std::isfinite(u) || std::fabs(u) > options.exploded_energy) return false;
  const double* x = ensemble.particle(i);
  const double bound = options.exploded_position;
  std::size_t outside = 0;  // counted without an early exit, so that the loop vectorizes
  for (std::size_t k = 0; k < ensemble.dim(); ++k) outside += !(std::fabs(x[k]) <= bound);  // NaN compares false
  return outside == 0;
}

FlowHealth assess_health(const Ensemble& ensemble, const FlowOptions& options) {
  FlowHealth h;
  h.particles = ensemble.size();
  h.exploded_energy = options.exploded_energy;
  h.exploded_position = options.exploded_position;
  for (std::size_t i = 0; i < ensemble.size(); ++i) {
    const double* x = ensemble.particle(i);
    // Counts rather than short-circuit flags, so that the loop vectorizes.
    std::size_t not_finite = 0, beyond = 0;
    for (std::size_t k = 0; k < ensemble.dim(); ++k) {
      not_finite += !(std::fabs(x[k]) <= std::numeric_limits<double>::max());
      beyond += std::fabs(x[k]) > options.exploded_position;
    }
    const bool finite_x = not_finite == 0, beyond_x = beyond > 0;
    const double u = ensemble.reduced_energies[static_cast<Eigen::Index>(i)];
    if (!finite_x) {
      ++h.non_finite_positions;
    } else if (!std::isfinite(u)) {
      ++h.non_finite_energies;
    } else if (beyond_x || std::fabs(u) > options.exploded_energy) {
      ++h.exploded;
    }
  }
  return h;
}

std::string FlowHealth::stuck_rule() const {
  if (stuck_window == 0) return "not assessed: the flow has no acceptance test";
  if (!stuck_assessed) {
    return "not assessed: " + std::to_string(sampling_steps) + " sampling steps, fewer than the window of " +
           std::to_string(stuck_window);
  }
  return "no accepted move in the last " + std::to_string(stuck_window) + " of " + std::to_string(sampling_steps) +
         " sampling steps, or acceptance rate below " + format_number(stuck_acceptance);
}

std::string FlowHealth::problem() const {
  std::string out;
  auto add = [&](std::size_t count, const std::string& what) {
    if (count == 0) return;
    out += (out.empty() ? "" : ", ") + std::to_string(count) + " of " + std::to_string(particles) + " " + what;
  };
  add(non_finite_positions, "particles have non-finite positions");
  add(non_finite_energies, "particles have non-finite energies");
  add(exploded, "particles exploded (|u| > " + format_number(exploded_energy) + " or |x| > " +
                    format_number(exploded_position) + ")");
  add(stuck, "particles are stuck (" + stuck_rule() + ")");
  return out;
}

nlohmann::json FlowHealth::to_json() const {
  return {{"particles", particles},
          {"healthy", healthy()},
          {"non_finite_positions", non_finite_positions},
          {"non_finite_energies", non_finite_energies},
          {"exploded", exploded},
          {"exploded_energy_bound", exploded_energy},
          {"exploded_position_bound", exploded_position},
          {"stuck", stuck_assessed ? nlohmann::json(stuck) : nlohmann::json(nullptr)},
          {"stuck_rule", stuck_rule()}};
}

FlowResult Flow::run(const Target& target, Ensemble& ensemble, const FlowOptions& options) {
  FlowResult result = evolve(target, ensemble, options);
  FlowHealth health = assess_health(ensemble, options);
  // The flow's own verdict on stuck chains is kept.
  health.stuck_assessed = result.health.stuck_assessed;
  health.stuck = result.health.stuck;
  health.stuck_window = result.health.stuck_window;
  health.stuck_acceptance = result.health.stuck_acceptance;
  health.sampling_steps = result.health.sampling_steps;
  result.health = health;
  return result;
}

}  // namespace boltzlab
