// Acceptance benchmark of the OT-Boltzmann generator on the particle systems DW4 and
// LJ13 (Köhler, Klein & Noé, "Equivariant flows: exact likelihood generative learning
// for symmetric densities", ICML 2020): potentials/dw4.json (4 particles in 2-D,
// 6 degrees of freedom after removing the centre of mass) and potentials/lj13.json
// (13 particles in 3-D, 36 degrees of freedom).
//
//   bench_bg_particles --potential potentials/dw4.json [--preset ot-bg] [--compare] ...
//
// What it does and what every reported number means:
//  1. Reference MCMC ("mcmc"): MALA (default; exact for any step size) or BAOAB
//     (lib/boltzlab/flows/langevin.hpp), --chains independent chains from the potential
//     file's sampler "init" (lattice + jitter), --mcmc-warmup burn-in steps (MALA adapts
//     its step size there), then --mcmc-steps steps keeping a frame every --mcmc-thin
//     steps. The first (1 − --heldout-fraction) of the chains form the training set
//     (forward-KL data when λ > 0, and the standardization scale), the remaining chains
//     the held-out set: disjoint chains, so held-out frames are independent of training.
//     Reported: acceptance / step size (flow statistics), energy evaluations, and the
//     rank-normalized split R̂ and bulk ESS of u over the chains (estimators/mcmc.hpp;
//     Vehtari et al. 2021) as a check that the chains mixed.
//  2. Training: lib/boltzlab/generators/trainer.hpp with the preset (ot-bg, bg, ot-flow,
//     cnf) and the flags; wall-clock and process CPU seconds (getrusage, all threads) of
//     the training call, and the target energy(+force) evaluations it made. With
//     --t-high > 1 or --refine-rungs > 0 the training is sample-free instead
//     (generators/annealed_training.hpp): reverse KL at τ₀, the importance-weighted ladder
//     down to τ = 1, then the refinement rungs; the MCMC frames then serve the evaluation
//     alone (--flow-scale and, with the pair term, --pair-range must be given), and the
//     energy evaluations count every rung's draws.
//  3. Importance sampling on --samples (≥ 1e5) fresh generator draws, log w = −u − log q:
//     "ess_fraction" = Kish ESS (Σw)²/Σw² divided by the number of draws;
//     "ess_fraction_clipped" = the same after clipping the largest 1e-4 fraction of
//     log-weights (as in Midgley et al. 2023, FAB); "psis_khat" = Pareto k̂ of the weight
//     tail (Vehtari et al. 2024). Draws with non-finite u have weight 0 and are counted.
//  4. "nll": −(1/n) Σ log q(x_i) over the held-out MCMC frames, with log q the density of
//     generator.hpp on the centre-of-mass-free subspace in orthonormal coordinates
//     (dimension (n−1)·s: 6 for DW4, 36 for LJ13; the frames are centred first). Two
//     standard errors: "nll_se_iid" = sd/√n, and "nll_se" from the per-chain means
//     (sd of chain means / √chains), which accounts for correlation along a chain.
//     The flow is not permutation equivariant, so q may put little mass on permuted
//     copies of its modes; the NLL (unlike ESS and the energy-W2) sees that.
//     --symmetrize evaluates q_G = (1/|G|) Σ_g q(g x) instead (generators/symmetrize.hpp:
//     the group of particle permutations and a reflection): the draws of items 3–5 are
//     those of q_G and log q their exact log q_G, the NLL is under q_G.
//  5. Energy-W2 (as used by e.g. iDEM, Akhound-Sadegh et al. 2024, "Iterated denoising
//     energy matching for sampling from Boltzmann densities"): the 2-Wasserstein distance
//     between the 1-D distributions of the reduced energy u under two sample sets,
//     computed exactly from the quantile functions (estimators/wasserstein.hpp).
//     "energy_w2" = between the generator draws weighted by the normalized importance
//     weights w̄_i and the held-out MCMC frames (equal weights); "energy_w2_unweighted"
//     = with the raw generator draws; "energy_w2_mcmc_floor" = between the training
//     and the held-out MCMC frames (the noise level of the reference itself).
//     Also "mean_energy_snis" (Σ w̄_i u_i ± se) beside the held-out MCMC mean.
//  6. Path length and NFE (the OT-BG vs canonical-BG comparison): the mean
//     transport cost ∫½|∇Φ|² dt (= ½ ∫|v|² dt, the kinetic energy of the path) on 2048
//     generated trajectories; for RK4 with k steps (NFE = 4k evaluations of ∇Φ) the mean
//     |Δx| and |Δlog q| against 4·max(training, sampling steps) steps and the Kish ESS on those 2048
//     draws; "nfe_for_dlogq_1e-2" = the smallest NFE in that table whose mean |Δlog q|
//     is below 0.01. With --compare the presets ot-bg and bg are trained with identical
//     settings on the same data in one invocation and printed side by side with the
//     ratio bg / ot-bg.
// All float64; the JSON (--json FILE) holds every number, null + reason when missing.
#include <malloc.h>

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/estimators/mcmc.hpp"
#include "boltzlab/estimators/wasserstein.hpp"
#include "boltzlab/flows/flow.hpp"
#include "boltzlab/app/relax_run.hpp"
#include "boltzlab/app/bg_run.hpp"
#include "boltzlab/generators/annealed_training.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/model_file.hpp"
#include "boltzlab/generators/symmetrize.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/targets/registry.hpp"

