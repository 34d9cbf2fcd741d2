#!/usr/bin/env bash
# md-reference: a short run writes the run directory (MDTraj reads the trajectory and
# gets boltzlab's phi/psi), and bad input gives one clear line and a non-zero exit
# without leaving output behind.
# Usage: bash test_md_reference.sh BIN_DIR SOURCE_DIR
set -uo pipefail
BIN=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# 1. A short vacuum run: 5 ps, a frame every 0.05 ps (100 frames).
"$BIN/md-reference" --potential "$SRC/potentials/alanine_dipeptide_vacuum.json" --out "$TMP/run" \
  --production-ns 0.005 --equilibration-ps 1 --frame-interval-ps 0.05 --seed 3 --quiet >"$TMP/out.txt" 2>&1 ||
  fail "md-reference exited non-zero: $(cat "$TMP/out.txt")"
for f in samples.npy reduced_energies.npy potential_energies.npy replica.npy summary.json trajectory.dcd topology.pdb energy_trace.png \
         trajectory.pdb dihedrals.npy ramachandran_histogram.npy ramachandran_free_energy.npy; do
  [[ -s "$TMP/run/$f" ]] || fail "missing $f"
done
/usr/bin/python3 - "$TMP/run" <<'EOF' || fail "run directory contents"
import json, sys, numpy as np
run = sys.argv[1]
s = json.load(open(run + "/summary.json"))
x = np.load(run + "/samples.npy"); u = np.load(run + "/reduced_energies.npy"); e = np.load(run + "/potential_energies.npy")
assert x.shape == (100, 66), x.shape
assert s["counts"]["frames"] == 100 and s["counts"]["non_finite_energies"] == 0 and s["tool"] == "md-reference"
# u = E / kT at 300 K (the MD Context's energies and the target's agree).
assert np.allclose(u, e / (0.0083144626 * 300.0), rtol=1e-9), np.abs(u - e / 2.49433878).max()
h = np.load(run + "/ramachandran_histogram.npy")
assert h.shape == (64, 64) and h.sum() == 100
b = s["molecular"]["basins"]
assert abs(b["phi_negative"] + b["phi_positive"] - 1) < 1e-12
EOF

# 2. MDTraj reads the trajectory and computes the same phi/psi.
if /usr/bin/python3 -c "import mdtraj" 2>/dev/null; then
  /usr/bin/python3 "$SRC/tools/check_trajectory_mdtraj.py" "$TMP/run" >"$TMP/mdtraj.txt" 2>&1 ||
    fail "MDTraj check: $(cat "$TMP/mdtraj.txt")"
else
  echo "note: python3-mdtraj not installed, MDTraj check skipped"
fi

# 3. Same seed, same frames (determinism).
"$BIN/md-reference" --potential "$SRC/potentials/alanine_dipeptide_vacuum.json" --out "$TMP/run2" \
  --production-ns 0.005 --equilibration-ps 1 --frame-interval-ps 0.05 --seed 3 --quiet >/dev/null 2>&1 ||
  fail "second run"
cmp -s "$TMP/run/samples.npy" "$TMP/run2/samples.npy" || fail "same seed gave different frames"

# 4. The same integrator as a flow: wgf-relax --flow openmm-langevin from MD configurations.
if [[ -x "$BIN/wgf-relax" ]]; then
  /usr/bin/python3 -c "import numpy as np; np.save('$TMP/init.npy', np.load('$SRC/tests/data/ala2_vacuum_positions.npy')[:3])"
  "$BIN/wgf-relax" --flow openmm-langevin --potential "$SRC/potentials/alanine_dipeptide_vacuum.json" \
    --init "$TMP/init.npy" --steps 300 --warmup 100 --thin 100 --seed 2 --out "$TMP/relax" --quiet >"$TMP/relax.txt" 2>&1 ||
    fail "wgf-relax --flow openmm-langevin: $(cat "$TMP/relax.txt")"
  /usr/bin/python3 - "$TMP/relax" <<'EOF' || fail "wgf-relax openmm-langevin run directory"
import json, sys, numpy as np
s = json.load(open(sys.argv[1] + "/summary.json"))
assert s["counts"]["particles"] == 3 and s["counts"]["non_finite_energies"] == 0, s["counts"]
assert np.load(sys.argv[1] + "/frames.npy").shape == (3, 3, 66)
assert s["molecular"]["frames"] == 3
EOF
fi

# 5. Bad input: one line naming the file or field, non-zero exit, no output directory.
expect_error() {  # name, expected substring, potential file
  local out="$TMP/bad_$1"
  "$BIN/md-reference" --potential "$3" --out "$out" --production-ns 0.001 --quiet >"$TMP/err.txt" 2>&1
  local rc=$?
  [[ $rc -ne 0 ]] || fail "$1: exit code 0"
  [[ $(wc -l <"$TMP/err.txt") -eq 1 ]] || fail "$1: expected one line, got: $(cat "$TMP/err.txt")"
  grep -qF -- "$2" "$TMP/err.txt" || fail "$1: message lacks '$2': $(cat "$TMP/err.txt")"
  [[ ! -e "$out" ]] || fail "$1: output directory was created"
  ls "$TMP" | grep -q "bad_$1.staging" && fail "$1: staging directory left behind"
  return 0
}
XML="$SRC/potentials/alanine_dipeptide.xml"
PDB="$SRC/data/alanine_dipeptide/alanine_dipeptide.pdb"
pot() { echo "{\"type\": \"openmm\", \"parameters\": {$2}}" >"$TMP/$1.json"; echo "$TMP/$1.json"; }
expect_error missing_xml "parameters.system: cannot open OpenMM System XML" \
  "$(pot a "\"system\": \"none.xml\", \"pdb\": \"$PDB\", \"temperature\": 300")"
echo '<?xml version="1.0" ?><System openmmVersion="7.7" type="System" version="1"><Particles><Particle' >"$TMP/bad.xml"
expect_error malformed_xml "bad.xml" "$(pot b "\"system\": \"bad.xml\", \"pdb\": \"$PDB\", \"temperature\": 300")"
head -n 5 "$PDB" >"$TMP/short.pdb"
expect_error atom_count "short.pdb' has 4 atoms, but the System" \
  "$(pot c "\"system\": \"$XML\", \"pdb\": \"short.pdb\", \"temperature\": 300")"
expect_error platform "parameters.platform: unknown OpenMM platform 'Cuda'" \
  "$(pot d "\"system\": \"$XML\", \"pdb\": \"$PDB\", \"temperature\": 300, \"platform\": \"Cuda\"")"
expect_error temperature "parameters.temperature: is 0" \
  "$(pot e "\"system\": \"$XML\", \"pdb\": \"$PDB\", \"temperature\": 0")"
expect_error not_openmm "needs an OpenMM potential" "$SRC/potentials/gaussian2d.json"
expect_error no_file "cannot open" "$TMP/nonexistent.json"
echo "ok"
