// Training-run benchmark of the OT-Boltzmann generator on a potential file:
// trains with a preset (ot-bg, bg, ot-flow, cnf) and a budget, then reports
// wall-clock, target energy evaluations, Kish ESS (normalized, on --samples ≥ 1e5
// draws, plus the variant clipping the largest 1e-4 of log-weights), log Z error,
// NLL of held-out target samples, the transport cost (path length) of the learned
// flow, and the integration error / ESS at fewer RK4 steps (NFE = 4·steps) —
// the quantities of the OT-BG vs canonical BG comparison.
//
// Target samples ("data") for the forward KL and the held-out NLL: exact draws for
// gaussian_mixture (GMM-40) and manywell (ManyWell-32: x1 by inverse CDF on a fine
// grid of exp(−x1⁴ + 6x1² + 0.5x1), x2 ~ N(0, 1)); other targets need --data.
// Training on exact samples is the "forward KL on reference samples" setting, not
// the sample-free setting of FAB (Midgley et al. 2023).
//
// Stages: stage 1 (--preset, --iterations, …; the forward-KL term by the fused path
// when supported, --fused) optionally followed by stage 2 (--stage2-preset,
// --stage2-iterations, --stage2-lambda, --stage2-lr: e.g. ot-bg fine-tuning with the
// reverse KL) with a fresh Adam; --load starts from a saved model, --save writes the
// result. --sample-steps sets the RK4 steps of sampling / evaluation. For ManyWell the
// mode coverage is reported: per-coordinate fractions of x1 > 0 (raw and reweighted)
// vs the exact 0.84431, and the number of distinct sign patterns of the x1's among
// the samples vs its expectation under π (Σ_patterns 1 − (1 − p_pattern)^N).
#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <unordered_map>
#include <vector>

#include <CLI/CLI.hpp>
#include <Eigen/Cholesky>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/app/bg_run.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/targets/gaussian_mixture.hpp"
#include "boltzlab/targets/manywell.hpp"
#include "boltzlab/targets/registry.hpp"

namespace bg = boltzlab::generators;
using boltzlab::RowMatrix;

