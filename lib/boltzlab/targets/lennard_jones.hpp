#pragma once
/// \file lennard_jones.hpp
/// Lennard-Jones clusters LJ13 / LJ55 (Köhler, Klein, Noé, ICML 2020; the
/// public LJ13/LJ55 data sets). Positions of n particles in s dimensions,
/// flattened particle-major; d_ij = |x_i − x_j|, x̄ the centroid:
///   u(x) = (1/τ) [ P Σ_{i<j} ε((rm/d_ij)¹² − 2(rm/d_ij)⁶) + ½ k Σ_i |x_i − x̄|² ],
/// P = "pair_prefactor", k = "harmonic". Convention: P = 2 (default) is the one
/// under which the published LJ13/LJ55 data sets are Boltzmann-distributed
/// (virial ⟨x·∇u⟩ = (n−1)·s and configurational temperature 1 hold only with
/// it); bgflow's LennardJonesPotential corresponds to P = 1.
/// Gradient: with σ6 = (rm/d_ij)⁶,
///   ∂/∂d [ε(σ6² − 2σ6)] = 12ε(σ6 − σ6²)/d, hence
///   ∇_{x_i} u = (1/τ) [ P Σ_{j≠i} 12ε σ6(1 − σ6)/d_ij² (x_i − x_j) + k (x_i − x̄) ]
/// (the x̄-dependence of the harmonic term drops out because Σ_i (x_i − x̄) = 0).
/// Centre of mass: u is translation invariant; samples live on {x̄ = 0} with
/// (n−1)·s degrees of freedom (target.hpp). No closed-form log Z.
/// No soft core: a collision (d_ij = 0) gives u = +inf (∇u NaN), which
/// evaluate_batch counts as non-finite.
#include <memory>

#include "boltzlab/targets/registry.hpp"

namespace boltzlab {

/// Parameters of a Lennard-Jones cluster.
struct LennardJonesOptions {
  std::size_t n_particles = 13;  ///< n ≥ 2
  std::size_t spatial_dim = 3;   ///< s ∈ {1, 2, 3}
  double epsilon = 1.0;          ///< well depth ε > 0
  double rm = 1.0;               ///< distance of the pair minimum, > 0
  double tau = 1.0;              ///< temperature τ > 0 (u is divided by it)
  double pair_prefactor = 2.0;   ///< P: factor on the i<j pair sum (2 = data-set convention)
  double harmonic = 1.0;         ///< k ≥ 0: strength of ½k Σ|x_i − x̄|² (0 disables)
  /// \throws ConfigError naming the offending field.
  void validate() const;
};

class LennardJonesTarget : public Target {
 public:
  explicit LennardJonesTarget(const LennardJonesOptions& options = {});

  std::string name() const override { return "lj" + std::to_string(options_.n_particles); }
  std::size_t dim() const override { return options_.n_particles * options_.spatial_dim; }
  double reduced_energy(const double* x, double* grad) const override;
  std::pair<std::size_t, std::size_t> particle_layout() const override {
    return {options_.n_particles, options_.spatial_dim};
  }
  nlohmann::json describe() const override;
  const LennardJonesOptions& options() const { return options_; }

 private:
  LennardJonesOptions options_;
  double pair_scale_;      ///< P ε / τ
  double rm2_;             ///< rm²
  double harmonic_scale_;  ///< k / τ
};

/// Factory. Parameters: "n_particles" (required), "spatial_dim" (3), "epsilon" (1),
/// "rm" (1), "tau" (1), "pair_prefactor" (2), "harmonic" (1).
std::unique_ptr<Target> make_lennard_jones(JsonReader& params, const std::filesystem::path& dir);

}  // namespace boltzlab
