#!/bin/bash
# bg-sample with generator.symmetrize on DW4 (4 particles in 2-D, |G| = 4!·2 = 48): the run
# draws from q_G (each draw an image of the plain run's draw under the group; the exactness of
# log q_G is tested in tests/generators/test_symmetrize.cpp), records the group size in summary.json, keeps the draws on the centre-of-mass-free
# subspace, and is identical at 1 and 2 threads. A target that is not a particle system, or
# symmetrize with smc, gives one line naming the file and the key, with a non-zero exit.
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
potential() {  # $1: file, $2: extra generator keys
  /usr/bin/python3 - "$SRC/potentials/dw4.json" "$1" "$2" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["generator"] = {"preset": "ot-bg", "width": 8, "steps": 4, "iterations": 30, "batch_size": 128,
                  "learning_rate": 0.01, "eval_every": 0, "scale": 1.0}
p["generator"].update(json.loads(sys.argv[3]))
json.dump(p, open(sys.argv[2], "w"))
PY
}
run() { "$BIN/bg-sample" --potential "$1" --samples 2000 --seed 3 -q "${@:2}"; }

potential "$T/plain.json" '{}'
potential "$T/sym.json" '{"symmetrize": true}'
run "$T/plain.json" --threads 2 --out "$T/plain" > /dev/null 2> "$T/log" || { cat "$T/log"; fail "plain run"; }
run "$T/sym.json" --threads 2 --out "$T/s2" > /dev/null 2> "$T/log" || { cat "$T/log"; fail "symmetrized run"; }
run "$T/sym.json" --threads 1 --out "$T/s1" > /dev/null 2>&1 || fail "symmetrized run, 1 thread"
for f in samples.npy log_q.npy log_weights.npy; do
  cmp -s "$T/s1/$f" "$T/s2/$f" || fail "$f differs between 1 and 2 threads"
done
/usr/bin/python3 - "$T/plain" "$T/s2" <<'PY' || fail "symmetrized run inconsistent"
import json, sys
import numpy as np
plain = json.load(open(sys.argv[1] + "/summary.json"))
sym = json.load(open(sys.argv[2] + "/summary.json"))
assert sym["symmetrized_group_size"] == 48, sym["symmetrized_group_size"]
assert plain["symmetrized_group_size"] is None
x = np.load(sys.argv[2] + "/samples.npy")
lq = np.load(sys.argv[2] + "/log_q.npy")
assert x.shape == (2000, 8) and np.all(np.isfinite(lq))
# Draws stay on the centre-of-mass-free subspace.
assert np.abs(x.reshape(-1, 4, 2).sum(axis=1)).max() < 1e-10
# The same seed trains the same model and draws the same base points, so each symmetrized
# draw is one of the 48 images (particle permutation, optional reflection of axis 0) of the
# plain run's draw, most of them not the identity; and q_G(g x) >= q(x)/48 (one term of the
# mixture), up to the difference between the forward (sampling) and reverse (log_q)
# integrations of the 4-step flow.
import itertools
xp = np.load(sys.argv[1] + "/samples.npy").reshape(-1, 4, 2)
lqp = np.load(sys.argv[1] + "/log_q.npy")
xs = x.reshape(-1, 4, 2)
moved = 0
for i in range(len(xs)):
    found = False
    for perm in itertools.permutations(range(4)):
        for sign in (1.0, -1.0):
            y = xp[i][list(perm)].copy()
            y[:, 0] *= sign
            if np.array_equal(y, xs[i]):
                found = True
                moved += perm != (0, 1, 2, 3) or sign < 0
                break
        if found:
            break
    assert found, i
assert moved > 0.9 * len(xs), moved
assert np.all(lq >= lqp - np.log(48.0) - 0.05), (lq - lqp + np.log(48.0)).min()
PY

expect_error() {  # $1: file, $2: text the one-line error must contain
  rm -rf "$T/bad"
  run "$1" --out "$T/bad" 2> "$T/err" && fail "accepted: $1"
  [ "$(wc -l < "$T/err")" -eq 1 ] && grep -qF "$2" "$T/err" || { cat "$T/err"; fail "error for $1 not one line with '$2'"; }
  grep -qF "$(basename "$1")" "$T/err" || { cat "$T/err"; fail "error for $1 does not name the file"; }
}
potential "$T/smc.json" '{"symmetrize": true, "smc": {}}'
expect_error "$T/smc.json" "generator.symmetrize"
cat > "$T/gauss.json" <<'JSON'
{ "type": "gaussian", "name": "g2", "parameters": { "mean": [0, 0], "std": [1, 1] },
  "generator": { "symmetrize": true, "iterations": 5 } }
JSON
expect_error "$T/gauss.json" "is not a particle system"
echo ok
