// Generators trained from the energy alone: temperature-annealed training
// (generators/annealed_training.hpp; Schopmans & Friederich, ICML 2025) beside plain
// reverse-KL training (the ot-bg preset at λ = 0) with the same number of optimizer steps,
// on a potential file (GMM-40, ManyWell-32, DW4, …). No samples of π are used: the flow starts
// from N(0, I) with the standardization of --scale / --shift.
//
// Reports: wall and CPU seconds, target energy evaluations of training, per-rung ESS of the
// annealing weights, and on --samples fresh draws the Kish ESS (plain and clipping the largest
// 1e-4 of the log-weights), PSIS k̂, log Z error ± se (targets with a known log Z), and the
// mode coverage: for a Gaussian mixture the draws per component (nearest mean) and the
// reweighted component masses against the exact weights; for ManyWell the fraction of x1 > 0
// per pair (raw and reweighted) against the exact 0.84431 and the number of distinct sign
// patterns of the x1's against its expectation under π.
//
//   bench_bg_annealed --potential potentials/gmm40.json --mode annealed --t-high 30 --rungs 6 …
//   bench_bg_annealed --potential potentials/gmm40.json --mode plain … (same flags: same steps)
#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <unordered_map>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/app/bg_run.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/generators/annealed_training.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/model_file.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/targets/gaussian_mixture.hpp"
#include "boltzlab/targets/manywell.hpp"
#include "boltzlab/targets/registry.hpp"

namespace bg = boltzlab::generators;
using boltzlab::RowMatrix;

namespace {

Eigen::VectorXd relative_weights(const Eigen::VectorXd& lw) {
  const double mx = lw.maxCoeff();
  Eigen::VectorXd w = (lw.array() - mx).exp();
  for (Eigen::Index i = 0; i < w.size(); ++i)
    if (!std::isfinite(w[i])) w[i] = 0.0;
  return w / w.sum();
}

/// Draws per component (nearest mean) and reweighted component masses vs the exact weights.
nlohmann::json mixture_coverage(const boltzlab::GaussianMixtureTarget& t, const RowMatrix& x, const Eigen::VectorXd& lw) {
  const auto& means = t.means();
  const std::size_t k = means.size();
  double total_weight = 0;
  for (double w : t.weights()) total_weight += w;
  std::vector<double> count(k, 0.0), mass(k, 0.0);
  const Eigen::VectorXd w = relative_weights(lw);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    std::size_t best = 0;
    double best_d = 1e300;
    for (std::size_t c = 0; c < k; ++c) {
      const double d = (x.row(i).transpose() - means[c]).squaredNorm();
      if (d < best_d) best_d = d, best = c;
    }
    count[best] += 1;
    mass[best] += w[i];
  }
  const double n = static_cast<double>(x.rows());
  int covered = 0, with_draws = 0;
  double max_mass_error = 0, min_share = 1e300;
  for (std::size_t c = 0; c < k; ++c) {
    const double exact = t.weights()[c] / total_weight;
    with_draws += count[c] > 0;
    covered += count[c] >= 0.1 * exact * n;  // at least a tenth of the draws π would put there
    min_share = std::min(min_share, count[c] / (exact * n));
    max_mass_error = std::max(max_mass_error, std::abs(mass[c] - exact));
  }
  return {{"components", k},
          {"components_with_draws", with_draws},
          {"components_covered", covered},
          {"covered_rule", "draws >= 0.1 * weight * N (nearest mean)"},
          {"min_draw_share_vs_exact", min_share},
          {"max_abs_reweighted_mass_error", max_mass_error},
          {"draws_per_component", count}};
}

