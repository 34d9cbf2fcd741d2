#!/bin/bash
# bg-sample on alanine dipeptide (internal coordinates, trained on the shipped reference MD frames
# given with --data, instead of the shipped potential's 10 ns MD run):
# tiny budget; checks the run directory, the weight bookkeeping (zero weight exactly
# for the samples outside the domain/torsion range/chirality), molecular outputs,
# and that the saved model (with its molecular space) reproduces the samples.
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
P="$SRC/potentials/alanine_dipeptide.json"
D="$SRC/data/alanine_dipeptide/md_reference_positions.npy"
"$BIN/bg-sample" --potential "$P" --data "$D" --out "$T/run" --iterations 3 --samples 300 --threads 2 -q \
  2> "$T/log" || { cat "$T/log"; fail "molecular run failed"; }
for f in samples.npy log_q.npy reduced_energies.npy log_weights.npy summary.json model.pt dihedrals.npy; do
  [ -s "$T/run/$f" ] || fail "missing $f"
done
/usr/bin/python3 - "$T/run" <<'PY' || fail "molecular summary/arrays inconsistent"
import json, sys, numpy as np
d = sys.argv[1]
s = json.load(open(d + "/summary.json"))
x, lq, u, lw = (np.load(d + "/" + f) for f in ["samples.npy", "log_q.npy", "reduced_energies.npy", "log_weights.npy"])
assert x.shape == (300, 66)
m = s["molecular_generator"]
assert m["flow_dim"] == 60 and m["data"]["frames"] == 10000  # the shipped 10 ns reference (--data)
# The shipped potential's base: von Mises mixtures per torsion (K by BIC) on the soft torsions,
# conditional Gaussian experts on the rest. Soft: phi, psi (columns 41, 42, a joint mixture) and
# the three methyl rotors (CB HB1, ACE H1, NME H1: Z-matrix rows 10, 13, 16 of the built Z-matrix,
# placed after the heavy atoms), chosen by their circular spread; every other coordinate (55) is
# Gaussian given them.
assert m["base"] == "von_mises_mixture+conditional_gaussian" and len(m["base_components_per_torsion"]) == 19
c = m["base_conditional"]
assert c["soft_columns"] == [41, 42, 51, 54, 57] and c["joint_columns"] == [41, 42], c
rotors = [m["soft_torsions"][k] for k in (2, 3, 4)]
assert rotors == ["HB1-CB-CA-N (ALA2)", "H1-CH3-C-N (ACE1)", "H1-C-N-C (NME3)"], rotors
assert c["hard_columns"] == 55 and c["experts"] and 2 <= c["components"] <= 8, c
assert 0 < c["max_periodic_sd"] < 0.5, c
assert c["joint_correction_bins"] == 36, c  # the (phi, psi) bin correction of the shipped section
assert m["base_fit_seconds"] > 0
zero = ~np.isfinite(lw)
assert zero.sum() >= m["zero_weight_domain_chirality"]
ok = np.isfinite(lw)
assert np.allclose(lw[ok], -u[ok] - lq[ok], atol=1e-9)
assert "molecular" in s
PY
# tools/log_weight_residuals.py reads the run and reports the run's own Kish ESS.
/usr/bin/python3 "$SRC/tools/log_weight_residuals.py" "$T/run" > "$T/residuals" 2>&1 \
  || { cat "$T/residuals"; fail "log_weight_residuals.py failed"; }
/usr/bin/python3 - "$T/run" "$T/residuals" <<'PY' || fail "log_weight_residuals.py disagrees with summary.json"
import json, re, sys
ess = json.load(open(sys.argv[1] + "/summary.json"))["importance"]["ess_fraction"]
text = open(sys.argv[2]).read()
got = float(re.search(r"Kish ESS ([0-9.]+)", text).group(1))
assert abs(got - ess) < 1e-4, (got, ess)
assert "var(log w) explained by 24 x 24" in text and "atom-pair distances" in text, text
PY
"$BIN/bg-sample" --potential "$P" --model "$T/run/model.pt" --out "$T/again" --samples 300 -q 2>/dev/null \
  || fail "reload failed"
