#!/usr/bin/env bash
# bg-sample over MPI ranks (data-parallel training): the training batch's fixed chunks
# are split over the ranks and their gradients summed in chunk order on every rank, so
# `mpirun -np 2` (2 + 2 chunks, 2 threads per rank) and `-np 3` (2 + 1 + 1, 1 thread) write
# the run directory of one process byte for byte — samples, log q, weights, the
# training history, the model file — summary.json without the fields that say how it
# ran. Only rank 0 writes. A run stopped by SIGTERM after a checkpoint on 2 ranks resumes
# on 1 process, and one of 1 process on 2 ranks, to the same run directory (arrays,
# model.pt, training history) as the uninterrupted run. Registered only when boltzlab
# is built with MPI.
# Usage: bash test_mpi_bg_sample.sh BIN_DIR SOURCE_DIR
set -uo pipefail
BIN=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
[[ -x "$BIN/bg-sample" ]] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/scratch"
fail() { echo "FAIL: $*"; exit 1; }
source "$SRC/tests/cli/mpi_common.sh"

# The 2-D Gaussian of test_bg_sample.sh, batch 128 in 4 chunks of 32.
sed 's/"batch_size": 128,/"batch_size": 128, "chunk_size": 32,/' "$SRC/tests/data/bg_gaussian2d.json" >"$TMP/g.json"
grep -q '"chunk_size": 32' "$TMP/g.json" || fail "could not set chunk_size"
ARGS=(--potential "$TMP/g.json" --iterations 6 --samples 200 --seed 4 -q)
"$BIN/bg-sample" "${ARGS[@]}" --out "$TMP/one" --threads 1 >"$TMP/out.txt" 2>&1 || fail "one process: $(cat "$TMP/out.txt")"

# A run stopped by SIGTERM after a checkpoint resumes on another number of ranks
# (2 ranks -> 1 process, 1 process -> 2 ranks) to the bytes of the uninterrupted run:
# the checkpoint (model, Adam state, history) holds nothing that depends on the ranks.
sed 's/"batch_size": 128,/"batch_size": 128, "chunk_size": 32, "checkpoint_every": 2,/' \
  "$SRC/tests/data/bg_gaussian2d.json" >"$TMP/gck.json"
