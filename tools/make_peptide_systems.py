#!/usr/bin/python3
"""Builds the shipped capped-peptide OpenMM Systems from standard geometry, with test data.

Run from anywhere (paths are relative to the repository root):

    /usr/bin/python3 tools/make_peptide_systems.py [--retime]

Needs Debian's python3-openmm and python3-numpy (no PDBFixer: every heavy atom is placed
here). The C++ side never runs Python: this script only makes the structures in data/,
the serialized System XMLs in potentials/ and the reference energies/forces in
tests/data/ reproducible; tests/targets/test_openmm_peptides.cpp compares the C++ OpenMM
target against the latter.

Molecules (amber99sbildn + amber99_obc.xml = OBC2, GBSAOBCForce; no cutoff, no
constraints, rigidWater False, CMMotionRemover as createSystem adds it; 300 K):
  alanine_tetrapeptide     ACE-ALA-ALA-ALA-NME, 42 atoms   test data tests/data/ala4_obc2_*
  phenylalanine_dipeptide  ACE-PHE-NME, 32 atoms           test data tests/data/phe2_obc2_*

How each structure is made (deterministic: fixed seeds, Reference platform):
  1. Heavy atoms from standard peptide geometry by NeRF (natural extension reference
     frame; Parsons et al., J. Comput. Chem. 26, 1063 (2005)): bond lengths and angles
     of Engh & Huber, Acta Cryst. A47, 392 (1991); the caps' methyl carbons take the
     CA values. Every residue starts extended (phi -120, psi +130, omega 180), CB is put
     on the L side of CA, PHE starts in its most common rotamer m-85 (chi1 -65,
     chi2 -85; Lovell et al., Proteins 40, 389 (2000)).
  2. Hydrogens by openmm.app.Modeller.addHydrogens(forcefield) (its random starting
     offsets seeded, relaxed on Reference); then the atoms of every
     residue are put in the order of the force field's residue template (as in
     data/alanine_dipeptide/alanine_dipeptide.pdb), with PDB atom names.
  3. L-BFGS minimization, then 20 ps of Langevin MD (LangevinMiddleIntegrator, 300 K,
     1 fs, friction 1/ps, seed 2026); the last frame must have every CA in the L
     configuration and every peptide bond trans (|omega| > 150 deg), or the script fails.
  4. That frame is written as data/<name>/<name>.pdb (Angstrom, 3 decimals, CONECT
     records for the caps as OpenMM writes them, no date line), and the System built
     from the PDB as read back goes to potentials/<name>.xml (XmlSerializer).
  5. potentials/<name>.json names the faster of the Reference and CPU (one thread)
     platforms for energy+force evaluations. The timing is measured when the file does
     not exist yet or with --retime; otherwise the recorded choice and figures are kept,
     so that a rerun rewrites identical files. Sections of an existing potential file
     that this script does not write (e.g. "generator") are kept.
  6. Test data (tests/data/<key>_*.npy, float64), as tools/make_alanine_systems.py makes
     them: 100 configurations from a Langevin run from the PDB coordinates (300 K, 1 fs,
     friction 1/ps, seed 2026, 1000 steps of equilibration, then a frame every 50 steps,
     Reference platform), with positions (100 x 3n, nm), potential energies (100,
     kJ/mol) and forces (100 x 3n, kJ/mol/nm) evaluated on the potential's platform.

The script prints, per molecule, the atom count, the energy at the PDB coordinates, the
platform timings and the backbone (phi/psi, omega) and side-chain (chi) torsions as
0-based atom indices of the shipped PDB.
"""
import argparse
import io
import json
import math
import os
import random
import re
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POTENTIALS = os.path.join(ROOT, "potentials")
TEST_DATA = os.path.join(ROOT, "tests", "data")

FORCE_FIELD_FILES = ("amber99sbildn.xml", "amber99_obc.xml")
TEMPERATURE = 300.0 * unit.kelvin
SEED = 2026

