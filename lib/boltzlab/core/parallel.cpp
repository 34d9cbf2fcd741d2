#include "boltzlab/core/parallel.hpp"

#include <memory>
#include <mutex>
#include <thread>

#include <tbb/global_control.h>

#include "boltzlab/core/error.hpp"

namespace boltzlab {
namespace {
std::mutex g_mutex;
std::unique_ptr<tbb::global_control> g_control;
int g_threads = 0;
}  // namespace

void set_num_threads(int threads) {
  if (threads > 1024) {
    throw ConfigError("threads is " + std::to_string(threads) + ", but must be <= 1024");
  }
  std::lock_guard<std::mutex> lock(g_mutex);
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  g_control.reset();
  g_control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                    static_cast<std::size_t>(threads));
  g_threads = threads;
}

int num_threads() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_threads > 0) return g_threads;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace boltzlab
