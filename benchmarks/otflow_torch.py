#!/usr/bin/python3
"""PyTorch baseline for bench_bg_iteration: one OT-Flow training iteration
(forward + backward) written the way the OT-Flow reference does it — closed-form
gradient and exact trace of Phi(s) = w'N(s) + 1/2 s'A'As + b's + c with a ResNet N
(nTh layers, activation log(2 cosh)), RK4 on [x, l, L, R], loss
E[-log q] + alpha_L E[L] + alpha_R E[R]. float64, torch.set_num_threads(threads).
Prints one JSON line with the median seconds per iteration."""
import json, math, sys, time
import torch

def main():
    args = dict(a.split("=") for a in sys.argv[1:])
    batch = int(args.get("batch", 1024)); d = int(args.get("dim", 2)); m = int(args.get("width", 32))
    nth = int(args.get("layers", 2)); steps = int(args.get("steps", 8)); reps = int(args.get("reps", 10))
    threads = int(args.get("threads", 2))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dt = torch.float64
    r = min(10, d + 1); h = 1.0 / (nth - 1)
    K0 = (torch.rand(m, d + 1, dtype=dt) * 2 - 1) / math.sqrt(d + 1)
    b0 = (torch.rand(m, dtype=dt) * 2 - 1) / math.sqrt(d + 1)
    Ks = [(torch.rand(m, m, dtype=dt) * 2 - 1) / math.sqrt(m) for _ in range(nth - 1)]
    bs = [(torch.rand(m, dtype=dt) * 2 - 1) / math.sqrt(m) for _ in range(nth - 1)]
    w = torch.randn(m, dtype=dt) * 0.1; A = torch.randn(r, d + 1, dtype=dt) * 0.1
    b = torch.zeros(d + 1, dtype=dt); c = torch.zeros(1, dtype=dt)
    params = [K0, b0, *Ks, *bs, w, A, b, c]
    for p in params: p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=1e-3)
    x_data = torch.randn(batch, d, dtype=dt) * 1.3 + 0.5

    def sig(a): return a.abs() + torch.log1p(torch.exp(-2 * a.abs()))

    def grad_trace(x, t):
        s = torch.cat([x, torch.full((x.shape[0], 1), t, dtype=dt)], 1)
        a0 = s @ K0.t() + b0
        tanh = [torch.tanh(a0)]; u = sig(a0)
        for i in range(nth - 1):
            ai = u @ Ks[i].t() + bs[i]; tanh.append(torch.tanh(ai))
            if i + 1 < nth - 1: u = u + h * sig(ai)
        z = w.expand(x.shape[0], m); zab = [None] * nth
        for i in range(nth - 1, 0, -1):
            zab[i] = z; z = z + h * (tanh[i] * z) @ Ks[i - 1]
        zab[0] = z
        g = (tanh[0] * z) @ K0 + (s @ A.t()) @ A + b
        K0x = K0[:, :d]
        tr = ((1 - tanh[0] ** 2) * zab[0]) @ (K0x ** 2).sum(1)
        # Jacobian in the reference code's layout m x d x B: K_i J is one GEMM.
        n = x.shape[0]
        J = tanh[0].t().unsqueeze(1) * K0x.unsqueeze(2)
        for i in range(1, nth):
            KJ = (Ks[i - 1] @ J.reshape(m, -1)).reshape(m, d, n)
            tr = tr + h * ((1 - tanh[i] ** 2) * zab[i] * (KJ ** 2).sum(1).t()).sum(1)
            if i < nth - 1: J = J + h * tanh[i].t().unsqueeze(1) * KJ
        tr = tr + (A[:, :d] ** 2).sum()
        return g[:, :d], g[:, d], tr

    def rates(x, t):
        gx, gt, tr = grad_trace(x, t)
        hs = 0.5 * (gx ** 2).sum(1)
        return -gx, -tr, hs, (gt - hs).abs()

    def iteration():
        opt.zero_grad()
        x = x_data; l = torch.zeros(batch, dtype=dt); L = torch.zeros(batch, dtype=dt); R = torch.zeros(batch, dtype=dt)
        T = 1.0; dtt = -T / steps; t = T
        for k in range(steps):
            k1 = rates(x, t)
            k2 = rates(x + 0.5 * dtt * k1[0], t + 0.5 * dtt)
            k3 = rates(x + 0.5 * dtt * k2[0], t + 0.5 * dtt)
            k4 = rates(x + dtt * k3[0], t + dtt)
            x = x + dtt / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            l = l + dtt / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
            L = L + abs(dtt) / 6 * (k1[2] + 2 * k2[2] + 2 * k3[2] + k4[2])
            R = R + abs(dtt) / 6 * (k1[3] + 2 * k2[3] + 2 * k3[3] + k4[3])
            t = T + (k + 1) * dtt
        logq = -0.5 * (x ** 2).sum(1) - 0.5 * d * math.log(2 * math.pi) + l
        loss = -logq.mean() + 0.01 * L.mean() + 0.05 * R.mean()
        loss.backward(); opt.step()
        return loss.item()

    iteration()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter(); loss = iteration(); times.append(time.perf_counter() - t0)
    times.sort()
    print(json.dumps({"median_seconds": times[len(times) // 2], "min_seconds": times[0], "loss": loss,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))

if __name__ == "__main__":
    main()
