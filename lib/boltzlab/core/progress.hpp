#pragma once
/// \file progress.hpp
/// Progress lines on stderr for long runs: step, rate, ETA and a caller-supplied
/// status (e.g. mean energy). At most one line per `interval` seconds.
#include <cstddef>
#include <string>

namespace boltzlab {

class Progress {
 public:
  /// `label` prefixes every line; `total` is the number of steps (0: unknown);
  /// `enabled` false makes every call a no-op (tests, --quiet).
  Progress(std::string label, std::size_t total, bool enabled = true, double interval = 2.0);
  /// Reports that `done` steps are complete, with an optional status text.
  void update(std::size_t done, const std::string& status = "");
  /// Prints the final line (always, when enabled).
  void finish(const std::string& status = "");

 private:
  std::string label_;
  std::size_t total_;
  bool enabled_;
  double interval_;
  double start_;
  double last_;
  std::size_t done_ = 0;
};

}  // namespace boltzlab
