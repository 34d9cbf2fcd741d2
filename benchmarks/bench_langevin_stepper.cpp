/// \file bench_langevin_stepper.cpp
/// MD steps per second of one alanine dipeptide trajectory (one thread) with
///   openmm      OpenMM's LangevinMiddleIntegrator::step in one Context (the baseline),
///   stepper     the project's langevin_middle_step (flows/openmm_langevin.hpp): forces
///               from the target's per-thread Context, noise from an Rng stream,
///   forces      the force evaluations alone (OpenMMTarget::potential_energy),
/// interleaved for --rounds rounds, best round reported, and the ratio stepper/openmm.
///
///   bench_langevin_stepper --potential potentials/alanine_dipeptide.json --steps 20000
#include <algorithm>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <OpenMM.h>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/flows/openmm_langevin.hpp"
#include "boltzlab/flows/openmm_md.hpp"
#include "boltzlab/targets/registry.hpp"

using namespace boltzlab;

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  CLI::App app{"LangevinMiddle steps/s: OpenMM's integrator vs the project's stepper"};
  std::string potential = "potentials/alanine_dipeptide.json";
  int steps = 20000, rounds = 3;
  app.add_option("--potential", potential, "potential file (type openmm)");
  app.add_option("--steps", steps, "steps per measurement");
  app.add_option("--rounds", rounds, "interleaved rounds (best reported)");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(1);
  Potential p = load_potential(potential);
  const auto& target = dynamic_cast<const OpenMMTarget&>(*p.target);
  const double T = target.temperature(), dt = 0.001, kT = target.kT();
  std::vector<double> x = target.initial_positions();
  minimize_positions(target, x, dt);
  OpenMMContext ctx = make_langevin_context(target, x.data(), T, 1.0, dt, 1, 0);
  const std::vector<double> inv_mass = inverse_masses(target);
  LangevinState s;
  s.x = x;
  Rng rng(1, 0);
  draw_velocities(s, inv_mass, kT, rng);
  compute_forces(target, s);
  ctx.integrator->step(1000);  // warm up both
  for (int k = 0; k < 1000; ++k) langevin_middle_step(target, s, inv_mass, dt, 1.0, kT, rng);
  double best_openmm = 0, best_stepper = 0, best_forces = 0;
  std::vector<double> f(x.size());
  for (int round = 0; round < rounds; ++round) {
    double t0 = wall_seconds();
    ctx.integrator->step(steps);
    best_openmm = std::max(best_openmm, steps / (wall_seconds() - t0));
    t0 = wall_seconds();
    for (int k = 0; k < steps; ++k) langevin_middle_step(target, s, inv_mass, dt, 1.0, kT, rng);
    best_stepper = std::max(best_stepper, steps / (wall_seconds() - t0));
    t0 = wall_seconds();
    for (int k = 0; k < steps; ++k) target.potential_energy(s.x.data(), f.data());
    best_forces = std::max(best_forces, steps / (wall_seconds() - t0));
  }
  std::printf("potential %s, platform %s, %d steps x %d rounds, one thread\n", potential.c_str(),
              target.options().platform.c_str(), steps, rounds);
  std::printf("openmm LangevinMiddleIntegrator  %10.0f steps/s\n", best_openmm);
  std::printf("langevin_middle_step             %10.0f steps/s  (ratio %.3f)\n", best_stepper,
              best_stepper / best_openmm);
  std::printf("potential_energy (forces only)   %10.0f evals/s\n", best_forces);
  return 0;
}
