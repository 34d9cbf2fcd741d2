#!/bin/bash
# OpenBLAS kernel choice (core/blas_kernels.hpp): a tool that loads OpenBLAS ends up on the kernels
# tools/openblas_kernels.py names for this CPU (the rule the Python tests and benchmarks use), after
# at most one restart with its arguments intact; a user's OPENBLAS_CORETYPE is left alone (no
# restart). OPENBLAS_VERBOSE=2 makes OpenBLAS print "Core: NAME" each time it is loaded.
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
/usr/bin/python3 -c "import ctypes; ctypes.CDLL('libopenblas.so.0')" 2>/dev/null || { echo "no OpenBLAS: skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
lower() { tr '[:upper:]' '[:lower:]'; }

expected=$(env -u OPENBLAS_CORETYPE /usr/bin/python3 "$SRC/tools/openblas_kernels.py" | sed 's/^OPENBLAS_CORETYPE=//')
env -u OPENBLAS_CORETYPE OPENBLAS_VERBOSE=2 "$BIN/bg-sample" --potential "$T/missing.json" --out "$T/r" > "$T/out" 2>&1
rc=$?
[ "$rc" -ne 0 ] && grep -q "missing.json" "$T/out" || { cat "$T/out"; fail "the arguments did not survive the restart (rc $rc)"; }
loads=$(grep -c "^Core:" "$T/out")
last=$(grep "^Core:" "$T/out" | tail -n 1 | sed 's/^Core: *//' | lower)
if [ -n "$expected" ]; then
  [ "$loads" -eq 2 ] || fail "expected one restart (two loads of OpenBLAS), got $loads"
  [ "$last" = "$(echo "$expected" | lower)" ] || fail "ended on kernels '$last', expected '$expected'"
else
  [ "$loads" -eq 1 ] || fail "no better kernels for this CPU, yet $loads loads of OpenBLAS"
fi
[ "$(grep -c "bg-sample: error" "$T/out")" -eq 1 ] || { cat "$T/out"; fail "the error line is not printed exactly once"; }

OPENBLAS_CORETYPE=Prescott OPENBLAS_VERBOSE=2 "$BIN/bg-sample" --help > "$T/out2" 2>&1 || fail "--help"
[ "$(grep -c "^Core:" "$T/out2")" -eq 1 ] && grep -qi "^Core: *Prescott" "$T/out2" || {
  cat "$T/out2" | grep "^Core"; fail "a user's OPENBLAS_CORETYPE was not left alone"; }
echo "ok: kernels '${expected:-as OpenBLAS chose}'"
