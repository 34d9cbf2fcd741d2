// Tests of lib/boltzlab/app/run_directory.*: the output-safety contract (run marker,
// refusing other folders and the inputs' directories), staging clean-up (destructor,
// stale staging of dead processes, signals) and the atomic commit.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/registry.hpp"
#include "support/temp_dir.hpp"

using namespace boltzlab;
using boltzlab::testing::TempDir;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// Entries of `dir` whose name starts with `prefix`.
int count_prefixed(const fs::path& dir, const std::string& prefix) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().rfind(prefix, 0) == 0;
  return n;
}

/// A pid that belonged to a process that has exited and been reaped.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

/// Writes one run into `out` and commits it.
void write_run(const fs::path& out, const std::string& text, const std::vector<fs::path>& inputs = {}) {
  RunDirectory run(out, inputs);
  run.write_text("result.txt", text);
  run.commit();
}

}  // namespace

TEST_CASE("run directory: a new run carries the marker, and replaces an earlier run") {
  TempDir t("rundir_new");
  const fs::path out = t.path / "run";
  write_run(out, "first");
  CHECK(fs::is_regular_file(out / kRunMarker));
  CHECK(is_run_directory(out));
  CHECK(read_file(out / "result.txt") == "first");
  write_file(out / "stale.txt", "from the first run");
  write_run(out, "second");  // an earlier run directory is replaced as a whole
  CHECK(read_file(out / "result.txt") == "second");
  CHECK_FALSE(fs::exists(out / "stale.txt"));
  CHECK(count_prefixed(t.path, "run.") == 0);  // no staging or .old left
}

TEST_CASE("run directory: an existing folder that is not a run directory is refused, its files intact") {
  TempDir t("rundir_foreign");
  const fs::path out = t.path / "d";
  write_file(out / "notes.txt", "keep");
  write_file(out / "sub" / "data.bin", "keep too");
  CHECK_THROWS_WITH_AS(RunDirectory{out}, doctest::Contains("not a boltzlab run directory"), IoError);
  CHECK(read_file(out / "notes.txt") == "keep");
  CHECK(read_file(out / "sub" / "data.bin") == "keep too");
  CHECK(count_prefixed(t.path, "d.") == 0);  // no staging made
  // A folder that appears while the run is working is not replaced either.
  const fs::path late = t.path / "late";
  RunDirectory run(late);
  write_file(late / "notes.txt", "keep");
  CHECK_THROWS_AS(run.commit(), IoError);
  CHECK(read_file(late / "notes.txt") == "keep");
  // A file is refused, an empty folder is fine (nothing to lose).
  write_file(t.path / "file", "x");
  CHECK_THROWS_WITH_AS(RunDirectory{t.path / "file"}, doctest::Contains("not a directory"), IoError);
  fs::create_directories(t.path / "empty");
  write_run(t.path / "empty", "ok");
  CHECK(read_file(t.path / "empty" / "result.txt") == "ok");
}

TEST_CASE("run directory: a run directory written before the marker (summary.json) may be replaced") {
  TempDir t("rundir_legacy");
  const fs::path out = t.path / "old_run";
  write_file(out / "summary.json", R"({"format_version": 1, "tool": "wgf-relax"})");
  CHECK(is_run_directory(out));
  write_run(out, "new");
  CHECK(read_file(out / "result.txt") == "new");
  // A summary.json that is not a run's does not make a run directory.
  const fs::path other = t.path / "other";
  write_file(other / "summary.json", R"({"title": "my notes"})");
  CHECK_FALSE(is_run_directory(other));
  CHECK_THROWS_AS(RunDirectory{other}, IoError);
}

