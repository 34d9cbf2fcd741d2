#!/usr/bin/python3
"""PyTorch baseline for bench_bg_score_iteration: one training iteration of an MLP score
model s(y, s) (input (y, s), GELU hidden layers, float64) on the loss of
lib/boltzlab/generators/score_matching.hpp, written the way a PyTorch user writes it:
the divergence, the Jacobian rows, ds/ds and the Laplacians by torch.autograd.grad with
create_graph=True (one forward pass shared by all terms that need the same inputs).

  J = a0 * matching + a1 * residual + a2 * terminal, on y = m(s) y0 + sqrt(v(s)) xi,
  VP noising (f = beta y / 2, g^2 = beta, m = exp(-beta s / 2), v = 1 - exp(-beta s)),
  weighting w(s) = g^2 ("diffusion") or v(s) ("variance"):
  implicit   matching = mean w (|s|^2 / 2 + div s)
  denoising  matching = mean w |s + xi / sqrt(v)|^2 / 2
  residual   = mean sum_i |r_i|^p,
             r_i = ds_i/ds - c s_i - c sum_j y_j d_i s_j - g^2 sum_j s_j d_i s_j - g^2/2 Lap s_i
  terminal   = mean(|s(y0, 0)|^2 + 2 div s(y0, 0))

One iteration, as train_score() does it: draw a batch (data rows, s ~ U[t_min, T], noise),
zero_grad, loss, loss.item(), backward, gradient norm (clip_grad_norm_ with an infinite
bound: the finiteness check), Adam step.

Usage: score_torch.py dir=DIR [threads=1] [reps=60] [warmup=3]. DIR holds cases.json,
data.npy and the initial weights w{l}.npy, b{l}.npy written by the benchmark, and per case
a check batch y0.npy, s.npy, noise.npy in DIR/<case>/. Prints JSON lines on stdout: first
the library line (torch version, BLAS), then one line per case with the loss terms and
gradient norm on the check batch at the initial weights, the median and minimum wall-clock
milliseconds per iteration and the median process CPU milliseconds per iteration.
"""
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch


def loaded_blas_libraries():
    """Shared libraries with BLAS in their name mapped into this process."""
    found = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            name = os.path.basename(path).lower()
            if path.startswith("/") and ("blas" in name or "mkl" in name):
                found.add(os.path.realpath(path))
    return sorted(found)


def blas_info():
    """BLAS_INFO of torch.__config__.show() ("generic": the system's libblas.so.3)."""
    match = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return match.group(1) if match else "unknown"


