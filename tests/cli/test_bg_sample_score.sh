#!/bin/bash
# bg-sample with the score rows of the preset table on a 2-D Gaussian: the run-directory
# contract of a probability-flow run (log w = −u − log q, the exact log Z beside the
# estimate), reload and --evaluate reproducing log q, identical results for 1 and 2 threads,
# reverse-SDE runs without weights, and one clear line for a score preset without data, a
# misspelt key of generator.score, and this 2-D model given to a molecule.
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# The test Gaussian with short integrations (20 RK4 steps of the PF-ODE, 100 Euler–Maruyama
# steps of the reverse SDE) to keep the run short.
/usr/bin/python3 -c "
import json; p = json.load(open('$SRC/tests/data/bg_gaussian2d.json'))
p['generator']['score'] = {'flow_steps': 20, 'sde_steps': 100}
json.dump(p, open('$T/gauss.json', 'w'))" || fail "cannot write the test potential"
P="$T/gauss.json"

# Exact samples of the potential's Gaussian (mean (1, -0.5), covariance [[2, 0.9], [0.9, 1]]).
/usr/bin/python3 -c "
import numpy as np
L = np.linalg.cholesky(np.array([[2.0, 0.9], [0.9, 1.0]]))
z = np.random.default_rng(3).standard_normal((4000, 2))
np.save('$T/data.npy', np.array([1.0, -0.5]) + z @ L.T)" || fail "cannot make data"

run() { "$BIN/bg-sample" --potential "$P" --data "$T/data.npy" --samples 400 -q "$@"; }
run --preset score-flow --iterations 200 --threads 2 --out "$T/flow" 2> "$T/log" || { cat "$T/log"; fail "score-flow run"; }
run --preset score-flow --iterations 200 --threads 1 --out "$T/flow1" 2>/dev/null || fail "score-flow, 1 thread"
for f in samples.npy log_q.npy log_weights.npy reduced_energies.npy; do
  cmp -s "$T/flow/$f" "$T/flow1/$f" || fail "$f differs between 1 and 2 threads"
done
/usr/bin/python3 - "$T/flow" <<'PY' || fail "score-flow summary/arrays inconsistent"
import json, sys, numpy as np
d = sys.argv[1]
s = json.load(open(d + "/summary.json"))
x, lq, u, lw = (np.load(d + "/" + f) for f in ["samples.npy", "log_q.npy", "reduced_energies.npy", "log_weights.npy"])
assert x.shape == (400, 2) and np.all(np.isfinite(lq))
assert np.allclose(lw, -u - lq, rtol=0, atol=1e-12), "log w != -u - log q"
assert s["training"]["preset"] == "score-flow" and s["training"]["iterations"] == 200
assert s["generator"]["sampler"] == "probability_flow" and s["generator"]["score_model"]["type"] == "mlp"
st = s["statistics"]
assert 0 < st["ess_fraction"] <= 1, st
assert abs(st["log_z"]["exact"] - 1.9248537199710642) < 1e-9
PY
"$BIN/bg-sample" --potential "$P" --model "$T/flow/model.pt" --out "$T/again" --samples 400 -q 2>/dev/null \
  || fail "reload of a score model"
cmp -s "$T/flow/samples.npy" "$T/again/samples.npy" || fail "reloaded score model gives different samples"
"$BIN/bg-sample" --model "$T/flow/model.pt" --evaluate "$T/flow/samples.npy" --out "$T/eval" 2>/dev/null \
  || fail "evaluate with a score model"
/usr/bin/python3 -c "
import numpy as np
a = np.load('$T/flow/log_q.npy'); b = np.load('$T/eval/log_q.npy')
# forward (T -> eps) and backward (eps -> T) RK4 integrations of the same ODE
assert np.max(np.abs(a - b)) < 1e-3, np.max(np.abs(a - b))" || fail "evaluate log q differs from the samples' log q"

run --preset hjb-sgm --iterations 50 --out "$T/sde" 2>/dev/null || fail "hjb-sgm run"
[ -e "$T/sde/log_weights.npy" ] && fail "reverse-SDE run wrote weights"
grep -q '"sampler": "reverse_sde"' "$T/sde/summary.json" || fail "reverse-SDE sampler not recorded"

# Bad input: one line, exit 1, nothing written.
expect_error() {  # expect_error PATTERN ARGS...
  local pat="$1"; shift
  "$BIN/bg-sample" "$@" > "$T/out" 2> "$T/err"; local rc=$?
  [ "$rc" -eq 1 ] || fail "exit $rc for: $*"
  grep -q "$pat" "$T/err" || { cat "$T/err"; fail "no '$pat' for: $*"; }
  [ "$(wc -l < "$T/err")" -eq 1 ] || { cat "$T/err"; fail "more than one error line for: $*"; }
  [ -e "$T/bad" ] && fail "output written for: $*"
  return 0
}
expect_error "give --data" --potential "$P" --preset sgm --out "$T/bad"
/usr/bin/python3 -c "
import json; p = json.load(open('$P')); p['generator']['score']['alpah0'] = 1
json.dump(p, open('$T/typo.json', 'w'))" || fail "cannot write the typo potential"
expect_error "alpah0.*did you mean 'alpha0'" --potential "$T/typo.json" --data "$T/data.npy" --preset sgm --out "$T/bad"
expect_error "a score model of a target without molecules" \
  --potential "$SRC/potentials/alanine_dipeptide.json" --model "$T/flow/model.pt" --allow-other-potential --out "$T/bad"
echo "ok"
