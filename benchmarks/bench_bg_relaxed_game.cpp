// The relaxed Wasserstein-gradient-flow game across ε (seed paper Thm 5.1, eqs. 70, 78;
// §6.5, eq. 90): the same generator trained by the `relaxed-wgf` game at several ε, from
// the KL gradient flow (ε → 0) to the OT game (ε → ∞, `ot-rkl` with α_L = 1), on a 2-D
// target from the base N(0, I) over t ∈ [0, 1].
//
// Per ε: the trained flow's time-1 law q against the unadjusted Langevin particle flow
// (`ula`, the particle version of the same gradient flow, run to the same time from the
// same base) — mean energy and mean position, with standard errors — and against π
// (importance ESS); the path length E∫|v| dt and transport E∫½|v|² dt of the flow; and
// its stiffness as the NFE a user pays: the fewest RK4 steps (4 evaluations each) whose end
// points agree with a 64-step reference to 10⁻² (max over the samples). One PNG per ε shows
// 40 trajectories over the target's energy.
//
//   bench_bg_relaxed_game [--potential potentials/double_well.json] [--eps 0.05,0.2,1,5,1e6]
//                      [--iterations 1000] [--steps 8] [--samples 20000] [--out DIR] [--seed 1]
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
#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/flows/flow.hpp"
#include "boltzlab/generators/path_measures.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/io/plot.hpp"
#include "boltzlab/targets/registry.hpp"

namespace bg = boltzlab::generators;
using boltzlab::RowMatrix;

