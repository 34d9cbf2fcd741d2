#!/usr/bin/env bash
# --netcdf of md-reference, replica-exchange, bg-sample and iw-diag: each file opens in
# xarray with the documented groups and dims (ArviZ's InferenceData layout,
# io/netcdf.hpp) and holds exactly the values of the run directory's .npy files; a bad
# --netcdf path is refused in one line before the run, with nothing written.
# Usage: bash test_netcdf_tools.sh BIN_DIR SOURCE_DIR
set -uo pipefail
BIN=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
/usr/bin/python3 -c "import xarray, netCDF4" 2>/dev/null || fail "python3-xarray and python3-netcdf4 are needed"
POT="$SRC/potentials/alanine_dipeptide_vacuum.json"

# A file of this build without libnetcdf cannot be written: the flag must say so.
if ! "$BIN/md-reference" --potential "$POT" --out "$TMP/probe" --production-ns 0.0001 --frame-interval-ps 0.1 \
     --equilibration-ps 0 --no-minimize --quiet --netcdf "$TMP/probe.nc" >"$TMP/probe.txt" 2>&1; then
  grep -q "no libnetcdf" "$TMP/probe.txt" && { echo "built without libnetcdf: skipped"; exit 0; }
  fail "md-reference --netcdf: $(cat "$TMP/probe.txt")"
fi

# 1. md-reference: 2 replicas of 2 ps, a frame every 0.1 ps: chains = replicas, draws = 20 frames.
"$BIN/md-reference" --potential "$POT" --out "$TMP/md" --production-ns 0.002 --equilibration-ps 0.5 \
  --frame-interval-ps 0.1 --replicas 2 --seed 3 --quiet --netcdf "$TMP/md.nc" >"$TMP/out.txt" 2>&1 ||
  fail "md-reference --netcdf: $(cat "$TMP/out.txt")"
/usr/bin/python3 - "$TMP/md" "$TMP/md.nc" <<'EOF' || fail "md-reference NetCDF"
import sys, numpy as np, xarray as xr
run, nc = sys.argv[1:]
post, st = xr.open_dataset(nc, group="posterior"), xr.open_dataset(nc, group="sample_stats")
assert dict(post.sizes) == {"chain": 2, "draw": 20, "x_dim_0": 66}, dict(post.sizes)
assert post["x"].dims == ("chain", "draw", "x_dim_0") and st["lp"].dims == ("chain", "draw")
assert set(st.data_vars) == {"reduced_energy", "lp", "potential_energy"}, set(st.data_vars)
# samples.npy holds the frames replica-major: replica r's frames are chain r.
assert np.array_equal(np.load(run + "/replica.npy"), np.repeat([0.0, 1.0], 20))
assert np.array_equal(post["x"].values.reshape(40, 66), np.load(run + "/samples.npy"))
u = np.load(run + "/reduced_energies.npy")
assert np.array_equal(st["reduced_energy"].values.ravel(), u)
assert np.array_equal(st["lp"].values.ravel(), -u)
assert np.array_equal(st["potential_energy"].values.ravel(), np.load(run + "/potential_energies.npy"))
assert post.attrs["tool"] == "md-reference" and post.attrs["seed"] == "3" and st.attrs["tool"] == "md-reference"
EOF

# 2. replica-exchange: 3 temperatures, 2 ps, a frame every 0.2 ps: the 10 T_0 frames as one chain.
"$BIN/replica-exchange" --potential "$POT" --temperatures 300,340,385 --equilibration-ps 0.5 \
  --exchange-interval-ps 0.1 --production-ns 0.002 --frame-interval-ps 0.2 --seed 5 --threads 1 --quiet \
  --out "$TMP/rex" --netcdf "$TMP/rex.nc" >"$TMP/out.txt" 2>&1 || fail "replica-exchange --netcdf: $(cat "$TMP/out.txt")"
/usr/bin/python3 - "$TMP/rex" "$TMP/rex.nc" <<'EOF' || fail "replica-exchange NetCDF"
import sys, numpy as np, xarray as xr
run, nc = sys.argv[1:]
post, st = xr.open_dataset(nc, group="posterior"), xr.open_dataset(nc, group="sample_stats")
assert dict(post.sizes) == {"chain": 1, "draw": 10, "x_dim_0": 66}, dict(post.sizes)
assert np.array_equal(post["x"].values[0], np.load(run + "/samples.npy"))
assert np.array_equal(post["x"].values[0], np.load(run + "/frames_by_temperature.npy")[0])
u = np.load(run + "/reduced_energies.npy")
assert np.array_equal(st["reduced_energy"].values[0], u) and np.array_equal(st["lp"].values[0], -u)
assert np.array_equal(st["potential_energy"].values[0], np.load(run + "/potential_energies.npy"))
assert post.attrs["tool"] == "replica-exchange" and post.attrs["temperatures_K"] == "300,340,385"
EOF

# 3. iw-diag --run of the md-reference run: samples.npy as one chain (no weights there).
"$BIN/iw-diag" --run "$TMP/md" --netcdf "$TMP/md_iw.nc" --no-plots >"$TMP/out.txt" 2>&1 ||
  fail "iw-diag --netcdf: $(cat "$TMP/out.txt")"
