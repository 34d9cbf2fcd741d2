// One training iteration of boltzlab's score-based generative model (MlpScore on (y, s),
// 2 GELU hidden layers of 32, float64; VP noising β = 1, T = 3, ε = 1e-3; score_loss of
// score_matching.hpp with the derivatives in closed form by forward mode) against the same
// model and loss in PyTorch (benchmarks/score_torch.py via /usr/bin/python3: the derivatives
// by torch.autograd.grad with create_graph=True), run in the same invocation with the same
// thread count. An iteration is what train_score() does per step: draw a batch (data rows,
// s ~ U[ε, T], noise), zero_grad, loss, backward, gradient norm, Adam step; the benchmark's
// loop is checked to give train_score's parameters bit for bit.
//
// Both sides start from the same weights (written as .npy) and evaluate the loss and its
// gradient on the same check batch; the benchmark fails (exit 1) unless the loss terms and
// the gradient norm agree to 1e-10 relative, so the timed computations are the same.
// Cases: (a) the seed's §7 (d = 2, batch 64, implicit SM + α₁ HJB residual (p = 2) + α₂
// terminal condition), (b) implicit SM, batch 64, (c) denoising SM, batch 1024, (d)
// implicit SM + residual, batch 1024. Both sides run with glibc malloc tuned as in
// tools/bg-sample.cpp (the C++ side by mallopt, Python by the equivalent MALLOC_*_
// environment variables; --default-malloc leaves both at glibc's defaults).
// Prints medians and ratios; never asserts on time.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <torch/version.h>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/generators/noising.hpp"
#include "boltzlab/generators/score_matching.hpp"
#include "boltzlab/generators/score_model.hpp"
#include "boltzlab/io/npy.hpp"

namespace bg = boltzlab::generators;
namespace fs = std::filesystem;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);
constexpr double kLearningRate = 1e-3;  // the seed's §7
constexpr double kCheckTolerance = 1e-10;
// glibc malloc as in tools/bg-sample.cpp: the MB-sized batch-1024 tensors stay on the heap.
constexpr int kMmapThreshold = 32 * 1024 * 1024;
constexpr int kTrimThreshold = 2047 * 1024 * 1024;
constexpr int kTopPad = 512 * 1024 * 1024;

struct Case {
  std::string name, label;
  int batch = 64;
  bg::ScoreLossOptions loss;
};

std::vector<Case> make_cases() {
  auto loss = [](bg::ScoreObjective objective, double alpha1, double alpha2) {
    bg::ScoreLossOptions o;
    o.objective = objective;
    o.alpha1 = alpha1;
    o.alpha2 = alpha2;
    o.p = 2;
    return o;
  };
  using O = bg::ScoreObjective;
  return {{"a", "(a) §7: ISM + R1 (p=2) + terminal", 64, loss(O::kImplicit, 1.0, 1.0)},
          {"b", "(b) ISM", 64, loss(O::kImplicit, 0.0, 0.0)},
          {"c", "(c) denoising SM", 1024, loss(O::kDenoising, 0.0, 0.0)},
          {"d", "(d) ISM + R1 (p=2)", 1024, loss(O::kImplicit, 1.0, 0.0)}};
}

/// n samples of a 2-D checkerboard (the data of the seed's §7, Fig. 3a): uniform on the 8
/// of the 16 squares of side 2 tiling [−4, 4]² whose row + column index is even.
boltzlab::RowMatrix checkerboard(int n) {
  boltzlab::RowMatrix x(n, 2);
  boltzlab::Rng rng = boltzlab::stream_for(0, 0);
  for (int i = 0; i < n; ++i) {
    const double u = -4.0 + 8.0 * rng.uniform();
    const int column = static_cast<int>(std::floor(u / 2.0)) + 2;  // 0..3
    const int row = 2 * static_cast<int>(2.0 * rng.uniform()) + (column % 2);
    x(i, 0) = u;
    x(i, 1) = -4.0 + 2.0 * row + 2.0 * rng.uniform();
  }
  return x;
}

void write_tensor(const fs::path& path, const torch::Tensor& t) {
  const auto c = t.detach().contiguous();
  std::vector<std::size_t> shape;
  for (const auto n : c.sizes()) shape.push_back(static_cast<std::size_t>(n));
  boltzlab::write_npy(path, shape, c.data_ptr<double>());
}

double gradient_norm(const std::vector<torch::Tensor>& params) {
  double sum = 0.0;
  for (const auto& p : params)
    if (p.grad().defined()) sum += (p.grad() * p.grad()).sum().item<double>();
  return std::sqrt(sum);
}

