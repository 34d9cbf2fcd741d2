# Shared by tests/cli/test_mpi_*.sh (sourced; not a test itself).
# MPIRUN: mpirun on this machine only (shared memory and loopback), allowed as root (CI
# runs as root), more ranks than cores allowed (the test machine has 2 cores).
MPIRUN=(mpirun --oversubscribe --allow-run-as-root --mca btl self,vader --mca btl_vader_single_copy_mechanism none)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# same_run_directory A B: every file but plots and summary.json byte-identical (the same
# names on both sides), and summary.json equal once the fields that say how the run
# went rather than what it computed are dropped: timings, threads, ranks, times and rates
# (keys ending in "seconds" or "_per_second"), the OpenMM Contexts created (one per worker
# thread that evaluated; it differs between thread counts of one process too), and the
# paths of the two runs (options.out, model_file).
same_run_directory() {
  local a=$1 b=$2 f
  diff <(cd "$a" && ls | grep -v '\.png$' | sort) <(cd "$b" && ls | grep -v '\.png$' | sort) >/dev/null ||
    { echo "different files in $a and $b"; return 1; }
  for f in $(cd "$a" && ls | grep -v -e '\.png$' -e '^summary\.json$'); do
    cmp -s "$a/$f" "$b/$f" || { echo "$f differs"; return 1; }
  done
  /usr/bin/python3 - "$a/summary.json" "$b/summary.json" <<'PY'
import json, sys
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items()
                if k not in ("timings", "threads", "ranks", "contexts_created", "out", "model_file")
                and not k.endswith("seconds") and not k.endswith("_per_second")}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
a, b = (strip(json.load(open(p))) for p in sys.argv[1:3])
if a != b:
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            print("summary.json differs in", k)
    sys.exit(1)
PY
}
