"""The BLAS a PyTorch baseline runs on, printed beside its timings (imported by the *_torch.py
benchmarks; Debian's python3-torch calls whatever libblas.so.3 the alternatives system provides)."""
import os
import re

import torch


def blas_in_use():
    """PyTorch's BLAS: its build setting (BLAS_INFO) and the BLAS/LAPACK shared objects mapped
    into this process (resolved paths, e.g. OpenBLAS through /usr/lib/x86_64-linux-gnu/libblas.so.3)."""
    info = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    libs = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "blas" in path or "lapack" in path:
                libs.add(os.path.realpath(path))
    return {"build": info.group(1) if info else "?", "loaded": sorted(libs)}
