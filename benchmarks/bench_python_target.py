#!/usr/bin/env python3
"""Overhead of a Python-defined target: ULA on ManyWell-32 with the C++ target
(potentials/manywell32.json) and with the same energy written in NumPy
(boltzlab.PythonTarget), in particle-steps per second, in one invocation.

    PYTHONPATH=build/python /usr/bin/python3 benchmarks/bench_python_target.py \
        [--particles 512] [--steps 200] [--threads 1 2]

ULA calls the target once per particle and step (Target::reduced_energy), so the Python
target pays one callback (GIL acquisition, (1, d) array in and out, NumPy dispatch) per
particle-step; the callbacks of all threads are serialized by the GIL. The last rows use
an interacting flow (SVGD), whose evaluate_batch makes one callback per step for the
whole ensemble. The samples of the Python and C++ targets are compared (bit-identical
when the NumPy code repeats the C++ operations; printed)."""
import argparse
import os
import sys
import time

import numpy as np

import boltzlab as bl

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


class ManyWell:
    """u = Σ_k (a² − 6) a² − ½ a + ½ b² over pairs (a, b) = (x_2k, x_2k+1), in the order
    of operations of lib/boltzlab/targets/manywell.cpp (summed pair by pair: cumsum adds
    left to right, unlike sum's pairwise summation)."""
    dim = 32
    name = "manywell32_py"

    def u(self, x):
        a, b = x[:, 0::2], x[:, 1::2]
        a2 = a * a
        terms = (a2 - 6.0) * a2 - 0.5 * a + 0.5 * b * b
        return np.cumsum(terms, axis=1)[:, -1]

    def grad_u(self, x):
        g = np.empty_like(x)
        a = x[:, 0::2]
        g[:, 0::2] = (4.0 * (a * a) - 12.0) * a - 0.5
        g[:, 1::2] = x[:, 1::2]
        return g

    def u_and_grad(self, x):
        return self.u(x), self.grad_u(x)


def rate(target, flow, options, threads, seed=1):
    t0 = time.perf_counter()
    run = bl.run_flow(target, flow=flow, options=options, seed=seed, threads=threads)
    seconds = time.perf_counter() - t0
    return run, run.samples.shape[0] * run.steps_done / seconds


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--particles", type=int, default=512)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--svgd-particles", type=int, default=256)
    args = p.parse_args()
    cpp = bl.load_potential(os.path.join(SOURCE, "potentials", "manywell32.json")).target
    mw = ManyWell()
    separate = bl.PythonTarget(mw.u, 32, grad_u=mw.grad_u, name="python u + grad_u")
    fused = bl.PythonTarget(mw.u, 32, u_and_grad=mw.u_and_grad, name="python u_and_grad")
    # The floor: a callback that does no work (u = 0, ∇u = 0; samples differ, of course).
    zeros = bl.PythonTarget(lambda x: np.zeros(x.shape[0]), 32, u_and_grad=lambda x: (np.zeros(x.shape[0]), np.zeros_like(x)),
                            name="python u = 0 (floor)")
    ula = {"particles": args.particles, "steps": args.steps, "warmup": 0, "step_size": 0.005}
    print(f"ULA on ManyWell-32, {args.particles} particles x {args.steps} steps (particle-steps/s)")
    print(f"{'target':<22}{'threads':>8}{'rate':>14}{'slowdown':>10}  same samples")
    for threads in args.threads:
        ref, base = rate(cpp, "ula", ula, threads)
        print(f"{'C++ manywell':<22}{threads:>8}{base:>14.4g}{1.0:>10.1f}")
        for target in (separate, fused, zeros):
            run, r = rate(target, "ula", ula, threads)
            same = np.array_equal(run.samples, ref.samples, equal_nan=True)
            print(f"{target.name:<22}{threads:>8}{r:>14.4g}{base / r:>10.1f}  {same}")
    svgd = {"particles": args.svgd_particles, "steps": 20, "warmup": 0, "step_size": 0.005}
    print(f"SVGD on ManyWell-32, {args.svgd_particles} particles x 20 steps (one callback per step)")
    for threads in args.threads:
        ref, base = rate(cpp, "svgd", svgd, threads)
        run, r = rate(fused, "svgd", svgd, threads)
        same = np.array_equal(run.samples, ref.samples, equal_nan=True)
        print(f"{'C++ / python':<22}{threads:>8}{base:>14.4g}{base / r:>10.2f}  {same}  (python {r:.4g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
