#!/bin/bash
# bg-sample with "flow": "spline_coupling" on a 2-D two-mode Gaussian mixture (exact log Z = 0),
# trained by reverse KL from the energy alone: the run records the coupling architecture,
# its log Z estimate agrees with the exact value (z-score within 4), samples are identical for 1
# and 2 threads and after reloading model.pt, --evaluate gives the samples' own log q, and bad
# flow keys (or the HJB term, which a coupling flow does not have) give one line naming the file
# and the key, with a non-zero exit.
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
potential() {  # $1: file, $2: generator keys
  cat > "$1" <<JSON
{
  "type": "gaussian_mixture", "name": "two_modes_2d",
  "parameters": { "means": [[-1.5, 0.0], [1.5, 0.0]], "weights": [0.5, 0.5], "std": 0.4 },
  "generator": { "preset": "ot-rkl", "iterations": 200, "batch_size": 256, "learning_rate": 0.01,
                 "eval_every": 0, $2 }
}
JSON
}
potential "$T/p.json" '"alpha_hjb": 0, "flow": "spline_coupling", "coupling_layers": 4, "coupling_hidden": 32, "spline_bins": 8, "spline_bound": 4'
run() { "$BIN/bg-sample" --potential "$1" --samples 4000 -q "${@:2}"; }

run "$T/p.json" --threads 2 --out "$T/a2" 2> "$T/log" || { cat "$T/log"; fail "spline run"; }
run "$T/p.json" --threads 1 --out "$T/a1" 2>/dev/null || fail "spline run, 1 thread"
for f in samples.npy log_q.npy log_weights.npy; do
  cmp -s "$T/a1/$f" "$T/a2/$f" || fail "$f differs between 1 and 2 threads"
done
"$BIN/bg-sample" --potential "$T/p.json" --model "$T/a2/model.pt" --samples 4000 -q --out "$T/re" 2>/dev/null \
  || fail "reload"
for f in samples.npy log_q.npy; do cmp -s "$T/a2/$f" "$T/re/$f" || fail "$f differs after reloading model.pt"; done
"$BIN/bg-sample" --model "$T/a2/model.pt" --evaluate "$T/a2/samples.npy" --out "$T/ev" -q 2>/dev/null || fail "evaluate"
/usr/bin/python3 - "$T" <<'PY' || fail "spline run summary inconsistent"
import json, sys
import numpy as np
t = sys.argv[1]
s = json.load(open(t + "/a2/summary.json"))
g = s["generator"]
assert g["flow"] == "spline_coupling" and g["coupling"] == {"layers": 4, "hidden": 32, "depth": 2, "bins": 8, "bound": 4.0}, g
imp = s["importance"]
# z-score of log Z against the exact 0 with the delta-method se: |z| < 4 for an unbiased estimate.
assert abs(imp["log_z"]["z_score"]) < 4, imp["log_z"]
assert imp["ess_fraction"] > 0.5, imp["ess_fraction"]
lq = np.load(t + "/a2/log_q.npy")
ev = np.load(t + "/ev/log_q.npy")
assert np.max(np.abs(lq - ev)) < 1e-9, np.max(np.abs(lq - ev))
PY

expect_error() {  # $1: generator keys, $2: text the one-line error must contain
  potential "$T/bad.json" "$1"
  rm -rf "$T/bad"
  run "$T/bad.json" --out "$T/bad" 2> "$T/err" && fail "accepted: $1"
  [ "$(wc -l < "$T/err")" -eq 1 ] && grep -qF "$2" "$T/err" || { cat "$T/err"; fail "error for $1 not one line with '$2'"; }
  grep -qF "bad.json" "$T/err" || { cat "$T/err"; fail "error for $1 does not name the file"; }
}
expect_error '"alpha_hjb": 0, "flow": "realnvp"' 'generator.flow: is "realnvp"'
expect_error '"alpha_hjb": 0, "spline_bins": 4' "generator.spline_bins: needs flow"
expect_error '"alpha_hjb": 0, "flow": "spline_coupling", "spline_bins": 1' "generator.spline_bins is 1"
expect_error '"alpha_hjb": 0, "flow": "spline_coupling", "noise": 0.1' "deterministic map"
potential "$T/hjb.json" '"flow": "spline_coupling", "alpha_hjb": 0.05'
rm -rf "$T/bad"
run "$T/hjb.json" --out "$T/bad" 2> "$T/err" && fail "accepted alpha_hjb with a coupling flow"
[ "$(wc -l < "$T/err")" -eq 1 ] && grep -qF "no HJB residual" "$T/err" || { cat "$T/err"; fail "alpha_hjb error"; }
grep -qF "hjb.json" "$T/err" || { cat "$T/err"; fail "alpha_hjb error does not name the file"; }
[ -e "$T/bad" ] && fail "output written for alpha_hjb with a coupling flow"
echo "ok"
