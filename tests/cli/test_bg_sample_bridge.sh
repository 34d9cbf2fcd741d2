#!/bin/bash
# bg-sample with the Schrödinger-bridge rows on a 2-D Gaussian, trained on the energy alone:
# the run contract (log w = −u − log q, where −log q is the path term), exact weights (log Z
# within 4 standard errors of the exact value after a short training), identical results for
# 1 and 2 threads and after reloading the model, the generalized bridge's interaction recorded,
# and one clear line for a molecule, a misspelt generator.bridge key and a bad sigma.
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
/usr/bin/python3 -c "
import json; p = json.load(open('$SRC/potentials/gaussian2d.json'))
p['generator'] = {'width': 8, 'batch_size': 64, 'bridge': {'steps': 10}}
json.dump(p, open('$T/gauss.json', 'w'))" || fail "cannot write the test potential"
P="$T/gauss.json"
run() { "$BIN/bg-sample" --potential "$P" --iterations 30 --samples 4000 -q "$@"; }
run --preset schrodinger-bridge --threads 2 --out "$T/a" 2> "$T/log" || { cat "$T/log"; fail "bridge run"; }
run --preset schrodinger-bridge --threads 1 --out "$T/b" 2> /dev/null || fail "bridge run, 1 thread"
for f in samples.npy log_q.npy log_weights.npy reduced_energies.npy; do
  cmp -s "$T/a/$f" "$T/b/$f" || fail "$f differs between 1 and 2 threads"
done
/usr/bin/python3 - "$T/a" <<'PY' || fail "bridge summary/arrays inconsistent"
import json, sys, numpy as np
d = sys.argv[1]
s = json.load(open(d + "/summary.json"))
x, lq, u, lw = (np.load(d + "/" + f) for f in ["samples.npy", "log_q.npy", "reduced_energies.npy", "log_weights.npy"])
assert x.shape == (4000, 2) and np.all(np.isfinite(lw))
assert np.allclose(lw, -u - lq, rtol=0, atol=1e-12), "log w != -u - log q"
assert s["training"]["preset"] == "schrodinger-bridge" and s["generator"]["steps"] == 10
assert s["generator"]["alpha_interaction"] == 0
# E[w] = Z exactly for the discrete chain: log Z within 4 delta-method standard errors.
m = lw.max(); w = np.exp(lw - m)
log_z = m + np.log(w.mean()); se = w.std() / (np.sqrt(len(w)) * w.mean())
exact = s["statistics"]["log_z"]["exact"]
assert se < 0.2 and abs(log_z - exact) < 4 * se, (log_z, se, exact)
assert s["counts"]["energy_evaluations"] == 30 * 64 + 4000, s["counts"]
PY
"$BIN/bg-sample" --potential "$P" --model "$T/a/model.pt" --samples 4000 --out "$T/again" -q 2> /dev/null \
  || fail "reload of a bridge model"
cmp -s "$T/a/log_weights.npy" "$T/again/log_weights.npy" || fail "the reloaded bridge gives different weights"
run --preset generalized-sb --out "$T/g" 2> /dev/null || fail "generalized-sb run"
grep -q '"alpha_interaction": 1' "$T/g/summary.json" || fail "generalized-sb interaction not recorded"

expect_error() {  # expect_error PATTERN ARGS...
  local pat="$1"; shift
  "$BIN/bg-sample" "$@" > "$T/out" 2> "$T/err"; local rc=$?
  [ "$rc" -eq 1 ] || fail "exit $rc for: $*"
  grep -q "$pat" "$T/err" || { cat "$T/err"; fail "no '$pat' for: $*"; }
  [ "$(wc -l < "$T/err")" -eq 1 ] || { cat "$T/err"; fail "more than one error line for: $*"; }
  [ -e "$T/bad" ] && fail "output written for: $*"
  return 0
}
expect_error "bridge samplers run on targets without molecules" \
  --potential "$SRC/potentials/alanine_dipeptide.json" --preset schrodinger-bridge --out "$T/bad"
/usr/bin/python3 -c "
import json; p = json.load(open('$P')); p['generator']['bridge']['sigmaa'] = 2
json.dump(p, open('$T/typo.json', 'w'))
p['generator']['bridge'] = {'sigma': -1}
json.dump(p, open('$T/neg.json', 'w'))" || fail "cannot write the bad potentials"
expect_error "sigmaa.*did you mean 'sigma'" --potential "$T/typo.json" --preset schrodinger-bridge --out "$T/bad"
expect_error "generator.bridge.sigma must be finite and > 0" --potential "$T/neg.json" --preset schrodinger-bridge \
  --out "$T/bad"
echo "ok"
