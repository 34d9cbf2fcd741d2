#include "boltzlab/app/run_directory.hpp"

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <system_error>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/mpi.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/targets/registry.hpp"

namespace fs = std::filesystem;

namespace boltzlab {
namespace {

// ---------------------------------------------------------------------------
// Removing staging directories when the process is told to stop.
//
// A signal handler may only call async-signal-safe functions: no malloc, no
// std::filesystem, no locks, no stdio. So the handler cannot simply call
// fs::remove_all. Setting a flag and cleaning up later does not work either: the
// long computations (OpenMM, LibTorch, oneTBB workers) never look at a flag, and
// the process would have to be stopped anyway. Instead:
//   * the main-line code records each live staging directory in a fixed slot of
//     static memory (a char array plus std::atomic<bool> flags, which are lock-free
//     and therefore safe to read in a handler) before the directory is created, and
//     clears the slot after commit() or removal;
//   * the handler (SIGINT, SIGTERM, SIGHUP; installed with SA_RESETHAND, and only
//     where the disposition was the default, so an ignored SIGINT of a background
//     job stays ignored) walks each recorded directory with raw system calls only
//     (open/openat, getdents64, fstatat, unlinkat, rmdir, close), removes it, then
//     re-raises the signal: SA_RESETHAND has restored the default action, the signal
//     is blocked until the handler returns and then terminates the process, so the
//     parent sees "killed by SIGTERM" (shell status 128 + 15) as before;
//   * other threads may still be writing while the handler runs; a file created
//     after a pass is caught by the next pass (a few passes, then give up: the next
//     run removes what is left as stale staging of a dead process).
// errno is saved and restored around the cleanup.
// ---------------------------------------------------------------------------

constexpr int kSlots = 8;
constexpr std::size_t kPathBytes = 4096;
constexpr int kMaxDepth = 16;

struct CleanupSlot {
  std::atomic<bool> taken{false};  ///< owned by a RunDirectory (main-line code only)
  std::atomic<bool> armed{false};  ///< `path` is complete and is removed on a signal
  char path[kPathBytes] = {};
};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler reads std::atomic<bool>");

CleanupSlot g_slots[kSlots];

bool is_dot_or_dotdot(const char* name) {
  return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/// Removes the entries of the directory open at `fd`; returns whether a pass found
/// it empty. Only async-signal-safe system calls.
bool clear_directory(int fd, int depth) {
  if (depth > kMaxDepth) return false;
  alignas(8) char buf[1024];
  for (int pass = 0; pass < 4; ++pass) {
    if (::lseek(fd, 0, SEEK_SET) < 0) return false;
    bool found = false;
    for (;;) {
      const long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        // struct linux_dirent64: u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, char d_name[]
        const char* rec = buf + off;
        const auto reclen = static_cast<unsigned short>(static_cast<unsigned char>(rec[16]) |
                                                        (static_cast<unsigned char>(rec[17]) << 8));
        unsigned char type = static_cast<unsigned char>(rec[18]);
        const char* name = rec + 19;
        off += reclen;
        if (reclen == 0) return false;
        if (is_dot_or_dotdot(name)) continue;
        found = true;
        if (type == DT_UNKNOWN) {
          struct stat st;
          if (::fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) type = DT_DIR;
        }
        if (type == DT_DIR) {
          const int sub = ::openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub >= 0) {
            clear_directory(sub, depth + 1);
            ::close(sub);
          }
          ::unlinkat(fd, name, AT_REMOVEDIR);
        } else {
          ::unlinkat(fd, name, 0);
        }
      }
    }
    if (!found) return true;
  }
  return false;
}

/// rm -rf `path` with async-signal-safe system calls only.
void remove_tree_signal_safe(const char* path) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;  // gone (or not ours to walk)
    clear_directory(fd, 0);
    ::close(fd);
    if (::rmdir(path) == 0 || errno != ENOTEMPTY) return;
  }
}

void remove_armed_staging() {
  for (CleanupSlot& slot : g_slots) {
    if (slot.armed.load(std::memory_order_acquire)) remove_tree_signal_safe(slot.path);
  }
}

extern "C" void on_termination_signal(int sig) {
  const int saved_errno = errno;
  remove_armed_staging();
  errno = saved_errno;
  ::raise(sig);  // default action again (SA_RESETHAND); delivered when the handler returns
}

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

