#!/bin/bash
# bg-sample with generator.annealing (temperature-annealed training from the energy alone) on a
# 1-D two-mode Gaussian mixture (two ladder rungs and one refinement rung at tau 1): the run
# records the options and one ESS per rung in summary.json, its samples are identical for 1 and
# 2 threads, and bad annealing keys (or data given with annealing) give one line naming the file
# and the key, with a non-zero exit.
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
potential() {  # $1: file, $2: the annealing object
  cat > "$1" <<JSON
{
  "type": "gaussian_mixture", "name": "two_modes_1d",
  "parameters": { "means": [[-3.0], [3.0]], "weights": [0.7, 0.3], "std": 0.5 },
  "generator": { "preset": "ot-bg", "width": 8, "steps": 4, "sample_steps": 8, "scale": 3.0,
                 "iterations": 40, "batch_size": 128, "learning_rate": 0.01, "eval_every": 0,
                 "annealing": $2 }
}
JSON
}
potential "$T/p.json" '{"t_high": 12, "rungs": 2, "samples_per_rung": 256, "steps_per_rung": 10, "smoothing": "truncate",
                         "refine_rungs": 1, "refine_steps_per_rung": 5}'
run() { "$BIN/bg-sample" --potential "$1" --samples 1000 -q "${@:2}"; }

run "$T/p.json" --threads 2 --out "$T/a2" 2> "$T/log" || { cat "$T/log"; fail "annealed run"; }
run "$T/p.json" --threads 1 --out "$T/a1" 2>/dev/null || fail "annealed run, 1 thread"
for f in samples.npy log_q.npy log_weights.npy; do
  cmp -s "$T/a1/$f" "$T/a2/$f" || fail "$f differs between 1 and 2 threads"
done
/usr/bin/python3 - "$T/a2" <<'PY' || fail "annealed run summary inconsistent"
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
a = s["training"]["annealing"]
assert a["options"]["ladder"][0] == 12 and a["options"]["ladder"][-1] == 1.0, a["options"]
assert a["options"]["smoothing"] == "truncate"
rungs = a["result"]["rungs"]
assert [r["rung"] for r in rungs] == [1, 2, 3] and rungs[1]["tau"] == 1.0, rungs
assert rungs[2]["tau"] == rungs[2]["tau_model"] == 1.0 and rungs[2]["training_iterations"] == 5, rungs  # refinement
assert all(0 < r["ess_fraction"] <= 1 and r["samples"] == 256 for r in rungs), rungs
# Stage 1 (40 x 128), the three rungs' draws and the two checks (5 x 256).
assert s["training"]["energy_evaluations"] == 40 * 128 + 5 * 256, s["training"]["energy_evaluations"]
assert a["result"]["stage1"]["check"]["tau"] == 12 and a["result"]["stage1"]["check"]["rung"] == 0
assert s["training"]["iterations"] == 40 + 2 * 10 + 5
assert not any("reverse KL only" in w for w in s["warnings"]), s["warnings"]
PY

expect_error() {  # $1: annealing object, $2: text the one-line error must contain, $3..: flags
  potential "$T/bad.json" "$1"
  rm -rf "$T/bad"
  run "$T/bad.json" --out "$T/bad" "${@:3}" 2> "$T/err" && fail "accepted: $1"
  [ "$(wc -l < "$T/err")" -eq 1 ] && grep -qF "$2" "$T/err" || { cat "$T/err"; fail "error for $1 not one line with '$2'"; }
  grep -qF "bad.json" "$T/err" || { cat "$T/err"; fail "error for $1 does not name the file"; }
}
expect_error '{"t_high": 0.5}' "generator.annealing.t_high is 0.5"
expect_error '{"rungs": 0}' "generator.annealing.rungs is 0"
expect_error '{"t_high": 1, "rungs": 0}' "generator.annealing.refine_rungs is 0"
expect_error '{"smoothing": "clip"}' "generator.annealing.smoothing"
expect_error '{"step_per_rung": 3}' "did you mean 'steps_per_rung'"
expect_error '3' "generator.annealing: must be an object"
/usr/bin/python3 -c "import numpy as np; np.save('$T/data.npy', np.zeros((10, 1)))"
expect_error '{"t_high": 4}' "generator.annealing: trains from the energy alone" --data "$T/data.npy"
echo "ok"
