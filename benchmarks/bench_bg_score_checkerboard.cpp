// The seed paper's §7 experiment (Zhang & Katsoulakis, "A mean-field games laboratory for
// generative modeling"): score-based generative models of the checkerboard density trained
// by implicit score matching with and without the HJB regularizer R₁ (eq. 92–93), sampled by
// the reverse SDE with Euler–Maruyama. Settings as in the paper: OU noising f = x/2, σ = 1,
// T = 3, Δt = 10⁻³, score network 2 × 32 GELU on (y, s), batches of 64, Adam 10⁻³.
//
// The paper gives the panels' pictures but not their parameter values, only how they
// differ (text of §7 and §7.1). The panel table below is this program's reading of that
// text; every PNG states its values.
//
// Numbers the paper does not give, per panel: total variation between the samples'
// 2-D histogram (bins of 0.25 on [−4.5, 4.5]²) and the exact bin masses, with the value an
// exact sample of the same size attains (the noise floor); the fraction of samples off the
// support; the fraction in a band of width 0.1 inside the squares' edges (the Gibbs effect
// the paper describes; exact value printed); the HJB residual E Σ|r_i|² and E Σ|r_i| on
// fresh η-samples; the implicit score-matching loss; wall times.
//
//   bench_bg_score_checkerboard [--iterations 100000] [--samples 20000] [--panels 2a,3b]
//                               [--out DIR] [--threads 2] [--seed 1]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/generators/noising.hpp"
#include "boltzlab/generators/score_matching.hpp"
#include "boltzlab/generators/score_model.hpp"
#include "boltzlab/generators/score_sampler.hpp"
#include "boltzlab/generators/target_bridge.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/io/plot.hpp"

namespace bg = boltzlab::generators;
using boltzlab::RowMatrix;

namespace {

struct Panel {
  const char* name;
  double alpha0, alpha1, alpha2;
  int p;
  const char* reading;  // what the paper's text says of this panel
};

// Fig. 2: α₀ = 1 (score matching + HJB regularizer); Fig. 3: α₀ = 0 (PINN: the residual
// and its terminal condition only). 3c is not in the paper: 3b with p = 1.
const std::vector<Panel>& panels() {
  static const std::vector<Panel> table = {
      {"2a", 1, 0, 0, 2, "standard SGM (implicit score matching)"},
      {"2b", 1, 1, 0, 2, "HJB residual, no terminal condition"},
      {"2c", 1, 0, 1, 2, "terminal condition enforced"},
      {"2d", 1, 1, 1, 1, "terminal condition enforced, p = 1"},
      {"2e", 1, 1, 1, 2, "as 2d with p = 2"},
      {"2f", 1, 1, 0.1, 1, "as 2d with a smaller alpha2"},
      {"3a", 0, 1, 1, 2, "PINN: residual and terminal condition only"},
      {"3b", 0, 1, 10, 2, "PINN with the terminal constant larger than the residual's"},
      {"3c", 0, 1, 10, 1, "3b with p = 1 (not in the paper)"},
  };
  return table;
}

/// The checkerboard density: uniform on the 8 squares [2i, 2i+2] × [2j, 2j+2] ⊂ [−4, 4]²
/// with i + j even (the FFJORD toy set scaled by 2); density 1/32 there.
bool on_support(double x, double y) {
  if (std::abs(x) >= 4.0 || std::abs(y) >= 4.0) return false;
  const long i = static_cast<long>(std::floor(x / 2.0)), j = static_cast<long>(std::floor(y / 2.0));
  return ((i + j) % 2 + 2) % 2 == 0;
}

/// Distance from (x, y) (on the support) to the nearest edge of its square.
double edge_distance(double x, double y) {
  auto d = [](double v) {
    const double r = v / 2.0 - std::floor(v / 2.0);
    return 2.0 * std::min(r, 1.0 - r);
  };
  return std::min(d(x), d(y));
}

RowMatrix checkerboard(std::int64_t n, std::uint64_t seed) {
  RowMatrix out(n, 2);
  for (std::int64_t k = 0; k < n; ++k) {
    boltzlab::Rng rng = boltzlab::stream_for(seed, static_cast<std::uint64_t>(k));
    const double x = -4.0 + 8.0 * rng.uniform();
    const double u = 2.0 * rng.uniform();  // offset inside a column's square
    const long i = static_cast<long>(std::floor(x / 2.0));
    const long j = 2 * static_cast<long>(rng() % 2) - 2 + (((i % 2) + 2) % 2 == 0 ? 0 : 1);  // i + j even
    out(k, 0) = x;
    out(k, 1) = 2.0 * static_cast<double>(j) + u;
  }
  return out;
}

constexpr double kLo = -4.5, kHi = 4.5, kBin = 0.25;
constexpr int kBins = 36;
constexpr double kBand = 0.1;

/// TV between the samples' histogram and the exact bin masses (bins align with the squares).
double total_variation(const RowMatrix& x) {
  std::vector<double> count(kBins * kBins, 0.0);
  double outside = 0.0;
  for (Eigen::Index k = 0; k < x.rows(); ++k) {
    const int i = static_cast<int>(std::floor((x(k, 0) - kLo) / kBin));
    const int j = static_cast<int>(std::floor((x(k, 1) - kLo) / kBin));
    if (i < 0 || j < 0 || i >= kBins || j >= kBins || !std::isfinite(x(k, 0)) || !std::isfinite(x(k, 1)))
      outside += 1.0;
    else
      count[static_cast<std::size_t>(i * kBins + j)] += 1.0;
  }
  const double n = static_cast<double>(x.rows());
  double tv = outside / n;
  for (int i = 0; i < kBins; ++i)
    for (int j = 0; j < kBins; ++j) {
      const double cx = kLo + (i + 0.5) * kBin, cy = kLo + (j + 0.5) * kBin;
      const double exact = on_support(cx, cy) ? kBin * kBin / 32.0 : 0.0;
      tv += std::abs(count[static_cast<std::size_t>(i * kBins + j)] / n - exact);
    }
  return 0.5 * tv;
}

struct Metrics {
  double tv = 0, off_support = 0, edge_band = 0, residual_p2 = 0, residual_p1 = 0, matching = 0;
  double train_seconds = 0, sample_seconds = 0;
  int skipped = 0;
};

Metrics sample_metrics(const RowMatrix& x) {
  Metrics m;
  m.tv = total_variation(x);
  double off = 0, band = 0;
  for (Eigen::Index k = 0; k < x.rows(); ++k) {
    if (!on_support(x(k, 0), x(k, 1))) off += 1;
    else if (edge_distance(x(k, 0), x(k, 1)) < kBand) band += 1;
  }
  m.off_support = off / static_cast<double>(x.rows());
  m.edge_band = band / static_cast<double>(x.rows());
  return m;
}

/// Residuals and the implicit score-matching loss on 4096 fresh η-samples.
void model_metrics(bg::ScoreField& model, const bg::NoisingSde& sde, const RowMatrix& data, Metrics& m) {
  torch::NoGradGuard ng;
  const auto gen = at::detail::createCPUGenerator(12345);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto y0 = bg::to_tensor(RowMatrix(data.bottomRows(4096)));
  const auto s = sde.options().t_min + torch::rand({4096}, gen, f64) * (sde.horizon() - sde.options().t_min);
  const auto xi = torch::randn({4096, 2}, gen, f64);
  const auto y = sde.perturb(y0, s, xi);
  m.residual_p2 = bg::hjb_residual(model, sde, y, s, 2).mean().item<double>();
  m.residual_p1 = bg::hjb_residual(model, sde, y, s, 1).mean().item<double>();
  m.matching = bg::score_matching_terms(model, sde, y0, s, xi, bg::ScoreObjective::kImplicit,
                                        bg::ScoreWeighting::kDiffusion)
                   .mean()
                   .item<double>();
}

std::string settings_line(const Panel& p, int iterations) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "alpha0 = %g, alpha1 = %g, alpha2 = %g, p = %d; %d batches of 64, Adam 1e-3",
                p.alpha0, p.alpha1, p.alpha2, p.p, iterations);
  return buf;
}

