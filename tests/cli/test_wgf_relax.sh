#!/usr/bin/env bash
# CLI tests of wgf-relax: run-directory contract (numpy interop), bit-identical
# samples for --threads 1 vs 2, and bad input (one line on stderr, non-zero exit,
# an earlier good run left intact). Usage: bash test_wgf_relax.sh BIN_DIR SOURCE_DIR
set -uo pipefail
BIN=$1
SRC=$2
W="$BIN/wgf-relax"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }

cat >"$T/g3.json" <<'JSON'
{"type": "gaussian", "name": "g3", "parameters": {"mean": [1.0, -1.0, 0.5], "std": [0.5, 2.0, 1.0]},
 "sampler": {"particles": 500, "steps": 300, "warmup": 100, "params": {"baoab": {"friction": 2.0}}}}
JSON

# 1. Threads 1 vs 2: bit-identical samples, energies and frames, for every flow.
for flow in ula mala baoab; do
  "$W" --potential "$T/g3.json" --flow $flow --out "$T/t1_$flow" --threads 1 --seed 7 --thin 50 -q --no-plots >/dev/null || err "$flow threads 1 failed"
  "$W" --potential "$T/g3.json" --flow $flow --out "$T/t2_$flow" --threads 2 --seed 7 --thin 50 -q --no-plots >/dev/null || err "$flow threads 2 failed"
  for f in samples.npy reduced_energies.npy frames.npy; do
    cmp -s "$T/t1_$flow/$f" "$T/t2_$flow/$f" || err "$flow: $f differs between --threads 1 and 2"
  done
done
# The same for mala-precond (its second warm-up phase starts on fresh streams).
for t in 1 2; do
  "$W" --potential "$T/g3.json" --flow mala-precond --out "$T/pc_$t" --threads $t --seed 7 --thin 50 -q --no-plots >/dev/null || err "mala-precond threads $t failed"
done
for f in samples.npy reduced_energies.npy frames.npy; do
  cmp -s "$T/pc_1/$f" "$T/pc_2/$f" || err "mala-precond: $f differs between --threads 1 and 2"
done
# summary.json says whether the flow's particles interact (iw-diag reads the key): the
# independent chains of mala and mala-precond do not. (svgd: test_particle_flows.sh.)
/usr/bin/python3 - "$T" <<'PY' || err "interacting key"
import json, sys
for run in ["t1_mala", "pc_1"]:
    s = json.load(open(sys.argv[1] + "/" + run + "/summary.json"))
    assert s["interacting"] is False, (run, s.get("interacting"))
assert json.load(open(sys.argv[1] + "/pc_1/summary.json"))["statistics"]["flow"] == "mala-precond"
PY
# --help lists every flow of the flow table with its description.
"$W" --help >"$T/help.txt" || err "--help failed"
grep -Eq "^  svgd +interacting +Stein variational gradient descent" "$T/help.txt" || err "--help lacks the svgd row"
grep -Eq "^  mala +independent +Metropolis-adjusted Langevin" "$T/help.txt" || err "--help lacks the mala row"
grep -Eq "^  mala-precond +independent +MALA with a diagonal preconditioner" "$T/help.txt" || err "--help lacks mala-precond"
# A different seed gives different samples (the comparison above has power).
"$W" --potential "$T/g3.json" --flow mala --out "$T/t3" --threads 2 --seed 8 -q --no-plots >/dev/null
cmp -s "$T/t1_mala/samples.npy" "$T/t3/samples.npy" && err "seed 7 and 8 gave identical samples"

# 2. Contract: numpy reads the arrays; summary.json has the documented keys; the
#    sampler section and --param reach the flow.
"$W" --potential "$T/g3.json" --flow baoab --out "$T/good" --param mass=2 --thin 100 -q >/dev/null || err "good run failed"
/usr/bin/python3 - "$T/good" <<'PY' || err "contract check failed"
import json, sys, numpy as np
d = sys.argv[1]
x = np.load(d + "/samples.npy"); u = np.load(d + "/reduced_energies.npy"); f = np.load(d + "/frames.npy")
s = json.load(open(d + "/summary.json"))
assert x.shape == (500, 3) and x.dtype == np.float64, x.shape
assert u.shape == (500,) and f.shape == (3, 500, 3), (u.shape, f.shape)
assert np.array_equal(f[-1], x)
for k in ["format_version", "tool", "potential", "options", "seed", "threads", "counts", "timings",
          "statistics", "trace", "files", "plots", "notes"]:
    assert k in s, k
assert s["tool"] == "wgf-relax" and s["counts"]["non_finite_energies"] == 0
assert s["options"]["flow_params"] == {"friction": 2.0, "mass": 2}, s["options"]["flow_params"]
assert s["statistics"]["mass"] == 2 and s["statistics"]["friction"] == 2.0
assert len(s["trace"]["step"]) == len(s["trace"]["mean_energy"]) > 10
# u matches the Gaussian energy of the samples
mu = np.array([1.0, -1.0, 0.5]); sd = np.array([0.5, 2.0, 1.0])
assert np.allclose(u, 0.5 * (((x - mu) / sd) ** 2).sum(1))
PY

