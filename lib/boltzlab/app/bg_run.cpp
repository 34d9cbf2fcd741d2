#include "boltzlab/app/bg_run.hpp"

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include <torch/torch.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/estimators/ramachandran_compare.hpp"
#include "boltzlab/estimators/report.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/molecular_space.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/io/plot.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/app/run_outputs.hpp"
#include "boltzlab/flows/openmm_md.hpp"
#include "boltzlab/targets/openmm_target.hpp"
#include "boltzlab/targets/registry.hpp"

namespace fs = std::filesystem;

namespace boltzlab::generators {

void BgSampleOptions::validate() const {
  if (evaluate.empty() && potential.empty())
    throw ConfigError("bg-sample: --potential is required (or --model with --evaluate)");
  if (!evaluate.empty() && model.empty())
    throw ConfigError("bg-sample: --evaluate needs --model");
  if (samples && *samples < 2)
    throw ConfigError("bg-sample: --samples is " + std::to_string(*samples) + ", but must be >= 2");
  if (threads < 0) throw ConfigError("bg-sample: --threads must be >= 0");
  if (iterations && *iterations < 0) throw ConfigError("bg-sample: --iterations must be >= 0");
  if (out.empty()) throw ConfigError("bg-sample: --out is empty");
}

void set_generator_threads(int threads) {
  set_num_threads(threads);
  // Allocator: the flows allocate and free many MB-sized tensors per RK4 stage. With
  // glibc's defaults those are mmap'ed and unmapped every time (or trimmed back to the
  // kernel), and the page faults of re-zeroed pages dominated training on particle
  // systems (LJ13: 3.5 min of system time in a 4 min run). Keeping them on the heap
  // (mmap threshold at glibc's 32 MiB maximum, trimming only above 2 GiB, 512 MiB top
  // pad) cut that run's system time from 3.5 min to 1 s, with identical results:
  // allocation does not touch the arithmetic.
  static bool allocator_tuned = false;
  if (!allocator_tuned) {
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 2047 * 1024 * 1024);
    mallopt(M_TOP_PAD, 512 * 1024 * 1024);
    allocator_tuned = true;
  }
  // The generators parallelize over fixed batch chunks with oneTBB (deterministic,
  // thread-count independent); LibTorch's own intra-op pool would oversubscribe the
  // same cores (and its OpenMP barriers stall badly on a loaded machine), so each
  // oneTBB task runs LibTorch ops on one thread. Inter-op threads follow `threads`.
  torch::set_num_threads(1);
  static bool interop_set = false;  // LibTorch allows setting inter-op threads once
  if (!interop_set) {
    try {
      torch::set_num_interop_threads(num_threads());
    } catch (const c10::Error&) {
      // already started by an earlier parallel region: keep its setting
    }
    interop_set = true;
  }
}

nlohmann::json generator_importance_report(const Eigen::VectorXd& log_weights, std::size_t non_finite_energies,
                                           const Target& target) {
  ImportanceReportOptions opts;
  opts.exact_log_z = target.log_z();
  if (target.topology()) opts.kt_kj_mol = target.kT();
  bool any_finite = false;
  for (Eigen::Index i = 0; i < log_weights.size(); ++i) any_finite |= std::isfinite(log_weights[i]);
  if (!any_finite)
    return {{"samples", log_weights.size()},
            {"ess_fraction", 0.0},
            {"note", "no finite log-weight (every sample has zero weight)"}};
  return importance_report(log_weights, non_finite_energies, opts).to_json();
}

