#pragma once
/// \file timing.hpp
/// Wall-clock and CPU time for the timings that tools report.

namespace boltzlab {

/// Seconds since an arbitrary epoch (steady clock), for timings.
double wall_seconds();
/// CPU seconds (user + system, all threads) of this process so far (getrusage).
double cpu_seconds();

}  // namespace boltzlab
