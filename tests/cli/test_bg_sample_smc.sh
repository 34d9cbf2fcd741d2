#!/bin/bash
# bg-sample --smc: annealed SMC after a flow on the 1-D double well (exact log Z): the run
# contract (smc_*.npy listed in summary files, log mean exp of smc_log_weights = log Ẑ, the
# starting draws = the flow's first N draws, evaluations counted), log Ẑ within 4 of its
# ancestry standard errors, identical results for 1 and 2 threads and from a reloaded model,
# and one clear line for bad settings, an unknown key and the score rows.
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
/usr/bin/python3 -c "
import json; p = json.load(open('$SRC/potentials/double_well.json'))
p.setdefault('generator', {}).update({'width': 8, 'batch_size': 64, 'steps': 4, 'sample_steps': 4,
                                       'smc': {'cess': 0.95, 'mala_steps': 3}})
json.dump(p, open('$T/dw.json', 'w'))" || fail "cannot write the test potential"
P="$T/dw.json"
run() { "$BIN/bg-sample" --potential "$P" --iterations 20 --samples 1500 -q "$@"; }
run --smc 1000 --threads 2 --out "$T/a" 2> "$T/log" || { cat "$T/log"; fail "smc run"; }
run --smc 1000 --threads 1 --out "$T/b" 2> /dev/null || fail "smc run, 1 thread"
for f in smc_samples.npy smc_log_weights.npy smc_reduced_energies.npy samples.npy; do
  cmp -s "$T/a/$f" "$T/b/$f" || fail "$f differs between 1 and 2 threads"
done
/usr/bin/python3 - "$T/a" <<'PY' || fail "smc summary/arrays inconsistent"
import json, sys, numpy as np
d = sys.argv[1]
s = json.load(open(d + "/summary.json"))
x, lw, u = (np.load(d + "/" + f) for f in ["smc_samples.npy", "smc_log_weights.npy", "smc_reduced_energies.npy"])
m = s["smc"]
assert x.shape == (1000, 2) and lw.shape == (1000,) and u.shape == (1000,), (x.shape, lw.shape, u.shape)
for f in ["smc_samples.npy", "smc_log_weights.npy", "smc_reduced_energies.npy"]:
    assert f in s["files"], s["files"]
assert m["options"]["particles"] == 1000 and m["options"]["mala_steps"] == 3 and m["options"]["cess"] == 0.95
assert m["rungs"][-1]["beta"] == 1.0 and len(m["rungs"]) >= 2
# log mean exp of the log-weights is log Ẑ.
mx = lw.max(); assert abs(mx + np.log(np.exp(lw - mx).mean()) - m["log_z"]["estimate"]) < 1e-9
# The flow-only figures are those of the flow's first 1000 draws (rung 0 = samples.npy[:1000]).
flw = np.load(d + "/log_weights.npy")[:1000]; fm = flw.max()
assert abs(fm + np.log(np.exp(flw - fm).mean()) - m["flow_only"]["log_z"]) < 1e-9
ess = np.exp(flw - fm).sum() ** 2 / np.exp(2 * (flw - fm)).sum() / 1000
assert abs(ess - m["flow_only"]["ess_fraction"]) < 1e-9
# Unbiased Ẑ: log Ẑ within 4 ancestry standard errors of the exact value.
est, se, exact = m["log_z"]["estimate"], m["log_z"]["stderr"], m["log_z"]["exact"]
assert 0 < se < 0.2 and abs(est - exact) < 4 * se, (est, se, exact)
# Energies: u at the final particles; evaluations: N at rung 0, N per MALA step, N final energies.
assert np.all(np.isfinite(u))
assert m["energy_evaluations"] == 1000 * (2 + 3 * len(m["rungs"])), m["energy_evaluations"]
assert s["counts"]["smc_energy_evaluations"] == m["energy_evaluations"]
assert s["counts"]["energy_evaluations"] >= m["energy_evaluations"] + 1500
PY
"$BIN/bg-sample" --potential "$P" --model "$T/a/model.pt" --samples 1500 --smc 1000 --out "$T/again" -q 2> /dev/null \
  || fail "reload with --smc"
cmp -s "$T/a/smc_log_weights.npy" "$T/again/smc_log_weights.npy" || fail "the reloaded model gives other SMC weights"

expect_error() {  # expect_error PATTERN ARGS...
  local pat="$1"; shift  # exit 2: a bad flag (usage), 1: a bad input file
  "$BIN/bg-sample" "$@" > "$T/out" 2> "$T/err"; local rc=$?
  [ "$rc" -eq 1 ] || [ "$rc" -eq 2 ] || fail "exit $rc for: $*"
  grep -q "$pat" "$T/err" || { cat "$T/err"; fail "no '$pat' for: $*"; }
  [ "$(wc -l < "$T/err")" -eq 1 ] || { cat "$T/err"; fail "more than one error line for: $*"; }
  [ -e "$T/bad" ] && fail "output written for: $*"
  return 0
}
expect_error "smc is 1, but must be >= 2" --potential "$P" --smc 1 --out "$T/bad"
/usr/bin/python3 -c "
import json; p = json.load(open('$P')); p['generator']['smc'] = {'cess': 1.5}
json.dump(p, open('$T/cess.json', 'w'))
p['generator']['smc'] = {'mala_stepz': 2}
json.dump(p, open('$T/typo.json', 'w'))" || fail "cannot write the bad potentials"
expect_error "dw.json\|cess.json.*generator.smc.cess: must be in (0, 1)" --potential "$T/cess.json" --out "$T/bad"
expect_error "mala_stepz" --potential "$T/typo.json" --out "$T/bad"
expect_error "generator.smc (--smc): annealed SMC runs after the flow rows" --potential "$P" --preset score-flow \
  --smc 100 --out "$T/bad"
echo "ok"
