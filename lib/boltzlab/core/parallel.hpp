#pragma once
/// \file parallel.hpp
/// oneTBB helpers. The thread count is set once per process (set_num_threads);
/// every parallel loop goes over particles, and each particle's work reads and
/// writes only that particle's state and random stream, so results are
/// bit-identical for any thread count.
#include <cstddef>
#include <string>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

namespace boltzlab {

/// Whether a batched operation runs over oneTBB or in a plain loop (the serial
/// reference that tests compare against).
enum class Execution { kParallel, kSerial };

/// Limits oneTBB to `threads` worker threads for the rest of the process
/// (threads <= 0: all cores). Also the setting LibTorch reads (see threads()).
/// \throws ConfigError for threads > 1024.
void set_num_threads(int threads);

/// The thread count set by set_num_threads (or the hardware concurrency).
int num_threads();

/// for i in [0, n): body(i), over oneTBB or serially.
template <class Body>
void for_each_index(std::size_t n, Body&& body, Execution exec = Execution::kParallel,
                    std::size_t grain = 1) {
  if (exec == Execution::kSerial || n <= 1) {
    for (std::size_t i = 0; i < n; ++i) body(i);
    return;
  }
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, grain),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      for (std::size_t i = r.begin(); i != r.end(); ++i) body(i);
                    });
}

/// for each block [b, e) of [0, n): body(b, e). Blocks are fixed by n and grain
/// only, never by the scheduler, so per-block partial results can be combined
/// deterministically.
template <class Body>
void for_each_block(std::size_t n, std::size_t grain, Body&& body,
                    Execution exec = Execution::kParallel) {
  if (grain == 0) grain = 1;
  const std::size_t blocks = (n + grain - 1) / grain;
  for_each_index(
      blocks,
      [&](std::size_t k) {
        const std::size_t b = k * grain;
        const std::size_t e = b + grain < n ? b + grain : n;
        body(b, e);
      },
      exec);
}

}  // namespace boltzlab
