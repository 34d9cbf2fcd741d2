#include <doctest/doctest.h>

#include <cmath>

#include "boltzlab/core/error.hpp"
#include "boltzlab/flows/blob.hpp"
#include "flows/particle_flow_support.hpp"

using namespace boltzlab;
using namespace particle_test;

namespace {
FlowOptions quiet(std::size_t steps, double step_size) {
  FlowOptions o;
  o.steps = steps;
  o.step_size = step_size;
  o.progress = false;
  o.monitor_every = 50;
  return o;
}

/// Covariance the blob method converges to as N → ∞ at fixed ε, within Gaussians: the
/// minimizer of E_ρ[u] + ∫ρ log(φ_ε * ρ) over ρ = N(μ, S) for π = N(μ, Σ). In the
/// eigenbasis of Σ (λ), with v = s + ε²: 1/λ = 1/v + ε²/v², i.e.
///   s = v − ε²,  v = (λ + √(λ² + 4λε²))/2   (s = λ − ε⁴/λ + O(ε⁶); needs ε² < 2λ).
Eigen::MatrixXd blob_limit_covariance(const Eigen::MatrixXd& sigma, double eps) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(sigma);
  Eigen::VectorXd s = es.eigenvalues();
  const double e2 = eps * eps;
  for (Eigen::Index k = 0; k < s.size(); ++k) s[k] = 0.5 * (s[k] + std::sqrt(s[k] * s[k] + 4 * s[k] * e2)) - e2;
  return es.eigenvectors() * s.asDiagonal() * es.eigenvectors().transpose();
}
}  // namespace

TEST_CASE("blob: 2-D anisotropic Gaussian: mean exact, covariance = the predicted O(eps) bias") {
  const GaussianTarget g = anisotropic_2d();
  Ensemble e(200, 2);
  e.positions = normal_rows(200, 2, 5, 3.0, 2.0);
  const FlowResult r = make_flow("blob", Json::object())->run(g, e, quiet(1000, 0.02));
  // Mean: the interaction is antisymmetric (Σ_i of the diffusion velocity is 0), so the
  // stationary ensemble satisfies Σ_i ∇u(X_i) = 0, i.e. mean = μ for a Gaussian (up to
  // convergence). Allow 3 iid SE, far above what is reached.
  CHECK(mean_error_in_se(e.positions, g) < 3.0);
  // Covariance: with the median ε (≈ 0.47 here) the bias is large in the narrow direction
  // (λ = 0.16: s/λ ≈ 0.4), and the ensemble matches the continuum prediction S(ε): we
  // measure ≈ 1 %; allow 5 % of √(S_kk S_ll) for the finite-N remainder.
  const double eps = r.monitors.at("bandwidth").back();
  const Eigen::MatrixXd predicted = blob_limit_covariance(g.covariance(), eps);
  CHECK(relative_cov_error(sample_cov(e.positions), predicted) < 0.05);
  // and the bias is real: the prediction differs from Σ by more than the tolerance.
  CHECK(relative_cov_error(predicted, g.covariance()) > 0.1);
  const auto& ksd = r.monitors.at("ksd");
  CHECK(ksd.back() < 0.1 * ksd.front());
}

TEST_CASE("blob: smaller fixed epsilon approaches pi (1-D, N = 400)") {
  // 1-D N(0, 1): ε = 0.5 predicts s = 0.957, ε = 0.2 predicts 0.9985; with N = 400 the
  // particle spacing (≈ 0.01 near the mode) is well below ε, so the ensemble follows the
  // prediction; tolerance 2 % (measured < 0.5 %).
  const GaussianTarget g(Eigen::VectorXd::Zero(1), Eigen::MatrixXd::Identity(1, 1));
  for (double eps : {0.5, 0.2}) {
    Ensemble e(400, 1);
    e.positions = exact_samples(g, 400, 9);
    make_flow("blob", Json{{"epsilon", eps}, {"ksd", false}})->run(g, e, quiet(1500, 0.005));
    const double predicted = blob_limit_covariance(g.covariance(), eps)(0, 0);
    CHECK(sample_cov(e.positions)(0, 0) == doctest::Approx(predicted).epsilon(0.02));
    CHECK(std::abs(sample_mean(e.positions)[0]) < 0.01);
  }
}

