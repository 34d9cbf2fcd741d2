// Tests of lib/boltzlab/app/run_outputs.*: the standard run-directory writer.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include <unistd.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/app/run_outputs.hpp"
#include "boltzlab/targets/gaussian.hpp"

using namespace boltzlab;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("boltzlab_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}
}  // namespace

TEST_CASE("run outputs: files, summary keys, frames and non-finite energies") {
  const GaussianTarget target(Eigen::Vector2d(0.0, 1.0), Eigen::Matrix2d::Identity());
  RowMatrix x(3, 2);
  x << 0.0, 1.0, 1.0, 2.0, -1.0, 0.5;
  Eigen::VectorXd u(3);
  u << 0.0, 1.0, std::numeric_limits<double>::infinity();
  Eigen::VectorXd log_q = -u, log_w = Eigen::VectorXd::Zero(3);
  std::vector<RowMatrix> frames = {x * 2.0, x};
  const fs::path out = temp_dir("run_outputs");
  {
    RunDirectory run(out);
    RunOutputs o;
    o.tool = "test-tool";
    o.target = &target;
    o.potential_name = "g2";
    o.options = {{"particles", 3}};
    o.seed = 5;
    o.threads = 2;
    o.samples = &x;
    o.reduced_energies = &u;
    o.log_q = &log_q;
    o.log_weights = &log_w;
    o.frames = &frames;
    o.counts = {{"energy_evaluations", 42}};
    o.statistics = {{"acceptance_rate", 0.5}};
    o.trace_steps = {0, 10};
    o.traces["mean_energy"] = {2.0, std::numeric_limits<double>::quiet_NaN()};
    o.plots = false;
    const Json s = write_run(run, o);
    run.commit();
    CHECK(s["counts"]["non_finite_energies"] == 1);
    CHECK(s["counts"]["energy_evaluations"] == 42);
    CHECK(s["energy"]["mean"].get<double>() == doctest::Approx(0.5));
    CHECK(s["trace"]["mean_energy"][1].is_null());  // NaN → null, with a note
  }
  for (const char* f : {"samples.npy", "reduced_energies.npy", "log_q.npy", "log_weights.npy", "frames.npy",
                        "summary.json"}) {
    CHECK(fs::exists(out / f));
  }
  const NpyArray fr = read_npy(out / "frames.npy");
  REQUIRE(fr.shape == std::vector<std::size_t>{2, 3, 2});
  CHECK(fr.data[1] == 2.0);            // frame 0 = 2x: x(0,1) = 1 → 2
  CHECK(fr.data[6 + 2] == 1.0);        // frame 1 = x: x(1,0) = 1
  const Json s = read_json_file(out / "summary.json");
  CHECK(s["format_version"] == kRunFormatVersion);
  CHECK(s["tool"] == "test-tool");
  CHECK(s["seed"] == 5);
  CHECK(s["threads"] == 2);
  CHECK(s["potential"]["name"] == "g2");
  CHECK(s["statistics"]["acceptance_rate"] == 0.5);
  CHECK(read_npy_vector(out / "reduced_energies.npy")[2] == std::numeric_limits<double>::infinity());
  bool noted = false;
  for (const auto& n : s["notes"]) noted |= n.get<std::string>().find("not finite") != std::string::npos;
  CHECK(noted);
  fs::remove_all(out);
}

TEST_CASE("run outputs: inconsistent outputs are rejected before anything is written") {
  const GaussianTarget target(Eigen::Vector2d(0.0, 1.0), Eigen::Matrix2d::Identity());
  RowMatrix x = RowMatrix::Zero(3, 2);
  Eigen::VectorXd u = Eigen::VectorXd::Zero(2);
  const fs::path out = temp_dir("run_outputs_bad");
  {
    RunDirectory run(out);
    RunOutputs o;
    o.target = &target;
    o.samples = &x;
    o.reduced_energies = &u;
    CHECK_THROWS_AS(write_run(run, o), DomainError);
    o.reduced_energies = nullptr;
    CHECK_THROWS_AS(write_run(run, o), DomainError);
  }
  CHECK_FALSE(fs::exists(out));  // never committed, staging removed
}
