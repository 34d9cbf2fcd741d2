#pragma once
/// \file blob.hpp
/// Blob-method KL (Wasserstein) gradient flow (Carrillo, Craig & Patacchini 2019,
/// "A blob method for diffusion", Calc. Var. PDE 58:53). The entropy ∫ρ log ρ is
/// regularized to F_ε(ρ) = ∫ρ log(φ_ε * ρ) with a Gaussian mollifier
/// φ_ε(z) = (2πε²)^{−d/2} exp(−|z|²/(2ε²)); for N particles of mass 1/N the
/// gradient flow of E[βu] + F_ε is
///   dX_i/dt = −β∇u(X_i) − Σ_j ∇φ_ε(X_i − X_j) [1/Σ_k φ_ε(X_i − X_k) + 1/Σ_k φ_ε(X_j − X_k)]
/// (masses and normalization cancel). With ∇φ_ε(z) = −z φ_ε(z)/ε², a_i = 1/Σ_k φ_ik,
/// Σ_j φ_ij (x_i − x_j)(a_i + a_j) = x_i (1 + Σ_j φ_ij a_j) − a_i Σ_j φ_ij x_j − Σ_j φ_ij a_j x_j,
/// i.e. two passes of gaussian_kernel_sums (weights [1], then [x_j, a_j x_j, a_j]).
/// Time stepping: explicit Euler, X ← X + τ dX/dt (stable for τ ≲ ε²).
///
/// ε: fixed ("epsilon": number > 0) or "median": ε² = ½·median(D²)/log(N+1) (the SVGD
/// heuristic), recomputed every step.
/// Known bias: the minimizer of F_ε differs from π by O(ε) in general (the paper's
/// Γ-convergence rate); for a Gaussian target in the Gaussian family the variance is
/// σ² − ε⁴/σ² + O(ε⁶), and at finite N a small ε (below the particle spacing) lets the
/// repulsion vanish, so the variance is underestimated.
#include <memory>
#include <string>

#include "boltzlab/flows/interacting.hpp"

namespace boltzlab {

/// Blob-method settings ("params" of --flow blob).
struct BlobOptions {
  double epsilon = 0.0;  ///< mollifier width ε > 0, or 0 for the median heuristic ("median")
  /// \throws ConfigError naming the field.
  void validate() const;
};

class BlobFlow final : public InteractingFlow {
 public:
  BlobFlow(BlobOptions options, InteractingOptions common);
  std::string name() const override { return "blob"; }

  /// The diffusion velocity −Σ_j ∇φ_ε(X_i − X_j)[a_i + a_j] for all particles (N×d);
  /// returns the ε used. `pairs`: storage for the squared distances the median pass
  /// keeps (kernel_width2), turned into kernel values for both passes, reused across
  /// calls (null: a temporary). Over MPI ranks (collective) each rank computes its rows
  /// of both passes; the density and the velocity are gathered whole on every rank.
  /// Exposed for tests.
  static double diffusion_velocity(const RowMatrix& x, double fixed_epsilon, RowMatrix& velocity, Execution exec,
                                   PairDistances* pairs = nullptr);

 protected:
  void update(const RowMatrix& x, const RowMatrix& grad_u, double beta, std::size_t step, double step_size,
              const FlowOptions& options, RowMatrix& delta) override;
  double default_step_size() const override { return 0.02; }
  double bandwidth() const override { return epsilon_; }
  void add_statistics(nlohmann::json& statistics) const override;

 private:
  BlobOptions options_;
  double epsilon_ = 0.0;
  PairDistances pairs_;  ///< squared distances kept by the median pass (storage reused per step)
};

/// Factory: {"epsilon": "median" | ε, "ksd", "ksd_c", "stop_monitor", "patience"}.
std::unique_ptr<Flow> make_blob(JsonReader& params);

}  // namespace boltzlab
