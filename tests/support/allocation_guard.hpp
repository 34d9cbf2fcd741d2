#pragma once
/// \file allocation_guard.hpp
/// Counts what a piece of code asks of operator new, on this thread, while a guard is
/// alive, and refuses (std::bad_alloc, before any memory is touched) a single request
/// above the guard's limit. The replacement operator new/delete live in
/// tests/io/allocation_guard.cpp (boltzlab_tests only); outside a guard they behave as
/// the default ones. Allocations of other threads and of malloc are not counted.
#include <cstddef>

namespace boltzlab::test {

class AllocationGuard {
 public:
  /// Starts counting on this thread; one request above `limit` bytes throws bad_alloc.
  explicit AllocationGuard(std::size_t limit);
  ~AllocationGuard();
  AllocationGuard(const AllocationGuard&) = delete;
  AllocationGuard& operator=(const AllocationGuard&) = delete;

  /// Bytes requested since construction (a sum of request sizes, frees not subtracted).
  std::size_t total_bytes() const { return total_; }
  /// The largest single request since construction.
  std::size_t largest_request() const { return largest_; }
  /// Requests refused for exceeding the limit.
  std::size_t refused() const { return refused_; }

  /// Called by the replacement operator new: counts, or throws bad_alloc above the limit.
  void record(std::size_t bytes);

 private:
  std::size_t limit_;
  std::size_t total_ = 0;
  std::size_t largest_ = 0;
  std::size_t refused_ = 0;
  AllocationGuard* outer_;
};

}  // namespace boltzlab::test
