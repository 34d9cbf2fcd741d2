#include <doctest/doctest.h>

#include <cmath>

#include <Eigen/LU>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/gaussian.hpp"
#include "support/gradient_check.hpp"

using namespace boltzlab;

TEST_CASE("gaussian: full covariance gradient and log Z") {
  Eigen::VectorXd mean(3);
  mean << 1.0, -2.0, 0.5;
  Eigen::MatrixXd cov(3, 3);
  cov << 2.0, 0.3, 0.1, 0.3, 1.0, -0.2, 0.1, -0.2, 0.5;
  GaussianTarget g(mean, cov);
  testing::check_gradient(g, testing::random_points(3, 5, 2.0));
  // log Z = (d/2) log 2π + ½ log det Σ.
  CHECK(*g.log_z() == doctest::Approx(1.5 * std::log(2 * M_PI) + 0.5 * std::log(cov.determinant())).epsilon(1e-12));
  // u at the mean is 0, and u(μ + e1) = ½ (Σ⁻¹)_11.
  CHECK(g.reduced_energy(mean.data(), nullptr) == doctest::Approx(0.0));
  Eigen::VectorXd x = mean;
  x[0] += 1.0;
  CHECK(g.reduced_energy(x.data(), nullptr) == doctest::Approx(0.5 * cov.inverse()(0, 0)).epsilon(1e-12));
}

TEST_CASE("gaussian: quadrature of exp(-u) in 2-D matches log Z") {
  Eigen::VectorXd mean(2);
  mean << 0.3, -0.1;
  Eigen::MatrixXd cov(2, 2);
  cov << 1.5, 0.4, 0.4, 0.7;
  GaussianTarget g(mean, cov);
  const double h = 0.02;
  double z = 0.0;
  for (double a = -10; a < 10; a += h)
    for (double b = -10; b < 10; b += h) {
      const double x[2] = {a, b};
      z += std::exp(-g.reduced_energy(x, nullptr)) * h * h;
    }
  CHECK(std::log(z) == doctest::Approx(*g.log_z()).epsilon(1e-6));
}

TEST_CASE("gaussian: invalid covariance is a ConfigError") {
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(2);
  Eigen::MatrixXd cov(2, 2);
  cov << 1.0, 2.0, 2.0, 1.0;  // indefinite
  CHECK_THROWS_AS(GaussianTarget(mean, cov), ConfigError);
}

TEST_CASE("target: batched evaluation equals serial and counts non-finite energies") {
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(2);
  GaussianTarget g(mean, Eigen::MatrixXd::Identity(2, 2));
  RowMatrix x(100, 2);
  Rng rng(1, 0);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = rng.normal();
  x(17, 1) = std::numeric_limits<double>::quiet_NaN();
  Eigen::VectorXd u1, u2;
  RowMatrix g1, g2;
  auto s1 = g.evaluate_batch(x, u1, &g1, Execution::kParallel);
  auto s2 = g.evaluate_batch(x, u2, &g2, Execution::kSerial);
  CHECK(s1.non_finite == 1);
  CHECK(s2.non_finite == 1);
  CHECK(std::isinf(u1[17]));
  for (Eigen::Index i = 0; i < 100; ++i) {
    if (i == 17) continue;
    CHECK(u1[i] == u2[i]);
    CHECK(g1.row(i) == g2.row(i));
  }
}