namespace {

/// Short MD run providing training frames for molecular targets without data.
struct MolecularDefaults {
  double equilibration_ps = 5.0;
  double production_ps = 50.0;
  double frame_interval_ps = 0.025;
};

struct GeneratorConfig {
  MolecularDefaults md;
  GeneratorOptions model;
  TrainOptions train;
  fs::path data;
  fs::path reference_dihedrals;  ///< reference φ/ψ (.npy N×2) for summary["ramachandran_vs_reference"]
  std::string reference_field;   ///< where it was given (for error messages)
  std::optional<Eigen::VectorXd> scale, shift;
  std::string base = "von_mises";  ///< molecules: torsion base "von_mises", "von_mises_mixture" (fitted to the data) or "uniform";
                                   ///< other targets: "normal" or "gaussian_mixture" (per coordinate, fitted to the data)
  int base_components = 4;         ///< mixtures: most components per torsion / coordinate (chosen by BIC)
  double base_defensive = 0.0;     ///< mixtures: weight of one broad defensive component per column
  int base_harmonics = 3;          ///< conditional_gaussian: harmonics of the soft torsions in the mean
  bool base_experts = false;       ///< conditional_gaussian: one regression and covariance per (φ, ψ) component
  int base_em_iterations = 10;     ///< conditional_gaussian with experts: most EM iterations
  double base_shrinkage = 1.0;     ///< conditional_gaussian with experts: prior weight toward the pooled fit
  double base_soft_threshold = 0.5;  ///< conditional_gaussian: circular sd (rad) above which a torsion is soft
  int base_joint_bins = 0;         ///< conditional_gaussian: n of the n × n bin correction of (φ, ψ) (0: none)
  double base_joint_defensive = 0.01;  ///< conditional_gaussian: mixture fraction of the corrected bin masses
  long long samples = 100000;
};

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

GeneratorConfig read_generator_config(const Potential& pot, const BgSampleOptions& flags, bool have_data_flag) {
  GeneratorConfig c;
  const Json empty = Json::object();
  const Json& section = pot.generator.is_null() ? empty : pot.generator;
  if (!section.is_object()) throw ConfigError(pot.path.string() + ": generator: must be an object");
  JsonReader r(section, pot.path.string() + ": generator");
  const Target& target = *pot.target;
  const int dim = static_cast<int>(target.dim());
  c.model.potential.dim = dim;
  const auto [np, sd] = target.particle_layout();
  c.model.potential.n_particles = static_cast<int>(np);
  c.model.potential.spatial_dim = static_cast<int>(sd);
  c.model.potential.width = static_cast<int>(r.get_int("width", 32));
  c.model.potential.layers = static_cast<int>(r.get_int("layers", 2));
  c.model.potential.rank = static_cast<int>(r.get_int("rank", -1));
  c.model.potential.network = r.get_bool("network", true);
  c.model.potential.pair_basis = static_cast<int>(r.get_int("pair_basis", 0));
  c.model.potential.pair_time_basis = static_cast<int>(r.get_int("pair_time_basis", 4));
  c.model.potential.pair_range = r.get_double("pair_range", 4.0);
  c.model.potential.pair_channels = static_cast<int>(r.get_int("pair_channels", 0));
  c.model.time = r.get_double("time", 1.0);
  c.model.steps = static_cast<int>(r.get_int("steps", 8));
  c.model.sample_steps = static_cast<int>(r.get_int("sample_steps", c.model.steps));
  if (r.has("data")) c.data = pot.path.parent_path() / r.get_string("data");
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
  const bool is_molecular = target.topology() != nullptr;
  if (!is_molecular) c.base = "normal";
  if (r.has("base")) {
    c.base = r.get_string("base");
    if (is_molecular && c.base != "von_mises" && c.base != "von_mises_mixture" && c.base != "uniform" &&
        c.base != "conditional_gaussian")
      r.fail("base", "must be \"von_mises\", \"von_mises_mixture\", \"conditional_gaussian\" or \"uniform\" for a "
                     "molecular target");
    if (!is_molecular && c.base != "normal" && c.base != "gaussian_mixture")
      r.fail("base", "must be \"normal\" or \"gaussian_mixture\" for this target");
    if (c.base == "gaussian_mixture" && target.particle_layout().first > 0)
      r.fail("base", "\"gaussian_mixture\" is not available for particle systems");
  }
  if (r.has("base_components")) {
    if (c.base != "von_mises_mixture" && c.base != "gaussian_mixture" && c.base != "conditional_gaussian")
      r.fail("base_components", "is only used with \"base\": \"von_mises_mixture\", \"conditional_gaussian\" or "
                                "\"gaussian_mixture\"");
    c.base_components = static_cast<int>(r.get_int("base_components"));
    if (c.base_components < 1 || c.base_components > 8) r.fail("base_components", "must be between 1 and 8");
  }
  if (r.has("base_defensive")) {
    if (c.base != "von_mises_mixture" && c.base != "gaussian_mixture")
      r.fail("base_defensive", "is only used with \"base\": \"von_mises_mixture\" or \"gaussian_mixture\"");
    c.base_defensive = r.get_double("base_defensive");
    if (!(c.base_defensive >= 0.0 && c.base_defensive < 0.5)) r.fail("base_defensive", "must be in [0, 0.5)");
  }
  if (r.has("base_harmonics")) {
    if (c.base != "conditional_gaussian") r.fail("base_harmonics", "is only used with \"base\": \"conditional_gaussian\"");
    c.base_harmonics = static_cast<int>(r.get_int("base_harmonics"));
    if (c.base_harmonics < 1 || c.base_harmonics > 6) r.fail("base_harmonics", "must be between 1 and 6");
  }
  if (r.has("base_experts")) {
    if (c.base != "conditional_gaussian") r.fail("base_experts", "is only used with \"base\": \"conditional_gaussian\"");
    c.base_experts = r.get_bool("base_experts");
  }
  if (r.has("base_em_iterations")) {
    if (!c.base_experts) r.fail("base_em_iterations", "is only used with \"base_experts\": true");
    c.base_em_iterations = static_cast<int>(r.get_int("base_em_iterations"));
    if (c.base_em_iterations < 1 || c.base_em_iterations > 1000) r.fail("base_em_iterations", "must be between 1 and 1000");
  }
  if (r.has("base_shrinkage")) {
    if (!c.base_experts) r.fail("base_shrinkage", "is only used with \"base_experts\": true");
    c.base_shrinkage = r.get_double("base_shrinkage");
    if (!(c.base_shrinkage >= 0.0 && c.base_shrinkage <= 1e6)) r.fail("base_shrinkage", "must be in [0, 1e6]");
  }
  if (r.has("base_joint_bins")) {
    if (c.base != "conditional_gaussian") r.fail("base_joint_bins", "is only used with \"base\": \"conditional_gaussian\"");
    c.base_joint_bins = static_cast<int>(r.get_int("base_joint_bins"));
    if (c.base_joint_bins != 0 && (c.base_joint_bins < 2 || c.base_joint_bins > 360))
      r.fail("base_joint_bins", "must be 0 (no correction) or between 2 and 360");
  }
  if (r.has("base_joint_defensive")) {
    if (c.base_joint_bins == 0) r.fail("base_joint_defensive", "is only used with \"base_joint_bins\" > 0");
    c.base_joint_defensive = r.get_double("base_joint_defensive");
    if (!(c.base_joint_defensive > 0.0 && c.base_joint_defensive <= 1.0))
      r.fail("base_joint_defensive", "must be in (0, 1]");
  }
  if (r.has("base_soft_threshold")) {
    if (c.base != "conditional_gaussian")
      r.fail("base_soft_threshold", "is only used with \"base\": \"conditional_gaussian\"");
    c.base_soft_threshold = r.get_double("base_soft_threshold");
    if (!(c.base_soft_threshold > 0.0 && c.base_soft_threshold <= 0.5))
      r.fail("base_soft_threshold", "must be in (0, 0.5] rad");
  }
  c.md.equilibration_ps = r.get_double("md_equilibration_ps", c.md.equilibration_ps);
  c.md.production_ps = r.get_double("md_production_ps", c.md.production_ps);
  c.md.frame_interval_ps = r.get_double("md_frame_interval_ps", c.md.frame_interval_ps);
  if (!flags.data.empty()) c.data = flags.data;
  // Molecular targets train on data (given, or frames of a short MD run): the
  // default preset is OT-Flow (λ = 1).
  const bool molecular = target.topology() != nullptr;
  const bool have_data = have_data_flag || !c.data.empty() || molecular;
  if (molecular) c.train.preset = "ot-flow";
  c.train.read(r, have_data);
  r.finish();
  if (flags.preset) {
    c.train.preset = *flags.preset;
    const LossWeights p = LossWeights::preset(*flags.preset, have_data);
    c.train.weights = p;
  }
  if (flags.lambda) c.train.weights.lambda = *flags.lambda;
  if (flags.iterations) c.train.iterations = *flags.iterations;
  if (flags.samples) c.samples = *flags.samples;
  try {
    c.model.validate();
  } catch (const ConfigError& e) {  // name the file: the architecture keys come from its generator section
    throw ConfigError(pot.path.string() + ": generator: " + e.what());
  }
  return c;
}

void plot_training(const RunDirectory& run, const TrainHistory& h, nlohmann::json& notes) {
  std::vector<Series> loss = {{"loss", {}, h.loss}};
  std::vector<double> fkl, rkl;
  bool any_f = false, any_r = false;
  for (double v : h.forward_kl) any_f |= std::isfinite(v);
  for (double v : h.reverse_kl) any_r |= std::isfinite(v);
  if (any_f) loss.push_back({"forward KL (NLL)", {}, h.forward_kl});
  if (any_r) loss.push_back({"reverse KL - log Z", {}, h.reverse_kl});
  auto r1 = plot_lines(loss, "training loss", "iteration", "value", run.path("training_loss.png"));
  if (!r1.ok) notes.push_back(r1.note);
  std::vector<Series> costs = {{"transport", {}, h.transport}, {"HJB residual", {}, h.hjb}};
  auto r2 = plot_lines(costs, "path costs", "iteration", "value", run.path("training_costs.png"));
  if (!r2.ok) notes.push_back(r2.note);
  if (!h.eval_ess.empty()) {
    auto r3 = plot_lines({{"running ESS", h.eval_iteration, h.eval_ess}}, "running Kish ESS (small batches)",
                         "iteration", "ESS / N", run.path("training_ess.png"));
    if (!r3.ok) notes.push_back(r3.note);
  }
}

/// 2-D density plot: target exp(−u) and model q on the same grid, with samples.
void plot_density_2d(const RunDirectory& run, const Target& target, BoltzmannGenerator& model,
                     const RowMatrix& samples, nlohmann::json& notes) {
  const int n = 80;
  const Eigen::Index ns = std::min<Eigen::Index>(samples.rows(), 2000);
  double lo0 = samples.col(0).minCoeff(), hi0 = samples.col(0).maxCoeff();
  double lo1 = samples.col(1).minCoeff(), hi1 = samples.col(1).maxCoeff();
  const double p0 = 0.1 * (hi0 - lo0), p1 = 0.1 * (hi1 - lo1);
  lo0 -= p0; hi0 += p0; lo1 -= p1; hi1 += p1;
  RowMatrix grid(n * n, 2);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      grid(i * n + j, 0) = lo0 + (i + 0.5) * (hi0 - lo0) / n;
      grid(i * n + j, 1) = lo1 + (j + 0.5) * (hi1 - lo1) / n;
    }
  Eigen::VectorXd u;
  target.evaluate_batch(grid, u, nullptr);
  const Eigen::VectorXd lq = model.log_q(grid);
  std::vector<double> gx(n * n), gy(n * n), pt(n * n), pq(n * n), sx(ns), sy(ns);
  const double umin = u.minCoeff();
  for (int k = 0; k < n * n; ++k) {
    gx[k] = grid(k, 0);
    gy[k] = grid(k, 1);
    pt[k] = std::isfinite(u[k]) ? std::exp(-(u[k] - umin)) : 0.0;
    pq[k] = std::exp(lq[k]);
  }
  for (Eigen::Index i = 0; i < ns; ++i) {
    sx[i] = samples(i, 0);
    sy[i] = samples(i, 1);
  }
  std::ostringstream s;
  s << gnuplot_datablock("t", {gx, gy, pt}) << gnuplot_datablock("q", {gx, gy, pq})
    << gnuplot_datablock("s", {sx, sy});
  s << "set xrange [" << lo0 << ":" << hi0 << "]\nset yrange [" << lo1 << ":" << hi1 << "]\n";
  s << "set multiplot layout 1,2\nset view map\nunset key\nset size ratio -1\n"
       "set title 'target exp(-u) (unnormalized)'\nplot $t using 1:2:3 with image\n"
       "set title 'generator q with 2000 samples'\nplot $q using 1:2:3 with image, "
       "$s using 1:2 with points pt 7 ps 0.2 lc rgb 'white'\nunset multiplot\n";
  auto r = run_gnuplot(s.str(), run.path("density.png"), 1200, 560);
  if (!r.ok) notes.push_back(r.note);
}

