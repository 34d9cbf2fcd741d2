// Tests of lib/boltzlab/core/mpi.hpp as the test binary runs it: one process, not
// started by a launcher, so every helper acts as rank 0 of a job of size 1 (with or
// without MPI built). The multi-rank behaviour is tested by tests/cli/test_mpi_*.sh.
#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "boltzlab/core/mpi.hpp"

using namespace boltzlab;

TEST_CASE("mpi: block_of splits n items into contiguous blocks, the first n mod p one longer") {
  for (std::size_t n : {0u, 1u, 2u, 3u, 7u, 16u, 100u}) {
    for (int p : {1, 2, 3, 5}) {
      std::size_t next = 0;
      for (int r = 0; r < p; ++r) {
        const mpi::Block b = mpi::block_of(n, r, p);
        CHECK(b.begin == next);  // contiguous, in rank order
        const std::size_t expected = n / static_cast<std::size_t>(p) + (static_cast<std::size_t>(r) < n % static_cast<std::size_t>(p) ? 1 : 0);
        CHECK(b.size() == expected);
        next = b.end;
      }
      CHECK(next == n);  // covers every item
    }
  }
  const mpi::Block b = mpi::block_of(7, 2, 3);  // 3 + 2 + 2
  CHECK(b.begin == 5);
  CHECK(b.end == 7);
}

TEST_CASE("mpi: a process not started by a launcher is rank 0 of 1 and the collectives pass data through") {
  CHECK(mpi::rank() == 0);
  CHECK(mpi::size() == 1);
  CHECK(mpi::is_root());
  const mpi::Block all = mpi::my_block(10);
  CHECK(all.begin == 0);
  CHECK(all.end == 10);
  const std::vector<double> v{1.5, -2.0, 3.25};
  CHECK(mpi::allgatherv(v) == v);
  std::vector<std::size_t> sizes;
  CHECK(mpi::allgatherv(std::string("abc"), &sizes) == "abc");
  CHECK(sizes == std::vector<std::size_t>{3});
  CHECK(mpi::gatherv(std::string("xy"), &sizes) == "xy");
  CHECK(sizes == std::vector<std::size_t>{2});
  std::vector<double> sum{1.0, 2.0};
  mpi::allreduce_sum(sum.data(), sum.size());
  CHECK(sum == std::vector<double>{1.0, 2.0});
  std::string bytes = "payload";
  mpi::bcast(bytes);
  CHECK(bytes == "payload");
  CHECK(mpi::bcast(true));
  CHECK(mpi::communication_seconds() == 0.0);
}

TEST_CASE("mpi: run_step on one process returns the step's status and lets its error through at once") {
  CHECK(mpi::run_step([] { return 3; }) == 3);
  // The grace period is for ranks other than 0 only: one process never waits.
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(mpi::run_step([]() -> int { throw std::runtime_error("bad input"); }, 30.0), std::runtime_error);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}
