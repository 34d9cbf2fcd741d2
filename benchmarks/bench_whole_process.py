#!/usr/bin/python3
"""Whole-process comparison: the wgf-relax tool against a PyTorch script doing the same
job (benchmarks/whole_process_torch.py), each timed as a separate process from start to
exit (for Python that includes importing torch), in one invocation:

  ula   potentials/manywell32.json, 10^5 particles x 100 steps (no warm-up)
  svgd  potentials/lj13.json, 1000 particles x 50 steps (no warm-up)

Both sides read the same initial ensemble (--init, a .npy written here), use the same
step size (ULA 0.01, the flow's default; SVGD 0.005, lj13.json's sampler setting), record monitors every 10 steps (wgf-relax: mean energy, and for SVGD
the KSD and bandwidth) and write samples.npy and reduced_energies.npy. wgf-relax runs
with and without its PNG plots (--no-plots; the PyTorch script draws none) at 1 and 2
threads; PyTorch at 1 and 2 threads with OMP_WAIT_POLICY=PASSIVE, the OpenBLAS kernels the tools
select (tools/openblas_kernels.py) and glibc's allocator
set as wgf-relax sets it (MALLOC_*_ environment variables). The ratios use the
faster setting of each side (best of --repeats runs). Printed per job: each run's wall
time and the tool's own stage timings, the BLAS PyTorch runs on, a check that the jobs
agree (SVGD is deterministic: max |x_boltzlab - x_torch| of the final samples; ULA:
final mean energies within their Monte Carlo error), the wall-clock ratios, and the ratio
of CPU seconds (user + system of the process, all threads) at 1 thread, which other jobs
on a shared machine do not inflate.

  /usr/bin/python3 benchmarks/bench_whole_process.py [--bin build/bin] [--repeats 1] [--jobs ula,svgd]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from openblas_kernels import tool_environment  # noqa: E402
ROOT = os.path.dirname(HERE)

JOBS = {
    "ula": {"potential": "potentials/manywell32.json", "particles": 100000, "steps": 100, "step_size": 0.01},
    "svgd": {"potential": "potentials/lj13.json", "particles": 1000, "steps": 50, "step_size": 0.005},
}


def initial_ensemble(job, n, path):
    rng = np.random.default_rng(2026)
    if job == "ula":
        x = rng.standard_normal((n, 32))
    else:
        # LJ13: 13 points of a 3x3x2 cubic lattice (spacing 1.1) plus N(0, 0.05^2)
        # jitter, centred (wgf-relax centres particle systems).
        grid = np.array([[i, j, k] for k in range(2) for j in range(3) for i in range(3)][:13], float) * 1.1
        x = grid[None, :, :] + 0.05 * rng.standard_normal((n, 13, 3))
        x -= x.mean(1, keepdims=True)
        x = x.reshape(n, 39)
    np.save(path, x)


def timed(cmd, env=None):
    """Runs cmd; returns (wall seconds, CPU seconds user + system of the process, stdout)."""
    t0 = time.perf_counter()
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    if res.returncode != 0:
        sys.exit(f"bench_whole_process: failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr}")
    return wall, cpu, res.stdout


def run_boltzlab(a, job, init, out, threads, plots):
    spec = JOBS[job]
    cmd = [os.path.join(a.bin, "wgf-relax"), "--potential", os.path.join(ROOT, spec["potential"]), "--flow", job,
           "--init", init, "--steps", str(spec["steps"]), "--warmup", "0", "--monitor-every", "10",
           "--step-size", str(spec["step_size"]),
           "--threads", str(threads), "--out", out, "-q"]
    if not plots:
        cmd.append("--no-plots")
    best, timings = None, None
    for _ in range(a.repeats):
        wall, cpu, _ = timed(cmd)
        if best is None or wall < best[0]:
            best = (wall, cpu)
            with open(os.path.join(out, "summary.json")) as f:
                timings = json.load(f).get("timings", {})
    return best, timings


def run_torch(a, job, init, out, threads):
    spec = JOBS[job]
    cmd = [a.python, os.path.join(HERE, "whole_process_torch.py"), job, "--init", init, "--out", out,
           "--steps", str(spec["steps"]), "--step-size", str(spec["step_size"]), "--monitor-every", "10",
           "--threads", str(threads)]
    # The allocator settings wgf-relax makes by mallopt (tools/wgf-relax.cpp), for Python.
    # On the OpenBLAS kernels wgf-relax's process would get (tools/openblas_kernels.py).
    env = dict(tool_environment(), OMP_WAIT_POLICY="PASSIVE", MALLOC_MMAP_THRESHOLD_="33554432",
               MALLOC_TRIM_THRESHOLD_="2146435072", MALLOC_TOP_PAD_="536870912")
    best, info = None, None
    for _ in range(a.repeats):
        wall, cpu, stdout = timed(cmd, env)
        if best is None or wall < best[0]:
            best, info = (wall, cpu), json.loads(stdout.strip().splitlines()[-1])
    return best, info


def agreement(job, bdir, tdir):
    xb, xt = np.load(os.path.join(bdir, "samples.npy")), np.load(os.path.join(tdir, "samples.npy"))
    ub, ut = np.load(os.path.join(bdir, "reduced_energies.npy")), np.load(os.path.join(tdir, "reduced_energies.npy"))
    if job == "svgd":
        return (f"final samples max |x_boltzlab - x_torch| = {np.abs(xb - xt).max():.2e}, "
                f"mean u {ub.mean():.6f} vs {ut.mean():.6f}")
    se = np.hypot(ub.std() / np.sqrt(len(ub)), ut.std() / np.sqrt(len(ut)))
    return f"final mean u {ub.mean():.4f} vs {ut.mean():.4f} (difference {abs(ub.mean() - ut.mean()) / se:.1f} SE)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--jobs", default="ula,svgd")
    a = ap.parse_args()
    print(f"bench_whole_process: load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"best of {a.repeats} run(s), wall clock per process")
    with tempfile.TemporaryDirectory(prefix="bench_whole_") as tmp:
        for job in a.jobs.split(","):
            spec = JOBS[job]
            init = os.path.join(tmp, f"{job}_init.npy")
            initial_ensemble(job, spec["particles"], init)
            print(f"\n{job}: {spec['potential']}, {spec['particles']} particles x {spec['steps']} steps")
            results = {}
            for threads in (1, 2):
                for plots in (False, True):
                    out = os.path.join(tmp, f"b_{job}_{threads}_{int(plots)}")
                    (wall, cpu), tm = run_boltzlab(a, job, init, out, threads, plots)
                    results[("b", threads, plots)] = (wall, out, cpu)
                    stages = ", ".join(f"{k} {v:.3f}" for k, v in tm.items() if k != "particle_steps_per_second")
                    print(f"  wgf-relax {threads} thread(s), plots {'on ' if plots else 'off'}: {wall:7.3f} s, "
                          f"CPU {cpu:6.3f} s (stages: {stages})")
            for threads in (1, 2):
                out = os.path.join(tmp, f"t_{job}_{threads}")
                (wall, cpu), info = run_torch(a, job, init, out, threads)
                results[("t", threads)] = (wall, out, cpu)
                print(f"  PyTorch {info['torch']} {threads} thread(s): {wall:7.3f} s, CPU {cpu:6.3f} s "
                      f"(in script: flow {info['flow']:.3f}, write {info['write']:.3f}; import and start-up "
                      f"{wall - info['flow'] - info['write'] - info['load']:.3f})")
            print(f"  PyTorch BLAS: {json.dumps(info['blas'])}")
            best_b = min((v[0], k) for k, v in results.items() if k[0] == "b" and not k[2])
            best_bp = min((v[0], k) for k, v in results.items() if k[0] == "b" and k[2])
            best_t = min((v[0], k) for k, v in results.items() if k[0] == "t")
            print("  agreement: " + agreement(job, results[best_b[1]][1], results[best_t[1]][1]))
            print(f"  ratio PyTorch / wgf-relax (faster settings): {best_t[0] / best_b[0]:.1f}x without plots, "
                  f"{best_t[0] / best_bp[0]:.1f}x with the default plots")
            # CPU seconds at 1 thread: insensitive to the CPU share other jobs leave.
            cpu_b, cpu_bp, cpu_t = results[("b", 1, False)][2], results[("b", 1, True)][2], results[("t", 1)][2]
            print(f"  ratio of CPU seconds at 1 thread (insensitive to other load): {cpu_t / cpu_b:.1f}x without "
                  f"plots, {cpu_t / cpu_bp:.1f}x with the default plots")


if __name__ == "__main__":
    main()
