#pragma once
/// \file gaussian_mixture.hpp
/// Gaussian mixture target
///   u(x) = −log Σ_k w_k N(x; μ_k, Σ_k),   log Z = log Σ_k w_k
/// (so log Z = 0 when the weights sum to 1). Evaluated by a one-pass, stable
/// log-sum-exp over l_k = log w_k − ½ log det(2πΣ_k) − ½ r_kᵀ Σ_k⁻¹ r_k, r_k = x − μ_k.
/// Gradient: with responsibilities γ_k = exp(l_k) / Σ_j exp(l_j),
///   ∇u(x) = Σ_k γ_k Σ_k⁻¹ (x − μ_k).
/// GMM-40 (potentials/gmm40.json) is the 2-D, 40-component benchmark of FAB
/// (Midgley et al., ICLR 2023): equal weights, std softplus(1) per dimension.
#include <memory>
#include <vector>

#include <Eigen/Core>

#include "boltzlab/targets/registry.hpp"

namespace boltzlab {

class GaussianMixtureTarget : public Target {
 public:
  /// `weights` (K, positive), `means` (K vectors of length d), `covariances`
  /// (K symmetric positive definite d×d matrices; diagonal ones take a fast path).
  /// \throws ConfigError on inconsistent sizes, non-positive weights or a covariance
  /// that is not symmetric positive definite.
  GaussianMixtureTarget(std::vector<double> weights, std::vector<Eigen::VectorXd> means,
                        std::vector<Eigen::MatrixXd> covariances);

  std::string name() const override { return "gaussian_mixture"; }
  std::size_t dim() const override { return dim_; }
  double reduced_energy(const double* x, double* grad) const override;
  std::optional<double> log_z() const override { return log_z_; }
  nlohmann::json describe() const override;

  std::size_t components() const { return weights_.size(); }
  const std::vector<double>& weights() const { return weights_; }
  const std::vector<Eigen::VectorXd>& means() const { return means_; }
  const std::vector<Eigen::MatrixXd>& covariances() const { return covariances_; }

 private:
  std::size_t dim_ = 0;
  std::vector<double> weights_;
  std::vector<Eigen::VectorXd> means_;
  std::vector<Eigen::MatrixXd> covariances_;
  // Flattened for the hot loop: means K×d, inverse variances K×d (diagonal
  // components) or precisions K×d×d (row-major, full components).
  std::vector<double> flat_means_;
  std::vector<double> flat_inv_var_;
  std::vector<double> flat_precision_;
  std::vector<char> diagonal_;
  std::vector<double> log_coef_;  ///< log w_k − ½ log det(2πΣ_k)
  double log_z_ = 0.0;
};

/// Factory. Parameters:
/// - "means": K×d nested array, or "means_file": text file (K rows of d numbers,
///   '#' comments) or .npy (K×d), relative to the potential file's folder;
/// - "weights": K positive numbers (default all 1/K);
/// - "std": a number, d numbers (shared by all components) or K arrays of d
///   numbers (diagonal covariances), or "covariances": K nested d×d arrays;
///   default std 1.
std::unique_ptr<Target> make_gaussian_mixture(JsonReader& params, const std::filesystem::path& dir);

}  // namespace boltzlab