nlohmann::json run_evaluate(const BgSampleOptions& o) {
  const double t0 = wall_seconds();
  nlohmann::json meta;
  BoltzmannGenerator model = BoltzmannGenerator::load(o.model, &meta);
  const RowMatrix x = read_npy_matrix(o.evaluate, static_cast<std::size_t>(model.dim()));
  RunDirectory run(o.out);
  const Eigen::VectorXd lq = model.log_q(x);
  std::size_t non_finite = 0;
  double sum = 0.0, sum2 = 0.0;
  for (Eigen::Index i = 0; i < lq.size(); ++i) {
    if (!std::isfinite(lq[i])) { ++non_finite; continue; }
    sum += lq[i];
    sum2 += lq[i] * lq[i];
  }
  const double m = static_cast<double>(lq.size() - static_cast<Eigen::Index>(non_finite));
  run.write_array("log_q.npy", lq);
  nlohmann::json summary = {{"tool", "bg-sample"},
                            {"mode", "evaluate"},
                            {"model", o.model.string()},
                            {"model_format_version", kModelFormatVersion},
                            {"configurations", o.evaluate.string()},
                            {"threads", num_threads()},
                            {"count", lq.size()},
                            {"non_finite_log_q", non_finite}};
  if (m > 0) {
    const double mean = sum / m;
    summary["nll"] = -mean;
    summary["nll_se"] = m > 1 ? std::sqrt(std::max(0.0, sum2 / m - mean * mean) / (m - 1)) : 0.0;
  }
  summary["wall_seconds"] = wall_seconds() - t0;
  sanitize_non_finite(summary);
  run.write_summary(summary);
  run.commit();
  return summary;
}