/usr/bin/python3 - "$TMP/md" "$TMP/md_iw.nc" <<'EOF' || fail "iw-diag NetCDF of an MD run"
import sys, numpy as np, xarray as xr
run, nc = sys.argv[1:]
post, st = xr.open_dataset(nc, group="posterior"), xr.open_dataset(nc, group="sample_stats")
assert dict(post.sizes) == {"chain": 1, "draw": 40, "x_dim_0": 66}, dict(post.sizes)
assert list(st.data_vars) == ["reduced_energy", "lp"], list(st.data_vars)
assert np.array_equal(post["x"].values[0], np.load(run + "/samples.npy"))
assert np.array_equal(st["reduced_energy"].values[0], np.load(run + "/reduced_energies.npy"))
assert post.attrs["tool"] == "md-reference"
EOF

# 4. bg-sample (LibTorch builds): the weighted samples as one chain, the layout of the
# Python module's inference_data_from_run; iw-diag --run of that run writes the same values.
if [[ -x "$BIN/bg-sample" ]]; then
  "$BIN/bg-sample" --potential "$SRC/tests/data/bg_gaussian2d.json" --out "$TMP/bg" --iterations 5 --samples 200 \
    --threads 2 -q --netcdf "$TMP/bg.nc" >"$TMP/out.txt" 2>&1 || fail "bg-sample --netcdf: $(cat "$TMP/out.txt")"
  "$BIN/iw-diag" --run "$TMP/bg" --netcdf "$TMP/bg_iw.nc" --no-plots >"$TMP/out.txt" 2>&1 ||
    fail "iw-diag --netcdf of a bg-sample run: $(cat "$TMP/out.txt")"
  /usr/bin/python3 - "$TMP/bg" "$TMP/bg.nc" "$TMP/bg_iw.nc" <<'EOF' || fail "bg-sample NetCDF"
import sys, numpy as np, xarray as xr
run, nc, nc_iw = sys.argv[1:]
for f in (nc, nc_iw):
    post, st = xr.open_dataset(f, group="posterior"), xr.open_dataset(f, group="sample_stats")
    assert dict(post.sizes) == {"chain": 1, "draw": 200, "x_dim_0": 2}, dict(post.sizes)
    # inference_data_from_run's variables, in its order.
    assert list(st.data_vars) == ["log_weight", "log_q", "reduced_energy", "lp"], list(st.data_vars)
    assert np.array_equal(post["x"].values[0], np.load(run + "/samples.npy"))
    u = np.load(run + "/reduced_energies.npy")
    assert np.array_equal(st["log_weight"].values[0], np.load(run + "/log_weights.npy"))
    assert np.array_equal(st["log_q"].values[0], np.load(run + "/log_q.npy"))
    assert np.array_equal(st["reduced_energy"].values[0], u) and np.array_equal(st["lp"].values[0], -u)
    assert post.attrs["tool"] == "bg-sample", post.attrs
EOF
  # --evaluate writes no samples.
  "$BIN/bg-sample" --model "$TMP/bg/model.pt" --evaluate "$TMP/bg/samples.npy" --out "$TMP/ev" \
    --netcdf "$TMP/ev.nc" >"$TMP/err.txt" 2>&1 && fail "bg-sample --evaluate --netcdf accepted"
  grep -q "^bg-sample: error: --netcdf" "$TMP/err.txt" || fail "bg-sample --evaluate --netcdf: $(cat "$TMP/err.txt")"
else
  echo "note: bg-sample not built (no LibTorch): its --netcdf not tested"
fi

# 5. Bad --netcdf paths: one line naming the path, non-zero exit, no run directory, no file.
refused() {  # refused TOOL EXPECTED_TEXT ARGS...
  local tool=$1 expect=$2; shift 2
  "$BIN/$tool" "$@" >/dev/null 2>"$TMP/err.txt" && fail "$tool accepted a bad --netcdf ($*)"
  [[ $(wc -l <"$TMP/err.txt") == 1 ]] && grep -q "^$tool: error: --netcdf .*$expect" "$TMP/err.txt" ||
    fail "$tool: expected one stderr line with '$expect': $(cat "$TMP/err.txt")"
  [[ ! -e "$TMP/bad_run" ]] || fail "$tool wrote a run directory despite a bad --netcdf"
}
MD=(--potential "$POT" --out "$TMP/bad_run" --production-ns 0.001 --frame-interval-ps 0.1 --quiet)
refused md-reference "does not exist" "${MD[@]}" --netcdf "$TMP/no/such/dir/x.nc"
refused md-reference "is a directory" "${MD[@]}" --netcdf "$TMP/md"
refused md-reference "is an input of the run" "${MD[@]}" --netcdf "$POT"
refused md-reference "output directory" "${MD[@]}" --netcdf "$TMP/bad_run"
refused replica-exchange "does not exist" --potential "$POT" --temperatures 300,340 --production-ns 0.001 \
  --out "$TMP/bad_run" --quiet --netcdf "$TMP/no/such/dir/x.nc"
refused iw-diag "does not exist" --run "$TMP/md" --out "$TMP/bad_run" --netcdf "$TMP/no/x.nc"
refused iw-diag "is an input of the run" --run "$TMP/md" --out "$TMP/bad_run" --netcdf "$TMP/md/samples.npy"
if [[ -x "$BIN/bg-sample" ]]; then
  refused bg-sample "does not exist" --potential "$SRC/tests/data/bg_gaussian2d.json" --out "$TMP/bad_run" \
    --iterations 1 --samples 10 -q --netcdf "$TMP/no/x.nc"
fi
[[ -z $(find "$TMP" -name 'x.nc*') ]] || fail "a refused run left a NetCDF file"
echo "ok"