TEST_CASE("run directory: the output may not hold an input") {
  TempDir t("rundir_inputs");
  const fs::path run = t.path / "run";
  write_run(run, "the input run");
  write_file(run / "model.pt", "model");
  // --out equal to an input directory (iw-diag --run D --out D) or to an input file's folder.
  CHECK_THROWS_WITH_AS((RunDirectory{run, {run}}), doctest::Contains("folder of the input"), IoError);
  CHECK_THROWS_WITH_AS((RunDirectory{run, {run / "model.pt"}}), doctest::Contains("model.pt"), IoError);
  // --out containing an input's folder, given with another spelling.
  write_file(t.path / "parent_run" / kRunMarker, "boltzlab run directory (format_version 1)\n");
  write_file(t.path / "parent_run" / "nested" / "x.npy", "x");
  CHECK_THROWS_AS((RunDirectory{t.path / "parent_run" / "." / "", {t.path / "parent_run/nested/../nested/x.npy"}}),
                  IoError);
  CHECK(read_file(run / "model.pt") == "model");
  CHECK(read_file(run / "result.txt") == "the input run");
  CHECK(count_prefixed(t.path, "run.") == 0);
  // Beside or below the inputs is fine, and a missing input is not this check's business.
  write_run(t.path / "run2", "ok", {run, run / "model.pt", t.path / "missing.npy"});
  write_run(run / "diag", "ok", {run});
  CHECK(fs::exists(t.path / "run2" / "result.txt"));
  // refuse_inputs for a tool that knows its inputs only later (iw-diag).
  RunDirectory late(run);
  CHECK_THROWS_AS(late.refuse_inputs({run / "model.pt"}), IoError);
}

TEST_CASE("run directory: stale staging of a dead process is removed, a live process's is kept") {
  TempDir t("rundir_stale");
  const fs::path out = t.path / "out";
  const fs::path dead = t.path / ("out.staging-" + std::to_string(dead_pid()));
  const fs::path live = t.path / ("out.staging-" + std::to_string(::getppid()));
  const fs::path other = t.path / ("other.staging-" + std::to_string(dead_pid()));
  for (const fs::path& p : {dead, live, other}) write_file(p / "half.npy", "half-written");
  write_run(out, "done");
  CHECK_FALSE(fs::exists(dead));
  CHECK(fs::exists(live / "half.npy"));
  CHECK(fs::exists(other / "half.npy"));  // another --out's
  // A commit killed between its two renames: the earlier run is put back when `out` is missing.
  fs::rename(out, t.path / ("out.old-" + std::to_string(dead_pid())));
  remove_stale_staging(out);
  CHECK(read_file(out / "result.txt") == "done");
  write_file(t.path / ("out.old-" + std::to_string(dead_pid())) / "x", "x");
  remove_stale_staging(out);
  CHECK(count_prefixed(t.path, "out.old-") == 0);
}

TEST_CASE("run directory: no staging is left by an exception, or by a termination signal") {
  TempDir t("rundir_signal");
  const fs::path out = t.path / "out";
  try {
    RunDirectory run(out);
    run.write_text("a.txt", "a");
    throw IoError("the run failed");
  } catch (const IoError&) {
  }
  CHECK(count_prefixed(t.path, "out") == 0);
  // A child process is stopped by SIGHUP (doctest keeps its own handlers for SIGINT and SIGTERM
  // in this test binary; the tools' CLI test sends SIGTERM) while its staging directory holds files.
  const pid_t child = ::fork();
  if (child == 0) {
    RunDirectory run(out);
    run.write_text("a.txt", "a");
    write_file(run.staging() / "sub" / "b.txt", "b");
    ::raise(SIGHUP);
    ::_exit(3);  // not reached: the handler re-raises with the default action
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGHUP);
  CHECK(count_prefixed(t.path, "out") == 0);
}

TEST_CASE("run directory: checkpoint paths and the files of a potential") {
  CHECK(checkpoint_path("runs/x", ".checkpoint.pt") == fs::path("runs/x.checkpoint.pt"));
  CHECK(checkpoint_path("runs/x/", ".checkpoint.rex") == fs::path("runs/x.checkpoint.rex"));
  TempDir t("rundir_potential");
  write_file(t.path / "data" / "frames.npy", "x");
  write_file(t.path / "pot" / "p.json",
             R"({"type": "double_well", "name": "dw", "parameters": {"dim": 2},
                 "generator": {"data": "../data/frames.npy", "note": "."}})");
  const Potential pot = load_potential(t.path / "pot" / "p.json");
  const std::vector<fs::path> files = potential_files(pot);
  REQUIRE(files.size() == 2);  // the file and its data; "." names no file
  CHECK(fs::equivalent(files[1], t.path / "data" / "frames.npy"));
  write_file(t.path / "data" / kRunMarker, "boltzlab run directory (format_version 1)\n");
  CHECK_THROWS_AS((RunDirectory{t.path / "data", files}), IoError);
  CHECK(fs::exists(t.path / "data" / "frames.npy"));
}