void plot_panel(const RowMatrix& x, const Panel& p, const Metrics& m, int iterations,
                const std::filesystem::path& png) {
  // 2-D histogram image on [−4.5, 4.5]² at the metric's bins (density per unit area).
  std::vector<double> cx, cy, z;
  std::vector<double> count(kBins * kBins, 0.0);
  for (Eigen::Index k = 0; k < x.rows(); ++k) {
    const int i = static_cast<int>(std::floor((x(k, 0) - kLo) / kBin));
    const int j = static_cast<int>(std::floor((x(k, 1) - kLo) / kBin));
    if (i >= 0 && j >= 0 && i < kBins && j < kBins) count[static_cast<std::size_t>(i * kBins + j)] += 1.0;
  }
  for (int j = 0; j < kBins; ++j)
    for (int i = 0; i < kBins; ++i) {
      cx.push_back(kLo + (i + 0.5) * kBin);
      cy.push_back(kLo + (j + 0.5) * kBin);
      z.push_back(count[static_cast<std::size_t>(i * kBins + j)] / (static_cast<double>(x.rows()) * kBin * kBin));
    }
  char metrics[256];
  std::snprintf(metrics, sizeof metrics, "TV %.3f, off support %.2f %%, edge band %.1f %% (exact %.1f %%)", m.tv,
                100 * m.off_support, 100 * m.edge_band, 100 * (1.0 - std::pow(1.0 - kBand, 2.0)));
  std::ostringstream s;
  s << boltzlab::gnuplot_datablock("h", {cx, cy, z});
  s << boltzlab::viridis_palette() << "\nset size ratio -1\nset xrange [-4.5:4.5]\nset yrange [-4.5:4.5]\n"
    << "set cbrange [0:0.08]\nset cblabel 'density'\nset xlabel 'x1'\nset ylabel 'x2'\n"
    << "set title " << boltzlab::gnuplot_string(std::string("Fig. ") + p.name + ": " + p.reading) << "\n"
    << boltzlab::gnuplot_caption({settings_line(p, iterations),
                                  "OU f = x/2, sigma = 1, T = 3, reverse SDE Euler-Maruyama dt = 1e-3; " +
                                      std::to_string(x.rows()) + " samples",
                                  metrics})
    << "plot $h using 1:2:3 with image notitle\n";
  const auto r = boltzlab::run_gnuplot(s.str(), png, 640, 720);
  if (!r.ok) std::fprintf(stderr, "plot %s skipped: %s\n", png.string().c_str(), r.note.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  CLI::App app{"The seed paper's HJB-regularized SGM experiment on the checkerboard (Figs. 2 and 3)"};
  int iterations = 100000, threads = 2, steps = 3000;
  std::int64_t samples = 20000;
  std::uint64_t seed = 1;
  std::string only, out = "runs/score_checkerboard";
  app.add_option("--iterations", iterations, "training batches per panel (paper: 1e5)");
  app.add_option("--samples", samples, "reverse-SDE samples per panel");
  app.add_option("--steps", steps, "Euler-Maruyama steps over [eps, T] (3000: dt = 1e-3)");
  app.add_option("--panels", only, "comma-separated panels (default: all)");
  app.add_option("--out", out, "folder for samples_<panel>.npy, <panel>.png, results.md");
  app.add_option("--threads", threads, "panels trained concurrently");
  app.add_option("--seed", seed, "seed of data, training and sampling");
  CLI11_PARSE(app, argc, argv);
  boltzlab::set_num_threads(threads);
  torch::set_num_threads(1);
  std::vector<Panel> chosen;
  for (const auto& p : panels())
    if (only.empty() || ("," + only + ",").find(std::string(",") + p.name + ",") != std::string::npos)
      chosen.push_back(p);
  std::filesystem::create_directories(out);
  const bg::NoisingSde sde{bg::NoisingOptions{}};  // OU β = 1, T = 3, ε = 1e-3
  const RowMatrix data = checkerboard(1000000, seed);
  const Metrics floor = sample_metrics(checkerboard(samples, seed + 1));
  std::vector<Metrics> results(chosen.size());
  boltzlab::for_each_index(chosen.size(), [&](std::size_t k) {
    const Panel& p = chosen[k];
    bg::MlpScore model(bg::MlpScoreOptions{2, {32, 32}}, seed);
    bg::ScoreTrainOptions t;
    t.iterations = iterations;
    t.seed = seed;
    t.progress = false;
    t.loss.alpha0 = p.alpha0;
    t.loss.alpha1 = p.alpha1;
    t.loss.alpha2 = p.alpha2;
    t.loss.p = p.p;
    const auto hist = bg::train_score(model, sde, data, t);
    bg::ReverseSdeOptions r;
    r.steps = steps;
    const double t0 = boltzlab::wall_seconds();
    const RowMatrix x = bg::sample_reverse_sde(model, sde, samples, seed + 2, r);
    Metrics m = sample_metrics(x);
    m.sample_seconds = boltzlab::wall_seconds() - t0;
    m.train_seconds = hist.wall_seconds;
    m.skipped = hist.skipped;
    model_metrics(model, sde, data, m);
    boltzlab::write_npy(std::filesystem::path(out) / ("samples_" + std::string(p.name) + ".npy"), x);
    plot_panel(x, p, m, iterations, std::filesystem::path(out) / (std::string(p.name) + ".png"));
    results[k] = m;
    std::fprintf(stderr, "panel %s done: TV %.3f, %.0f s training\n", p.name, m.tv, m.train_seconds);
  });
  std::ostringstream md;
  md << "| panel | alpha0 | alpha1 | alpha2 | p | TV | off support | edge band | E sum r^2 | E sum |r| | ISM loss | "
        "train s | sample s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  char row[512];
  for (std::size_t k = 0; k < chosen.size(); ++k) {
    const auto& p = chosen[k];
    const auto& m = results[k];
    std::snprintf(row, sizeof row,
                  "| %s | %g | %g | %g | %d | %.3f | %.2f %% | %.1f %% | %.3g | %.3g | %.3f | %.0f | %.1f |\n", p.name,
                  p.alpha0, p.alpha1, p.alpha2, p.p, m.tv, 100 * m.off_support, 100 * m.edge_band, m.residual_p2,
                  m.residual_p1, m.matching, m.train_seconds, m.sample_seconds);
    md << row;
  }
  std::snprintf(row, sizeof row,
                "| exact sample | | | | | %.3f | %.2f %% | %.1f %% (expected %.1f %%) | | | | | |\n", floor.tv,
                100 * floor.off_support, 100 * floor.edge_band, 100 * (1.0 - std::pow(1.0 - kBand, 2.0)));
  md << row;
  std::printf("%s", md.str().c_str());
  std::ofstream(std::filesystem::path(out) / "results.md") << md.str();
  return 0;
}
