#!/bin/bash
# iw-diag on real run directories: a wgf-relax run (particles as chains from
# frames.npy) and an md-reference alanine-dipeptide run (replicas as chains,
# Ramachandran free energy), plus --samples/--log-q/--potential on the MD frames
# with log q := −u_MD, for which every weight must be exactly 1 (ESS = S, log Z = 0):
# a check that iw-diag evaluates the same u as the MD code.
# Usage: bash test_iw_diag_runs.sh BIN_DIR SOURCE_DIR
set -u
BIN="$1"
SRC="$2"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
check_json() {
  $PY -c "import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1" || fail "$1: $2"
}
cd "$SRC" || fail "cannot cd to $SRC"

# ---- wgf-relax (MALA particles, independent) with frames
"$BIN/wgf-relax" --potential potentials/double_well.json --out "$T/wgf" --particles 128 --steps 200 --thin 4 \
  --threads 2 -q > /dev/null 2> "$T/e0" || { cat "$T/e0"; fail "wgf-relax"; }
"$BIN/iw-diag" --run "$T/wgf" --out "$T/wgf_diag" > "$T/t1" 2> "$T/e1" || { cat "$T/e1"; fail "iw-diag --run wgf"; }
grep -q "128 chains × 50 draws × 2 parameters" "$T/t1" || { cat "$T/t1"; fail "table: chains from frames.npy"; }
S="$T/wgf_diag/summary.json"
check_json "$S" "len(s['rhat']) == 2 and all(v is not None for v in s['rhat'] + s['ess_bulk'] + s['ess_tail'])"
check_json "$S" "s['kish_ess'] is None and 'log_q' in s['kish_ess_reason'] and s['psis_reliable'] is None"
check_json "$S" "s['chains']['independent_chains'] is True and s['source_run']['tool'] == 'wgf-relax'"
check_json "$S" "s['free_energy']['x_axis']['name'] == 'x0'"
if command -v gnuplot > /dev/null; then [ -s "$T/wgf_diag/free_energy.png" ] || fail "wgf: free_energy.png"; fi

# ---- wgf-relax with SVGD: interacting particles are flagged
"$BIN/wgf-relax" --potential potentials/double_well.json --out "$T/svgd" --flow svgd --particles 64 --steps 100 \
  --thin 4 --threads 2 -q > /dev/null 2> "$T/e5" || { cat "$T/e5"; fail "wgf-relax svgd"; }
"$BIN/iw-diag" --run "$T/svgd" --json > "$T/j5" 2> "$T/e6" || { cat "$T/e6"; fail "iw-diag --run svgd"; }
check_json "$T/j5" "s['chains']['independent_chains'] is False and 'interacting' in s['chains']['notes'][0]"
# wgf-relax writes the flow's "interacting" flag; iw-diag reads it and infers nothing.
check_json "$T/svgd/summary.json" "s['interacting'] is True"
check_json "$T/j5" "not any('inferred' in n for n in s['chains']['notes'])"
check_json "$T/wgf/summary.json" "s['interacting'] is False"
check_json "$T/wgf_diag/summary.json" "not any('inferred' in n for n in s['chains']['notes'])"
# A run directory written before the flag existed: the flag is guessed from the flow name and noted.
cp -r "$T/svgd" "$T/svgd_old"
$PY -c "
import json,sys; p=sys.argv[1]; s=json.load(open(p)); del s['interacting']; json.dump(s, open(p,'w'))" \
  "$T/svgd_old/summary.json" || fail "removing the interacting flag"
"$BIN/iw-diag" --run "$T/svgd_old" --json > "$T/j7" 2> "$T/e7" || { cat "$T/e7"; fail "iw-diag --run svgd_old"; }
check_json "$T/j7" "s['chains']['independent_chains'] is False and any(\"inferred from the flow name 'svgd'\" in n for n in s['chains']['notes'])"
# --independent overrides the guess, and then nothing is said to be inferred.
"$BIN/iw-diag" --run "$T/svgd_old" --independent --json > "$T/j8" 2> /dev/null || fail "iw-diag --independent (old run)"
check_json "$T/j8" "s['chains']['independent_chains'] is True and not any('inferred' in n for n in s['chains']['notes'])"
"$BIN/iw-diag" --run "$T/svgd" --independent --json > "$T/j6" 2> /dev/null || fail "iw-diag --independent"
check_json "$T/j6" "s['chains']['independent_chains'] is True"

# ---- md-reference: 2 short replicas of alanine dipeptide in vacuum
"$BIN/md-reference" --potential potentials/alanine_dipeptide_vacuum.json --out "$T/md" --production-ns 0.01 \
  --equilibration-ps 2 --frame-interval-ps 0.1 --replicas 2 --threads 2 --quiet > /dev/null 2> "$T/e2" \
  || { cat "$T/e2"; fail "md-reference"; }
"$BIN/iw-diag" --run "$T/md" --out "$T/md_diag" > "$T/t2" 2> "$T/e3" || { cat "$T/e3"; fail "iw-diag --run md"; }
grep -q "2 chains × 100 draws × 3 parameters" "$T/t2" || { cat "$T/t2"; fail "table: replicas as chains"; }
S="$T/md_diag/summary.json"
check_json "$S" "s['chains']['parameter_names'] == ['u', 'phi', 'psi'] and len(s['rhat']) == 3"
check_json "$S" "s['free_energy']['x_axis']['name'] == 'phi' and s['free_energy']['x_axis']['periodic'] is True"
check_json "$S" "'free_energy_difference' in s"
if command -v gnuplot > /dev/null; then
  [ -s "$T/md_diag/ramachandran_free_energy.png" ] || fail "md: ramachandran_free_energy.png"
fi

# ---- --samples/--log-q/--potential on the MD frames with log q = −u_MD
$PY -c "import numpy as np; u = np.load('$T/md/reduced_energies.npy'); np.save('$T/logq.npy', -u)" || fail "log q"
"$BIN/iw-diag" --samples "$T/md/samples.npy" --log-q "$T/logq.npy" --potential potentials/alanine_dipeptide_vacuum.json \
  --out "$T/pot_diag" > "$T/t3" 2> "$T/e4" || { cat "$T/e4"; fail "iw-diag --potential"; }
S="$T/pot_diag/summary.json"
# u is recomputed by the same force field on the double-precision Reference platform:
# log w = u_MD − u vanishes (to rounding), so ESS/S = 1 and log Z = 0.
check_json "$S" "s['ess_fraction'] > 0.999999 and abs(s['log_z']['estimate']) < 1e-5"
# Equal weights: no tail to fit (k-hat null with its reason) and reliable.
check_json "$S" "'free_energy_kj_mol' in s['log_z'] and (s['psis_khat'] is not None or len(s['psis_khat_reason']) > 0) and s['psis_reliable'] is True"
check_json "$S" "s['free_energy']['kind'].startswith('Ramachandran')"
if command -v gnuplot > /dev/null; then
  for p in weight_distribution.png ess_curve.png ramachandran_free_energy.png; do
    [ -s "$T/pot_diag/$p" ] || fail "potential mode: $p"
  done
fi
echo "test_iw_diag_runs: all checks passed"
exit 0