/// Loss terms and gradient norm on `b` at the model's current weights (gradients cleared after).
nlohmann::json check_values(bg::MlpScore& model, const bg::NoisingSde& sde, const bg::ScoreBatch& b,
                            const bg::ScoreLossOptions& loss) {
  auto params = model.parameters();
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  const bg::ScoreLossTerms terms = bg::score_loss(model, sde, b.y0, b.s, b.noise, loss);
  terms.total.backward();
  nlohmann::json j = {{"total", terms.total.item<double>()}, {"matching", terms.matching},
                      {"residual", terms.residual}, {"terminal", terms.terminal},
                      {"grad_norm", gradient_norm(params)}};
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  return j;
}

struct Timing {
  double median_ms = 0.0, min_ms = 0.0;
  double cpu_median_ms = 0.0;  // process CPU time: robust against other jobs on the machine
  double max_train_score_difference = 0.0;  // |θ| difference to train_score after the warm-up
};

double max_difference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double m = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, (a[i] - b[i]).abs().max().item<double>());
  return m;
}

/// Warm-up, then `reps` timed iterations of train_score's step; after the warm-up the
/// parameters are compared with train_score run for as many iterations from the same start.
Timing time_boltzlab(const Case& c, const bg::MlpScoreOptions& arch, const bg::NoisingSde& sde,
                     const boltzlab::RowMatrix& data, int warmup, int reps) {
  constexpr std::uint64_t kSeed = 0;
  bg::MlpScore model(arch, 0);
  auto params = model.parameters();
  torch::optim::Adam adam(params, torch::optim::AdamOptions(kLearningRate));
  std::vector<double> times, cpu_times;
  Timing t;
  for (int it = 0; it < warmup + reps; ++it) {
    if (it == warmup) {
      bg::MlpScore reference(arch, 0);
      bg::ScoreTrainOptions o;
      o.loss = c.loss;
      o.iterations = warmup;
      o.batch_size = c.batch;
      o.learning_rate = kLearningRate;
      o.seed = kSeed;
      o.progress = false;
      bg::train_score(reference, sde, data, o);
      t.max_train_score_difference = max_difference(params, reference.parameters());
    }
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = boltzlab::cpu_seconds();
    const bg::ScoreBatch b = bg::draw_score_batch(data, sde, c.batch, kSeed, it);
    adam.zero_grad();
    const bg::ScoreLossTerms terms = bg::score_loss(model, sde, b.y0, b.s, b.noise, c.loss);
    bool ok = std::isfinite(terms.total.item<double>());
    if (ok) {
      terms.total.backward();
      ok = std::isfinite(torch::nn::utils::clip_grad_norm_(params, 1e300));
    }
    if (ok) adam.step();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (it >= warmup) {
      times.push_back(sec);
      cpu_times.push_back(boltzlab::cpu_seconds() - c0);
    }
  }
  std::sort(times.begin(), times.end());
  std::sort(cpu_times.begin(), cpu_times.end());
  t.cpu_median_ms = 1e3 * cpu_times[cpu_times.size() / 2];
  t.median_ms = 1e3 * times[times.size() / 2];
  t.min_ms = 1e3 * times.front();
  return t;
}

/// The BLAS libtorch reports (BLAS_INFO of at::show_config()) and the BLAS libraries mapped
/// into this process.
std::string blas_description() {
  std::string info = "unknown";
  const std::string config = at::show_config();
  const auto pos = config.find("BLAS_INFO=");
  if (pos != std::string::npos) info = config.substr(pos + 10, config.find(',', pos) - pos - 10);
  std::set<std::string> libs;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const fs::path path = line.substr(slash);
    const std::string name = path.filename().string();
    if (name.find("blas") != std::string::npos || name.find("mkl") != std::string::npos) {
      std::error_code ec;
      const fs::path real = fs::canonical(path, ec);
      libs.insert(ec ? path.string() : real.string());
    }
  }
  for (const auto& l : libs) info += " " + l;
  return info;
}