# Structure preparation.
PREP_EQUILIBRATION_STEPS = 20000  # 20 ps at 1 fs
MIN_TRANS_OMEGA_DEG = 150.0
# Test data (as tools/make_alanine_systems.py).
FRAMES = 100
EQUILIBRATION_STEPS = 1000
STEPS_PER_FRAME = 50
# Platform timing: best of TIMING_REPEATS runs of TIMING_EVALUATIONS evaluations each.
TIMING_EVALUATIONS = 2000
TIMING_REPEATS = 3

# Standard geometry, Engh & Huber (1991), Angstrom and degrees.
BOND = {"N-CA": 1.458, "CA-C": 1.525, "C-N": 1.329, "C-O": 1.231, "CA-CB": 1.530,
        "CB-CG": 1.502, "CG-CD": 1.384, "CD-CE": 1.382, "CE-CZ": 1.382}
ANGLE = {"N-CA-C": 111.2, "CA-C-N": 116.2, "C-N-CA": 121.7, "CA-C-O": 120.8,
         "N-CA-CB": 110.5, "CA-CB-CG": 113.8, "CB-CG-CD": 120.7, "CG-CD-CE": 120.7,
         "CD-CE-CZ": 120.0}
# Improper torsion C-N-CA-CB that puts CB on the L side of CA (about -122 deg for
# tetrahedral CA; step 3 checks the chirality of the final frame independently).
L_CB_TORSION = -122.5
PHI0, PSI0, OMEGA0 = -120.0, 130.0, 180.0
PHE_CHI0 = (-65.0, -85.0)

MOLECULES = [
    {"name": "alanine_tetrapeptide", "key": "ala4_obc2",
     "residues": ["ACE", "ALA", "ALA", "ALA", "NME"],
     "title": "Alanine tetrapeptide (ACE-ALA-ALA-ALA-NME, 42 atoms)",
     "remark": "ALANINE TETRAPEPTIDE ACE-(ALA)3-NME, 42 ATOMS"},
    {"name": "phenylalanine_dipeptide", "key": "phe2_obc2",
     "residues": ["ACE", "PHE", "NME"],
     "title": "Phenylalanine dipeptide (ACE-PHE-NME, 32 atoms)",
     "remark": "PHENYLALANINE DIPEPTIDE ACE-PHE-NME, 32 ATOMS"},
]

REFERENCE_PROTOCOL = {"timestep_fs": 1.0, "friction_per_ps": 1.0, "minimize": True,
                      "equilibration_ps": 100.0, "production_ns": 10.0,
                      "frame_interval_ps": 1.0}


# ---------------------------------------------------------------------------------------
# Geometry


def place(a, b, c, bond, angle_deg, torsion_deg):
    """NeRF: the atom d with |cd| = bond, angle(b, c, d) = angle and torsion(a, b, c, d)."""
    bc = (c - b) / np.linalg.norm(c - b)
    n = np.cross(b - a, bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, bc)
    theta, tau = math.radians(angle_deg), math.radians(torsion_deg)
    d = np.array([-bond * math.cos(theta), bond * math.sin(theta) * math.cos(tau),
                  bond * math.sin(theta) * math.sin(tau)])
    return c + d[0] * bc + d[1] * m + d[2] * n


def dihedral_deg(x, i, j, k, l):
    """IUPAC torsion of atoms (i, j, k, l) in degrees, (-180, 180]."""
    b1, b2, b3 = x[j] - x[i], x[k] - x[j], x[l] - x[k]
    n1, n2 = np.cross(b1, b2), np.cross(b2, b3)
    return math.degrees(math.atan2(np.linalg.norm(b2) * np.dot(b1, n2), np.dot(n1, n2)))


