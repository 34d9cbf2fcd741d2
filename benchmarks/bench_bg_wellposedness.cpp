// The seed paper's well-posedness claim (Cor. 3.1, Remark 3.4, §6.2), measured at equal
// capacity: the canonical Boltzmann generator with a free-form velocity (`free-bg`, an
// MLP v(x, t)), the gradient-constrained BG (`bg`, v = −∇Φ, no transport cost) and the
// OT-Boltzmann generator (`ot-bg`, v = −∇Φ with the transport cost and the HJB residual),
// each trained from several seeds on GMM-40 (with exact samples as data, λ = ½) and DW4
// (energy only, λ = 0).
//
// Per run: importance ESS/N and log Z (against the exact value where known), the path
// length E∫|v| dt and transport E∫½|v|² dt of the learned flow (64-step paths), and the NFE
// a user pays for samples accurate to 10⁻²: the fewest RK4 steps (4 evaluations each) whose
// end points agree with a 64-step reference to 10⁻² (max over 1000 samples; −1: none up to 32
// steps). Printed per run and as mean ± sd over the seeds; the spread across seeds is the
// empirical sign of (ill-)posedness: a well-posed game has one answer.
//
//   bench_bg_wellposedness [--targets gmm40,dw4] [--seeds 1,2,3] [--iterations 1500]
//                          [--width 32] [--samples 20000] [--out results.md]
#include <CLI/CLI.hpp>
#include <Eigen/Cholesky>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/generators/path_measures.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/targets/gaussian_mixture.hpp"
#include "boltzlab/targets/registry.hpp"

namespace bg = boltzlab::generators;
using boltzlab::RowMatrix;

