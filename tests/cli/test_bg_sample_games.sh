#!/bin/bash
# bg-sample with the games beyond OT-BG on a 2-D Gaussian: the stochastic OT normalizing flow
# (noise recorded in the model, path weights whose log Z estimate covers the exact value,
# identical results for 1 and 2 threads, --evaluate refused with one line), the relaxed game
# (epsilon in the training record, finite weights), the free-velocity rows, and the terminal term
# (alpha_terminal's curve in the history); bad values of the new keys give one line naming the key.
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
P="$SRC/tests/data/bg_gaussian2d.json"
run() { "$BIN/bg-sample" --potential "$P" --samples 2000 -q "$@"; }

run --preset stochastic-ot-nf --iterations 60 --threads 2 --out "$T/snf" 2> "$T/log" || { cat "$T/log"; fail "stochastic run"; }
run --preset stochastic-ot-nf --iterations 60 --threads 1 --out "$T/snf1" 2>/dev/null || fail "stochastic run, 1 thread"
for f in samples.npy log_q.npy log_weights.npy; do
  cmp -s "$T/snf/$f" "$T/snf1/$f" || fail "$f differs between 1 and 2 threads"
done
/usr/bin/python3 - "$T/snf" <<'PY' || fail "stochastic run summary inconsistent"
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
st = s["statistics"]
lz = st["log_z"]
# The path weights are unbiased for Z: the estimate must cover the exact value within 4
# standard errors (delta method, as printed) plus the RK4 error bound of 0.01.
assert abs(lz["estimate"] - lz["exact"]) < 4 * lz["stderr"] + 0.01, lz
assert s["training"]["options"]["preset"] == "stochastic-ot-nf" and s["generator"]["noise"] == 0.2
PY
/usr/bin/python3 -c "
import numpy as np; np.save('$T/x.npy', np.zeros((3, 2)))"
"$BIN/bg-sample" --model "$T/snf/model.pt" --evaluate "$T/x.npy" --out "$T/ev" -q 2> "$T/err" && fail "--evaluate of a stochastic model accepted"
[ "$(wc -l < "$T/err")" -eq 1 ] && grep -q "stochastic" "$T/err" || { cat "$T/err"; fail "--evaluate error not one clear line"; }

run --preset relaxed-wgf --iterations 40 --out "$T/rg" 2>/dev/null || fail "relaxed-wgf run"
run --preset relaxed-wgf --iterations 40 --threads 1 --out "$T/rg1" 2>/dev/null || fail "relaxed-wgf run, 1 thread"
cmp -s "$T/rg/samples.npy" "$T/rg1/samples.npy" || fail "relaxed-wgf samples differ between 1 and 2 threads"
/usr/bin/python3 - "$T/rg" <<'PY' || fail "relaxed run summary inconsistent"
import json, sys, math
s = json.load(open(sys.argv[1] + "/summary.json"))
w = s["training"]["options"]["weights"]
assert w["epsilon"] == 1.0 and w["alpha_transport"] == 1.0, w
assert s["statistics"]["ess_fraction"] > 0.0
PY
run --preset wgf --iterations 20 --out "$T/wgf" 2>/dev/null || fail "wgf run"
/usr/bin/python3 -c "
import json; w = json.load(open('$T/wgf/summary.json'))['training']['options']['weights']; assert w['epsilon'] == 0.1, w" \
  || fail "wgf: epsilon not 0.1"

# The free-velocity rows: free-bg on the energy, free-cnf on exact samples; both 2-D runs draw density.png
# (the free flow keeps an exact log q), and the model records velocity "free".
/usr/bin/python3 -c "
import numpy as np
L = np.linalg.cholesky(np.array([[2.0, 0.9], [0.9, 1.0]]))
np.save('$T/data.npy', np.array([1.0, -0.5]) + np.random.default_rng(3).standard_normal((2000, 2)) @ L.T)"
run --preset free-bg --iterations 30 --out "$T/fbg" 2>/dev/null || fail "free-bg run"
run --preset free-bg --iterations 30 --threads 1 --out "$T/fbg1" 2>/dev/null || fail "free-bg run, 1 thread"
cmp -s "$T/fbg/samples.npy" "$T/fbg1/samples.npy" || fail "free-bg samples differ between 1 and 2 threads"
run --preset free-cnf --data "$T/data.npy" --iterations 30 --out "$T/fcnf" 2>/dev/null || fail "free-cnf run"
for d in fbg fcnf; do
  [ -s "$T/$d/density.png" ] || fail "$d: no density.png"
  /usr/bin/python3 -c "
