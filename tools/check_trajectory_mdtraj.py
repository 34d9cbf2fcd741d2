#!/usr/bin/python3
"""Checks a boltzlab molecular run directory with MDTraj (Debian python3-mdtraj).

    /usr/bin/python3 tools/check_trajectory_mdtraj.py RUN_DIR

Loads trajectory.dcd with topology.pdb and the multi-model trajectory.pdb, and
compares with boltzlab's own files:
  - DCD coordinates vs samples.npy (nm; DCD stores float32 Å: tolerance 1e-5 nm),
  - MDTraj's phi/psi (md.compute_phi / md.compute_psi) vs dihedrals.npy: the same atoms
    and angles to 1e-4 rad from the DCD (float32 rounding) and 2e-2 rad from the PDB
    (0.001 Å rounding gives up to ~5e-3 rad near short bonds), comparing angles modulo 2 pi.
Prints the deviations and exits 0 when all agree, 1 otherwise.
"""
import json
import os
import sys

import mdtraj as md
import numpy as np


def angle_error(a, b):
    d = np.abs(a - b) % (2 * np.pi)
    return np.minimum(d, 2 * np.pi - d)


def main(run):
    summary = json.load(open(os.path.join(run, "summary.json")))
    mol = summary["molecular"]
    samples = np.load(os.path.join(run, "samples.npy"))
    dihedrals = np.load(os.path.join(run, "dihedrals.npy"))
    traj = md.load(os.path.join(run, "trajectory.dcd"), top=os.path.join(run, "topology.pdb"))
    ok = True

    n = samples.shape[0]
    if traj.n_frames != n or traj.n_atoms * 3 != samples.shape[1]:
        print(f"DCD has {traj.n_frames} frames of {traj.n_atoms} atoms, samples.npy is {samples.shape}")
        return 1
    xyz_err = np.abs(traj.xyz.reshape(n, -1) - samples).max()
    print(f"DCD vs samples.npy: max |dx| = {xyz_err:.2e} nm over {n} frames")
    ok &= xyz_err < 1e-5

    phi_idx, phi = md.compute_phi(traj)
    psi_idx, psi = md.compute_psi(traj)
    print(f"MDTraj phi atoms {phi_idx.tolist()}, psi atoms {psi_idx.tolist()}; boltzlab "
          f"{mol['dihedrals']['phi_atoms']}, {mol['dihedrals']['psi_atoms']}")
    ok &= phi_idx.tolist() == [mol["dihedrals"]["phi_atoms"]] and psi_idx.tolist() == [mol["dihedrals"]["psi_atoms"]]
    e_phi = angle_error(phi[:, 0], dihedrals[:, 0]).max()
    e_psi = angle_error(psi[:, 0], dihedrals[:, 1]).max()
    print(f"DCD: max |phi - phi_boltzlab| = {e_phi:.2e} rad, max |psi - psi_boltzlab| = {e_psi:.2e} rad")
    ok &= e_phi < 1e-4 and e_psi < 1e-4

    pdb = md.load(os.path.join(run, "trajectory.pdb"))
    stride = mol.get("trajectory_pdb_stride", 1)
    ref = dihedrals[::stride]
    _, phi_p = md.compute_phi(pdb)
    _, psi_p = md.compute_psi(pdb)
    if pdb.n_frames != ref.shape[0]:
        print(f"trajectory.pdb has {pdb.n_frames} models, expected {ref.shape[0]} (stride {stride})")
        return 1
    e_pdb = max(angle_error(phi_p[:, 0], ref[:, 0]).max(), angle_error(psi_p[:, 0], ref[:, 1]).max())
    print(f"PDB ({pdb.n_frames} models): max dihedral deviation = {e_pdb:.2e} rad")
    ok &= e_pdb < 2e-2
    print("agree" if ok else "DISAGREE")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: check_trajectory_mdtraj.py RUN_DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
