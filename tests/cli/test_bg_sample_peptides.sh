#!/bin/bash
# bg-sample on the two other shipped molecules with nothing but their potential files (tiny
# budgets): internal coordinates built from the bond graph, training frames from a replica-exchange
# run made on the spot, basin populations per residue in summary.json; and a structure file in
# another atom order refused with one line.
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# A copy of a shipped potential with absolute paths and a 10 ps replica exchange (2 replicas).
small() {
  /usr/bin/python3 - "$SRC/potentials/$1.json" "$T/$1.json" <<'PY'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
p = json.load(open(src)); base = os.path.dirname(os.path.abspath(src))
for k in ("system", "pdb"):
    p["parameters"][k] = os.path.join(base, p["parameters"][k])
g = p["generator"]
g["replica_exchange"] = {"t_max": 400, "replicas": 2, "production_ns": 0.01, "equilibration_ps": 1,
                         "exchange_interval_ps": 0.01, "frame_interval_ps": 0.01}
g.pop("reference_dihedrals", None)
g["base_experts"] = False; g["base_components"] = 2
for k in ("base_joint_bins", "base_em_iterations"):
    g.pop(k, None)
json.dump(p, open(dst, "w"))
PY
}

for m in phenylalanine_dipeptide:32:1 alanine_tetrapeptide:42:3; do
  name=${m%%:*}; rest=${m#*:}; atoms=${rest%%:*}; residues=${rest#*:}
  small "$name"
  "$BIN/bg-sample" --potential "$T/$name.json" --out "$T/$name" --iterations 3 --samples 300 --threads 2 \
    -q 2> "$T/$name.log" || { cat "$T/$name.log"; fail "$name run failed"; }
  grep -q "reweighted residue" "$T/$name.log" || { cat "$T/$name.log"; fail "$name: no basin populations on the console"; }
  /usr/bin/python3 - "$T/$name" "$atoms" "$residues" <<'PY' || fail "$name: summary inconsistent"
import json, sys, numpy as np
d, atoms, residues = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = json.load(open(d + "/summary.json"))
m = s["molecular_generator"]
assert m["flow_dim"] == 3 * atoms - 6, m["flow_dim"]
assert m["data"]["source"] == "replica_exchange" and m["data"]["frames"] == 1000, m["data"]
assert len(m["data"]["neighbor_acceptance"]) == 1
assert len(m["z_matrix"]["chiral_centers"]) == residues  # one L alpha carbon per residue
c = s["conformations"]["residues"]
assert len(c) == residues, c.keys()
for r in c.values():
    total = sum(r[b]["population"] for b in ("alpha_R", "beta_C7eq", "C7ax", "alpha_L"))
    assert abs(total - 1) < 1e-9, total
    assert abs(r["phi_positive"]["population"] - r["C7ax"]["population"] - r["alpha_L"]["population"]) < 1e-12
assert np.load(d + "/samples.npy").shape == (300, 3 * atoms)
PY
done

# Two atoms of the structure file swapped: refused, one line naming the atom, nothing written.
/usr/bin/python3 - "$T/phenylalanine_dipeptide.json" "$T" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
lines = open(p["parameters"]["pdb"]).read().splitlines()
atoms = [i for i, l in enumerate(lines) if l.startswith(("ATOM", "HETATM"))]
lines[atoms[5]], lines[atoms[6]] = lines[atoms[6]], lines[atoms[5]]
open(sys.argv[2] + "/shuffled.pdb", "w").write("\n".join(lines) + "\n")
p["parameters"]["pdb"] = sys.argv[2] + "/shuffled.pdb"
json.dump(p, open(sys.argv[2] + "/shuffled.json", "w"))
PY
"$BIN/bg-sample" --potential "$T/shuffled.json" --out "$T/shuffled" --iterations 3 --samples 300 -q \
  2> "$T/err" && fail "shuffled structure accepted"
[ "$(wc -l < "$T/err")" -eq 1 ] || { cat "$T/err"; fail "more than one line"; }
grep -q "atom order is not the System's" "$T/err" || { cat "$T/err"; fail "message does not name the cause"; }
[ ! -e "$T/shuffled" ] || fail "a run directory was written"
echo "ok"
