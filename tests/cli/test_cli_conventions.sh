#!/usr/bin/env bash
# The command-line convention of the five tools (README "Command-line conventions"): exit
# status 0 / 1 (run failed) / 2 (usage), one "TOOL: error: MESSAGE" line, -q/--quiet, seeds in
# [0, 2^64) kept exactly, the closing verdict in the words of summary.json, and model files
# verified against their record and bound to their potential.
# Usage: bash test_cli_conventions.sh BIN_DIR SOURCE_DIR
set -uo pipefail
BIN=$1
SRC=$2
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }
TOOLS=(bg-sample wgf-relax iw-diag md-reference replica-exchange)
HAVE_BG=0
[ -x "$BIN/bg-sample" ] && HAVE_BG=1

# expect TOOL STATUS PATTERN ARGS...: exit status STATUS, exactly one stderr line that starts
# "TOOL: error: ", contains PATTERN, and names the tool once (no "TOOL: TOOL:").
expect() {
  local tool=$1 status=$2 pattern=$3
  shift 3
  [ -x "$BIN/$tool" ] || return 0
  "$BIN/$tool" "$@" >"$T/out.txt" 2>"$T/err.txt"
  local rc=$?
  [[ $rc -eq $status ]] || err "$tool $*: exit status $rc, expected $status: $(cat "$T/err.txt")"
  [[ $(wc -l <"$T/err.txt") -eq 1 ]] || err "$tool $*: not one line on stderr: $(cat "$T/err.txt")"
  grep -q "^$tool: error: " "$T/err.txt" || err "$tool $*: no '$tool: error: ' prefix: $(cat "$T/err.txt")"
  grep -q "$tool: .*$tool: " "$T/err.txt" && err "$tool $*: the tool is named twice: $(cat "$T/err.txt")"
  grep -q -- "$pattern" "$T/err.txt" || err "$tool $*: stderr lacks '$pattern': $(cat "$T/err.txt")"
}

P="$SRC/tests/data/bg_gaussian2d.json"
G2="$SRC/potentials/gaussian2d.json"
ALA="$SRC/potentials/alanine_dipeptide_vacuum.json"
MISSING="$T/missing.json"

# Flags that keep a run short should an old build accept a bad flag (each tool's own).
cheap() {
  case $1 in
    bg-sample) echo "--iterations 0 --samples 10 -q" ;;
    wgf-relax) echo "--steps 1 --particles 2 -q --no-plots" ;;
    *) echo "-q" ;;
  esac
}

