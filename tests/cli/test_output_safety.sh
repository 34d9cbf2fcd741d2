#!/usr/bin/env bash
# The output-safety contract of every tool (README "Run directory",
# lib/boltzlab/app/run_directory.hpp): an existing folder that is not a run directory
# is refused and left intact; the output may not hold an input (iw-diag --run D --out D,
# bg-sample --model D/model.pt --out D, --init inside --out); stale staging of a dead
# process is removed, a live one's kept; SIGTERM leaves no staging folder; a finished
# run leaves no checkpoint beside it; --resume needs a checkpoint of the same run.
# Usage: bash test_output_safety.sh BIN_DIR SOURCE_DIR
set -uo pipefail
BIN=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
T=$(mktemp -d)
LIVE=""
BGPID=""
cleanup() {
  [[ -n $LIVE ]] && kill "$LIVE" 2>/dev/null
  [[ -n $BGPID ]] && kill -9 "$BGPID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
DW="$SRC/potentials/double_well.json"
MB="$SRC/potentials/muller_brown.json"
WGF=(--potential "$DW" --particles 64 --steps 20 --threads 1 -q --no-plots)

# refused NAME PATH CMD...: exit != 0, one line on stderr that names PATH, nothing on the way out.
refused() {
  local name=$1 path=$2
  shift 2
  "$@" >"$T/stdout" 2>"$T/err"
  local rc=$?
  [[ $rc -ne 0 ]] || fail "$name: exit code 0"
  [[ $(wc -l <"$T/err") -eq 1 ]] || fail "$name: expected one line, got: $(cat "$T/err")"
  grep -qF -- "$path" "$T/err" || fail "$name: message does not name $path: $(cat "$T/err")"
  ls "$T" | grep -q "staging" && fail "$name: staging folder left behind"
  return 0
}
# sums DIR: a fingerprint of every file below DIR.
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum); }
# wait_for GLOB: up to ~60 s until a path matches.
wait_for() {
  for _ in $(seq 1 600); do
    compgen -G "$1" >/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# 1. An existing folder that is not a run directory: refused by every tool, files intact
#    (subfolders and an --init file inside it included).
"$BIN/wgf-relax" "${WGF[@]}" --out "$T/first" >/dev/null 2>&1 || fail "first wgf-relax run"
mkdir -p "$T/d/sub"
echo keep >"$T/d/notes.txt"
echo keep >"$T/d/sub/more.txt"
cp "$T/first/samples.npy" "$T/d/init.npy"
before=$(sums "$T/d")
refused wgf-relax "$T/d" "$BIN/wgf-relax" "${WGF[@]}" --out "$T/d"
refused wgf-relax-init "$T/d" "$BIN/wgf-relax" "${WGF[@]}" --init "$T/d/init.npy" --out "$T/d"
refused bg-sample "$T/d" "$BIN/bg-sample" --potential "$DW" --iterations 2 --samples 100 -q --out "$T/d"
refused iw-diag "$T/d" "$BIN/iw-diag" --run "$T/first" --out "$T/d"
refused md-reference "$T/d" "$BIN/md-reference" --potential "$SRC/potentials/alanine_dipeptide_vacuum.json" \
  --production-ns 0.001 --quiet --out "$T/d"
[[ $(sums "$T/d") == "$before" ]] || fail "the refused folder was modified"
# ... while an earlier run directory is replaced.
"$BIN/wgf-relax" "${WGF[@]}" --seed 3 --out "$T/first" >/dev/null 2>&1 || fail "replacing an earlier run"
[[ -e "$T/first/.boltzlab-run" ]] || fail "no run marker"

# 2. The output may not hold an input: iw-diag --run D --out D, bg-sample --model D/model.pt --out D.
before=$(sums "$T/first")
refused iw-diag-run "$T/first" "$BIN/iw-diag" --run "$T/first" --out "$T/first"
refused wgf-relax-init-run "$T/first" "$BIN/wgf-relax" "${WGF[@]}" --init "$T/first/samples.npy" --out "$T/first"
refused iw-diag-samples "$T/first" "$BIN/iw-diag" --samples "$T/first/samples.npy" --out "$T/first"
refused iw-diag-log-weights "$T/first" "$BIN/iw-diag" --log-weights "$T/first/reduced_energies.npy" --out "$T/first"
[[ $(sums "$T/first") == "$before" ]] || fail "the input run directory was modified"
"$BIN/bg-sample" --potential "$DW" --iterations 4 --samples 200 --threads 1 -q --out "$T/bg" \
  2>"$T/err" || fail "bg-sample: $(cat "$T/err")"
# 6. A finished run leaves no checkpoint beside it.
[[ -e "$T/bg.checkpoint.pt" ]] && fail "checkpoint left beside the finished run"
[[ -e "$T/bg/.boltzlab-run" ]] || fail "bg-sample: no run marker"
before=$(sums "$T/bg")
refused bg-evaluate "$T/bg" "$BIN/bg-sample" --model "$T/bg/model.pt" --evaluate "$T/bg/samples.npy" --out "$T/bg"
refused bg-model "$T/bg" "$BIN/bg-sample" --potential "$DW" --model "$T/bg/model.pt" --samples 100 -q \
  --out "$T/bg"
[[ $(sums "$T/bg") == "$before" ]] || fail "the trained model's run directory was modified"
"$BIN/bg-sample" --model "$T/bg/model.pt" --evaluate "$T/bg/samples.npy" --out "$T/eval" 2>/dev/null ||
  fail "evaluate into a new folder"

# 3. Stale staging: a dead process's is removed when the next run for the same --out starts,
#    a live process's is left alone.
bash -c 'exit 0' &
dead=$!
wait "$dead"
sleep 300 &
LIVE=$!
mkdir -p "$T/s.staging-$dead" "$T/s.staging-$LIVE"
echo half >"$T/s.staging-$dead/samples.npy"
echo half >"$T/s.staging-$LIVE/samples.npy"
"$BIN/wgf-relax" "${WGF[@]}" --out "$T/s" >/dev/null 2>&1 || fail "run beside stale staging"
[[ -e "$T/s.staging-$dead" ]] && fail "stale staging of the dead process $dead was not removed"
[[ -e "$T/s.staging-$LIVE/samples.npy" ]] || fail "staging of the live process $LIVE was removed"
kill "$LIVE" 2>/dev/null
wait "$LIVE" 2>/dev/null
LIVE=""
rm -rf "$T/s.staging-"*

# 4. SIGTERM during a run: the staging folder is removed and the exit status is 128 + 15.
"$BIN/wgf-relax" --potential "$DW" --particles 20000 --steps 100000000 --threads 1 -q --no-plots --out "$T/long" >/dev/null 2>&1 &
BGPID=$!
wait_for "$T/long.staging-*" || fail "wgf-relax made no staging folder"
sleep 0.3
kill -TERM "$BGPID"
wait "$BGPID"
rc=$?
BGPID=""
[[ $rc -eq 143 ]] || fail "wgf-relax after SIGTERM: exit status $rc, expected 143"
compgen -G "$T/long*" >/dev/null && fail "SIGTERM left $(ls -d "$T"/long*)"

# 5. bg-sample --resume: without a checkpoint it is an error; a checkpoint of another
#    potential of the same dimension is refused; its own is continued, then removed.
refused resume-none "$T/nock.checkpoint.pt" "$BIN/bg-sample" --potential "$DW" --resume -q --out "$T/nock"
[[ -e "$T/nock" ]] && fail "--resume without checkpoint wrote a run directory"
/usr/bin/python3 - "$DW" "$T/dw.json" <<'EOF' || fail "cannot write dw.json"
import json, sys
p = json.load(open(sys.argv[1]))
p["generator"] = {"checkpoint_every": 1, "batch_size": 64, "eval_every": 0, "samples": 200}
json.dump(p, open(sys.argv[2], "w"))
EOF
"$BIN/bg-sample" --potential "$T/dw.json" --iterations 1000000 --threads 1 -q --out "$T/cut" 2>/dev/null &
BGPID=$!
wait_for "$T/cut.checkpoint.pt" || fail "bg-sample wrote no checkpoint"
kill -TERM "$BGPID"
wait "$BGPID"
rc=$?
BGPID=""
[[ $rc -eq 143 ]] || fail "bg-sample after SIGTERM: exit status $rc, expected 143"
compgen -G "$T/cut.staging-*" >/dev/null && fail "SIGTERM left bg-sample's staging folder"
[[ -e "$T/cut.checkpoint.pt" ]] || fail "SIGTERM removed the checkpoint (needed by --resume)"
refused resume-other "double_well" "$BIN/bg-sample" --potential "$MB" --resume -q --out "$T/cut"
grep -q "muller_brown" "$T/err" || fail "resume-other: message does not name the other potential: $(cat "$T/err")"
refused resume-seed "seed" "$BIN/bg-sample" --potential "$T/dw.json" --seed 9 --resume -q --out "$T/cut"
[[ -e "$T/cut.checkpoint.pt" ]] || fail "a refused --resume removed the checkpoint"
"$BIN/bg-sample" --potential "$T/dw.json" --iterations 3 --resume --threads 1 -q --out "$T/cut" \
  2>"$T/err" || fail "--resume of its own checkpoint: $(cat "$T/err")"
[[ -e "$T/cut.checkpoint.pt" ]] && fail "checkpoint left beside the resumed, finished run"

# 7. replica-exchange: SIGTERM keeps the checkpoint but no staging; --resume with a
#    checkpoint of another potential of the same dimension is refused.
REX=(--temperatures 300,340 --equilibration-ps 0.1 --exchange-interval-ps 0.1 --frame-interval-ps 0.1
     --checkpoint-exchanges 1 --threads 1 --quiet)
"$BIN/replica-exchange" --potential "$SRC/potentials/alanine_dipeptide_vacuum.json" "${REX[@]}" \
  --production-ns 1 --out "$T/rex" 2>/dev/null &
BGPID=$!
wait_for "$T/rex.checkpoint.rex" || fail "replica-exchange wrote no checkpoint"
kill -TERM "$BGPID"
wait "$BGPID"
rc=$?
BGPID=""
[[ $rc -eq 143 ]] || fail "replica-exchange after SIGTERM: exit status $rc, expected 143"
compgen -G "$T/rex.staging-*" >/dev/null && fail "SIGTERM left replica-exchange's staging folder"
[[ -e "$T/rex.checkpoint.rex" ]] || fail "SIGTERM removed the replica-exchange checkpoint"
refused rex-other "alanine_dipeptide_vacuum" "$BIN/replica-exchange" --potential "$SRC/potentials/alanine_dipeptide.json" \
  "${REX[@]}" --production-ns 0.002 --resume --out "$T/rex"
refused rex-none "$T/none.checkpoint.rex" "$BIN/replica-exchange" --potential "$SRC/potentials/alanine_dipeptide.json" \
  "${REX[@]}" --production-ns 0.002 --resume --out "$T/none"
echo "ok"
