#!/usr/bin/env bash
# Installs the Debian 12 packages boltzlab needs (when missing), then configures and
# builds into build/ (tools land in build/bin/). Safe to run again: it only does
# what is missing. Run as root on a fresh machine, or as a user with the packages.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake g++ make libtbb-dev libeigen3-dev libboost-dev nlohmann-json3-dev doctest-dev
          libcli11-dev libopenmm-dev libopenmm-plugins libtorch-dev gnuplot-nox python3-numpy
          python3-simtk python3-mdtraj   # tools/make_alanine_systems.py, MDTraj trajectory check
          libopenblas0-pthread           # LibTorch's BLAS (libblas.so.3): 26-43x the reference BLAS
          pybind11-dev python3-pybind11 python3-dev python3-xarray python3-netcdf4 libnetcdf-dev   # python/, NetCDF
          libopenmpi-dev openmpi-bin)    # MPI: replica-exchange and wgf-relax over mpirun ranks (tests/cli/test_mpi_*.sh)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs=${BOLTZLAB_JOBS:-$(nproc)}
if [[ ! -f build/CMakeCache.txt ]]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build build -j "$jobs"
