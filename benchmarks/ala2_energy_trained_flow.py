#!/usr/bin/python3
"""How far does energy training (reverse KL) of a conditional coupling flow take the alanine base?

A prototype for the question docs/results/alanine_dipeptide.md ("What limits the base") leaves open: the
conditional-Gaussian base plateaus near 70 % ESS on MD frames, so does a flow trained on the energy
close the gap to 95 %? The model, in the internal coordinates z of logw_decomposition.py:

    soft torsions s (phi, psi, three methyl rotors):  the joint (phi, psi) von Mises mixture and
        3-fold von Mises rotors of ala2_base_misfit.Base, optionally with the bin correction of
        generators/conditional_base.hpp (ratio of MD bin frequencies to the mixture's bin masses);
    hard coordinates h = B^T f(s) + L e:  the pooled regression and Cholesky factor of that base,
        e = T(eps; f(s)), eps ~ N(0, I), T a stack of affine coupling layers (two hidden layers,
        SiLU, log-scales bounded by tanh) conditioned on the features f(s), started at identity.

log q is exact (log-determinants of L and of the couplings); x(z) is rebuilt from the Z-matrix and
the weights are log w = -u(x) + log J(z) - log q(z) with u from OpenMM (Reference platform) in
reduced units. Training: --fkl iterations of maximum likelihood on replica 0 of MD_RUN, then --rkl
iterations of reverse KL, KL(q || pi) = E_q[log q - log pi~] + log Z, through the energies and forces
(reparameterized draws). Every --every iterations the Kish ESS of 2·10^4 fresh draws is printed with
the energy evaluations spent so far; at the end the ESS of 10^5 draws, and the share of the remaining
misfit between (phi, psi) bins (ESS of the bin-mean weights) and within them.

usage: benchmarks/ala2_energy_trained_flow.py MD_RUN [--hidden 128] [--layers 6] [--fkl 1500]
       [--rkl 3000] [--batch 256] [--lr 3e-4] [--lr-final-ratio 1] [--bins 48] [--threads 2]
  MD_RUN as for ala2_base_misfit.py (md-reference --replicas 2: replica 0 trains), or a replica-exchange
  run (its 300 K frames, all of which train). Needs /usr/bin/python3 with
  python3-torch and python3-openmm; about 10 min with the defaults on 2 cores.
"""
import argparse, os, sys, time
import numpy as np
import torch
import openmm
import openmm.unit as unit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from logw_decomposition import internal, ROWS, ANCHORS  # noqa: E402
from ala2_base_misfit import SOFT, HARD, T0, wrap, features, vm_log, logsumexp, Base  # noqa: E402

KT = 0.0083144626 * 300.0  # kJ/mol at 300 K
DT = torch.float64


class Energy(torch.autograd.Function):
    """u(x) in kT of a batch of configurations (B x 22 x 3, nm) through an OpenMM context; backward = grad u."""
    context = None
    evaluations = 0

    @staticmethod
    def forward(ctx, x):
        xs = x.detach().numpy()
        u, g = np.empty(len(xs)), np.empty_like(xs)
        for i in range(len(xs)):
            Energy.context.setPositions(xs[i])
            st = Energy.context.getState(getEnergy=True, getForces=True)
            u[i] = st.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) / KT
            g[i] = -st.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer) / KT
        Energy.evaluations += len(xs)
        bad = ~np.isfinite(u) | (u > 1e5)  # clashes: no gradient (their weight is ~0 anyway)
        g[bad] = 0.0
        ctx.save_for_backward(torch.tensor(g))
        return torch.tensor(u)

    @staticmethod
    def backward(ctx, grad_out):
        g, = ctx.saved_tensors
        return grad_out[:, None, None] * g


def place(a, b, c, r, theta, chi):
    """Atom d with |d - a| = r, angle(d, a, b) = theta, dihedral(d, a, b, c) = chi (the sign convention
    of logw_decomposition._dihedral)."""
    bc = b - a
    bc = bc / bc.norm(dim=1, keepdim=True)
    n = torch.cross(c - b, bc, dim=1)
    n = n / n.norm(dim=1, keepdim=True)
    m = torch.cross(n, bc, dim=1)
    d = torch.stack([-r * torch.cos(theta), r * torch.sin(theta) * torch.cos(chi), -r * torch.sin(theta) * torch.sin(chi)], 1)
    return a - (bc * d[:, :1] + m * d[:, 1:2] + n * d[:, 2:3])