/// Arrays of a generated sample set (rows of `samples` ↔ entries of the vectors).
struct GeneratedArrays {
  const RowMatrix* samples;
  const Eigen::VectorXd* reduced_energies;
  const Eigen::VectorXd* log_q;
  const Eigen::VectorXd* log_weights;
};

/// The run-directory contract of both bg-sample paths (plain and molecular): arrays,
/// counts (training + sampling energy evaluations), timings, the importance report as
/// `statistics`, notes, and every other summary entry as extra keys; then commits.
/// `history` is null when the model was loaded instead of trained.
nlohmann::json write_generator_run(RunDirectory& run, const BgSampleOptions& o, const Potential& pot,
                                   const GeneratorConfig& cfg, const BoltzmannGenerator& model,
                                   const TrainHistory* history, const EnergyCounters& counters,
                                   const GeneratedArrays& arrays, const nlohmann::json& summary,
                                   const nlohmann::json& notes, double t_start) {
  RunOutputs out;
  out.tool = "bg-sample";
  out.potential_path = o.potential;
  out.potential_name = pot.name;
  out.target = pot.target.get();
  out.options = {{"samples", cfg.samples}, {"generator", model.options().to_json()}};
  if (history) out.options["training"] = cfg.train.to_json();
  out.seed = o.seed;
  out.samples = arrays.samples;
  out.reduced_energies = arrays.reduced_energies;
  out.log_q = arrays.log_q;
  out.log_weights = arrays.log_weights;
  const std::size_t sampling_evaluations = counters.evaluations.load();
  out.counts = {{"energy_evaluations", (history ? history->energy_evaluations : 0) + sampling_evaluations},
                {"sampling_energy_evaluations", sampling_evaluations}};
  out.timings = {{"training", history ? history->wall_seconds : 0.0},
                 {"sampling", summary["sampling_seconds"]},
                 {"total_before_write", wall_seconds() - t_start}};
  out.statistics = summary["importance"];
  for (const auto& n : notes) out.notes.push_back(n.get<std::string>());
  for (const auto& [k, v] : summary.items())
    if (k != "tool" && k != "seed" && k != "threads") out.extra[k] = v;
  nlohmann::json written = write_run(run, out);
  run.commit();
  return written;
}

