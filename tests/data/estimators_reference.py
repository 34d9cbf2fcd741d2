#!/usr/bin/python3
"""Reference values for tests/estimators/test_reference.cpp (numpy only).

An independent transcription, written from the published definitions, of
  * PSIS (Vehtari, Simpson, Gelman, Yao & Gabry 2024, JMLR 25(72)) as defined by the
    legacy ArviZ functions `psislw`/`_psislw`/`_gpdfit`/`_gpinv` (arviz/stats/stats.py,
    arviz >= 0.12: tail length M = ceil(min(S/5, 3 sqrt(S/r_eff))), cutoff = (M+1)-th
    largest log-weight floored at log(DBL_MIN), smoothing whenever k is finite,
    Zhang & Stephens (2009) fit with m = 30 + floor(sqrt n) grid points and the
    prior adjustment k = (n k + 5)/(n + 10));
  * rank-normalized split R-hat, bulk-ESS and tail-ESS (Vehtari, Gelman, Simpson,
    Carpenter & Buerkner 2021, Bayesian Analysis 16:667) as defined by ArviZ
    (arviz/stats/diagnostics.py `_rhat_rank`, `_ess_bulk`, `_ess_tail`, `_ess`,
    `_z_scale`, `_split_chains`; stats_utils `autocov` (FFT), `quantile` (type 7));
  * log Z by log-mean-exp with the delta-method standard error sd(w)/(sqrt(S) mean(w)).

It differs from the C++ code on purpose in the numerical route where a choice
exists (numpy's FFT instead of our radix-2 FFT, Newton-refined inverse normal CDF
instead of Boost, numpy sorting), so agreement to ~1e-9 checks the algorithm, not
shared code. One documented deviation from legacy ArviZ is mirrored here: when the
prior adjustment makes sigma <= 0 (light, bounded weight tails), ArviZ's `_gpinv`
returns NaN and poisons every weight; both implementations then keep the raw tail.

Run from anywhere:  /usr/bin/python3 tests/data/estimators_reference.py
Writes tests/data/estimators_reference.json and tests/data/estimators_ref_*.npy.
"""
import json
import math
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DBL_MIN = np.finfo(float).tiny
EPS = np.finfo(float).eps


