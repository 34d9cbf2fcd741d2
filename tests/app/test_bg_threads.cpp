// bg-sample's thread setting: the generators parallelize over fixed chunks with oneTBB, so
// every other thread pool stays at one thread: LibTorch's (OpenMP) and the BLAS's (OpenBLAS's
// pthread pool started one thread per core inside every GEMM of every worker, and two-thread
// training ran slower than one-thread training).
#include <dlfcn.h>

#include "support/torch_doctest.hpp"

#include "boltzlab/app/bg_run.hpp"

TEST_CASE("bg-sample threads: LibTorch and OpenBLAS run one thread each") {
  boltzlab::generators::set_generator_threads(2);
  CHECK(torch::get_num_threads() == 1);
  using GetThreads = int (*)();
  auto* get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (get == nullptr) {
    MESSAGE("the BLAS is not OpenBLAS: nothing to check");
    return;
  }
  CHECK(get() == 1);
}
