#pragma once
/// \file target_bridge.hpp
/// The bridge from LibTorch autograd to a boltzlab Target: the reduced energy u(x)
/// of a batch as a differentiable function, whose backward uses the batched,
/// oneTBB-parallel ∇u of Target::evaluate_batch (the reverse KL of a Boltzmann
/// generator needs E_q[u(x)] with x = flow(z; θ), i.e. ∂u/∂θ = ∇u · ∂x/∂θ).
///
/// Training stability: the lin-log energy cut of Noé et al. (Science 2019, BG):
///   ũ(u) = u                                  for u ≤ u_high,
///   ũ(u) = u_high + log(1 + u − u_high)       for u > u_high,   dũ/du = 1/(1 + u − u_high),
/// and ũ ≤ u_max. A non-finite u (or ∇u) is counted, its ũ set to u_max and its
/// gradient to 0 (no NaN enters the optimizer).
#include <atomic>
#include <cstddef>
#include <limits>

#include <torch/torch.h>

#include "boltzlab/targets/target.hpp"

namespace boltzlab::generators {

/// Lin-log energy cut (reduced units).
struct EnergyCut {
  double high = 1.0e3;  ///< u_high: linear below, logarithmic above
  double max = 1.0e9;   ///< u_max: hard cap (also the value for non-finite u)
  void validate() const;
  /// ũ(u) and dũ/du.
  double apply(double u, double* slope) const;
};

/// Evaluation counters shared by the bridge and the trainer.
struct EnergyCounters {
  std::atomic<std::size_t> evaluations{0};  ///< target energy (+gradient) evaluations
  std::atomic<std::size_t> non_finite{0};   ///< of which u or ∇u was not finite
  std::atomic<std::size_t> cut{0};          ///< of which u > u_high (log branch)
};

/// ũ(u(x)) for each row of x (B×d, float64), differentiable in x: the backward
/// returns grad_out · dũ/du · ∇u(x), with ∇u from target.evaluate_batch.
/// `counters` may be null. `exec` chooses the TBB-parallel or serial batch.
torch::Tensor target_energy(const torch::Tensor& x, const Target& target, const EnergyCut& cut,
                            EnergyCounters* counters, Execution exec = Execution::kParallel);

/// u(x) without gradient and without the cut (+inf when not finite), for weights.
Eigen::VectorXd target_energy_values(const RowMatrix& x, const Target& target,
                                     EnergyCounters* counters,
                                     Execution exec = Execution::kParallel);

/// Copies between LibTorch (B×d float64, contiguous) and RowMatrix.
RowMatrix to_matrix(const torch::Tensor& x);
torch::Tensor to_tensor(const RowMatrix& x);
Eigen::VectorXd to_vector(const torch::Tensor& v);

}  // namespace boltzlab::generators
