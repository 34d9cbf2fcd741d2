#include <cmath>

#include "boltzlab/core/error.hpp"
#include "boltzlab/flows/blob.hpp"
#include "boltzlab/flows/flow.hpp"
#include "boltzlab/flows/langevin.hpp"
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
  if (!(start > 0)) throw ConfigError("beta: start is " + std::to_string(start) + ", but must be > 0");
  if (!(end > 0)) throw ConfigError("beta: end is " + std::to_string(end) + ", but must be > 0");
  if (kind != "geometric" && kind != "linear") {
    throw ConfigError("beta: schedule kind is '" + kind + "', but must be 'geometric' or 'linear'");
  }
}

void FlowOptions::validate() const {
  if (!(step_size >= 0) || !std::isfinite(step_size)) {
    throw ConfigError("step_size is " + std::to_string(step_size) + ", but must be > 0");
  }
  if (!(tolerance >= 0)) throw ConfigError("tolerance is " + std::to_string(tolerance) + ", but must be >= 0");
  if (monitor_every == 0) throw ConfigError("monitor_every is 0, but must be >= 1");
  beta.validate();
}

namespace {
// One line per flow.
const std::map<std::string, FlowFactory>& factories() {
  static const std::map<std::string, FlowFactory> table = {
      {"baoab", make_baoab},
      {"blob", make_blob},
      {"mala", make_mala},
      {"mmd", make_mmd},
      {"svgd", make_svgd},
      {"ula", make_ula},
      {"openmm-langevin", make_openmm_langevin},
  };
  return table;
}
}  // namespace

std::vector<std::string> flow_names() {
  std::vector<std::string> out;
  for (const auto& [k, v] : factories()) out.push_back(k);
  return out;
}

std::unique_ptr<Flow> make_flow(const std::string& name, const Json& params, const std::string& context) {
  const auto& table = factories();
  auto it = table.find(name);
  if (it == table.end()) {
    std::string msg = context + ": unknown flow '" + name + "'";
    const std::string guess = closest_key(name, flow_names());
    if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
    std::string all;
    for (const auto& n : flow_names()) all += (all.empty() ? "" : ", ") + n;
    msg += "; available: " + all;
    throw ConfigError(msg);
  }
  const Json empty = Json::object();
  JsonReader reader(params.is_null() ? empty : params, context);
  auto flow = it->second(reader);
  reader.finish();
  return flow;
}

}  // namespace boltzlab