LONG=(--potential "$TMP/gck.json" --iterations 20 --samples 200 --seed 4 -q)
"$BIN/bg-sample" "${LONG[@]}" --out "$TMP/full" --threads 1 >"$TMP/out.txt" 2>&1 || fail "uninterrupted run: $(cat "$TMP/out.txt")"
resumed=0
# A failure that only rank 1 meets: its scratch folder goes into TMPDIR (rank 0 writes
# beside --out), here a plain file. The job ends (no hang: `timeout`; 124 would mean
# rank 0 waits forever in the first gradient sum) with one error line naming TMPDIR's
# value and a non-zero status; the checkpoint it was resuming from stays as it was.
fail_on_rank_1() {  # $1: --out of a stopped run whose checkpoint is resumed
  local out=$1 rc lines
  echo "not a folder" >"$TMP/tmpdir_file"
  cp "$out.checkpoint.pt" "$TMP/checkpoint_before.pt"
  timeout 120 "${MPIRUN[@]}" -np 2 env TMPDIR="$TMP/tmpdir_file" "$BIN/bg-sample" "${LONG[@]}" --out "$out" --threads 1 \
    --resume >"$TMP/rank1.out" 2>"$TMP/rank1.err"
  rc=$?
  [[ $rc -ne 124 ]] || fail "rank 1 failing alone: the job hung (killed by timeout)"
  [[ $rc -ne 0 ]] || fail "rank 1 failing alone: exit status 0"
  lines=$(grep -c "^bg-sample: error: " "$TMP/rank1.err")
  [[ $lines -eq 1 ]] || fail "rank 1 failing alone: $lines error lines, expected 1: $(cat "$TMP/rank1.err")"
  grep "^bg-sample: error: " "$TMP/rank1.err" | grep -q "TMPDIR '$TMP/tmpdir_file'" ||
    fail "rank 1 failing alone: the error does not name TMPDIR's value: $(grep "error" "$TMP/rank1.err")"
  cmp -s "$out.checkpoint.pt" "$TMP/checkpoint_before.pt" || fail "rank 1 failing alone: the checkpoint changed"
  [[ ! -e "$out" ]] && ! compgen -G "$out.staging-*" >/dev/null || fail "rank 1 failing alone: output left behind"
}
resume_after_kill() {  # $1: launcher of the killed run ("mpi" or "one"), $2: of the resumed run, $3: name
  local out="$TMP/$3" pid
  if [[ $1 == mpi ]]; then
    TMPDIR="$TMP/scratch" "${MPIRUN[@]}" -np 2 "$BIN/bg-sample" "${LONG[@]}" --out "$out" --threads 1 >/dev/null 2>&1 &
  else
    "$BIN/bg-sample" "${LONG[@]}" --out "$out" --threads 1 >/dev/null 2>&1 &
  fi
  pid=$!
  for _ in $(seq 1 1500); do
    [[ -e "$out.checkpoint.pt" ]] && break
    sleep 0.02
  done
  kill -TERM "$pid" 2>/dev/null  # mpirun forwards SIGTERM to its ranks
  wait "$pid" 2>/dev/null
  if [[ -d "$out" ]]; then
    echo "note: the $3 run finished before it was stopped; resume not exercised"
    return 0
  fi
  [[ -e "$out.checkpoint.pt" ]] || fail "$3: no checkpoint after SIGTERM"
  if [[ $2 == mpi ]]; then
    fail_on_rank_1 "$out"
    TMPDIR="$TMP/scratch" timeout 300 "${MPIRUN[@]}" -np 2 "$BIN/bg-sample" "${LONG[@]}" --out "$out" --threads 1 \
      --resume >"$TMP/resume.txt" 2>&1 || fail "$3: --resume on two ranks: $(cat "$TMP/resume.txt")"
  else
    "$BIN/bg-sample" "${LONG[@]}" --out "$out" --threads 2 --resume >"$TMP/resume.txt" 2>&1 ||
      fail "$3: --resume on one process: $(cat "$TMP/resume.txt")"
  fi
  [[ -e "$out.checkpoint.pt" ]] && fail "$3: checkpoint left beside the resumed, finished run"
  same_run_directory "$TMP/full" "$out" || fail "$3: stopped + resumed run differs from the uninterrupted one"
  resumed=$((resumed + 1))
}
resume_after_kill mpi one mpi_to_one
resume_after_kill one mpi one_to_mpi
[[ $resumed -gt 0 ]] || fail "no run was stopped before its end: resume never exercised"
# Complete runs on 2 and 3 ranks. Ranks other than 0 write into scratch folders in
# TMPDIR and remove them; a rank starting up also removes the folders of dead processes
# (a rank killed outright by mpirun's SIGKILL above, or the planted one here) and keeps
# those of live ones (another job's). Afterwards no scratch folder of a rank is left.
sh -c 'exit 0' &
dead_pid=$!
wait "$dead_pid"
mkdir -p "$TMP/scratch/boltzlab-rank1-$dead_pid" "$TMP/scratch/boltzlab-rank1-$$"
touch "$TMP/scratch/boltzlab-rank1-$dead_pid/samples.npy"
for np_threads in "2 2" "3 1"; do
  set -- $np_threads
  TMPDIR="$TMP/scratch" timeout 300 "${MPIRUN[@]}" -np "$1" "$BIN/bg-sample" "${ARGS[@]}" --out "$TMP/np$1_t$2" --threads "$2" \
    >"$TMP/out.txt" 2>&1 || fail "mpirun -np $1 --threads $2: $(cat "$TMP/out.txt")"
  same_run_directory "$TMP/one" "$TMP/np$1_t$2" || fail "mpirun -np $1 --threads $2 differs from one process"
  [[ $(grep -c "^bg-sample: wrote " "$TMP/out.txt") -eq 1 ]] || fail "not one verdict line: $(cat "$TMP/out.txt")"
done
[[ -d "$TMP/scratch/boltzlab-rank1-$dead_pid" ]] && fail "the scratch folder of a dead process was not removed"
[[ -d "$TMP/scratch/boltzlab-rank1-$$" ]] || fail "the scratch folder of a live process was removed"
rmdir "$TMP/scratch/boltzlab-rank1-$$"
ls "$TMP/scratch" | grep -q "^boltzlab-rank" && fail "scratch folder of a rank left behind: $(ls "$TMP/scratch")"
echo "ok"
