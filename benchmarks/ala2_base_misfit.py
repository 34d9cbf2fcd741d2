#!/usr/bin/python3
"""Where the conditional-Gaussian base of alanine dipeptide misses the Boltzmann density.

A numpy re-implementation of the base of generators/conditional_base.hpp is fitted to the frames of
replica 0 of an `md-reference --replicas 2` run and evaluated on the held-out frames of replica 1. It shares the
internal coordinates (those of logw_decomposition.py, i.e. the Z-matrix of
InternalCoordinates::alanine_dipeptide()), the soft columns, the features and the joint (phi, psi)
von Mises mixture with the C++ base; it differs in the methyl rotors (one 3-fold von Mises each
instead of a von Mises mixture chosen by BIC) and in the experts (EM without shrinkage). It evaluates

    log w = -u(x) + log J(z) - log q(z)        (z: internal coordinates, J: their Jacobian),

whose variance over frames of pi is about 2 KL(pi || q) for near-lognormal weights. Prints the
variance, how much of it single coordinates, (phi, psi) bins and polynomials of the whitened
residuals explain, how it depends on the experts' responsibilities, and the held-out NLL gain of
candidate extensions of the Gaussian class. docs/results/alanine_dipeptide.md, "What limits the base", quotes it.

usage: benchmarks/ala2_base_misfit.py MD_RUN_DIR [--experts 8] [--em 5] [--skip-extensions]
  MD_RUN_DIR: output of `build/bin/md-reference --potential potentials/alanine_dipeptide.json
  --out DIR --replicas 2 --production-ns 10 --frame-interval-ps 0.05` (samples.npy, replica.npy,
  reduced_energies.npy). Needs about 3 GB and 5-10 min on 2 cores.
"""
import argparse, os, sys, time
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from logw_decomposition import internal  # noqa: E402  (the Z-matrix of internal_coordinates.cpp)

T0 = 41                                            # first torsion column
SOFT = [T0 + 0, T0 + 1, T0 + 7, T0 + 10, T0 + 16]  # phi, psi, ACE / CB / NME methyl rotors
HARD = [c for c in range(60) if c not in SOFT]


def log_jacobian(z):
    return 2 * np.log(z[:, :21]).sum(1) + np.log(np.sin(z[:, 21:41])).sum(1)


def wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def features(s, harmonics=3):
    f = [np.ones(len(s))]
    for k in range(1, harmonics + 1):
        for c in range(s.shape[1]):
            f += [np.cos(k * s[:, c]), np.sin(k * s[:, c])]
    for a in (np.cos(s[:, 0]), np.sin(s[:, 0])):
        for b in (np.cos(s[:, 1]), np.sin(s[:, 1])):
            f.append(a * b)
    return np.stack(f, 1)


def vm_log(x, mu, kappa):
    return kappa * np.cos(x - mu) - np.log(2 * np.pi * np.i0(kappa))


def vm_fit(x, w):
    c, s = (w * np.cos(x)).sum() / w.sum(), (w * np.sin(x)).sum() / w.sum()
    r = min(np.hypot(c, s), 0.999)
    return np.arctan2(s, c), r * (2 - r * r) / (1 - r * r)  # Best-Fisher approximation of the ML kappa


def logsumexp(a):
    m = a.max(1)
    return np.log(np.exp(a - m[:, None]).sum(1)) + m


