#!/usr/bin/python3
"""PyTorch scripts doing the jobs of two wgf-relax runs, for benchmarks/bench_whole_process.py.

Each job reads the same initial ensemble as wgf-relax (--init X.npy), runs the same flow
with the same settings, records the same monitors, and writes samples.npy,
reduced_energies.npy and a summary.json into --out:

  ula   ManyWell-32, x' = x - tau grad u(x) + sqrt(2 tau) xi (tau --step-size), analytic gradient (the stronger baseline: no autograd), mean energy
        every --monitor-every steps.
  svgd  LJ13 (potentials/lj13.json: 13 particles in 3-D, pair_prefactor 2, harmonic 1),
        analytic gradient, plain SVGD x <- x + eps phi (eps --step-size)
        with the median heuristic h^2 = 0.5 median(D^2) / log(N + 1) (exact median of the
        full N x N matrix, as boltzlab's), and every --monitor-every steps (and at the
        end) the mean energy and the IMQ kernel Stein discrepancy (c = 1, V-statistic),
        as boltzlab's InteractingFlow records them.

float64 throughout, torch.set_num_threads(--threads). Prints one JSON line with the
in-script timings (import excluded) and the BLAS in use.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch

from torch_blas import blas_in_use




# ---------------------------------------------------------------- ULA on ManyWell-32

def manywell_energy_grad(x, even):
    x2 = x * x
    u = torch.where(even, (x2 - 6.0) * x2 - 0.5 * x, 0.5 * x2).sum(1)
    g = torch.where(even, (4.0 * x2 - 12.0) * x - 0.5, x)
    return u, g


def run_ula(x, steps, tau, monitor_every, seed):
    torch.manual_seed(seed)
    even = (torch.arange(x.shape[1]) % 2 == 0).expand(x.shape[0], x.shape[1])
    noise = math.sqrt(2.0 * tau)
    xi = torch.empty_like(x)
    u, g = manywell_energy_grad(x, even)
    monitors = {"steps": [0], "mean_energy": [float(u.mean())]}
    for t in range(steps):
        xi.normal_()
        x.add_(g, alpha=-tau).add_(xi, alpha=noise)
        u, g = manywell_energy_grad(x, even)
        if (t + 1) % monitor_every == 0 or t + 1 == steps:
            monitors["steps"].append(t + 1)
            monitors["mean_energy"].append(float(u.mean()))
    return x, u, monitors


# ---------------------------------------------------------------- SVGD on LJ13

def lj_energy_grad(x, n_particles=13, dim=3, pair_prefactor=2.0, harmonic=1.0):
    """u and grad u of LJ13 for all particles: x is (N, 39)."""
    p = x.view(x.shape[0], n_particles, dim)
    diff = p[:, :, None, :] - p[:, None, :, :]                 # (N, 13, 13, 3)
    d2 = (diff * diff).sum(-1)
    eye = torch.eye(n_particles, dtype=torch.bool)
    d2 = d2.masked_fill(eye, 1.0)
    s6 = d2.reciprocal().pow(3)
    pair = (s6 * (s6 - 2.0)).masked_fill(eye, 0.0)
    u = 0.5 * pair_prefactor * pair.sum((1, 2))
    f = (12.0 * s6 * (1.0 - s6) / d2).masked_fill(eye, 0.0)   # pair-energy derivative / d
    g = pair_prefactor * (f[..., None] * diff).sum(2)
    r = p - p.mean(1, keepdim=True)
    u = u + 0.5 * harmonic * (r * r).sum((1, 2))
    g = g + harmonic * r
    return u, g.reshape(x.shape[0], -1)


def median_all_pairs(d2):
    """numpy.median of the full N x N matrix (mean of the two middle entries)."""
    flat = d2.reshape(-1)
    m = flat.numel()
    if m % 2:
        return torch.kthvalue(flat, m // 2 + 1).values
    lower = torch.kthvalue(flat, m // 2).values
    upper = lower if (flat <= lower).sum() >= m // 2 + 1 else flat[flat > lower].min()
    return 0.5 * (lower + upper)


def pair_sq_distances(x):
    sq = (x * x).sum(1)
    return (sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)).clamp_min_(0.0)


def svgd_direction(x, scores):
    n = x.shape[0]
    xc = x - x.mean(0)
    d2 = pair_sq_distances(xc)
    h2 = float(0.5 * median_all_pairs(d2) / math.log(n + 1.0))
    h2 = h2 if h2 > 0 else 1.0
    k = torch.exp(-d2 / (2.0 * h2))
    phi = (k @ scores + (xc * k.sum(1, keepdim=True) - k @ xc) / h2) / n
    return phi, math.sqrt(h2)


def ksd_imq(x, scores, c=1.0):
    """V-statistic of KSD^2 with the IMQ kernel (c^2 + |r|^2)^(-1/2) (kernels.hpp)."""
    n, d = x.shape
    r2 = pair_sq_distances(x)
    q = c * c + r2
    k = q.rsqrt()
    kq = k / q
    xs = (x * scores).sum(1)
    g = xs[:, None] - scores @ x.T - x @ scores.T + xs[None, :]  # (s_i - s_j).(x_i - x_j)
    u = k * (scores @ scores.T) + kq * g + d * kq - 3.0 * r2 * kq / q
    return math.sqrt(max(float(u.sum()) / (n * n), 0.0))


def run_svgd(x, steps, eps, monitor_every):
    monitors = {"steps": [], "mean_energy": [], "ksd": [], "bandwidth": []}

    def record(step, u, g, h):
        monitors["steps"].append(step)
        monitors["mean_energy"].append(float(u.mean()))
        monitors["ksd"].append(ksd_imq(x, -g))
        monitors["bandwidth"].append(h)

    h = float("nan")
    for t in range(steps):
        u, g = lj_energy_grad(x)
        phi, h = svgd_direction(x, -g)
        if t % monitor_every == 0:
            record(t, u, g, h)
        x = x + eps * phi
    u, g = lj_energy_grad(x)
    record(steps, u, g, h)
    return x, u, monitors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("job", choices=["ula", "svgd"])
    ap.add_argument("--init", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--step-size", type=float, required=True)
    ap.add_argument("--monitor-every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    x = torch.from_numpy(np.load(a.init)).to(torch.float64).contiguous()
    t_loaded = time.perf_counter()
    with torch.no_grad():
        if a.job == "ula":
            x, u, monitors = run_ula(x, a.steps, a.step_size, a.monitor_every, a.seed)
        else:
            x, u, monitors = run_svgd(x, a.steps, a.step_size, a.monitor_every)
    t_flowed = time.perf_counter()
    os.makedirs(a.out, exist_ok=True)
    np.save(os.path.join(a.out, "samples.npy"), x.numpy())
    np.save(os.path.join(a.out, "reduced_energies.npy"), u.numpy())
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"job": a.job, "particles": x.shape[0], "steps": a.steps, "monitors": monitors}, f)
    t_written = time.perf_counter()
    print(json.dumps({"job": a.job, "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "blas": blas_in_use(), "load": t_loaded - t0, "flow": t_flowed - t_loaded,
                      "write": t_written - t_flowed, "mean_energy": float(u.mean())}))


if __name__ == "__main__":
    main()
