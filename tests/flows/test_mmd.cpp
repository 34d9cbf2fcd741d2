#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <unistd.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/flows/mmd.hpp"
#include "boltzlab/io/npy.hpp"
#include "flows/particle_flow_support.hpp"

using namespace boltzlab;
using namespace particle_test;
namespace fs = std::filesystem;

namespace {
FlowOptions quiet(std::size_t steps, double step_size) {
  FlowOptions o;
  o.steps = steps;
  o.step_size = step_size;
  o.progress = false;
  o.monitor_every = 50;
  return o;
}

/// Writes `samples` to a per-process temporary .npy and removes it at scope exit.
struct TempSamples {
  fs::path path;
  TempSamples(const RowMatrix& samples, const std::string& tag)
      : path(fs::temp_directory_path() / ("boltzlab_mmd_" + tag + "_" + std::to_string(::getpid()) + ".npy")) {
    write_npy(path, samples);
  }
  ~TempSamples() {
    std::error_code ec;
    fs::remove(path, ec);
  }
};
}  // namespace

TEST_CASE("mmd: the noise-free flow decreases MMD^2 to the target samples monotonically") {
  const GaussianTarget g = anisotropic_2d();
  const TempSamples y(exact_samples(g, 400, 31), "mono");
  Ensemble e(200, 2);
  e.positions = normal_rows(200, 2, 32);  // overlapping start N(0, I)
  auto flow = make_flow("mmd", Json{{"target_samples", y.path.string()}, {"bandwidth", 1.0}});
  const FlowResult r = flow->run(g, e, quiet(1500, 3.0));
  // Explicit Euler on the gradient flow of ½MMD² with a step well inside its stability
  // range: MMD² must not increase between monitors (1e-12 absolute slack for roundoff).
  const auto& mmd2 = r.monitors.at("mmd2");
  REQUIRE(mmd2.size() >= 10);
  for (std::size_t k = 1; k < mmd2.size(); ++k) CHECK(mmd2[k] <= mmd2[k - 1] + 1e-12);
  CHECK(mmd2.back() < 0.2 * mmd2.front());
  // The mean moves toward μ (the MMD flow is not exact: its stationary points need not be π).
  const RowMatrix initial = normal_rows(200, 2, 32);
  const Eigen::VectorXd start_mean = sample_mean(initial), final_mean = sample_mean(e.positions);
  const Eigen::VectorXd start_error = start_mean - g.mean(), final_error = final_mean - g.mean();
  CHECK(final_error.norm() < 0.5 * start_error.norm());
  CHECK(r.monitors.at("bandwidth").back() == 1.0);
}

TEST_CASE("mmd: particles perturbed off the samples are pulled back, noise injection keeps it deterministic") {
  const GaussianTarget g = anisotropic_2d();
  const RowMatrix samples = exact_samples(g, 200, 41);
  const TempSamples y(samples, "back");
  Ensemble e(200, 2);
  e.positions = samples + 0.3 * normal_rows(200, 2, 42);
  const Json params{{"target_samples", y.path.string()}, {"noise_level", 0.3}, {"noise_decay", 0.5}};
  FlowOptions o = quiet(600, 1.0);
  o.seed = 7;
  Ensemble serial = e;
  const FlowResult r = make_flow("mmd", params)->run(g, e, o);
  const auto& mmd2 = r.monitors.at("mmd2");
  CHECK(mmd2.back() < 0.3 * mmd2.front());
  o.exec = Execution::kSerial;
  make_flow("mmd", params)->run(g, serial, o);
  CHECK(serial.positions == e.positions);  // the noise of particle i comes from stream i
}

TEST_CASE("mmd: bad input is one clear ConfigError") {
  const GaussianTarget g = anisotropic_2d();
  CHECK_THROWS_WITH_AS(make_flow("mmd", Json::object()), doctest::Contains("target_samples"), ConfigError);
  const TempSamples three(normal_rows(50, 3, 1), "dim3");
  auto flow = make_flow("mmd", Json{{"target_samples", three.path.string()}});
  Ensemble e(20, 2);
  CHECK_THROWS_WITH_AS(flow->run(g, e, quiet(10, 1.0)), doctest::Contains("dimension 3"), ConfigError);
  const TempSamples two(normal_rows(50, 2, 1), "dim2");
  CHECK_THROWS_WITH_AS(make_flow("mmd", Json{{"target_samples", two.path.string()}, {"bandwidth", -2.0}}),
                       doctest::Contains("bandwidth"), ConfigError);
  CHECK_THROWS_AS(make_flow("mmd", Json{{"target_samples", two.path.string()}, {"bandwidth", 0.0}}), ConfigError);
  CHECK_THROWS_AS(make_flow("mmd", Json{{"target_samples", two.path.string()}, {"noise_level", -1.0}}), ConfigError);
  const TempSamples one(normal_rows(1, 2, 1), "one");
  CHECK_THROWS_AS(make_flow("mmd", Json{{"target_samples", one.path.string()}}), ConfigError);
  CHECK_THROWS_AS(make_flow("mmd", Json{{"target_samples", "/nonexistent/samples.npy"}}), IoError);
}
