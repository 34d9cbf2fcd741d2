#pragma once
/// \file ot_potential.hpp
/// The OT-Flow potential Φ(x, t; θ) (Onken, Wu Fung, Li & Ruthotto, "OT-Flow: Fast
/// and accurate continuous normalizing flows via optimal transport", AAAI 2021):
///
///   Φ(s; θ) = wᵀ N(s) + ½ sᵀ AᵀA s + bᵀ s + c,    s = (x, t) ∈ R^{d+1},
///
/// with A ∈ R^{r×(d+1)}, r = min(10, d+1), and N a ResNet of `layers` = nTh layers
/// of width m (paper eq. 10):
///
///   u₀ = σ(K₀ s + b₀),   u_i = u_{i−1} + h σ(K_i u_{i−1} + b_i)  (i = 1..nTh−1),
///   h = 1/(nTh−1),   σ(a) = log(2 cosh a),  σ' = tanh,  σ'' = 1 − tanh².
///
/// The velocity of the flow is v = −∇ₓΦ (seed paper §3.4.1, eq. 28: the optimal
/// control of the MFG with running cost ½|v|² is the gradient of the value function).
///
/// Closed-form derivatives (paper eqs. 11–17), computed by one backward sweep:
///   z_{nTh} = w,   z_i = z_{i+1} + h K_iᵀ (tanh(a_i) ⊙ z_{i+1})      (i = nTh−1..1),
///   ∇_s Φ = K₀ᵀ (tanh(a₀) ⊙ z₁) + AᵀA s + b,
/// and the exact Laplacian in x (trace of the x-block of the Hessian) in O(m²·d):
///   tr₀ = Σ_j (1 − tanh²(a₀ⱼ)) z₁ⱼ ‖K₀ⱼ,ₓ‖²,       J₀ = diag(tanh a₀) K₀,ₓ,
///   tr_i = h Σ_j (1 − tanh²(a_iⱼ)) z_{i+1,j} ‖(K_i J_{i−1})ⱼ‖²,
///   J_i = J_{i−1} + h diag(tanh a_i) K_i J_{i−1},
///   ΔₓΦ = Σ_i tr_i + ‖Aₓ‖²_F.
///
/// Particle systems (centre-of-mass convention of targets/target.hpp): with
/// `particles` = {n, s} the potential is Φ(P x, t) with P the projector removing the
/// centre of mass (applied to the x-columns of K₀, A and b). Then ∇ₓΦ = P ∇Φ̃ keeps the flow on the centre-of-mass-free
/// subspace, and the Laplacian above (with K₀,ₓ P and Aₓ P in place of K₀,ₓ and Aₓ)
/// is the divergence of v on that subspace.
///
/// Periodic coordinates (torsions of molecules): with `periodic` = the x-columns that
/// are angles (period 2π), the network input is the feature vector
///   s = (f(x), t),  f(x) = (x_k for non-periodic k, cos x_k for periodic k | sin x_k for periodic k),
/// of length F = d + p + 1 (p periodic columns; the sines follow the first d entries in
/// the order of `periodic`). Φ, v = −∇ₓΦ and ΔₓΦ are then 2π-periodic in those columns,
/// so the RK4 flow map commutes with 2π shifts and induces a diffeomorphism of
/// ℝ^{d−p} × T^p with the same exact log-det (flows on tori: Rezende et al., "Normalizing
/// flows on tori and spheres", ICML 2020). With G = ∂f/∂x (column k: e_k, or
/// −sin x_k e_k + cos x_k e_{d+j} for the j-th periodic column k) and Φ̂ the potential
/// as a function of the features,
///   ∇ₓΦ = Gᵀ ∇_f Φ̂,
///   ΔₓΦ = Σ_k g_kᵀ ∇²_f Φ̂ g_k − Σ_{periodic k} (cos x_k ∂Φ̂/∂c_k + sin x_k ∂Φ̂/∂s_k),
/// and the first sum is the closed form above with the per-sample columns K₀ G (and A G)
/// in place of K₀,ₓ (and Aₓ).
///
/// Pair term (particle systems; Köhler, Klein & Noé, "Equivariant flows: exact likelihood
/// generative learning for symmetric densities", ICML 2020, whose kernel dynamics
/// v_i = Σ_j (x_i − x_j) φ(r_ij, t) is the gradient of a pair potential): with
/// `pair_basis` = K > 0 the potential gains
///
///   Φ_pair(x, t) = ½ Σ_{i≠j} f(r_ij, t) + Σ_l c_l t^l,   f(r, t) = Σ_{k,l} C_kl t^l ψ_k(r),
///
/// l = 0..L−1 (L = `pair_time_basis`), ψ_0(r) = r² and, for k = 1..K, the even Gaussian
/// bumps ψ_k(r) = g(r − μ_k) + g(r + μ_k), g(a) = exp(−a²/2s²), μ_k = (k−1)·R/(K−1)
/// (R = `pair_range`, s = R/(K−1), or R for K = 1): smooth in x at r = 0 because
/// ψ_k is even in r. Φ_pair is invariant under permutations of the particles,
/// rotations, reflections and translations, so v = −∇Φ_pair is E(n)- and
/// permutation-equivariant and the flow maps a symmetric base to a symmetric density.
/// Closed forms (D = spatial_dim):
///   ∇_{x_i}Φ = Σ_{j≠i} f'(r_ij)/r_ij (x_i − x_j),
///   ΔₓΦ = Σ_{i≠j} [f''(r_ij) + (D − 1) f'(r_ij)/r_ij],
///   ∂ₜΦ = ½ Σ_{i≠j} ∂ₜf(r_ij, t) + Σ_l l c_l t^{l−1}.
/// Φ_pair is translation invariant, so its Hessian vanishes along the centre-of-mass
/// directions and the full-space Laplacian is the divergence on the centre-of-mass-free
/// subspace.
///
/// Many-body channels (`pair_channels` = C > 0), an embedded-atom form:
///
///   Φ_mb(x, t) = Σ_i Σ_c a_c(t) F(ρ_ic),   ρ_ic = b_c + Σ_{j≠i} φ_c(r_ij),
///   φ_c(r) = Σ_{k≥1} B_ck ψ_k(r),   a_c(t) = Σ_l A_cl t^l,   F = log(2 cosh ·),
///
/// still invariant under permutations and E(n). With n_ij = (x_i − x_j)/r_ij:
///   ∇_{x_i}Φ_mb = Σ_j Σ_c a_c (F'(ρ_ic) + F'(ρ_jc)) φ_c'(r_ij) n_ij,
///   ΔΦ_mb = Σ_i Σ_c a_c [F''(ρ_ic) |∇ρ_ic|² + F'(ρ_ic) Δρ_ic],
///   |∇ρ_ic|² = |Σ_j φ_c'(r_ij) n_ij|² + Σ_j φ_c'(r_ij)²,   Δρ_ic = 2 Σ_j [φ_c''(r_ij) + (D − 1) φ_c'(r_ij)/r_ij],
///   ∂ₜΦ_mb = Σ_i Σ_c a_c'(t) F(ρ_ic).
/// With `network` = false the ResNet and the quadratic term are dropped and
/// Φ = Φ_pair (a fully equivariant potential).
///
/// All tensors are float64. Every operation is a LibTorch op, so autograd through
/// value() and derivatives() gives parameter gradients (the tests check the closed
/// forms against autograd).
#include <array>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace boltzlab::generators {