def add_phenyl_ring(res, chi1, chi2):
    """CG, CD1/2, CE1/2, CZ of PHE from N, CA, CB (planar ring, torsions 180/0)."""
    res["CG"] = place(res["N"], res["CA"], res["CB"], BOND["CB-CG"], ANGLE["CA-CB-CG"], chi1)
    for side, chi in (("1", chi2), ("2", chi2 + 180.0)):
        res["CD" + side] = place(res["CA"], res["CB"], res["CG"], BOND["CG-CD"], ANGLE["CB-CG-CD"], chi)
        res["CE" + side] = place(res["CB"], res["CG"], res["CD" + side], BOND["CD-CE"], ANGLE["CG-CD-CE"], 180.0)
    res["CZ"] = place(res["CG"], res["CD1"], res["CE1"], BOND["CE-CZ"], ANGLE["CD-CE-CZ"], 0.0)


def heavy_atoms(residue_names):
    """{atom name: position (Angstrom)} per residue, N-terminal ACE to C-terminal NME."""
    ace = {"CH3": np.zeros(3), "C": np.array([BOND["CA-C"], 0.0, 0.0])}
    # The first N fixes the frame: in the xy plane, at the CA-C-N angle.
    t = math.radians(180.0 - ANGLE["CA-C-N"])
    first_n = ace["C"] + BOND["C-N"] * np.array([math.cos(t), math.sin(t), 0.0])
    residues = [ace]
    for name in residue_names[1:]:
        prev = residues[-1]
        prev_ca = prev.get("CA", prev.get("CH3"))
        if len(residues) == 1:
            n = first_n
        else:
            n = place(prev["N"], prev_ca, prev["C"], BOND["C-N"], ANGLE["CA-C-N"], PSI0)
        prev["O"] = place(n, prev_ca, prev["C"], BOND["C-O"], ANGLE["CA-C-O"], 180.0)
        if name == "NME":
            # The methyl carbon is named C in OpenMM's PDB names (CH3 in the template).
            c = place(prev_ca, prev["C"], n, BOND["N-CA"], ANGLE["C-N-CA"], OMEGA0)
            residues.append({"N": n, "C": c})
            continue
        res = {"N": n}
        res["CA"] = place(prev_ca, prev["C"], n, BOND["N-CA"], ANGLE["C-N-CA"], OMEGA0)
        res["C"] = place(prev["C"], n, res["CA"], BOND["CA-C"], ANGLE["N-CA-C"], PHI0)
        res["CB"] = place(res["C"], n, res["CA"], BOND["CA-CB"], ANGLE["N-CA-CB"], L_CB_TORSION)
        if name == "PHE":
            add_phenyl_ring(res, *PHE_CHI0)
        elif name != "ALA":
            raise ValueError(f"no side-chain geometry for residue {name}")
        residues.append(res)
    return residues


# ---------------------------------------------------------------------------------------
# Topology


def pdb_name_aliases():
    """{residue: {template atom name: PDB atom name}} from OpenMM's pdbNames.xml,
    residue-specific entries only (e.g. ACE HH31 -> H1, NME CH3 -> C)."""
    path = os.path.join(os.path.dirname(app.__file__), "data", "pdbNames.xml")
    aliases = {}
    for residue in ET.parse(path).getroot().findall("Residue"):
        table = aliases.setdefault(residue.get("name"), {})
        for atom in residue.findall("Atom"):
            for key, alias in atom.attrib.items():
                if key.startswith("alt"):
                    table[alias] = atom.get("name")
    return aliases


def heavy_atom_topology(residue_names, residues):
    """Topology (one chain, standard bonds) and positions of the heavy atoms."""
    topology = app.Topology()
    chain = topology.addChain("A")
    positions = []
    for index, (name, atoms) in enumerate(zip(residue_names, residues)):
        residue = topology.addResidue(name, chain, id=str(index + 1))
        for atom_name, x in atoms.items():
            topology.addAtom(atom_name, app.Element.getBySymbol(atom_name[0]), residue)
            positions.append(x)
    topology.createStandardBonds()
    return topology, unit.Quantity(np.array(positions) * 0.1, unit.nanometer)


