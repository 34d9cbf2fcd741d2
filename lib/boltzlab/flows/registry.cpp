#include <algorithm>
#include <cmath>

#include "boltzlab/core/error.hpp"
#include "boltzlab/flows/blob.hpp"
#include "boltzlab/flows/flow.hpp"
#include "boltzlab/flows/langevin.hpp"
#include "boltzlab/flows/mala_precond.hpp"
#include "boltzlab/flows/openmm_langevin.hpp"
#include "boltzlab/flows/mmd.hpp"
#include "boltzlab/flows/svgd.hpp"

namespace boltzlab {

double BetaSchedule::at(std::size_t step) const {
  if (steps == 0 || step >= steps) return end;
  const double s = static_cast<double>(step) / static_cast<double>(steps);
  if (kind == "linear") return start + (end - start) * s;
  return start * std::pow(end / start, s);
}

void BetaSchedule::validate() const {
  if (!(start > 0) || !std::isfinite(start)) throw ConfigError("beta: start is " + format_number(start) + ", but must be > 0");
  if (!(end > 0) || !std::isfinite(end)) throw ConfigError("beta: end is " + format_number(end) + ", but must be > 0");
  if (kind != "geometric" && kind != "linear") {
    throw ConfigError("beta: schedule kind is '" + kind + "', but must be 'geometric' or 'linear'");
  }
}

void FlowOptions::validate() const {
  if (!(step_size >= 0) || !std::isfinite(step_size)) {
    throw ConfigError("step_size is " + format_number(step_size) + ", but must be > 0");
  }
  if (!(tolerance >= 0) || !std::isfinite(tolerance)) {
    throw ConfigError("tolerance is " + format_number(tolerance) + ", but must be >= 0");
  }
  if (monitor_every == 0) throw ConfigError("monitor_every is 0, but must be >= 1");
  if (!(exploded_energy > 0)) {
    throw ConfigError("exploded_energy is " + format_number(exploded_energy) + ", but must be > 0");
  }
  if (!(exploded_position > 0)) {
    throw ConfigError("exploded_position is " + format_number(exploded_position) + ", but must be > 0");
  }
  beta.validate();
}

namespace {

// One row per flow: name, factory, whether its particles interact, one line for --help.
std::vector<FlowInfo> make_table() {
  std::vector<FlowInfo> table = {
      {"baoab", make_baoab, false, "underdamped Langevin, BAOAB splitting; O(h^2) bias; params friction, mass"},
      {"blob", make_blob, true, "blob-method KL gradient flow, deterministic; O(epsilon) bias; params epsilon"},
      {"mala", make_mala, false,
       "Metropolis-adjusted Langevin, exact; per-particle step sizes adapted in warm-up; params target_acceptance"},
      {"mala-precond", make_mala_precond, false,
       "MALA with a diagonal preconditioner estimated from the ensemble in warm-up, then frozen; exact"},
      {"mmd", make_mmd, true,
       "MMD gradient flow toward target samples, noise injection; params target_samples, bandwidth, noise_level"},
      {"openmm-langevin", make_openmm_langevin, false,
       "OpenMM LangevinMiddle dynamics (OpenMM potentials only); params timestep_fs, friction_per_ps"},
      {"svgd", make_svgd, true, "Stein variational gradient descent, deterministic; params bandwidth, adaptive"},
      {"ula", make_ula, false, "unadjusted (overdamped) Langevin; O(tau) bias; no params"},
  };
  std::sort(table.begin(), table.end(), [](const FlowInfo& a, const FlowInfo& b) { return a.name < b.name; });
  return table;
}

}  // namespace

const std::vector<FlowInfo>& flow_table() {
  static const std::vector<FlowInfo> table = make_table();
  return table;
}

std::vector<std::string> flow_names() {
  std::vector<std::string> out;
  for (const FlowInfo& row : flow_table()) out.push_back(row.name);
  return out;
}

const FlowInfo& flow_info(const std::string& name, const std::string& context) {
  for (const FlowInfo& row : flow_table()) {
    if (row.name == name) return row;
  }
  std::string msg = context + ": unknown flow '" + name + "'";
  const std::vector<std::string> names = flow_names();
  const std::string guess = closest_key(name, names);
  if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
  std::string all;
  for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
  msg += "; available: " + all;
  throw ConfigError(msg);
}

std::unique_ptr<Flow> make_flow(const std::string& name, const Json& params, const std::string& context) {
  const FlowInfo& row = flow_info(name, context);
  const Json empty = Json::object();
  JsonReader reader(params.is_null() ? empty : params, context);
  auto flow = row.factory(reader);
  reader.finish();
  return flow;
}

}  // namespace boltzlab