namespace bg = boltzlab::generators;
using boltzlab::RowMatrix;

namespace {

/// Trajectories of the path-length / NFE table (an indicator: the table's ESS column is
/// computed on these few draws, the reported ESS on --samples draws).
constexpr int kPathDraws = 2048;

using boltzlab::cpu_seconds;

struct Settings {
  std::string sampler = "mala";
  int chains = 1000, warmup = 2000, steps = 20000, thin = 200;
  double step_size = 0.0, heldout_fraction = 0.2;
  std::string preset = "ot-bg";
  double lambda = -1, alpha_l = -1, alpha_hjb = -1, lr = 5e-3;
  int pair_basis = 0, pair_time_basis = 4;  ///< pair term of Φ (ot_potential.hpp); 0: none
  int pair_channels = 0;                    ///< many-body channels of the pair term
  double pair_range = 0.0;                  ///< its bump range; 0: 1.5 × the largest training distance
  bool no_network = false;                  ///< Φ = pair term only (fully equivariant)
  int fkl_warmup = 0;                       ///< first iterations with λ = 1 (trainer warm-up)
  std::string load_path, save_path;         ///< start from / save the model (single preset only)
  double flow_scale = 0.0;  ///< isotropic flow-space scale; 0: rms of the centred MCMC training frames
  /// Sample-free annealed training (generators/annealed_training.hpp): reverse KL at τ₀ =
  /// t_high, the ladder, then refine_rungs at τ = 1. Enabled when t_high > 1 or refine_rungs > 0.
  bg::AnnealingOptions annealing;
  /// Evaluate the symmetrized generator q_G (generators/symmetrize.hpp): draws moved by a
  /// uniform permutation/reflection, log q_G a mixture over the group, NLL under q_G.
  bool symmetrize = false;
  int iterations = 1000, batch = 512, width = 32, layers = 2, steps_rk = 8, sample_steps = 0, threads = 2;
  long long samples = 100000;
  std::uint64_t seed = 1;
};

/// Reference MCMC frames split by chain into training and held-out sets.
struct Reference {
  RowMatrix train, held;
  Eigen::VectorXd u_train, u_held;
  int held_chains = 0, frames = 0;
  nlohmann::json info;
};

/// The largest distance between two particles over at most 10⁴ evenly spaced frames (rows
/// of n·s coordinates).
double max_pair_distance(const RowMatrix& frames, std::int64_t n, std::int64_t s) {
  const Eigen::Index stride = std::max<Eigen::Index>(1, frames.rows() / 10000);
  double best = 0.0;
  for (Eigen::Index f = 0; f < frames.rows(); f += stride)
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = i + 1; j < n; ++j)
        best = std::max(best, (frames.block(f, i * s, 1, s) - frames.block(f, j * s, 1, s)).norm());
  return best;
}

