#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/flows/interacting.hpp"
#include "boltzlab/io/npy.hpp"
#include "flows/particle_flow_support.hpp"
#include <filesystem>
#include <unistd.h>

using namespace boltzlab;
using namespace particle_test;

namespace {
/// u = ½|x|² inside the ball |x| < 3, +inf outside (a target with non-finite energies).
class TruncatedGaussian : public Target {
 public:
  explicit TruncatedGaussian(std::size_t d) : d_(d) {}
  std::string name() const override { return "truncated"; }
  std::size_t dim() const override { return d_; }
  double reduced_energy(const double* x, double* grad) const override {
    double r2 = 0;
    for (std::size_t k = 0; k < d_; ++k) r2 += x[k] * x[k];
    if (grad)
      for (std::size_t k = 0; k < d_; ++k) grad[k] = r2 < 9 ? x[k] : std::numeric_limits<double>::quiet_NaN();
    return r2 < 9 ? 0.5 * r2 : std::numeric_limits<double>::infinity();
  }

 private:
  std::size_t d_;
};

FlowResult run_with(const std::string& name, const Json& params, Ensemble& e, Execution exec, int threads) {
  set_num_threads(threads);
  const GaussianTarget g = anisotropic_2d();
  FlowOptions o;
  o.steps = 30;
  o.step_size = 0.05;
  o.progress = false;
  o.monitor_every = 7;
  o.exec = exec;
  o.seed = 3;
  o.thin = 10;
  o.beta.start = 0.3;
  o.beta.steps = 20;
  FlowResult r = make_flow(name, params)->run(g, e, o);
  set_num_threads(0);
  return r;
}
}  // namespace

TEST_CASE("flows: SVGD, blob and MMD are bit-identical serial vs parallel, any thread count") {
  // N = 131 (not a multiple of the 4-row or 8-lane blocks), annealed, monitored, thinned.
  const RowMatrix start = normal_rows(131, 2, 77, 2.0);
  const RowMatrix samples = exact_samples(anisotropic_2d(), 150, 78);
  const std::string path = (std::filesystem::temp_directory_path() / ("boltzlab_bitid_" + std::to_string(::getpid()) + ".npy")).string();
  write_npy(path, samples);
  for (const auto& [name, params] : std::vector<std::pair<std::string, Json>>{
           {"svgd", Json::object()},
           {"svgd", Json{{"adaptive", true}}},
           {"blob", Json::object()},
           {"mmd", Json{{"target_samples", path}, {"noise_level", 0.2}}}}) {
    CAPTURE(name);
    Ensemble a(131, 2), b(131, 2), c(131, 2);
    a.positions = b.positions = c.positions = start;
    const FlowResult ra = run_with(name, params, a, Execution::kSerial, 1);
    const FlowResult rb = run_with(name, params, b, Execution::kParallel, 2);
    const FlowResult rc = run_with(name, params, c, Execution::kParallel, 3);
    CHECK(a.positions == b.positions);
    CHECK(a.positions == c.positions);
    CHECK(ra.monitors == rb.monitors);
    CHECK(ra.monitors == rc.monitors);
    CHECK(ra.frames.size() == 3);
    CHECK(ra.frames.back() == rb.frames.back());
    CHECK(a.positions != start);
  }
  std::filesystem::remove(path);
}

TEST_CASE("flows: non-finite energies are counted, never poison the ensemble") {
  TruncatedGaussian target(2);
  Ensemble e(60, 2);
  e.positions = normal_rows(60, 2, 5, 1.5);  // some particles start outside the ball
  FlowOptions o;
  o.steps = 200;
  o.step_size = 0.1;
  o.progress = false;
  const FlowResult r = make_flow("svgd", Json::object())->run(target, e, o);
  CHECK(r.non_finite > 0);
  CHECK(e.positions.allFinite());
  for (double m : r.monitors.at("mean_energy")) CHECK(std::isfinite(m));
  // KSD is NaN (reported as such) whenever some particle had a non-finite gradient.
  CHECK(std::isnan(r.monitors.at("ksd").front()));
}

TEST_CASE("flows: shape errors and option errors") {
  const GaussianTarget g = anisotropic_2d();
  Ensemble wrong(10, 3), single(1, 2);
  FlowOptions o;
  o.progress = false;
  o.steps = 2;
  CHECK_THROWS_AS(make_flow("svgd", Json::object())->run(g, wrong, o), DomainError);
  CHECK_THROWS_AS(make_flow("blob", Json::object())->run(g, single, o), DomainError);
  CHECK_THROWS_WITH_AS(make_flow("svdg", Json::object()), doctest::Contains("did you mean 'svgd'"), ConfigError);
  CHECK_THROWS_AS(make_flow("svgd", Json{{"patience", 0}}), ConfigError);
  CHECK_THROWS_AS(make_flow("svgd", Json{{"ksd", false}, {"stop_monitor", "ksd"}})->run(g, wrong, o), ConfigError);
}

TEST_CASE("flows: SVGD and blob keep the median pass's distances at d >= 8, bit-identical for any thread count") {
  // d = 9 ≥ kMinDimKeptPairDistances: the kernel sums read the squared distances the
  // median pass kept (gaussian_kernel_sums(PairDistances, …)); N = 45 is not a multiple
  // of the 4-row or 8-lane blocks. kernel_width2 keeps nothing below the break-even d.
  const std::size_t d = 9;
  const GaussianTarget target(Eigen::VectorXd::Zero(d), Eigen::MatrixXd::Identity(d, d));
  const RowMatrix start = normal_rows(45, d, 91, 2.0);
  for (const std::string name : {"svgd", "blob"}) {
    CAPTURE(name);
    std::vector<RowMatrix> ends;
    for (const auto& [exec, threads] : {std::pair<Execution, int>{Execution::kSerial, 1}, {Execution::kParallel, 2},
                                        {Execution::kParallel, 3}}) {
      set_num_threads(threads);
      Ensemble e(45, d);
      e.positions = start;
      FlowOptions o;
      o.steps = 12;
      o.step_size = 0.05;
      o.progress = false;
      o.exec = exec;
      make_flow(name, Json::object())->run(target, e, o);
      ends.push_back(e.positions);
      set_num_threads(0);
    }
    CHECK(ends[0] == ends[1]);
    CHECK(ends[0] == ends[2]);
    CHECK(ends[0] != start);
  }
  PairDistances kept;
  kernel_width2(normal_rows(45, d, 92, 1.0), 0.0, Execution::kParallel, &kept);
  CHECK(kept.n == 45);
  kernel_width2(normal_rows(45, kMinDimKeptPairDistances - 1, 92, 1.0), 0.0, Execution::kParallel, &kept);
  CHECK(kept.empty());
  kernel_width2(normal_rows(45, d, 92, 1.0), 0.7, Execution::kParallel, &kept);  // fixed width: no median pass
  CHECK(kept.empty());
}
