"""Runs a Python-module test on the OpenBLAS kernels the command-line tools select for this
CPU (lib/boltzlab/core/blas_kernels.hpp), so that parity tests compare like with like:
    /usr/bin/python3 tests/python/tool_blas.py tests/python/test_X.py BIN_DIR SOURCE_DIR
OpenBLAS reads OPENBLAS_CORETYPE only when it is loaded, so the choice is made here, in a
process that then replaces itself with the test. Same rule as the tools: only where OpenBLAS
fell back to its generic kernels, the CPU has AVX-512 (F, CD, BW, DQ, VL: SkylakeX) or AVX2
with FMA (Haswell), and OPENBLAS_CORETYPE is not set."""
import ctypes
import os
import sys


def tool_core():
    if "OPENBLAS_CORETYPE" in os.environ:
        return None
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
    except OSError:
        return None
    lib.openblas_get_corename.restype = ctypes.c_char_p
    if lib.openblas_get_corename().decode().lower() not in ("prescott", "core2", "unknown"):
        return None
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return None


if __name__ == "__main__":
    core = tool_core()
    if core:
        os.environ["OPENBLAS_CORETYPE"] = core
    os.execv(sys.executable, [sys.executable] + sys.argv[1:])
