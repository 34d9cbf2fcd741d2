#!/usr/bin/python3
"""Alanine dipeptide basin populations from replica-exchange runs at T_0, with error
bars, and the Ramachandran distance between runs (their noise floor).

    /usr/bin/python3 tools/rex_populations.py RUN_A RUN_B [--reference data/alanine_dipeptide/md_reference_dihedrals.npy]

RUN_x is a replica-exchange run directory (its samples.npy: the T_0 frames, F x 66 nm)
or a .npy of such frames. phi = dihedral of atoms 4, 6, 8, 14 and psi = 6, 8, 14, 16
(0-based, data/alanine_dipeptide/alanine_dipeptide.pdb order), computed with MDTraj.
Basins as boltzlab's molecular outputs: phi_positive phi >= 0; alpha_R phi < 0 and
-2.2 <= psi < 0.5 rad; beta_C7eq the rest of phi < 0.

Errors: within a run, batch means over 20 contiguous blocks (Flegal & Jones 2010);
between runs, the two independent estimates give mean +- |a - b| / 2 (the standard
error of the mean of two, with the variance estimated from the pair).
Distances: forward KL(A || B) on 64 x 64 bins over [-pi, pi)^2 with eps = 1e-10 added to
the normalized bins, and TV = 1/2 sum |p - q| on 100 x 100 bins, as
estimators/ramachandran_compare.hpp defines them.
"""
import argparse
import json
import os

import mdtraj
import numpy as np

PHI, PSI = [4, 6, 8, 14], [6, 8, 14, 16]
PDB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "alanine_dipeptide", "alanine_dipeptide.pdb")


def angles(path):
    x = np.load(os.path.join(path, "samples.npy") if os.path.isdir(path) else path)
    traj = mdtraj.Trajectory(x.reshape(len(x), -1, 3), mdtraj.load_pdb(PDB).topology)
    d = mdtraj.compute_dihedrals(traj, np.array([PHI, PSI]), periodic=False)
    return d[:, 0], d[:, 1]


def basins(phi, psi):
    neg = phi < 0
    alpha = neg & (psi >= -2.2) & (psi < 0.5)
    return {"phi_positive": ~neg, "alpha_R": alpha, "beta_C7eq": neg & ~alpha}


def block_se(v, blocks=20):
    b = len(v) // blocks
    m = v[: b * blocks].reshape(blocks, b).mean(axis=1)
    return m.std(ddof=1) / np.sqrt(blocks)


def hist(phi, psi, bins):
    h, _, _ = np.histogram2d(phi, psi, bins=bins, range=[[-np.pi, np.pi], [-np.pi, np.pi]])
    return h / h.sum()


def kl(p, q, eps=1e-10):
    p, q = p + eps, q + eps
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def tv(p, q):
    return float(0.5 * np.abs(p - q).sum())


def distances(a, b):
    return {"kl_64": kl(hist(*a, 64), hist(*b, 64)), "tv_100": tv(hist(*a, 100), hist(*b, 100))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs=2)
    ap.add_argument("--reference", help="reference phi/psi (N x 2 radians), e.g. the shipped 10 ns MD")
    args = ap.parse_args()
    runs = [angles(r) for r in args.runs]
    out = {"frames": [len(r[0]) for r in runs], "populations": {}}
    for name in ("phi_positive", "alpha_R", "beta_C7eq"):
        per_run = []
        for phi, psi in runs:
            v = basins(phi, psi)[name].astype(float)
            per_run.append({"mean": v.mean(), "block_se": block_se(v)})
        a, b = per_run[0]["mean"], per_run[1]["mean"]
        out["populations"][name] = {"runs": per_run, "mean": (a + b) / 2, "se_between_runs": abs(a - b) / 2}
    out["between_runs"] = distances(runs[0], runs[1])
    if args.reference:
        ref = np.load(args.reference)
        r = (ref[:, 0], ref[:, 1])
        out["vs_reference"] = [distances(r, run) for run in runs]
        out["reference_phi_positive"] = float((ref[:, 0] >= 0).mean())
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