class Base:
    """rotors (3-fold von Mises) x sum_k w_k vM_k(phi) vM_k(psi) N(h; B_k^T f(s), Sigma_k);
    experts=False: all B_k, Sigma_k equal (the pooled least-squares fit)."""

    def __init__(self, z, tr, K, em, rng, experts=True):
        self.periodic = np.array([c >= T0 for c in HARD])
        self.centre = np.zeros(60)
        for c in HARD:
            if c >= T0:
                self.centre[c] = np.angle(np.exp(1j * z[tr, c]).mean())
        s, h, f = self.split(z[tr])
        self.rot = [vm_fit(3 * s[:, r], np.ones(len(s))) for r in range(2, 5)]
        self.K = K
        n = len(s)
        self.mu = s[rng.choice(n, K, replace=False), :2].copy()
        self.kappa = np.full((K, 2), 3.0)
        self.w = np.full(K, 1.0 / K)
        for _ in range(150):  # the joint (phi, psi) mixture first
            r = self.resp(self.joint_terms(s))
            self.mstep_joint(s, r)
        self.B, self.L = [None] * K, [None] * K
        if not experts:  # one regression and covariance for all components (the Gaussian term cancels in r)
            self.B = [np.linalg.lstsq(f, h, rcond=None)[0]] * K
            res = self.residual(h, f, 0)
            self.L = [np.linalg.cholesky(res.T @ res / n)] * K
            return
        for _ in range(max(1, em)):  # then the experts, EM on the whole block
            for k in range(K):
                rk = r[:, k]
                self.w[k] = rk.mean()
                self.mu[k, 0], self.kappa[k, 0] = vm_fit(s[:, 0], rk)
                self.mu[k, 1], self.kappa[k, 1] = vm_fit(s[:, 1], rk)
                g = (f * rk[:, None]).T @ f + 1e-6 * rk.sum() * np.eye(f.shape[1])
                self.B[k] = np.linalg.solve(g, (f * rk[:, None]).T @ h)
                res = self.residual(h, f, k)
                self.L[k] = np.linalg.cholesky((res * rk[:, None]).T @ res / rk.sum())
            r = self.resp(self.component_terms(z[tr]))

    def split(self, z):
        h = z[:, HARD] - self.centre[HARD]
        h[:, self.periodic] = wrap(h[:, self.periodic])
        s = z[:, SOFT]
        return s, h, features(s)

    def residual(self, h, f, k):
        res = h - f @ self.B[k]
        res[:, self.periodic] = wrap(res[:, self.periodic])
        return res

    def joint_terms(self, s):
        return np.log(self.w) + vm_log(s[:, 0:1], self.mu[:, 0], self.kappa[:, 0]) + \
            vm_log(s[:, 1:2], self.mu[:, 1], self.kappa[:, 1])

    def mstep_joint(self, s, r):
        self.w = r.mean(0)
        for k in range(self.K):
            self.mu[k, 0], self.kappa[k, 0] = vm_fit(s[:, 0], r[:, k])
            self.mu[k, 1], self.kappa[k, 1] = vm_fit(s[:, 1], r[:, k])

    @staticmethod
    def resp(terms):
        r = np.exp(terms - terms.max(1, keepdims=True))
        return r / r.sum(1, keepdims=True)

    def component_terms(self, z):
        s, h, f = self.split(z)
        out = self.joint_terms(s)
        for k in range(self.K):
            e = np.linalg.solve(self.L[k], self.residual(h, f, k).T)
            out[:, k] += -0.5 * (e ** 2).sum(0) - np.log(np.diag(self.L[k])).sum() - 0.5 * len(HARD) * np.log(2 * np.pi)
        return out

    def log_q(self, z):
        s = z[:, SOFT]
        rotors = sum(vm_log(3 * s[:, r], m, k) for r, (m, k) in zip(range(2, 5), self.rot))
        return logsumexp(self.component_terms(z)) + rotors


def between_fraction(x, a, bins=40):
    """Share of var(a) explained by E[a | x] on quantile bins of x."""
    q = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])
    i = np.searchsorted(q, x)
    m = np.bincount(i, a - a.mean(), minlength=bins) / np.maximum(np.bincount(i, minlength=bins), 1)
    return (m[i] ** 2).mean() / a.var()


