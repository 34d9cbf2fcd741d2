#include "boltzlab/targets/registry.hpp"

#include <algorithm>
#include <map>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/double_well.hpp"
#include "boltzlab/targets/dw4.hpp"
#include "boltzlab/targets/four_wells.hpp"
#include "boltzlab/targets/funnel.hpp"
#include "boltzlab/targets/gaussian.hpp"
#include "boltzlab/targets/gaussian_mixture.hpp"
#include "boltzlab/targets/lennard_jones.hpp"
#include "boltzlab/targets/manywell.hpp"
#include "boltzlab/targets/muller_brown.hpp"
#include "boltzlab/targets/openmm_target.hpp"
#include "boltzlab/targets/rosenbrock.hpp"

namespace boltzlab {
namespace {

// One line per target type. The factories live next to each target.
const std::map<std::string, TargetFactory>& factories() {
  static const std::map<std::string, TargetFactory> table = {
      {"gaussian", make_gaussian},
      {"gaussian_mixture", make_gaussian_mixture},
      {"manywell", make_manywell},
      {"dw4", make_dw4},
      {"lennard_jones", make_lennard_jones},
      {"double_well", make_double_well},
      {"four_wells", make_four_wells},
      {"muller_brown", make_muller_brown},
      {"funnel", make_funnel},
      {"rosenbrock", make_rosenbrock},
      {"openmm", make_openmm},
  };
  return table;
}

}  // namespace

std::vector<std::string> target_types() {
  std::vector<std::string> out;
  for (const auto& [k, v] : factories()) out.push_back(k);
  return out;
}

std::unique_ptr<Target> make_target(const std::string& type, const Json& parameters,
                                    const std::filesystem::path& dir, const std::string& context) {
  const auto& table = factories();
  auto it = table.find(type);
  if (it == table.end()) {
    std::string msg = context + ".type: unknown target type '" + type + "'";
    const std::string guess = closest_key(type, target_types());
    if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
    throw ConfigError(msg);
  }
  const Json empty = Json::object();
  JsonReader params(parameters.is_null() ? empty : parameters, context + ".parameters");
  auto target = it->second(params, dir);
  params.finish();
  return target;
}

Potential load_potential(const std::filesystem::path& path) {
  Potential p;
  p.path = path;
  p.raw = read_json_file(path);
  JsonReader top(p.raw, path.string());
  p.type = top.get_string("type");
  p.name = top.get_string("name", p.type);
  top.get_string("description", "");
  top.get_int("format_version", 1);
  // Optional sections are known keys even when absent (so typos get a suggestion).
  for (const char* key : {"parameters", "generator", "sampler", "reference", "replica_exchange"}) top.ignore(key);
  const Json params = top.has("parameters") ? top.get_json("parameters") : Json::object();
  if (top.has("generator")) p.generator = top.get_json("generator");
  if (top.has("sampler")) p.sampler = top.get_json("sampler");
  if (top.has("reference")) p.reference = top.get_json("reference");
  if (top.has("replica_exchange")) p.replica_exchange = top.get_json("replica_exchange");
  top.finish();
  p.target = make_target(p.type, params, path.parent_path(), path.string());
  return p;
}

}  // namespace boltzlab