namespace {

/// Exact draws from a Gaussian mixture (component by weight, then N(μ_k, Σ_k)).
RowMatrix draw_mixture(const boltzlab::GaussianMixtureTarget& t, int n, std::uint64_t seed) {
  const int d = static_cast<int>(t.dim());
  std::vector<double> cum;
  double s = 0;
  for (double w : t.weights()) cum.push_back(s += w);
  std::vector<Eigen::MatrixXd> chol;
  for (const auto& c : t.covariances()) chol.push_back(c.llt().matrixL());
  RowMatrix x(n, d);
  for (int i = 0; i < n; ++i) {
    boltzlab::Rng rng(seed, static_cast<std::uint64_t>(i));
    const double r = rng.uniform() * s;
    const std::size_t k = std::min<std::size_t>(std::lower_bound(cum.begin(), cum.end(), r) - cum.begin(),
                                                cum.size() - 1);
    Eigen::VectorXd e(d);
    for (int j = 0; j < d; ++j) e[j] = rng.normal();
    x.row(i) = (t.means()[k] + chol[k] * e).transpose();
  }
  return x;
}

/// Exact draws from ManyWell: each (x1, x2) pair independent; x1 by inverse CDF of
/// exp(−x1_energy) tabulated on [−4, 4] with 200001 points (mass outside < 1e-30),
/// linear interpolation inside a cell.
RowMatrix draw_manywell(int dim, int n, std::uint64_t seed) {
  const int g = 200001;
  const double lo = -4.0, hi = 4.0, h = (hi - lo) / (g - 1);
  std::vector<double> cdf(g, 0.0);
  double emin = 1e300;
  for (int i = 0; i < g; ++i) emin = std::min(emin, boltzlab::ManyWellTarget::x1_energy(lo + i * h));
  for (int i = 1; i < g; ++i) {
    const double a = std::exp(-(boltzlab::ManyWellTarget::x1_energy(lo + (i - 1) * h) - emin));
    const double b = std::exp(-(boltzlab::ManyWellTarget::x1_energy(lo + i * h) - emin));
    cdf[i] = cdf[i - 1] + 0.5 * (a + b) * h;
  }
  for (double& c : cdf) c /= cdf.back();
  RowMatrix x(n, dim);
  for (int i = 0; i < n; ++i) {
    boltzlab::Rng rng(seed, static_cast<std::uint64_t>(i));
    for (int p = 0; p < dim / 2; ++p) {
      const double r = rng.uniform();
      const std::size_t k = std::min<std::size_t>(std::lower_bound(cdf.begin(), cdf.end(), r) - cdf.begin(), g - 1);
      const std::size_t k0 = k == 0 ? 0 : k - 1;
      const double f = cdf[k] > cdf[k0] ? (r - cdf[k0]) / (cdf[k] - cdf[k0]) : 0.0;
      x(i, 2 * p) = lo + (static_cast<double>(k0) + f) * h;
      x(i, 2 * p + 1) = rng.normal();
    }
  }
  return x;
}

using boltzlab::cpu_seconds;

/// Mode coverage of ManyWell samples (see the file comment). `lw` are the log-weights.
nlohmann::json manywell_coverage(const RowMatrix& x, const Eigen::VectorXd& lw) {
  constexpr double kP = 0.84431;  // mass of x1 > 0 per pair (potentials/manywell32.json)
  const int pairs = static_cast<int>(x.cols() / 2);
  const Eigen::Index n = x.rows();
  const double mx = lw.maxCoeff();
  Eigen::VectorXd wt = (lw.array() - mx).exp();
  for (Eigen::Index i = 0; i < n; ++i)
    if (!std::isfinite(wt[i])) wt[i] = 0.0;
  const double wsum = wt.sum();
  nlohmann::json raw = nlohmann::json::array(), weighted = nlohmann::json::array();
  double mean_raw = 0, min_raw = 1, max_raw = 0;
  for (int p = 0; p < pairs; ++p) {
    double c = 0, cw = 0;
    for (Eigen::Index i = 0; i < n; ++i)
      if (x(i, 2 * p) > 0) {
        c += 1;
        cw += wt[i];
      }
    const double f = c / static_cast<double>(n);
    raw.push_back(f);
    weighted.push_back(wsum > 0 ? cw / wsum : 0.0);
    mean_raw += f / pairs;
    min_raw = std::min(min_raw, f);
    max_raw = std::max(max_raw, f);
  }
  std::unordered_map<std::uint64_t, int> patterns;
  for (Eigen::Index i = 0; i < n; ++i) {
    std::uint64_t key = 0;
    for (int p = 0; p < pairs; ++p) key |= static_cast<std::uint64_t>(x(i, 2 * p) > 0) << p;
    ++patterns[key];
  }
  // Expected distinct patterns among n exact draws: C(pairs, k) patterns with k
  // negative x1's, each of probability P^(pairs−k)(1−P)^k.
  double expected = 0, binom = 1;
  for (int k = 0; k <= pairs; ++k) {
    const double pk = std::pow(kP, pairs - k) * std::pow(1 - kP, k);
    expected += binom * -std::expm1(static_cast<double>(n) * std::log1p(-pk));
    binom = binom * (pairs - k) / (k + 1);
  }
  return {{"exact_fraction_positive", kP},
          {"binomial_se", std::sqrt(kP * (1 - kP) / static_cast<double>(n))},
          {"fraction_positive_raw", raw},
          {"fraction_positive_weighted", weighted},
          {"fraction_positive_raw_mean", mean_raw},
          {"fraction_positive_raw_min", min_raw},
          {"fraction_positive_raw_max", max_raw},
          {"distinct_sign_patterns", patterns.size()},
          {"expected_distinct_sign_patterns", expected},
          {"total_sign_patterns", std::ldexp(1.0, pairs)}};
}

}  // namespace

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  CLI::App app{"bench_bg_train"};
  std::string potential, preset = "ot-bg", data_path, json_out;
  int iterations = 500, batch = 512, width = 32, layers = 2, steps = 8, threads = 2, data_n = 20000;
  long long samples = 100000;
  double lr = 5e-3, lambda = -1, alpha_l = -1, alpha_hjb = -1;
  std::uint64_t seed = 1;
  std::string fused = "auto", stage2_preset = "ot-bg", load_path, save_path, base_mode = "normal";
  int base_components = 4;
  double base_defensive = 0.0;
  int sample_steps = 0, stage2_iterations = 0, stage2_batch = 0, eval_every = 0;
  double time_horizon = 1.0, lr_final_ratio = 0.05, stage2_lambda = -1, stage2_lr = 1e-3, clip = 10.0;
  app.add_option("--fused", fused, "forward-KL term: auto | on | off (hand-fused path vs autograd)")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_option("--sample-steps", sample_steps, "RK4 steps for sampling / log q (default: --steps)");
  app.add_option("--time", time_horizon, "flow time horizon T");
  app.add_option("--lr-final-ratio", lr_final_ratio, "cosine schedule end ratio");
  app.add_option("--clip", clip, "gradient-norm clip (<= 0: none)");
  app.add_option("--eval-every", eval_every, "running-ESS interval (0: iterations/10)");
  app.add_option("--stage2-preset", stage2_preset, "stage-2 preset (fine-tuning)");
  app.add_option("--stage2-iterations", stage2_iterations, "stage-2 iterations (0: no stage 2)");
  app.add_option("--stage2-lambda", stage2_lambda, "stage-2 lambda (default: the preset's)");
  app.add_option("--stage2-lr", stage2_lr, "stage-2 Adam learning rate");
  app.add_option("--stage2-batch", stage2_batch, "stage-2 batch (default: --batch)");
  app.add_option("--base", base_mode,
                 "base density: normal (N(0, I) after standardization) or gaussian_mixture (per-coordinate "
                 "Gaussian mixtures fitted to the standardized data by EM, K by BIC)")
      ->check(CLI::IsMember({"normal", "gaussian_mixture"}));
  app.add_option("--base-components", base_components, "gaussian_mixture: most components per coordinate")
      ->check(CLI::Range(1, 8));
  app.add_option("--base-defensive", base_defensive,
                 "gaussian_mixture: weight of a broad defensive component per coordinate (0: none)")
      ->check(CLI::Range(0.0, 0.49));
  app.add_option("--load", load_path, "start from this saved model (architecture flags are then ignored)");
  app.add_option("--save", save_path, "save the trained model here");
  app.add_option("--potential", potential)->required();
  app.add_option("--preset", preset);
  app.add_option("--lambda", lambda, "override the preset's lambda");
  app.add_option("--alpha-transport", alpha_l);
  app.add_option("--alpha-hjb", alpha_hjb);
  app.add_option("--iterations", iterations);
  app.add_option("--batch", batch);
  app.add_option("--lr", lr);
  app.add_option("--width", width);
  app.add_option("--layers", layers);
  app.add_option("--steps", steps);
  app.add_option("--threads", threads);
  app.add_option("--samples", samples, "generator samples for ESS / log Z (>= 1e5 for reported figures)");
  app.add_option("--data", data_path, "target samples (.npy) when no exact sampler is known");
  app.add_option("--data-samples", data_n, "exact training samples to draw (GMM, ManyWell)");
  app.add_option("--seed", seed);
  app.add_option("--json", json_out, "also write the result JSON here");
  CLI11_PARSE(app, argc, argv);

  try {
    // glibc malloc tuned as in tools/bg-sample.cpp (MB-sized RK4 tensors stay on the heap).
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 2047 * 1024 * 1024);
    mallopt(M_TOP_PAD, 512 * 1024 * 1024);
    bg::set_generator_threads(threads);
    boltzlab::Potential pot = boltzlab::load_potential(potential);
    const boltzlab::Target& target = *pot.target;
    const int d = static_cast<int>(target.dim());

    // Training data and held-out data (disjoint streams).
    RowMatrix data, held_out;
    if (auto gmm = dynamic_cast<const boltzlab::GaussianMixtureTarget*>(&target)) {
      data = draw_mixture(*gmm, data_n, seed * 2 + 11);
      held_out = draw_mixture(*gmm, 10000, seed * 2 + 12);
    } else if (dynamic_cast<const boltzlab::ManyWellTarget*>(&target)) {
      data = draw_manywell(d, data_n, seed * 2 + 11);
      held_out = draw_manywell(d, 10000, seed * 2 + 12);
    } else if (!data_path.empty()) {
      RowMatrix all = boltzlab::read_npy_matrix(data_path, target.dim());
      const Eigen::Index n_hold = all.rows() / 5;
      held_out = all.bottomRows(n_hold);
      data = all.topRows(all.rows() - n_hold);
    }
    const bool have_data = data.rows() > 0;

    bg::GeneratorOptions o;
    o.potential.dim = d;
    o.potential.width = width;
    o.potential.layers = layers;
    const auto [np, sd] = target.particle_layout();
    o.potential.n_particles = static_cast<int>(np);
    o.potential.spatial_dim = static_cast<int>(sd);
    o.steps = steps;
    o.sample_steps = sample_steps > 0 ? sample_steps : steps;
    o.time = time_horizon;
    bg::BoltzmannGenerator model(o, seed);
    if (!load_path.empty()) {
      // Same parameters, standardization and base; training/sampling steps from the flags.
      model = bg::BoltzmannGenerator::load(load_path);
      model.set_integration_steps(steps, sample_steps > 0 ? sample_steps : model.options().sample_steps);
      o = model.options();
    } else if (have_data) {
      model.standardize_from_data(data);
      if (base_mode == "gaussian_mixture") model.fit_gaussian_mixture_base(data, {base_components, base_defensive});
    }
    if (base_mode != "normal" && model.base() == nullptr)
      throw boltzlab::ConfigError("--base " + base_mode + " needs training data (or a loaded model with that base)");
    const double cpu0 = cpu_seconds();

    bg::TrainOptions t;
    t.preset = preset;
    t.weights = bg::LossWeights::preset(preset, have_data);
    if (lambda >= 0) t.weights.lambda = lambda;
    if (alpha_l >= 0) t.weights.alpha_transport = alpha_l;
    if (alpha_hjb >= 0) t.weights.alpha_hjb = alpha_hjb;
    t.iterations = iterations;
    t.batch_size = batch;
    t.learning_rate = lr;
    t.lr_final_ratio = lr_final_ratio;
    t.clip_grad_norm = clip;
    t.eval_every = eval_every > 0 ? eval_every : std::max(1, iterations / 10);
    t.eval_samples = 2048;
    t.seed = seed;
    t.fused = fused == "on" ? bg::FusedMode::kOn : fused == "off" ? bg::FusedMode::kOff : bg::FusedMode::kAuto;
    const bool fused_used = iterations > 0 && bg::uses_fused_data_term(model, t);
    bg::TrainHistory h;
    if (iterations > 0) h = bg::train(model, target, have_data ? &data : nullptr, t);
    const double cpu1 = cpu_seconds();
    bg::TrainHistory h2;
    bg::TrainOptions t2 = t;
    bool fused2_used = false;
    if (stage2_iterations > 0) {
      t2.preset = stage2_preset;
      t2.weights = bg::LossWeights::preset(stage2_preset, have_data);
      if (stage2_lambda >= 0) t2.weights.lambda = stage2_lambda;
      if (alpha_l >= 0) t2.weights.alpha_transport = alpha_l;
      if (alpha_hjb >= 0) t2.weights.alpha_hjb = alpha_hjb;
      t2.iterations = stage2_iterations;
      t2.batch_size = stage2_batch > 0 ? stage2_batch : batch;
      t2.learning_rate = stage2_lr;
      t2.eval_every = eval_every > 0 ? eval_every : std::max(1, stage2_iterations / 10);
      t2.seed = seed + 7919;  // fresh mini-batch and base streams
      fused2_used = bg::uses_fused_data_term(model, t2);
      h2 = bg::train(model, target, have_data ? &data : nullptr, t2);
    }
    const double cpu2 = cpu_seconds();
    if (!save_path.empty()) model.save(save_path, {{"potential", potential}, {"seed", seed}});

    // Evaluation on `samples` fresh draws (a seed not used in training).
    const double t0 = boltzlab::wall_seconds();
    const bg::GeneratedSamples s = model.sample(samples, seed + 1000003);
    bg::EnergyCounters counters;
    const Eigen::VectorXd u = bg::target_energy_values(s.x, target, &counters);
    std::size_t non_finite_u = 0;
    const Eigen::VectorXd lw = boltzlab::log_importance_weights(u, s.log_q, &non_finite_u);
    nlohmann::json imp = bg::generator_importance_report(lw, non_finite_u, target);
    const double sample_seconds = boltzlab::wall_seconds() - t0;

    nlohmann::json r;
    r["potential"] = potential;
    r["preset"] = preset;
    r["weights"] = t.weights.to_json();
    r["model"] = o.to_json();
    r["iterations"] = h.iterations_done;
    r["batch"] = batch;
    r["threads"] = threads;
    r["fused"] = fused_used;
    r["loaded_from"] = load_path;
    r["base"] = model.base() ? model.base()->kind() : std::string("standard_normal");
    r["train_wall_seconds"] = h.wall_seconds + h2.wall_seconds;
    r["train_cpu_seconds"] = cpu2 - cpu0;
    r["train_energy_evaluations"] = h.energy_evaluations + h2.energy_evaluations;
    r["train_non_finite"] = h.non_finite + h2.non_finite;
    r["stage1"] = {{"preset", preset}, {"iterations", h.iterations_done}, {"wall_seconds", h.wall_seconds},
                   {"cpu_seconds", cpu1 - cpu0}, {"energy_evaluations", h.energy_evaluations},
                   {"fused", fused_used}, {"lr", lr}, {"final_loss", h.loss.empty() ? 0.0 : h.loss.back()},
                   {"final_forward_kl", h.forward_kl.empty() ? 0.0 : h.forward_kl.back()}};
    if (stage2_iterations > 0)
      r["stage2"] = {{"preset", stage2_preset}, {"weights", t2.weights.to_json()},
                     {"iterations", h2.iterations_done}, {"batch", t2.batch_size}, {"lr", stage2_lr},
                     {"wall_seconds", h2.wall_seconds}, {"cpu_seconds", cpu2 - cpu1},
                     {"energy_evaluations", h2.energy_evaluations}, {"fused", fused2_used},
                     {"history_eval_ess", h2.eval_ess},
                     {"final_loss", h2.loss.empty() ? 0.0 : h2.loss.back()}};
    r["data_samples"] = data.rows();
    r["eval_samples"] = samples;
    r["eval_seconds"] = sample_seconds;
    r["importance"] = imp;
    if (dynamic_cast<const boltzlab::ManyWellTarget*>(&target)) r["manywell_coverage"] = manywell_coverage(s.x, lw);
    if (auto lz = target.log_z(); lz && imp.contains("log_z")) r["log_z_error"] = imp["log_z"]["estimate"].get<double>() - *lz;
    if (held_out.rows() > 0) {
      const Eigen::VectorXd lq = model.log_q(held_out);
      r["heldout_nll"] = -lq.mean();
      r["heldout_count"] = held_out.rows();
      if (auto lz = target.log_z()) {
        // KL(π‖q) = E_π[log π − log q] = E_π[−u − log q] − log Z on the held-out draws,
        // with its standard error from the per-sample spread.
        const Eigen::VectorXd uh = bg::target_energy_values(held_out, target, nullptr);
        const Eigen::ArrayXd term = -uh.array() - lq.array() - *lz;
        const double m = term.mean();
        const double sd = std::sqrt((term - m).square().sum() / (term.size() - 1.0));
        r["heldout_forward_kl"] = m;
        r["heldout_forward_kl_se"] = sd / std::sqrt(static_cast<double>(term.size()));
      }
    }
    // Path costs on 4096 generated trajectories and the integration error of fewer
    // RK4 steps against 4·steps (NFE = 4 per step).
    {
      torch::NoGradGuard ng;
      const auto z = model.base_sample(4096, seed + 77);
      const bg::FlowBatch ref = model.forward(z, 4 * steps, true);
      r["transport_cost"] = ref.transport.mean().item<double>();
      r["hjb_residual"] = ref.hjb.mean().item<double>();
      nlohmann::json acc = nlohmann::json::array();
      for (int st : {1, 2, 4, steps}) {
        const bg::FlowBatch f = model.forward(z, st, false);
        const double dx = (f.x - ref.x).norm(2, {1}).mean().item<double>();
        const double dl = (f.log_q - ref.log_q).abs().mean().item<double>();
        const Eigen::VectorXd ue = bg::target_energy_values(bg::to_matrix(f.x), target, nullptr);
        const Eigen::VectorXd lwe = boltzlab::log_importance_weights(ue, bg::to_vector(f.log_q));
        const bool any = lwe.maxCoeff() > -std::numeric_limits<double>::infinity();
        acc.push_back({{"steps", st}, {"nfe", 4 * st}, {"mean_dx", dx}, {"mean_dlogq", dl},
                       {"ess_4096", any ? boltzlab::kish_ess(lwe) / 4096.0 : 0.0}});
      }
      r["integration"] = acc;
    }
    r["history_eval_ess"] = h.eval_ess;
    r["final_loss"] = h.loss.empty() ? 0.0 : h.loss.back();
    boltzlab::sanitize_non_finite(r);
    std::cout << r.dump() << std::endl;
    if (!json_out.empty()) std::ofstream(json_out) << r.dump(2) << "\n";
  } catch (const boltzlab::Error& e) {
    std::cerr << "bench_bg_train: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
