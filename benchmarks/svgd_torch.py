#!/usr/bin/python3
"""Vectorized PyTorch baseline of one SVGD step (Liu & Wang 2016), the same update as
boltzlab's SvgdFlow: Gaussian target with diagonal variances var_k = 1 + 0.5 (k mod 3),
scores s = -x / var, RBF kernel k = exp(-|x-y|^2 / (2 h^2)) with the original median
heuristic h^2 = 0.5 median(D^2) / log(N + 1) (median over the full N x N matrix,
averaging the two middle entries as numpy.median does; one torch.kthvalue, i.e. the
cost of torch.median), and
    phi = (K s + (x * K.sum(1) - K x) / h^2) / N,   x <- x + eps * phi.
Called by build/bin/bench_svgd; prints one JSON line.
  --x X.npy        initial ensemble (N, d), float64
  --check OUT.npy  write phi at the initial ensemble (to compare with the C++ update)
"""
import argparse
import json
import math
import time

import numpy as np
import torch

from torch_blas import blas_in_use




def step_direction(x, inv_var):
    n = x.shape[0]
    s = -x * inv_var
    sq = (x * x).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)).clamp_min_(0.0)
    flat = d2.reshape(-1)
    m = flat.numel()
    if m % 2:
        med = torch.kthvalue(flat, m // 2 + 1).values
    else:
        # numpy.median: mean of the entries of 1-based rank m/2 and m/2 + 1. One kthvalue
        # (the cost of torch.median) plus two vectorized passes for the upper one.
        lower = torch.kthvalue(flat, m // 2).values
        if (flat <= lower).sum() >= m // 2 + 1:
            upper = lower
        else:
            upper = flat[flat > lower].min()
        med = 0.5 * (lower + upper)
    h2 = 0.5 * med / math.log(n + 1.0)
    k = torch.exp(-d2 / (2.0 * h2))
    ksum = k.sum(1, keepdim=True)
    phi = (k @ s + (x * ksum - k @ x) / h2) / n
    return phi, h2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--x", required=True)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--eps", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x0 = torch.from_numpy(np.load(a.x)).to(torch.float64)
    d = x0.shape[1]
    inv_var = 1.0 / (1.0 + 0.5 * (torch.arange(d, dtype=torch.float64) % 3))
    if a.check:
        phi, _ = step_direction(x0, inv_var)
        np.save(a.check, phi.numpy())
    rounds, cpu = [], []
    with torch.no_grad():
        x = x0.clone()
        step_direction(x, inv_var)  # warm-up
        for _ in range(a.rounds):
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(a.steps):
                phi, _ = step_direction(x, inv_var)
                x = x + a.eps * phi
            rounds.append((time.perf_counter() - t0) / a.steps)
            cpu.append((time.process_time() - c0) / a.steps)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "blas": blas_in_use(), "seconds_per_step": rounds,
                      "cpu_seconds_per_step": cpu}))


if __name__ == "__main__":
    main()