/// Writes the shared inputs of the baseline: data, initial weights, cases.json.
void write_inputs(const fs::path& dir, const boltzlab::RowMatrix& data, const bg::MlpScoreOptions& arch,
                  const bg::NoisingSde& sde, const std::vector<Case>& cases) {
  boltzlab::write_npy(dir / "data.npy", data);
  bg::MlpScore model(arch, 0);
  const auto params = model.parameters();  // w0, b0, w1, b1, …
  for (std::size_t l = 0; 2 * l < params.size(); ++l) {
    write_tensor(dir / ("w" + std::to_string(l) + ".npy"), params[2 * l]);
    write_tensor(dir / ("b" + std::to_string(l) + ".npy"), params[2 * l + 1]);
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& c : cases) {
    list.push_back({{"name", c.name}, {"batch", c.batch}, {"hidden", arch.hidden},
                    {"objective", c.loss.objective == bg::ScoreObjective::kImplicit ? "implicit" : "denoising"},
                    {"weighting", c.loss.weighting == bg::ScoreWeighting::kDiffusion ? "diffusion" : "variance"},
                    {"alpha0", c.loss.alpha0}, {"alpha1", c.loss.alpha1}, {"alpha2", c.loss.alpha2},
                    {"p", c.loss.p}, {"beta", sde.options().beta}, {"time", sde.options().time},
                    {"t_min", sde.options().t_min}, {"learning_rate", kLearningRate}});
  }
  std::ofstream(dir / "cases.json") << list.dump() << "\n";
}

/// Runs the baseline; returns its JSON lines (library line first, then one per case).
std::vector<nlohmann::json> run_python(const fs::path& dir, int threads, int reps, int warmup, bool tuned_malloc) {
  const std::string env = tuned_malloc ? "MALLOC_MMAP_THRESHOLD_=" + std::to_string(kMmapThreshold) +
                                             " MALLOC_TRIM_THRESHOLD_=" + std::to_string(kTrimThreshold) +
                                             " MALLOC_TOP_PAD_=" + std::to_string(kTopPad) + " "
                                       : std::string();
  const std::string cmd = env + "/usr/bin/python3 " BOLTZLAB_SOURCE_DIR "/benchmarks/score_torch.py dir=" + dir.string() +
                          " threads=" + std::to_string(threads) + " reps=" + std::to_string(reps) +
                          " warmup=" + std::to_string(warmup);
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run " + cmd);
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe)) out += buf;
  if (pclose(pipe) != 0)
    throw std::runtime_error("the PyTorch baseline failed (" + cmd + "; /usr/bin/python3 needs python3-torch)");
  std::vector<nlohmann::json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    try {
      lines.push_back(nlohmann::json::parse(line));
    } catch (const std::exception&) {
      throw std::runtime_error("baseline output not understood: " + out);
    }
  }
  return lines;
}

double relative_difference(double a, double b) {
  return std::abs(a - b) / std::max({std::abs(a), std::abs(b), 1e-300});
}

/// Largest relative difference over the loss terms and the gradient norm.
double check_difference(const nlohmann::json& mine, const nlohmann::json& theirs) {
  double worst = 0.0;
  for (const char* key : {"total", "matching", "residual", "terminal", "grad_norm"}) {
    const double a = mine.at(key).get<double>(), b = theirs.at(key).get<double>();
    if (a == 0.0 && b == 0.0) continue;
    worst = std::max(worst, relative_difference(a, b));
  }
  return worst;
}

/// A temporary directory removed when it goes out of scope.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "bench_bg_score_XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary directory");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

