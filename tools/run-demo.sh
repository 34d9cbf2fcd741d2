#!/usr/bin/env bash
# The README's main-job command: set up (packages, build), then run the default job:
# the molecular OT-Boltzmann generator for alanine dipeptide (replica exchange, 2.5·10⁵ frames, base fit, training, 10⁵ samples:
# ≈ 11 min wall and 1.8 GB on 2 cores after the build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
build/bin/bg-sample --potential potentials/alanine_dipeptide.json --out runs/alanine_dipeptide --threads 2 "$@"