Reference run_reference(const boltzlab::Potential& pot, const Settings& s) {
  const boltzlab::Target& target = *pot.target;
  boltzlab::InitSpec init;
  if (pot.sampler.is_object() && pot.sampler.contains("init")) {
    const auto& j = pot.sampler["init"];
    init.kind = j.value("kind", init.kind);
    init.scale = j.value("scale", init.scale);
    init.mean = j.value("mean", init.mean);
    init.spacing = j.value("spacing", init.spacing);
    init.jitter = j.value("jitter", init.jitter);
  }
  init.validate("sampler.init");
  boltzlab::Ensemble ens = boltzlab::make_initial_ensemble(target, static_cast<std::size_t>(s.chains), init, s.seed);
  boltzlab::FlowOptions fo;
  fo.steps = static_cast<std::size_t>(s.steps);
  fo.warmup = static_cast<std::size_t>(s.warmup);
  fo.thin = static_cast<std::size_t>(s.thin);
  fo.max_frames = static_cast<std::size_t>(s.steps / s.thin + 1);
  fo.step_size = s.step_size;
  fo.seed = s.seed + 1000;
  fo.monitor_every = 100;
  nlohmann::json params = nlohmann::json::object();
  if (s.sampler == "baoab" && pot.sampler.is_object() && pot.sampler.contains("params") &&
      pot.sampler["params"].contains("baoab"))
    params = pot.sampler["params"]["baoab"];
  if (s.sampler == "baoab" && s.step_size <= 0 && pot.sampler.is_object() && pot.sampler.contains("step_size"))
    fo.step_size = pot.sampler["step_size"].get<double>();
  fo.validate();
  auto flow = boltzlab::make_flow(s.sampler, params, "--mcmc-sampler");
  const double w0 = boltzlab::wall_seconds(), c0 = cpu_seconds();
  const boltzlab::FlowResult res = flow->run(target, ens, fo);
  const double wall = boltzlab::wall_seconds() - w0, cpu = cpu_seconds() - c0;

  Reference ref;
  const int n_frames = static_cast<int>(res.frames.size());
  if (n_frames < 2) throw boltzlab::ConfigError("--mcmc-steps/--mcmc-thin give fewer than 2 frames");
  const int held_chains = std::max(1, static_cast<int>(std::lround(s.heldout_fraction * s.chains)));
  const int train_chains = s.chains - held_chains;
  if (train_chains < 1) throw boltzlab::ConfigError("--heldout-fraction leaves no training chain");
  const int d = static_cast<int>(target.dim());
  ref.train.resize(static_cast<Eigen::Index>(train_chains) * n_frames, d);
  ref.held.resize(static_cast<Eigen::Index>(held_chains) * n_frames, d);
  // Row order: chain-major (all frames of chain c together) so per-chain blocks are contiguous.
  for (int c = 0; c < s.chains; ++c)
    for (int f = 0; f < n_frames; ++f) {
      const auto row = res.frames[static_cast<std::size_t>(f)].row(c);
      if (c < train_chains)
        ref.train.row(static_cast<Eigen::Index>(c) * n_frames + f) = row;
      else
        ref.held.row(static_cast<Eigen::Index>(c - train_chains) * n_frames + f) = row;
    }
  target.evaluate_batch(ref.train, ref.u_train, nullptr);
  target.evaluate_batch(ref.held, ref.u_held, nullptr);
  ref.held_chains = held_chains;
  ref.frames = n_frames;

  // Mixing check on u: chains × frames over all chains.
  RowMatrix uc(s.chains, n_frames);
  for (int c = 0; c < s.chains; ++c)
    for (int f = 0; f < n_frames; ++f)
      uc(c, f) = c < train_chains ? ref.u_train[static_cast<Eigen::Index>(c) * n_frames + f]
                                  : ref.u_held[static_cast<Eigen::Index>(c - train_chains) * n_frames + f];
  const boltzlab::ChainDiagnostics diag = boltzlab::chain_diagnostics(uc);
  nlohmann::json& j = ref.info;
  j["sampler"] = s.sampler;
  j["chains"] = s.chains;
  j["warmup"] = s.warmup;
  j["steps"] = s.steps;
  j["thin"] = s.thin;
  j["frames_per_chain"] = n_frames;
  j["train_frames"] = ref.train.rows();
  j["heldout_frames"] = ref.held.rows();
  j["heldout_chains"] = held_chains;
  j["statistics"] = res.statistics;
  j["energy_evaluations"] = res.energy_evaluations;
  j["non_finite"] = res.non_finite;
  j["wall_seconds"] = wall;
  j["cpu_seconds"] = cpu;
  boltzlab::put_quantity(j, "u_rhat", diag.rhat);
  boltzlab::put_quantity(j, "u_ess_bulk", diag.ess_bulk);
  j["mean_energy_train"] = ref.u_train.mean();
  j["mean_energy_heldout"] = ref.u_held.mean();
  j["energy_w2_mcmc_floor"] = boltzlab::wasserstein2_1d(ref.u_train, ref.u_held).to_json();
  return ref;
}

