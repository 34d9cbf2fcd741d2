#pragma once
/// \file blas_kernels.hpp
/// OpenBLAS kernels matched to the CPU.
///
/// OpenBLAS (Debian 12 ships 0.3.21) picks its GEMM kernels from a table of CPU models
/// when it is loaded. On a CPU newer than its table it falls back to the generic
/// `Prescott` (SSE3) kernels: on an AVX-512 Xeon that OpenBLAS 0.3.21 does not know
/// (family 6, model 207), a float64 product of the training's sizes runs at 15 GFLOP/s
/// with them and at 55–65 with the `SkylakeX` kernels (docs/results/performance.md).
/// The library reads the choice (`OPENBLAS_CORETYPE`) only while it is being loaded, so
/// a process can only choose before it starts: select_blas_kernels() restarts the
/// program once with the variable set.
#include <string>

namespace boltzlab {

/// Where OpenBLAS is loaded in this process, runs its generic kernels, and the CPU has
/// AVX-512 (F, CD, BW, DQ, VL: `SkylakeX`) or AVX2 with FMA (`Haswell`), and
/// OPENBLAS_CORETYPE is not set: sets OPENBLAS_CORETYPE and re-executes the program
/// with the same arguments (execv of /proc/self/exe; the process keeps its PID, so this
/// is safe before MPI_Init under mpirun). Returns without doing anything otherwise,
/// also when the re-execution fails. Call first thing in main(). Child processes
/// (a PyTorch baseline a benchmark starts) inherit the variable, hence the same kernels.
/// `later_load`: also where OpenBLAS is not loaded yet but the program opens it later (the
/// benchmarks' GEMM probe dlopens libblas.so.3): the library is opened to ask for its core, and
/// the restart makes the later load read the variable.
void select_blas_kernels(char** argv, bool later_load = false);

/// "OPENBLAS_CORETYPE=SkylakeX " where a process that loads OpenBLAS would get a better
/// core from select_blas_kernels() (same rule; OpenBLAS is opened to ask it), else "". For
/// benchmarks that start a baseline which cannot restart itself (a PyTorch script): prefix
/// its command line, so that the baseline runs on the kernels the tools would run on.
std::string blas_environment_for_children();

/// "OpenBLAS 0.3.21, kernels SkylakeX (OPENBLAS_CORETYPE=SkylakeX)", or "" when OpenBLAS
/// is not loaded in this process; for benchmark headers.
std::string blas_description();

}  // namespace boltzlab