def template_order(topology, positions, forcefield):
    """Topology and positions with each residue's atoms in its force-field template order."""
    templates = forcefield.getMatchingTemplates(topology)
    aliases = pdb_name_aliases()
    new = app.Topology()
    chain = new.addChain("A")
    mapping, order = {}, []
    for residue, template in zip(topology.residues(), templates):
        table = aliases.get(residue.name, {})
        names = [table.get(a.name, a.name) for a in template.atoms]
        by_name = {a.name: a for a in residue.atoms()}
        if sorted(names) != sorted(by_name):
            raise RuntimeError(f"residue {residue.name}{residue.id}: atoms {sorted(by_name)} do not match "
                               f"template {template.name} ({sorted(names)})")
        new_residue = new.addResidue(residue.name, chain, id=residue.id)
        for name in names:
            atom = by_name[name]
            mapping[atom] = new.addAtom(name, atom.element, new_residue)
            order.append(atom.index)
    for a, b in topology.bonds():
        new.addBond(mapping[a], mapping[b])
    x = positions.value_in_unit(unit.nanometer)
    return new, unit.Quantity(np.array([list(x[i]) for i in order]), unit.nanometer)


# ---------------------------------------------------------------------------------------
# OpenMM helpers


def create_system(forcefield, topology):
    return forcefield.createSystem(topology, nonbondedMethod=app.NoCutoff, constraints=None,
                                   rigidWater=False)


def make_context(system, platform_name, integrator):
    platform = openmm.Platform.getPlatformByName(platform_name)
    properties = {"Threads": "1"} if platform_name == "CPU" else {}
    return openmm.Context(system, integrator, platform, properties)


def langevin():
    integrator = openmm.LangevinMiddleIntegrator(TEMPERATURE, 1.0 / unit.picosecond, 1.0 * unit.femtoseconds)
    integrator.setRandomNumberSeed(SEED)
    return integrator


def potential_energy(system, positions, platform_name="Reference"):
    context = make_context(system, platform_name, openmm.VerletIntegrator(0.001))
    context.setPositions(positions)
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def energy_and_forces(context, positions_nm):
    context.setPositions(positions_nm)
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    return energy, np.asarray(forces, dtype=np.float64).reshape(-1)


# ---------------------------------------------------------------------------------------
# Torsions and checks


def torsions(topology):
    """[(name, (i, j, k, l))]: phi/psi and omega of the backbone, chi of the side chains."""
    residues = [{a.name: a.index for a in r.atoms()} for r in topology.residues()]
    names = [r.name for r in topology.residues()]
    out = []
    for r, atoms in enumerate(residues):
        rid = r + 1
        prev = residues[r - 1] if r > 0 else None
        nxt = residues[r + 1] if r + 1 < len(residues) else None
        if "CA" in atoms:
            out.append((f"phi{rid}", (prev["C"], atoms["N"], atoms["CA"], atoms["C"])))
            out.append((f"psi{rid}", (atoms["N"], atoms["CA"], atoms["C"], nxt["N"])))
        if nxt is not None:
            ca = atoms.get("CA", atoms.get("CH3"))
            next_ca = nxt.get("CA", nxt.get("C"))
            out.append((f"omega{rid}", (ca, atoms["C"], nxt["N"], next_ca)))
        if names[r] == "PHE":
            out.append((f"chi1_{rid}", (atoms["N"], atoms["CA"], atoms["CB"], atoms["CG"])))
            out.append((f"chi2_{rid}", (atoms["CA"], atoms["CB"], atoms["CG"], atoms["CD1"])))
    return out


