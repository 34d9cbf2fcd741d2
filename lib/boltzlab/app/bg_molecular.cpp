#include "boltzlab/app/bg_molecular.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "boltzlab/app/bg_outputs.hpp"
#include "boltzlab/app/console.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/estimators/conformations.hpp"
#include "boltzlab/estimators/ramachandran_compare.hpp"
#include "boltzlab/flows/openmm_md.hpp"
#include "boltzlab/flows/replica_exchange.hpp"
#include "boltzlab/generators/base_registry.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/molecules/dihedrals.hpp"
#include "boltzlab/molecules/molecular_graph.hpp"
#include "boltzlab/molecules/zmatrix_builder.hpp"
#include "boltzlab/targets/openmm_target.hpp"

namespace boltzlab::generators {

void check_atom_names(const ZMatrix& z, const Topology& topology, const std::string& context) {
  if (static_cast<std::size_t>(z.n_atoms) != topology.atoms())
    throw ConfigError(context + ": the Z-matrix has " + std::to_string(z.n_atoms) + " atoms, the molecule " +
                      std::to_string(topology.atoms()));
  for (std::size_t a = 0; a < z.atom_names.size(); ++a) {
    if (z.atom_names[a] != topology.atom_names[a])
      throw ConfigError(context + ": atom " + std::to_string(a) + " is " + z.atom_names[a] + " in the Z-matrix but " +
                        topology.atom_names[a] + " in the structure file");
  }
}

MolecularSystem molecular_system(const Potential& pot, const GeneratorConfig& cfg) {
  const auto* omm = dynamic_cast<const OpenMMTarget*>(pot.target.get());
  if (omm == nullptr) throw ConfigError(pot.path.string() + ": internal coordinates need an OpenMM target");
  const std::string context = pot.path.string() + ": generator";
  const molecules::MolecularGraph graph = molecules::molecular_graph(*omm, context);
  ZMatrix z = cfg.z_matrix.empty() ? molecules::build_zmatrix(graph, omm->initial_positions(), context)
                                   : molecules::zmatrix_from_json(read_json_file(cfg.z_matrix), cfg.z_matrix.string());
  check_atom_names(z, graph.topology, cfg.z_matrix.empty() ? context : cfg.z_matrix.string());
  MolecularSystem s{InternalCoordinates(std::move(z), context), {}, {}};
  for (const auto& d : backbone_dihedrals(graph.topology)) {
    const auto& a = d.atoms;
    const auto column = s.coordinates.find_torsion(static_cast<std::int64_t>(a[0]), static_cast<std::int64_t>(a[1]),
                                                   static_cast<std::int64_t>(a[2]), static_cast<std::int64_t>(a[3]));
    if (column < 0) continue;  // a user Z-matrix without this torsion: not in the joint group
    s.joint.push_back(column);
    s.joint_names.push_back(d.name);
  }
  return s;
}

namespace {

/// Frames at the lowest temperature of a replica-exchange run (cfg.md.source "replica_exchange").
TrainingFrames replica_exchange_frames(const BgSampleOptions& o, const Potential& pot, const OpenMMTarget& omm,
                                       const MolecularDefaults& md, nlohmann::json& notes) {
  Json merged = pot.replica_exchange.is_object() ? pot.replica_exchange : Json::object();
  for (const auto& [key, value] : md.replica_exchange.items()) merged[key] = value;
  const std::string context = pot.path.string() + ": generator.replica_exchange";
  if (!merged.contains("temperatures") && !merged.contains("t_max"))
    throw ConfigError(context + ": no temperature ladder (\"temperatures\", or \"t_max\" with \"replicas\"), here or in "
                      "the potential's \"replica_exchange\" section");
  ReplicaExchangeOptions base;
  base.temperatures = {omm.temperature()};
  base.seed = o.seed;
  ReplicaExchangeOptions rex = replica_exchange_options_from_json(merged, context, base);
  rex.progress = o.progress;
  const ReplicaExchangeResult r = run_replica_exchange(omm, omm.initial_positions(), rex);
  if (r.failed) throw BackendError(pot.path.string() + ": replica exchange for the training data failed: " + r.failure);
  TrainingFrames out;
  out.frames = r.frames[0];
  out.info = {{"source", "replica_exchange"},
              {"frames", out.frames.rows()},
              {"temperature", r.temperatures[0]},
              {"replica_exchange", rex.to_json()},
              {"neighbor_acceptance", r.neighbor_acceptance()},
              {"round_trips", r.round_trips},
              {"md_steps", r.md_steps * r.temperatures.size()},
              {"md_wall_seconds", r.wall_seconds}};
  notes.push_back("training data: " + std::to_string(out.frames.rows()) + " frames at " +
                  format_number(r.temperatures[0]) + " K of a replica-exchange run made here (" +
                  std::to_string(r.temperatures.size()) + " replicas up to " + format_number(r.temperatures.back()) +
                  " K, " + format_number(rex.production_ps) + " ps each)");
  return out;
}

/// Frames of one Langevin MD trajectory (cfg.md.source "md").
TrainingFrames md_frames(const BgSampleOptions& o, const Potential& pot, const OpenMMTarget& omm,
                         const MolecularDefaults& md, nlohmann::json& notes) {
  LangevinMdOptions mdo;
  mdo.equilibration_ps = md.equilibration_ps;
  mdo.production_ps = md.production_ps;
  mdo.frame_interval_ps = md.frame_interval_ps;
  mdo.progress = o.progress;
  mdo.seed = o.seed;
  mdo.validate();
  const LangevinMdResult r = run_langevin_md(omm, omm.initial_positions(), mdo);
  if (r.failed) throw BackendError(pot.path.string() + ": MD for the training data failed: " + r.failure);
  TrainingFrames out;
  out.frames = r.frames;
  out.info = {{"source", "langevin_md"}, {"frames", out.frames.rows()},
              {"equilibration_ps", md.equilibration_ps}, {"production_ps", md.production_ps},
              {"frame_interval_ps", md.frame_interval_ps}, {"md_wall_seconds", r.wall_seconds},
              {"md_steps", r.equilibration_steps + r.production_steps}};
  notes.push_back("training data: " + std::to_string(out.frames.rows()) + " frames of a Langevin MD run made here (" +
                  std::to_string(md.production_ps) + " ps, frames " + std::to_string(md.frame_interval_ps) +
                  " ps apart)");
  return out;
}

}  // namespace

TrainingFrames obtain_training_frames(const BgSampleOptions& o, const Potential& pot, const GeneratorConfig& cfg,
                                      nlohmann::json& notes) {
  const Target& target = *pot.target;
  TrainingFrames out;
  if (!cfg.data.empty()) {
    out.frames = read_npy_matrix(cfg.data, target.dim());
    out.info = {{"source", cfg.data.string()}, {"frames", out.frames.rows()}};
  } else {
    const auto* omm = dynamic_cast<const OpenMMTarget*>(&target);
    if (omm == nullptr) throw ConfigError(pot.path.string() + ": no data for a molecular target");
    out = cfg.md.source == "md" ? md_frames(o, pot, *omm, cfg.md, notes)
                                : replica_exchange_frames(o, pot, *omm, cfg.md, notes);
  }
  // Basin populations of the data (batch means: MD and replica-exchange frames are a correlated series).
  if (target.topology() != nullptr && out.frames.rows() >= 40) {
    try {
      out.info["conformations"] = conformation_populations(*target.topology(), out.frames, nullptr).to_json();
    } catch (const DomainError&) {
      // no φ/ψ pair or no finite angle: nothing to report
    }
  }
  return out;
}

namespace {

/// The base of cfg.base fitted to the flow coordinates y (timed in *seconds; progress line for
/// fits to data).
std::optional<BaseDensity> fit_molecular_base(const BgSampleOptions& o, const Potential& pot,
                                              const BaseOptions& options, const MolecularSystem& system,
                                              const torch::Tensor& y, const MolecularFlowSpace& space,
                                              double* seconds) {
  const BaseKindSpec& spec = base_kind_spec(kind_of(options));
  const auto* conditional = std::get_if<ConditionalBaseOptions>(&options);
  if (o.progress && spec.needs_data)
    std::fprintf(stderr, "bg-sample: fitting the %s base to %lld frames%s\n", spec.name,
                 static_cast<long long>(y.size(0)), conditional && conditional->experts ? " (experts, EM)" : "");
  const double t_fit = wall_seconds();
  std::optional<BaseDensity> base;
  try {
    // The EM fits have no step count to report; a line every 10 s shows the fit is alive.
    const ElapsedTicker ticker(std::string("bg-sample: ") + spec.name + " base fit", o.progress && spec.needs_data);
    base = fit_base(options, BaseFitData{y, space.torsion_mask(), system.joint});
  } catch (const DomainError& e) {  // e.g. a hard torsion too wide for these data: name the setting
    throw ConfigError(pot.path.string() + ": generator.base \"" + spec.name + "\": " + e.what());
  }
  *seconds = wall_seconds() - t_fit;
  return base;
}

/// The pooled (one-expert) conditional Gaussian of the base's soft and joint columns fitted to y:
/// the whitening of a whitened flow (BoltzmannGenerator::set_whitening).
ConditionalGaussian fit_whitening(const Potential& pot, const std::optional<BaseDensity>& base, const torch::Tensor& y,
                                  const MolecularFlowSpace& space) {
  const ConditionalGaussian* block = base ? base->conditional() : nullptr;
  if (block == nullptr)
    throw ConfigError(pot.path.string() + ": generator.flow_whitening needs \"base\": \"conditional_gaussian\"");
  return ConditionalGaussian::fit(y, space.torsion_mask(), block->soft(), block->joint(), block->harmonics(), 1);
}

/// The soft torsions of a conditional-Gaussian base (its soft and joint columns, sorted): the
/// columns a coupling flow with coupling_condition_soft conditions on and leaves as they are.
std::vector<int> soft_columns(const Potential& pot, const std::optional<BaseDensity>& base) {
  const ConditionalGaussian* block = base ? base->conditional() : nullptr;
  if (block == nullptr)
    throw ConfigError(pot.path.string() + ": generator.coupling_condition_soft needs \"base\": \"conditional_gaussian\"");
  std::vector<int> cols;
  for (const auto c : block->soft()) cols.push_back(static_cast<int>(c));
  for (const auto c : block->joint()) cols.push_back(static_cast<int>(c));
  std::sort(cols.begin(), cols.end());
  cols.erase(std::unique(cols.begin(), cols.end()), cols.end());
  return cols;
}

}  // namespace

MolecularModel fit_molecular_model(const BgSampleOptions& o, const Potential& pot, const GeneratorConfig& cfg,
                                   const MolecularSystem& system, const RowMatrix& frames) {
  MolecularModel m;
  const torch::Tensor cart = to_tensor(frames);
  m.space.emplace(MolecularFlowSpace::fit(system.coordinates, cart));
  m.y_data = m.space->to_flow(cart).first;
  const std::optional<BaseDensity> base =
      fit_molecular_base(o, pot, cfg.base, system, m.y_data, *m.space, &m.base_fit_seconds);
  std::optional<ConditionalGaussian> whitening;
  if (cfg.model.whitened) whitening.emplace(fit_whitening(pot, base, m.y_data, *m.space));
  GeneratorOptions mo = cfg.model;
  mo.potential.dim = static_cast<int>(m.space->dim());
  mo.potential.n_particles = 0;
  mo.potential.spatial_dim = 0;
  mo.potential.periodic.clear();
  // The flow's periodic columns: every torsion, but those the whitening turns into residuals.
  for (const auto c : m.space->coordinates().torsion_indices())
    if (!whitening || std::find(whitening->hard().begin(), whitening->hard().end(), c) == whitening->hard().end())
      mo.potential.periodic.push_back(static_cast<int>(c));
  if (mo.condition_soft) mo.coupling.condition_only = soft_columns(pot, base);
  m.model.emplace(mo, o.seed);
  if (whitening) m.model->set_whitening(*whitening);
  if (base) m.model->set_base(*base);
  return m;
}

namespace {

/// y → Cartesian with the log-Jacobian; rows outside the domain or of the wrong chirality invalid.
FlowSpaceMap molecular_map(const MolecularFlowSpace& space) {
  FlowSpaceMap map;
  map.map = [sp = &space](const torch::Tensor& y) {
    const auto d = sp->from_flow(y);
    return FlowSpaceImage{d.cartesian, d.logdet, d.valid & d.chirality_ok};
  };
  return map;
}

}  // namespace

TrainHistory refine_molecular_model(const BgSampleOptions& o, const Target& target, GeneratorConfig& cfg,
                                    MolecularModel& m, nlohmann::json& record, const TrainHistory& before) {
  apply_training_flags(cfg.train, o);
  const FlowSpaceMap map = molecular_map(*m.space);
  const RefinementHistory refined = refine_trained(*m.model, target, cfg.train, cfg.refinement, &map);
  record = {{"options", cfg.refinement.to_json()}, {"result", refined.to_json()}};
  return refined.combined(before);
}

TrainHistory train_molecular_model(const BgSampleOptions& o, const Target& target, GeneratorConfig& cfg,
                                   MolecularModel& m, nlohmann::json* refinement_record) {
  const RowMatrix y_rows = to_matrix(m.y_data);
  apply_training_flags(cfg.train, o);
  const FlowSpaceMap map = molecular_map(*m.space);
  TrainHistory h = train(*m.model, target, &y_rows, cfg.train, &map);
  if (!cfg.refinement.enabled || h.iterations_done < cfg.train.iterations) return h;  // stopped early: resumable
  nlohmann::json record;
  h = refine_molecular_model(o, target, cfg, m, record, h);
  if (refinement_record != nullptr) *refinement_record = std::move(record);
  return h;
}

MolecularModel load_molecular_model(const BgSampleOptions& o) {
  MolecularModel m;
  nlohmann::json meta;
  m.model.emplace(BoltzmannGenerator::load(o.model, &meta));
  if (!meta.contains("molecular_space"))
    throw ConfigError(o.model.string() + ": not a molecular (internal-coordinate) model");
  m.space.emplace(MolecularFlowSpace::from_json(meta["molecular_space"], o.model.string() + ": molecular_space"));
  if (m.model->dim() != m.space->dim())
    throw ConfigError(o.model.string() + ": model dim does not match its molecular space");
  return m;
}

void sample_molecular(BoltzmannGenerator& model, const MolecularFlowSpace& space, const Target& target,
                      long long n, std::uint64_t seed, EnergyCounters& counters, MolecularSamples& out) {
  weigh_molecular(model.sample(n, seed), space, target, counters, out);
}

void weigh_molecular(const GeneratedSamples& s, const MolecularFlowSpace& space, const Target& target,
                     EnergyCounters& counters, MolecularSamples& out) {
  const torch::Tensor ys = to_tensor(s.x);
  const auto dec = space.from_flow(ys);
  torch::Tensor lq_y = torch::empty({s.log_q.size()}, torch::kFloat64);
  std::copy(s.log_q.data(), s.log_q.data() + s.log_q.size(), lq_y.data_ptr<double>());
  const torch::Tensor lq_cart = space.log_q_cartesian(lq_y, dec);
  out.x = to_matrix(dec.cartesian);
  out.u = target_energy_values(out.x, target, &counters);
  const auto keep = dec.valid & dec.chirality_ok;
  out.log_q = to_vector(lq_cart);
  const Eigen::VectorXd keep_v = to_vector(keep.to(torch::kFloat64));
  const Eigen::VectorXd& u = out.u;
  Eigen::VectorXd& log_q = out.log_q;
  out.log_weights.resize(u.size());
  for (Eigen::Index i = 0; i < u.size(); ++i) {
    if (!std::isfinite(u[i])) ++out.non_finite_energies;
    if (keep_v[i] == 0.0) ++out.zero_weight;
    out.log_weights[i] = keep_v[i] != 0.0 && std::isfinite(u[i]) && std::isfinite(log_q[i])
                             ? -u[i] - log_q[i]
                             : -std::numeric_limits<double>::infinity();
    if (!std::isfinite(log_q[i])) log_q[i] = std::numeric_limits<double>::quiet_NaN();
  }
  out.wrong_chirality = (~dec.chirality_ok).sum().item<int64_t>();
  out.outside_domain = (~dec.valid).sum().item<int64_t>();
}

nlohmann::json conformations_summary(const Target& target, const MolecularSamples& s,
                                     const std::optional<RowMatrix>& reference, const std::string& reference_name) {
  nlohmann::json out;
  try {
    const ConformationReport model = conformation_populations(*target.topology(), s.x, &s.log_weights);
    out = model.to_json();
    std::fputs(format_conformations(model, "bg-sample: reweighted ").c_str(), stderr);
    if (reference && !model.residues.empty()) {
      const ConformationReport ref =
          conformation_populations_from_angles(*reference, {model.residues[0].residue}, nullptr);
      nlohmann::json r = ref.to_json();
      r["source"] = reference_name;
      for (std::size_t b = 0; b < basin_names().size(); ++b) {
        const Population& m = model.residues[0].basins[b];
        const Population& q = ref.residues[0].basins[b];
        const double se = std::hypot(m.standard_error, q.standard_error);
        r["z"][basin_names()[b]] = se > 0 ? nlohmann::json((m.value - q.value) / se) : nlohmann::json(nullptr);
      }
      std::fputs(format_conformations(ref, "bg-sample: reference  ").c_str(), stderr);
      out["reference"] = r;
    }
  } catch (const DomainError& e) {
    out = {{"note", std::string("no conformations: ") + e.what()}};
  }
  return out;
}

namespace {

/// "N-CA-C-N (ALA2)"-style names of the torsion columns `columns` (atoms of the placing row).
nlohmann::json torsion_names(const InternalCoordinates& ic, const Topology& topology, const std::vector<std::int64_t>& columns) {
  nlohmann::json out = nlohmann::json::array();
  const std::int64_t first = ic.n_bonds() + ic.n_angles();
  for (const auto c : columns) {
    if (c < first || c >= ic.n_internal()) continue;
    const auto& row = ic.zmatrix().rows[static_cast<std::size_t>(c - first)];
    std::string name;
    for (const auto a : {row.atom, row.bond, row.angle, row.torsion})
      name += (name.empty() ? "" : "-") + topology.atom_names[static_cast<std::size_t>(a)];
    const auto r = static_cast<std::size_t>(row.bond);
    out.push_back(name + " (" + topology.residue_names[r] + std::to_string(topology.residue_ids[r]) + ")");
  }
  return out;
}

/// summary["molecular_generator"].
nlohmann::json molecular_generator_summary(const MolecularModel& m, const MolecularSamples& s,
                                           const nlohmann::json& data_info, const Topology& topology) {
  const BaseDensity& base = *m.model->base();
  const auto& ic = m.space->coordinates();
  const std::string shape = "R^" + std::to_string(ic.n_bonds() + ic.n_angles()) + " x T^" + std::to_string(ic.n_torsions());
  return {{"coordinates", "internal (Z-matrix of " + std::to_string(ic.n_atoms()) + " atoms), torsions periodic (flow on " +
                              shape + ")"},
          {"z_matrix", ic.to_json()},
          {"soft_torsions", base.conditional() ? torsion_names(ic, topology, base.conditional()->soft())
                                               : nlohmann::json(nullptr)},
          {"base", base.kind()},
          {"base_components_per_torsion", base_components_of_torsions(base)},
          {"base_conditional", conditional_summary(base.conditional())},
          {"base_fit_seconds", m.base_fit_seconds},
          {"flow_dim", m.space->dim()},
          // The flow acts on the hard columns whitened given the soft torsions (generator.hpp).
          {"flow_whitening", m.model->whitening() != nullptr},
          // Flow columns no coupling layer transforms (coupling_condition_soft): the soft torsions.
          {"flow_condition_only", m.model->options().coupling_flow() ? nlohmann::json(m.model->options().coupling.condition_only)
                                                                     : nlohmann::json::array()},
          {"data", data_info},
          {"zero_weight_domain_chirality", s.zero_weight},
          {"wrong_chirality", s.wrong_chirality},
          {"outside_domain", s.outside_domain}};
}

/// The model (trained or loaded) with its flow space; `data_info` and `history` of a training.
MolecularModel molecular_model(const BgSampleOptions& o, const Potential& pot, GeneratorConfig& cfg,
                               const MolecularSystem& system, nlohmann::json& notes, nlohmann::json& data_info,
                               TrainHistory& history, nlohmann::json& refinement) {
  if (!o.model.empty()) {
    MolecularModel m = load_molecular_model(o);
    if (o.refine) history = refine_molecular_model(o, *pot.target, cfg, m, refinement, TrainHistory{});
    return m;
  }
  const TrainingFrames f = obtain_training_frames(o, pot, cfg, notes);
  data_info = f.info;
  MolecularModel m = fit_molecular_model(o, pot, cfg, system, f.frames);
  history = train_molecular_model(o, *pot.target, cfg, m, &refinement);
  return m;
}

/// The annealed SMC stage (bg_smc.hpp) in the flow's base space, with the final particles'
/// conformation populations and Ramachandran comparison weighted like the flow's.
nlohmann::json molecular_smc(MolecularModel& m, const Target& target, const GeneratorConfig& cfg,
                             const BgSampleOptions& o, const std::optional<RowMatrix>& reference, RunDirectory& run) {
  SmcOutcome out = run_smc_stage(*m.model, target, &*m.space, *cfg.smc, o.seed, o.progress, run);
  MolecularSamples s;
  s.x = std::move(out.x);
  s.u = std::move(out.u);
  s.log_weights = std::move(out.log_weights);
  out.summary["conformations"] = conformations_summary(target, s, reference, cfg.reference_dihedrals.string());
  if (reference)
    out.summary["ramachandran_vs_reference"] =
        ramachandran_vs_reference(*target.topology(), s.x, &s.log_weights, *reference, cfg.reference_dihedrals.string())
            .to_json();
  return out.summary;
}

}  // namespace

nlohmann::json run_molecular(const BgSampleOptions& o, const Potential& pot, GeneratorConfig& cfg, RunDirectory& run,
                             nlohmann::json summary, double t_start) {
  const Target& target = *pot.target;
  const MolecularSystem system = molecular_system(pot, cfg);
  nlohmann::json notes = nlohmann::json::array();
  std::optional<RowMatrix> reference;  // read before training: bad input fails early
  if (!cfg.reference_dihedrals.empty())
    reference = read_reference_dihedrals(cfg.reference_dihedrals, cfg.reference_field);
  const bool trained = o.model.empty() || o.refine;  // a refined --model records its training (the rungs)
  nlohmann::json data_info;
  TrainHistory history;
  nlohmann::json refinement;
  MolecularModel m = molecular_model(o, pot, cfg, system, notes, data_info, history, refinement);
  if (!o.model.empty()) {
    summary["model"] = o.model.string();
    check_atom_names(m.space->coordinates().zmatrix(), *target.topology(), o.model.string());
  }
  if (m.model->base() == nullptr || !torch::equal(m.model->base()->torsion_mask(), m.space->torsion_mask()))
    throw ConfigError((o.model.empty() ? pot.path.string() : o.model.string()) +
                      ": molecular model without a torus base on the torsion columns (saved by an older "
                      "version?); retrain it");

  // Sample in y, decode, weight.
  const double t_sample = wall_seconds();
  EnergyCounters counters;
  MolecularSamples s;
  sample_molecular(*m.model, *m.space, target, cfg.samples, o.seed, counters, s);
  summary["molecular_generator"] = molecular_generator_summary(m, s, data_info, *target.topology());
  summary["samples"] = cfg.samples;
  summary["sampling_seconds"] = wall_seconds() - t_sample;
  summary["importance"] = generator_importance_report(s.log_weights, s.non_finite_energies, target);
  if (reference) {
    auto& r = summary["ramachandran_vs_reference"];
    r = ramachandran_vs_reference(*target.topology(), s.x, &s.log_weights, *reference, cfg.reference_dihedrals.string())
            .to_json();
    // Record the training data: frames of the reference run itself make the comparison in-sample.
    r["training_data"] = data_info.is_object() ? data_info.value("source", std::string()) : std::string("(loaded model)");
  }
  summary["conformations"] = conformations_summary(target, s, reference, cfg.reference_dihedrals.string());
  if (cfg.smc) summary["smc"] = molecular_smc(m, target, cfg, o, reference, run);
  if (trained) {
    summary["training"] = training_summary(cfg.train, history);
    summary["training"]["invalid_reverse_kl_draws"] = history.invalid;
    if (!refinement.is_null()) summary["training"]["refinement"] = refinement;
  }
  nlohmann::json meta = {{"potential", o.potential.string()}, {"seed", o.seed},
                         {"molecular_space", m.space->to_json()}};
  m.model->save(run.path("model.pt"), meta, saved_model_potential(pot, summary));
  if (trained) plot_training(run, history, notes);

  return write_generator_run(run, o, pot, flow_record(cfg, *m.model, trained ? &history : nullptr), counters,
                             {&s.x, &s.u, &s.log_q, &s.log_weights}, summary, notes, t_start,
                             {reference ? &*reference : nullptr, cfg.reference_dihedrals.string()});
}

}  // namespace boltzlab::generators
