#!/bin/bash
# bg-sample with generator.annealing (temperature-annealed training from the energy alone) on a
# 1-D two-mode Gaussian mixture (two ladder rungs and one refinement rung at tau 1): the run
# records the options and one ESS per rung in summary.json, its samples are identical for 1 and
# 2 threads, and bad annealing keys (or data given with annealing) give one line naming the file
# and the key, with a non-zero exit. generator.refinement (weighted forward KL on fresh draws after
# the training) on the same target: its rungs in summary.json, identical at 1 and 2 threads, and
# refused beside annealing.
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

# Refinement after a plain reverse-KL training (no annealing).
cat > "$T/r.json" <<JSON
{
  "type": "gaussian_mixture", "name": "two_modes_1d",
  "parameters": { "means": [[-3.0], [3.0]], "weights": [0.7, 0.3], "std": 0.5 },
  "generator": { "preset": "ot-bg", "width": 8, "steps": 4, "sample_steps": 8, "scale": 3.0,
                 "iterations": 40, "batch_size": 128, "learning_rate": 0.01, "eval_every": 0,
                 "refinement": {"rungs": 2, "samples_per_rung": 256, "steps_per_rung": 5, "learning_rate": 0.005} }
}
JSON
run "$T/r.json" --threads 2 --out "$T/r2" 2> "$T/log" || { cat "$T/log"; fail "refinement run"; }
run "$T/r.json" --threads 1 --out "$T/r1" 2>/dev/null || fail "refinement run, 1 thread"
for f in samples.npy log_weights.npy; do
  cmp -s "$T/r1/$f" "$T/r2/$f" || fail "refinement: $f differs between 1 and 2 threads"
done
/usr/bin/python3 - "$T/r2" <<'PY' || fail "refinement run summary inconsistent"
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
f = s["training"]["refinement"]
assert f["options"]["rungs"] == 2 and f["options"]["learning_rate"] == 0.005, f["options"]
rungs = f["result"]["rungs"]
assert [r["rung"] for r in rungs] == [1, 2] and all(r["tau"] == 1.0 and r["training_iterations"] == 5 for r in rungs)
assert f["result"]["final"]["rung"] == 3 and 0 < f["result"]["final"]["ess_fraction"] <= 1
# Reverse KL (40 x 128), the two rungs' draws and the final check (3 x 256).
assert s["training"]["energy_evaluations"] == 40 * 128 + 3 * 256, s["training"]["energy_evaluations"]
assert f["result"]["energy_evaluations"] == 3 * 256
assert s["training"]["iterations"] == 40 + 2 * 5
PY
# --refine: the same rungs on a loaded model. Refining the unrefined model of a run without the
# section reproduces the run that refined after its training (same streams, same steps).
/usr/bin/python3 - "$T/r.json" "$T/plain.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1])); del p["generator"]["refinement"]
json.dump(p, open(sys.argv[2], "w"))
PY
run "$T/plain.json" --threads 2 --out "$T/p0" 2>/dev/null || fail "run without refinement"
run "$T/r.json" --model "$T/p0/model.pt" --refine --threads 2 --out "$T/rr" 2> "$T/log" || { cat "$T/log"; fail "--refine"; }
cmp -s "$T/rr/samples.npy" "$T/r2/samples.npy" || fail "--refine of the trained model differs from refining after training"
[ -s "$T/rr/training_loss.png" ] || fail "--refine wrote no training plot of its rungs"
/usr/bin/python3 - "$T/rr" <<'PY' || fail "--refine summary inconsistent"
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
assert [r["rung"] for r in s["training"]["refinement"]["result"]["rungs"]] == [1, 2]
assert s["training"]["energy_evaluations"] == 3 * 256 and s["training"]["iterations"] == 2 * 5
PY
run "$T/plain.json" --model "$T/p0/model.pt" --refine --out "$T/rr2" 2> "$T/err" && fail "--refine without the section"
[ "$(wc -l < "$T/err")" -eq 1 ] && grep -qF "generator.refinement" "$T/err" || { cat "$T/err"; fail "--refine without the section: not one line"; }
run "$T/r.json" --refine --out "$T/rr3" 2> "$T/err" && fail "--refine without --model"
[ "$(wc -l < "$T/err")" -eq 1 ] && grep -qF -- "--refine" "$T/err" || { cat "$T/err"; fail "--refine without --model: not one line"; }
/usr/bin/python3 - "$T/r.json" "$T/rbad.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["generator"]["annealing"] = {"t_high": 4, "rungs": 2}
json.dump(p, open(sys.argv[2], "w"))
PY
run "$T/rbad.json" --out "$T/rbad" 2> "$T/err" && fail "refinement beside annealing accepted"
[ "$(wc -l < "$T/err")" -eq 1 ] && grep -qF "generator.refinement" "$T/err" && grep -qF "rbad.json" "$T/err" \
  || { cat "$T/err"; fail "refinement + annealing: not one line naming the file and the key"; }
[ -e "$T/rbad" ] && fail "output written for refinement + annealing"
sed 's/"rungs": 2, "samples_per_rung"/"rungs": 0, "samples_per_rung"/' "$T/r.json" > "$T/rbad2.json"
run "$T/rbad2.json" --out "$T/rbad2" 2> "$T/err" && fail "refinement.rungs 0 accepted"
[ "$(wc -l < "$T/err")" -eq 1 ] && grep -qF "generator.refinement.rungs is 0" "$T/err" \
  || { cat "$T/err"; fail "refinement.rungs 0: not one line naming the key"; }
echo "ok"
