#!/usr/bin/env bash
# Checks that every #include "boltzlab/LAYER/..." in lib/boltzlab points to the same
# layer or one below it (ARCHITECTURE.md, "Layers"). Prints each upward include and
# exits 1 if there is any. Usage: bash tools/check-layers.sh [SOURCE_DIR]
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
# Each layer and the layers its files may include (besides itself).
declare -A allowed=(
  [core]=""
  [io]="core"
  [targets]="core io"
  [molecules]="core io targets"
  [flows]="core io targets molecules"
  [estimators]="core io targets molecules"
  [generators]="core io targets molecules flows estimators"
  [app]="core io targets molecules flows estimators generators"
)
bad=0
for dir in lib/boltzlab/*/; do
  layer=$(basename "$dir")
  if [[ -z ${allowed[$layer]+x} ]]; then
    echo "check-layers: lib/boltzlab/$layer is not a known layer (add it to tools/check-layers.sh and ARCHITECTURE.md)"
    bad=1
    continue
  fi
  while IFS=: read -r file line target; do
    [[ $target == "$layer" ]] && continue
    if [[ " ${allowed[$layer]} " != *" $target "* ]]; then
      echo "check-layers: $file:$line: $layer includes boltzlab/$target (allowed: ${allowed[$layer]:-nothing})"
      bad=1
    fi
  done < <(grep -nE '^#include "boltzlab/' "$dir"*.[ch]pp | sed -E 's|^([^:]+):([0-9]+):#include "boltzlab/([a-z_]+)/.*|\1:\2:\3|')
done
((bad == 0)) && echo "check-layers: every include points down (core < io < targets < molecules < flows, estimators < generators < app)"
exit $bad