/// Mixture components per torsion column of a molecular base (for summary.json).
std::vector<int> base_components_of_torsions(const BaseDensity& base) {
  const auto per_column = base.components_per_column();
  std::vector<int> out;
  for (std::size_t c = 0; c < per_column.size(); ++c)
    if (base.torsion_mask()[static_cast<std::int64_t>(c)].item<bool>()) out.push_back(per_column[c]);
  return out;
}

/// The conditional block of a molecular base, for summary.json (null without one).
nlohmann::json conditional_summary(const ConditionalGaussian* c) {
  if (c == nullptr) return nullptr;
  return {{"soft_columns", c->soft()},
          {"joint_columns", c->joint()},
          {"components", c->components()},
          {"experts", !c->shared()},
          {"hard_columns", c->hard().size()},
          {"features", c->n_features()},
          {"harmonics", c->harmonics()},
          {"max_periodic_sd", c->max_periodic_sd()},
          {"joint_correction_bins", c->correction_bins()}};
}

/// Molecular targets: the flow lives on normalized internal coordinates y (3n − 6)
/// of MolecularFlowSpace (generators/internal_coordinates.hpp), a Boltzmann generator
/// on ℝ^{2n−3} × T^{n−3}: Φ is 2π-periodic in the torsion columns
/// (OtPotentialOptions::periodic), the base is a standard normal on the bonds/angles
/// times a von Mises (fitted to the data; "base": "von_mises"), a mixture of up to
/// "base_components" von Mises per torsion (EM + BIC on the data; "von_mises_mixture")
/// or uniform ("uniform") density on the torsions, and samples are wrapped into [−π, π) — exact densities on
/// the torus (generator.hpp). Training: λ·forward KL on the data frames (in y) +
/// (1 − λ)·reverse KL through the map y → x (FlowSpaceMap: log π_y = −u(x(y)) + L(y)),
/// with outside-domain and wrong-chirality draws masked out and counted; the running
/// ESS uses the same map. Weights: −∞ outside the domain and for the wrong enantiomer.
/// Without --data/generator.data a short Langevin MD run (targets/openmm_md.hpp)
/// from the target's initial positions provides the frames.
nlohmann::json run_molecular(const BgSampleOptions& o, Potential& pot, GeneratorConfig& cfg,
                             RunDirectory& run, nlohmann::json summary, double t_start) {
  const MolecularDefaults& md = cfg.md;
  const Target& target = *pot.target;
  const auto* omm = dynamic_cast<const OpenMMTarget*>(&target);
  if (target.topology() == nullptr || target.topology()->atoms() != 22)
    throw ConfigError(pot.path.string() + ": generator: internal coordinates are defined for alanine "
                      "dipeptide (22 atoms) only");
  nlohmann::json notes = nlohmann::json::array();
  std::optional<RowMatrix> reference;  // read before training: bad input fails early
  if (!cfg.reference_dihedrals.empty())
    reference = read_reference_dihedrals(cfg.reference_dihedrals, cfg.reference_field);
  std::optional<MolecularFlowSpace> space;
  std::optional<BoltzmannGenerator> model;
  TrainHistory history;
  bool trained = false;
  nlohmann::json data_info;
  double base_fit_seconds = 0.0;
  if (!o.model.empty()) {
    nlohmann::json meta;
    model.emplace(BoltzmannGenerator::load(o.model, &meta));
    if (!meta.contains("molecular_space"))
      throw ConfigError(o.model.string() + ": not a molecular (internal-coordinate) model");
    space.emplace(MolecularFlowSpace::from_json(meta["molecular_space"], o.model.string() + ": molecular_space"));
    if (model->dim() != space->dim())
      throw ConfigError(o.model.string() + ": model dim does not match its molecular space");
    summary["model"] = o.model.string();
  } else {
    RowMatrix frames;
    if (!cfg.data.empty()) {
      frames = read_npy_matrix(cfg.data, target.dim());
      data_info = {{"source", cfg.data.string()}, {"frames", frames.rows()}};
    } else {
      if (omm == nullptr) throw ConfigError(pot.path.string() + ": no data for a molecular target");
      LangevinMdOptions mdo;
      mdo.equilibration_ps = md.equilibration_ps;
      mdo.production_ps = md.production_ps;
      mdo.frame_interval_ps = md.frame_interval_ps;
      mdo.progress = o.progress;
      mdo.seed = o.seed;
      mdo.validate();
      const LangevinMdResult r = run_langevin_md(*omm, omm->initial_positions(), mdo);
      if (r.failed) throw BackendError(pot.path.string() + ": reference MD failed: " + r.failure);
      frames = r.frames;
      data_info = {{"source", "langevin_md"}, {"frames", frames.rows()},
                   {"equilibration_ps", md.equilibration_ps}, {"production_ps", md.production_ps},
                   {"frame_interval_ps", md.frame_interval_ps}, {"md_wall_seconds", r.wall_seconds},
                   {"md_steps", r.equilibration_steps + r.production_steps}};
      notes.push_back("training data: " + std::to_string(frames.rows()) + " frames of a Langevin MD run made here (" +
                      std::to_string(md.production_ps) + " ps, frames " + std::to_string(md.frame_interval_ps) +
                      " ps apart)");
    }
    const torch::Tensor cart = to_tensor(frames);
    space.emplace(MolecularFlowSpace::fit(InternalCoordinates::alanine_dipeptide(), cart));
    const torch::Tensor y_data = space->to_flow(cart).first;
    const RowMatrix y_rows = to_matrix(y_data);
    GeneratorOptions mo = cfg.model;
    mo.potential.dim = static_cast<int>(space->dim());
    mo.potential.n_particles = 0;
    mo.potential.spatial_dim = 0;
    mo.potential.periodic.clear();
    for (const auto c : space->coordinates().torsion_indices()) mo.potential.periodic.push_back(static_cast<int>(c));
    model.emplace(mo, o.seed);
    if (cfg.base == "conditional_gaussian") {
      // Soft torsions: φ and ψ (a joint mixture) and every torsion wider than the threshold
      // (the methyl rotors); all other coordinates Gaussian given them (conditional_base.hpp).
      const auto& ic = space->coordinates();
      const std::vector<std::int64_t> joint = {
          ic.find_torsion(kAlaninePhi[0], kAlaninePhi[1], kAlaninePhi[2], kAlaninePhi[3]),
          ic.find_torsion(kAlaninePsi[0], kAlaninePsi[1], kAlaninePsi[2], kAlaninePsi[3])};
      const auto soft = BaseDensity::wide_torsions(y_data, space->torsion_mask(), cfg.base_soft_threshold, joint);
      if (o.progress)
        std::fprintf(stderr, "bg-sample: fitting the conditional Gaussian base to %lld frames%s\n",
                     static_cast<long long>(y_data.size(0)), cfg.base_experts ? " (experts, EM)" : "");
      const double t_fit = wall_seconds();
      try {
        model->set_base(BaseDensity::fit_conditional(y_data, space->torsion_mask(), soft, joint, cfg.base_components,
                                                     cfg.base_harmonics, cfg.base_experts, cfg.base_em_iterations,
                                                     cfg.base_shrinkage, cfg.base_joint_bins,
                                                     cfg.base_joint_defensive));
      } catch (const DomainError& e) {  // e.g. a hard torsion too wide for these data: name the setting
        throw ConfigError(pot.path.string() + ": generator.base \"conditional_gaussian\": " + e.what());
      }
      base_fit_seconds = wall_seconds() - t_fit;
    } else {
      model->set_base(cfg.base == "uniform"     ? BaseDensity(space->torsion_mask())
                      : cfg.base == "von_mises" ? BaseDensity::fit_von_mises(y_data, space->torsion_mask())
                                                : BaseDensity::fit_mixture(y_data, space->torsion_mask(),
                                                                           cfg.base_components, 1, 1e3, cfg.base_defensive));
    }
    cfg.train.seed = o.seed;
    cfg.train.progress = o.progress;
    cfg.train.checkpoint = fs::path(o.out.string() + ".checkpoint.pt");
    if (cfg.train.checkpoint_every == 0) cfg.train.checkpoint_every = std::max(1, cfg.train.iterations / 10);
    cfg.train.resume = o.resume;
    const MolecularFlowSpace* sp = &*space;
    FlowSpaceMap map;
    map.map = [sp](const torch::Tensor& y) {
      const auto d = sp->from_flow(y);
      return FlowSpaceImage{d.cartesian, d.logdet, d.valid & d.chirality_ok};
    };
    history = train(*model, target, &y_rows, cfg.train, &map);
    trained = true;
  }
  const MolecularFlowSpace& use_space = *space;
  if (model->base() == nullptr || !torch::equal(model->base()->torsion_mask(), use_space.torsion_mask()))
    throw ConfigError((o.model.empty() ? pot.path.string() : o.model.string()) +
                      ": molecular model without a torus base on the torsion columns (saved by an older "
                      "version?); retrain it");

  // Sample in y, decode, weight.
  const double t_sample = wall_seconds();
  const GeneratedSamples s = model->sample(cfg.samples, o.seed);
  const torch::Tensor ys = to_tensor(s.x);
  const auto dec = use_space.from_flow(ys);
  torch::Tensor lq_y = torch::empty({s.log_q.size()}, torch::kFloat64);
  std::copy(s.log_q.data(), s.log_q.data() + s.log_q.size(), lq_y.data_ptr<double>());
  const torch::Tensor lq_cart = use_space.log_q_cartesian(lq_y, dec);
  const RowMatrix x = to_matrix(dec.cartesian);
  EnergyCounters counters;
  Eigen::VectorXd u = target_energy_values(x, target, &counters);
  const auto keep = dec.valid & dec.chirality_ok;
  Eigen::VectorXd log_q = to_vector(lq_cart);
  const Eigen::VectorXd keep_v = to_vector(keep.to(torch::kFloat64));
  std::size_t non_finite_u = 0;
  Eigen::VectorXd lw(u.size());
  std::size_t dropped = 0;
  for (Eigen::Index i = 0; i < u.size(); ++i) {
    if (!std::isfinite(u[i])) ++non_finite_u;
    if (keep_v[i] == 0.0) ++dropped;
    lw[i] = keep_v[i] != 0.0 && std::isfinite(u[i]) && std::isfinite(log_q[i])
                ? -u[i] - log_q[i]
                : -std::numeric_limits<double>::infinity();
    if (!std::isfinite(log_q[i])) log_q[i] = std::numeric_limits<double>::quiet_NaN();
  }
  summary["molecular_generator"] = {
      {"coordinates", "internal (alanine dipeptide Z-matrix), torsions periodic (flow on R^41 x T^19)"},
      {"base", model->base()->kind()},
      {"base_components_per_torsion", base_components_of_torsions(*model->base())},
      {"base_conditional", conditional_summary(model->base()->conditional())},
      {"base_fit_seconds", base_fit_seconds},
      {"flow_dim", use_space.dim()},
      {"data", data_info},
      {"zero_weight_domain_chirality", dropped},
      {"wrong_chirality", (~dec.chirality_ok).sum().item<int64_t>()},
      {"outside_domain", (~dec.valid).sum().item<int64_t>()}};
  summary["samples"] = cfg.samples;
  summary["sampling_seconds"] = wall_seconds() - t_sample;
  summary["importance"] = generator_importance_report(lw, non_finite_u, target);
  if (reference) {
    auto& r = summary["ramachandran_vs_reference"];
    r = ramachandran_vs_reference(*target.topology(), x, &lw, *reference, cfg.reference_dihedrals.string());
    // Record the training data: frames of the reference run itself make the comparison in-sample.
    r["training_data"] = data_info.is_object() ? data_info.value("source", std::string()) : std::string("(loaded model)");
  }
  if (trained)
    summary["training"] = {{"options", cfg.train.to_json()},
                           {"iterations", history.iterations_done},
                           {"energy_evaluations", history.energy_evaluations},
                           {"invalid_reverse_kl_draws", history.invalid},
                           {"non_finite_energies", history.non_finite},
                           {"cut_energies", history.cut},
                           {"wall_seconds", history.wall_seconds},
                           {"history", history.to_json()}};
  nlohmann::json meta = {{"potential", o.potential.string()}, {"seed", o.seed},
                         {"molecular_space", use_space.to_json()}};
  model->save(run.path("model.pt"), meta);
  if (trained) plot_training(run, history, notes);

  return write_generator_run(run, o, pot, cfg, *model, trained ? &history : nullptr, counters,
                             {&x, &u, &log_q, &lw}, summary, notes, t_start);
}

}  // namespace