TEST_CASE("blob: 10-D correlated Gaussian: mean exact, covariance -> S(eps) as N grows") {
  // ε = 1 fixed (ε² < 2λ_min, so S(ε) is positive definite). In 10-D the particle spacing
  // at N ≤ 300 is comparable to ε, and the self term φ_ε(0) dominates Σ_k φ_ε(X_i − X_k):
  // a further finite-N underestimate of the variance, which must shrink as N grows.
  // Measured variance ratios to S(ε): ≈ 0.63 (N = 100), ≈ 0.76 (N = 300), ≈ 0.88 (N = 1000).
  const GaussianTarget g = correlated_10d();
  const Eigen::MatrixXd predicted = blob_limit_covariance(g.covariance(), 1.0);
  double mean_ratio[2];
  const std::size_t sizes[2] = {100, 300};
  for (int s = 0; s < 2; ++s) {
    Ensemble e(sizes[s], 10);
    e.positions = exact_samples(g, sizes[s], 12);
    make_flow("blob", Json{{"epsilon", 1.0}, {"ksd", false}})->run(g, e, quiet(600, 0.05));
    CHECK(mean_error_in_se(e.positions, g) < 3.0);
    const Eigen::VectorXd ratio = sample_cov(e.positions).diagonal().cwiseQuotient(predicted.diagonal());
    CHECK(ratio.minCoeff() > 0.5);
    CHECK(ratio.maxCoeff() < 1.05);
    mean_ratio[s] = ratio.mean();
    MESSAGE("blob d=10 N=" << sizes[s] << ": mean variance ratio to S(eps) " << mean_ratio[s]);
  }
  CHECK(mean_ratio[1] > mean_ratio[0] + 0.05);
}

TEST_CASE("blob: diffusion velocity matches the pairwise formula of Carrillo, Craig & Patacchini") {
  // v_i = −Σ_j ∇φ_ε(x_i − x_j) [1/Σ_k φ_ε(x_i − x_k) + 1/Σ_k φ_ε(x_j − x_k)], ∇φ_ε(z) = −z φ_ε(z)/ε².
  const RowMatrix x = normal_rows(41, 3, 14);
  const double eps = 0.8;
  RowMatrix v;
  CHECK(BlobFlow::diffusion_velocity(x, eps, v, Execution::kParallel) == eps);
  auto phi = [&](Eigen::Index i, Eigen::Index j) { return std::exp(-(x.row(i) - x.row(j)).squaredNorm() / (2 * eps * eps)); };
  Eigen::VectorXd rho = Eigen::VectorXd::Zero(x.rows());
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index k = 0; k < x.rows(); ++k) rho[i] += phi(i, k);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    Eigen::RowVectorXd ref = Eigen::RowVectorXd::Zero(3);
    for (Eigen::Index j = 0; j < x.rows(); ++j)
      ref += (x.row(i) - x.row(j)) * phi(i, j) / (eps * eps) * (1.0 / rho[i] + 1.0 / rho[j]);
    CHECK((v.row(i) - ref).cwiseAbs().maxCoeff() < 1e-12);
  }
}

TEST_CASE("blob: bad parameters are one clear ConfigError") {
  CHECK_THROWS_WITH_AS(make_flow("blob", Json{{"epsilon", -0.1}}), doctest::Contains("epsilon"), ConfigError);
  CHECK_THROWS_AS(make_flow("blob", Json{{"epsilon", 0}}), ConfigError);
  CHECK_THROWS_AS(make_flow("blob", Json{{"bandwidth", 1.0}}), ConfigError);  // blob calls it epsilon
}
