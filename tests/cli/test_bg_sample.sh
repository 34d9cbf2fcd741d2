#!/bin/bash
# bg-sample: run-directory contract on a tiny 2-D Gaussian (train, sample, reload,
# evaluate), and bad input (unknown generator key, missing model file) giving one
# clear line, a non-zero exit and no output directory.
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
P="$SRC/tests/data/bg_gaussian2d.json"

"$BIN/bg-sample" --potential "$P" --out "$T/run" --iterations 20 --samples 500 --threads 2 -q \
  2> "$T/log" || { cat "$T/log"; fail "training run failed"; }
for f in samples.npy log_q.npy reduced_energies.npy log_weights.npy summary.json model.pt; do
  [ -s "$T/run/$f" ] || fail "missing $f"
done
/usr/bin/python3 - "$T/run" <<'PY' || fail "summary/arrays inconsistent"
import json, sys, numpy as np
d = sys.argv[1]
s = json.load(open(d + "/summary.json"))
x, lq, u, lw = (np.load(d + "/" + f) for f in ["samples.npy", "log_q.npy", "reduced_energies.npy", "log_weights.npy"])
assert x.shape == (500, 2) and lq.shape == (500,) and u.shape == (500,)
assert np.allclose(lw, -u - lq, rtol=0, atol=1e-12), "log w != -u - log q"
# u of a Gaussian recomputed here independently
mu = np.array([1.0, -0.5]); P = np.linalg.inv(np.array([[2.0, 0.9], [0.9, 1.0]]))
uu = 0.5 * np.einsum("ni,ij,nj->n", x - mu, P, x - mu)
assert np.allclose(u, uu, atol=1e-10)
assert s["format_version"] >= 1 and s["training"]["iterations"] == 20
assert s["training"]["energy_evaluations"] > 0
assert 0 < s["statistics"]["ess_fraction"] <= 1 and "psis_khat" in s["statistics"]
assert abs(s["statistics"]["log_z"]["exact"] - 1.9248537199710642) < 1e-9
PY

# Reload: the same seed gives the same samples; evaluate mode gives their log q.
"$BIN/bg-sample" --potential "$P" --model "$T/run/model.pt" --out "$T/again" --samples 500 -q 2>/dev/null \
  || fail "reload run failed"
cmp -s "$T/run/samples.npy" "$T/again/samples.npy" || fail "reloaded model gives different samples"
"$BIN/bg-sample" --model "$T/run/model.pt" --evaluate "$T/run/samples.npy" --out "$T/eval" 2>/dev/null \
  || fail "evaluate failed"
/usr/bin/python3 -c "
import numpy as np, sys
a = np.load('$T/run/log_q.npy'); b = np.load('$T/eval/log_q.npy')
assert np.max(np.abs(a - b)) < 1e-4, np.max(np.abs(a - b))
" || fail "evaluate log q differs from sampling log q"

# Gaussian-mixture base (fitted to data): trains, is saved with the model, reloads to the
# same samples; without data, or with a torsion base on this target, one clear line.
/usr/bin/python3 -c "
import numpy as np
rng = np.random.default_rng(3)
L = np.linalg.cholesky(np.array([[2.0, 0.9], [0.9, 1.0]]))
np.save('$T/data.npy', np.array([1.0, -0.5]) + rng.standard_normal((2000, 2)) @ L.T)
"
sed 's/"preset": "ot-bg"/"preset": "ot-flow", "base": "gaussian_mixture", "base_components": 3/' "$P" > "$T/gm.json"
"$BIN/bg-sample" --potential "$T/gm.json" --data "$T/data.npy" --out "$T/gm" --iterations 10 --samples 500 \
  -q 2> "$T/log" || { cat "$T/log"; fail "gaussian_mixture run failed"; }
/usr/bin/python3 -c "
import json, numpy as np
s = json.load(open('$T/gm/summary.json'))
assert s['base'] == 'gaussian_mixture', s['base']
lw, u, lq = (np.load('$T/gm/' + f) for f in ['log_weights.npy', 'reduced_energies.npy', 'log_q.npy'])
assert np.allclose(lw, -u - lq, rtol=0, atol=1e-12)
" || fail "gaussian_mixture summary"
"$BIN/bg-sample" --potential "$T/gm.json" --model "$T/gm/model.pt" --out "$T/gm2" --samples 500 -q \
  2>/dev/null || fail "gaussian_mixture reload failed"
