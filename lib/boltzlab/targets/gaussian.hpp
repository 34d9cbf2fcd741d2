#pragma once
/// \file gaussian.hpp
/// Multivariate Gaussian target N(μ, Σ):
///   u(x) = ½ (x−μ)ᵀ Σ⁻¹ (x−μ),   ∇u(x) = Σ⁻¹ (x−μ),
///   log Z = (d/2) log 2π + ½ log det Σ   (u carries no normalization).
#include <memory>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "boltzlab/targets/registry.hpp"

namespace boltzlab {

class GaussianTarget : public Target {
 public:
  /// \throws ConfigError if Σ is not symmetric positive definite or sizes differ.
  GaussianTarget(Eigen::VectorXd mean, Eigen::MatrixXd covariance);

  std::string name() const override { return "gaussian"; }
  std::size_t dim() const override { return static_cast<std::size_t>(mean_.size()); }
  double reduced_energy(const double* x, double* grad) const override;
  std::optional<double> log_z() const override { return log_z_; }
  nlohmann::json describe() const override;

  const Eigen::VectorXd& mean() const { return mean_; }
  const Eigen::MatrixXd& covariance() const { return covariance_; }

 private:
  Eigen::VectorXd mean_;
  Eigen::MatrixXd covariance_;
  Eigen::MatrixXd precision_;
  bool diagonal_ = false;
  Eigen::VectorXd inv_var_;  ///< diagonal fast path
  double log_z_ = 0.0;
};

/// Factory. Parameters: "mean" (array, required); "std" (number or array:
/// diagonal standard deviations) or "covariance" (d×d nested array); default unit
/// covariance. Optional "dim" with a scalar "mean" to repeat it.
std::unique_ptr<Target> make_gaussian(JsonReader& params, const std::filesystem::path& dir);

}  // namespace boltzlab