def chain_nll(h, f, tr, te, extra):
    """Held-out NLL of h_j | f, h_<j, extra(j) (linear Gaussian regressions, column by column)."""
    nll = 0.0
    for j in range(h.shape[1]):
        d = np.concatenate([f, h[:, :j]] + extra(j), 1)
        b = np.linalg.solve(d[tr].T @ d[tr] + 1e-9 * np.eye(d.shape[1]), d[tr].T @ h[tr, j])
        s2 = (h[tr, j] - d[tr] @ b).var()
        nll += 0.5 * np.log(2 * np.pi * s2) + 0.5 * ((h[te, j] - d[te] @ b) ** 2).mean() / s2
    return nll


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run")
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--em", type=int, default=5)
    ap.add_argument("--skip-extensions", action="store_true")
    a = ap.parse_args()
    try:
        x = np.load(a.run + "/samples.npy")
        rep = np.load(a.run + "/replica.npy")
        u = np.load(a.run + "/reduced_energies.npy")
    except OSError as e:
        sys.exit(f"ala2_base_misfit: {e}")
    if x.ndim != 2 or x.shape[1] != 66 or len(rep) != len(x) or len(u) != len(x) or not (rep == 1).any():
        sys.exit(f"ala2_base_misfit: {a.run}: need N x 66 frames of alanine dipeptide from >= 2 replicas")
    t0 = time.time()
    z, labels = internal(x)
    tr, te = rep == 0, rep == 1
    rng = np.random.default_rng(0)
    print(f"frames: {tr.sum()} training (replica 0), {te.sum()} held out (replica 1)")
    for experts in (False, True):
        base = Base(z, tr, a.experts, a.em, rng, experts)
        lw = -u[te] + log_jacobian(z[te]) - base.log_q(z[te])
        print(f"{a.experts} (phi, psi) components, {'experts' if experts else 'shared B, Sigma'}: held-out var(log w) {lw.var():.3f}, "
              f"mean {lw.mean():.4f}  ({time.time() - t0:.0f} s)")
    s = z[te][:, SOFT]
    nb = 24
    cell = np.clip(((s[:, 0] + np.pi) / (2 * np.pi) * nb).astype(int), 0, nb - 1) * nb + \
        np.clip(((s[:, 1] + np.pi) / (2 * np.pi) * nb).astype(int), 0, nb - 1)
    m = np.bincount(cell, lw, minlength=nb * nb) / np.maximum(np.bincount(cell, minlength=nb * nb), 1)
    print(f"share between 24x24 (phi, psi) bins: {((m[cell] - lw.mean()) ** 2).mean() / lw.var():.3f}")
    shares = sorted(((between_fraction(z[te][:, c], lw), labels[c]) for c in range(60)), reverse=True)
    print("share explained by one coordinate (top 6):", ", ".join(f"{n} {v:.3f}" for v, n in shares[:6]))
    # whitened residuals of the shared fit as a fixed basis
    _, h, f = base.split(z)
    b = np.linalg.lstsq(f[tr], h[tr], rcond=None)[0]
    res = h - f @ b
    res[:, base.periodic] = wrap(res[:, base.periodic])
    e = np.linalg.solve(np.linalg.cholesky(np.cov(res[tr].T, bias=True)), res[te].T).T
    d = np.concatenate([np.ones((len(e), 1)), e, e ** 2, e ** 3], 1)
    fit = d @ np.linalg.lstsq(d, lw, rcond=None)[0]
    print(f"R^2 of z, z^2, z^3 of the 55 whitened residuals: {1 - ((lw - fit) ** 2).mean() / lw.var():.3f}")
    iu = np.triu_indices(e.shape[1])
    half = len(e) // 2
    quad = lambda rows: np.concatenate([np.ones((len(rows), 1)), rows, (rows[:, :, None] * rows[:, None, :])[:, iu[0], iu[1]]], 1)
    coef = np.linalg.lstsq(quad(e[:half]), lw[:half], rcond=None)[0]
    pred = quad(e[half:]) @ coef
    print(f"R^2 of all pairwise products, out of sample: {1 - ((lw[half:] - pred) ** 2).mean() / lw[half:].var():.3f}")
    r = Base.resp(base.component_terms(z[te])).max(1)
    for lo, hi in ((0, 0.6), (0.6, 0.9), (0.9, 0.99), (0.99, 1.01)):
        k = (r >= lo) & (r < hi)
        print(f"largest responsibility in [{lo}, {min(hi, 1)}): {k.mean():.3f} of frames, var(log w) {lw[k].var():.3f}")
    if a.skip_extensions:
        return
    print("\nheld-out NLL gain of extensions of the shared fit (nats; column-by-column regressions):")
    hs = (h - h[tr].mean(0)) / h[tr].std(0)
    trig = np.stack([np.cos(z[:, T0]), np.sin(z[:, T0]), np.cos(z[:, T0 + 1]), np.sin(z[:, T0 + 1])], 1)
    linear = chain_nll(h, f, tr, te, lambda j: [])
    print(f"  squares of the earlier columns: {linear - chain_nll(h, f, tr, te, lambda j: [hs[:, :j] ** 2]):.4f}")
    couple = lambda j: [(hs[:, :j, None] * trig[:, None, :]).reshape(len(h), -1)]
    print(f"  earlier columns x (cos, sin of phi, psi): {linear - chain_nll(h, f, tr, te, couple):.4f}")
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
