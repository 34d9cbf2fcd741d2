#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "boltzlab/core/blas_kernels.hpp"

int main(int argc, char** argv) {
  // The tests run on the OpenBLAS kernels the tools use (core/blas_kernels.hpp).
  boltzlab::select_blas_kernels(argv);
  doctest::Context context(argc, argv);
  return context.run();
}