cmp -s "$T/run/samples.npy" "$T/again/samples.npy" || fail "reloaded model gives different samples"
# Annealed SMC after the molecular flow (base space, decoded with the domain and chirality rules):
# Cartesian particles, the flow-only figures of the first 100 draws, populations of the particles.
"$BIN/bg-sample" --potential "$P" --model "$T/run/model.pt" --out "$T/smc" --samples 300 --smc 100 -q 2>/dev/null \
  || fail "molecular --smc run failed"
/usr/bin/python3 - "$T/smc" <<'PY' || fail "molecular SMC outputs inconsistent"
import json, sys, numpy as np
d = sys.argv[1]
s = json.load(open(d + "/summary.json")); m = s["smc"]
x, lw, u = (np.load(d + "/" + f) for f in ["smc_samples.npy", "smc_log_weights.npy", "smc_reduced_energies.npy"])
assert x.shape == (100, 66) and lw.shape == (100,) and u.shape == (100,)
flw = np.load(d + "/log_weights.npy")[:100]; ok = np.isfinite(flw); mx = flw[ok].max()
assert abs(mx + np.log(np.exp(flw[ok] - mx).sum() / 100) - m["flow_only"]["log_z"]) < 1e-9
assert np.all(np.isfinite(u[np.isfinite(lw)])) and np.isfinite(m["log_z"]["estimate"])
assert "residues" in m["conformations"] and m["rungs"][-1]["beta"] == 1.0
assert s["counts"]["smc_energy_evaluations"] == m["energy_evaluations"] > 100
PY
# Training (base fit with its EM, flow) and sampling do not depend on the thread count.
"$BIN/bg-sample" --potential "$P" --data "$D" --out "$T/one" --iterations 3 --samples 300 --threads 1 -q \
  2>/dev/null || fail "one-thread run failed"
cmp -s "$T/run/samples.npy" "$T/one/samples.npy" || fail "--threads 1 and --threads 2 give different samples"
cmp -s "$T/run/log_weights.npy" "$T/one/log_weights.npy" || fail "--threads 1 and 2 give different weights"
# Two-stage schedule with reverse KL through the internal-coordinate map (1 warm-up step,
# then lambda = 0.5) and the running ESS; uniform torsion base.
/usr/bin/python3 - "$P" "$T/mixed.json" <<'PY' || fail "cannot write the mixed-schedule potential"
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
p = json.load(open(src)); base = os.path.dirname(os.path.abspath(src))
for k in ("system", "pdb"):
    p["parameters"][k] = os.path.join(base, p["parameters"][k])
g = p["generator"]
for k in ("data", "reference_dihedrals"):  # paths relative to the potential file
    if k in g:
        g[k] = os.path.join(base, g[k])
g["data"] = os.path.join(base, "../data/alanine_dipeptide/md_reference_positions.npy")
# conditional-base keys, and the flow keys that need that base
for k in ("base_experts", "base_components", "base_em_iterations", "base_joint_bins", "flow_whitening",
          "coupling_condition_soft"):
    g.pop(k, None)
g.update({ "iterations": 3, "warmup_iterations": 1, "lambda": 0.5,
          "batch_size": 32, "chunk_size": 16, "eval_every": 2, "eval_samples": 64, "samples": 200,
          "base": "uniform"})
json.dump(p, open(dst, "w"))
PY
"$BIN/bg-sample" --potential "$T/mixed.json" --out "$T/mixed" --threads 2 -q 2> "$T/log2" \
  || { cat "$T/log2"; fail "mixed-schedule run failed"; }