def check_structure(topology, positions_nm):
    """Raises unless every CA is L (S for ALA/PHE) and every peptide bond is trans."""
    x = np.asarray(positions_nm)
    for residue in topology.residues():
        atoms = {a.name: a.index for a in residue.atoms()}
        if "CA" not in atoms:
            continue
        ca = x[atoms["CA"]]
        # With H pointing away, N -> C -> CB runs counter-clockwise for L-amino acids
        # (S by CIP for ALA and PHE): (N - CA) . ((C - CA) x (CB - CA)) > 0.
        volume = np.dot(x[atoms["N"]] - ca, np.cross(x[atoms["C"]] - ca, x[atoms["CB"]] - ca))
        if volume <= 0:
            raise RuntimeError(f"residue {residue.name}{residue.id} is not L (signed volume {volume:.3g} nm^3)")
    for name, quad in torsions(topology):
        if name.startswith("omega") and abs(dihedral_deg(x, *quad)) < MIN_TRANS_OMEGA_DEG:
            raise RuntimeError(f"{name} {quad} = {dihedral_deg(x, *quad):.1f} deg is not trans")
    for a, b in topology.bonds():
        length = np.linalg.norm(x[a.index] - x[b.index])
        if not 0.09 <= length <= 0.17:
            raise RuntimeError(f"bond {a.name}-{b.name} has length {length:.4f} nm")


# ---------------------------------------------------------------------------------------
# Building


def prepared_structure(molecule, forcefield):
    """Topology and equilibrated positions (nm) of one molecule, checked."""
    residue_names = molecule["residues"]
    topology, positions = heavy_atom_topology(residue_names, heavy_atoms(residue_names))
    modeller = app.Modeller(topology, positions)
    # Modeller puts new hydrogens at random offsets (Python's random module) and relaxes
    # them on the default (fastest, threaded) platform unless told otherwise: seed the
    # former and name Reference so that every run gives the same structure.
    random.seed(SEED)
    modeller.addHydrogens(forcefield, platform=openmm.Platform.getPlatformByName("Reference"))
    topology, positions = template_order(modeller.topology, modeller.positions, forcefield)
    system = create_system(forcefield, topology)
    integrator = langevin()
    context = make_context(system, "Reference", integrator)
    context.setPositions(positions)
    openmm.LocalEnergyMinimizer.minimize(context)
    context.setVelocitiesToTemperature(TEMPERATURE, SEED)
    integrator.step(PREP_EQUILIBRATION_STEPS)
    x = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    check_structure(topology, x)
    return topology, np.asarray(x)


def write_pdb(path, topology, positions_nm, remark):
    """PDB without OpenMM's dated header line (so reruns write identical files)."""
    out = io.StringIO()
    out.write(f"REMARK   1 {remark}\n")
    out.write("REMARK   2 COORDINATES IN ANGSTROM, AMBER99SBILDN + OBC2, 300 K\n")
    out.write("REMARK   3 MADE BY tools/make_peptide_systems.py\n")
    if any(len(line) > 80 for line in out.getvalue().splitlines()):
        raise ValueError(f"{path}: REMARK longer than 80 columns")
    app.PDBFile.writeModel(topology, unit.Quantity(positions_nm, unit.nanometer), out)
    app.PDBFile.writeFooter(topology, out)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(out.getvalue())


def evaluations_per_second(system, positions, platform_name):
    """Energy+force evaluations per CPU second of a raw Context (best of a few runs)."""
    context = make_context(system, platform_name, openmm.VerletIntegrator(0.001))
    best = 0.0
    for _ in range(TIMING_REPEATS):
        start = time.process_time()
        for _ in range(TIMING_EVALUATIONS):
            context.setPositions(positions)
            context.getState(getEnergy=True, getForces=True)
        best = max(best, TIMING_EVALUATIONS / (time.process_time() - start))
    return best


PLATFORM_SENTENCE = re.compile(r"Platform (Reference|CPU) \(.*?measured by tools/make_peptide_systems\.py\)\.")


def platform_choice(path, system, positions, retime):
    """(platform, sentence for the description): recorded in `path` unless retime."""
    if os.path.exists(path) and not retime:
        with open(path) as f:
            old = json.load(f)
        match = PLATFORM_SENTENCE.search(old.get("description", ""))
        if match and old.get("parameters", {}).get("platform") == match.group(1):
            return match.group(1), match.group(0)
    rates = {p: evaluations_per_second(system, positions, p) for p in ("Reference", "CPU")}
    chosen = max(rates, key=rates.get)
    other = "CPU" if chosen == "Reference" else "Reference"
    sentence = (f"Platform {chosen} ({rates[chosen] / 1000:.1f}k energy+force evaluations per CPU second "
                f"vs {rates[other] / 1000:.1f}k on {other}; CPU with one thread, raw Context; "
                f"measured by tools/make_peptide_systems.py).")
    return chosen, sentence


