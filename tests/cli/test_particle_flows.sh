#!/usr/bin/env bash
# CLI tests of the interacting-particle flows through wgf-relax (svgd, blob, mmd):
# run-directory contents (KSD / bandwidth traces, moments), bit-identical results for
# --threads 1 vs 2, and bad input (one line on stderr, non-zero exit, an earlier run
# left intact). Usage: bash test_particle_flows.sh BIN_DIR SOURCE_DIR
set -uo pipefail
BIN=$1
W="$BIN/wgf-relax"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }

cat >"$T/g2.json" <<'JSON'
{"type": "gaussian", "name": "g2", "parameters": {"mean": [1.0, -0.5], "covariance": [[2.0, 0.9], [0.9, 0.6]]}}
JSON
/usr/bin/python3 - "$T" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(3)
L = np.linalg.cholesky(np.array([[2.0, 0.9], [0.9, 0.6]]))
np.save(sys.argv[1] + "/y2.npy", rng.standard_normal((300, 2)) @ L.T + np.array([1.0, -0.5]))
np.save(sys.argv[1] + "/y3.npy", rng.standard_normal((300, 3)))
PY

# 1. Threads 1 vs 2: bit-identical samples and summaries' traces, for each flow.
for flow in svgd blob mmd; do
  extra=()
  [[ $flow == mmd ]] && extra=(--param "target_samples=$T/y2.npy" --param noise_level=0.2 --step-size 2)
  for t in 1 2; do
    "$W" --potential "$T/g2.json" --flow $flow --particles 150 --steps 200 --warmup 0 --seed 4 --init-scale 2 \
      --threads $t --out "$T/${flow}_$t" -q --no-plots "${extra[@]}" >/dev/null || err "$flow --threads $t failed"
  done
  cmp -s "$T/${flow}_1/samples.npy" "$T/${flow}_2/samples.npy" || err "$flow: samples differ between --threads 1 and 2"
done

# 2. Contract: traces of ksd, ksd2_u, bandwidth, beta (and mmd2 for mmd); SVGD moments.
"$W" --potential "$T/g2.json" --flow svgd --particles 200 --steps 1500 --warmup 0 --step-size 0.2 \
  --init-scale 3 --monitor-every 50 --out "$T/good" -q >/dev/null || err "svgd good run failed"
/usr/bin/python3 - "$T" <<'PY' || err "contract check failed"
import json, sys, numpy as np
T = sys.argv[1]
s = json.load(open(T + "/good/summary.json"))
tr = s["trace"]
for k in ["mean_energy", "ksd", "ksd2_u", "bandwidth", "beta"]:
    assert k in tr and len(tr[k]) == len(tr["step"]) > 10, k
assert tr["ksd"][-1] < 0.1 * tr["ksd"][0], (tr["ksd"][0], tr["ksd"][-1])
# The particles of svgd, blob and mmd interact (iw-diag reads this key).
assert s["interacting"] is True, s.get("interacting")
for flow in ["blob", "mmd"]:
    assert json.load(open(T + "/" + flow + "_1/summary.json"))["interacting"] is True, flow
x = np.load(T + "/good/samples.npy")
cov = np.array([[2.0, 0.9], [0.9, 0.6]])
# 10 % of sqrt(S_kk S_ll): see tests/flows/test_svgd.cpp for the reasoning.
err = np.abs(np.cov(x.T) - cov) / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
assert err.max() < 0.1, err
assert np.abs(x.mean(0) - [1.0, -0.5]).max() < 3 * np.sqrt(2.0 / 200)
m = json.load(open(T + "/mmd_1/summary.json"))["trace"]
assert "mmd2" in m and m["mmd2"][-1] < m["mmd2"][0], m.get("mmd2")
assert s["plots"].get("ksd_trace.png") in ("ok", None) or "gnuplot" in s["plots"]["ksd_trace.png"], s["plots"]
PY

# 3. Bad input: one line on stderr, non-zero exit, the good run untouched.
before=$(cd "$T/good" && sha1sum samples.npy summary.json)
expect_error() {  # name, expected substring, args...
  local name=$1 pattern=$2
  shift 2
  "$W" --potential "$T/g2.json" --out "$T/good" --steps 5 -q "$@" >"$T/out.txt" 2>"$T/err.txt"
  local rc=$?
  local lines
  lines=$(wc -l <"$T/err.txt")
  [[ $rc -ne 0 ]] || err "$name: exit status 0"
  [[ $lines -eq 1 ]] || err "$name: $lines lines on stderr: $(cat "$T/err.txt")"
  grep -q -- "$pattern" "$T/err.txt" || err "$name: stderr lacks '$pattern': $(cat "$T/err.txt")"
  local now
  now=$(cd "$T/good" && sha1sum samples.npy summary.json)
  [[ "$now" == "$before" ]] || err "$name: the earlier run at --out was modified"
}
expect_error "mmd without samples" "target_samples" --flow mmd
expect_error "mmd samples of wrong dimension" "dimension 3" --flow mmd --param "target_samples=$T/y3.npy"
expect_error "mmd missing samples file" "nope.npy" --flow mmd --param "target_samples=$T/nope.npy"
expect_error "svgd bandwidth <= 0" "bandwidth" --flow svgd --param bandwidth=-1
expect_error "svgd bandwidth = 0" "must be > 0" --flow svgd --param bandwidth=0
expect_error "blob epsilon <= 0" "epsilon" --flow blob --param epsilon=0
expect_error "mmd bandwidth <= 0" "bandwidth" --flow mmd --param "target_samples=$T/y2.npy" --param bandwidth=-0.5
exit $fail
