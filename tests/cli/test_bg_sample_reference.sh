#!/bin/bash
# bg-sample's comparison with reference dihedrals (summary["ramachandran_vs_reference"],
# estimators/ramachandran_compare.hpp): bad input fails with one line naming the flag or
# field and the file, before training and without a run directory; a tiny run's numbers
# are recomputed independently with NumPy (histogram2d, SNIS, batch means).
set -u
BIN="$1"; SRC="$2"
[ -x "$BIN/bg-sample" ] || { echo "bg-sample not built (no LibTorch): skipped"; exit 0; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
P="$SRC/potentials/alanine_dipeptide.json"
REF="$SRC/data/alanine_dipeptide/rex_reference_dihedrals.npy"  # the potential's reference_dihedrals

# Bad input: missing file, wrong shape, degrees, a non-molecular target; the generator key.
/usr/bin/python3 - "$T" "$P" <<'PY'
import json, os, sys, numpy as np
t, p = sys.argv[1], sys.argv[2]
np.save(t + "/wide.npy", np.zeros((100, 3)))
np.save(t + "/degrees.npy", np.full((100, 2), 120.0))
pot = json.load(open(p))
base = os.path.dirname(os.path.abspath(p))
for k in ("system", "pdb"):
    pot["parameters"][k] = os.path.normpath(os.path.join(base, pot["parameters"][k]))
pot["generator"]["data"] = os.path.normpath(os.path.join(base, "../data/alanine_dipeptide/md_reference_positions.npy"))
pot["generator"]["reference_dihedrals"] = "nowhere.npy"
json.dump(pot, open(t + "/badref.json", "w"))
PY
expect_error() {  # expect_error "<text in the message>" args...
  local want="$1"; shift
  "$BIN/bg-sample" "$@" --out "$T/bad" --threads 1 -q > "$T/out" 2> "$T/err" && fail "accepted: $*"
  [ "$(wc -l < "$T/err")" -eq 1 ] || { cat "$T/err"; fail "not one line: $*"; }
  grep -q -- "$want" "$T/err" || { cat "$T/err"; fail "message lacks '$want': $*"; }
  [ ! -e "$T/bad" ] || fail "run directory written for bad input: $*"
}
expect_error "missing.npy" --potential "$P" --reference "$T/missing.npy"
expect_error "--reference: .*wide.npy.*(100, 3)" --potential "$P" --reference "$T/wide.npy"
expect_error "degrees.npy.*radians" --potential "$P" --reference "$T/degrees.npy"
expect_error "generator.reference_dihedrals: .*nowhere.npy" --potential "$T/badref.json"
expect_error "molecular target" --potential "$SRC/potentials/gaussian2d.json" --reference "$REF"

# A tiny run: every number against NumPy.
"$BIN/bg-sample" --potential "$P" --data "$SRC/data/alanine_dipeptide/md_reference_positions.npy" --out "$T/run" \
  --iterations 3 --samples 400 --threads 2 -q \
  2> "$T/log" || { cat "$T/log"; fail "run failed"; }
/usr/bin/python3 - "$T/run" "$REF" <<'PY' || fail "ramachandran_vs_reference disagrees with NumPy"
import json, sys, numpy as np
d, ref_path = sys.argv[1], sys.argv[2]
r = json.load(open(d + "/summary.json"))["ramachandran_vs_reference"]
ang, lw, ref = np.load(d + "/dihedrals.npy"), np.load(d + "/log_weights.npy"), np.load(ref_path)
ok = np.isfinite(lw) & np.isfinite(ang).all(1)
w = np.zeros(len(lw)); w[ok] = np.exp(lw[ok] - lw[ok].max())
R = [[-np.pi, np.pi], [-np.pi, np.pi]]
def hist(a, b, weights=None):
    return np.histogram2d(a[:, 0], a[:, 1], bins=b, range=R, weights=weights)[0]
def kl(h, g, eps=1e-10):
    p = h / h.sum() + eps; q = g / g.sum() + eps
    p, q = p / p.sum(), q / q.sum()
    return float((p * np.log(p / q)).sum())
def tv(h, g):
    return 0.5 * float(np.abs(h / h.sum() - g / g.sum()).sum())
h1, h2 = ref[: len(ref) // 2], ref[len(ref) // 2:]
close = lambda a, b: abs(a - b) <= 1e-9 * max(1.0, abs(b))
assert close(r["forward_kl"]["noise_floor"], kl(hist(h1, 64), hist(h2, 64))), r["forward_kl"]
assert close(r["total_variation"]["noise_floor"], tv(hist(h1, 100), hist(h2, 100))), r["total_variation"]
assert close(r["forward_kl"]["model"], kl(hist(ref, 64), hist(ang, 64, w))), r["forward_kl"]
assert close(r["total_variation"]["model"], tv(hist(ref, 100), hist(ang, 100, w))), r["total_variation"]
wn = w / w.sum(); f = (ang[:, 0] >= 0).astype(float)
mu = float((wn * f).sum()); se = float(np.sqrt((wn**2 * (f - mu) ** 2).sum()))
pm = r["phi_positive"]["model"]
assert abs(pm["mean"] - mu) <= 1e-12 and abs(pm["standard_error"] - se) <= 1e-12, (pm, mu, se)
blocks = (ref[:, 0] >= 0).astype(float).reshape(20, -1).mean(1)
pr = r["phi_positive"]["reference"]
assert close(pr["mean"], blocks.mean()) and close(pr["standard_error"], blocks.std(ddof=1) / np.sqrt(20)), pr
assert r["reference_frames"] == 10000 and r["model_samples"] == 400
print("noise floor KL %.4f TV %.4f; model KL %.3f TV %.3f" % (r["forward_kl"]["noise_floor"],
      r["total_variation"]["noise_floor"], r["forward_kl"]["model"], r["total_variation"]["model"]))
PY

# iw-diag computes the same comparison from the run directory.
if [ -x "$BIN/iw-diag" ]; then
  "$BIN/iw-diag" --run "$T/run" --reference "$REF" --json --no-plots > "$T/iw.json" 2> "$T/iw.err" \
    || { cat "$T/iw.err"; fail "iw-diag --reference failed"; }
  /usr/bin/python3 - "$T/run/summary.json" "$T/iw.json" <<'PY' || fail "iw-diag and bg-sample disagree"
import json, sys
a = json.load(open(sys.argv[1]))["ramachandran_vs_reference"]
b = json.load(open(sys.argv[2]))["ramachandran_vs_reference"]
for k in ("forward_kl", "total_variation"):
    for m in ("model", "noise_floor"):
        assert abs(a[k][m] - b[k][m]) <= 1e-12 * max(1, abs(a[k][m])), (k, m, a[k][m], b[k][m])
assert a["phi_positive"]["model"] == b["phi_positive"]["model"]
PY
  /usr/bin/python3 -c "import numpy as np; np.save('$T/lw.npy', np.zeros(50))"
  "$BIN/iw-diag" --log-weights "$T/lw.npy" --reference "$REF" > /dev/null 2> "$T/iw.err" && fail "iw-diag accepted --reference without dihedrals"
  grep -q "needs dihedrals" "$T/iw.err" || { cat "$T/iw.err"; fail "iw-diag: unclear message"; }
  "$BIN/iw-diag" --run "$T/run" --reference "$T/wide.npy" > /dev/null 2> "$T/iw.err" && fail "iw-diag accepted a wide reference"
  grep -q -- "--reference: .*wide.npy" "$T/iw.err" || { cat "$T/iw.err"; fail "iw-diag: unclear message for wide.npy"; }
fi
echo ok
