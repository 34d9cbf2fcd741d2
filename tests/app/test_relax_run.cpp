// Tests of lib/boltzlab/app/relax_run.*: how the potential's "sampler" section is read.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "boltzlab/app/relax_run.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/io/npy.hpp"

using namespace boltzlab;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("boltzlab_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

/// A 2-D standard Gaussian potential file with the given sampler section.
fs::path potential_with_sampler(const fs::path& dir, const std::string& name, const std::string& sampler) {
  const fs::path p = dir / name;
  std::ofstream(p) << R"({"type": "gaussian", "parameters": {"dim": 2, "mean": 0.0, "std": 1.0}, "sampler": )"
                   << sampler << "}";
  return p;
}

/// Options for a tiny, quiet run (8 particles, 5 steps).
RelaxOptions tiny_run(const fs::path& potential, const fs::path& out) {
  RelaxOptions o;
  o.potential = potential;
  o.out = out;
  o.particles = 8;
  o.steps = 5;
  o.warmup = 0;
  o.threads = 1;
  o.quiet = true;
  o.plots = false;
  return o;
}

}  // namespace

TEST_CASE("relax run: a sampler step_size that is not > 0 is refused, never replaced by the flow's default") {
  // Inside, FlowOptions::step_size 0 means "the flow's default"; "step_size": 0 in a
  // file used to fall through to it and run with another step size than asked.
  const fs::path dir = temp_dir("relax_step_size");
  for (const char* bad : {"0", "-0.1", "0.0"}) {
    INFO(bad);
    const fs::path p = potential_with_sampler(dir, "p.json", std::string(R"({"flow": "ula", "step_size": )") + bad + "}");
    try {
      run_relax(tiny_run(p, dir / "out"));
      FAIL("expected ConfigError");
    } catch (const ConfigError& e) {
      CHECK(std::string(e.what()).find(p.string() + ": sampler.step_size: ") == 0);
      CHECK(std::string(e.what()).find("but must be > 0") != std::string::npos);
    }
    CHECK_FALSE(fs::exists(dir / "out"));
  }
  // A positive step size is used as given.
  const fs::path good = potential_with_sampler(dir, "good.json", R"({"flow": "ula", "step_size": 0.25})");
  CHECK(run_relax(tiny_run(good, dir / "out")).step_size == 0.25);
}

TEST_CASE("relax run: sampler seeds at and above 2^63 are used as given, each with its own samples") {
  // Seeds ≥ 2^63 used to wrap negative through long long and be refused ("must be >= 0").
  const fs::path dir = temp_dir("relax_seed");
  const char* seeds[] = {"9223372036854775807", "9223372036854775808", "18446744073709551615"};
  std::vector<RowMatrix> samples;
  for (const char* seed : seeds) {
    INFO(seed);
    const fs::path p = potential_with_sampler(dir, "p.json", std::string(R"({"flow": "ula", "seed": )") + seed + "}");
    const fs::path out = dir / (std::string("out_") + seed);
    run_relax(tiny_run(p, out));
    const Json summary = read_json_file(out / "summary.json");
    CHECK(summary["seed"].get<std::uint64_t>() == std::stoull(seed));
    samples.push_back(read_npy_matrix(out / "samples.npy", 2));
  }
  CHECK(samples[0] != samples[1]);
  CHECK(samples[1] != samples[2]);
  CHECK(samples[0] != samples[2]);
  // The flag wins over the section, with the full 64-bit range.
  const fs::path p = potential_with_sampler(dir, "p.json", R"({"flow": "ula", "seed": 1})");
  RelaxOptions o = tiny_run(p, dir / "flag");
  o.seed = 18446744073709551615ULL;
  run_relax(o);
  CHECK(read_npy_matrix(dir / "flag" / "samples.npy", 2) == samples[2]);
}
