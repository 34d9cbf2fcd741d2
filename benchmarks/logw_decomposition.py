#!/usr/bin/python3
"""Which internal coordinates carry the log-weight variance of a molecular bg-sample run?

Usage: benchmarks/logw_decomposition.py RUN_DIR [REFERENCE_POSITIONS.npy] [--top K]

For each of the 60 internal coordinates of alanine dipeptide (the Z-matrix of
lib/boltzlab/molecules/internal_coordinates.cpp: bonds, angles, torsions) the generator
samples are cut into 24 bins (equal-count bins for bonds/angles, 15-degree bins for
torsions) and the between-bin variance of the log-weights is reported:

    V_k = sum_b n_b (mean_b(log w) - mean(log w))^2 / n,

i.e. the part of Var(log w) explained by coordinate k alone (a one-way analysis of
variance). Large V_k means the model's marginal of coordinate k is off (the weights
depend systematically on it). The same is done for the (phi, psi) pair on a 12 x 12 grid.
log w is clipped from below at its 0.1 % quantile so that a few clashing samples
(weight ~ 0) do not dominate the variance; zero-weight samples are dropped. With a
reference (MD positions, N x 66, nm) the ratio sd(model)/sd(MD) of every bond and angle
is printed too.
"""
import sys
import numpy as np

ROWS = [(4, 6, 8, 14), (16, 14, 8, 6), (10, 8, 6, 14), (9, 8, 6, 14), (7, 6, 8, 4), (5, 4, 6, 8), (1, 4, 6, 5),
        (0, 1, 4, 6), (2, 1, 4, 0), (3, 1, 4, 0), (11, 10, 8, 6), (12, 10, 8, 11), (13, 10, 8, 11),
        (15, 14, 16, 8), (18, 16, 14, 8), (17, 16, 14, 15), (19, 18, 16, 14), (20, 18, 16, 19), (21, 18, 16, 19)]
NAMES = ["H1", "CH3", "H2", "H3", "C", "O", "N", "H", "CA", "HA", "CB", "HB1", "HB2", "HB3", "C", "O", "N", "H",
         "C", "H1", "H2", "H3"]
ANCHORS = (6, 8, 14)


def _dist(x, i, j):
    return np.linalg.norm(x[:, i] - x[:, j], axis=1)


def _angle(x, i, j, k):
    a, b = x[:, i] - x[:, j], x[:, k] - x[:, j]
    c = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return np.arccos(np.clip(c, -1.0, 1.0))


def _dihedral(x, i, j, k, l):
    b0, b1, b2 = x[:, i] - x[:, j], x[:, k] - x[:, j], x[:, l] - x[:, k]
    b1 = b1 / np.linalg.norm(b1, axis=1)[:, None]
    v = b0 - (b0 * b1).sum(1)[:, None] * b1
    w = b2 - (b2 * b1).sum(1)[:, None] * b1
    return np.arctan2((np.cross(b1, v) * w).sum(1), (v * w).sum(1))


def internal(positions):
    """N x 66 Cartesian -> N x 60 internal coordinates and their labels."""
    x = positions.reshape(len(positions), 22, 3)
    a0, a1, a2 = ANCHORS
    cols = [_dist(x, a1, a0), _dist(x, a2, a1)] + [_dist(x, r[0], r[1]) for r in ROWS]
    labels = [f"bond {NAMES[a1]}{a1}-{NAMES[a0]}{a0}", f"bond {NAMES[a2]}{a2}-{NAMES[a1]}{a1}"]
    labels += [f"bond {NAMES[r[0]]}{r[0]}-{NAMES[r[1]]}{r[1]}" for r in ROWS]
    cols += [_angle(x, a2, a1, a0)] + [_angle(x, r[0], r[1], r[2]) for r in ROWS]
    labels += [f"angle {a2}-{a1}-{a0}"] + [f"angle {r[0]}-{r[1]}-{r[2]}" for r in ROWS]
    cols += [_dihedral(x, *r) for r in ROWS]
    labels += [f"torsion {NAMES[r[0]]}{r[0]}-{r[1]}-{r[2]}-{r[3]}" for r in ROWS]
    return np.stack(cols, 1), labels


def between_bin_variance(bins, values, n_bins):
    count = np.bincount(bins, minlength=n_bins)
    total = np.bincount(bins, weights=values, minlength=n_bins)
    keep = count > 20
    means = total[keep] / count[keep]
    return float((count[keep] * (means - values.mean()) ** 2).sum() / count.sum())


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    top = 12
    if "--top" in argv:
        top = int(argv[argv.index("--top") + 1])
        args.remove(str(top))
    if not args:
        sys.exit(__doc__)
    run = args[0]
    x = np.load(run + "/samples.npy")
    log_w = np.load(run + "/log_weights.npy")
    if x.shape[1] != 66:
        sys.exit(f"{run}/samples.npy: expected N x 66 alanine dipeptide positions, got {x.shape}")
    ok = np.isfinite(log_w)
    z, labels = internal(x[ok])
    lw = log_w[ok]
    lw = np.maximum(lw, np.quantile(lw, 0.001))
    print(f"{run}: {ok.sum()} samples with finite log w; Var(log w), clipped at the 0.1 % quantile: {lw.var():.3f}")
    rows = []
    for k in range(60):
        if k >= 41:
            edges = np.linspace(-np.pi, np.pi, 25)
        else:
            edges = np.quantile(z[:, k], np.linspace(0, 1, 25))
            edges[0] -= 1.0
            edges[-1] += 1.0
        b = np.clip(np.digitize(z[:, k], edges) - 1, 0, 23)
        rows.append((between_bin_variance(b, lw, 24), labels[k], k))
    sd_ratio = None
    if len(args) > 1:
        ref, _ = internal(np.load(args[1]).astype(float))
        sd_ratio = z[:, :41].std(0) / ref[:, :41].std(0)
    print("explained variance  coordinate" + ("  sd(model)/sd(MD)" if sd_ratio is not None else ""))
    for v, name, k in sorted(rows, reverse=True)[:top]:
        extra = f"  {sd_ratio[k]:.3f}" if sd_ratio is not None and k < 41 else ""
        print(f"{v:18.3f}  {name}{extra}")
    phi, psi = z[:, 41], z[:, 42]
    cell = (np.clip(((phi + np.pi) / (2 * np.pi) * 12).astype(int), 0, 11) * 12 +
            np.clip(((psi + np.pi) / (2 * np.pi) * 12).astype(int), 0, 11))
    print(f"(phi, psi) jointly, 12 x 12 cells: {between_bin_variance(cell, lw, 144):.3f}")


if __name__ == "__main__":
    main(sys.argv)
