#!/usr/bin/env bash
# The README's main-job command: set up (packages, build), then run the default job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
build/bin/wgf-relax --potential potentials/manywell32.json --flow mala --particles 4096 \
  --steps 2000 --out runs/manywell32 "$@"