int run(int threads, int reps, int warmup, bool skip_python, bool tuned_malloc) {
  if (tuned_malloc) {
    mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
    mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
    mallopt(M_TOP_PAD, kTopPad);
  }
  torch::set_num_threads(threads);
  const bg::NoisingSde sde(bg::NoisingOptions{});  // VP, β = 1, T = 3, ε = 1e-3: the seed's §7
  bg::MlpScoreOptions arch;                        // d = 2, hidden 32, 32
  const boltzlab::RowMatrix data = checkerboard(8192);
  const std::vector<Case> cases = make_cases();
  TempDir dir;
  write_inputs(dir.path, data, arch, sde, cases);

  std::printf("bench_bg_score_iteration: MLP score (y, s) -> 32 -> 32 -> y (GELU), d = 2, float64, VP beta = 1, "
              "T = 3; alpha0 = 1, alpha1 = alpha2 = 1 where on; checkerboard data; Adam lr 1e-3; %d thread(s); "
              "median of %d iterations after %d warm-up; glibc malloc %s on both sides\n",
              threads, reps, warmup, tuned_malloc ? "tuned as in bg-sample" : "defaults");
  std::printf("boltzlab: LibTorch %s, BLAS %s\n", TORCH_VERSION, blas_description().c_str());
  std::vector<nlohmann::json> checks;
  std::vector<Timing> timings;
  for (const auto& c : cases) {
    bg::MlpScore model(arch, 0);
    const fs::path case_dir = dir.path / c.name;
    fs::create_directories(case_dir);
    const bg::ScoreBatch b = bg::draw_score_batch(data, sde, c.batch, 1, 0);  // check batch: another stream than training
    write_tensor(case_dir / "y0.npy", b.y0);
    write_tensor(case_dir / "s.npy", b.s);
    write_tensor(case_dir / "noise.npy", b.noise);
    checks.push_back(check_values(model, sde, b, c.loss));
    timings.push_back(time_boltzlab(c, arch, sde, data, warmup, reps));
  }
  bool ok = true;
  for (const auto& t : timings) ok = ok && t.max_train_score_difference == 0.0;
  if (!ok) std::printf("error: the timed loop does not reproduce train_score's parameters\n");

  std::vector<nlohmann::json> py;
  if (!skip_python) {
    py = run_python(dir.path, threads, reps, warmup, tuned_malloc);
    if (py.size() != cases.size() + 1)
      throw std::runtime_error("baseline printed " + std::to_string(py.size()) + " lines, expected " +
                               std::to_string(cases.size() + 1));
    const auto& lib = py.front();
    std::string libs;
    for (const auto& l : lib.at("blas_libraries")) libs += " " + l.get<std::string>();
    std::printf("PyTorch: torch %s, BLAS %s%s, %d thread(s)\n", lib.at("torch").get<std::string>().c_str(),
                lib.at("blas").get<std::string>().c_str(), libs.c_str(), lib.at("threads").get<int>());
  }
  std::printf("\n%-36s %5s %11s %11s %7s %11s %11s %7s  %s\n", "case", "batch", "boltzlab ms", "PyTorch ms", "ratio",
              "boltzlab CPU", "PyTorch CPU", "ratio", "same loss + gradient on one batch (max rel. diff)");
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto& t = timings[i];
    if (skip_python) {
      std::printf("%-36s %5d %11.3f %11s %7s %11.3f %11s %7s  loss %.10g\n", c.label.c_str(), c.batch, t.median_ms,
                  "-", "-", t.cpu_median_ms, "-", "-", checks[i].at("total").get<double>());
      continue;
    }
    const auto& p = py[i + 1];
    const double diff = check_difference(checks[i], p.at("check"));
    const bool same = p.at("case").get<std::string>() == c.name && diff <= kCheckTolerance;
    ok = ok && same;
    const double py_ms = p.at("median_ms").get<double>(), py_cpu = p.at("cpu_median_ms").get<double>();
    std::printf("%-36s %5d %11.3f %11.3f %6.2fx %11.3f %11.3f %6.2fx  %s (%.1e; loss %.10g)\n", c.label.c_str(),
                c.batch, t.median_ms, py_ms, py_ms / t.median_ms, t.cpu_median_ms, py_cpu, py_cpu / t.cpu_median_ms,
                same ? "yes" : "NO", diff, checks[i].at("total").get<double>());
  }
  std::printf("ms per iteration, medians (wall clock; CPU: process CPU time); ratio = PyTorch / boltzlab.\n"
              "Wall-clock minima: boltzlab");
  for (const auto& t : timings) std::printf(" %.3f", t.min_ms);
  if (!skip_python) {
    std::printf(", PyTorch");
    for (std::size_t i = 1; i < py.size(); ++i) std::printf(" %.3f", py[i].at("min_ms").get<double>());
  }
  std::printf(" ms\n");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  CLI::App app{"bench_bg_score_iteration"};
  int threads = 1, reps = 60, warmup = 3;
  bool skip_python = false, default_malloc = false;
  app.add_option("--threads", threads, "LibTorch intra-op threads (both sides)")->check(CLI::Range(1, 256));
  app.add_option("--reps", reps, "timed iterations per case (median reported)")->check(CLI::Range(1, 100000));
  app.add_option("--warmup", warmup, "untimed iterations first")->check(CLI::Range(1, 1000));
  app.add_flag("--skip-python", skip_python, "do not run the PyTorch baseline");
  app.add_flag("--default-malloc", default_malloc, "leave glibc malloc at its defaults (both sides)");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(threads, reps, warmup, skip_python, !default_malloc);
  } catch (const std::exception& e) {
    std::cerr << "bench_bg_score_iteration: error: " << e.what() << "\n";
    return 1;
  }
}
