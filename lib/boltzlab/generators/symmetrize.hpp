#pragma once
/// \file symmetrize.hpp
/// A generator symmetrized over the finite symmetry group of a particle system.
///
/// A target of n identical particles in s dimensions (DW4, LJ13: target.hpp's particle
/// layout) is invariant under the n! permutations of the particles and under the
/// orthogonal group O(s). A generator that is not equivariant (the generic OT-Flow Φ, a
/// coupling flow) and is trained from the energy (reverse KL) settles on one labelling of
/// each configuration: its importance weights then describe that copy alone. Their ESS can
/// be high while log Z falls short by log |G| and the held-out likelihood of frames in the
/// other copies is poor. The symmetrized generator
///
///     q_G(x) = (1/|G|) Σ_{g ∈ G} q(g x)
///
/// is G-invariant and covers every copy of what q covers: draw x ~ q and g uniform in G,
/// return g x. Its density is exact (the equal-weight mixture of the q ∘ g⁻¹; every g is
/// orthogonal, so no Jacobian enters, and it maps the centre-of-mass-free subspace on which
/// particle densities live onto itself, keeping the centre at 0).
///
/// G here is the permutations of the particles times {identity, the reflection of the first
/// spatial axis}. Proper rotations are continuous and are left to the flow (an isotropic base
/// and a rotation-invariant target let it learn them); the reflection supplies the improper
/// half of O(s), which no proper rotation reaches. Cost: |G| evaluations of log q per draw,
/// so the group is capped (kMaxGroupSize); systems with more particles want an equivariant
/// flow (the OT-Flow's pair term with `network` off).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include <Eigen/Core>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/generators/generator.hpp"

namespace boltzlab::generators {

/// Largest |G| accepted: 7! (5040) evaluations of log q per draw.
inline constexpr std::size_t kMaxGroupSize = 5040;

/// The finite group: permutations of n particles × {identity, reflection of axis 0}.
class ParticleSymmetry {
 public:
  /// \throws ConfigError when n < 1, s < 1, or |G| = n!·(reflections ? 2 : 1) exceeds `max_size`.
  ParticleSymmetry(int n_particles, int spatial_dim, bool reflections, std::size_t max_size = kMaxGroupSize);

  std::size_t size() const { return permutations_.size() * (reflections_ ? 2 : 1); }
  int n_particles() const { return n_; }
  int spatial_dim() const { return s_; }
  bool reflections() const { return reflections_; }

  /// y = g x for one configuration of n·s coordinates (particle-major); g ∈ [0, size()):
  /// particle j of y is particle perm_g(j) of x, with axis 0 negated for the reflected half.
  /// y and x must not overlap.
  void apply(std::size_t g, const double* x, double* y) const;

 private:
  int n_ = 0, s_ = 0;
  bool reflections_ = false;
  std::vector<std::vector<int>> permutations_;  ///< all n! in lexicographic order
};

/// log q_G(x) = log((1/|G|) Σ_g exp(log_q(g x))) for each row of x, with `log_q` evaluating
/// a block of configurations; rows are processed in blocks so that at most about 2·10⁵
/// transformed rows exist at once. Rows where every term is −∞ give −∞.
Eigen::VectorXd symmetrized_log_q(const std::function<Eigen::VectorXd(const RowMatrix&)>& log_q,
                                  const ParticleSymmetry& group, const RowMatrix& x);

/// n draws of q_G and their exact log q_G: the model's draws (model.sample(n, seed)), draw i
/// moved by the element g_i drawn from stream_for(seed + 1, i), so the result does not depend
/// on the thread count. \throws ConfigError when the group does not fit the model's dimension.
GeneratedSamples symmetrized_sample(BoltzmannGenerator& model, const ParticleSymmetry& group, std::int64_t n,
                                    std::uint64_t seed);

}  // namespace boltzlab::generators
