#!/usr/bin/env bash
# wgf-relax over MPI ranks: `mpirun -np 2` and `-np 3` (particles split in contiguous
# blocks of 16 over the ranks, the last block partial) write the same run directory,
# byte for byte, as one process — samples, energies, frames, monitors and summary.json
# without the fields that say how it ran (timings, threads, ranks, rates) — for the
# independent-chain flows (ula, mala, baoab) and the interacting ones (svgd, blob, mmd),
# with 1 and 2 threads per rank. Registered only when boltzlab is built with MPI.
# Usage: bash test_mpi_wgf_relax.sh BIN_DIR SOURCE_DIR
set -uo pipefail
BIN=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
source "$SRC/tests/cli/mpi_common.sh"
W="$BIN/wgf-relax"

# 100 particles: 7 blocks of 16 (4 + 3 on two ranks, 3 + 2 + 2 on three; the last has 4).
run_pair() {  # flow potential extra-args...: one process vs two and three ranks
  local flow=$1 pot=$2
  shift 2
  local args=(--potential "$pot" --flow "$flow" --seed 11 -q --no-plots "$@")
  "$W" "${args[@]}" --out "$TMP/${flow}_one" --threads 1 >"$TMP/out.txt" 2>&1 ||
    fail "$flow, one process: $(cat "$TMP/out.txt")"
  for np_threads in "2 1" "2 2" "3 1"; do
    set -- $np_threads
    timeout 120 "${MPIRUN[@]}" -np "$1" "$W" "${args[@]}" --out "$TMP/${flow}_np$1_t$2" --threads "$2" \
      >"$TMP/out.txt" 2>&1 || fail "$flow, mpirun -np $1 --threads $2: $(cat "$TMP/out.txt")"
    same_run_directory "$TMP/${flow}_one" "$TMP/${flow}_np$1_t$2" ||
      fail "$flow: mpirun -np $1 --threads $2 differs from one process"
    grep -q "\"ranks\": $1" "$TMP/${flow}_np$1_t$2/summary.json" || fail "$flow: summary.json does not record $1 ranks"
    [[ $(grep -c "^wgf-relax: wrote " "$TMP/out.txt") -eq 1 ]] || fail "$flow: not one verdict line: $(cat "$TMP/out.txt")"
  done
}

# Independent chains: MALA with step-size adaptation (per-chain counters, stuck rule),
# ULA, BAOAB (kinetic-temperature monitor); frames every 25 steps.
for flow in mala ula baoab; do
  run_pair $flow "$SRC/potentials/manywell32.json" --particles 100 --steps 100 --warmup 50 --thin 25
done
# Interacting flows: every rank needs the whole ensemble at each step.
for flow in svgd blob; do
  run_pair $flow "$SRC/potentials/double_well.json" --particles 100 --steps 40 --warmup 0 --thin 20
done
echo "ok"
