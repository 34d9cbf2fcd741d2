"""Shared set-up of the Python-module tests: run as
    /usr/bin/python3 tests/python/test_X.py BIN_DIR SOURCE_DIR
with PYTHONPATH=<build>/python (ctest sets both; see tests/CMakeLists.txt)."""
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

BIN_DIR = sys.argv[1] if len(sys.argv) > 1 else "build/bin"
SOURCE_DIR = sys.argv[2] if len(sys.argv) > 2 else "."
del sys.argv[1:]  # unittest.main reads sys.argv

import boltzlab as bl  # noqa: E402


def potential(name):
    return os.path.join(SOURCE_DIR, "potentials", name)


def tool(name, *args, check=True):
    """Runs build/bin/NAME with args; returns the CompletedProcess (text)."""
    proc = subprocess.run([os.path.join(BIN_DIR, name), *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} {' '.join(map(str, args))} failed ({proc.returncode}): {proc.stderr}")
    return proc


def tool_error(name, *args):
    """The message of a tool's one error line 'NAME: error: MESSAGE' (the tool must fail)."""
    proc = tool(name, *args, check=False)
    assert proc.returncode != 0, f"{name} succeeded unexpectedly"
    lines = [line for line in proc.stderr.splitlines() if line.startswith(f"{name}: error: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0][len(f"{name}: error: "):]


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="boltzlab-py-")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp, name)


class DoubleWell:
    """potentials/double_well.json in NumPy, operation for operation as
    lib/boltzlab/targets/double_well.cpp (so the floating-point results are identical):
    u = a q q + t s + ½ y² / σ², q = s² − 1; ∂u/∂s = 4 a s q + t, ∂u/∂y = y / σ²."""
    dim = 2
    name = "double_well_py"

    def __init__(self, barrier=3.0, tilt=0.0, sigma=1.0):
        self.a, self.t, self.inv_var = barrier, tilt, 1.0 / (sigma * sigma)
        self.batch_sizes = []

    def u(self, x):
        self.batch_sizes.append(x.shape[0])
        s = x[:, 0]
        q = s * s - 1.0
        return self.a * q * q + self.t * s + 0.5 * x[:, 1] * x[:, 1] * self.inv_var

    def grad_u(self, x):
        s = x[:, 0]
        q = s * s - 1.0
        return np.stack([4.0 * self.a * s * q + self.t, x[:, 1] * self.inv_var], axis=1)
