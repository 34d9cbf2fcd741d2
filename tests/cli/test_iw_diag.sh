#!/bin/bash
# iw-diag on constructed run directories and arrays: table, summary.json keys
# (the contract), plots, physics checks against exact answers, and bad input.
# Usage: bash test_iw_diag.sh BIN_DIR SOURCE_DIR
set -u
BIN="$1/iw-diag"
SRC="$2"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# ---- fixtures (fixed seed): a 2-D Gaussian run and a dihedral ("molecular") run
$PY - "$T" <<'PYEOF' || fail "fixture generation"
import json, math, os, sys
import numpy as np
t = sys.argv[1]
rng = np.random.default_rng(5)
# Target N(0, I_2) (u = |x|^2/2, log Z = log 2pi), proposal N(0, 1.5^2 I_2).
n, s = 4000, 1.5
x = s * rng.standard_normal((n, 2))
u = 0.5 * (x ** 2).sum(1)
log_q = -0.5 * ((x / s) ** 2).sum(1) - 2 * math.log(s * math.sqrt(2 * math.pi))
u[7] = np.inf                                   # one failed energy evaluation
run = os.path.join(t, "gauss_run"); os.makedirs(run)
np.save(os.path.join(run, "samples.npy"), x)
np.save(os.path.join(run, "reduced_energies.npy"), u)
np.save(os.path.join(run, "log_q.npy"), log_q)
chains = np.empty((4, 300, 2)); chains[:, 0] = rng.standard_normal((4, 2))
for k in range(1, 300): chains[:, k] = 0.5 * chains[:, k - 1] + math.sqrt(0.75) * rng.standard_normal((4, 2))
np.save(os.path.join(run, "chains.npy"), chains)
json.dump({"tool": "test", "potential": {"name": "gauss2", "log_z": math.log(2 * math.pi), "target": {}},
           "options": {"flow": "svgd"}}, open(os.path.join(run, "summary.json"), "w"))
# Dihedral run: proposal uniform on [-pi, pi)^2, target exp(2 cos(phi + 1.5) + cos(psi - 2.5)).
m = 20000
ang = rng.uniform(-math.pi, math.pi, (m, 2))
lw = 2 * np.cos(ang[:, 0] + 1.5) + np.cos(ang[:, 1] - 2.5) + math.log(4 * math.pi ** 2)
mol = os.path.join(t, "mol_run"); os.makedirs(mol)
np.save(os.path.join(mol, "dihedrals.npy"), ang)
np.save(os.path.join(mol, "log_weights.npy"), lw)
json.dump({"tool": "test", "potential": {"name": "ala2-like", "target": {"kT_kJ_per_mol": 2.494}}},
          open(os.path.join(mol, "summary.json"), "w"))
# Exact Delta F = F(phi<0) - F(phi>=0) for the von Mises marginal (fine quadrature).
g = np.linspace(-math.pi, math.pi, 2000001)
f = np.exp(2 * np.cos(g + 1.5)); neg = np.trapz(np.where(g < 0, f, 0), g); pos = np.trapz(np.where(g >= 0, f, 0), g)
open(os.path.join(t, "exact_df"), "w").write(repr(-math.log(neg / pos)))
# Bad inputs.
np.save(os.path.join(t, "empty.npy"), np.zeros(0))
np.save(os.path.join(t, "allneginf.npy"), np.full(50, -np.inf))
q = np.zeros(4000); q[3] = np.nan; np.save(os.path.join(t, "nan_logq.npy"), q)
np.save(os.path.join(t, "short_logq.npy"), np.zeros(10))
np.save(os.path.join(t, "one_chain.npy"), rng.standard_normal((1, 100)))
np.save(os.path.join(t, "three_draws.npy"), rng.standard_normal((4, 3)))
np.save(os.path.join(t, "vec.npy"), rng.standard_normal(10))
json.dump({"type": "gaussian", "parameters": {"mean": [0, 0], "std": 1.0}},
          open(os.path.join(t, "gauss2.json"), "w"))
PYEOF

check_json() {  # check_json FILE PYTHON-EXPRESSION-ON-s
  $PY -c "import json,sys; s=json.load(open(sys.argv[1])); ok = ($2); sys.exit(0 if ok else 1)" "$1" \
    || fail "$1: check failed: $2"
}

