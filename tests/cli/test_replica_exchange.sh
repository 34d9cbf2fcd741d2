#!/usr/bin/env bash
# replica-exchange: a short run writes the run directory; the result does not depend
# on --threads; a run killed (SIGKILL) and continued with --resume equals the
# uninterrupted run byte for byte; bad input gives one clear line and a non-zero exit
# without leaving output behind.
# Usage: bash test_replica_exchange.sh BIN_DIR SOURCE_DIR
set -uo pipefail
BIN=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
POT="$SRC/potentials/alanine_dipeptide_vacuum.json"
RUN=(--potential "$POT" --temperatures 300,340,385 --equilibration-ps 1 --exchange-interval-ps 0.1 --seed 5 --quiet)

# 1. A short run: 10 ps per replica, a frame every 0.2 ps (50 frames per temperature).
"$BIN/replica-exchange" "${RUN[@]}" --out "$TMP/run" --production-ns 0.01 --frame-interval-ps 0.2 --threads 1 \
  >"$TMP/out.txt" 2>&1 || fail "replica-exchange exited non-zero: $(cat "$TMP/out.txt")"
for f in samples.npy reduced_energies.npy potential_energies.npy temperatures.npy frames_by_temperature.npy \
         energies_by_temperature.npy swap_attempts.npy swap_acceptance.npy replica_states.npy summary.json \
         mixing.png trajectory.dcd topology.pdb dihedrals.npy ramachandran_histogram.npy; do
  [[ -s "$TMP/run/$f" ]] || fail "missing $f"
done
[[ ! -e "$TMP/run.checkpoint.rex" ]] || fail "checkpoint left behind after a finished run"
/usr/bin/python3 - "$TMP/run" <<'EOF' || fail "run directory contents"
import json, sys, numpy as np
run = sys.argv[1]
s = json.load(open(run + "/summary.json"))
assert s["tool"] == "replica-exchange" and s["counts"]["frames"] == 50, s["counts"]
assert s["counts"]["exchanges"] == 110 and s["counts"]["non_finite_replicas"] == 0
t = np.load(run + "/temperatures.npy"); assert list(t) == [300, 340, 385], t
x = np.load(run + "/samples.npy"); fr = np.load(run + "/frames_by_temperature.npy")
e = np.load(run + "/energies_by_temperature.npy"); u = np.load(run + "/reduced_energies.npy")
assert fr.shape == (3, 50, 66) and e.shape == (3, 50) and np.array_equal(fr[0], x)
assert np.array_equal(np.load(run + "/potential_energies.npy"), e[0])
assert np.allclose(u, e[0] / (0.0083144626 * 300.0), rtol=1e-9)
n = np.load(run + "/swap_attempts.npy"); a = np.load(run + "/swap_acceptance.npy")
assert n[0, 1] == 50 and n[1, 2] == 50 and n[0, 2] == 0 and np.isnan(a[0, 2]), n  # even/odd: 55 + 55 attempts, 50 + 50 in production
st = s["statistics"]
assert abs(st["neighbor_acceptance"][0] - a[0, 1]) < 1e-12 and 0 < a[0, 1] <= 1
h = np.load(run + "/replica_states.npy")
assert h.shape == (100, 3) and all(sorted(r) == [0, 1, 2] for r in h)
assert s["plots"]["mixing.png"] == "ok" or "gnuplot" in s["plots"]["mixing.png"]
assert len(st["per_temperature"]) == 3 and s["molecular"]["frames"] == 50
EOF

# 2. --threads 2 gives the same bytes.
"$BIN/replica-exchange" "${RUN[@]}" --out "$TMP/run2" --production-ns 0.01 --frame-interval-ps 0.2 --threads 2 \
  >/dev/null 2>&1 || fail "run with --threads 2"
for f in frames_by_temperature.npy energies_by_temperature.npy replica_states.npy swap_attempts.npy swap_acceptance.npy; do
  cmp -s "$TMP/run/$f" "$TMP/run2/$f" || fail "--threads 2 changed $f"
