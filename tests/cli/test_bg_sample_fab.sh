#!/bin/bash
# bg-sample with generator.fab (FAB: alpha = 2 divergence with AIS toward p^2/q, from the energy
# alone) on a 1-D two-mode Gaussian mixture: the run records the options, one row per iteration
# and the flow-only checks in summary.json, counts every AIS evaluation, its samples are identical
# for 1 and 2 threads, and bad fab keys (or data, or annealing, given with fab) give one line
# naming the file and the key, with a non-zero exit.
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
potential() {  # $1: file, $2: the fab object, $3: further generator keys
  cat > "$1" <<JSON
{
  "type": "gaussian_mixture", "name": "two_modes_1d",
  "parameters": { "means": [[-3.0], [3.0]], "weights": [0.7, 0.3], "std": 0.5 },
  "generator": { "preset": "ot-bg", "width": 8, "steps": 4, "sample_steps": 8, "scale": 3.0,
                 "iterations": 40, "batch_size": 128, "learning_rate": 0.01, "eval_every": 0,
                 ${3:-}"fab": $2 }
}
JSON
}
potential "$T/p.json" '{"iterations": 3, "particles": 64, "ais_rungs": 2, "mala_steps": 1, "steps_per_batch": 5,
                         "buffer_batches": 2, "batch_size": 64, "check_every": 0, "check_samples": 200}'
run() { "$BIN/bg-sample" --potential "$1" --samples 1000 -q "${@:2}"; }

run "$T/p.json" --threads 2 --out "$T/a2" 2> "$T/log" || { cat "$T/log"; fail "fab run"; }
run "$T/p.json" --threads 1 --out "$T/a1" 2>/dev/null || fail "fab run, 1 thread"
for f in samples.npy log_q.npy log_weights.npy; do
  cmp -s "$T/a1/$f" "$T/a2/$f" || fail "$f differs between 1 and 2 threads"
done
/usr/bin/python3 - "$T/a2" <<'PY' || fail "fab run summary inconsistent"
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
f = s["training"]["fab"]
assert f["options"]["particles"] == 64 and f["options"]["buffer_batches"] == 2, f["options"]
rows = f["result"]["iterations"]
assert [r["iteration"] for r in rows] == [0, 1, 2], rows
assert [r["buffer_rows"] for r in rows] == [64, 128, 128], rows
assert all(0 < r["ais_ess_fraction"] <= 1 and r["energy_evaluations"] == 64 * 3 for r in rows), rows
checks = f["result"]["checks"]
assert [c["iteration"] for c in checks] == [0, 3] and all(c["samples"] == 200 for c in checks), checks
# Stage 1 (40 x 128), three AIS runs of 64 particles (rung 0 and 2 rungs x 1 move) and two checks.
assert s["training"]["energy_evaluations"] == 40 * 128 + 3 * 64 * 3 + 2 * 200, s["training"]["energy_evaluations"]
assert s["training"]["iterations"] == 40 + 3 * 5
assert not any("reverse KL only" in w for w in s["warnings"]), s["warnings"]
PY

expect_error() {  # $1: fab object, $2: text the one-line error must contain, $3: generator keys, $4..: flags
  potential "$T/bad.json" "$1" "$3"
  rm -rf "$T/bad"
  run "$T/bad.json" --out "$T/bad" "${@:4}" 2> "$T/err" && fail "accepted: $1"
  [ "$(wc -l < "$T/err")" -eq 1 ] && grep -qF "$2" "$T/err" || { cat "$T/err"; fail "error for $1 not one line with '$2'"; }
  grep -qF "bad.json" "$T/err" || { cat "$T/err"; fail "error for $1 does not name the file"; }
}
expect_error '{"particles": 1}' "generator.fab.particles is 1" ""
expect_error '{"ais_rungs": 0}' "generator.fab.ais_rungs is 0" ""
expect_error '{"paticles": 3}' "did you mean 'particles'" ""
expect_error '3' "generator.fab: must be an object" ""
expect_error '{"iterations": 2}' "generator.fab: and \"annealing\" are two trainings" '"annealing": {"t_high": 4}, '
/usr/bin/python3 -c "import numpy as np; np.save('$T/data.npy', np.zeros((10, 1)))"
expect_error '{"iterations": 2}' "generator.fab: trains from the energy alone" "" --data "$T/data.npy"
echo "ok"