void install_cleanup_handlers() {
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_termination_signal;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  for (int sig : kSignals) sigaddset(&action.sa_mask, sig);
  for (int sig : kSignals) {
    struct sigaction old;
    if (::sigaction(sig, nullptr, &old) != 0) continue;
    // Leave ignored signals ignored (nohup, background jobs) and other handlers alone.
    if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) continue;
    ::sigaction(sig, &action, nullptr);
  }
  std::atexit(remove_armed_staging);  // std::exit without unwinding
}

/// Records `dir` for removal on a signal; returns the slot (-1: none free or the
/// path is too long; then only the destructor and the stale cleanup remove it).
int arm_cleanup(const fs::path& dir) {
  static std::once_flag installed;
  std::call_once(installed, install_cleanup_handlers);
  const std::string& s = dir.native();
  if (s.size() + 1 > kPathBytes) return -1;
  for (int i = 0; i < kSlots; ++i) {
    bool expected = false;
    if (!g_slots[i].taken.compare_exchange_strong(expected, true)) continue;
    std::memcpy(g_slots[i].path, s.c_str(), s.size() + 1);
    g_slots[i].armed.store(true, std::memory_order_release);
    return i;
  }
  return -1;
}

void disarm_cleanup(int& slot) {
  if (slot < 0) return;
  g_slots[slot].armed.store(false, std::memory_order_release);
  g_slots[slot].taken.store(false, std::memory_order_release);
  slot = -1;
}

// ---------------------------------------------------------------------------
// The output-safety contract.
// ---------------------------------------------------------------------------

/// `out` as an absolute path with its parent resolved (symlinks, "..") and the last
/// component kept (so a symlink `out` is replaced, not its target).
fs::path resolve_out(const fs::path& out) {
  std::error_code ec;
  fs::path abs = fs::absolute(out, ec).lexically_normal();
  if (ec) throw IoError(out.string() + ": cannot resolve the output path: " + ec.message());
  if (abs.filename().empty()) abs = abs.parent_path();  // "runs/x/" -> "runs/x"
  const std::string name = abs.filename().string();
  if (name.empty() || name == "." || name == ".." || abs == abs.root_path()) {
    throw IoError(out.string() + ": not a possible output directory (give a folder name, e.g. --out runs/x)");
  }
  const fs::path parent = fs::weakly_canonical(abs.parent_path(), ec);
  return ec ? abs : parent / abs.filename();
}

/// Whether `inner` is `outer` or lies inside it (both canonical).
bool is_within(const fs::path& outer, const fs::path& inner) {
  auto o = outer.begin(), i = inner.begin();
  for (; o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // trailing separator
    if (i == inner.end() || *o != *i) return false;
  }
  return true;
}

/// \throws IoError when the existing `target` may not be replaced.
void check_replaceable(const fs::path& target, const fs::path& out) {
  std::error_code ec;
  const fs::file_status st = fs::status(target, ec);
  if (!fs::exists(st)) {
    if (fs::is_symlink(fs::symlink_status(target, ec))) {
      throw IoError(out.string() + ": is a dangling symbolic link; refusing to replace it (choose another --out)");
    }
    return;
  }
  if (!fs::is_directory(st)) throw IoError(out.string() + ": exists and is not a directory");
  if (fs::is_empty(target, ec) || is_run_directory(target)) return;
  throw IoError(out.string() + ": exists and is not a boltzlab run directory (no " + kRunMarker +
                " marker); refusing to replace it: choose a new --out, or move the folder away yourself");
}

std::string marker_text() {
  return std::string("boltzlab run directory (format_version ") + std::to_string(kRunFormatVersion) +
         ")\nWritten by a boltzlab tool; a later run with the same --out replaces this whole directory.\n";
}

/// The pid of a `<prefix><pid>` name, or -1.
long long pid_suffix(const std::string& name, const std::string& prefix) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return -1;
  const std::string pid = name.substr(prefix.size());
  if (pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(pid);
}

bool process_gone(long long pid) {
  return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

void collect_files(const Json& j, const fs::path& base, std::vector<fs::path>& out) {
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (s.empty() || s.size() > 4096 || s.find('\n') != std::string::npos) return;
    fs::path p(s);
    if (p.is_relative()) p = base / p;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) out.push_back(p);  // files only: a "." or "/" must not fence off a tree
  } else if (j.is_structured()) {
    for (const Json& v : j) collect_files(v, base, out);
  }
}

}  // namespace

