"""Runs a Python-module test on the OpenBLAS kernels the command-line tools select for this
CPU (tools/openblas_kernels.py), so that parity tests compare like with like:
    /usr/bin/python3 tests/python/tool_blas.py tests/python/test_X.py BIN_DIR SOURCE_DIR
OpenBLAS reads OPENBLAS_CORETYPE only when it is loaded, so the choice is made here, in a
process that then replaces itself with the test."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from openblas_kernels import tool_environment  # noqa: E402

if __name__ == "__main__":
    os.execve(sys.executable, [sys.executable] + sys.argv[1:], tool_environment())