def cartesian(z):
    """N x 60 internal coordinates -> N x 22 x 3 (anchor atom 6 at the origin, 8 on the x axis)."""
    n = len(z)
    pos = [None] * 22
    a0, a1, a2 = ANCHORS
    zero = torch.zeros(n, dtype=z.dtype)
    pos[a0] = torch.zeros(n, 3, dtype=z.dtype)
    pos[a1] = torch.stack([z[:, 0], zero, zero], 1)
    pos[a2] = pos[a1] + z[:, 1:2] * torch.stack([-torch.cos(z[:, 21]), torch.sin(z[:, 21]), zero], 1)
    for k, (i, j, a, b) in enumerate(ROWS):
        pos[i] = place(pos[j], pos[a], pos[b], z[:, 2 + k], z[:, 22 + k], z[:, 41 + k])
    return torch.stack(pos, 1)


class Coupling(torch.nn.Module):
    """Affine coupling y_B = y_B exp(s) + t, (t, s) = net(y_A, context), A = mask."""

    def __init__(self, mask, context, hidden):
        super().__init__()
        d = len(mask)
        self.register_buffer("mask", mask)
        self.net = torch.nn.Sequential(torch.nn.Linear(d + context, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, hidden),
                                       torch.nn.SiLU(), torch.nn.Linear(hidden, 2 * d))
        torch.nn.init.zeros_(self.net[-1].weight)
        torch.nn.init.zeros_(self.net[-1].bias)

    def shift_scale(self, y, c):
        o = self.net(torch.cat([y * self.mask, c], 1))
        d = y.shape[1]
        return o[:, :d] * (1 - self.mask), 2.0 * torch.tanh(o[:, d:] / 2.0) * (1 - self.mask)

    def forward(self, y, c):
        t, s = self.shift_scale(y, c)
        return y * torch.exp(s) + t, s.sum(1)

    def inverse(self, y, c):
        t, s = self.shift_scale(y, c)
        return (y - t) * torch.exp(-s), -s.sum(1)


