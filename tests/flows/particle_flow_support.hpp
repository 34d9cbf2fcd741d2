#pragma once
// Helpers shared by the interacting-particle flow tests.
#include <cmath>
#include <cstdint>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/targets/gaussian.hpp"

namespace particle_test {

using boltzlab::RowMatrix;

/// The 2-D anisotropic Gaussian: correlation 0.82, eigenvalues 2.44 and 0.16.
inline boltzlab::GaussianTarget anisotropic_2d() {
  Eigen::VectorXd mean(2);
  mean << 1.0, -0.5;
  Eigen::MatrixXd cov(2, 2);
  cov << 2.0, 0.9, 0.9, 0.6;
  return boltzlab::GaussianTarget(mean, cov);
}

/// A correlated 10-D Gaussian: Σ = A Aᵀ/10 + I with A_rk = sin(1 + 3r + 7k), mean 0.1·k.
inline boltzlab::GaussianTarget correlated_10d() {
  const int d = 10;
  Eigen::MatrixXd a(d, d);
  for (int r = 0; r < d; ++r)
    for (int k = 0; k < d; ++k) a(r, k) = std::sin(1.0 + 3.0 * r + 7.0 * k);
  Eigen::VectorXd mean(d);
  for (int k = 0; k < d; ++k) mean[k] = 0.1 * k;
  return boltzlab::GaussianTarget(mean, a * a.transpose() / d + Eigen::MatrixXd::Identity(d, d));
}

/// n standard normal rows (particle i from stream i of `seed`), times scale, plus shift.
inline RowMatrix normal_rows(std::size_t n, std::size_t d, std::uint64_t seed, double scale = 1.0, double shift = 0.0) {
  RowMatrix x(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  for (std::size_t i = 0; i < n; ++i) {
    boltzlab::Rng rng = boltzlab::stream_for(seed, i);
    for (std::size_t k = 0; k < d; ++k)
      x(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(k)) = scale * rng.normal() + shift;
  }
  return x;
}

/// n exact iid samples of N(mean, cov).
inline RowMatrix exact_samples(const boltzlab::GaussianTarget& g, std::size_t n, std::uint64_t seed) {
  const Eigen::MatrixXd l = Eigen::LLT<Eigen::MatrixXd>(g.covariance()).matrixL();
  RowMatrix z = normal_rows(n, g.dim(), seed);
  RowMatrix x = z * l.transpose();
  x.rowwise() += g.mean().transpose();
  return x;
}

inline Eigen::VectorXd sample_mean(const RowMatrix& x) { return x.colwise().mean().transpose(); }

inline Eigen::MatrixXd sample_cov(const RowMatrix& x) {
  const RowMatrix c = x.rowwise() - x.colwise().mean();
  return c.transpose() * c / static_cast<double>(x.rows() - 1);
}

/// max_kl |A_kl − B_kl| / √(B_kk B_ll): covariance error relative to the scales of B.
inline double relative_cov_error(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  double worst = 0.0;
  for (Eigen::Index k = 0; k < a.rows(); ++k)
    for (Eigen::Index l = 0; l < a.cols(); ++l)
      worst = std::max(worst, std::abs(a(k, l) - b(k, l)) / std::sqrt(b(k, k) * b(l, l)));
  return worst;
}

/// max_k |m_k − μ_k| / √(Σ_kk / N): the mean error in units of the iid standard error.
inline double mean_error_in_se(const RowMatrix& x, const boltzlab::GaussianTarget& g) {
  const Eigen::VectorXd m = sample_mean(x);
  double worst = 0.0;
  for (Eigen::Index k = 0; k < m.size(); ++k)
    worst = std::max(worst, std::abs(m[k] - g.mean()[k]) /
                                std::sqrt(g.covariance()(k, k) / static_cast<double>(x.rows())));
  return worst;
}

}  // namespace particle_test
