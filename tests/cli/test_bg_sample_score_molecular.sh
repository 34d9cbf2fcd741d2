#!/bin/bash
# bg-sample's score path on a molecule (alanine dipeptide): a score model on normalized
# internal coordinates, probability-flow samples decoded to Cartesian and reweighted. Checks
# the run contract (log w = −u − log q on the weighted rows, −∞ exactly on the rows the summary
# counts as outside the domain or of the wrong chirality), basin populations and the Ramachandran
# comparison in the summary, identical results for 1 and 2 threads and after reloading the model,
# and one clear line for a molecular score model given to a target without molecules.
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
P="$SRC/potentials/alanine_dipeptide_score_flow.json"
# 2000 frames of the shipped MD reference as training data (the run's own frames would need a
# replica-exchange run: minutes).
/usr/bin/python3 -c "
import numpy as np
x = np.load('$SRC/data/alanine_dipeptide/md_reference_positions.npy')
np.save('$T/frames.npy', x[::5][:2000].reshape(2000, -1))" || fail "cannot make the frames"
run() { "$BIN/bg-sample" --potential "$P" --data "$T/frames.npy" --iterations 100 --samples 300 -q "$@"; }
run --threads 2 --out "$T/a" 2> "$T/log" || { cat "$T/log"; fail "molecular score-flow run"; }
run --threads 1 --out "$T/b" 2> /dev/null || fail "molecular score-flow run, 1 thread"
for f in samples.npy log_q.npy log_weights.npy reduced_energies.npy; do
  cmp -s "$T/a/$f" "$T/b/$f" || fail "$f differs between 1 and 2 threads"
done
/usr/bin/python3 - "$T/a" <<'PY' || fail "molecular score-flow summary/arrays inconsistent"
import json, sys, numpy as np
d = sys.argv[1]
s = json.load(open(d + "/summary.json"))
x, lq, u, lw = (np.load(d + "/" + f) for f in ["samples.npy", "log_q.npy", "reduced_energies.npy", "log_weights.npy"])
assert x.shape == (300, 66), x.shape
m = s["molecular_generator"]
assert m["flow_dim"] == 60
zero = ~np.isfinite(lw)
# Every zero-weight row is counted, and only those (energies here are all finite).
assert np.all(np.isfinite(u)), "non-finite energies"
# A row may be both outside the domain and of the wrong chirality: the counts bound zero_weight.
assert zero.sum() == m["zero_weight"], (zero.sum(), m)
assert m["zero_weight"] <= m["outside_domain"] + m["wrong_chirality"], m
assert zero.sum() < 30, m  # torsions mapped to the line: no draw is lost at the cut
ok = ~zero
assert np.allclose(lw[ok], -u[ok] - lq[ok], rtol=0, atol=1e-9), "log w != -u - log q"
assert s["statistics"]["ess_fraction"] > 0
assert "2" in s["conformations"]["residues"] and "reference" in s["conformations"]
assert s["ramachandran_vs_reference"]["reference"].endswith("rex_reference_dihedrals.npy")
PY
"$BIN/bg-sample" --potential "$P" --model "$T/a/model.pt" --samples 300 --out "$T/again" -q 2> /dev/null \
  || fail "reload of a molecular score model"
cmp -s "$T/a/samples.npy" "$T/again/samples.npy" || fail "the reloaded model gives different samples"
cmp -s "$T/a/log_weights.npy" "$T/again/log_weights.npy" || fail "the reloaded model gives different weights"
"$BIN/bg-sample" --potential "$SRC/potentials/gaussian2d.json" --model "$T/a/model.pt" --allow-other-potential --out "$T/bad" > /dev/null 2> "$T/err"
rc=$?
[ "$rc" -eq 1 ] || fail "exit $rc for a molecular model on a 2-D target"
grep -q "a score model of a molecule" "$T/err" || { cat "$T/err"; fail "no clear error for a molecular model on a 2-D target"; }
[ "$(wc -l < "$T/err")" -eq 1 ] || { cat "$T/err"; fail "more than one error line"; }
[ -e "$T/bad" ] && fail "output written for a refused model"
"$BIN/bg-sample" --model "$T/a/model.pt" --evaluate "$T/frames.npy" --out "$T/bad" > /dev/null 2> "$T/err"
[ $? -eq 1 ] && grep -q "score model of a molecule" "$T/err" && [ "$(wc -l < "$T/err")" -eq 1 ] \
  || { cat "$T/err"; fail "--evaluate with a molecular score model not refused in one line"; }
echo "ok"