done

# 3. Kill with SIGKILL after the first checkpoint, then --resume: same bytes as a run
#    never interrupted (40 ps per replica, a checkpoint every 20 exchanges).
LONG=(--production-ns 0.04 --frame-interval-ps 0.1 --checkpoint-exchanges 20)
"$BIN/replica-exchange" "${RUN[@]}" "${LONG[@]}" --out "$TMP/full" --threads 2 >/dev/null 2>&1 || fail "uninterrupted run"
"$BIN/replica-exchange" "${RUN[@]}" "${LONG[@]}" --out "$TMP/cut" --threads 2 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 400); do
  [[ -e "$TMP/cut.checkpoint.rex" ]] && break
  sleep 0.02
done
kill -9 "$pid" 2>/dev/null && killed=1 || killed=0
wait "$pid" 2>/dev/null
if [[ $killed -eq 1 && ! -d "$TMP/cut" ]]; then
  [[ -e "$TMP/cut.checkpoint.rex" ]] || fail "no checkpoint after the kill"
  "$BIN/replica-exchange" "${RUN[@]}" "${LONG[@]}" --out "$TMP/cut" --threads 1 --resume >"$TMP/resume.txt" 2>&1 ||
    fail "--resume: $(cat "$TMP/resume.txt")"
  /usr/bin/python3 -c "import json,sys; s=json.load(open('$TMP/cut/summary.json')); sys.exit(0 if s['statistics'].get('resumed_at_exchange', 0) > 0 else 1)" ||
    fail "summary does not say the run was resumed"
  ls "$TMP" | grep -q "cut.staging" && fail "staging directory of the killed run left behind"
else
  echo "note: the run finished before it could be killed; resume not exercised"
fi
for f in samples.npy frames_by_temperature.npy energies_by_temperature.npy replica_states.npy swap_attempts.npy \
         swap_acceptance.npy reduced_energies.npy; do
  cmp -s "$TMP/full/$f" "$TMP/cut/$f" || fail "killed + resumed run differs in $f"
done

# 4. Bad input: one line naming the flag or field, non-zero exit, no output directory.
expect_error() {  # name, expected substring, arguments...
  local name=$1 want=$2
  shift 2
  local out="$TMP/bad_$name"
  "$BIN/replica-exchange" --out "$out" --quiet "$@" >"$TMP/err.txt" 2>&1
  local rc=$?
  [[ $rc -ne 0 ]] || fail "$name: exit code 0"
  [[ $(wc -l <"$TMP/err.txt") -eq 1 ]] || fail "$name: expected one line, got: $(cat "$TMP/err.txt")"
  grep -qF -- "$want" "$TMP/err.txt" || fail "$name: message lacks '$want': $(cat "$TMP/err.txt")"
  [[ ! -e "$out" ]] || fail "$name: output directory was created"
  ls "$TMP" | grep -q "bad_$name.staging" && fail "$name: staging directory left behind"
  return 0
}
expect_error no_ladder "--temperatures: no temperature ladder" --potential "$POT"
expect_error descending "temperatures: must be strictly ascending" --potential "$POT" --temperatures 300,290
expect_error not_number "--temperatures: 'abc' is not a number" --potential "$POT" --temperatures 300,abc
expect_error one_replica "replicas: is 1" --potential "$POT" --t-max 400 --replicas 1
expect_error swaps "unknown swap scheme 'all'" --potential "$POT" --temperatures 300,320 --swaps all
expect_error frame "frame_interval_ps: 1.5 ps is not a whole multiple of the exchange interval" \
  --potential "$POT" --temperatures 300,320 --frame-interval-ps 1.5
expect_error resume "--resume: no checkpoint at" --potential "$POT" --temperatures 300,320 --resume
expect_error not_openmm "needs an OpenMM potential" --potential "$SRC/potentials/gaussian2d.json" --temperatures 1,2
expect_error no_file "cannot open" --potential "$TMP/nonexistent.json" --temperatures 300,320
echo "ok"