# ---- 1. --run on the Gaussian run: contract keys, exact log Z, chains with interacting flag
"$BIN" --run "$T/gauss_run" --out "$T/out1" > "$T/table1" 2> "$T/err1" || { cat "$T/err1"; fail "iw-diag --run gauss"; }
grep -q "Kish ESS" "$T/table1" || fail "table lacks Kish ESS"
grep -q "PSIS" "$T/table1" || fail "table lacks PSIS"
grep -q "R̂" "$T/table1" || fail "table lacks R-hat column"
S="$T/out1/summary.json"
check_json "$S" "all(k in s for k in ['kish_ess','ess_fraction','psis_khat','psis_reliable','log_z','rhat','ess_bulk','ess_tail'])"
check_json "$S" "isinstance(s['psis_khat'], float) and s['psis_reliable'] is True"
check_json "$S" "s['weights']['non_finite_energies'] == 1 and s['weights']['zero_weight'] == 1"
# Exact ESS fraction (sqrt(2 s^2 - 1)/s^2)^2 = 0.691 for s = 1.5 (its sd at S = 4000 is
# about 0.01; allow 0.64..0.74).
check_json "$S" "0.64 < s['ess_fraction'] < 0.74"
# log Z = log 2 pi within 4 standard errors (z-score reported against the exact value).
check_json "$S" "abs(s['log_z']['z_score']) < 4 and s['log_z']['stderr'] > 0"
check_json "$S" "len(s['rhat']) == 2 and len(s['ess_bulk']) == 2 and len(s['ess_tail']) == 2"
check_json "$S" "all(r < 1.05 for r in s['rhat'])"
check_json "$S" "s['chains']['independent_chains'] is False and any('interacting' in n for n in s['chains']['notes'])"
# Its summary.json predates the "interacting" flag: the flag is guessed from the flow name, and said so.
check_json "$S" "any(\"inferred from the flow name 'svgd'\" in n for n in s['chains']['notes'])"
grep -q "inferred from the flow name" "$T/table1" || fail "table lacks the note on the inferred interacting flag"
# With the flag, the flag decides (here against the flow name) and nothing is inferred.
cp -r "$T/gauss_run" "$T/gauss_flag"
$PY -c "
import json,sys; p=sys.argv[1]; s=json.load(open(p)); s['interacting']=False; json.dump(s, open(p,'w'))" \
  "$T/gauss_flag/summary.json" || fail "writing the interacting flag"
"$BIN" --run "$T/gauss_flag" --json --no-plots > "$T/jflag" 2> "$T/eflag" || { cat "$T/eflag"; fail "iw-diag --run gauss_flag"; }
check_json "$T/jflag" "s['chains']['independent_chains'] is True and not any('inferred' in n for n in s['chains']['notes'] + s['notes'])"
# Map bins from the sample size: round(sqrt(ESS / 10)) in [8, 64].
check_json "$S" "s['free_energy']['x_axis']['bins'] == max(8, min(64, round((s['kish_ess'] / 10) ** 0.5)))"
if command -v gnuplot > /dev/null; then
  for p in weight_distribution.png ess_curve.png free_energy.png; do
    [ -s "$T/out1/$p" ] || fail "missing plot $p"
  done
fi
[ -s "$T/out1/psis_log_weights.npy" ] || fail "missing psis_log_weights.npy"
[ -s "$T/out1/free_energy.npy" ] || fail "missing free_energy.npy"

# ---- 2. molecular-like run: Ramachandran free energy, default phi<0 vs phi>=0 in kJ/mol
"$BIN" --run "$T/mol_run" --out "$T/out2" > "$T/table2" 2> "$T/err2" || { cat "$T/err2"; fail "iw-diag --run mol"; }
S="$T/out2/summary.json"
EXACT=$(cat "$T/exact_df")
check_json "$S" "abs(s['free_energy_difference']['delta_f_kt'] - $EXACT) < 4 * s['free_energy_difference']['stderr_kt']"
check_json "$S" "abs(s['free_energy_difference']['delta_f_kj_mol'] - 2.494 * s['free_energy_difference']['delta_f_kt']) < 1e-9"
check_json "$S" "'free_energy_kj_mol' in s['log_z'] and s['free_energy']['x_axis']['bins'] == max(8, min(64, round((s['kish_ess'] / 10) ** 0.5)))"
check_json "$S" "s['rhat'] is None and 'rhat_reason' in s"
if command -v gnuplot > /dev/null; then [ -s "$T/out2/ramachandran_free_energy.png" ] || fail "missing Ramachandran plot"; fi
grep -q "Free-energy difference" "$T/table2" || fail "table lacks the free-energy difference"