def write_potential(molecule, energy, platform, platform_sentence):
    path = os.path.join(POTENTIALS, molecule["name"] + ".json")
    extra = {}
    if os.path.exists(path):
        with open(path) as f:
            extra = {k: v for k, v in json.load(f).items()
                     if k not in ("type", "name", "description", "parameters", "reference")}
    name = molecule["name"]
    description = (
        f"{molecule['title']} with amber99sbildn + implicit solvent amber99_obc.xml (OBC2, GBSAOBCForce), "
        f"no cutoff, no constraints, 300 K. Structure and System XML made by tools/make_peptide_systems.py "
        f"(standard geometry, minimized and equilibrated 20 ps at 300 K). "
        f"E = {energy:.3f} kJ/mol at the PDB coordinates. {platform_sentence}")
    potential = {"type": "openmm", "name": name, "description": description,
                 "parameters": {"system": name + ".xml", "pdb": f"../data/{name}/{name}.pdb",
                                "temperature": TEMPERATURE.value_in_unit(unit.kelvin), "platform": platform},
                 "reference": dict(REFERENCE_PROTOCOL)}
    potential.update(extra)
    with open(path, "w") as f:
        json.dump(potential, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_test_data(key, system, positions, platform_name):
    integrator = langevin()
    md = make_context(system, "Reference", integrator)
    md.setPositions(positions)
    md.setVelocitiesToTemperature(TEMPERATURE, SEED)
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
    base = os.path.join(TEST_DATA, key)
    np.save(base + "_positions.npy", np.array(xs))
    np.save(base + "_energies.npy", np.array(es))
    np.save(base + "_forces.npy", np.array(fs))
    return min(es), max(es)


def make(molecule, forcefield, retime):
    name = molecule["name"]
    pdb_path = os.path.join(ROOT, "data", name, name + ".pdb")
    topology, x = prepared_structure(molecule, forcefield)
    write_pdb(pdb_path, topology, x, molecule["remark"])

    # Everything below uses the PDB as read back (3 decimals), as the C++ target does.
    pdb = app.PDBFile(pdb_path)
    system = create_system(forcefield, pdb.topology)
    with open(os.path.join(POTENTIALS, name + ".xml"), "w") as f:
        f.write(openmm.XmlSerializer.serialize(system))
    energy = potential_energy(system, pdb.positions)
    platform, sentence = platform_choice(os.path.join(POTENTIALS, name + ".json"), system, pdb.positions, retime)
    write_potential(molecule, energy, platform, sentence)
    e_min, e_max = write_test_data(molecule["key"], system, pdb.positions, platform)

    x_pdb = np.asarray(pdb.positions.value_in_unit(unit.nanometer))
    print(f"{name}: {system.getNumParticles()} atoms; E = {energy:.3f} kJ/mol at the PDB coordinates "
          f"(Reference); {sentence}")
    print(f"  {FRAMES} test configurations tests/data/{molecule['key']}_* on {platform}, "
          f"energies {e_min:.2f}..{e_max:.2f} kJ/mol")
    for label, quad in torsions(pdb.topology):
        print(f"  {label:8s} {list(quad)}  {dihedral_deg(x_pdb, *quad):8.2f} deg")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retime", action="store_true",
                        help="measure the platforms again instead of keeping the recorded choice")
    args = parser.parse_args()
    os.makedirs(TEST_DATA, exist_ok=True)
    forcefield = app.ForceField(*FORCE_FIELD_FILES)
    for molecule in MOLECULES:
        make(molecule, forcefield, args.retime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
