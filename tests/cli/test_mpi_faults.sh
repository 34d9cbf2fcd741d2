#!/usr/bin/env bash
# A failing rank ends the whole MPI job: non-zero exit, exactly one "TOOL: error:" line,
# no hang (each run under `timeout`; 124 would mean a rank waited forever), nothing
# left in --out. Cases: bad input every rank reads (printed once, by rank 0), and an
# output that only rank 0 checks (the other rank is already waiting in the first
# collective when rank 0 fails). Registered only when boltzlab is built with MPI.
# Usage: bash test_mpi_faults.sh BIN_DIR SOURCE_DIR
set -uo pipefail
BIN=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
source "$SRC/tests/cli/mpi_common.sh"

expect_one_error() {  # name tool args...: runs the tool on two ranks, checks the failure
  local name=$1 tool=$2
  shift 2
  timeout 60 "${MPIRUN[@]}" -np 2 "$BIN/$tool" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
  local rc=$?
  [[ $rc -ne 124 ]] || fail "$name: the job hung (killed by timeout)"
  [[ $rc -ne 0 ]] || fail "$name: exit status 0"
  local lines
  lines=$(grep -c "^$tool: error: " "$TMP/$name.err")
  [[ $lines -eq 1 ]] || fail "$name: $lines error lines, expected 1: $(cat "$TMP/$name.err")"
  grep "^$tool: error: " "$TMP/$name.err"
}

# 1. Bad input every rank reads: an unknown key in the potential file.
sed 's/"barrier": 3.0/"barier": 3.0/' "$SRC/potentials/double_well.json" >"$TMP/typo.json"
expect_one_error typo wgf-relax --potential "$TMP/typo.json" --out "$TMP/typo_run" --steps 10 -q
grep -q "barier" "$TMP/typo.err" || fail "typo: the error does not name the key"
[[ ! -e "$TMP/typo_run" ]] || fail "typo: output left behind"

# 2. An output only rank 0 checks: --out is an existing folder that is not a run directory.
mkdir -p "$TMP/precious" && echo keep >"$TMP/precious/notes.txt"
expect_one_error out_wgf wgf-relax --potential "$SRC/potentials/double_well.json" --out "$TMP/precious" \
  --particles 64 --steps 20000 -q
expect_one_error out_rex replica-exchange --potential "$SRC/potentials/alanine_dipeptide_vacuum.json" \
  --out "$TMP/precious" --temperatures 300,340 --production-ns 0.01 --equilibration-ps 0 -q
[[ $(cat "$TMP/precious/notes.txt") == keep && $(ls "$TMP/precious") == notes.txt ]] ||
  fail "the existing folder was changed"
ls "$TMP" | grep -q staging && fail "staging directory left behind"
echo "ok"
