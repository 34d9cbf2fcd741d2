#!/usr/bin/python3
"""Kish ESS of a generator against the target energy evaluations it cost, training included: the
recorded points of docs/results/ess_vs_evaluations.csv, the rungs of given bg-sample runs, and the
published anchors, as a Markdown table (stdout) and one log-x panel per target (gnuplot PNG), its points numbered as the
table's rows.

    /usr/bin/python3 tools/ess_vs_evaluations.py [--csv FILE] [--png OUT.png]
        [--run TARGET:LABEL:KIND:RUN_DIR[:BEFORE]] ...

Evaluations count every energy (and force) evaluation that produced the model: the MD or
replica-exchange steps of its training frames, the MCMC steps of data-trained particle flows,
reverse-KL batches, the draws of annealing and refinement rungs and the running-ESS draws. They
exclude the fresh draws on which the ESS itself is measured (10^5 for the molecules).

--run adds the curve of one bg-sample run with refinement or annealing rungs: at each rung the
Kish ESS of the model before the rung's steps on its own draws, at the evaluations spent so far,
then the run's final ESS on its samples. KIND is "data" (trained on samples of pi) or
"sample-free"; BEFORE is the count spent before the run (e.g. the replica-exchange steps of frames
given with --data, or the training of a --model being refined).
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CSV = os.path.join(HERE, "..", "docs", "results", "ess_vs_evaluations.csv")
KINDS = ("data", "sample-free", "published")


def read_points(path):
    rows = []
    with open(path, newline="") as f:
        for k, r in enumerate(csv.DictReader(f, skipinitialspace=True), start=2):
            if r["kind"] not in KINDS:
                sys.exit(f"{path}:{k}: kind is '{r['kind']}', but must be one of {', '.join(KINDS)}")
            try:
                r["evaluations"] = float(r["evaluations"]) if r["evaluations"] else None
                r["ess_percent"] = float(r["ess_percent"])
            except ValueError as e:
                sys.exit(f"{path}:{k}: {e}")
            if r["evaluations"] is not None and not r["evaluations"] > 0:
                sys.exit(f"{path}:{k}: evaluations must be > 0")
            rows.append(r)
    return rows


def run_curve(spec):
    """TARGET:LABEL:KIND:RUN_DIR[:BEFORE] -> (target, label, [(evaluations, ess %)], final row)."""
    parts = spec.split(":")
    if len(parts) not in (4, 5):
        sys.exit(f"--run {spec}: expected TARGET:LABEL:KIND:RUN_DIR[:BEFORE]")
    target, label, kind, run = parts[:4]
    if kind not in KINDS[:2]:
        sys.exit(f"--run {spec}: kind is '{kind}', but must be data or sample-free")
    before = float(parts[4]) if len(parts) == 5 else 0.0
    path = os.path.join(run, "summary.json")
    try:
        s = json.load(open(path))
    except (OSError, ValueError) as e:
        sys.exit(f"--run {spec}: cannot read {path}: {e}")
    training = s.get("training", {})
    stages = [training[k]["result"] for k in ("annealing", "refinement") if k in training]
    if not stages:
        sys.exit(f"{path}: no annealing or refinement rungs (training.annealing / training.refinement)")
    result = stages[0]
    rungs = result["rungs"]
    rung_evals = sum(r["energy_evaluations"] for r in rungs)
    final = result.get("final") or {}
    # What the training spent before the first rung: its total less the rungs and the checks.
    spent = before + training["energy_evaluations"] - rung_evals - final.get("energy_evaluations", 0)
    stage1 = result.get("stage1", {}).get("check")
    if stage1:
        spent -= stage1["energy_evaluations"]
    points = []
    for r in rungs:
        spent += r["energy_evaluations"]
        points.append((spent, 100.0 * r["ess_fraction"]))
    spent += final.get("energy_evaluations", 0)
    ess = 100.0 * s["importance"]["ess_fraction"]
    points.append((spent, ess))
    row = {"target": target, "label": label + " (final)", "kind": kind,
           "evaluations": spent, "ess_percent": ess, "source": run}
    return target, label, points, row


def number(rows):
    """Sorts by target and evaluations and numbers the rows within each target (the plot's labels)."""
    rows.sort(key=lambda r: (r["target"], r["evaluations"] or math.inf))
    count = {}
    for r in rows:
        count[r["target"]] = count.get(r["target"], 0) + 1
        r["number"] = count[r["target"]]


def table(rows):
    out = ["| target | # | generator | kind | energy evaluations | Kish ESS | source |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ev = f"{r['evaluations']:.3g}" if r["evaluations"] else "not given"
        out.append(f"| {r['target']} | {r['number']} | {r['label']} | {r['kind']} | {ev} | {r['ess_percent']:.4g} % "
                   f"| {r['source']} |")
    return "\n".join(out)


def gnuplot_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def plot(rows, curves, png):
    targets = sorted({r["target"] for r in rows if r["evaluations"]})
    cols = 2
    nrows = (len(targets) + cols - 1) // cols
    with tempfile.TemporaryDirectory() as tmp:
        script = [f"set terminal pngcairo size 1200,{420 * nrows} font ',10'",
                  f"set output {gnuplot_string(png)}",
                  f"set multiplot layout {nrows},{cols}",
                  "set logscale x", "set format x '10^{%L}'", "set yrange [0:115]", "set ytics 0,20,100", "set grid",
                  "set xlabel 'target energy evaluations (training included)'", "set ylabel 'Kish ESS (%)'",
                  "set key top left font ',9'"]
        styles = {"data": "pt 7 ps 1.2 lc rgb '#1f77b4'", "sample-free": "pt 5 ps 1.2 lc rgb '#2ca02c'",
                  "published": "pt 9 ps 1.6 lc rgb '#d62728'"}
        for t in targets:
            pts = [r for r in rows if r["target"] == t and r["evaluations"]]
            lo = min(r["evaluations"] for r in pts)
            hi = max(r["evaluations"] for r in pts)
            for _, _, c in [c for c in curves if c[0] == t]:
                lo, hi = min([lo] + [e for e, _ in c]), max([hi] + [e for e, _ in c])
            script.append(f"set xrange [{lo / 3:.4g}:{hi * 3:.4g}]")
            script.append(f"set title {gnuplot_string(t)}")
            plots = []
            for kind in KINDS:
                sel = [r for r in pts if r["kind"] == kind]
                if not sel:
                    continue
                f = os.path.join(tmp, f"{len(plots)}_{t}.dat")
                with open(f, "w") as out:
                    for r in sel:
                        out.write(f"{r['evaluations']} {r['ess_percent']} {r['number']}\n")
                plots.append(f"{gnuplot_string(f)} using 1:2 with points {styles[kind]} title '{kind}'")
                plots.append(f"{gnuplot_string(f)} using 1:2:3 with labels offset 0.7,0.5 left font ',9' notitle")
            for target, label, c in curves:
                if target != t:
                    continue
                f = os.path.join(tmp, f"curve{len(plots)}_{t}.dat")
                with open(f, "w") as out:
                    for e, y in c:
                        out.write(f"{e} {y}\n")
                plots.append(f"{gnuplot_string(f)} using 1:2 with linespoints pt 6 ps 0.6 title {gnuplot_string(label)}")
            script.append("plot " + ", \\\n     ".join(plots))
        script.append("unset multiplot")
        path = os.path.join(tmp, "plot.gp")
        with open(path, "w") as f:
            f.write("\n".join(script) + "\n")
        r = subprocess.run(["gnuplot", path], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("gnuplot failed: " + r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "gnuplot failed")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", default=DEFAULT_CSV, help="recorded points (default docs/results/ess_vs_evaluations.csv)")
    ap.add_argument("--run", action="append", default=[], help="TARGET:LABEL:KIND:RUN_DIR[:BEFORE]")
    ap.add_argument("--png", help="write the plot here (gnuplot)")
    a = ap.parse_args()
    rows = read_points(a.csv)
    curves = []
    for spec in a.run:
        target, label, points, row = run_curve(spec)
        curves.append((target, label, points))
        rows.append(row)
    number(rows)
    print(table(rows))
    if a.png:
        plot(rows, curves, a.png)
        print(f"\nwrote {a.png}", file=sys.stderr)


if __name__ == "__main__":
    main()