/usr/bin/python3 - "$T/mixed" <<'PY' || fail "mixed-schedule summary inconsistent"
import json, sys, math
s = json.load(open(sys.argv[1] + "/summary.json"))
t = s["training"]; h = t["history"]
assert t["options"]["warmup_iterations"] == 1 and t["options"]["weights"]["lambda"] == 0.5
assert h["reverse_kl"][0] is None and h["reverse_kl"][1] is not None  # warm-up step: forward KL only
# 2 reverse-KL steps of 32 draws minus the masked ones, plus 2 running-ESS batches of 64
# (valid draws only): every energy is counted, none outside those.
n_rev = 2 * 32 - t["invalid_reverse_kl_draws"]
assert n_rev < t["energy_evaluations"] <= n_rev + 2 * 64
assert h["eval_iteration"] == [2, 3] and all(0 <= e <= 1 for e in h["eval_ess"])
assert s["molecular_generator"]["base"] == "uniform"
assert s["counts"]["energy_evaluations"] >= t["energy_evaluations"] + 200 - s["molecular_generator"]["zero_weight_domain_chirality"]
PY
# Refinement through the internal-coordinate map: rungs of fresh draws weighted by the energy
# (log w with the map's log-Jacobian, zero outside the domain) after the data training.
/usr/bin/python3 - "$T/mixed.json" "$T/refine.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["generator"]["refinement"] = {"rungs": 2, "samples_per_rung": 64, "steps_per_rung": 2, "batch_size": 32}
json.dump(p, open(sys.argv[2], "w"))
PY
"$BIN/bg-sample" --potential "$T/refine.json" --out "$T/refine" --threads 2 -q 2> "$T/log5" \
  || { cat "$T/log5"; fail "molecular refinement run failed"; }
/usr/bin/python3 - "$T/refine" "$T/mixed" <<'PY' || fail "molecular refinement summary inconsistent"
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
m = json.load(open(sys.argv[2] + "/summary.json"))
f = s["training"]["refinement"]["result"]
assert [r["rung"] for r in f["rungs"]] == [1, 2] and f["final"]["rung"] == 3, f
assert all(r["samples"] == 64 and 0 <= r["ess_fraction"] <= 1 for r in f["rungs"] + [f["final"]]), f
# Each draw inside the domain costs one energy evaluation; rows outside it have weight zero.
assert all(r["energy_evaluations"] + r["zero_weight"] >= 64 for r in f["rungs"]), f
assert s["training"]["iterations"] == 3 + 2 * 2
assert s["training"]["energy_evaluations"] == m["training"]["energy_evaluations"] + f["energy_evaluations"]
PY
# Conditional-base keys without the conditional base are refused with one line naming the field.
/usr/bin/python3 - "$T/mixed.json" "$T/badbase.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1])); p["generator"]["base_experts"] = True
json.dump(p, open(sys.argv[2], "w"))
PY
"$BIN/bg-sample" --potential "$T/badbase.json" --out "$T/badbase" -q 2> "$T/err3" && fail "base_experts accepted"
[ "$(wc -l < "$T/err3")" -eq 1 ] || { cat "$T/err3"; fail "not one line"; }
grep -q 'generator.base_experts' "$T/err3" || { cat "$T/err3"; fail "message lacks the field"; }
[ -e "$T/badbase" ] && fail "output written for a bad key"
# The same for the bin correction of the (phi, psi) marginal.
/usr/bin/python3 - "$T/mixed.json" "$T/badbins.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1])); p["generator"]["base_joint_bins"] = 36
json.dump(p, open(sys.argv[2], "w"))
PY
"$BIN/bg-sample" --potential "$T/badbins.json" --out "$T/badbins" -q 2> "$T/err4" && fail "base_joint_bins accepted"
[ "$(wc -l < "$T/err4")" -eq 1 ] || { cat "$T/err4"; fail "not one line"; }
grep -q 'generator.base_joint_bins' "$T/err4" || { cat "$T/err4"; fail "message lacks the field"; }
[ -e "$T/badbins" ] && fail "output written for a bad key"
echo ok
# "flow_whitening": the flow acts on the hard columns whitened given the soft torsions; the run
# reports it, and the saved model (with its whitening) reproduces the samples. Without the
# conditional-Gaussian base the key is refused with one line naming the file and the key.
/usr/bin/python3 - "$P" "$T" <<'PY' || fail "could not write the whitened potential files"
import json, os, sys
src, out = sys.argv[1], sys.argv[2]
d = json.load(open(src))
base = os.path.dirname(os.path.abspath(src))
for k in ("system", "pdb"):
    d["parameters"][k] = os.path.normpath(os.path.join(base, d["parameters"][k]))