# 3. Bad input: exactly one line on stderr, non-zero exit, the good run untouched.
before=$(cd "$T/good" && sha1sum samples.npy summary.json)
expect_error() {  # name, expected substring, args...
  local name=$1 pattern=$2
  shift 2
  "$W" "$@" >"$T/out.txt" 2>"$T/err.txt"
  local rc=$?
  local lines
  lines=$(wc -l <"$T/err.txt")
  [[ $rc -ne 0 ]] || err "$name: exit status 0"
  [[ $lines -eq 1 ]] || err "$name: $lines lines on stderr: $(cat "$T/err.txt")"
  grep -q -- "$pattern" "$T/err.txt" || err "$name: stderr lacks '$pattern': $(cat "$T/err.txt")"
  local now
  now=$(cd "$T/good" && sha1sum samples.npy summary.json)
  [[ "$now" == "$before" ]] || err "$name: the earlier run at --out was modified"
  ls -d "$T"/good.staging-* >/dev/null 2>&1 && err "$name: staging directory left behind"
}
printf '{"type": "gaussian", "parameters": {"mean": [0.0]' >"$T/malformed.json"
expect_error "malformed JSON" "malformed.json" --potential "$T/malformed.json" --out "$T/good" -q
printf '{"type": "gaussian", "paramters": {"mean": [0.0]}}' >"$T/typo.json"
expect_error "unknown key" "did you mean 'parameters'" --potential "$T/typo.json" --out "$T/good" -q
printf '{"type": "gaussian", "parameters": {"mean": [0.0]}, "sampler": {"stpes": 10}}' >"$T/typo2.json"
expect_error "unknown sampler key" "did you mean 'steps'" --potential "$T/typo2.json" --out "$T/good" -q
expect_error "unknown flow" "did you mean 'mala'" --potential "$T/g3.json" --flow mal --out "$T/good" -q
expect_error "unknown flow parameter" "did you mean 'friction'" --potential "$T/g3.json" --flow baoab --param fricton=1 --out "$T/good" -q
expect_error "negative step size" "step-size is -0.1" --potential "$T/g3.json" --step-size -0.1 --out "$T/good" -q
expect_error "zero particles" "particles is 0" --potential "$T/g3.json" --particles 0 --out "$T/good" -q
expect_error "bad flag value" "particles" --potential "$T/g3.json" --particles many --out "$T/good" -q
/usr/bin/python3 -c "
import numpy as np
np.save('$T/wrong_cols.npy', np.zeros((10, 2)))
np.save('$T/complex.npy', np.zeros((10, 3), dtype=np.complex128))
a = np.zeros((10, 3)); a[4, 1] = np.nan; np.save('$T/nan.npy', a)
np.save('$T/ok.npy', np.ones((10, 3), dtype=np.float32))
"
expect_error "wrong .npy shape" "wrong_cols.npy" --potential "$T/g3.json" --init "$T/wrong_cols.npy" --out "$T/good" -q
expect_error "wrong .npy dtype" "complex.npy" --potential "$T/g3.json" --init "$T/complex.npy" --out "$T/good" -q
expect_error "non-finite init" "non-finite" --potential "$T/g3.json" --init "$T/nan.npy" --out "$T/good" -q
expect_error "init/particles mismatch" "has 10 rows" --potential "$T/g3.json" --init "$T/ok.npy" --particles 11 --out "$T/good" -q
touch "$T/afile"
expect_error "unwritable --out" "afile" --potential "$T/g3.json" --out "$T/afile/run" -q
expect_error "missing potential" "nope.json" --potential "$T/nope.json" --out "$T/good" -q
# Non-finite energies: all of them → error; some → one warning line, counted in summary.json.
/usr/bin/python3 -c "
import numpy as np
np.save('$T/dw4_zeros.npy', np.zeros((8, 8)))
a = np.zeros((8, 8)); a[4:] = [0, 0, 3, 0, 0, 3, 3, 3]; np.save('$T/dw4_half.npy', a)
"
expect_error "all energies non-finite" "non-finite" --potential "$SRC/potentials/dw4.json" --init "$T/dw4_zeros.npy" --out "$T/good" -q
"$W" --potential "$SRC/potentials/dw4.json" --init "$T/dw4_half.npy" --out "$T/half" --steps 20 --no-plots >/dev/null 2>"$T/err.txt" || err "half non-finite run failed"
grep -q "warning: 4 of 8" "$T/err.txt" || err "no warning for 4 of 8 non-finite: $(cat "$T/err.txt")"
/usr/bin/python3 -c "
import json, numpy as np
s = json.load(open('$T/half/summary.json'))
assert s['counts']['non_finite_energies'] == 4, s['counts']
assert s['counts']['non_finite_evaluations'] > 0
u = np.load('$T/half/reduced_energies.npy'); assert np.isinf(u).sum() == 4 and np.isfinite(u).sum() == 4
" || err "non-finite counts"
# float32 --init is accepted and its rows set the particle count.
"$W" --potential "$T/g3.json" --init "$T/ok.npy" --out "$T/from_init" --steps 5 --warmup 0 -q --no-plots >/dev/null || err "--init ok.npy failed"
/usr/bin/python3 -c "import numpy as np; assert np.load('$T/from_init/samples.npy').shape == (10, 3)" || err "--init rows"
# Molecules start from their reference structure (PDB) by default, and get the
# molecular outputs (trajectory, Ramachandran histogram and plot).
"$W" --potential "$SRC/potentials/alanine_dipeptide_vacuum.json" --flow mala --particles 8 --steps 30 \
  --out "$T/ala" -q >/dev/null 2>"$T/err.txt" || err "molecular default init failed: $(cat "$T/err.txt")"
for f in samples.npy trajectory.dcd topology.pdb dihedrals.npy; do
  [ -f "$T/ala/$f" ] || err "molecular run lacks $f"
done
/usr/bin/python3 -c "
import json, numpy as np
s = json.load(open('$T/ala/summary.json'))
assert s['counts']['non_finite_energies'] == 0, s['counts']
assert 'reference' in s['options']['init'], s['options']['init']
u = np.load('$T/ala/reduced_energies.npy'); assert np.all(np.isfinite(u)) and u.max() < 0, u
" || err "molecular run summary"
exit $fail
