// The tools' command-line convention (app/cli.hpp): exit statuses, one error line, seeds.
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "boltzlab/app/cli.hpp"
#include "boltzlab/core/error.hpp"

using namespace boltzlab;

namespace {

/// run_tool on `args` with an app that has --seed and -q; the steps are given.
int run_with(std::vector<std::string> args, const ToolSteps& steps, std::optional<std::uint64_t>* seed = nullptr) {
  CLI::App app{"tool"};
  std::optional<std::uint64_t> s;
  bool quiet = false;
  add_seed_option(app, s, "seed");
  add_quiet_flag(app, quiet);
  args.insert(args.begin(), "tool");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  const int status = run_tool("tool", app, static_cast<int>(argv.size()), argv.data(), steps);
  if (seed) *seed = s;
  return status;
}

}  // namespace

TEST_CASE("cli: exit status 0 ok, 1 run failed, 2 usage") {
  const ToolSteps ok{[] {}, [] { return static_cast<int>(kExitOk); }};
  CHECK(run_with({"-q"}, ok) == kExitOk);
  CHECK(run_with({"--quiet"}, ok) == kExitOk);
  CHECK(run_with({"--bogus"}, ok) == kExitUsage);                    // unknown flag
  CHECK(run_with({"--seed"}, ok) == kExitUsage);                     // missing value
  const ToolSteps bad_flag{[] { throw ConfigError("--samples is 1, but must be >= 2"); }, [] { return 0; }};
  CHECK(run_with({}, bad_flag) == kExitUsage);                       // a flag check after parsing
  const ToolSteps fails{[] {}, []() -> int { throw IoError("x.json: cannot open"); }};
  CHECK(run_with({}, fails) == kExitRunFailed);
  const ToolSteps throws_other{[] {}, []() -> int { throw std::runtime_error("LibTorch said no"); }};
  CHECK(run_with({}, throws_other) == kExitRunFailed);
  bool ran = false;
  const ToolSteps not_run{[] { throw ConfigError("bad"); }, [&] { ran = true; return 0; }};
  run_with({}, not_run);
  CHECK_FALSE(ran);  // a refused command line runs nothing
}

TEST_CASE("cli: seeds are the integers 0 … 2^64 − 1, exactly") {
  CHECK(parse_seed("--seed", "0") == 0u);
  CHECK(parse_seed("--seed", "9223372036854775807") == 9223372036854775807ULL);
  CHECK(parse_seed("--seed", "9223372036854775808") == 9223372036854775808ULL);
  CHECK(parse_seed("--seed", "18446744073709551615") == 18446744073709551615ULL);
  for (const char* bad : {"-1", "18446744073709551616", "1.5", "1e3", "", " 1", "+1", "0x10", "12abc"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_seed("--seed", bad), CLI::ValidationError);
  }
  CHECK_THROWS_WITH(parse_seed("--seed", "-1"), doctest::Contains("--seed: '-1' is not a seed"));
  std::optional<std::uint64_t> seed;
  CHECK(run_with({"--seed", "18446744073709551615"}, {[] {}, [] { return 0; }}, &seed) == kExitOk);
  CHECK(seed == 18446744073709551615ULL);
  CHECK(run_with({"--seed", "-1"}, {[] {}, [] { return 0; }}, &seed) == kExitUsage);
}

TEST_CASE("cli: the error line names the tool once, on one line") {
  CHECK(error_line("bg-sample", "bg-sample: --evaluate needs --model") == "--evaluate needs --model");
  CHECK(error_line("iw-diag", "iw-diag: error: nothing to analyse") == "nothing to analyse");
  CHECK(error_line("wgf-relax", "x.json: bad") == "x.json: bad");
  CHECK(error_line("t", "first line\nsecond  line\n") == "first line; second line");
  CHECK(error_line("t", "a\r\n\r\nb") == "a; b");
}