class Model:
    def __init__(self, z, train, hidden, layers, bins, rng):
        self.base = Base(z, train, 8, 1, rng, experts=False)
        s, h, f = self.base.split(z)
        res = h - f @ self.base.B[0]
        res[:, self.base.periodic] = wrap(res[:, self.base.periodic])
        self.L = np.linalg.cholesky(np.cov(res[train].T, bias=True))
        self.e = np.linalg.solve(self.L, res.T).T  # whitened residuals (training targets of the forward KL)
        self.f = f
        self.log_det_L = np.log(np.diag(self.L)).sum()
        self.B_t, self.L_t = torch.tensor(self.base.B[0]), torch.tensor(self.L)
        self.centre = torch.tensor(self.base.centre)
        d = self.e.shape[1]
        g = torch.Generator().manual_seed(3)
        masks = []
        for i in range(layers):
            if i % 2 == 0:
                m = torch.zeros(d, dtype=DT)
                m[torch.randperm(d, generator=g)[:d // 2]] = 1
            else:
                m = 1 - masks[-1]
            masks.append(m)
        self.flow = torch.nn.ModuleList([Coupling(m, f.shape[1], hidden) for m in masks]).to(DT)
        self.bins, self.log_ratio, self.log_ratio_max = bins, None, 0.0
        if bins:
            self.set_bin_correction(z[train][:, SOFT[:2]])

    def bin_of(self, s):
        n = self.bins
        i = np.clip(((wrap(s[:, 0]) + np.pi) / (2 * np.pi) * n).astype(int), 0, n - 1)
        j = np.clip(((wrap(s[:, 1]) + np.pi) / (2 * np.pi) * n).astype(int), 0, n - 1)
        return i * n + j

    def set_bin_correction(self, phipsi, defensive=0.01, sub=16):
        """c_b = p_b / m_b: MD bin frequencies p (mixed with 1 % of m) over the mixture's bin masses m
        (midpoint rule with sub^2 points per bin)."""
        n = self.bins
        g = (np.arange(n * sub) + 0.5) / (n * sub) * 2 * np.pi - np.pi
        P, Q = np.meshgrid(g, g, indexing="ij")
        grid = np.concatenate([np.stack([P.ravel(), Q.ravel()], 1), np.zeros((P.size, 3))], 1)
        dens = np.exp(logsumexp(self.base.joint_terms(grid))).reshape(n, sub, n, sub).sum((1, 3)).ravel()
        m = dens * (2 * np.pi / (n * sub)) ** 2
        m /= m.sum()
        p = np.bincount(self.bin_of(phipsi), minlength=n * n) / len(phipsi)
        self.log_ratio = np.log((1 - defensive) * p + defensive * m) - np.log(m)
        self.log_ratio_max = self.log_ratio.max()

    def log_p_soft(self, s):
        out = logsumexp(self.base.joint_terms(s)) + sum(vm_log(3 * s[:, r], mu, k) for r, (mu, k) in zip(range(2, 5), self.base.rot))
        return out + (self.log_ratio[self.bin_of(s)] if self.bins else 0.0)

    def sample_soft(self, n, g):
        out, got = [], 0
        while got < n:  # the mixture, accepted with probability c_b / max c under a bin correction
            k = g.choice(self.base.K, n, p=self.base.w / self.base.w.sum())
            s = [g.vonmises(self.base.mu[k, 0], self.base.kappa[k, 0]), g.vonmises(self.base.mu[k, 1], self.base.kappa[k, 1])]
            s += [wrap((g.vonmises(m, kap, n) + 2 * np.pi * g.integers(0, 3, n)) / 3) for m, kap in self.base.rot]
            s = np.stack(s, 1)
            if self.bins:
                s = s[g.random(n) < np.exp(self.log_ratio[self.bin_of(s)] - self.log_ratio_max)]
            out.append(s)
            got += len(s)
        return np.concatenate(out)[:n]

    def log_q_residual(self, e, c):
        ld = torch.zeros(len(e), dtype=DT)
        for layer in reversed(self.flow):
            e, d = layer.inverse(e, c)
            ld = ld + d
        return -0.5 * (e ** 2).sum(1) - 0.5 * e.shape[1] * np.log(2 * np.pi) + ld

    def draw(self, n, g):
        """Reparameterized draws: z (n x 60) and log q(z)."""
        s = self.sample_soft(n, g)
        c = torch.tensor(features(s))
        eps = torch.tensor(g.standard_normal((n, self.e.shape[1])))
        e, ld = eps, torch.zeros(n, dtype=DT)
        for layer in self.flow:
            e, d = layer(e, c)
            ld = ld + d
        log_q = torch.tensor(self.log_p_soft(s)) - self.log_det_L - 0.5 * (eps ** 2).sum(1) - 0.5 * e.shape[1] * np.log(2 * np.pi) - ld
        z = torch.zeros(n, 60, dtype=DT)
        z[:, HARD] = c @ self.B_t + e @ self.L_t.T + self.centre[HARD]
        z[:, SOFT] = torch.tensor(s)
        z[:, T0:] = torch.remainder(z[:, T0:] + np.pi, 2 * np.pi) - np.pi
        return z, log_q


def log_target(z):
    """log pi~(z) = -u(x(z)) + log J(z), J the Jacobian of the internal coordinates."""
    return -Energy.apply(cartesian(z)) + 2 * torch.log(z[:, :21]).sum(1) + torch.log(torch.sin(z[:, 21:41])).sum(1)


def kish(w):
    return w.sum() ** 2 / (w ** 2).sum() / len(w)


def draws_with_weights(model, n, g, chunk=5000):
    zs, lws = [], []
    with torch.no_grad():
        for i in range(0, n, chunk):
            z, log_q = model.draw(min(chunk, n - i), g)
            lws.append((log_target(z) - log_q).numpy())
            zs.append(z.numpy())
    return np.concatenate(zs), np.concatenate(lws)


def ess(model, n, seed):
    _, lw = draws_with_weights(model, n, np.random.default_rng(seed))
    return kish(np.exp(lw - lw.max()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--fkl", type=int, default=1500)
    ap.add_argument("--rkl", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--lr-final-ratio", type=float, default=1.0,
                    help="cosine decay of the reverse-KL learning rate to lr x ratio (1: constant)")
    ap.add_argument("--bins", type=int, default=0, help="bin correction of the (phi, psi) marginal (0: none)")
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    try:
        x = np.load(a.run + "/samples.npy")
        # md-reference runs label their replicas; a replica-exchange run holds the 300 K frames only,
        # all of which train the model.
        rep = np.load(a.run + "/replica.npy") if os.path.exists(a.run + "/replica.npy") else np.zeros(len(x), int)
    except OSError as err:
        sys.exit(f"ala2_energy_trained_flow: {err}")
    if x.ndim != 2 or x.shape[1] != 66 or len(rep) != len(x) or not (rep == 0).any():
        sys.exit(f"ala2_energy_trained_flow: {a.run}: need N x 66 frames of alanine dipeptide with replica labels")
    system_xml = os.path.join(HERE, "..", "potentials", "alanine_dipeptide.xml")
    system = openmm.XmlSerializer.deserialize(open(system_xml).read())
    Energy.context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    t0 = time.time()
    z, _ = internal(x)
    train = rep == 0
    # The Z-matrix round trip must be exact (and not the mirror image): internal(cartesian(z)) = z.
    back = internal(cartesian(torch.tensor(z[:100])).numpy().reshape(100, 66))[0]
    if np.abs(wrap(back - z[:100])).max() > 1e-9:
        sys.exit("ala2_energy_trained_flow: the Z-matrix reconstruction does not reproduce the frames")
    model = Model(z, train, a.hidden, a.layers, a.bins, np.random.default_rng(0))
    e, f = torch.tensor(model.e), torch.tensor(model.f)
    rows = np.nonzero(train)[0]
    g = np.random.default_rng(11)
    print(f"{train.sum()} training frames; coupling flow {a.layers} x {a.hidden}, bins {a.bins}; start ESS "
          f"{ess(model, 20000, 5):.4f} ({time.time() - t0:.0f} s)", flush=True)
    opt = torch.optim.Adam(model.flow.parameters(), lr=1e-3)
    for it in range(a.fkl):
        idx = g.choice(rows, 512)
        loss = -model.log_q_residual(e[idx], f[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (it + 1) % a.every == 0 or it + 1 == a.fkl:
            print(f"forward KL {it + 1}: NLL {loss.item():.3f}  ESS {ess(model, 20000, 5):.4f} "
                  f"({time.time() - t0:.0f} s)", flush=True)
    opt = torch.optim.Adam(model.flow.parameters(), lr=a.lr)
    Energy.evaluations = 0
    for it in range(a.rkl):
        frac = it / max(a.rkl - 1, 1)
        for group in opt.param_groups:
            group["lr"] = a.lr * (a.lr_final_ratio + (1 - a.lr_final_ratio) * 0.5 * (1 + np.cos(np.pi * frac)))
        zb, log_q = model.draw(a.batch, g)
        loss = (log_q - log_target(zb)).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.flow.parameters(), 10.0)
        opt.step()
        if (it + 1) % a.every == 0 or it + 1 == a.rkl:
            spent = Energy.evaluations
            print(f"reverse KL {it + 1}: loss {loss.item():.3f}  ESS {ess(model, 20000, 5):.4f}  "
                  f"training energy evaluations {spent}  ({time.time() - t0:.0f} s)", flush=True)
            Energy.evaluations = spent
    if a.save:
        torch.save(model.flow.state_dict(), a.save)
    zz, lw = draws_with_weights(model, 100000, np.random.default_rng(7))
    w = np.exp(lw - lw.max())
    print(f"final: Kish ESS {kish(w):.4f} on 1e5 draws, log Z {np.log(w.mean()) + lw.max():.4f} "
          f"(internal coordinates, anchor frame)")
    for nb in (24, 48):
        s = zz[:, SOFT]
        cell = np.clip(((s[:, 0] + np.pi) / (2 * np.pi) * nb).astype(int), 0, nb - 1) * nb + \
            np.clip(((s[:, 1] + np.pi) / (2 * np.pi) * nb).astype(int), 0, nb - 1)
        mean = np.bincount(cell, w, minlength=nb * nb) / np.maximum(np.bincount(cell, minlength=nb * nb), 1)
        within = np.where(mean[cell] > 0, w / np.where(mean[cell] > 0, mean[cell], 1.0), 0.0)
        print(f"  {nb}x{nb} (phi, psi) bins: ESS of the bin-mean weights {kish(mean[cell]):.4f}, "
              f"ESS within bins {kish(within):.4f}")
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