cmp -s "$T/gm/samples.npy" "$T/gm2/samples.npy" || fail "reloaded mixture-base model gives different samples"
sed 's/"preset": "ot-bg"/"preset": "ot-bg", "base": "gaussian_mixture"/' "$P" > "$T/gm_nodata.json"
"$BIN/bg-sample" --potential "$T/gm_nodata.json" --out "$T/gm3" 2> "$T/err" && fail "gaussian_mixture without data accepted"
grep -q 'generator.base "gaussian_mixture" is fitted to data' "$T/err" || { cat "$T/err"; fail "no-data message"; }
[ "$(wc -l < "$T/err")" -eq 1 ] || { cat "$T/err"; fail "more than one line"; }
[ -e "$T/gm3" ] && fail "output written without data"
sed 's/"preset": "ot-bg"/"preset": "ot-bg", "base": "von_mises"/' "$P" > "$T/vm.json"
"$BIN/bg-sample" --potential "$T/vm.json" --out "$T/vm" 2> "$T/err" && fail "torsion base accepted on a Gaussian"
grep -q '"normal" or "gaussian_mixture"' "$T/err" || { cat "$T/err"; fail "base message"; }
[ -e "$T/vm" ] && fail "output written for a bad base"

# Equivariant pair flow on DW4 (Φ = pair term + many-body channels, no network; reverse
# KL only, so no data): samples stay centred, and log q from --evaluate is the same for
# the samples with their particles permuted and rotated (the density is invariant).
/usr/bin/python3 - "$SRC/potentials/dw4.json" "$T/dw4.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["generator"] = {"preset": "ot-bg", "lambda": 0.0, "network": False, "pair_basis": 8, "pair_channels": 2,
                  "pair_range": 3.0, "iterations": 5, "batch_size": 64, "samples": 300}
json.dump(p, open(sys.argv[2], "w"))
PY
"$BIN/bg-sample" --potential "$T/dw4.json" --out "$T/dw4" --threads 2 -q 2> "$T/log" \
  || { cat "$T/log"; fail "pair-flow run failed"; }
/usr/bin/python3 - "$T" <<'PY' || fail "pair-flow samples not centred"
import numpy as np, sys
x = np.load(sys.argv[1] + "/dw4/samples.npy").reshape(300, 4, 2)
assert np.abs(x.sum(1)).max() < 1e-10
c, s = np.cos(0.7), np.sin(0.7)
moved = x[:, [2, 0, 3, 1], :] @ np.array([[c, s], [-s, c]])
np.save(sys.argv[1] + "/moved.npy", moved.reshape(300, 8))
PY
"$BIN/bg-sample" --potential "$T/dw4.json" --out "$T/dw4_t1" --threads 1 -q 2>/dev/null \
  || fail "pair-flow run with one thread failed"
cmp -s "$T/dw4/samples.npy" "$T/dw4_t1/samples.npy" || fail "pair-flow samples depend on the thread count"
cmp -s "$T/dw4/model.pt" "$T/dw4_t1/model.pt" || fail "pair-flow training depends on the thread count"
"$BIN/bg-sample" --model "$T/dw4/model.pt" --evaluate "$T/dw4/samples.npy" --out "$T/e1" 2>/dev/null || fail "evaluate 1"
"$BIN/bg-sample" --model "$T/dw4/model.pt" --evaluate "$T/moved.npy" --out "$T/e2" 2>/dev/null || fail "evaluate 2"
/usr/bin/python3 -c "
import numpy as np
a = np.load('$T/e1/log_q.npy'); b = np.load('$T/e2/log_q.npy')
assert np.max(np.abs(a - b)) < 1e-9, np.max(np.abs(a - b))
assert np.isfinite(a).all()
" || fail "pair-flow log q is not invariant under permutation and rotation"

# Bad input: unknown key in the generator section.
sed 's/"iterations"/"iteratons"/' "$P" > "$T/bad.json"
"$BIN/bg-sample" --potential "$T/bad.json" --out "$T/bad" 2> "$T/err" && fail "unknown key accepted"
grep -q "iteratons" "$T/err" || { cat "$T/err"; fail "message does not name the key"; }
[ "$(wc -l < "$T/err")" -eq 1 ] || { cat "$T/err"; fail "more than one line"; }
[ -e "$T/bad" ] && fail "output written for bad input"
# An architecture key that does not fit the target: one line naming the file.
sed 's/"preset": "ot-bg"/"preset": "ot-bg", "pair_basis": 4/' "$P" > "$T/pair.json"
"$BIN/bg-sample" --potential "$T/pair.json" --out "$T/bad3" 2> "$T/err" && fail "pair_basis accepted on a Gaussian"
grep -q "pair.json: generator: .*pair_basis > 0 needs a particle system" "$T/err" || { cat "$T/err"; fail "pair message"; }
[ "$(wc -l < "$T/err")" -eq 1 ] || { cat "$T/err"; fail "more than one line"; }
[ -e "$T/bad3" ] && fail "output written for a bad architecture"
# Missing model file.
"$BIN/bg-sample" --potential "$P" --model "$T/nope.pt" --out "$T/bad2" 2> "$T/err" && fail "missing model accepted"
grep -q "nope.pt" "$T/err" || { cat "$T/err"; fail "message does not name the file"; }
[ -e "$T/bad2" ] && fail "output written for missing model"
echo "ok"
