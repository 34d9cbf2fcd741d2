#pragma once
/// \file target.hpp
/// The energy-target interface: π(x) ∝ exp(−u(x)) with u the reduced energy
/// (energy / kT, dimensionless). "Describe vs compute": a target is built from a
/// JSON description (see registry.hpp) and then only computes.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/io/topology.hpp"

namespace boltzlab {

/// Result counters of a batched evaluation.
struct BatchStats {
  std::size_t evaluated = 0;   ///< configurations evaluated
  std::size_t non_finite = 0;  ///< of which u or ∇u was not finite (u set to +inf)
};

/// A reduced-energy target u: R^d → R ∪ {+inf}.
///
/// Thread safety: reduced_energy() may be called concurrently from several threads
/// (targets with per-thread state, like OpenMM Contexts, manage it internally).
class Target {
 public:
  virtual ~Target() = default;

  /// Short identifier, e.g. "manywell".
  virtual std::string name() const = 0;
  /// Dimension d of a configuration (flattened: 3·atoms for molecules).
  virtual std::size_t dim() const = 0;

  /// Reduced energy u(x) at x (length dim()). If `grad` is not null, also writes
  /// ∇u(x) into grad (length dim()) — "energy only" when null (Ceres style).
  /// A configuration outside the support returns +inf; NaN/inf results are left
  /// for the caller to count (evaluate_batch does).
  virtual double reduced_energy(const double* x, double* grad) const = 0;

  /// Exact log Z = log ∫ exp(−u(x)) dx, when known.
  virtual std::optional<double> log_z() const { return std::nullopt; }

  /// Spatial structure: number of particles and spatial dimension (e.g. 4 and 2
  /// for DW4); {0, 0} for targets that are not particle systems.
  virtual std::pair<std::size_t, std::size_t> particle_layout() const { return {0, 0}; }

  /// Atom names etc. for molecular targets, null otherwise.
  virtual const Topology* topology() const { return nullptr; }

  /// Energy unit conversion: kT in the target's energy unit (kJ/mol for OpenMM
  /// targets); 1 for dimensionless targets.
  virtual double kT() const { return 1.0; }

  /// A representative configuration (e.g. a molecule's PDB coordinates), length
  /// dim(), or empty when the target has none. Samplers start from it by default.
  virtual std::vector<double> reference_configuration() const { return {}; }

  /// Parameters as JSON (for summary.json).
  virtual nlohmann::json describe() const { return {{"name", name()}}; }

  /// Batched evaluation over rows of `x` (N×d): u into `u` (resized to N), and
  /// ∇u into `grad` (resized to N×d) when not null. Non-finite energies or
  /// gradients are counted and their u set to +inf (never thrown, never NaN).
  /// The default runs reduced_energy() over oneTBB or serially.
  virtual BatchStats evaluate_batch(const RowMatrix& x, Eigen::VectorXd& u, RowMatrix* grad,
                                    Execution exec = Execution::kParallel) const;

 protected:
  /// Checks that `x` has dim() columns (DomainError naming the target otherwise) and
  /// sizes u (and grad, when given) for x.rows() configurations. Returns x.rows().
  std::size_t prepare_batch(const RowMatrix& x, Eigen::VectorXd& u, RowMatrix* grad) const;
};

/// Throws ConfigError "<target>: <field> is <value>, but must be <need>", the message
/// of a target parameter that fails its validation.
[[noreturn]] void throw_bad_parameter(const std::string& target, const std::string& field, double value,
                                      const std::string& need);

/// Validates the layout of a particle system: n_particles ≥ 2 and spatial_dim ∈ {1, 2, 3}
/// (throw_bad_parameter otherwise).
void validate_particle_layout(const std::string& target, std::size_t n_particles, std::size_t spatial_dim);

/// Centre-of-mass convention for particle systems (particle_layout() = {n, s}):
/// their energies are translation invariant, so exp(−u) is not normalizable on
/// R^{n·s}. boltzlab samples on the centre-of-mass-free subspace {x̄ = 0}
/// (dimension (n−1)·s): initial configurations are centred, and every random
/// increment is projected onto that subspace (the gradient of a translation-
/// invariant u already lies in it). Densities (log q, log Z) refer to the
/// (n−1)·s-dimensional subspace, and the virial identity reads ⟨x·∇u⟩ = (n−1)·s.
///
/// Subtracts the mean over particles from each spatial coordinate of x (length n·s).
inline void remove_center_of_mass(double* x, std::size_t n_particles, std::size_t spatial_dim) {
  if (n_particles == 0) return;
  for (std::size_t a = 0; a < spatial_dim; ++a) {
    double mean = 0.0;
    for (std::size_t i = 0; i < n_particles; ++i) mean += x[i * spatial_dim + a];
    mean /= static_cast<double>(n_particles);
    for (std::size_t i = 0; i < n_particles; ++i) x[i * spatial_dim + a] -= mean;
  }
}

/// Number of degrees of freedom of the space a target is sampled on: dim() for
/// plain targets, (n−1)·s for particle systems (centre of mass removed).
inline std::size_t degrees_of_freedom(const Target& target) {
  const auto [n, s] = target.particle_layout();
  return n > 0 ? (n - 1) * s : target.dim();
}

/// Sanitizes one evaluation: returns true when finite; otherwise sets u = +inf.
bool sanitize_energy(double& u, const double* grad, std::size_t d);

}  // namespace boltzlab
