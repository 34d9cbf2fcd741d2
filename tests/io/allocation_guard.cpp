// Replacement global operator new/delete for boltzlab_tests, counting requests for
// test::AllocationGuard (tests/support/allocation_guard.hpp). Outside a guard they are
// malloc/free as the default ones; every form of new and delete is routed here so that
// pairs always match.
#include "support/allocation_guard.hpp"

#include <cstdlib>
#include <new>

namespace boltzlab::test {
namespace {
thread_local AllocationGuard* active_guard = nullptr;
}  // namespace

AllocationGuard::AllocationGuard(std::size_t limit) : limit_(limit), outer_(active_guard) { active_guard = this; }

AllocationGuard::~AllocationGuard() { active_guard = outer_; }

void AllocationGuard::record(std::size_t bytes) {
  if (bytes > limit_) {
    ++refused_;
    throw std::bad_alloc();
  }
  total_ += bytes;
  if (bytes > largest_) largest_ = bytes;
}

namespace {

void* allocate(std::size_t bytes, std::size_t alignment) {
  if (AllocationGuard* guard = active_guard) guard->record(bytes);
  if (bytes == 0) bytes = 1;
  void* p = nullptr;
  if (alignment <= alignof(std::max_align_t)) {
    p = std::malloc(bytes);
  } else if (posix_memalign(&p, alignment, bytes) != 0) {
    p = nullptr;
  }
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace
}  // namespace boltzlab::test

void* operator new(std::size_t n) { return boltzlab::test::allocate(n, 0); }
void* operator new[](std::size_t n) { return boltzlab::test::allocate(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return boltzlab::test::allocate(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return boltzlab::test::allocate(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return boltzlab::test::allocate(n, 0);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return boltzlab::test::allocate(n, 0);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
