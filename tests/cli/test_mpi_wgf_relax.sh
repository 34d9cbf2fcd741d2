#!/usr/bin/env bash
# wgf-relax over MPI ranks: `mpirun -np 2` and `-np 3` (particles split in contiguous
# blocks of 16 over the ranks, the last block partial) write the same run directory,
# byte for byte, as one process — samples, energies, frames, monitors and summary.json
# without the fields that say how it ran (timings, threads, ranks, rates) — for the
# independent-chain flows (ula, mala, baoab) and the interacting ones (svgd, blob, mmd:
# their O(N²) passes split by rows over the ranks), with 1 and 2 threads per rank. Registered only when boltzlab is built with MPI.
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
# Interacting flows: each rank computes the median pass, the kernel sums, the KSD and
# (mmd) the MMD² monitor for its rows only, and the rows are gathered every step.
# Double well (d = 2): the median pass counts each rank's balanced share of the pairs.
# ManyWell-32 (d = 32 ≥ 8): the median pass keeps a rank's own rows of D² for the sums.
for flow in svgd blob; do
  run_pair $flow "$SRC/potentials/double_well.json" --particles 100 --steps 40 --warmup 0 --thin 20
  run_pair $flow "$SRC/potentials/manywell32.json" --particles 100 --steps 20 --warmup 0 --thin 10
done
# SVGD with 400 particles: 79 800 pairs, past the size where the median pass selects
# inside a sampled bracket (then the ranks' in-bracket values meet in the radix selection).
run_pair svgd "$SRC/potentials/double_well.json" --particles 400 --steps 10 --warmup 0 --thin 5
# MMD with noise (each rank draws its own particles' streams) and the mmd2 monitor.
/usr/bin/python3 - "$TMP" <<'PY'
import sys, numpy as np
np.save(sys.argv[1] + "/y2.npy", np.random.default_rng(5).standard_normal((150, 2)) * [0.5, 1.0] + [1.0, 0.0])
PY
run_pair mmd "$SRC/potentials/double_well.json" --particles 100 --steps 40 --warmup 0 --thin 20 \
  --param "target_samples=$TMP/y2.npy" --param noise_level=0.2
echo "ok"
