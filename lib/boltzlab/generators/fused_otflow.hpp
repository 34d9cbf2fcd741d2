#pragma once
/// \file fused_otflow.hpp
/// Hand-fused forward + backward of one OT-Flow training loss (Onken, Wu Fung, Li &
/// Ruthotto, AAAI 2021, eqs. 8–17) without the LibTorch autograd graph.
///
/// Data x are mapped target → base by RK4 (cnf.hpp) from t = T to t = 0 with the
/// augmented state [x, ℓ, L, R]; the loss is (standard-normal base ρ₀)
///
///   J(θ) = (1/B) Σ_b [ ½|x_b(0)|² + (d/2) log 2π − ℓ_b ] + α_L (1/B) Σ_b L_b + α_R (1/B) Σ_b R_b,
///
/// i.e. −E[log q(x)] + α_L E[transport] + α_R E[HJB residual].
///
/// Gradients by a hand-written discrete adjoint: the RK4 steps are replayed backwards
/// (stage inputs stored, activations recomputed per stage), and each stage's rate
/// (v = −∇ₓΦ, −ΔₓΦ, ½|∇ₓΦ|², |∂ₜΦ − ½|∇ₓΦ|²|) is back-propagated by the reverse of
/// the closed-form derivative pass of ot_potential.hpp. For nTh = 2 (one ResNet
/// layer), with a₀ = K₀s + b₀, u₀ = σ(a₀), a₁ = K₁u₀ + b₁, τᵢ = tanh aᵢ, Dᵢ = 1 − τᵢ²:
///
///   z₀ = w + K₁ᵀ(τ₁ ⊙ w),   ∇ₛΦ = K₀ᵀ(τ₀ ⊙ z₀) + AᵀA s + b,
///   ΔₓΦ = Σⱼ D₀ⱼ z₀ⱼ ‖K₀ⱼ,ₓ‖² + Σᵢ D₁ᵢ wᵢ Σₖ (K₁ diag(τ₀) K₀,ₓ)ᵢₖ² + ‖Aₓ‖²_F,
///
/// and the vector–Jacobian product of (∇ₛΦ, ΔₓΦ) w.r.t. (s, θ) applies the chain rule
/// line by line in reverse (fused_otflow.cpp names each adjoint). The batch is split
/// into fixed chunks whose parameter gradients are summed in chunk order, so results
/// do not depend on the thread count. The gradients are checked against LibTorch
/// autograd through cnf.hpp's integrate() in tests/generators/test_fused_otflow.cpp.
///
/// Scope: nTh = 2, no centre-of-mass projection (n_particles = 0), no periodic columns; otherwise
/// supports() is false and the caller must use the autograd path.
#include <functional>
#include <vector>

#include <torch/torch.h>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/generators/ot_potential.hpp"

namespace boltzlab::generators {

/// Settings of the fused OT-Flow loss.
struct FusedOtFlowOptions {
  double t_end = 1.0;            ///< T: data live at t = T, the base at t = 0
  int steps = 8;                 ///< RK4 steps
  double alpha_transport = 0.01; ///< α_L
  double alpha_hjb = 0.05;       ///< α_R
  int chunk_size = 256;          ///< batch rows per parallel task (fixed ⇒ thread-independent)
  /// Base density other than the standard normal: returns −log ρ₀(z) per row of z and
  /// writes ∂(−log ρ₀)/∂z into `grad` (same shape). Empty: ρ₀ = N(0, I). Called once per
  /// chunk, concurrently from several threads.
  std::function<Eigen::VectorXd(const RowMatrix& z, RowMatrix& grad)> base_neg_log_density;

  /// \throws ConfigError for steps < 1, chunk_size < 1, T ≤ 0 or negative weights.
  void validate() const;
};

/// Loss value, its parts, and the parameter gradients.
struct FusedOtFlowResult {
  double loss = 0.0;
  double neg_log_q = 0.0;  ///< (1/B) Σ −log q(x_b)
  double transport = 0.0;  ///< (1/B) Σ L_b
  double hjb = 0.0;        ///< (1/B) Σ R_b
  /// ∂J/∂θ, one tensor per entry of phi.parameters() (same order and shapes).
  std::vector<torch::Tensor> grads;
};

/// True when the fused path covers this architecture (nTh = 2, no particles).
bool fused_otflow_supports(const OtPotentialOptions& o);

/// J(θ) and ∂J/∂θ for the data batch `x` (B×d) by the fused forward + adjoint.
/// \throws ConfigError when !fused_otflow_supports(phi.options()) or bad options.
FusedOtFlowResult fused_otflow_loss(OtPotentialImpl& phi, const RowMatrix& x,
                                    const FusedOtFlowOptions& options);

/// Same as fused_otflow_loss, then stores the gradients in each parameter's .grad().
FusedOtFlowResult fused_otflow_backward(OtPotentialImpl& phi, const RowMatrix& x,
                                        const FusedOtFlowOptions& options);

}  // namespace boltzlab::generators