# ---------------------------------------------------------------- helpers
def norm_ppf(p):
    """Inverse standard normal CDF: Acklam's rational approximation refined by
    two Halley steps on Phi(x) = erfc(-x/sqrt 2)/2 (full double precision)."""
    a = [-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00]
    b = [-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01]
    c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00]
    d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
         3.754408661907416e00]
    out = []
    for q0 in np.ravel(p):
        # Upper half by symmetry (1 - q is exact for q >= 1/2): no cancellation below.
        sign, q = (-1.0, 1.0 - q0) if q0 > 0.5 else (1.0, q0)
        if q < 0.02425:
            r = math.sqrt(-2 * math.log(q))
            x = (((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5]) / \
                ((((d[0] * r + d[1]) * r + d[2]) * r + d[3]) * r + 1)
        elif q > 1 - 0.02425:
            r = math.sqrt(-2 * math.log(1 - q))
            x = -(((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5]) / \
                ((((d[0] * r + d[1]) * r + d[2]) * r + d[3]) * r + 1)
        else:
            r = (q - 0.5) ** 2
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * (q - 0.5) / \
                (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        for _ in range(2):
            e = 0.5 * math.erfc(-x / math.sqrt(2)) - q
            u = e * math.sqrt(2 * math.pi) * math.exp(x * x / 2)
            x = x - u / (1 + x * u / 2)
        out.append(sign * x)
    return np.array(out).reshape(np.shape(p))


def average_ranks(values):
    """1-based ranks of all entries, ties sharing their mean rank."""
    flat = np.ravel(values)
    order = np.argsort(flat, kind="mergesort")
    ranks = np.empty(flat.size)
    sorted_vals = flat[order]
    i = 0
    while i < flat.size:
        j = i
        while j + 1 < flat.size and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1
        i = j + 1
    return ranks.reshape(np.shape(values))


def z_scale(x):
    r = average_ranks(x)
    return norm_ppf((r - 3.0 / 8.0) / (x.size + 0.25))


def split(x):
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)


def autocov_fft(x):
    """Biased autocovariance per row with numpy's FFT, padded to 2n (not a power of 2)."""
    n = x.shape[1]
    y = x - x.mean(axis=1, keepdims=True)
    f = np.fft.rfft(y, n=2 * n, axis=1)
    return np.fft.irfft(f * np.conj(f), n=2 * n, axis=1)[:, :n] / n


def geyer_ess(x):
    m, n = x.shape
    total = m * n
    if x.max() - x.min() < 1e-15:
        return float(total)
    acov = autocov_fft(x).mean(axis=0)
    w = acov[0] * n / (n - 1)
    var_plus = w * (n - 1) / n
    if m > 1:
        var_plus += np.var(x.mean(axis=1), ddof=1)
    rho = np.zeros(n)
    rho[0] = 1.0
    # initial positive sequence over pairs (rho_{2k}, rho_{2k+1})
    even, odd = 1.0, 1.0 - (w - acov[1]) / var_plus
    rho[1] = odd
    t = 1
    while t < n - 3 and even + odd > 0:
        even = 1.0 - (w - acov[t + 1]) / var_plus
        odd = 1.0 - (w - acov[t + 2]) / var_plus
        if even + odd >= 0:
            rho[t + 1], rho[t + 2] = even, odd
        t += 2
    last = t - 2
    if even > 0:
        rho[last + 1] = even
    # initial monotone sequence
    t = 1
    while t <= last - 2:
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = rho[t + 2] = (rho[t - 1] + rho[t]) / 2
        t += 2
    tau = -1.0 + 2.0 * rho[: last + 1].sum() + rho[last + 1: last + 2].sum()
    tau = max(tau, 1.0 / math.log10(total))
    return total / tau


def rhat_basic(x):
    n = x.shape[1]
    b = n * np.var(x.mean(axis=1), ddof=1)
    w = np.var(x, axis=1, ddof=1).mean()
    return math.sqrt((b / w + n - 1) / n)


def rhat_rank(x):
    s = split(x)
    folded = np.abs(s - np.median(s))
    return max(rhat_basic(z_scale(s)), rhat_basic(z_scale(folded)))


def ess_bulk(x):
    return geyer_ess(z_scale(split(x)))


def quantile7(x, p):
    v = np.sort(np.ravel(x))
    n = v.size
    h = n * p + 1 - p
    k = min(max(math.floor(h), 1), n - 1)
    g = min(max(h - k, 0.0), 1.0)
    return (1 - g) * v[k - 1] + g * v[k]


def ess_tail(x, prob=0.05):
    out = []
    for p in (prob, 1 - prob):
        q = quantile7(x, p)
        out.append(geyer_ess(split((x <= q).astype(float))))
    return min(out)


def ess_mean(x):
    return geyer_ess(split(x))


# ---------------------------------------------------------------- PSIS
def gpd_fit(tail):
    """Zhang & Stephens (2009) empirical Bayes fit, prior-adjusted (Vehtari et al. 2024)."""
    n = tail.size
    m = 30 + int(math.sqrt(n))
    j = np.arange(1, m + 1, dtype=float)
    theta = (1 - np.sqrt(m / (j - 0.5))) / (3 * tail[int(n / 4 + 0.5) - 1]) + 1 / tail[-1]
    kk = np.array([np.mean(np.log1p(-th * tail)) for th in theta])
    prof = n * (np.log(-theta / kk) - kk - 1)
    wts = np.array([1.0 / np.sum(np.exp(prof - prof[i])) for i in range(m)])
    keep = wts >= 10 * EPS
    wts = wts[keep] / wts[keep].sum()
    th = np.sum(theta[keep] * wts)
    k = np.mean(np.log1p(-th * tail))
    k = (n * k + 10 * 0.5) / (n + 10)
    return k, -k / th


def gpd_inv(p, k, sigma):
    if abs(k) < EPS:
        return -sigma * np.log1p(-p)
    return sigma * np.expm1(-k * np.log1p(-p)) / k


def logsumexp(x):
    mx = np.max(x)
    return mx + math.log(np.sum(np.exp(x - mx)))


def psis(lw, r_eff=1.0):
    x = np.array(lw, dtype=float)
    x = x - np.max(x)
    s = x.size
    m = int(math.ceil(min(s / 5.0, 3 * math.sqrt(s / r_eff))))
    order = np.argsort(x, kind="mergesort")
    cutoff = max(x[order[s - m - 1]], math.log(DBL_MIN))
    tail_idx = order[x[order] > cutoff]
    res = {"tail_length": int(tail_idx.size), "log_cutoff": cutoff}
    if tail_idx.size <= 4:
        res.update(khat=None, sigma=None)
    else:
        ex = np.exp(x[tail_idx]) - math.exp(cutoff)
        k, sigma = gpd_fit(ex)
        res.update(khat=k, sigma=sigma)
        if np.isfinite(k) and sigma > 0:
            probs = (np.arange(tail_idx.size) + 0.5) / tail_idx.size
            x[tail_idx] = np.minimum(np.log(gpd_inv(probs, k, sigma) + math.exp(cutoff)), 0.0)
    x = x - logsumexp(x)
    res["smoothed"] = x
    res["kish_ess"] = 1.0 / np.sum(np.exp(2 * x))
    return res


def log_z(lw):
    s = lw.size
    est = logsumexp(lw) - math.log(s)
    w = np.exp(lw - np.max(lw))
    se = np.std(w, ddof=1) / (math.sqrt(s) * np.mean(w))
    return est, se


def kish(lw):
    w = np.exp(lw - logsumexp(lw))
    return 1.0 / np.sum(w * w)


# ---------------------------------------------------------------- cases
def ar1(rng, chains, draws, rho, offsets=None):
    x = np.empty((chains, draws))
    x[:, 0] = rng.standard_normal(chains) / math.sqrt(1 - rho * rho)
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + rng.standard_normal(chains)
    if offsets is not None:
        x += np.asarray(offsets)[:, None]
    return x


def main():
    rng = np.random.default_rng(20261130)
    chain_cases = {
        "ar1_rho05": ar1(rng, 4, 200, 0.5),
        "ar1_rho09_odd": ar1(rng, 4, 301, 0.9),
        "shifted_chain": ar1(rng, 4, 100, 0.3, offsets=[0, 0, 0, 1.0]),
        "student_t2_iid": rng.standard_t(2, size=(3, 150)),
        "ties_rounded": np.round(ar1(rng, 4, 100, 0.6), 1),
        "antithetic_rho_m03": ar1(rng, 2, 500, -0.3),
        "single_chain": ar1(rng, 1, 400, 0.5),
    }
    out = {"chains": {}, "weights": {}}
    for name, x in chain_cases.items():
        np.save(os.path.join(HERE, f"estimators_ref_chains_{name}.npy"), x)
        entry = {
            "ess_bulk": ess_bulk(x),
            "ess_tail": ess_tail(x),
            "ess_mean": ess_mean(x),
            "rhat": rhat_rank(x) if x.shape[0] >= 2 else None,
        }
        out["chains"][name] = entry

    weight_cases = {}
    # N(0,1) target, N(0, 0.7^2) proposal: heavy weight tail (k about 0.5).
    z = 0.7 * rng.standard_normal(2000)
    weight_cases["gauss_narrow"] = (-0.5 * z * z - (-0.5 * (z / 0.7) ** 2 - math.log(0.7 * math.sqrt(2 * math.pi))), 1.0)
    # N(0,1) target, N(0, 2^2) proposal: bounded weights (k < 0).
    z = 2.0 * rng.standard_normal(5000)
    weight_cases["gauss_wide"] = (-0.5 * z * z - (-0.5 * (z / 2.0) ** 2 - math.log(2.0 * math.sqrt(2 * math.pi))), 1.0)
    # Generalized Pareto weights with shape 0.8.
    u = rng.random(1000)
    weight_cases["gpd_k08"] = (np.log((u ** -0.8 - 1) / 0.8 + 1e-3), 1.0)
    # Small sample with r_eff = 0.5.
    weight_cases["small_reff05"] = (rng.standard_normal(100) * 1.5, 0.5)
    # Some zero weights (non-finite energies).
    lw = rng.standard_normal(1000) * 2.0
    lw[rng.choice(1000, 50, replace=False)] = -np.inf
    weight_cases["with_zero_weights"] = (lw, 1.0)
    for name, (lw, r_eff) in weight_cases.items():
        np.save(os.path.join(HERE, f"estimators_ref_logw_{name}.npy"), lw)
        r = psis(lw, r_eff)
        np.save(os.path.join(HERE, f"estimators_ref_psis_{name}.npy"), r["smoothed"])
        est, se = log_z(lw)
        out["weights"][name] = {
            "r_eff": r_eff,
            "khat": r["khat"],
            "sigma": r["sigma"],
            "tail_length": r["tail_length"],
            "log_cutoff": r["log_cutoff"],
            "psis_kish_ess": r["kish_ess"],
            "kish_ess": kish(lw),
            "log_z": est,
            "log_z_stderr": se,
        }
    with open(os.path.join(HERE, "estimators_reference.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