nlohmann::json train_and_evaluate(const boltzlab::Target& target, const Reference& ref, const Settings& s,
                                  const std::string& preset) {
  const int d = static_cast<int>(target.dim());
  bg::GeneratorOptions o;
  o.potential.dim = d;
  o.potential.width = s.width;
  o.potential.layers = s.layers;
  const auto [np, sd] = target.particle_layout();
  o.potential.n_particles = static_cast<int>(np);
  o.potential.spatial_dim = static_cast<int>(sd);
  o.steps = s.steps_rk;
  o.sample_steps = s.sample_steps > 0 ? s.sample_steps : s.steps_rk;
  // Flow-space scale: fixed, or the isotropic rms of the centred MCMC training frames
  // (what standardize_from_data sets).
  double scale = s.flow_scale;
  if (!(scale > 0.0)) {
    bg::BoltzmannGenerator probe(o, s.seed);
    probe.standardize_from_data(ref.train);
    scale = probe.scale()[0];
  }
  o.potential.pair_basis = s.pair_basis;
  o.potential.pair_time_basis = s.pair_time_basis;
  o.potential.pair_channels = s.pair_channels;
  o.potential.network = !s.no_network;
  if (s.pair_basis > 0)
    o.potential.pair_range = s.pair_range > 0.0 ? s.pair_range : 1.5 * max_pair_distance(ref.train, np, sd) / scale;
  bg::BoltzmannGenerator model(o, s.seed);
  model.set_standardization(Eigen::VectorXd::Zero(d), Eigen::VectorXd::Constant(d, scale));
  if (!s.load_path.empty()) {  // parameters, scale and architecture of the saved model
    model = bg::BoltzmannGenerator::load(s.load_path);
    if (model.dim() != d) throw boltzlab::ConfigError(s.load_path + ": the model has dim " +
                                                      std::to_string(model.dim()) + ", the target " + std::to_string(d));
    model.set_integration_steps(o.steps, o.sample_steps);
    o = model.options();
  }

  bg::TrainOptions t;
  t.preset = preset;
  t.weights = bg::LossWeights::preset(preset, true);
  if (preset == "bg" || preset == "ot-bg") t.weights.lambda = 0.0;  // default: energy only
  if (s.lambda >= 0) t.weights.lambda = s.lambda;
  if (s.alpha_l >= 0 && preset != "bg" && preset != "cnf") t.weights.alpha_transport = s.alpha_l;
  if (s.alpha_hjb >= 0 && preset != "bg" && preset != "cnf") t.weights.alpha_hjb = s.alpha_hjb;
  t.iterations = s.iterations;
  t.batch_size = s.batch;
  t.learning_rate = s.lr;
  t.eval_every = std::max(1, s.iterations / 10);
  t.eval_samples = 2048;
  t.seed = s.seed;
  t.warmup_iterations = s.fkl_warmup;
  const bool use_data = t.weights.lambda > 0 || s.fkl_warmup > 0;
  const double w0 = boltzlab::wall_seconds(), c0 = cpu_seconds();
  nlohmann::json annealing_record;
  bg::TrainHistory h;
  if (s.annealing.enabled) {  // energy only: the MCMC frames serve the evaluation alone
    const bg::AnnealedHistory ah = bg::train_annealed(model, target, t, s.annealing);
    annealing_record = ah.to_json();
    h = ah.combined();
  } else {
    h = bg::train(model, target, use_data ? &ref.train : nullptr, t);
  }
  const double train_wall = boltzlab::wall_seconds() - w0, train_cpu = cpu_seconds() - c0;

  if (!s.save_path.empty()) model.save(s.save_path, {{"preset", preset}, {"seed", s.seed}});

  nlohmann::json r;
  r["preset"] = preset;
  r["loaded_from"] = s.load_path;
  r["warmup_iterations"] = s.fkl_warmup;
  r["weights"] = t.weights.to_json();
  r["model"] = o.to_json();
  r["scale"] = model.scale()[0];
  r["iterations"] = h.iterations_done;
  r["batch"] = s.batch;
  r["learning_rate"] = s.lr;
  r["train_wall_seconds"] = train_wall;
  r["train_cpu_seconds"] = train_cpu;
  r["train_energy_evaluations"] = h.energy_evaluations;
  r["train_non_finite"] = h.non_finite;
  r["train_forward_kl_data"] = use_data ? ref.train.rows() : 0;
  r["history_eval_ess"] = h.eval_ess;
  r["final_loss"] = h.loss.empty() ? 0.0 : h.loss.back();
  if (s.annealing.enabled) {
    r["annealing_options"] = s.annealing.to_json();
    r["annealing"] = annealing_record;
  }

  // Importance sampling on fresh draws (a seed not used in training).
  const double e0 = boltzlab::wall_seconds(), ec0 = cpu_seconds();
  std::optional<bg::ParticleSymmetry> group;
  if (s.symmetrize) group.emplace(static_cast<int>(np), static_cast<int>(sd), true);
  const bg::GeneratedSamples gs = group ? bg::symmetrized_sample(model, *group, s.samples, s.seed + 1000003)
                                        : model.sample(s.samples, s.seed + 1000003);
  r["symmetrized_group_size"] = group ? nlohmann::json(group->size()) : nlohmann::json(nullptr);
  bg::EnergyCounters counters;
  const Eigen::VectorXd u = bg::target_energy_values(gs.x, target, &counters);
  std::size_t non_finite_u = 0;
  const Eigen::VectorXd lw = boltzlab::log_importance_weights(u, gs.log_q, &non_finite_u);
  r["importance"] = bg::generator_importance_report(lw, non_finite_u, target);
  r["samples"] = s.samples;
  r["sample_energy_evaluations"] = counters.evaluations.load();

  const bool any_weight = lw.maxCoeff() > -std::numeric_limits<double>::infinity();
  if (any_weight) {
    const Eigen::VectorXd wbar = boltzlab::normalized_weights(lw);
    const auto w2 = boltzlab::wasserstein2_1d(u, wbar, ref.u_held, Eigen::VectorXd::Ones(ref.u_held.size()));
    r["energy_w2_detail"] = w2.to_json();
    boltzlab::put_quantity(r, "energy_w2", w2.distance);
    // SNIS mean energy (zero-weight draws, u = +inf, are ignored by snis_estimate).
    const boltzlab::SnisEstimate m = boltzlab::snis_estimate(lw, u);
    r["mean_energy_snis"] = {{"mean", m.mean}, {"se", m.standard_error}};
  } else {
    r["energy_w2"] = nullptr;
    r["energy_w2_reason"] = "no finite importance weight";
  }
  const auto w2u = boltzlab::wasserstein2_1d(u, ref.u_held);
  r["energy_w2_unweighted_detail"] = w2u.to_json();
  boltzlab::put_quantity(r, "energy_w2_unweighted", w2u.distance);
  {
    double su = 0;
    std::size_t k = 0;
    for (Eigen::Index i = 0; i < u.size(); ++i)
      if (std::isfinite(u[i])) su += u[i], ++k;
    r["mean_energy_unweighted"] = k ? su / static_cast<double>(k) : std::numeric_limits<double>::quiet_NaN();
  }

  // NLL of the held-out frames, with a per-chain standard error.
  const Eigen::VectorXd lq =
      group ? bg::symmetrized_log_q([&model](const RowMatrix& y) { return model.log_q(y); }, *group, ref.held)
            : model.log_q(ref.held);
  const Eigen::Index n = lq.size();
  const double nll = -lq.mean();
  const double var = (lq.array() + nll).square().sum() / static_cast<double>(n - 1);
  Eigen::VectorXd chain_nll(ref.held_chains);
  for (int c = 0; c < ref.held_chains; ++c)
    chain_nll[c] = -lq.segment(static_cast<Eigen::Index>(c) * ref.frames, ref.frames).mean();
  r["nll"] = nll;
  r["nll_se_iid"] = std::sqrt(var / static_cast<double>(n));
  if (ref.held_chains > 1) {
    const double cv = (chain_nll.array() - chain_nll.mean()).square().sum() / (ref.held_chains - 1.0);
    r["nll_se"] = std::sqrt(cv / ref.held_chains);
  } else {
    r["nll_se"] = nullptr;
    r["nll_se_reason"] = "one held-out chain";
  }
  r["nll_dof"] = model.degrees_of_freedom();
  r["nll_heldout_frames"] = n;
  r["eval_wall_seconds"] = boltzlab::wall_seconds() - e0;
  r["eval_cpu_seconds"] = cpu_seconds() - ec0;

  // Path length and accuracy against NFE on kPathDraws trajectories.
  {
    torch::NoGradGuard ng;
    const auto z = model.base_sample(kPathDraws, s.seed + 77);
    const int ref_steps = 4 * std::max(s.steps_rk, s.sample_steps);
    const bg::FlowBatch fine = model.forward(z, ref_steps, true);
    r["transport_cost"] = fine.transport.mean().item<double>();
    r["hjb_residual"] = fine.hjb.mean().item<double>();
    nlohmann::json acc = nlohmann::json::array();
    nlohmann::json nfe_ok = nullptr;
    const std::vector<int> grid{1, 2, 3, 4, 6, 8, 12, 16};
    for (int st : grid) {
      if (st >= ref_steps) break;
      const bg::FlowBatch f = model.forward(z, st, false);
      const double dx = (f.x - fine.x).norm(2, {1}).mean().item<double>();
      const double dl = (f.log_q - fine.log_q).abs().mean().item<double>();
      const Eigen::VectorXd ue = bg::target_energy_values(bg::to_matrix(f.x), target, nullptr);
      const Eigen::VectorXd lwe = boltzlab::log_importance_weights(ue, bg::to_vector(f.log_q));
      const bool any = lwe.maxCoeff() > -std::numeric_limits<double>::infinity();
      acc.push_back({{"steps", st}, {"nfe", 4 * st}, {"mean_dx", dx}, {"mean_dlogq", dl},
                     {"ess_fraction_path_draws", any ? boltzlab::kish_ess(lwe) / kPathDraws : 0.0}});
      if (nfe_ok.is_null() && dl < 1e-2) nfe_ok = 4 * st;
    }
    r["integration"] = acc;
    r["integration_reference_steps"] = ref_steps;
    r["nfe_for_dlogq_1e-2"] = nfe_ok;
  }
  boltzlab::sanitize_non_finite(r);
  return r;
}