/// Architecture of the OT-Flow potential.
struct OtPotentialOptions {
  int dim = 2;          ///< d: spatial dimension of x (flattened)
  int width = 32;       ///< m: ResNet width
  int layers = 2;       ///< nTh ≥ 2: number of ResNet layers (OT-Flow default 2)
  int rank = -1;        ///< r of A; −1: min(10, d+1)
  int n_particles = 0;  ///< >0: particle system, centre of mass projected out
  int spatial_dim = 0;  ///< spatial dimension per particle (with n_particles)
  double init_scale = 0.1;  ///< scale of the random initial K_i, A (w = 1, b = c = 0)
  /// x-columns with period 2π (sorted, distinct, in [0, dim); not with particles).
  std::vector<int> periodic;
  bool network = true;         ///< false: no ResNet / quadratic term (needs pair_basis > 0)
  int pair_basis = 0;          ///< K: Gaussian bumps of the pair term (0: no pair term; particles only)
  int pair_time_basis = 4;     ///< L: powers t^0..t^{L−1} of the pair term's time dependence
  double pair_range = 4.0;     ///< R: largest bump centre (flow-space distance)
  int pair_channels = 0;       ///< C: many-body channels (0: none; needs pair_basis > 0)

  /// F = dim + |periodic| + 1, the number of network inputs.
  int n_features() const { return dim + static_cast<int>(periodic.size()) + 1; }

  /// \throws ConfigError for invalid sizes.
  void validate() const;
  nlohmann::json to_json() const;
  static OtPotentialOptions from_json(const nlohmann::json& j);
};

/// ∇Φ and ΔΦ at a batch of points.
struct PotentialDerivatives {
  torch::Tensor grad_x;     ///< B×d: ∇ₓΦ
  torch::Tensor dt;         ///< B: ∂ₜΦ
  torch::Tensor laplacian;  ///< B: ΔₓΦ = tr ∇²ₓΦ (empty when not requested)
};

/// The OT-Flow potential as a LibTorch module (parameters float64).
class OtPotentialImpl : public torch::nn::Module {
 public:
  explicit OtPotentialImpl(const OtPotentialOptions& options);

  const OtPotentialOptions& options() const { return options_; }

