#!/usr/bin/python3
"""Basin populations per residue of run directories, and histogram distances between two of them.

    /usr/bin/python3 tools/basin_populations.py RUN [RUN2 ...] [--blocks 20]

RUN is a run directory of any tool with samples.npy (N x 3n, nm) and topology.pdb, or a .npy of
(φ, ψ) in radians (N x 2, e.g. a reference_dihedrals file, compared with the first residue of the
other runs); when a
run directory also
has log_weights.npy (bg-sample) the populations are importance-weighted (self-normalized, delta-
method standard errors), else the frames are a time series (MD, replica exchange: batch means over
--blocks contiguous blocks). φ/ψ of every residue come from MDTraj (compute_phi/compute_psi on the
run's topology), basins as estimators/conformations.hpp defines them (radians):
alpha_R φ<0, -2.2<=ψ<0.5; beta_C7eq φ<0, other ψ; C7ax φ>=0, ψ<0; alpha_L φ>=0, ψ>=0;
phi_positive = C7ax + alpha_L. For every pair of runs the script also prints, per residue, the
forward KL(first || other) on 64 x 64 (φ, ψ) bins with eps = 1e-10 and the total variation on
100 x 100 bins (weighted where the runs are), the metrics of estimators/ramachandran_compare.hpp,
and the z-score of the φ >= 0 populations; for two or more unweighted runs, their combined
populations ("combined_runs").
"""
import argparse
import json
import os

import mdtraj
import numpy as np

BASINS = ["alpha_R", "beta_C7eq", "C7ax", "alpha_L", "phi_positive"]


def load(run):
    if run.endswith(".npy"):
        d = np.load(run)
        return {None: (d[:, 0], d[:, 1])}, None
    top = mdtraj.load_topology(os.path.join(run, "topology.pdb"))
    x = np.load(os.path.join(run, "samples.npy")).reshape(-1, top.n_atoms, 3)
    traj = mdtraj.Trajectory(x, top)
    phi_idx, phi = mdtraj.compute_phi(traj)
    psi_idx, psi = mdtraj.compute_psi(traj)
    # Pair φ and ψ of the same residue (the residue of the CA, atom 2 of φ and atom 1 of ψ).
    res_phi = {top.atom(int(q[2])).residue.index: k for k, q in enumerate(phi_idx)}
    res_psi = {top.atom(int(q[1])).residue.index: k for k, q in enumerate(psi_idx)}
    residues = sorted(set(res_phi) & set(res_psi))
    lw_path = os.path.join(run, "log_weights.npy")
    w = None
    if os.path.exists(lw_path):
        lw = np.load(lw_path)
        w = np.where(np.isfinite(lw), np.exp(lw - np.max(lw[np.isfinite(lw)])), 0.0)
    angles = {str(top.residue(r)): (phi[:, res_phi[r]], psi[:, res_psi[r]]) for r in residues}
    return angles, w


def basin_indicators(phi, psi):
    pos = phi >= 0
    ar = (~pos) & (psi >= -2.2) & (psi < 0.5)
    return {"alpha_R": ar, "beta_C7eq": (~pos) & ~ar, "C7ax": pos & (psi < 0), "alpha_L": pos & (psi >= 0),
            "phi_positive": pos}


def estimate(ind, w, blocks):
    f = ind.astype(float)
    if w is not None:  # SNIS with delta-method standard error
        wn = w / w.sum()
        p = float(np.sum(wn * f))
        return p, float(np.sqrt(np.sum(wn ** 2 * (f - p) ** 2)))
    b = len(f) // blocks
    means = f[: b * blocks].reshape(blocks, b).mean(axis=1)
    return float(means.mean()), float(means.std(ddof=1) / np.sqrt(blocks))


def hist(phi, psi, w, bins):
    h, _, _ = np.histogram2d(phi, psi, bins=bins, range=[[-np.pi, np.pi], [-np.pi, np.pi]], weights=w)
    return h / h.sum()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--blocks", type=int, default=20)
    a = ap.parse_args()
    loaded = [load(r) for r in a.runs]
    out = {"runs": a.runs, "populations": [], "distances": []}
    for (angles, w), run in zip(loaded, a.runs):
        pops = {}
        for res, (phi, psi) in angles.items():
            ind = basin_indicators(phi, psi)
            pops[res] = {b: estimate(ind[b], w, a.blocks) for b in BASINS}
        out["populations"].append(pops)
    # Time series of independent runs combined: mean of the runs, its standard error from the spread
    # between runs (|a − b|/2 for two) and from the runs' own batch-means errors (√Σse²/n).
    series = [k for k, (_, w) in enumerate(loaded) if w is None and not a.runs[k].endswith(".npy")]
    if len(series) >= 2:
        combined = {}
        for res in out["populations"][series[0]]:
            if all(res in out["populations"][k] for k in series):
                combined[res] = {}
                for b in BASINS:
                    v = np.array([out["populations"][k][res][b][0] for k in series])
                    se = np.array([out["populations"][k][res][b][1] for k in series])
                    combined[res][b] = {"mean": float(v.mean()), "se_between_runs": float(v.std(ddof=1) / np.sqrt(len(v))),
                                        "se_from_block_errors": float(np.sqrt(np.sum(se ** 2)) / len(v))}
        out["combined_runs"] = {"runs": [a.runs[k] for k in series], "populations": combined}
    first_angles, first_w = loaded[0]
    for (angles, w), run in zip(loaded[1:], a.runs[1:]):
        d = {}
        # A .npy of (φ, ψ) has one residue: it is paired with the other side's first residue.
        if None in first_angles or None in angles:
            pairs = [(next(iter(first_angles)), next(iter(angles)))]
        else:
            pairs = [(res, res) for res in first_angles if res in angles]
        for res, other in pairs:
            p64 = hist(*first_angles[res], first_w, 64) + 1e-10
            q64 = hist(*angles[other], w, 64) + 1e-10
            p64, q64 = p64 / p64.sum(), q64 / q64.sum()
            tv = 0.5 * np.abs(hist(*first_angles[res], first_w, 100) - hist(*angles[other], w, 100)).sum()
            pa = out["populations"][0][res]["phi_positive"]
            pb = out["populations"][a.runs.index(run)][other]["phi_positive"]
            se = np.hypot(pa[1], pb[1])
            d[str(other if res is None else res)] = {"kl_64": float(np.sum(p64 * np.log(p64 / q64))), "tv_100": float(tv),
                      "z_phi_positive": float((pb[0] - pa[0]) / se) if se > 0 else None}
        out["distances"].append({"run": run, "per_residue": d})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
