#include "boltzlab/app/bg_config.hpp"

#include <algorithm>

#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/generators/base_registry.hpp"
#include "boltzlab/generators/symmetrize.hpp"

namespace fs = std::filesystem;

namespace boltzlab::generators {
namespace {

Eigen::VectorXd read_vector_or_scalar(JsonReader& r, const std::string& key, int dim) {
  const Json& v = r.get_json(key);
  Eigen::VectorXd out(dim);
  if (v.is_number()) {
    out.setConstant(v.get<double>());
  } else if (v.is_array() && static_cast<int>(v.size()) == dim) {
    for (int k = 0; k < dim; ++k) {
      if (!v[k].is_number()) r.fail(key, "entries must be numbers");
      out[k] = v[k].get<double>();
    }
  } else {
    r.fail(key, "must be a number or an array of length " + std::to_string(dim));
  }
  return out;
}

}  // namespace

GeneratorOptions read_model_options(JsonReader& r, const Target& target) {
  GeneratorOptions m;
  m.potential.dim = static_cast<int>(target.dim());
  // Molecules train in internal coordinates (bg_molecular), not as a particle system.
  if (target.topology() == nullptr) {
    const auto [np, sd] = target.particle_layout();
    m.potential.n_particles = static_cast<int>(np);
    m.potential.spatial_dim = static_cast<int>(sd);
  }
  m.potential.width = static_cast<int>(r.get_int("width", 32));
  m.potential.layers = static_cast<int>(r.get_int("layers", 2));
  m.potential.rank = static_cast<int>(r.get_int("rank", -1));
  m.potential.network = r.get_bool("network", true);
  m.potential.pair_basis = static_cast<int>(r.get_int("pair_basis", 0));
  m.potential.pair_time_basis = static_cast<int>(r.get_int("pair_time_basis", 4));
  m.potential.pair_range = r.get_double("pair_range", 4.0);
  m.potential.pair_channels = static_cast<int>(r.get_int("pair_channels", 0));
  m.time = r.get_double("time", 1.0);
  m.steps = static_cast<int>(r.get_int("steps", 8));
  m.sample_steps = static_cast<int>(r.get_int("sample_steps", m.steps));
  m.noise = r.get_double("noise", 0.0);
  read_velocity_options(r, m);
  read_flow_options(r, m);
  m.whitened = r.get_bool("flow_whitening", false);
  if (m.whitened && target.topology() == nullptr)
    r.fail("flow_whitening", "needs a molecular target (the whitening is that of a conditional_gaussian base)");
  if (m.condition_soft && target.topology() == nullptr)
    r.fail("coupling_condition_soft", "needs a molecular target (the soft torsions are those of a conditional_gaussian base)");
  return m;
}

void read_data_options(JsonReader& r, const Potential& pot, const BgSampleOptions& flags, GeneratorConfig& c) {
  const Target& target = *pot.target;
  const int dim = static_cast<int>(target.dim());
  if (r.has("data")) c.data = pot.path.parent_path() / r.get_string("data");
  if (r.has("z_matrix")) c.z_matrix = pot.path.parent_path() / r.get_string("z_matrix");
  if (r.has("reference_dihedrals")) {
    c.reference_dihedrals = pot.path.parent_path() / r.get_string("reference_dihedrals");
    c.reference_field = pot.path.string() + ": generator.reference_dihedrals";
  }
  if (!flags.reference.empty()) {
    c.reference_dihedrals = flags.reference;
    c.reference_field = "--reference";
  }
  if (!c.reference_dihedrals.empty() && target.topology() == nullptr)
    throw ConfigError(c.reference_field + ": reference dihedrals need a molecular target (with a topology)");
  if (r.has("scale")) c.scale = read_vector_or_scalar(r, "scale", dim);
  if (r.has("shift")) c.shift = read_vector_or_scalar(r, "shift", dim);
  c.samples = r.get_int("samples", 100000);
}

bool read_symmetrize(JsonReader& r, const Target& target, bool smc) {
  if (!r.get_bool("symmetrize", false)) return false;
  const auto [n, s] = target.particle_layout();
  if (n == 0)
    r.fail("symmetrize", "averages over particle permutations, but target '" + target.name() +
                             "' is not a particle system");
  if (smc) r.fail("symmetrize", "and smc cannot be combined (the SMC stage moves the model's own draws)");
  try {
    ParticleSymmetry(static_cast<int>(n), static_cast<int>(s), true);
  } catch (const ConfigError& e) {
    r.fail("symmetrize", e.what());
  }
  return true;
}

BaseOptions read_base(JsonReader& r, const Target& target) {
  BaseTarget t;
  t.molecular = target.topology() != nullptr;
  t.particle_system = target.particle_layout().first > 0;
  return read_base_options(r, t);
}

MolecularDefaults read_md_defaults(JsonReader& r) {
  MolecularDefaults md;
  md.source = r.get_string("data_source", md.source);
  if (md.source != "replica_exchange" && md.source != "md")
    r.fail("data_source", "is \"" + md.source + "\", but must be \"replica_exchange\" or \"md\"");
  if (r.has("replica_exchange")) {
    md.replica_exchange = r.get_json("replica_exchange");
    if (!md.replica_exchange.is_object()) r.fail("replica_exchange", "must be an object of replica-exchange settings");
  }
  md.equilibration_ps = r.get_double("md_equilibration_ps", md.equilibration_ps);
  md.production_ps = r.get_double("md_production_ps", md.production_ps);
  md.frame_interval_ps = r.get_double("md_frame_interval_ps", md.frame_interval_ps);
  return md;
}

AnnealingOptions read_annealing(JsonReader& r, const Target& target, bool have_data) {
  AnnealingOptions a;
  if (!r.has("annealing")) return a;
  const Json& section = r.get_json("annealing");
  if (!section.is_object()) r.fail("annealing", "must be an object of annealing settings");
  if (have_data)
    r.fail("annealing", "trains from the energy alone (reverse KL at t_high, then reweighted draws of the model), "
                        "but data were given (--data or generator.data)");
  if (target.topology() != nullptr)
    r.fail("annealing", "is implemented for targets without a topology (the flow in the target's coordinates), "
                        "not for the molecular generator");
  JsonReader ar(section, r.context_of("annealing"));
  a.read(ar);
  return a;
}

FabOptions read_fab(JsonReader& r, const Target& target, bool have_data, bool annealing_enabled) {
  FabOptions f;
  if (!r.has("fab")) return f;
  const Json& section = r.get_json("fab");
  if (!section.is_object()) r.fail("fab", "must be an object of FAB settings");
  if (have_data)
    r.fail("fab", "trains from the energy alone (AIS toward p^2/q, then reweighted forward KL), "
                  "but data were given (--data or generator.data)");
  if (target.topology() != nullptr)
    r.fail("fab", "is implemented for targets without a topology (the flow in the target's coordinates), "
                  "not for the molecular generator");
  if (annealing_enabled) r.fail("fab", "and \"annealing\" are two trainings; give one of them");
  JsonReader fr(section, r.context_of("fab"));
  f.read(fr);
  return f;
}

RefinementOptions read_refinement(JsonReader& r, bool annealing_enabled) {
  RefinementOptions f;
  if (!r.has("refinement")) return f;
  const Json& section = r.get_json("refinement");
  if (!section.is_object()) r.fail("refinement", "must be an object of refinement settings");
  if (annealing_enabled)
    r.fail("refinement", "and \"annealing\" both refine at tau 1; give annealing.refine_rungs instead");
  JsonReader fr(section, r.context_of("refinement"));
  f.read(fr);
  return f;
}

fs::path bg_checkpoint_path(const fs::path& out) { return checkpoint_path(out, ".checkpoint.pt"); }

std::optional<PotentialIdentity> saved_model_potential(const Potential& pot, const nlohmann::json& summary) {
  const auto record = summary.find("model_record");
  if (record == summary.end()) return potential_identity(pot);
  return ModelFileRecord::from_json(*record, "model_record").potential;
}

void apply_training_flags(TrainOptions& train, const BgSampleOptions& flags) {
  train.seed = flags.seed;
  train.progress = flags.progress;
  train.checkpoint = bg_checkpoint_path(flags.out);
  if (train.checkpoint_every == 0) train.checkpoint_every = std::max(1, train.iterations / 10);
  train.resume = flags.resume;
}

}  // namespace boltzlab::generators