namespace {

struct Moments {
  double mean_u = 0, se_u = 0, mean_x = 0, se_x = 0;
};

Moments moments(const RowMatrix& x, const boltzlab::Target& target) {
  const Eigen::Index n = x.rows();
  Eigen::VectorXd u(n);
  for (Eigen::Index i = 0; i < n; ++i) u[i] = target.reduced_energy(x.row(i).data(), nullptr);
  auto mean_se = [n](const Eigen::VectorXd& v, double& m, double& se) {
    m = v.mean();
    se = std::sqrt((v.array() - m).square().sum() / static_cast<double>(n - 1) / static_cast<double>(n));
  };
  Moments r;
  mean_se(u, r.mean_u, r.se_u);
  mean_se(x.col(0), r.mean_x, r.se_x);
  return r;
}

// The ULA ensemble at time 1 from N(0, I) (stream i of the seed per particle).
RowMatrix ula_reference(const boltzlab::Target& target, std::int64_t n, std::uint64_t seed, double step) {
  boltzlab::Ensemble e(static_cast<std::size_t>(n), target.dim());
  for (std::int64_t i = 0; i < n; ++i) {
    boltzlab::Rng rng = boltzlab::stream_for(seed, static_cast<std::uint64_t>(i));
    for (std::size_t k = 0; k < target.dim(); ++k) e.positions(i, static_cast<Eigen::Index>(k)) = rng.normal();
  }
  auto flow = boltzlab::make_flow("ula", boltzlab::Json::object(), "ula");
  boltzlab::FlowOptions o;
  o.steps = static_cast<std::size_t>(std::lround(1.0 / step));
  o.step_size = step;
  o.seed = seed + 1;
  o.progress = false;
  flow->run(target, e, o);
  return e.positions;
}

struct Row {
  double eps = 0;
  Moments m;
  double ess = 0, path_length = 0, transport = 0, seconds = 0;
  int nfe = -1;
};

// The 40 first trajectories of the measured path, as plot columns (NaN between trajectories).
std::vector<std::vector<double>> plot_columns(const bg::FlowPath& p) {
  std::vector<std::vector<double>> columns(2);
  for (int i = 0; i < 40; ++i) {
    for (const auto& xk : p.x) {
      columns[0].push_back(xk[i][0].item<double>());
      columns[1].push_back(xk[i][1].item<double>());
    }
    columns[0].push_back(NAN);
    columns[1].push_back(NAN);
  }
  return columns;
}

void plot_paths(const boltzlab::Target& target, const std::vector<std::vector<double>>& paths, const Row& row,
                const std::filesystem::path& png) {
  std::vector<double> gx, gy, gu;
  for (int i = 0; i <= 80; ++i)
    for (int j = 0; j <= 80; ++j) {
      const double x[2] = {-3.0 + 6.0 * i / 80, -3.0 + 6.0 * j / 80};
      gx.push_back(x[0]);
      gy.push_back(x[1]);
      gu.push_back(std::min(target.reduced_energy(x, nullptr), 6.0));
    }
  std::ostringstream s;
  s << boltzlab::gnuplot_datablock("u", {gx, gy, gu}) << boltzlab::gnuplot_datablock("p", paths);
  char title[160];
  std::snprintf(title, sizeof title, "relaxed game, eps = %g: 40 trajectories t = 0 -> 1 over u(x)",
                row.eps);
  s << "set title " << boltzlab::gnuplot_string(title) << "\n"
    << "set xrange [-3:3]\nset yrange [-3:3]\nset size ratio -1\nset xlabel 'x1'\nset ylabel 'x2'\n"
    << "set palette defined (0 '#ffffff', 6 '#9a9a9a')\nset cbrange [0:6]\nset cblabel 'u (cut at 6)'\n"
    << "plot $u using 1:2:3 with image notitle, $p using 1:2 with lines lc rgb '#1f4e99' notitle\n";
  const auto r = boltzlab::run_gnuplot(s.str(), png, 640, 640);
  if (!r.ok) std::fprintf(stderr, "plot %s skipped: %s\n", png.string().c_str(), r.note.c_str());
}

Row run_eps(const boltzlab::Target& target, double eps, int iterations, int steps, std::int64_t samples,
            std::uint64_t seed, const std::filesystem::path& out) {
  Row row;
  row.eps = eps;
  bg::GeneratorOptions o;
  o.potential.dim = static_cast<int>(target.dim());
  o.potential.width = 32;
  o.steps = steps;
  o.sample_steps = std::max(16, steps);
  bg::BoltzmannGenerator model(o, seed);
  bg::TrainOptions t;
  t.weights = bg::LossWeights::preset("relaxed-wgf", false);
  t.weights.epsilon = eps;
  t.iterations = iterations;
  t.batch_size = 256;
  t.learning_rate = 1e-2;
  t.eval_every = 0;
  t.progress = false;
  t.seed = seed;
  const double t0 = boltzlab::wall_seconds();
  bg::train(model, target, nullptr, t);
  row.seconds = boltzlab::wall_seconds() - t0;
  const auto s = model.sample(samples, seed + 100);
  row.m = moments(s.x, target);
  const Eigen::VectorXd lw = bg::flow_log_weights(s.x, s.log_q, target, nullptr, nullptr, nullptr);
  row.ess = boltzlab::kish_ess(lw) / static_cast<double>(samples);
  const bg::PathMeasures pm = bg::measure_paths(model, 2000, 77);
  row.path_length = pm.path_length;
  row.transport = pm.transport;
  row.nfe = pm.nfe;
  const auto paths = plot_columns(pm.path);
  char name[64];
  std::snprintf(name, sizeof name, "paths_eps_%g.png", eps);
  plot_paths(target, paths, row, out / name);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  CLI::App app{"relaxed WGF game across eps: trained flows against the ULA gradient flow and the OT limit"};
  std::string potential = std::string(BOLTZLAB_SOURCE_DIR) + "/potentials/double_well.json";
  std::vector<double> eps_list = {0.05, 0.2, 1.0, 5.0, 1e6};
  int iterations = 1000, steps = 8;
  std::int64_t samples = 20000;
  std::string out = "relaxed_game";
  std::uint64_t seed = 1;
  app.add_option("--potential", potential, "2-D potential file");
  app.add_option("--eps", eps_list, "the eps values")->delimiter(',');
  app.add_option("--iterations", iterations, "Adam steps per eps");
  app.add_option("--steps", steps, "RK4 steps in training (the game's time grid: resolve eps with steps >~ 1/eps)");
  app.add_option("--samples", samples, "samples per model and ULA particles");
  app.add_option("--out", out, "folder for the PNGs and results.md");
  app.add_option("--seed", seed, "seed");
  CLI11_PARSE(app, argc, argv);
  try {
    const boltzlab::Potential pot = boltzlab::load_potential(potential);
    const boltzlab::Target& target = *pot.target;
    if (target.dim() != 2) throw boltzlab::ConfigError(potential + ": the benchmark needs a 2-D target");
    std::filesystem::create_directories(out);
    const Moments ula = moments(ula_reference(target, samples, seed + 7, 1e-3), target);
    std::ostringstream md;
    md << "target " << pot.name << ", base N(0, I), T = 1, " << iterations << " Adam steps per eps, " << samples
       << " samples, " << steps << " RK4 steps in training\n\nULA (h = 1e-3, to t = 1): <u> " << ula.mean_u << " +- " << ula.se_u << ", <x1> " << ula.mean_x
       << " +- " << ula.se_x << "\n\n"
       << "| eps | <u>_q | (<u>_q - <u>_ULA)/se | <x1>_q | (<x1>_q - <x1>_ULA)/se | ESS/N vs pi | path length | "
          "transport | NFE (RK4, 1e-2) | train s |\n|---|---|---|---|---|---|---|---|---|---|\n";
    for (const double eps : eps_list) {
      const Row r = run_eps(target, eps, iterations, steps, samples, seed, out);
      const double zu = (r.m.mean_u - ula.mean_u) / std::hypot(r.m.se_u, ula.se_u);
      const double zx = (r.m.mean_x - ula.mean_x) / std::hypot(r.m.se_x, ula.se_x);
      char line[320];
      std::snprintf(line, sizeof line, "| %g | %.4f | %.1f | %.4f | %.1f | %.3f | %.3f | %.3f | %d | %.0f |\n", eps,
                    r.m.mean_u, zu, r.m.mean_x, zx, r.ess, r.path_length, r.transport, r.nfe, r.seconds);
      md << line;
      std::printf("%s", line);
      std::fflush(stdout);
    }
    std::ofstream(std::filesystem::path(out) / "results.md") << md.str();
    std::printf("\n%s", md.str().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_bg_relaxed_game: %s\n", e.what());
    return 1;
  }
  return 0;
}
