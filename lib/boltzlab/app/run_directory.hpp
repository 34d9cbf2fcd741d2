#pragma once
/// \file run_directory.hpp
/// The run directory every tool writes (README "Run directory"; the files and the
/// summary.json schema are defined in one place, app/run_outputs.hpp).
///
/// Atomicity: files are written into a staging directory beside the output
/// (`<out>.staging-<pid>`); commit() swaps it into place only once everything was
/// written, so a failed run never leaves half-written output in place of an
/// earlier good one. Without commit() the staging directory is removed.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab {

/// Version of the run-directory layout and summary.json schema.
inline constexpr int kRunFormatVersion = 1;

class RunDirectory {
 public:
  /// Prepares a staging directory for `out`. \throws IoError if the parent of
  /// `out` cannot be created or written, or `out` exists and is not a directory.
  explicit RunDirectory(std::filesystem::path out);
  ~RunDirectory();
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;

  /// Where files are written now (the staging directory until commit()).
  const std::filesystem::path& staging() const { return staging_; }
  /// The final location.
  const std::filesystem::path& out() const { return out_; }
  /// staging()/name.
  std::filesystem::path path(const std::string& name) const { return staging_ / name; }

  void write_array(const std::string& name, const Eigen::VectorXd& v) const;
  void write_array(const std::string& name, const RowMatrix& m) const;
  /// Writes summary.json; `summary["format_version"]` is set to kRunFormatVersion.
  void write_summary(nlohmann::json summary) const;
  void write_text(const std::string& name, const std::string& text) const;

  /// Moves the staging directory to out(), replacing an earlier run there.
  void commit();

 private:
  std::filesystem::path out_;
  std::filesystem::path staging_;
  bool committed_ = false;
};

}  // namespace boltzlab
