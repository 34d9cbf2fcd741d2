#!/usr/bin/python3
"""Vectorized PyTorch ULA on ManyWell-d: the baseline of benchmarks/bench_ula.cpp.

u(x) = sum over pairs (a, b) of a^4 - 6 a^2 - 0.5 a + b^2/2, analytic gradient
(4a^3 - 12a - 0.5, b) (no autograd: the stronger baseline); x' = x - tau * grad u(x)
+ sqrt(2 tau) xi, float64, all particles as one (N, d) tensor, in-place updates,
torch.set_num_threads(threads). Reports the best of --repeats timed runs.
Prints one JSON line: {"particle_steps_per_second": ..., ...}.
"""
import argparse
import json
import math
import time

import torch

from torch_blas import blas_in_use




def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--particles", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--step-size", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tau = args.step_size
    noise = math.sqrt(2.0 * tau)
    x = torch.randn(args.particles, args.dim, dtype=torch.float64)
    xi = torch.empty_like(x)
    # Coordinates alternate (a, b); full-tensor elementwise ops with a mask are
    # faster than strided slices.
    even = (torch.arange(args.dim) % 2 == 0).expand(args.particles, args.dim)

    def energy_and_grad():
        x2 = x * x
        u = torch.where(even, (x2 - 6.0) * x2 - 0.5 * x, 0.5 * x2).sum(1)
        g = torch.where(even, (4.0 * x2 - 12.0) * x - 0.5, x)
        return u, g

    def run(steps):
        u, g = energy_and_grad()
        for _ in range(steps):
            xi.normal_()
            x.add_(g, alpha=-tau).add_(xi, alpha=noise)
            u, g = energy_and_grad()
        return u

    run(10)  # warm-up
    best = float("inf")
    best_cpu = float("inf")
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        u = run(args.steps)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    rate = args.particles * args.steps / best
    print(json.dumps({"particle_steps_per_second": rate, "seconds": best,
                      "particle_steps_per_cpu_second": args.particles * args.steps / best_cpu,
                      "cpu_seconds": best_cpu, "particles": args.particles,
                      "steps": args.steps, "threads": args.threads, "torch": torch.__version__, "blas": blas_in_use(),
                      "mean_energy": float(u.mean())}))


if __name__ == "__main__":
    main()