g = d["generator"]
g["reference_dihedrals"] = os.path.normpath(os.path.join(base, g["reference_dihedrals"]))
g["flow_whitening"] = True
json.dump(d, open(out + "/whitened.json", "w"))
g["base"] = "von_mises"
for k in [k for k in g if k.startswith("base_")]:
    del g[k]
json.dump(d, open(out + "/unwhitenable.json", "w"))
PY
# $1: a run directory, reproduced sample for sample by its saved model under potential $2.
check_reload() {
  "$BIN/bg-sample" --potential "$2" --model "$1/model.pt" --out "$1.reload" --samples 300 -q 2>/dev/null \
    || fail "$1: reload failed"
  cmp -s "$1/samples.npy" "$1.reload/samples.npy" || fail "$1: the reloaded model gives different samples"
}
# Potential $1 refused in one line naming the file and the key $2, with no summary written.
check_refusal() {
  local out="$T/refused_$(basename "$1" .json)"
  "$BIN/bg-sample" --potential "$1" --data "$D" --out "$out" --iterations 3 --samples 300 -q 2> "$out.log" \
    && fail "$1 was accepted"
  [ "$(wc -l < "$out.log")" -eq 1 ] && grep -q "$(basename "$1").*$2" "$out.log" \
    || { cat "$out.log"; fail "$2 refusal is not one line naming the file and key"; }
  [ ! -e "$out/summary.json" ] || fail "a refused run left a summary"
}
"$BIN/bg-sample" --potential "$T/whitened.json" --data "$D" --out "$T/white" --iterations 3 --samples 300 --threads 2 -q \
  2> "$T/wlog" || { cat "$T/wlog"; fail "whitened run failed"; }
/usr/bin/python3 -c "import json, sys; assert json.load(open(sys.argv[1]))['molecular_generator']['flow_whitening'] is True" \
  "$T/white/summary.json" || fail "the whitened run does not report flow_whitening"
check_reload "$T/white" "$T/whitened.json"
check_refusal "$T/unwhitenable.json" flow_whitening
# "coupling_condition_soft": a spline coupling flow that leaves the base's soft torsions as they are;
# the run names those columns (the base's soft torsions), the reloaded model reproduces the samples,
# and the key is refused in one line naming the file and the key without a conditional-Gaussian base
# or with the OT-Flow.
/usr/bin/python3 - "$T" <<'PY' || fail "could not write the condition-soft potential files"
import json, sys
out = sys.argv[1]
d = json.load(open(out + "/whitened.json"))
g = d["generator"]
g.update({"flow": "spline_coupling", "coupling_layers": 2, "coupling_hidden": 8, "coupling_condition_soft": True})
json.dump(d, open(out + "/condsoft.json", "w"))
g["flow"] = "otflow"
for k in ("coupling_layers", "coupling_hidden", "spline_bins", "spline_bound"):
    g.pop(k, None)
json.dump(d, open(out + "/condsoft_otflow.json", "w"))
d = json.load(open(out + "/condsoft.json"))
g = d["generator"]
g["base"] = "von_mises"
g.pop("flow_whitening")
for k in [k for k in g if k.startswith("base_")]:
    del g[k]
json.dump(d, open(out + "/condsoft_nobase.json", "w"))
PY
"$BIN/bg-sample" --potential "$T/condsoft.json" --data "$D" --out "$T/cs" --iterations 3 --samples 300 --threads 2 -q \
  2> "$T/cslog" || { cat "$T/cslog"; fail "condition-soft run failed"; }
/usr/bin/python3 - "$T/cs/summary.json" <<'PY' || fail "the condition-soft run does not name its soft columns"
import json, sys
m = json.load(open(sys.argv[1]))["molecular_generator"]
cols = m["flow_condition_only"]
# one column per soft torsion of the base (phi, psi and the methyl rotors), all of them torsions
assert len(cols) == len(m["soft_torsions"]) >= 2 and cols == sorted(set(cols)), cols
assert all(c >= m["flow_dim"] - len(m["z_matrix"]["z_matrix"]) for c in cols), cols  # torsions are the last columns
PY
check_reload "$T/cs" "$T/condsoft.json"
check_refusal "$T/condsoft_nobase.json" coupling_condition_soft
check_refusal "$T/condsoft_otflow.json" coupling_condition_soft
echo ok
