#include "boltzlab/core/progress.hpp"

#include <chrono>
#include <cstdio>

namespace boltzlab {
namespace {
double now() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}
}  // namespace

Progress::Progress(std::string label, std::size_t total, bool enabled, double interval)
    : label_(std::move(label)), total_(total), enabled_(enabled), interval_(interval),
      start_(now()), last_(start_) {}

void Progress::update(std::size_t done, const std::string& status) {
  done_ = done;
  if (!enabled_) return;
  const double t = now();
  if (t - last_ < interval_) return;
  last_ = t;
  const double elapsed = t - start_;
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  if (total_ > 0 && rate > 0) {
    const double eta = static_cast<double>(total_ - std::min(done, total_)) / rate;
    std::fprintf(stderr, "%s: %zu/%zu (%.1f%%), %.3g steps/s, ETA %.0f s%s%s\n", label_.c_str(), done,
                 total_, 100.0 * static_cast<double>(done) / static_cast<double>(total_), rate, eta,
                 status.empty() ? "" : ", ", status.c_str());
  } else {
    std::fprintf(stderr, "%s: %zu, %.3g steps/s%s%s\n", label_.c_str(), done, rate,
                 status.empty() ? "" : ", ", status.c_str());
  }
}

void Progress::finish(const std::string& status) {
  if (!enabled_) return;
  const double elapsed = now() - start_;
  std::fprintf(stderr, "%s: done, %zu steps in %.2f s%s%s\n", label_.c_str(), done_, elapsed,
               status.empty() ? "" : ", ", status.c_str());
}

}  // namespace boltzlab
