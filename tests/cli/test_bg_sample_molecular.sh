#!/bin/bash
# bg-sample on alanine dipeptide (internal coordinates, trained on the shipped reference MD frames):
# tiny budget; checks the run directory, the weight bookkeeping (zero weight exactly
# for the samples outside the domain/torsion range/chirality), molecular outputs,
# and that the saved model (with its molecular space) reproduces the samples.
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
P="$SRC/potentials/alanine_dipeptide.json"
"$BIN/bg-sample" --potential "$P" --out "$T/run" --iterations 3 --samples 300 --threads 2 --no-progress \
  2> "$T/log" || { cat "$T/log"; fail "molecular run failed"; }
for f in samples.npy log_q.npy reduced_energies.npy log_weights.npy summary.json model.pt dihedrals.npy; do
  [ -s "$T/run/$f" ] || fail "missing $f"
done
/usr/bin/python3 - "$T/run" <<'PY' || fail "molecular summary/arrays inconsistent"
import json, sys, numpy as np
d = sys.argv[1]
s = json.load(open(d + "/summary.json"))
x, lq, u, lw = (np.load(d + "/" + f) for f in ["samples.npy", "log_q.npy", "reduced_energies.npy", "log_weights.npy"])
assert x.shape == (300, 66)
m = s["molecular_generator"]
assert m["flow_dim"] == 60 and m["data"]["frames"] == 10000  # the shipped 10 ns reference (generator.data)
zero = ~np.isfinite(lw)
assert zero.sum() >= m["zero_weight_domain_chirality"]
ok = np.isfinite(lw)
assert np.allclose(lw[ok], -u[ok] - lq[ok], atol=1e-9)
assert "molecular" in s
PY
"$BIN/bg-sample" --potential "$P" --model "$T/run/model.pt" --out "$T/again" --samples 300 --no-progress 2>/dev/null \
  || fail "reload failed"
cmp -s "$T/run/samples.npy" "$T/again/samples.npy" || fail "reloaded model gives different samples"
echo ok
