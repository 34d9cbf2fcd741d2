#!/usr/bin/python3
"""Where a molecular generator's importance weights lose their ESS.

Reads a bg-sample run directory (samples.npy, log_weights.npy, log_q.npy,
reduced_energies.npy, dihedrals.npy, topology.pdb) and prints:
  - the Kish ESS and var(log w), against var(u) and var(log q) and their correlation
    (log w = -u - log q + const, so var(log w) is what q misses of the energy);
  - for phi < 0 and phi > 0 (phi, psi: the first two columns of dihedrals.npy, the
    first residue's): the share of draws, their share of sum w^2, the ESS within
    the group;
  - the fraction of var(log w) explained by a 24 x 24 (phi, psi) histogram, by each
    internal coordinate alone (20 quantile bins; the largest listed), and out of sample
    by least squares on the first half of the draws, tested on the second: linear +
    quadratic terms of all bond lengths and angles, cos/sin of all dihedrals, and all
    atom-pair distances.

Usage: /usr/bin/python3 tools/log_weight_residuals.py RUN_DIR [--top K]
"""
import argparse
import os
import sys

import numpy as np


def explained_by_bins(values, log_w, bins=20):
    """Fraction of var(log w) explained by the mean of log w in quantile bins of values."""
    edges = np.quantile(values, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, values) - 1, 0, bins - 1)
    counts = np.maximum(np.bincount(idx, minlength=bins), 1)
    means = np.bincount(idx, weights=log_w, minlength=bins) / counts
    return float(np.mean((means[idx] - log_w.mean()) ** 2) / log_w.var())


def explained_out_of_sample(features, y):
    """R^2 on the second half of a least-squares fit on the first half (constant included)."""
    n = len(y)
    f = np.hstack([np.ones((n, 1)), features])
    coef = np.linalg.lstsq(f[: n // 2], y[: n // 2], rcond=None)[0]
    residual = y[n // 2:] - f[n // 2:] @ coef
    return float(1.0 - np.mean(residual ** 2) / y[n // 2:].var())


def standardized(x):
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--top", type=int, default=8, help="internal coordinates listed (largest first)")
    args = parser.parse_args()
    need = ["samples.npy", "log_weights.npy", "log_q.npy", "reduced_energies.npy", "dihedrals.npy", "topology.pdb"]
    for name in need:
        if not os.path.exists(os.path.join(args.run_dir, name)):
            sys.exit(f"log_weight_residuals.py: {args.run_dir}: no {name} (a molecular bg-sample run directory?)")
    import mdtraj as md

    path = lambda name: os.path.join(args.run_dir, name)
    topology = md.load(path("topology.pdb")).topology
    atoms = topology.n_atoms
    x = np.load(path("samples.npy")).reshape(-1, atoms, 3)
    log_w = np.load(path("log_weights.npy"))
    log_q = np.load(path("log_q.npy"))
    u = np.load(path("reduced_energies.npy"))
    phi, psi = np.load(path("dihedrals.npy")).T[:2]
    finite = np.isfinite(log_w) & np.isfinite(u) & np.isfinite(log_q)
    # Kish ESS over every draw (zero weight where there is none), as summary.json's ess_fraction;
    # the analysis below on the draws with a weight.
    w_all = np.where(finite, np.exp(np.where(finite, log_w, -np.inf) - log_w[finite].max()), 0.0)
    print(f"{len(w_all)} draws, {(~finite).sum()} without a weight; "
          f"Kish ESS {w_all.sum() ** 2 / (w_all ** 2).sum() / len(w_all):.4f}")
    x, log_w, log_q, u, phi, psi = x[finite], log_w[finite], log_q[finite], u[finite], phi[finite], psi[finite]
    w = w_all[finite]
    print(f"var(log w) {log_w.var():.3f}; var(u) {u.var():.2f}, var(log q) {log_q.var():.2f}, "
          f"corr(-u, log q) {np.corrcoef(-u, log_q)[0, 1]:.4f}")
    for name, group in (("phi < 0", phi < 0), ("phi > 0", phi > 0)):
        wg = w[group]
        if wg.size == 0:
            continue
        print(f"{name}: draws {group.mean():.4f}, share of sum w^2 {(wg ** 2).sum() / (w ** 2).sum():.3f}, "
              f"ESS within {wg.sum() ** 2 / (wg ** 2).sum() / wg.size:.3f}, sd(log w) {log_w[group].std():.3f}")

    h = 24
    cell = (np.floor((phi + np.pi) / (2 * np.pi) * h).astype(int) % h) * h + \
        (np.floor((psi + np.pi) / (2 * np.pi) * h).astype(int) % h)
    counts = np.maximum(np.bincount(cell, minlength=h * h), 1)
    means = np.bincount(cell, weights=log_w, minlength=h * h) / counts
    print(f"var(log w) explained by 24 x 24 (phi, psi) bins: {np.mean((means[cell] - log_w.mean()) ** 2) / log_w.var():.3f}")

    traj = md.Trajectory(x, topology)
    bonds = np.array([[b[0].index, b[1].index] for b in topology.bonds])
    neighbours = {i: set() for i in range(atoms)}
    for a, b in bonds:
        neighbours[a].add(b)
        neighbours[b].add(a)
    angles = np.array([(a, b, c) for b in range(atoms) for a in neighbours[b] for c in neighbours[b] if a < c])
    dihedrals = np.array([(a, b, c, d) for b, c in bonds for a in neighbours[b] - {c} for d in neighbours[c] - {b}])
    lengths = md.compute_distances(traj, bonds)
    bends = md.compute_angles(traj, angles)
    torsions = md.compute_dihedrals(traj, dihedrals)
    label = lambda idx: "-".join(str(topology.atom(int(i))) for i in idx)
    single = [(explained_by_bins(lengths[:, k], log_w), "bond " + label(q)) for k, q in enumerate(bonds)]
    single += [(explained_by_bins(bends[:, k], log_w), "angle " + label(q)) for k, q in enumerate(angles)]
    single += [(explained_by_bins(torsions[:, k], log_w), "dihedral " + label(q)) for k, q in enumerate(dihedrals)]
    single.sort(reverse=True)
    print(f"each internal coordinate alone ({len(single)}; 20 quantile bins), the largest:")
    for frac, name in single[: args.top]:
        print(f"  {frac:.3f}  {name}")
    lz, az = standardized(lengths), standardized(bends)
    print("out of sample (fit on the first half, R^2 on the second):")
    print(f"  bonds and angles, linear + quadratic: {explained_out_of_sample(np.hstack([lz, lz ** 2, az, az ** 2]), log_w):.3f}")
    print(f"  dihedrals, cos and sin: {explained_out_of_sample(np.hstack([np.cos(torsions), np.sin(torsions)]), log_w):.3f}")
    print(f"  all of these: {explained_out_of_sample(np.hstack([lz, lz ** 2, az, az ** 2, np.cos(torsions), np.sin(torsions)]), log_w):.3f}")
    iu = np.triu_indices(atoms, 1)
    pairs = standardized(np.linalg.norm(x[:, :, None, :] - x[:, None, :, :], axis=-1)[:, iu[0], iu[1]])
    print(f"  all {pairs.shape[1]} atom-pair distances, linear + quadratic: "
          f"{explained_out_of_sample(np.hstack([pairs, pairs ** 2]), log_w):.3f}")


if __name__ == "__main__":
    main()