import json; s = json.load(open('$T/$d/summary.json')); assert s['generator']['velocity'] == 'free', s['generator']" \
    || fail "$d: velocity not recorded"
done

/usr/bin/python3 -c "
import json; p = json.load(open('$P')); p['generator']['alpha_terminal'] = 1.0; p['generator']['preset'] = 'ot-rkl'
json.dump(p, open('$T/term.json', 'w'))"
"$BIN/bg-sample" --potential "$T/term.json" --iterations 30 --samples 500 --out "$T/term" -q 2>/dev/null || fail "alpha_terminal run"
/usr/bin/python3 - "$T/term" <<'PY' || fail "terminal curve missing"
import json, sys
h = json.load(open(sys.argv[1] + "/summary.json"))["training"]["history"]
assert len(h["terminal"]) == 30 and h["terminal"][0] > 0 and h["terminal"][-1] < h["terminal"][0], h["terminal"][:3]
PY

# A game object gives the same run as the preset it spells out (same code path, same samples).
/usr/bin/python3 -c "
import json; p = json.load(open('$P')); p['generator']['game'] = {
  'terminal_cost': {'lambda': 0.0}, 'interaction': {'epsilon': 1.0}, 'running_cost': {'alpha_transport': 1.0},
  'dynamics': {'velocity': 'gradient', 'noise': 0.0}, 'regularizers': {'alpha_hjb': 0.05, 'alpha_terminal': 0.0}}
del p['generator']['preset']
json.dump(p, open('$T/game.json', 'w'))"
"$BIN/bg-sample" --potential "$T/game.json" --samples 2000 -q --iterations 40 --out "$T/game" 2>/dev/null || fail "game run"
cmp -s "$T/game/samples.npy" "$T/rg/samples.npy" || fail "game object and relaxed-wgf preset differ"
/usr/bin/python3 -c "
import json; g = json.load(open('$T/game/summary.json'))['training']['game']; assert g['interaction']['epsilon'] == 1.0, g" \
  || fail "game not recorded"
/usr/bin/python3 -c "
import json; p = json.load(open('$T/game.json')); p['generator']['noise'] = 0.1; json.dump(p, open('$T/both.json', 'w'))"
"$BIN/bg-sample" --potential "$T/both.json" --iterations 1 --out "$T/both" -q 2> "$T/err" && fail "game + top-level key accepted"
[ "$(wc -l < "$T/err")" -eq 1 ] && grep -q "generator.noise and" "$T/err" || { cat "$T/err"; fail "game conflict error"; }

# The terminal condition needs the marginal log rho_T: refused on a stochastic flow.
/usr/bin/python3 -c "
import json; p = json.load(open('$T/term.json')); p['generator']['noise'] = 0.2; json.dump(p, open('$T/term_noise.json', 'w'))"
"$BIN/bg-sample" --potential "$T/term_noise.json" --iterations 1 --out "$T/tn" -q 2> "$T/err" && fail "alpha_terminal with noise accepted"
[ "$(wc -l < "$T/err")" -eq 1 ] && grep -q "alpha_terminal" "$T/err" && [ ! -e "$T/tn" ] || { cat "$T/err"; fail "alpha_terminal + noise error"; }

for bad in '"noise": -1' '"epsilon": -0.5' '"alpha_terminal": -2' '"velocity": "curly"' '"velocity_bound": 1' \
           '"velocity": "free", "velocity_hidden": [8, "x"]'; do
  /usr/bin/python3 -c "
import json; p = json.load(open('$P')); p['generator'].update(json.loads('{' + '''$bad''' + '}'))
json.dump(p, open('$T/bad.json', 'w'))"
  "$BIN/bg-sample" --potential "$T/bad.json" --iterations 1 --out "$T/bad" -q 2> "$T/err" && fail "accepted $bad"
  key=$(echo "$bad" | cut -d'"' -f2)
  [ "$(wc -l < "$T/err")" -eq 1 ] && grep -q "$key" "$T/err" || { cat "$T/err"; fail "error for $bad"; }
done
echo "bg-sample games: ok"
