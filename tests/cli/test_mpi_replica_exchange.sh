#!/usr/bin/env bash
# replica-exchange over MPI ranks: `mpirun -np 2` (replicas split 2 + 1 over the ranks)
# writes the same run directory, byte for byte, as one process — every .npy, and
# summary.json without the fields that say how it ran (timings, threads, ranks,
# md_steps_per_second, OpenMM contexts created) — for 1 and 2 threads per rank;
# checkpoints written by two ranks resume on one, and a checkpoint of one process
# resumes on two ranks, to the bytes of the uninterrupted run. Registered only when boltzlab is built with MPI.
# Usage: bash test_mpi_replica_exchange.sh BIN_DIR SOURCE_DIR
set -uo pipefail
BIN=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
source "$SRC/tests/cli/mpi_common.sh"
POT="$SRC/potentials/alanine_dipeptide_vacuum.json"
RUN=(--potential "$POT" --temperatures 300,340,385 --equilibration-ps 0.5 --exchange-interval-ps 0.1 --seed 5 --quiet
     --production-ns 0.004 --frame-interval-ps 0.2)

# 1. One process (no launcher) is the reference.
"$BIN/replica-exchange" "${RUN[@]}" --out "$TMP/one" --threads 1 >"$TMP/one.txt" 2>&1 ||
  fail "one process: $(cat "$TMP/one.txt")"

# 2. Two ranks, 1 and 2 threads each: the same bytes.
for threads in 1 2; do
  timeout 120 "${MPIRUN[@]}" -np 2 "$BIN/replica-exchange" "${RUN[@]}" --out "$TMP/np2_t$threads" --threads $threads \
    >"$TMP/np2.txt" 2>&1 || fail "mpirun -np 2 --threads $threads: $(cat "$TMP/np2.txt")"
  same_run_directory "$TMP/one" "$TMP/np2_t$threads" || fail "mpirun -np 2 --threads $threads differs from one process"
  grep -q '"ranks": 2' "$TMP/np2_t$threads/summary.json" || fail "summary.json does not record 2 ranks"
done
[[ $(grep -c "^replica-exchange: wrote " "$TMP/np2.txt") -eq 1 ]] || fail "not one verdict line: $(cat "$TMP/np2.txt")"

# 3. Checkpoints gathered from two ranks: a run killed after its first checkpoint and
#    resumed on one process equals the uninterrupted run; and the other way round.
LONG=(--potential "$POT" --temperatures 300,340,385 --equilibration-ps 0.5 --exchange-interval-ps 0.1 --seed 5 --quiet
      --production-ns 0.02 --frame-interval-ps 0.1 --checkpoint-exchanges 10)
"$BIN/replica-exchange" "${LONG[@]}" --out "$TMP/full" --threads 2 >/dev/null 2>&1 || fail "uninterrupted run"
resume_after_kill() {  # $1: launcher of the killed run ("mpi" or "one"), $2: of the resumed run, $3: name
  local out="$TMP/$3" pid killed
  if [[ $1 == mpi ]]; then
    "${MPIRUN[@]}" -np 2 "$BIN/replica-exchange" "${LONG[@]}" --out "$out" --threads 1 >/dev/null 2>&1 &
  else
    "$BIN/replica-exchange" "${LONG[@]}" --out "$out" --threads 1 >/dev/null 2>&1 &
  fi
  pid=$!
  for _ in $(seq 1 1000); do
    [[ -e "$out.checkpoint.rex" ]] && break
    sleep 0.02
  done
  # mpirun forwards SIGTERM to its ranks; one process is killed outright.
  if [[ $1 == mpi ]]; then kill -TERM "$pid" 2>/dev/null && killed=1 || killed=0
  else kill -9 "$pid" 2>/dev/null && killed=1 || killed=0; fi
  wait "$pid" 2>/dev/null
  if [[ $killed -eq 0 || -d "$out" ]]; then
    echo "note: the $3 run finished before it could be killed; resume not exercised"
    return 0
  fi
  [[ -e "$out.checkpoint.rex" ]] || fail "$3: no checkpoint after the kill"
  if [[ $2 == mpi ]]; then
    timeout 120 "${MPIRUN[@]}" -np 2 "$BIN/replica-exchange" "${LONG[@]}" --out "$out" --threads 1 --resume \
      >"$TMP/resume.txt" 2>&1 || fail "$3: --resume on two ranks: $(cat "$TMP/resume.txt")"
  else
    "$BIN/replica-exchange" "${LONG[@]}" --out "$out" --threads 2 --resume >"$TMP/resume.txt" 2>&1 ||
      fail "$3: --resume on one process: $(cat "$TMP/resume.txt")"
  fi
  /usr/bin/python3 -c "import json,sys; s=json.load(open('$out/summary.json')); sys.exit(0 if s['statistics'].get('resumed_at_exchange', 0) > 0 else 1)" ||
    fail "$3: summary does not say the run was resumed"
  for f in samples.npy frames_by_temperature.npy energies_by_temperature.npy replica_states.npy swap_attempts.npy \
           swap_acceptance.npy reduced_energies.npy potential_energies.npy; do
    cmp -s "$TMP/full/$f" "$out/$f" || fail "$3: killed + resumed run differs from the uninterrupted one in $f"
  done
}
resume_after_kill mpi one mpi_to_one
resume_after_kill one mpi one_to_mpi
echo "ok"
