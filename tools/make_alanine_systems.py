#!/usr/bin/python3
"""Regenerates the shipped alanine dipeptide OpenMM Systems and their test data.

Run from anywhere (paths are relative to the repository root):

    /usr/bin/python3 tools/make_alanine_systems.py

Needs Debian's python3-openmm (python3-simtk) and python3-numpy. The C++ side never
runs Python: this script only makes the serialized System XMLs in potentials/
reproducible, and writes reference energies/forces that tests/targets/test_openmm.cpp
compares the C++ OpenMM target against.

Systems (22 atoms, no constraints, no cutoff, CMMotionRemover as createSystem adds it):
  alanine_dipeptide.xml         amber99sbildn + amber99_obc.xml (OBC2, GBSAOBCForce),
                                from data/alanine_dipeptide/alanine_dipeptide.pdb
  alanine_dipeptide_vacuum.xml  amber99sbildn in vacuum, same PDB
  alanine_dipeptide_obc1.xml    Amber ff96 + OBC1 (CustomGBForce) from
                                data/alanine_dipeptide/amber96_obc1.{prmtop,crd}

Test data (tests/data/ala2_<key>_*.npy, float64): 100 configurations per system from a
short Langevin run at 300 K (LangevinMiddleIntegrator, 1 fs, friction 1/ps, 1000 steps of
equilibration, then a frame every 50 steps), with positions (100x66, nm), potential
energies (100, kJ/mol) and forces (100x66, kJ/mol/nm) evaluated on the platform that the
potential file names (parameters.platform, default Reference).
"""
import json
import os
import sys

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data", "alanine_dipeptide")
POTENTIALS = os.path.join(ROOT, "potentials")
TEST_DATA = os.path.join(ROOT, "tests", "data")

FRAMES = 100
EQUILIBRATION_STEPS = 1000
STEPS_PER_FRAME = 50
TEMPERATURE = 300.0 * unit.kelvin


def build_systems():
    """(key, potential file stem, System, starting positions) for each shipped system."""
    pdb = app.PDBFile(os.path.join(DATA, "alanine_dipeptide.pdb"))
    obc2 = app.ForceField("amber99sbildn.xml", "amber99_obc.xml").createSystem(
        pdb.topology, nonbondedMethod=app.NoCutoff, constraints=None, rigidWater=False)
    vacuum = app.ForceField("amber99sbildn.xml").createSystem(
        pdb.topology, nonbondedMethod=app.NoCutoff, constraints=None, rigidWater=False)
    prmtop = app.AmberPrmtopFile(os.path.join(DATA, "amber96_obc1.prmtop"))
    inpcrd = app.AmberInpcrdFile(os.path.join(DATA, "amber96_obc1.crd"))
    obc1 = prmtop.createSystem(implicitSolvent=app.OBC1, constraints=None,
                               nonbondedMethod=app.NoCutoff, nonbondedCutoff=None)
    return [
        ("obc2", "alanine_dipeptide", obc2, pdb.positions),
        ("vacuum", "alanine_dipeptide_vacuum", vacuum, pdb.positions),
        ("obc1", "alanine_dipeptide_obc1", obc1, inpcrd.positions),
    ]


def platform_of(stem):
    """Platform named by potentials/<stem>.json (Reference when the file is absent)."""
    path = os.path.join(POTENTIALS, stem + ".json")
    if not os.path.exists(path):
        return "Reference"
    with open(path) as f:
        return json.load(f).get("parameters", {}).get("platform", "Reference")


def make_context(system, platform_name, integrator):
    platform = openmm.Platform.getPlatformByName(platform_name)
    properties = {"Threads": "1"} if platform_name == "CPU" else {}
    return openmm.Context(system, integrator, platform, properties)


def energy_and_forces(context, positions_nm):
    context.setPositions(positions_nm)
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    return energy, np.asarray(forces, dtype=np.float64).reshape(-1)


def main():
    os.makedirs(TEST_DATA, exist_ok=True)
    for key, stem, system, positions in build_systems():
        xml_path = os.path.join(POTENTIALS, stem + ".xml")
        with open(xml_path, "w") as f:
            f.write(openmm.XmlSerializer.serialize(system))
        platform_name = platform_of(stem)

        # Energy at the shipped coordinates, on the Reference platform (the figure the
        # tests check) and on the potential's platform.
        ref = make_context(system, "Reference", openmm.VerletIntegrator(0.001))
        ref.setPositions(positions)
        e_ref = ref.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)

        integrator = openmm.LangevinMiddleIntegrator(TEMPERATURE, 1.0 / unit.picosecond,
                                                     1.0 * unit.femtoseconds)
        integrator.setRandomNumberSeed(2026)
        md = make_context(system, "Reference", integrator)
        md.setPositions(positions)
        md.setVelocitiesToTemperature(TEMPERATURE, 2026)
        integrator.step(EQUILIBRATION_STEPS)
        eval_context = make_context(system, platform_name, openmm.VerletIntegrator(0.001))
        xs, es, fs = [], [], []
        for _ in range(FRAMES):
            integrator.step(STEPS_PER_FRAME)
            x = md.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
            x = np.asarray(x, dtype=np.float64)
            e, f = energy_and_forces(eval_context, x)
            xs.append(x.reshape(-1))
            es.append(e)
            fs.append(f)
        base = os.path.join(TEST_DATA, "ala2_" + key)
        np.save(base + "_positions.npy", np.array(xs))
        np.save(base + "_energies.npy", np.array(es))
        np.save(base + "_forces.npy", np.array(fs))
        print(f"{stem}: wrote {os.path.relpath(xml_path, ROOT)}; energy at the shipped coordinates "
              f"{e_ref:.6f} kJ/mol (Reference); {FRAMES} test configurations on {platform_name}, "
              f"energies {min(es):.2f}..{max(es):.2f} kJ/mol")
    return 0


if __name__ == "__main__":
    sys.exit(main())