nlohmann::json run_bg_sample(const BgSampleOptions& o) {
  o.validate();
  set_generator_threads(o.threads);
  if (!o.evaluate.empty()) return run_evaluate(o);

  const double t_start = wall_seconds();
  Potential pot = load_potential(o.potential);
  const Target& target = *pot.target;
  GeneratorConfig cfg = read_generator_config(pot, o, !o.data.empty());

  RowMatrix data;
  const bool have_data = !cfg.data.empty();

  RunDirectory run(o.out);  // fails early when `out` cannot be written
  nlohmann::json summary = {{"tool", "bg-sample"},
                            {"target", target.describe()},
                            {"seed", o.seed},
                            {"threads", num_threads()}};
  if (target.topology() != nullptr) return run_molecular(o, pot, cfg, run, summary, t_start);
  if (have_data) data = read_npy_matrix(cfg.data, target.dim());
  nlohmann::json notes = nlohmann::json::array();
  const fs::path checkpoint = fs::path(o.out.string() + ".checkpoint.pt");

  std::optional<BoltzmannGenerator> model;
  TrainHistory history;
  bool trained = false;
  if (!o.model.empty()) {
    nlohmann::json meta;
    model.emplace(BoltzmannGenerator::load(o.model, &meta));
    if (model->dim() != static_cast<int>(target.dim()))
      throw ConfigError(o.model.string() + ": model dim " + std::to_string(model->dim()) +
                        " does not match target dim " + std::to_string(target.dim()));
    summary["model"] = o.model.string();
    summary["model_metadata"] = meta;
  } else {
    cfg.train.seed = o.seed;
    cfg.train.progress = o.progress;
    cfg.train.checkpoint = checkpoint;
    if (cfg.train.checkpoint_every == 0) cfg.train.checkpoint_every = std::max(1, cfg.train.iterations / 10);
    cfg.train.resume = o.resume;
    cfg.train.validate(have_data);
    if (cfg.base == "gaussian_mixture" && !have_data)
      throw ConfigError(pot.path.string() + ": generator.base \"gaussian_mixture\" is fitted to data, but no data "
                        "were given (--data or generator.data)");
    model.emplace(cfg.model, o.seed);
    if (have_data) {
      model->standardize_from_data(data);
      if (cfg.base == "gaussian_mixture")
        model->fit_gaussian_mixture_base(data, cfg.base_components, cfg.base_defensive);
    } else if (cfg.scale || cfg.shift) {
      model->set_standardization(cfg.shift.value_or(Eigen::VectorXd::Zero(target.dim())),
                                 cfg.scale.value_or(Eigen::VectorXd::Ones(target.dim())));
    }
    history = train(*model, target, have_data ? &data : nullptr, cfg.train);
    trained = true;
    summary["training"] = {{"options", cfg.train.to_json()},
                           {"data", have_data ? cfg.data.string() : ""},
                           {"data_count", have_data ? data.rows() : 0},
                           {"iterations", history.iterations_done},
                           {"energy_evaluations", history.energy_evaluations},
                           {"non_finite_energies", history.non_finite},
                           {"cut_energies", history.cut},
                           {"wall_seconds", history.wall_seconds},
                           {"history", history.to_json()}};
  }
  summary["generator"] = model->options().to_json();
  summary["base"] = model->base() != nullptr ? model->base()->kind() : std::string("standard_normal");

  // Sampling and importance weights.
  const double t_sample = wall_seconds();
  const GeneratedSamples s = model->sample(cfg.samples, o.seed);
  EnergyCounters counters;
  const Eigen::VectorXd u = target_energy_values(s.x, target, &counters);
  std::size_t non_finite_u = 0;
  const Eigen::VectorXd lw = log_importance_weights(u, s.log_q, &non_finite_u);
  summary["samples"] = cfg.samples;
  summary["sampling_seconds"] = wall_seconds() - t_sample;
  summary["sampling_energy_evaluations"] = counters.evaluations.load();
  summary["non_finite_energies"] = counters.non_finite.load();
  summary["importance"] = generator_importance_report(lw, non_finite_u, target);

  nlohmann::json meta = {{"potential", o.potential.string()}, {"seed", o.seed}};
  if (trained) meta["training"] = {{"iterations", history.iterations_done},
                                   {"energy_evaluations", history.energy_evaluations},
                                   {"preset", cfg.train.preset}};
  model->save(run.path("model.pt"), meta);
  summary["model_file"] = (o.out / "model.pt").string();
  if (trained) plot_training(run, history, notes);
  if (target.dim() == 2 && target.particle_layout().first == 0) plot_density_2d(run, target, *model, s.x, notes);

  return write_generator_run(run, o, pot, cfg, *model, trained ? &history : nullptr, counters,
                             {&s.x, &u, &s.log_q, &lw}, summary, notes, t_start);
}

}  // namespace boltzlab::generators
