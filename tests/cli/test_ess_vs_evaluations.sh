#!/bin/bash
# tools/ess_vs_evaluations.py: the table of the shipped points (one row per CSV row, numbered per
# target), the PNG, a run's refinement rungs as a curve (its final point at the evaluations spent
# before the run plus the run's training), and a bad CSV row refused with one line naming the line.
set -u
BIN="$1"; SRC="$2"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
TOOL="$SRC/tools/ess_vs_evaluations.py"
CSV="$SRC/docs/results/ess_vs_evaluations.csv"
/usr/bin/python3 "$TOOL" --png "$T/p.png" > "$T/table" 2> "$T/err" || { cat "$T/err"; fail "shipped points"; }
rows=$(( $(wc -l < "$CSV") - 1 ))
[ "$(grep -c '^| [^t-]' "$T/table")" -eq "$rows" ] || { cat "$T/table"; fail "table rows differ from the $rows CSV rows"; }
head -c 8 "$T/p.png" | od -An -c | grep -q 'P   N   G' || fail "not a PNG"
mkdir -p "$T/run"
cat > "$T/run/summary.json" <<'JSON'
{"importance": {"ess_fraction": 0.5},
 "training": {"energy_evaluations": 1300,
              "refinement": {"result": {"rungs": [{"energy_evaluations": 100, "ess_fraction": 0.2},
                                                  {"energy_evaluations": 100, "ess_fraction": 0.4}],
                                        "final": {"energy_evaluations": 100, "ess_fraction": 0.45}}}}}
JSON
/usr/bin/python3 "$TOOL" --csv "$CSV" --run "GMM-40:test run:data:$T/run:1000" --png "$T/q.png" > "$T/table2" 2> "$T/err" \
  || { cat "$T/err"; fail "--run"; }
# Final point: 1000 before + 1300 of the run's training; ESS 50 %.
grep -q '| GMM-40 | [0-9]* | test run (final) | data | 2.3e+03 | 50 % |' "$T/table2" || { cat "$T/table2"; fail "--run final row"; }
printf 'target,label,kind,evaluations,ess_percent,source\nX,y,guess,10,5,z\n' > "$T/bad.csv"
/usr/bin/python3 "$TOOL" --csv "$T/bad.csv" > /dev/null 2> "$T/err" && fail "bad kind accepted"
[ "$(wc -l < "$T/err")" -eq 1 ] && grep -qF "bad.csv:2: kind is 'guess'" "$T/err" || { cat "$T/err"; fail "bad kind: not one line naming the line"; }
/usr/bin/python3 "$TOOL" --csv "$CSV" --run "GMM-40:test run:guess:$T/run" > /dev/null 2> "$T/err" && fail "bad --run kind accepted"
[ "$(wc -l < "$T/err")" -eq 1 ] && grep -qF "kind is 'guess'" "$T/err" || { cat "$T/err"; fail "bad --run kind: not one line"; }
echo ok
