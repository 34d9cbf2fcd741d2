#include "boltzlab/app/run_directory.hpp"

#include <cmath>
#include <fstream>
#include <system_error>

#include <unistd.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/npy.hpp"

namespace fs = std::filesystem;

namespace boltzlab {

RunDirectory::RunDirectory(fs::path out) : out_(std::move(out)) {
  if (out_.empty()) throw IoError("output directory: empty path");
  std::error_code ec;
  if (fs::exists(out_, ec) && !fs::is_directory(out_, ec)) {
    throw IoError(out_.string() + ": exists and is not a directory");
  }
  fs::path parent = fs::absolute(out_, ec).parent_path();
  fs::create_directories(parent, ec);
  if (ec) throw IoError(out_.string() + ": cannot create parent directory: " + ec.message());
  staging_ = parent / (out_.filename().string() + ".staging-" + std::to_string(::getpid()));
  fs::remove_all(staging_, ec);
  fs::create_directory(staging_, ec);
  if (ec) throw IoError(out_.string() + ": cannot create output directory: " + ec.message());
  // Probe that the directory is writable before any expensive work is done.
  std::ofstream probe(staging_ / ".probe");
  if (!probe) throw IoError(out_.string() + ": output directory is not writable");
  probe.close();
  fs::remove(staging_ / ".probe", ec);
}

RunDirectory::~RunDirectory() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
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
  std::error_code ec;
  fs::path old;
  if (fs::exists(out_, ec)) {
    old = out_;
    old += ".old-" + std::to_string(::getpid());
    fs::remove_all(old, ec);
    fs::rename(out_, old, ec);
    if (ec) throw IoError(out_.string() + ": cannot replace earlier output: " + ec.message());
  }
  fs::rename(staging_, out_, ec);
  if (ec) {
    if (!old.empty()) fs::rename(old, out_, ec);
    throw IoError(out_.string() + ": cannot move output into place: " + ec.message());
  }
  committed_ = true;
  if (!old.empty()) fs::remove_all(old, ec);
}

}  // namespace boltzlab
