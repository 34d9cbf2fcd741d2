// The BLAS under LibTorch, in one invocation: the same measurements in three child
// processes of this program, one per BLAS setting.
//   reference   Debian's netlib reference BLAS (LD_PRELOAD of /usr/lib/x86_64-linux-gnu/blas/libblas.so.3,
//               package libblas3), what LibTorch runs on when OpenBLAS is not installed;
//   generic     OpenBLAS with its generic Prescott (SSE3) kernels (OPENBLAS_CORETYPE=Prescott), what
//               OpenBLAS 0.3.21 chooses by itself on a CPU newer than its model table;
//   native      OpenBLAS with the kernels the tools select (core/blas_kernels.hpp: SkylakeX on AVX-512,
//               Haswell on AVX2; OpenBLAS's own choice on a CPU it knows).
// Each child measures, on one thread: a 512×256 · 256×256 product (torch::mm) in float64 and
// float32, best of 50 after a warm-up; and one training step of a spline coupling flow
// (generators/spline_coupling.hpp; d = 60, 8 layers, conditioners 2 × 256, 8 bins, float64,
// batch 1024: forward KL to a standard normal, backward, Adam), median of --reps.
// Prints the table and each setting's ratio to the reference; never asserts on time.
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/app/bg_run.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/spline_coupling.hpp"

namespace bg = boltzlab::generators;

namespace {

constexpr const char* kReferenceBlas = "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3";

double matmul_gflops(torch::Dtype dtype) {
  const auto a = torch::randn({512, 256}, torch::TensorOptions().dtype(dtype));
  const auto b = torch::randn({256, 256}, torch::TensorOptions().dtype(dtype));
  auto c = torch::mm(a, b);
  double best = 1e300;
  for (int r = 0; r < 50; ++r) {
    const double t0 = boltzlab::wall_seconds();
    c = torch::mm(a, b);
    best = std::min(best, boltzlab::wall_seconds() - t0);
  }
  return 2.0 * 512 * 256 * 256 / best * 1e-9;
}

nlohmann::json child(int reps, int batch, int hidden) {
  bg::set_generator_threads(1);
  torch::manual_seed(0);
  nlohmann::json out;
  // The library whose dgemm_ LibTorch resolves to (an LD_PRELOAD of the reference BLAS wins over
  // the OpenBLAS that is also loaded), described by OpenBLAS itself where it is that one.
  std::string provider;
  Dl_info info;
  if (void* fn = dlsym(RTLD_DEFAULT, "dgemm_"); fn && dladdr(fn, &info) && info.dli_fname) {
    char* real = realpath(info.dli_fname, nullptr);  // through the alternatives links
    provider = real ? real : info.dli_fname;
    std::free(real);
  }
  const bool openblas = provider.find("openblas") != std::string::npos;
  out["blas"] = openblas ? boltzlab::blas_description() : "dgemm_ from " + provider;
  out["dgemm_gflops"] = matmul_gflops(torch::kFloat64);
  out["sgemm_gflops"] = matmul_gflops(torch::kFloat32);
  bg::SplineCouplingOptions o;
  o.dim = 60;
  o.layers = 8;
  o.hidden = hidden;
  o.depth = 2;
  o.bins = 8;
  bg::SplineCouplingFlow flow(o, 1);
  out["parameters"] = flow->parameter_count();
  torch::optim::Adam adam(flow->parameters(), torch::optim::AdamOptions(1e-4));
  const auto x = 1.3 * torch::randn({batch, 60}, torch::TensorOptions().dtype(torch::kFloat64)) + 0.5;
  std::vector<double> ms;
  for (int r = 0; r <= reps; ++r) {
    const double t0 = boltzlab::wall_seconds();
    adam.zero_grad();
    const auto v = flow->inverse(x);
    const auto loss = (0.5 * v.y.square().sum(1) - v.log_det).mean();
    loss.backward();
    adam.step();
    if (r > 0) ms.push_back(1e3 * (boltzlab::wall_seconds() - t0));  // the first is a warm-up
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  out["step_ms"] = ms[ms.size() / 2];
  return out;
}

std::string self_path() {
  std::array<char, 4096> buf{};
  const ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  return n > 0 ? std::string(buf.data(), static_cast<std::size_t>(n)) : std::string();
}

/// Runs this program as a child under `env_settings` and returns its last output line as JSON.
nlohmann::json run_child(const std::string& env_settings, int reps, int batch, int hidden) {
  const std::string cmd = "env -u OPENBLAS_CORETYPE -u LD_PRELOAD " + env_settings + " '" + self_path() +
                          "' --child --reps " + std::to_string(reps) + " --batch " + std::to_string(batch) +
                          " --hidden " + std::to_string(hidden);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  if (!pipe) return nullptr;
  std::string last;
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), static_cast<int>(buf.size()), pipe.get()))
    if (buf[0] != '\n') last = buf.data();  // the JSON line is the child's last
  try {
    return nlohmann::json::parse(last);
  } catch (const std::exception&) {
    return nullptr;
  }
}

}  // namespace

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  CLI::App app{"bench_bg_blas"};
  int reps = 10, batch = 1024, hidden = 256;
  bool is_child = false;
  app.add_option("--reps", reps, "timed training steps per setting (median reported)");
  app.add_option("--batch", batch, "training batch");
  app.add_option("--hidden", hidden, "width of the conditioners' hidden layers");
  app.add_flag("--child", is_child, "measure in this process and print one JSON line (internal)");
  CLI11_PARSE(app, argc, argv);
  if (is_child) {
    std::cout << child(reps, batch, hidden).dump() << std::endl;
    return 0;
  }
  struct Setting {
    const char* name;
    std::string env;
  };
  const std::vector<Setting> settings = {{"reference", std::string("LD_PRELOAD=") + kReferenceBlas},
                                         {"generic", "OPENBLAS_CORETYPE=Prescott"},
                                         {"native", ""}};
  std::printf("bench_bg_blas: one thread; matmul 512x256 * 256x256; spline coupling step d = 60, 8 layers, "
              "hidden 2 x %d, batch %d, float64\n",
              hidden, batch);
  std::printf("%-10s %-60s %10s %10s %12s %8s\n", "setting", "BLAS", "dgemm GF/s", "sgemm GF/s", "step ms", "speedup");
  double reference_ms = 0.0;
  nlohmann::json all = nlohmann::json::object();
  for (const auto& s : settings) {
    if (s.env.rfind("LD_PRELOAD=", 0) == 0 && access(kReferenceBlas, R_OK) != 0) {
      std::printf("%-10s (not installed: %s)\n", s.name, kReferenceBlas);
      continue;
    }
    const nlohmann::json r = run_child(s.env, reps, batch, hidden);
    if (r.is_null()) {
      std::printf("%-10s (the child process failed)\n", s.name);
      continue;
    }
    const double ms = r["step_ms"].get<double>();
    if (std::string(s.name) == "reference") reference_ms = ms;
    std::printf("%-10s %-60s %10.1f %10.1f %12.1f", s.name, r["blas"].get<std::string>().c_str(),
                r["dgemm_gflops"].get<double>(), r["sgemm_gflops"].get<double>(), ms);
    if (reference_ms > 0)
      std::printf(" %7.2fx\n", reference_ms / ms);
    else
      std::printf(" %8s\n", "-");
    all[s.name] = r;
  }
  std::printf("%s\n", all.dump().c_str());
  return 0;
}