namespace {

struct Metrics {
  double ess = 0, log_z = 0, log_z_se = 0, path_length = 0, transport = 0, seconds = 0;
  int nfe = -1;
  std::size_t parameters = 0;
};

// Exact draws of a Gaussian mixture (component by weight, then its Gaussian).
RowMatrix mixture_samples(const boltzlab::GaussianMixtureTarget& t, int n, std::uint64_t seed) {
  boltzlab::Rng rng(seed, 0);
  const int d = static_cast<int>(t.dim());
  RowMatrix x(n, d);
  std::vector<Eigen::MatrixXd> chol;
  for (const auto& c : t.covariances()) chol.emplace_back(c.llt().matrixL());
  for (int i = 0; i < n; ++i) {
    double u = rng.uniform(), acc = 0.0;
    std::size_t k = 0;
    while (k + 1 < t.weights().size() && (acc += t.weights()[k]) < u) ++k;
    Eigen::VectorXd e(d);
    for (int j = 0; j < d; ++j) e[j] = rng.normal();
    x.row(i) = (t.means()[k] + chol[k] * e).transpose();
  }
  return x;
}

bg::GeneratorOptions model_options(const boltzlab::Target& target, const std::string& preset, int width) {
  bg::GeneratorOptions o;
  o.potential.dim = static_cast<int>(target.dim());
  const auto [np, sd] = target.particle_layout();
  o.potential.n_particles = static_cast<int>(np);
  o.potential.spatial_dim = static_cast<int>(sd);
  o.potential.width = width;
  o.steps = 8;
  o.sample_steps = 16;
  o.free_velocity = bg::find_loss_preset(preset).free_velocity;
  return o;
}

Metrics run_one(const boltzlab::Target& target, const RowMatrix* data, const std::string& preset, int width,
                int iterations, std::int64_t samples, std::uint64_t seed) {
  Metrics m;
  bg::BoltzmannGenerator model(model_options(target, preset, width), seed);
  if (data) model.standardize_from_data(*data);
  for (const auto& p : model.parameters()) m.parameters += static_cast<std::size_t>(p.numel());
  bg::TrainOptions t;
  t.preset = preset;
  t.weights = bg::LossWeights::preset(preset, data != nullptr);
  t.iterations = iterations;
  t.batch_size = 256;
  t.eval_every = 0;
  t.progress = false;
  t.seed = seed;
  const double t0 = boltzlab::wall_seconds();
  bg::train(model, target, data, t);
  m.seconds = boltzlab::wall_seconds() - t0;
  const auto s = model.sample(samples, seed + 1000);
  const Eigen::VectorXd lw = bg::flow_log_weights(s.x, s.log_q, target, nullptr, nullptr, nullptr);
  m.ess = boltzlab::kish_ess(lw) / static_cast<double>(samples);
  const double mx = lw.maxCoeff();
  const Eigen::ArrayXd w = (lw.array() - mx).exp();
  m.log_z = mx + std::log(w.mean());
  m.log_z_se = std::sqrt((w - w.mean()).square().mean() / samples) / w.mean();
  const bg::PathMeasures pm = bg::measure_paths(model, 1000, 77);
  m.path_length = pm.path_length;
  m.transport = pm.transport;
  m.nfe = pm.nfe;
  return m;
}

std::string mean_sd(const std::vector<double>& v, const char* fmt) {
  double mean = 0;
  for (double x : v) mean += x / v.size();
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean) / std::max<std::size_t>(1, v.size() - 1);
  char buf[64], f[32];
  std::snprintf(f, sizeof f, "%s ± %s", fmt, fmt);
  std::snprintf(buf, sizeof buf, f, mean, std::sqrt(var));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  CLI::App app{"well-posedness at equal capacity: free-form BG vs gradient BG vs OT-BG over seeds"};
  std::vector<std::string> targets = {"gmm40", "dw4"};
  std::vector<std::uint64_t> seeds = {1, 2, 3};
  std::vector<std::string> presets = {"free-bg", "bg", "ot-bg"};
  int iterations = 1500, width = 32;
  std::int64_t samples = 20000;
  std::string out = "wellposedness.md";
  app.add_option("--targets", targets, "potentials/<name>.json")->delimiter(',');
  app.add_option("--seeds", seeds, "training seeds")->delimiter(',');
  app.add_option("--presets", presets, "rows of the preset table")->delimiter(',');
  app.add_option("--iterations", iterations, "Adam steps per run");
  app.add_option("--width", width, "width of Phi's ResNet and of the free velocity's two hidden layers");
  app.add_option("--samples", samples, "samples per trained model");
  app.add_option("--out", out, "Markdown table");
  CLI11_PARSE(app, argc, argv);
  try {
    std::ostringstream md;
    md << "| target | preset | parameters | seed | ESS/N | log Z (exact) | path length | transport | NFE (1e-2) | "
          "train s |\n|---|---|---|---|---|---|---|---|---|---|\n";
    std::ostringstream summary;
    summary << "\n| target | preset | ESS/N | log Z | path length | transport | NFE |\n|---|---|---|---|---|---|---|\n";
    for (const auto& name : targets) {
      const boltzlab::Potential pot =
          boltzlab::load_potential(std::string(BOLTZLAB_SOURCE_DIR) + "/potentials/" + name + ".json");
      const boltzlab::Target& target = *pot.target;
      RowMatrix data;
      const auto* gmm = dynamic_cast<const boltzlab::GaussianMixtureTarget*>(&target);
      if (gmm) data = mixture_samples(*gmm, 20000, 12345);
      for (const auto& preset : presets) {
        std::map<std::string, std::vector<double>> cols;
        for (const auto seed : seeds) {
          const Metrics m = run_one(target, gmm ? &data : nullptr, preset, width, iterations, samples, seed);
          char line[400];
          std::snprintf(line, sizeof line, "| %s | %s | %zu | %llu | %.4f | %.3f ± %.3f (%s) | %.3f | %.3f | %d | %.0f |\n",
                        name.c_str(), preset.c_str(), m.parameters, static_cast<unsigned long long>(seed), m.ess,
                        m.log_z, m.log_z_se, target.log_z() ? std::to_string(*target.log_z()).c_str() : "?",
                        m.path_length, m.transport, m.nfe, m.seconds);
          md << line;
          std::printf("%s", line);
          std::fflush(stdout);
          cols["ess"].push_back(m.ess);
          cols["logz"].push_back(m.log_z);
          cols["len"].push_back(m.path_length);
          cols["tr"].push_back(m.transport);
          cols["nfe"].push_back(m.nfe);
        }
        summary << "| " << name << " | " << preset << " | " << mean_sd(cols["ess"], "%.4f") << " | "
                << mean_sd(cols["logz"], "%.3f") << " | " << mean_sd(cols["len"], "%.3f") << " | "
                << mean_sd(cols["tr"], "%.3f") << " | " << mean_sd(cols["nfe"], "%.0f") << " |\n";
      }
    }
    md << summary.str();
    std::ofstream(out) << md.str();
    std::printf("%s", summary.str().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_bg_wellposedness: %s\n", e.what());
    return 1;
  }
  return 0;
}
