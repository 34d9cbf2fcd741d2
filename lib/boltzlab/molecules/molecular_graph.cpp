#include "boltzlab/molecules/molecular_graph.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include <OpenMM.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/openmm_target.hpp"

namespace boltzlab::molecules {

std::string MolecularGraph::label(std::int64_t a) const {
  const auto i = static_cast<std::size_t>(a);
  std::string s;
  if (i < topology.residue_names.size()) s += topology.residue_names[i];
  if (i < topology.residue_ids.size()) s += std::to_string(topology.residue_ids[i]);
  if (i < topology.atom_names.size()) s += (s.empty() ? "" : " ") + topology.atom_names[i];
  return s.empty() ? "atom " + std::to_string(a) : s;
}

std::int64_t MolecularGraph::components() const {
  std::vector<int> seen(neighbors.size(), 0);
  std::int64_t count = 0;
  for (std::size_t s = 0; s < neighbors.size(); ++s) {
    if (seen[s]) continue;
    ++count;
    std::vector<std::int64_t> stack{static_cast<std::int64_t>(s)};
    seen[s] = 1;
    while (!stack.empty()) {
      const auto a = stack.back();
      stack.pop_back();
      for (const auto b : neighbors[static_cast<std::size_t>(a)]) {
        if (!seen[static_cast<std::size_t>(b)]) {
          seen[static_cast<std::size_t>(b)] = 1;
          stack.push_back(b);
        }
      }
    }
  }
  return count;
}

MolecularGraph graph_from_bonds(const Topology& topology, const std::vector<std::pair<std::int64_t, std::int64_t>>& bonds,
                                const std::string& context) {
  MolecularGraph g;
  g.topology = topology;
  const auto n = static_cast<std::int64_t>(topology.atoms());
  g.neighbors.assign(static_cast<std::size_t>(n), {});
  std::set<std::pair<std::int64_t, std::int64_t>> unique;
  for (const auto& [a, b] : bonds) {
    if (a < 0 || b < 0 || a >= n || b >= n)
      throw ConfigError(context + ": bond (" + std::to_string(a) + ", " + std::to_string(b) + ") names an atom outside [0, " +
                        std::to_string(n) + ")");
    if (a == b) throw ConfigError(context + ": bond of atom " + std::to_string(a) + " to itself");
    unique.insert({std::min(a, b), std::max(a, b)});
  }
  for (const auto& [a, b] : unique) {
    g.neighbors[static_cast<std::size_t>(a)].push_back(b);
    g.neighbors[static_cast<std::size_t>(b)].push_back(a);
  }
  for (auto& nb : g.neighbors) std::sort(nb.begin(), nb.end());
  g.topology.elements.resize(static_cast<std::size_t>(n));
  return g;
}

std::string element_of_mass(double mass) {
  struct Element {
    const char* symbol;
    double mass;
  };
  static const Element table[] = {{"H", 1.008},  {"C", 12.011}, {"N", 14.007},  {"O", 15.999},  {"F", 18.998},
                                  {"Na", 22.99}, {"Mg", 24.305}, {"P", 30.974}, {"S", 32.06},   {"Cl", 35.45},
                                  {"K", 39.098}, {"Ca", 40.078}, {"Zn", 65.38}, {"Br", 79.904}, {"I", 126.904}};
  for (const auto& e : table) {
    if (std::abs(mass - e.mass) < 0.5) return e.symbol;
  }
  return "";
}

namespace {

/// HarmonicBondForce terms and constraints of the System.
std::vector<std::pair<std::int64_t, std::int64_t>> system_bonds(const OpenMM::System& system) {
  std::vector<std::pair<std::int64_t, std::int64_t>> bonds;
  for (int f = 0; f < system.getNumForces(); ++f) {
    const auto* hb = dynamic_cast<const OpenMM::HarmonicBondForce*>(&system.getForce(f));
    if (hb == nullptr) continue;
    for (int b = 0; b < hb->getNumBonds(); ++b) {
      int p1 = 0, p2 = 0;
      double length = 0, k = 0;
      hb->getBondParameters(b, p1, p2, length, k);
      bonds.emplace_back(p1, p2);
    }
  }
  for (int c = 0; c < system.getNumConstraints(); ++c) {
    int p1 = 0, p2 = 0;
    double d = 0;
    system.getConstraintParameters(c, p1, p2, d);
    bonds.emplace_back(p1, p2);
  }
  return bonds;
}

/// Elements from the structure file checked against the masses (filled in where missing).
void check_elements(MolecularGraph& g, const OpenMM::System& system, const std::string& context) {
  for (std::int64_t a = 0; a < g.atoms(); ++a) {
    const double mass = system.getParticleMass(static_cast<int>(a));
    const std::string from_mass = element_of_mass(mass);
    std::string& element = g.topology.elements[static_cast<std::size_t>(a)];
    if (element.empty() || element == "X") element = from_mass;
    if (!from_mass.empty() && element != from_mass) {
      char m[32];
      std::snprintf(m, sizeof m, "%.3f", mass);
      throw ConfigError(context + ": atom " + std::to_string(a) + " (" + g.label(a) + ") is " + element +
                        " in the structure file but has mass " + m + " (" + from_mass +
                        ") in the System: the structure file's atom order is not the System's");
    }
    if (element.empty()) throw ConfigError(context + ": atom " + std::to_string(a) + " (" + g.label(a) + ") has no element");
  }
}

/// Every bond 0.05–0.3 nm long in `x` (flat 3n, nm).
void check_bond_lengths(const MolecularGraph& g, const std::vector<double>& x, const std::string& context) {
  for (std::int64_t a = 0; a < g.atoms(); ++a) {
    for (const auto b : g.neighbors[static_cast<std::size_t>(a)]) {
      if (b < a) continue;
      double d2 = 0;
      for (int k = 0; k < 3; ++k) {
        const double d = x[static_cast<std::size_t>(3 * a + k)] - x[static_cast<std::size_t>(3 * b + k)];
        d2 += d * d;
      }
      const double d = std::sqrt(d2);
      if (!(d >= 0.05 && d <= 0.3)) {
        char m[32];
        std::snprintf(m, sizeof m, "%.4g", d);
        throw ConfigError(context + ": bonded atoms " + std::to_string(a) + " (" + g.label(a) + ") and " +
                          std::to_string(b) + " (" + g.label(b) + ") are " + m +
                          " nm apart in the structure file (expected 0.05-0.3 nm): its atom order is not the System's");
      }
    }
  }
}

}  // namespace

MolecularGraph molecular_graph(const OpenMMTarget& target, const std::string& context) {
  const OpenMM::System& system = target.system();
  const Topology* topology = target.topology();
  if (topology == nullptr || static_cast<int>(topology->atoms()) != system.getNumParticles())
    throw ConfigError(context + ": the structure file's atoms do not match the System's " +
                      std::to_string(system.getNumParticles()) + " particles");
  MolecularGraph g = graph_from_bonds(*topology, system_bonds(system), context);
  check_elements(g, system, context);
  const auto parts = g.components();
  if (parts != 1)
    throw ConfigError(context + ": the System's bonds make " + std::to_string(parts) +
                      " separate molecules; internal coordinates need one connected molecule");
  check_bond_lengths(g, target.initial_positions(), context);
  return g;
}

}  // namespace boltzlab::molecules