bool is_run_directory(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_regular_file(fs::symlink_status(dir / kRunMarker, ec))) {
    std::ifstream in(dir / kRunMarker);
    std::string first;
    if (std::getline(in, first) && first.rfind("boltzlab run directory", 0) == 0) return true;
  }
  const fs::path summary = dir / "summary.json";
  if (!fs::is_regular_file(fs::symlink_status(summary, ec))) return false;
  const auto size = fs::file_size(summary, ec);
  if (ec || size > (std::uintmax_t{256} << 20)) return false;
  std::ifstream in(summary);
  const Json j = Json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("tool") && j["tool"].is_string() && j.contains("format_version") &&
         j["format_version"].is_number_integer();
}

void remove_stale_staging(const fs::path& out) {
  std::error_code ec;
  const fs::path target = resolve_out(out);
  const std::string name = target.filename().string();
  const std::string staging = name + ".staging-", old = name + ".old-";
  std::vector<fs::path> dead_staging, dead_old;
  for (const auto& entry : fs::directory_iterator(target.parent_path(), ec)) {
    const std::string entry_name = entry.path().filename().string();
    if (process_gone(pid_suffix(entry_name, staging))) dead_staging.push_back(entry.path());
    if (process_gone(pid_suffix(entry_name, old))) dead_old.push_back(entry.path());
  }
  for (const fs::path& p : dead_staging) fs::remove_all(p, ec);
  for (const fs::path& p : dead_old) {
    // A commit killed between "out -> out.old" and "staging -> out": the old run is the only copy.
    if (!fs::exists(fs::symlink_status(target, ec))) {
      fs::rename(p, target, ec);
      if (!ec) continue;
    }
    fs::remove_all(p, ec);
  }
}

namespace {

/// The folder of the scratch folders of ranks other than 0: the temporary directory
/// (TMPDIR). \throws IoError naming TMPDIR and its value when it is not a folder.
fs::path scratch_parent() {
  std::error_code ec;
  fs::path dir = fs::temp_directory_path(ec);
  if (ec) {
    const char* tmpdir = std::getenv("TMPDIR");
    throw IoError("TMPDIR '" + std::string(tmpdir ? tmpdir : "") + "': cannot hold the scratch folder of MPI rank " +
                  std::to_string(mpi::rank()) + ": " + ec.message());
  }
  return dir;
}

/// Removes the scratch folders "boltzlab-rank<r>-<pid>" in `parent` whose process is
/// gone: a rank killed outright (mpirun follows its SIGTERM with a SIGKILL after a
/// short grace, which can land while the handler is still removing) leaves its folder
/// behind. Folders of live processes — other jobs on the same host — are kept.
void remove_stale_scratch(const fs::path& parent) {
  static const std::string prefix = "boltzlab-rank";
  std::error_code ec;
  std::vector<fs::path> dead;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::size_t dash = name.find('-', prefix.size());
    if (dash == std::string::npos || dash == prefix.size()) continue;
    const std::string rank = name.substr(prefix.size(), dash - prefix.size());
    if (rank.find_first_not_of("0123456789") != std::string::npos) continue;
    if (process_gone(pid_suffix(name, name.substr(0, dash + 1)))) dead.push_back(entry.path());
  }
  for (const fs::path& p : dead) fs::remove_all(p, ec);
}

}  // namespace

fs::path checkpoint_path(const fs::path& out, const std::string& suffix) {
  fs::path p = out;
  while (!p.empty() && p.filename().empty() && p != p.root_path()) p = p.parent_path();
  return fs::path(p.string() + suffix);
}

std::vector<fs::path> potential_files(const Potential& potential) {
  std::vector<fs::path> files = {potential.path};
  collect_files(potential.raw, potential.path.parent_path(), files);
  return files;
}

