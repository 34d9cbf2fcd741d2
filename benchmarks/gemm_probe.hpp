#pragma once
/// \file gemm_probe.hpp
/// The machine's measured float64 GEMM peak, for benchmarks that report achieved
/// GFLOP/s against it in the same invocation: dgemm of the system BLAS, resolved at run
/// time through libblas.so.3 (Debian's alternatives: OpenBLAS when installed), n × n × n
/// (2n³ flops), at 1 and 2 threads (openblas_set_num_threads when the library has it),
/// best of `rounds` calls after a warm-up.
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/core/timing.hpp"

namespace bench {

struct GemmPeak {
  double gflops_1 = 0.0;  ///< dgemm GFLOP/s at 1 thread (0: no BLAS found)
  double gflops_2 = 0.0;  ///< at 2 threads
  std::string library;    ///< resolved path of the library that provides dgemm_
};

inline GemmPeak gemm_probe(int n = 1000, int rounds = 3) {
  using DgemmFn = void (*)(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
                           const int*, const double*, const int*, const double*, double*, const int*);
  using SetThreadsFn = void (*)(int);
  GemmPeak peak;
  void* lib = dlopen("libblas.so.3", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return peak;
  auto dgemm = reinterpret_cast<DgemmFn>(dlsym(lib, "dgemm_"));
  auto set_threads = reinterpret_cast<SetThreadsFn>(dlsym(lib, "openblas_set_num_threads"));
  if (!dgemm) return peak;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(dgemm), &info) && info.dli_fname) peak.library = info.dli_fname;
  if (set_threads) {
    using NameFn = char* (*)();
    auto core_fn = reinterpret_cast<NameFn>(dlsym(lib, "openblas_get_corename"));
    const char* core = core_fn ? core_fn() : nullptr;
    peak.library += std::string(" (OpenBLAS, kernels ") + (core ? core : "?") + ")";
  }
  const boltzlab::RowMatrix a = boltzlab::RowMatrix::Random(n, n), b = boltzlab::RowMatrix::Random(n, n);
  boltzlab::RowMatrix c(n, n);
  const double one = 1.0, zero = 0.0, flops = 2.0 * n * static_cast<double>(n) * n;
  for (int threads : {1, 2}) {
    if (set_threads) set_threads(threads);
    double best = 1e300;
    for (int r = 0; r <= rounds; ++r) {
      const double t0 = boltzlab::wall_seconds();
      dgemm("N", "N", &n, &n, &n, &one, a.data(), &n, b.data(), &n, &zero, c.data(), &n);
      if (r > 0) best = std::min(best, boltzlab::wall_seconds() - t0);
    }
    (threads == 1 ? peak.gflops_1 : peak.gflops_2) = flops / best * 1e-9;
  }
  return peak;
}

}  // namespace bench
