#!/usr/bin/env bash
# The README's test command: set up (packages, build), then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cd build
ctest -j "${BOLTZLAB_JOBS:-$(nproc)}" --output-on-failure --timeout 600
