"""The OpenBLAS kernels the command-line tools select for this CPU (the rule of
lib/boltzlab/core/blas_kernels.hpp), for Python processes that must run on the same ones: a
parity test, or a PyTorch baseline in a benchmark. OpenBLAS reads OPENBLAS_CORETYPE only when
it is loaded, so set the variable in the environment of a process about to start."""
import ctypes
import os


def tool_core():
    """"SkylakeX" or "Haswell" where OpenBLAS fell back to its generic kernels on a CPU with
    AVX-512 (F, CD, BW, DQ, VL) or AVX2 with FMA and OPENBLAS_CORETYPE is not set; else None."""
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


def tool_environment(env=None):
    """A copy of env (default os.environ) with OPENBLAS_CORETYPE set as the tools would set it."""
    out = dict(os.environ if env is None else env)
    core = tool_core()
    if core:
        out["OPENBLAS_CORETYPE"] = core
    return out


if __name__ == "__main__":
    core = tool_core()
    print(f"OPENBLAS_CORETYPE={core}" if core else "")
