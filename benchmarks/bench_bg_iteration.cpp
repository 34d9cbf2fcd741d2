// One OT-Flow training iteration through bg::train (data batch, forward + backward,
// gradient clipping, Adam step; 8 RK4 steps,
// batch 1024, d = 2, width 32, nTh = 2, float64) with boltzlab's LibTorch generator,
// against the same formulation in PyTorch (benchmarks/otflow_torch.py via
// /usr/bin/python3) run in the same invocation with the same thread count.
// With --fused also times the hand-fused forward + adjoint (fused_otflow.hpp: same loss,
// gradients checked against autograd in tests/generators/test_fused_otflow.cpp) followed
// by the same Adam step as the PyTorch baseline.
// Prints medians and the ratio; never asserts on time.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/app/bg_run.hpp"
#include "boltzlab/generators/fused_otflow.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/target_bridge.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/targets/gaussian.hpp"

namespace bg = boltzlab::generators;

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  CLI::App app{"bench_bg_iteration"};
  int threads = 2, reps = 10, batch = 1024, width = 32, steps = 8, dim = 2, layers = 2;
  bool skip_python = false, fused = false;
  int chunk = 256;
  app.add_option("--threads", threads, "threads (oneTBB, LibTorch, and PyTorch baseline)");
  app.add_option("--reps", reps, "timed iterations (median reported)");
  app.add_option("--batch", batch);
  app.add_option("--width", width);
  app.add_option("--steps", steps);
  app.add_option("--dim", dim);
  app.add_option("--layers", layers);
  app.add_option("--chunk", chunk, "batch rows per oneTBB task (TrainOptions::chunk_size)");
  app.add_flag("--skip-python", skip_python, "do not run the PyTorch baseline");
  app.add_flag("--fused", fused, "also time the hand-fused forward + adjoint path (nTh = 2)");
  CLI11_PARSE(app, argc, argv);

  // glibc malloc tuned as in tools/bg-sample.cpp (MB-sized RK4 tensors stay on the heap).
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 2047 * 1024 * 1024);
  mallopt(M_TOP_PAD, 512 * 1024 * 1024);
  bg::set_generator_threads(threads);
  torch::manual_seed(0);
  bg::GeneratorOptions o;
  o.potential.dim = dim;
  o.potential.width = width;
  o.potential.layers = layers;
  o.steps = steps;
  bg::BoltzmannGenerator model(o, 0);
  {
    torch::NoGradGuard ng;
    auto w = model.potential()->named_parameters()["w"];
    w.copy_(0.1 * torch::randn(w.sizes(), torch::kFloat64));
  }
  boltzlab::RowMatrix data(batch, dim);
  boltzlab::Rng rng(0, 0);
  for (int i = 0; i < batch; ++i)
    for (int k = 0; k < dim; ++k) data(i, k) = 0.5 + 1.3 * rng.normal();
  // OT-Flow (λ = 1, α_L = 0.01, α_HJB = 0.05) through the trainer: data batch,
  // chunked forward + backward, clipping, Adam step. The target is not evaluated.
  boltzlab::GaussianTarget unused(Eigen::VectorXd::Zero(dim), Eigen::MatrixXd::Identity(dim, dim));
  bg::TrainOptions t;
  t.preset = "ot-flow";
  t.weights = bg::LossWeights::preset("ot-flow", true);
  t.iterations = reps + 1;
  t.batch_size = batch;
  t.chunk_size = chunk;
  t.learning_rate = 1e-3;
  t.eval_every = 0;
  t.progress = false;
  const bg::TrainHistory h = bg::train(model, unused, &data, t);
  std::vector<double> times(h.step_seconds.begin() + 1, h.step_seconds.end());  // first: warm-up
  const double loss = h.loss.back();
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  std::printf("boltzlab (LibTorch C++): median %.4f s, min %.4f s per iteration (loss %.4f, %d threads)\n",
              median, times.front(), loss, threads);

  double fused_median = 0.0, fused_min = 0.0;
  if (fused) {
    bg::FusedOtFlowOptions fo;
    fo.t_end = o.time;
    fo.steps = steps;
    fo.alpha_transport = t.weights.alpha_transport;
    fo.alpha_hjb = t.weights.alpha_hjb;
    fo.chunk_size = chunk;
    auto& phi = *model.potential();
    torch::optim::Adam adam(phi.parameters(), torch::optim::AdamOptions(1e-3));
    std::vector<double> ft;
    double floss = 0.0;
    for (int it = 0; it <= reps; ++it) {
      const auto t0 = std::chrono::steady_clock::now();
      adam.zero_grad();
      floss = bg::fused_otflow_backward(phi, data, fo).loss;
      adam.step();
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (it > 0) ft.push_back(sec);  // first: warm-up
    }
    std::sort(ft.begin(), ft.end());
    fused_median = ft[ft.size() / 2];
    fused_min = ft.front();
    std::printf("boltzlab fused (hand adjoint, Eigen): median %.4f s, min %.4f s per iteration (loss %.4f, %d threads)\n",
                fused_median, fused_min, floss, threads);
  }
  if (skip_python) return 0;

  const std::string cmd = "/usr/bin/python3 " BOLTZLAB_SOURCE_DIR "/benchmarks/otflow_torch.py batch=" +
                          std::to_string(batch) + " dim=" + std::to_string(dim) + " width=" +
                          std::to_string(width) + " layers=" + std::to_string(layers) + " steps=" +
                          std::to_string(steps) + " reps=" + std::to_string(reps) + " threads=" +
                          std::to_string(threads);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  if (!pipe) {
    std::cerr << "bench_bg_iteration: cannot run " << cmd << "\n";
    return 1;
  }
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe.get())) out += buf;
  try {
    const auto j = nlohmann::json::parse(out);
    const double py = j.at("median_seconds").get<double>();
    std::printf("PyTorch %s baseline: median %.4f s, min %.4f s per iteration (loss %.4f)\n",
                j.at("torch").get<std::string>().c_str(), py, j.at("min_seconds").get<double>(),
                j.at("loss").get<double>());
    std::printf("speed-up (median): %.2fx   (min/min: %.2fx)\n", py / median,
                j.at("min_seconds").get<double>() / times.front());
    if (fused)
      std::printf("fused speed-up (median): %.2fx   (min/min: %.2fx)\n", py / fused_median,
                  j.at("min_seconds").get<double>() / fused_min);
  } catch (const std::exception& e) {
    std::cerr << "bench_bg_iteration: baseline output not understood: " << out << "\n";
    return 1;
  }
  return 0;
}