  /// Φ(x, t) for x: B×d and t: a scalar time (same for the batch). Returns B.
  torch::Tensor value(const torch::Tensor& x, double t);

  /// Closed-form ∇ₓΦ, ∂ₜΦ and (when `with_laplacian`) ΔₓΦ, eqs. 11–17 of Onken et al.
  PotentialDerivatives derivatives(const torch::Tensor& x, double t, bool with_laplacian = true);

  /// Φ and its derivatives at per-row times t (B), as used by score models, whose training
  /// draws a noise level per sample. Network potentials only (no pair or many-body term).
  /// \throws DomainError for a potential with a pair term or a t of the wrong shape.
  torch::Tensor value(const torch::Tensor& x, const torch::Tensor& t);
  PotentialDerivatives derivatives(const torch::Tensor& x, const torch::Tensor& t, bool with_laplacian = true);

  /// Re-initializes the parameters from a seed (deterministic).
  void reset_parameters(std::uint64_t seed);

 private:
  /// K₀, A (and bᵀ as a row) with the centre-of-mass projection applied to their x-columns.
  torch::Tensor effective_input_weights(const torch::Tensor& w) const;
  /// The network input s = (features of x, t) for a B×1 time column.
  torch::Tensor input(const torch::Tensor& x, const torch::Tensor& time) const;
  torch::Tensor network_value(const torch::Tensor& x, const torch::Tensor& time);
  /// B×1 column of per-row times (checked), or of the constant t.
  torch::Tensor time_column(const torch::Tensor& x, const torch::Tensor& t) const;
  /// Σ_{i≥1} tr_i of the ResNet layers (file comment) from J₀ᵀ = `jac` (B×d×m: the
  /// opening layer's diag(tanh a₀)·(input columns), per sample), shared by both cases.
  torch::Tensor resnet_laplacian(torch::Tensor jac, const std::vector<torch::Tensor>& tanh_a,
                                 const std::vector<torch::Tensor>& z_above) const;
  /// Periodic case of derivatives(): ∇ₓΦ = Gᵀ∇_sΦ̂ and the Laplacian with per-sample K₀G, AG.
  /// ∇ₓΦ, ∂ₜΦ, ΔₓΦ of the ResNet and quadratic terms (network = true).
  PotentialDerivatives network_derivatives(const torch::Tensor& x, const torch::Tensor& time, bool with_laplacian);
  /// The pair term of Φ (file comment), and its derivatives added to `der`.
  torch::Tensor pair_value(const torch::Tensor& x, double t) const;
  /// ρ_ic (B×n×C) from the basis values ψ (B×P×(K+1)) of the pairs (first, second).
  torch::Tensor channel_densities(const torch::Tensor& psi, const torch::Tensor& first,
                                  const torch::Tensor& second) const;
  void add_pair_derivatives(const torch::Tensor& x, double t, bool with_laplacian, PotentialDerivatives& der) const;
  /// ψ_k(r), ψ_k'(r), ψ_k''(r) for r of any shape: three tensors of shape r.shape × (K+1).
  std::array<torch::Tensor, 3> pair_basis_functions(const torch::Tensor& r, bool derivatives) const;
  void periodic_derivatives(const torch::Tensor& x, const torch::Tensor& grad_s,
                            const std::vector<torch::Tensor>& tanh_a, const std::vector<torch::Tensor>& z_above,
                            const torch::Tensor& k0, const torch::Tensor& a, bool with_laplacian,
                            PotentialDerivatives& out) const;

  OtPotentialOptions options_;
  double h_ = 1.0;
  torch::Tensor k0_, b0_;              ///< opening layer: m×F, m
  std::vector<torch::Tensor> k_, bk_;  ///< ResNet layers: m×m, m
  torch::Tensor w_;                    ///< m
  torch::Tensor a_;                    ///< r×F
  torch::Tensor b_;                    ///< F
  torch::Tensor c_;                    ///< 1
  torch::Tensor periodic_index_;       ///< p (int64): the periodic columns
  torch::Tensor periodic_mask_;        ///< 1×d (float64): 1 at the periodic columns
  torch::Tensor scatter_;              ///< p×d (float64): row j = e_{periodic[j]}
  torch::Tensor pair_c_mat_;           ///< (K+1)×L: C of the pair term
  torch::Tensor pair_c_time_;          ///< L: c of the pair term
  torch::Tensor mb_b_mat_;             ///< C×K: B of the many-body channels
  torch::Tensor mb_bias_;              ///< C: b of the many-body channels
  torch::Tensor mb_a_mat_;             ///< C×L: A of the many-body channels
};
TORCH_MODULE(OtPotential);

/// σ(a) = log(2 cosh a), evaluated stably as |a| + log1p(exp(−2|a|)).
torch::Tensor log_2cosh(const torch::Tensor& a);

}  // namespace boltzlab::generators