# 1. Usage errors (exit 2) and run failures (exit 1), every tool alike.
for tool in "${TOOLS[@]}"; do
  expect "$tool" 2 "--bogus" --potential "$G2" --out "$T/x" --bogus
  expect "$tool" 2 "--threads" --potential "$G2" --out "$T/x" --threads abc
  # Seeds are integers in [0, 2^64): a sign, 2^64 or a fraction is refused while parsing.
  if [ "$tool" != iw-diag ]; then  # iw-diag draws no random numbers
    for bad in -1 18446744073709551616 1.5 12abc; do
      # shellcheck disable=SC2046
      expect "$tool" 2 "--seed: '$bad' is not a seed" --potential "$G2" --out "$T/x" --seed "$bad" $(cheap "$tool")
      rm -rf "$T/x"
    done
  fi
  [ -x "$BIN/$tool" ] || continue
  "$BIN/$tool" --help >"$T/help.txt" 2>&1 || err "$tool --help: non-zero exit"
  grep -q -- "-q,--quiet" "$T/help.txt" || err "$tool --help lacks -q,--quiet"
  grep -q "{false}\|{true}" "$T/help.txt" && err "$tool --help shows a flag default artefact: $(grep "{" "$T/help.txt")"
  grep -q -- "--no-progress" "$T/help.txt" && err "$tool --help still lists --no-progress"
done
for tool in bg-sample wgf-relax md-reference replica-exchange; do
  expect "$tool" 1 "missing.json" --potential "$MISSING" --out "$T/x" -q
  [ -e "$T/x" ] && err "$tool: output written for a missing potential"
done
expect iw-diag 1 "missing.npy" --log-weights "$T/missing.npy"
expect iw-diag 2 "exclude each other" --log-weights "$T/missing.npy" --interacting --independent
expect md-reference 2 "--potential is required" --out "$T/x"
expect bg-sample 2 "--evaluate needs --model" --evaluate "$T/missing.npy"

# 2. Seeds at and above 2^63 reach the run unchanged: different seeds, different samples.
G3="$T/g3.json"
echo '{"type": "gaussian", "name": "g3", "parameters": {"mean": [1.0, -1.0, 0.5], "std": [0.5, 2.0, 1.0]}}' >"$G3"
for s in 9223372036854775807 9223372036854775808 18446744073709551615; do
  "$BIN/wgf-relax" --potential "$G3" --flow ula --particles 20 --steps 3 --warmup 0 --seed $s --out "$T/w$s" -q \
    --no-plots >/dev/null 2>"$T/err.txt" || err "wgf-relax --seed $s failed: $(cat "$T/err.txt")"
  $PY -c "import json,sys; s=json.load(open('$T/w$s/summary.json')); sys.exit(0 if s['seed'] == $s else 1)" ||
    err "wgf-relax --seed $s: summary.json records another seed"
done
cmp -s "$T/w9223372036854775807/samples.npy" "$T/w9223372036854775808/samples.npy" &&
  err "wgf-relax: seeds 2^63-1 and 2^63 gave identical samples"
cmp -s "$T/w9223372036854775808/samples.npy" "$T/w18446744073709551615/samples.npy" &&
  err "wgf-relax: seeds 2^63 and 2^64-1 gave identical samples"

# 3. wgf-relax with OpenMM Langevin: no step size it does not have, no "done, ... done".
"$BIN/wgf-relax" --potential "$ALA" --flow openmm-langevin --particles 2 --steps 4 --warmup 0 --out "$T/oml" \
  --no-plots >"$T/oml.out" 2>"$T/oml.err" || err "openmm-langevin run failed: $(cat "$T/oml.err")"
grep -q "step size" "$T/oml.out" && err "openmm-langevin: a step size is printed: $(cat "$T/oml.out")"
grep -q "done.*done" "$T/oml.err" && err "openmm-langevin: 'done' twice: $(cat "$T/oml.err")"
grep -q "^wgf-relax: wrote $T/oml" "$T/oml.out" || err "wgf-relax: no verdict headline: $(cat "$T/oml.out")"
grep -q "^  ⟨u⟩" "$T/oml.out" || err "wgf-relax: no mean-energy row: $(cat "$T/oml.out")"
# -q silences the progress lines, not the verdict.
"$BIN/wgf-relax" --potential "$G3" --flow mala --particles 20 --steps 5 --out "$T/wq" -q --no-plots \
  >"$T/wq.out" 2>"$T/wq.err" || err "wgf-relax -q failed"
[ -s "$T/wq.err" ] && err "wgf-relax -q printed on stderr: $(cat "$T/wq.err")"
grep -q "^  acceptance" "$T/wq.out" || err "wgf-relax -q: no verdict: $(cat "$T/wq.out")"

if [ $HAVE_BG -eq 1 ]; then
  # 4. bg-sample without data: the verdict on stdout in the words of summary.json, and the
  # reverse-KL-only warning on stderr and in summary.json.
  "$BIN/bg-sample" --potential "$P" --out "$T/bg" --iterations 3 --samples 300 -q >"$T/bg.out" 2>"$T/bg.err" ||
    err "bg-sample run failed: $(cat "$T/bg.err")"
  W="no training data: trained by reverse KL only (mode-seeking)"
  grep -qxF "bg-sample: warning: $W" "$T/bg.err" || err "bg-sample: no reverse-KL warning: $(cat "$T/bg.err")"
  $PY - "$T/bg" "$T/bg.out" "$W" <<'PY' || err "bg-sample verdict differs from summary.json"
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
out = open(sys.argv[2]).read().splitlines()
imp = s["importance"]
assert out[0] == "bg-sample: wrote " + sys.argv[1], out[0]
rows = {l.strip().split("  ")[0]: l.strip() for l in out[1:]}
assert rows["PSIS k̂"].endswith(imp["psis_diagnosis"]), (rows["PSIS k̂"], imp["psis_diagnosis"])
assert ("unreliable" in rows["PSIS k̂"]) == (not imp["psis_reliable"])
assert rows["ESS (Kish)"].split()[2] == "%.3g" % imp["ess_fraction"], rows["ESS (Kish)"]
assert rows["log Z"].split()[2] == "%.5g" % imp["log_z"]["estimate"], rows["log Z"]
assert sys.argv[3] in s["warnings"], s["warnings"]
PY
  # With data, no such warning.
  $PY -c "import numpy as np; np.save('$T/data.npy', np.random.default_rng(1).normal(size=(500, 2)))"
  "$BIN/bg-sample" --potential "$P" --data "$T/data.npy" --out "$T/bgd" --iterations 2 --samples 300 -q \
    >/dev/null 2>"$T/bgd.err" || err "bg-sample with data failed: $(cat "$T/bgd.err")"
  grep -q "reverse KL only" "$T/bgd.err" && err "bg-sample with data warns of reverse KL only"
  # iw-diag on that run ends with the same verdict rows.
  "$BIN/iw-diag" --run "$T/bg" --no-plots >"$T/iw.out" 2>"$T/iw.err" || err "iw-diag failed: $(cat "$T/iw.err")"
  grep -q "^iw-diag: diagnosed" "$T/iw.out" || err "iw-diag: no verdict headline"
  D=$($PY -c "import json; print(json.load(open('$T/bg/summary.json'))['importance']['psis_diagnosis'])")
  grep -q "^  PSIS k̂ .*$D" "$T/iw.out" || err "iw-diag: the k̂ verdict differs from bg-sample's: $(cat "$T/iw.out")"

  # 5. Seeds of bg-sample: 2^63 and 2^64 - 1 are kept and give different samples.
  for s in 9223372036854775808 18446744073709551615; do
    "$BIN/bg-sample" --potential "$P" --out "$T/bs$s" --iterations 0 --samples 50 --seed $s -q >/dev/null 2>&1 ||
      err "bg-sample --seed $s failed"
    $PY -c "import json,sys; s=json.load(open('$T/bs$s/summary.json')); sys.exit(0 if s['seed'] == $s else 1)" ||
      err "bg-sample --seed $s: summary.json records another seed"
  done
  cmp -s "$T/bs9223372036854775808/samples.npy" "$T/bs18446744073709551615/samples.npy" &&
    err "bg-sample: seeds 2^63 and 2^64-1 gave identical samples"

  # 6. Model files: a flipped byte in a tensor is refused; so is a model without its record.
  $PY - "$T/bg/model.pt" "$T/flipped.pt" <<'PY' || err "could not make the flipped model"
import struct, sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
raw = bytearray(open(src, "rb").read())
z = zipfile.ZipFile(src)
info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
start = info.header_offset + 30 + name_len + extra_len
raw[start + info.file_size // 2] ^= 0x10  # one bit of one parameter
open(dst, "wb").write(raw)
PY
  cp "$T/bg/model.json" "$T/flipped.json"
  expect bg-sample 1 "checksum mismatch" --potential "$P" --model "$T/flipped.pt" --out "$T/bad1" -q
  [ -e "$T/bad1" ] && err "bg-sample: output written for a corrupted model"
  expect bg-sample 1 "checksum mismatch" --model "$T/flipped.pt" --evaluate "$T/data.npy" --out "$T/bad1" -q
  cp "$T/bg/model.pt" "$T/alone.pt"
  expect bg-sample 1 "no record alone.json" --potential "$P" --model "$T/alone.pt" --out "$T/bad2" -q

  # 7. A model trained on another potential of the same dimension: refused, or used with
  # --allow-other-potential and a warning. Changing only the generator section is the same potential.
  sed 's/"mean": \[1.0, -0.5\]/"mean": [1.5, -0.5]/' "$P" >"$T/other.json"
  expect bg-sample 1 "allow-other-potential" --potential "$T/other.json" --model "$T/bg/model.pt" --out "$T/bad3" -q
  [ -e "$T/bad3" ] && err "bg-sample: output written for a model of another potential"
  "$BIN/bg-sample" --potential "$T/other.json" --model "$T/bg/model.pt" --out "$T/ok3" --samples 300 -q \
    --allow-other-potential >/dev/null 2>"$T/ok3.err" || err "--allow-other-potential refused: $(cat "$T/ok3.err")"
  grep -q "^bg-sample: warning: .*model.pt was trained on potential 'gauss2d'" "$T/ok3.err" ||
    err "--allow-other-potential: no warning: $(cat "$T/ok3.err")"
  sed 's/"samples": 5000/"samples": 400/' "$P" >"$T/same.json"
  "$BIN/bg-sample" --potential "$T/same.json" --model "$T/bg/model.pt" --out "$T/ok4" -q >/dev/null 2>"$T/ok4.err" ||
    err "a model refused after an edit of the generator section: $(cat "$T/ok4.err")"
  # The hidden former spelling --no-progress still works.
  "$BIN/bg-sample" --potential "$P" --model "$T/bg/model.pt" --out "$T/ok5" --samples 300 --no-progress \
    >/dev/null 2>"$T/ok5.err" || err "--no-progress refused"
  grep -v "^bg-sample: warning: " "$T/ok5.err" && err "--no-progress: progress lines on stderr"
fi

[[ $fail -eq 0 ]] && echo ok
exit $fail