# ---- 3. --samples/--log-q/--potential evaluates u itself and agrees with the run directory
"$BIN" --samples "$T/gauss_run/samples.npy" --log-q "$T/gauss_run/log_q.npy" --potential "$T/gauss2.json" \
  --out "$T/out3" --no-plots > /dev/null 2> "$T/err3" || { cat "$T/err3"; fail "iw-diag --samples/--potential"; }
# Same weights except sample 7 (finite energy here): log Z agrees to within one weight's share.
$PY -c "
import json,sys
a=json.load(open('$T/out1/summary.json')); b=json.load(open('$T/out3/summary.json'))
sys.exit(0 if abs(a['log_z']['estimate']-b['log_z']['estimate']) < 2e-3 and b['weights']['non_finite_energies']==0 else 1)" \
  || fail "--potential evaluation disagrees with the run directory"

# ---- 4. single chain and too few draws: null + reason, exit 0
"$BIN" --chains "$T/one_chain.npy" --out "$T/out4" > /dev/null 2>&1 || fail "single chain must not be fatal"
check_json "$T/out4/summary.json" "s['rhat'] == [None] and 'chains' in s['rhat_reason'][0] and s['ess_bulk'][0] > 0"
check_json "$T/out4/summary.json" "s['kish_ess'] is None and 'kish_ess_reason' in s and s['psis_khat'] is None"
"$BIN" --chains "$T/three_draws.npy" --json > "$T/j5" 2>/dev/null || fail "three draws must not be fatal"
check_json "$T/j5" "s['ess_bulk'] == [None] and '4 draws' in s['ess_bulk_reason'][0]"
# Too few weights for PSIS: k-hat null with its reason.
$PY -c "import numpy as np; np.save('$T/few.npy', np.linspace(0, 1, 12))"
"$BIN" --log-weights "$T/few.npy" --json > "$T/j6" 2>/dev/null || fail "12 weights must not be fatal"
check_json "$T/j6" "s['psis_khat'] is None and len(s['psis_khat_reason']) > 0 and s['psis_reliable'] is False"
grep -q "NaN" "$T/j6" && fail "NaN in JSON output"

# ---- 5. fatal input errors: one line on stderr, non-zero exit, nothing written
expect_error() {  # expect_error PATTERN args...
  local pat="$1"; shift
  "$BIN" "$@" > "$T/o" 2> "$T/e"; local rc=$?
  [ $rc -ne 0 ] || fail "expected failure: $*"
  [ "$(wc -l < "$T/e")" -eq 1 ] || { cat "$T/e"; fail "expected one error line: $*"; }
  grep -q -- "$pat" "$T/e" || { cat "$T/e"; fail "error for '$*' lacks '$pat'"; }
}
expect_error "not a directory" --run "$T/missing_dir"
expect_error "empty" --log-weights "$T/empty.npy"
expect_error "all 50 log-weights are -inf" --log-weights "$T/allneginf.npy"
expect_error "log q\[3\]" --samples "$T/gauss_run/samples.npy" --log-q "$T/nan_logq.npy" --potential "$T/gauss2.json"
expect_error "lengths must match" --samples "$T/gauss_run/samples.npy" --log-q "$T/short_logq.npy" --potential "$T/gauss2.json"
expect_error "chains must be" --chains "$T/vec.npy"
expect_error "nothing to analyse"
expect_error "needs --samples and --potential" --log-q "$T/gauss_run/log_q.npy"
expect_error "exactly twice" --run "$T/gauss_run" --region "x0<0"
expect_error "did you mean 'x0'" --run "$T/gauss_run" --region "y0<0" --region "x0>0"
# A failed run leaves an earlier output in place and no staging directory behind.
"$BIN" --log-weights "$T/allneginf.npy" --out "$T/out1" > /dev/null 2>&1 && fail "should fail"
[ -s "$T/out1/summary.json" ] || fail "earlier output was destroyed by a failed run"
ls "$T" | grep -q staging && fail "staging directory left behind"
echo "test_iw_diag: all checks passed"
exit 0
