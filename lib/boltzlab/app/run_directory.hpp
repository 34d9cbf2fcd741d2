#pragma once
/// \file run_directory.hpp
/// The run directory every tool writes (README "Run directory"; the files and the
/// summary.json schema are defined in one place, app/run_outputs.hpp), and the
/// output-safety contract of all tools.
///
/// Over MPI ranks (core/mpi.hpp) only rank 0 checks, stages and commits `--out`; a
/// RunDirectory of any other rank is a private scratch folder in the temporary
/// directory (`boltzlab-rank<r>-<pid>` in TMPDIR) that commit() leaves and the
/// destructor removes; a rank starting up removes such folders of dead processes.
///
/// Output safety (a tool never loses a user's files):
///   * Run marker: every run directory holds `.boltzlab-run` (kRunMarker), a two-line
///     text file written when the staging directory is made. A directory is a run
///     directory when it holds that marker, or (written before the marker existed)
///     a summary.json object with "tool" and "format_version".
///   * `--out` may name a path that does not exist, an empty directory, or a run
///     directory (an earlier run, replaced as a whole by commit()). Any other existing
///     folder, and anything that is not a directory, is refused with one line naming
///     the path (IoError) before anything is written.
///   * Inputs: the output may not hold any input. `--out` equal to, or containing, an
///     input directory (e.g. iw-diag --run) or the directory of an input file (the
///     potential file and the files it names, --init, --model, --data, --evaluate,
///     --reference, ...) is refused, so `iw-diag --run D --out D` or
///     `bg-sample --model D/model.pt ... --out D` cannot delete their own inputs.
///
/// Atomicity: files are written into a staging directory beside the output
/// (`<out>.staging-<pid>`); commit() swaps it into place only once everything was
/// written (one atomic renameat2 RENAME_EXCHANGE where the file system has it, else
/// two renames), so a failed run never leaves half-written output in place of an
/// earlier good one. The staging directory is removed on every exit path:
///   * normal return or exception: the destructor;
///   * SIGINT, SIGTERM, SIGHUP: a handler removes every live staging directory of the
///     process with async-signal-safe system calls only, then re-raises the signal
///     with its default action (exit status 128 + signal), see run_directory.cpp;
///   * std::exit without unwinding: an atexit hook does the same;
///   * SIGKILL, a crash, a power cut: nothing can run then, so every RunDirectory
///     first removes the stale staging directories of the same `out` whose process
///     (the pid in the name) is gone; those of a live process are left alone.
///
/// Checkpoints (bg-sample `<out>.checkpoint.pt`, replica-exchange
/// `<out>.checkpoint.rex`, checkpoint_path()) sit beside the run directory while a
/// run is unfinished, so that they survive a kill and `--resume` can continue; the
/// tool removes its checkpoint once the run directory is committed, so a finished
/// run leaves only the run directory.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab {

struct Potential;

/// Version of the run-directory layout and summary.json schema.
inline constexpr int kRunFormatVersion = 1;

/// The marker file of a run directory (see the file comment).
inline constexpr const char* kRunMarker = ".boltzlab-run";

class RunDirectory {
 public:
  /// Checks the output-safety contract (see the file comment) for `out` against the
  /// files and directories in `inputs` (empty or missing entries are skipped),
  /// removes stale staging directories of `out` and prepares a fresh one.
  /// \throws IoError naming the path when `out` may not be written (an existing
  /// folder that is not a run directory, not a directory, holds an input) or its
  /// parent cannot be created or written.
  explicit RunDirectory(std::filesystem::path out, const std::vector<std::filesystem::path>& inputs = {});
  ~RunDirectory();
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;

  /// Where files are written now (the staging directory until commit()).
  const std::filesystem::path& staging() const { return staging_; }
  /// The final location.
  const std::filesystem::path& out() const { return out_; }
  /// staging()/name.
  std::filesystem::path path(const std::string& name) const { return staging_ / name; }

  /// \throws IoError when out() equals or contains one of `inputs` (a directory) or
  /// the directory of one (a file). The constructor calls it; a tool whose inputs are
  /// known only later (iw-diag) calls it again before writing.
  void refuse_inputs(const std::vector<std::filesystem::path>& inputs) const;

  void write_array(const std::string& name, const Eigen::VectorXd& v) const;
  void write_array(const std::string& name, const RowMatrix& m) const;
  /// Writes summary.json; `summary["format_version"]` is set to kRunFormatVersion.
  void write_summary(nlohmann::json summary) const;
  void write_text(const std::string& name, const std::string& text) const;

  /// Moves the staging directory to out(), replacing an earlier run there.
  /// \throws IoError when out() has become a folder that may not be replaced since
  /// the constructor checked it, or the move fails (the staging directory then stays
  /// until the destructor).
  void commit();

 private:
  std::filesystem::path out_;       ///< as given (messages, out())
  std::filesystem::path target_;    ///< absolute, parent resolved: what commit() replaces
  std::filesystem::path staging_;
  int slot_ = -1;                   ///< signal-cleanup slot (run_directory.cpp), -1: none
  bool committed_ = false;
  bool scratch_ = false;            ///< an MPI rank other than 0: a private folder, never committed
};

/// Whether `dir` is a run directory: it holds kRunMarker, or a summary.json object
/// with "tool" and "format_version" (run directories written before the marker).
bool is_run_directory(const std::filesystem::path& dir);

/// Removes the staging directories `<out>.staging-<pid>` beside `out` whose process
/// is gone (kill(pid, 0) fails with ESRCH); those of live processes stay. A leftover
/// `<out>.old-<pid>` of a dead process (a commit killed between its two renames, on
/// file systems without RENAME_EXCHANGE) is renamed back to `out` when `out` is
/// missing, else removed.
void remove_stale_staging(const std::filesystem::path& out);

/// The checkpoint of a run beside its run directory: `<out><suffix>` (e.g.
/// ".checkpoint.pt"), trailing separators of `out` ignored.
std::filesystem::path checkpoint_path(const std::filesystem::path& out, const std::string& suffix);

/// The potential file and every existing file or directory that a string value in
/// it names, relative to the potential file's directory (system XML, PDB, data,
/// reference dihedrals, Z-matrix, ...): the inputs a run of the potential reads.
std::vector<std::filesystem::path> potential_files(const Potential& potential);

}  // namespace boltzlab