std::string num(const nlohmann::json& j, const char* fmt = "%.4g") {
  if (!j.is_number()) return "null";
  char b[64];
  std::snprintf(b, sizeof b, fmt, j.get<double>());
  return b;
}

void print_run(const nlohmann::json& r) {
  const auto& imp = r["importance"];
  std::printf(
      "%-7s train %.0f s wall, %.0f s CPU, %s energy evals | ESS %s (clipped %s), k̂ %s | NLL %s ± %s "
      "(iid se %s) | energy-W2 %s (unweighted %s) | path length %s, NFE(|Δlog q|<1e-2) %s\n",
      r["preset"].get<std::string>().c_str(), r["train_wall_seconds"].get<double>(),
      r["train_cpu_seconds"].get<double>(), num(r["train_energy_evaluations"], "%.3g").c_str(),
      num(imp.value("ess_fraction", nlohmann::json())).c_str(),
      num(imp.value("ess_fraction_clipped", nlohmann::json())).c_str(),
      num(imp.value("psis_khat", nlohmann::json())).c_str(), num(r["nll"]).c_str(), num(r["nll_se"]).c_str(),
      num(r["nll_se_iid"]).c_str(), num(r["energy_w2"]).c_str(), num(r["energy_w2_unweighted"]).c_str(),
      num(r["transport_cost"]).c_str(), num(r["nfe_for_dlogq_1e-2"], "%.0f").c_str());
}

}  // namespace

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  CLI::App app{"bench_bg_particles: DW4 / LJ13 acceptance of the OT-Boltzmann generator"};
  Settings s;
  std::string potential, json_out;
  bool compare = false;
  app.add_option("--potential", potential)->required();
  app.add_option("--mcmc-sampler", s.sampler, "mala (default) or baoab")->check(CLI::IsMember({"mala", "baoab"}));
  app.add_option("--chains", s.chains, "independent MCMC chains")->check(CLI::Range(2, 1000000));
  app.add_option("--mcmc-warmup", s.warmup)->check(CLI::NonNegativeNumber);
  app.add_option("--mcmc-steps", s.steps)->check(CLI::PositiveNumber);
  app.add_option("--mcmc-thin", s.thin)->check(CLI::PositiveNumber);
  app.add_option("--mcmc-step-size", s.step_size, "initial (MALA) or fixed (BAOAB) step; 0: default");
  app.add_option("--heldout-fraction", s.heldout_fraction)->check(CLI::Range(0.0, 1.0));
  app.add_option("--preset", s.preset)->check(CLI::IsMember({"ot-bg", "bg", "ot-flow", "cnf"}));
  app.add_flag("--compare", compare, "train ot-bg and bg with identical settings, side by side");
  app.add_option("--lambda", s.lambda, "weight of the forward KL on the MCMC training frames (bg/ot-bg default 0)");
  app.add_option("--alpha-transport", s.alpha_l);
  app.add_option("--alpha-hjb", s.alpha_hjb);
  app.add_option("--iterations", s.iterations, "training steps (0 with --load: evaluate the saved model)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--batch", s.batch)->check(CLI::PositiveNumber);
  app.add_option("--lr", s.lr)->check(CLI::PositiveNumber);
  app.add_option("--width", s.width)->check(CLI::PositiveNumber);
  app.add_option("--layers", s.layers)->check(CLI::Range(2, 64));
  app.add_option("--pair-basis", s.pair_basis, "K Gaussian bumps of the equivariant pair term of Phi (0: none)")
      ->check(CLI::Range(0, 256));
  app.add_option("--pair-time-basis", s.pair_time_basis, "powers t^0..t^(L-1) of the pair term")
      ->check(CLI::Range(1, 16));
  app.add_option("--pair-channels", s.pair_channels, "many-body (embedded-atom) channels of the pair term")
      ->check(CLI::Range(0, 256));
  app.add_option("--pair-range", s.pair_range,
                 "largest bump centre in flow-space units (0: 1.5 x the largest training-frame distance)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--warmup", s.fkl_warmup, "first iterations with lambda = 1 (forward KL only)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--load", s.load_path, "start from this saved model (architecture flags are then ignored)");
  app.add_option("--save", s.save_path, "save the trained model here (not with --compare)");
  app.add_flag("--no-network", s.no_network, "Phi = the pair term only (permutation- and E(n)-equivariant flow)");
  app.add_option("--steps", s.steps_rk, "RK4 steps of training (and of sampling unless --sample-steps)")
      ->check(CLI::PositiveNumber);
  app.add_option("--sample-steps", s.sample_steps, "RK4 steps for sampling and log q (0: --steps)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--threads", s.threads)->check(CLI::NonNegativeNumber);
  app.add_option("--samples", s.samples, "generator draws for ESS / energy-W2 (>= 1e5 for reported figures)")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", s.seed);
  app.add_option("--flow-scale", s.flow_scale,
                 "isotropic flow-space scale x = scale * y (0: rms of the centred MCMC training frames)")
      ->check(CLI::NonNegativeNumber);
  bg::AnnealingOptions& a = s.annealing;
  double t_high = 1.0;
  std::string smoothing = "psis";
  app.add_option("--t-high", t_high, "sample-free annealed training: stage-1 reverse KL at tau_0 = T_high / T")
      ->check(CLI::Range(1.0, 1e6));
  app.add_option("--rungs", a.rungs, "annealing rungs below tau_0 (0 with --t-high 1)")->check(CLI::NonNegativeNumber);
  app.add_option("--samples-per-rung", a.samples_per_rung)->check(CLI::Range(2, 100000000));
  app.add_option("--steps-per-rung", a.steps_per_rung)->check(CLI::PositiveNumber);
  app.add_option("--refine-rungs", a.refine_rungs, "rungs of weighted forward KL at tau 1 after the ladder")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--refine-steps", a.refine_steps_per_rung, "steps per refinement rung (0: --steps-per-rung)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--rung-batch", a.batch_size, "rows per rung step (0: --batch)")->check(CLI::NonNegativeNumber);
  app.add_option("--rung-lr", a.learning_rate, "Adam's rate on the rungs (0: --lr)")->check(CLI::NonNegativeNumber);
  app.add_option("--smoothing", smoothing)->check(CLI::IsMember({"none", "truncate", "psis"}));
  app.add_flag("--symmetrize", s.symmetrize,
               "evaluate q_G, the generator averaged over particle permutations and a reflection");
  app.add_option("--json", json_out, "also write the result JSON here");
  CLI11_PARSE(app, argc, argv);
  a.enabled = t_high > 1.0 || a.refine_rungs > 0;
  a.t_high = t_high;
  if (t_high == 1.0) a.rungs = 0;
  a.smoothing = smoothing == "none" ? bg::WeightSmoothing::kNone
                : smoothing == "truncate" ? bg::WeightSmoothing::kTruncate : bg::WeightSmoothing::kPsis;

  try {
    if (s.iterations == 0 && s.load_path.empty())
      throw boltzlab::ConfigError("--iterations 0 needs --load (a model to evaluate)");
    if (compare && (!s.save_path.empty() || !s.load_path.empty()))
      throw boltzlab::ConfigError("--save / --load train one preset: drop --compare");
    if (!s.save_path.empty() && !json_out.empty() &&
        std::filesystem::absolute(json_out) == std::filesystem::absolute(bg::model_record_path(s.save_path)))
      throw boltzlab::ConfigError("--json " + json_out + " is the record of the --save model; name another file");
    if (a.enabled) {
      a.validate();
      // Sample-free: nothing of the MCMC frames may reach the model.
      if (s.lambda > 0 || s.fkl_warmup > 0)
        throw boltzlab::ConfigError("--t-high / --refine-rungs train from the energy alone: drop --lambda and --warmup");
      if (!(s.flow_scale > 0.0))
        throw boltzlab::ConfigError("--t-high / --refine-rungs need --flow-scale (the default scale comes from the MCMC frames)");
      if (s.pair_basis > 0 && !(s.pair_range > 0.0))
        throw boltzlab::ConfigError("--t-high / --refine-rungs with --pair-basis need --pair-range (the default comes from the MCMC frames)");
    }
    // glibc malloc tuned as in tools/bg-sample.cpp (MB-sized RK4 tensors stay on the heap).
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 2047 * 1024 * 1024);
    mallopt(M_TOP_PAD, 512 * 1024 * 1024);
    bg::set_generator_threads(s.threads);
    const boltzlab::Potential pot = boltzlab::load_potential(potential);
    const boltzlab::Target& target = *pot.target;
    if (target.particle_layout().first == 0)
      throw boltzlab::ConfigError(potential + ": target '" + target.name() + "' is not a particle system");
    const double w0 = boltzlab::wall_seconds(), c0 = cpu_seconds();
    const Reference ref = run_reference(pot, s);
    const auto& mi = ref.info;
    std::printf("MCMC %s: %d chains, warm-up %d, %d steps, thin %d -> %lld train / %lld held-out frames; "
                "statistics %s; %.0f s wall, %.0f s CPU; R-hat(u) %s, bulk-ESS(u) %s; <u> train %.4f held-out %.4f; "
                "energy-W2(train, held-out) %s\n",
                s.sampler.c_str(), s.chains, s.warmup, s.steps, s.thin, static_cast<long long>(ref.train.rows()),
                static_cast<long long>(ref.held.rows()), mi["statistics"].dump().c_str(),
                mi["wall_seconds"].get<double>(), mi["cpu_seconds"].get<double>(), num(mi["u_rhat"]).c_str(),
                num(mi["u_ess_bulk"], "%.0f").c_str(), mi["mean_energy_train"].get<double>(),
                mi["mean_energy_heldout"].get<double>(), num(mi["energy_w2_mcmc_floor"]["w2"]).c_str());
    std::fflush(stdout);

    nlohmann::json out;
    out["potential"] = potential;
    out["threads"] = s.threads;
    out["seed"] = s.seed;
    out["mcmc"] = ref.info;
    std::vector<std::string> presets = compare ? std::vector<std::string>{"ot-bg", "bg"}
                                               : std::vector<std::string>{s.preset};
    out["runs"] = nlohmann::json::array();
    for (const auto& p : presets) {
      nlohmann::json r = train_and_evaluate(target, ref, s, p);
      print_run(r);
      std::fflush(stdout);
      out["runs"].push_back(r);
    }
    if (compare) {
      // Ratios bg / ot-bg: > 1 for path length and NFE means the OT version is cheaper.
      const auto& a = out["runs"][0];
      const auto& b = out["runs"][1];
      auto ratio = [](const nlohmann::json& x, const nlohmann::json& y) -> nlohmann::json {
        if (!x.is_number() || !y.is_number() || y.get<double>() == 0.0) return nullptr;
        return x.get<double>() / y.get<double>();
      };
      out["compare_bg_over_otbg"] = {
          {"transport_cost", ratio(b["transport_cost"], a["transport_cost"])},
          {"nfe_for_dlogq_1e-2", ratio(b["nfe_for_dlogq_1e-2"], a["nfe_for_dlogq_1e-2"])},
          {"ess_fraction", ratio(b["importance"]["ess_fraction"], a["importance"]["ess_fraction"])},
          {"energy_w2", ratio(b["energy_w2"], a["energy_w2"])}};
      std::printf("bg / ot-bg: path length %s, NFE %s, ESS %s, energy-W2 %s\n",
                  num(out["compare_bg_over_otbg"]["transport_cost"]).c_str(),
                  num(out["compare_bg_over_otbg"]["nfe_for_dlogq_1e-2"]).c_str(),
                  num(out["compare_bg_over_otbg"]["ess_fraction"]).c_str(),
                  num(out["compare_bg_over_otbg"]["energy_w2"]).c_str());
    }
    out["total_wall_seconds"] = boltzlab::wall_seconds() - w0;
    out["total_cpu_seconds"] = cpu_seconds() - c0;
    boltzlab::sanitize_non_finite(out);
    if (!json_out.empty()) {
      std::ofstream f(json_out);
      f << out.dump(2) << "\n";
      if (!f) throw boltzlab::IoError(json_out + ": cannot write");
    }
  } catch (const boltzlab::Error& e) {
    std::cerr << "bench_bg_particles: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