/// Per-pair fraction of x1 > 0 (raw, reweighted) and distinct sign patterns (as bench_bg_train).
nlohmann::json manywell_coverage(const RowMatrix& x, const Eigen::VectorXd& lw) {
  constexpr double kP = 0.84431;  // mass of x1 > 0 per pair (potentials/manywell32.json)
  const int pairs = static_cast<int>(x.cols() / 2);
  const Eigen::Index n = x.rows();
  const Eigen::VectorXd w = relative_weights(lw);
  std::vector<double> raw, weighted;
  for (int p = 0; p < pairs; ++p) {
    double c = 0, cw = 0;
    for (Eigen::Index i = 0; i < n; ++i)
      if (x(i, 2 * p) > 0) c += 1, cw += w[i];
    raw.push_back(c / static_cast<double>(n));
    weighted.push_back(cw);
  }
  std::unordered_map<std::uint64_t, int> patterns;
  for (Eigen::Index i = 0; i < n; ++i) {
    std::uint64_t key = 0;
    for (int p = 0; p < pairs; ++p) key |= static_cast<std::uint64_t>(x(i, 2 * p) > 0) << p;
    ++patterns[key];
  }
  double expected = 0, binom = 1;  // Σ over patterns with k negative x1's of 1 − (1 − p)^n
  for (int k = 0; k <= pairs; ++k) {
    const double pk = std::pow(kP, pairs - k) * std::pow(1 - kP, k);
    expected += binom * -std::expm1(static_cast<double>(n) * std::log1p(-pk));
    binom = binom * (pairs - k) / (k + 1);
  }
  const auto [rmin, rmax] = std::minmax_element(raw.begin(), raw.end());
  const auto [wmin, wmax] = std::minmax_element(weighted.begin(), weighted.end());
  return {{"exact_fraction_positive", kP},
          {"binomial_se", std::sqrt(kP * (1 - kP) / static_cast<double>(n))},
          {"fraction_positive_raw_min", *rmin},
          {"fraction_positive_raw_max", *rmax},
          {"fraction_positive_weighted_min", *wmin},
          {"fraction_positive_weighted_max", *wmax},
          {"distinct_sign_patterns", patterns.size()},
          {"expected_distinct_sign_patterns", expected}};
}

}  // namespace

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  CLI::App app{"bench_bg_annealed"};
  std::string potential, mode = "annealed", json_out, save_path, load_path, smoothing = "psis", spacing = "geometric";
  int iterations = 500, batch = 256, width = 64, layers = 2, steps = 8, sample_steps = 0, threads = 2;
  std::string flow = "otflow";
  bg::SplineCouplingOptions coupling;
  int rungs = 6, samples_per_rung = 4096, steps_per_rung = 150, rung_batch = 512, refine_rungs = 0, refine_steps = 0;
  long long samples = 100000;
  double lr = 5e-3, rung_lr = 2e-3, t_high = 10.0, scale = 1.0, alpha_l = -1, alpha_hjb = -1;
  std::uint64_t seed = 1;
  app.add_option("--potential", potential)->required();
  app.add_option("--mode", mode, "annealed | plain (ot-bg reverse KL at tau 1, same optimizer steps)")
      ->check(CLI::IsMember({"annealed", "plain"}));
  app.add_option("--iterations", iterations, "stage-1 reverse-KL steps");
  app.add_option("--batch", batch, "stage-1 batch");
  app.add_option("--lr", lr, "stage-1 learning rate (plain: the whole run's)");
  app.add_option("--t-high", t_high, "tau_0 = T_high / T");
  app.add_option("--rungs", rungs);
  app.add_option("--spacing", spacing)->check(CLI::IsMember({"geometric", "linear"}));
  app.add_option("--samples-per-rung", samples_per_rung);
  app.add_option("--steps-per-rung", steps_per_rung);
  app.add_option("--refine-rungs", refine_rungs, "rungs at tau 1 after the ladder (annealed_training.hpp)");
  app.add_option("--refine-steps", refine_steps, "steps per refinement rung (0: --steps-per-rung)");
  app.add_option("--rung-batch", rung_batch);
  app.add_option("--rung-lr", rung_lr);
  app.add_option("--smoothing", smoothing)->check(CLI::IsMember({"none", "truncate", "psis"}));
  app.add_option("--alpha-transport", alpha_l);
  app.add_option("--alpha-hjb", alpha_hjb);
  app.add_option("--scale", scale, "standardization scale sigma (x = mu + sigma y), all coordinates");
  app.add_option("--width", width);
  app.add_option("--layers", layers);
  app.add_option("--steps", steps);
  app.add_option("--flow", flow, "otflow (the CNF) | spline_coupling")->check(CLI::IsMember({"otflow", "spline_coupling"}));
  app.add_option("--coupling-layers", coupling.layers);
  app.add_option("--coupling-hidden", coupling.hidden);
  app.add_option("--coupling-depth", coupling.depth);
  app.add_option("--spline-bins", coupling.bins);
  app.add_option("--spline-bound", coupling.bound);
  app.add_option("--sample-steps", sample_steps, "RK4 steps when sampling (default: --steps)");
  app.add_option("--threads", threads);
  app.add_option("--samples", samples, "evaluation draws");
  app.add_option("--seed", seed);
  app.add_option("--save", save_path);
  app.add_option("--load", load_path,
                 "continue from a saved model (its architecture, standardization and parameters; the flow\n"
                 "and scale options are then ignored)");
  app.add_option("--json", json_out);
  CLI11_PARSE(app, argc, argv);
  if (!save_path.empty() && !json_out.empty() &&
      std::filesystem::absolute(json_out) == std::filesystem::absolute(bg::model_record_path(save_path))) {
    std::cerr << "bench_bg_annealed: --json " << json_out << " is the record of the --save model; name another file\n";
    return 2;
  }
  try {
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);  // as tools/bg-sample.cpp
    mallopt(M_TRIM_THRESHOLD, 2047 * 1024 * 1024);
    mallopt(M_TOP_PAD, 512 * 1024 * 1024);
    bg::set_generator_threads(threads);
    boltzlab::Potential pot = boltzlab::load_potential(potential);
    const boltzlab::Target& target = *pot.target;
    const int d = static_cast<int>(target.dim());
    bg::GeneratorOptions o;
    o.potential.dim = d;
    o.potential.width = width;
    o.potential.layers = layers;
    const auto [np, sd] = target.particle_layout();
    o.potential.n_particles = static_cast<int>(np);
    o.potential.spatial_dim = static_cast<int>(sd);
    o.steps = steps;
    o.sample_steps = sample_steps > 0 ? sample_steps : steps;
    if (flow == "spline_coupling") {
      o.flow = bg::FlowFamily::spline_coupling;
      o.coupling = coupling;
    }
    bg::BoltzmannGenerator model =
        load_path.empty() ? bg::BoltzmannGenerator(o, seed) : bg::BoltzmannGenerator::load(load_path);
    if (load_path.empty()) model.set_standardization(Eigen::VectorXd::Zero(d), Eigen::VectorXd::Constant(d, scale));
    else o = model.options();
    if (o.flow == bg::FlowFamily::spline_coupling && alpha_hjb < 0) alpha_hjb = 0.0;  // no potential: no HJB residual

    bg::TrainOptions t;
    t.preset = "ot-bg";
    t.weights = bg::LossWeights::preset("ot-bg", false);
    if (alpha_l >= 0) t.weights.alpha_transport = alpha_l;
    if (alpha_hjb >= 0) t.weights.alpha_hjb = alpha_hjb;
    t.iterations = iterations;
    t.batch_size = batch;
    t.learning_rate = lr;
    t.eval_every = 0;
    t.seed = seed;
    bg::AnnealingOptions a;
    a.enabled = true;
    a.t_high = t_high;
    a.rungs = rungs;
    a.spacing = spacing;
    a.samples_per_rung = samples_per_rung;
    a.steps_per_rung = steps_per_rung;
    a.refine_rungs = refine_rungs;
    a.refine_steps_per_rung = refine_steps;
    a.batch_size = rung_batch;
    a.learning_rate = rung_lr;
    a.smoothing = smoothing == "none" ? bg::WeightSmoothing::kNone
                  : smoothing == "truncate" ? bg::WeightSmoothing::kTruncate : bg::WeightSmoothing::kPsis;
    nlohmann::json r;
    const double cpu0 = boltzlab::cpu_seconds(), wall0 = boltzlab::wall_seconds();
    std::size_t train_evaluations = 0;
    if (mode == "annealed") {
      const bg::AnnealedHistory h = bg::train_annealed(model, target, t, a);
      r["annealing"] = h.to_json();
      r["annealing_options"] = a.to_json();
      train_evaluations = h.combined().energy_evaluations;
    } else {
      // the same number of optimizer steps
      t.iterations =
          iterations + rungs * steps_per_rung + refine_rungs * (refine_steps > 0 ? refine_steps : steps_per_rung);
      const bg::TrainHistory h = bg::train(model, target, nullptr, t);
      train_evaluations = h.energy_evaluations;
      r["final_reverse_kl"] = h.reverse_kl.empty() ? 0.0 : h.reverse_kl.back();
    }
    r["train_wall_seconds"] = boltzlab::wall_seconds() - wall0;
    r["train_cpu_seconds"] = boltzlab::cpu_seconds() - cpu0;
    r["train_energy_evaluations"] = train_evaluations;
    if (!save_path.empty()) model.save(save_path, {{"potential", potential}, {"seed", seed}, {"mode", mode}});

    const double t0 = boltzlab::wall_seconds();
    const bg::GeneratedSamples s = model.sample(samples, seed + 1000003);
    const Eigen::VectorXd u = bg::target_energy_values(s.x, target, nullptr);
    std::size_t non_finite = 0;
    const Eigen::VectorXd lw = boltzlab::log_importance_weights(u, s.log_q, &non_finite);
    const nlohmann::json imp = bg::generator_importance_report(lw, non_finite, target);
    r["eval_seconds"] = boltzlab::wall_seconds() - t0;
    r["potential"] = potential;
    r["mode"] = mode;
    r["model"] = o.to_json();
    std::int64_t n_parameters = 0;
    for (const auto& p : model.parameters()) n_parameters += p.numel();
    r["parameters"] = n_parameters;
    r["scale"] = model.scale()[0];  // the loaded model's with --load (all coordinates share it)
    r["stage1"] = t.to_json();
    r["threads"] = threads;
    r["eval_samples"] = samples;
    r["importance"] = imp;
    if (auto lz = target.log_z(); lz && imp.contains("log_z"))
      r["log_z_error"] = imp["log_z"]["estimate"].get<double>() - *lz;
    if (auto gmm = dynamic_cast<const boltzlab::GaussianMixtureTarget*>(&target))
      r["coverage"] = mixture_coverage(*gmm, s.x, lw);
    if (dynamic_cast<const boltzlab::ManyWellTarget*>(&target)) r["coverage"] = manywell_coverage(s.x, lw);
    boltzlab::sanitize_non_finite(r);
    std::cout << r.dump() << std::endl;
    if (!json_out.empty()) std::ofstream(json_out) << r.dump(2) << "\n";
  } catch (const boltzlab::Error& e) {
    std::cerr << "bench_bg_annealed: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
