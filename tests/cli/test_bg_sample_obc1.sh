#!/bin/bash
# bg-sample with the shipped generator section of the OBC1 system (Amber ff96 + OBC1, CustomGBForce,
# CPU platform): trained on 2000 frames of a short md-reference run given with --data, instead of the
# section's own 2.5 ns MD; tiny budget. Checks that the section resolves to the conditional base with
# experts, that the weights are -u - log q, and that no sample has the wrong chirality.
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
P="$SRC/potentials/alanine_dipeptide_obc1.json"
"$BIN/md-reference" --potential "$P" --out "$T/md" --production-ns 0.05 --equilibration-ps 1 \
  --frame-interval-ps 0.025 --replicas 1 --threads 1 --quiet 2> "$T/mdlog" || { cat "$T/mdlog"; fail "md-reference failed"; }
"$BIN/bg-sample" --potential "$P" --data "$T/md/samples.npy" --out "$T/run" --iterations 2 --samples 400 --threads 2 \
  -q 2> "$T/log" || { cat "$T/log"; fail "OBC1 run failed"; }
/usr/bin/python3 - "$T/run" <<'PY' || fail "OBC1 summary/arrays inconsistent"
import json, sys, numpy as np
d = sys.argv[1]
s = json.load(open(d + "/summary.json"))
x, lq, u, lw = (np.load(d + "/" + f) for f in ["samples.npy", "log_q.npy", "reduced_energies.npy", "log_weights.npy"])
assert x.shape == (400, 66)
assert s["potential"]["name"] == "alanine_dipeptide_obc1"
m = s["molecular_generator"]
assert m["data"]["frames"] == 2000, m["data"]
assert m["base"] == "von_mises_mixture+conditional_gaussian", m["base"]
c = m["base_conditional"]
# Soft torsions are chosen by their spread in the data: phi, psi and the methyl rotors that turned
# within these 50 ps; every other coordinate is Gaussian given them.
assert c["experts"] and c["joint_columns"] == [41, 42] and c["hard_columns"] + len(c["soft_columns"]) == 60, c
assert s["options"]["training"]["learning_rate"] == 0.001 and s["options"]["training"]["iterations"] == 2
assert m["wrong_chirality"] == 0
ok = np.isfinite(lw)
assert ok.sum() >= 390, ok.sum()
assert np.allclose(lw[ok], -u[ok] - lq[ok], atol=1e-9)
PY
echo "ok"