class Score(torch.nn.Module):
    """s(y, s) = MLP(cat(y, s)) with exact (erf) GELU hidden layers."""

    def __init__(self, dim, hidden):
        super().__init__()
        widths = [dim + 1] + list(hidden) + [dim]
        layers = []
        for l in range(len(widths) - 1):
            layers.append(torch.nn.Linear(widths[l], widths[l + 1], dtype=torch.float64))
            if l + 2 < len(widths):
                layers.append(torch.nn.GELU())
        self.net = torch.nn.Sequential(*layers)

    def forward(self, y, s):
        return self.net(torch.cat([y, s.unsqueeze(1)], 1))

    def load(self, directory):
        linear = [m for m in self.net if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for l, m in enumerate(linear):
                m.weight.copy_(torch.from_numpy(np.load(os.path.join(directory, "w%d.npy" % l))))
                m.bias.copy_(torch.from_numpy(np.load(os.path.join(directory, "b%d.npy" % l))))


def jacobian_rows(out, inputs):
    """Row i: torch.autograd.grad of sum_b out[b, i] w.r.t. each of `inputs` (graph kept)."""
    return [torch.autograd.grad(out[:, i].sum(), inputs, create_graph=True) for i in range(out.shape[1])]


def score_loss(model, case, y0, s, noise):
    """The loss terms of score_matching.hpp; returns (total, matching, residual, terminal)."""
    beta = case["beta"]
    c, g2 = 0.5 * beta, beta
    d = y0.shape[1]
    v = -torch.expm1(-beta * s)
    y = torch.exp(-0.5 * beta * s).unsqueeze(1) * y0 + torch.sqrt(v).unsqueeze(1) * noise
    w = torch.full_like(s, g2) if case["weighting"] == "diffusion" else v
    implicit = case["alpha0"] > 0 and case["objective"] == "implicit"
    residual_on = case["alpha1"] > 0
    total = torch.zeros((), dtype=torch.float64)
    matching = residual = terminal = 0.0
    out = rows = None
    if implicit or residual_on:
        y = y.requires_grad_(True)
        s_in = s.detach().requires_grad_(residual_on)
        out = model(y, s_in)
        rows = jacobian_rows(out, (y, s_in) if residual_on else (y,))
    if case["alpha0"] > 0:
        if implicit:
            div = sum(rows[i][0][:, i] for i in range(d))
            m = (w * (0.5 * (out * out).sum(1) + div)).mean()
        else:
            score = out if out is not None else model(y, s)
            diff = score + noise / torch.sqrt(v).unsqueeze(1)
            m = (w * 0.5 * (diff * diff).sum(1)).mean()
        matching = m.item()
        total = total + case["alpha0"] * m
    if residual_on:
        jac = torch.stack([rows[i][0] for i in range(d)], 1)  # [b, i, j] = ds_i/dy_j
        dt = torch.stack([rows[i][1] for i in range(d)], 1)   # [b, i] = ds_i/ds
        lap = torch.stack([sum(torch.autograd.grad(rows[i][0][:, k].sum(), y, create_graph=True)[0][:, k]
                               for k in range(d)) for i in range(d)], 1)
        y_jac = torch.einsum("bj,bji->bi", y, jac)    # sum_j y_j d_i s_j
        s_jac = torch.einsum("bj,bji->bi", out, jac)  # sum_j s_j d_i s_j
        r = dt - c * out - c * y_jac - g2 * s_jac - 0.5 * g2 * lap
        rp = r.abs() if case["p"] == 1 else r * r
        res = rp.sum(1).mean()
        residual = res.item()
        total = total + case["alpha1"] * res
    if case["alpha2"] > 0:
        x = y0.detach().clone().requires_grad_(True)
        out0 = model(x, torch.zeros(x.shape[0], dtype=torch.float64))
        div0 = sum(torch.autograd.grad(out0[:, i].sum(), x, create_graph=True)[0][:, i] for i in range(d))
        t = ((out0 * out0).sum(1) + 2.0 * div0).mean()
        terminal = t.item()
        total = total + case["alpha2"] * t
    return total, matching, residual, terminal


def load_tensor(directory, name):
    return torch.from_numpy(np.load(os.path.join(directory, name)))


def check(model, case, directory):
    """Loss terms and gradient norm on the case's check batch at the current weights."""
    model.zero_grad()
    y0, s, noise = (load_tensor(directory, n) for n in ("y0.npy", "s.npy", "noise.npy"))
    total, matching, residual, terminal = score_loss(model, case, y0, s, noise)
    total.backward()
    grad_norm = math.sqrt(sum(float((p.grad * p.grad).sum()) for p in model.parameters()))
    model.zero_grad()
    return {"total": total.item(), "matching": matching, "residual": residual, "terminal": terminal,
            "grad_norm": grad_norm}


def time_case(model, case, data, warmup, reps):
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=case["learning_rate"])
    batch, lo, hi = case["batch"], case["t_min"], case["time"]
    times, cpu_times = [], []
    for it in range(warmup + reps):
        t0, c0 = time.perf_counter(), time.process_time()
        idx = torch.randint(data.shape[0], (batch,))
        y0 = data[idx]
        s = lo + (hi - lo) * torch.rand(batch, dtype=torch.float64)
        noise = torch.randn(batch, data.shape[1], dtype=torch.float64)
        opt.zero_grad()
        total = score_loss(model, case, y0, s, noise)[0]
        loss = total.item()
        if math.isfinite(loss):
            total.backward()
            norm = float(torch.nn.utils.clip_grad_norm_(params, 1e300))
            if math.isfinite(norm):
                opt.step()
        if it >= warmup:
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    times.sort()
    cpu_times.sort()
    return 1e3 * times[len(times) // 2], 1e3 * times[0], 1e3 * cpu_times[len(cpu_times) // 2]


def main():
    args = dict(a.split("=", 1) for a in sys.argv[1:])
    if "dir" not in args:
        sys.exit("score_torch.py: usage: score_torch.py dir=DIR [threads=1] [reps=60] [warmup=3]")
    directory = args["dir"]
    threads = int(args.get("threads", 1))
    reps, warmup = int(args.get("reps", 60)), int(args.get("warmup", 3))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with open(os.path.join(directory, "cases.json")) as f:
        cases = json.load(f)
    data = load_tensor(directory, "data.npy")
    print(json.dumps({"torch": torch.__version__, "blas": blas_info(), "blas_libraries": loaded_blas_libraries(),
                      "threads": torch.get_num_threads()}), flush=True)
    for case in cases:
        model = Score(data.shape[1], case["hidden"])
        model.load(directory)
        result = {"case": case["name"], "check": check(model, case, os.path.join(directory, case["name"]))}
        result["median_ms"], result["min_ms"], result["cpu_median_ms"] = time_case(model, case, data, warmup, reps)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