RunDirectory::RunDirectory(fs::path out, const std::vector<fs::path>& inputs) : out_(std::move(out)) {
  if (out_.empty()) throw IoError("output directory: empty path");
  if (!mpi::is_root()) {
    // Over MPI ranks only rank 0 checks, stages and commits `out`; another rank writes
    // into a private scratch folder that commit() and the destructor discard.
    scratch_ = true;
    target_ = out_;
    const fs::path parent = scratch_parent();
    remove_stale_scratch(parent);
    staging_ = parent / ("boltzlab-rank" + std::to_string(mpi::rank()) + "-" + std::to_string(::getpid()));
    slot_ = arm_cleanup(staging_);
    std::error_code ec;
    fs::remove_all(staging_, ec);
    fs::create_directories(staging_, ec);
    if (ec) throw IoError(staging_.string() + ": cannot create the scratch folder of MPI rank " + std::to_string(mpi::rank()));
    return;
  }
  target_ = resolve_out(out_);
  check_replaceable(target_, out_);
  refuse_inputs(inputs);
  std::error_code ec;
  const fs::path parent = target_.parent_path();
  fs::create_directories(parent, ec);
  if (ec) throw IoError(out_.string() + ": cannot create parent directory: " + ec.message());
  remove_stale_staging(target_);
  staging_ = parent / (target_.filename().string() + ".staging-" + std::to_string(::getpid()));
  slot_ = arm_cleanup(staging_);
  try {
    fs::remove_all(staging_, ec);
    fs::create_directory(staging_, ec);
    if (ec) throw IoError(out_.string() + ": cannot create output directory: " + ec.message());
    // The marker doubles as the probe that the directory is writable before any expensive work.
    std::ofstream marker(staging_ / kRunMarker);
    if (!(marker << marker_text()) || !marker.flush()) throw IoError(out_.string() + ": output directory is not writable");
  } catch (...) {
    fs::remove_all(staging_, ec);
    disarm_cleanup(slot_);
    throw;
  }
}

RunDirectory::~RunDirectory() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
  disarm_cleanup(slot_);
}

void RunDirectory::refuse_inputs(const std::vector<fs::path>& inputs) const {
  if (scratch_) return;
  std::error_code ec;
  if (!fs::exists(target_, ec)) return;  // a new directory holds nothing yet
  const fs::path out = fs::weakly_canonical(target_, ec);
  for (const fs::path& input : inputs) {
    if (input.empty()) continue;
    const fs::path p = fs::weakly_canonical(fs::absolute(input, ec), ec);
    if (ec || !fs::exists(p, ec)) continue;
    const fs::path dir = fs::is_directory(p, ec) ? p : p.parent_path();
    if (is_within(out, dir)) {
      throw IoError(out_.string() + ": is or contains the folder of the input '" + input.string() +
                    "'; refusing to write the output there (choose another --out)");
    }
  }
}

void RunDirectory::write_array(const std::string& name, const Eigen::VectorXd& v) const {
  write_npy(path(name), v);
}

void RunDirectory::write_array(const std::string& name, const RowMatrix& m) const {
  write_npy(path(name), m);
}

void RunDirectory::write_summary(nlohmann::json summary) const {
  summary["format_version"] = kRunFormatVersion;
  sanitize_non_finite(summary);
  write_text("summary.json", summary.dump(2) + "\n");
}

void RunDirectory::write_text(const std::string& name, const std::string& text) const {
  std::ofstream out(path(name), std::ios::trunc);
  if (!out) throw IoError(path(name).string() + ": cannot open file for writing");
  out << text;
  out.flush();
  if (!out) throw IoError(path(name).string() + ": write failed");
}

void RunDirectory::commit() {
  if (scratch_) return;  // the destructor removes it
  // `out` may have been created since the constructor checked it.
  check_replaceable(target_, out_);
  std::error_code ec;
  if (fs::exists(fs::symlink_status(target_, ec))) {
    // One atomic step: the new run takes `out`'s place, the earlier run the staging name.
    if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) == 0) {
      committed_ = true;
      fs::remove_all(staging_, ec);  // the earlier run
      disarm_cleanup(slot_);
      return;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
      throw IoError(out_.string() + ": cannot replace earlier output: " + std::strerror(errno));
    }
  }
  // No RENAME_EXCHANGE here (or nothing to replace): out -> out.old-<pid>, staging -> out.
  fs::path old;
  if (fs::exists(fs::symlink_status(target_, ec))) {
    old = target_;
    old += ".old-" + std::to_string(::getpid());
    fs::remove_all(old, ec);
    fs::rename(target_, old, ec);
    if (ec) throw IoError(out_.string() + ": cannot replace earlier output: " + ec.message());
  }
  fs::rename(staging_, target_, ec);
  if (ec) {
    if (!old.empty()) fs::rename(old, target_, ec);
    throw IoError(out_.string() + ": cannot move output into place: " + ec.message());
  }
  committed_ = true;
  disarm_cleanup(slot_);
  if (!old.empty()) fs::remove_all(old, ec);
}

}  // namespace boltzlab
