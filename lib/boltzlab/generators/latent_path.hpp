#pragma once
/// \file latent_path.hpp
/// A trained flow generator's base space as the ground of annealed SMC (estimators/annealed_smc.hpp):
/// the path from the base ρ₀ to the target pulled back through the flow map T,
///
///   u₀(z) = −log ρ₀(z),   u₁(z) = u(T(z)) − log|det ∂T/∂z| = u₀(z) − log w(T(z)),
///
/// with log w = −u − log q the flow sample's importance log-weight (log q(T(z)) = log ρ₀(z) −
/// log|det ∂T/∂z|). So ∫ e^{−u₁} = Z, rung 0 of the SMC is plain importance sampling with the
/// flow (its ESS is the flow-only ESS), and the MALA moves run in the base space, where the flow
/// has already done most of the work (the "neural transport" of Hoffman et al. 2019; FAB's AIS,
/// Midgley et al. 2023, runs the same geometric path in the target space).
///
/// ∇u₁ comes from LibTorch autograd through the flow (log-det included) and the target's ∇u
/// through a vector–Jacobian product. Molecules: T includes the decoding y → Cartesian of
/// MolecularFlowSpace, with its log-Jacobian; rows outside the bijective domain or of the wrong
/// enantiomer have no target mass (u₁ = +∞), as in the flow's own weights. Torsion columns of a
/// torus base are periodic. Stochastic flows (σ > 0) have no log q(x) and are refused.
///
/// With a weight exponent α ≠ 1 the far end is ρ₀ w^α instead, u₁ = u₀ − α log w: α = 2 is the
/// target p²/q of FAB's AIS (the proposal that minimizes the variance of the weights, whose
/// samples train the flow by the α = 2 divergence), its normalizer ∫ p²/q.
///
/// Rows are evaluated in fixed chunks on oneTBB workers (LibTorch on one thread each, as
/// set_generator_threads arranges): results do not depend on the thread count.
#include <cstdint>
#include <vector>

#include "boltzlab/estimators/annealed_smc.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/molecular_space.hpp"
#include "boltzlab/generators/target_bridge.hpp"

namespace boltzlab::generators {

class GeneratorLatentPath : public AnnealingPath {
 public:
  /// `space` (may be null) decodes the model's coordinates to the target's (molecules).
  /// `counters` (may be null) counts the target evaluations. The model, space, target and
  /// counters must outlive the path.
  /// \throws DomainError for a stochastic flow or a dimension mismatch.
  GeneratorLatentPath(BoltzmannGenerator& model, const Target& target, const MolecularFlowSpace* space = nullptr,
                      EnergyCounters* counters = nullptr, std::int64_t chunk = 256, double weight_exponent = 1.0);

  std::size_t dim() const override { return static_cast<std::size_t>(model_->dim()); }
  /// The flow's base draws: row i from stream (seed, i), as BoltzmannGenerator::sample draws them.
  RowMatrix sample_reference(std::size_t n, std::uint64_t seed) const override;
  std::size_t evaluate(const RowMatrix& z, PathValues& out) const override;
  std::vector<std::size_t> periodic_columns() const override;
  void project(double* v) const override;
  /// False for particle systems (the centre-of-mass projection mixes columns).
  bool columnwise() const override { return model_->options().potential.n_particles == 0; }

  /// T(z): the target configurations of base points (no gradient; Cartesian for molecules).
  RowMatrix configurations(const RowMatrix& z) const;

 private:
  void evaluate_rows(const RowMatrix& z, Eigen::Index begin, Eigen::Index end, PathValues& out) const;

  BoltzmannGenerator* model_;
  const Target& target_;
  const MolecularFlowSpace* space_;
  EnergyCounters* counters_;
  std::int64_t chunk_;
  double alpha_;
};

}  // namespace boltzlab::generators
