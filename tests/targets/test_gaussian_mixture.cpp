#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include <Eigen/LU>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/gaussian_mixture.hpp"
#include "support/gradient_check.hpp"

using namespace boltzlab;

namespace {

GaussianMixtureTarget general_mixture() {
  // Three 2-D components, unequal weights summing to 0.7, one diagonal and two
  // full covariances.
  std::vector<Eigen::VectorXd> means(3, Eigen::VectorXd::Zero(2));
  means[0] << -2.0, 0.5;
  means[1] << 1.5, 1.0;
  means[2] << 0.0, -2.5;
  std::vector<Eigen::MatrixXd> covs(3, Eigen::MatrixXd::Zero(2, 2));
  covs[0] << 0.5, 0.0, 0.0, 2.0;
  covs[1] << 1.0, 0.6, 0.6, 0.8;
  covs[2] << 0.3, -0.1, -0.1, 0.4;
  return GaussianMixtureTarget({0.1, 0.25, 0.35}, means, covs);
}

std::string error_of(const Json& params, const std::filesystem::path& dir = ".") {
  try {
    make_target("gaussian_mixture", params, dir, "g.json");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("gaussian_mixture: energy equals the naive mixture formula") {
  const auto gm = general_mixture();
  for (const auto& p : testing::random_points(2, 10, 2.0)) {
    double density = 0.0;
    for (std::size_t k = 0; k < 3; ++k) {
      const Eigen::Vector2d r = Eigen::Map<const Eigen::Vector2d>(p.data()) - gm.means()[k];
      const Eigen::Matrix2d c = gm.covariances()[k];
      density += gm.weights()[k] * std::exp(-0.5 * r.dot(c.inverse() * r)) / (2 * M_PI * std::sqrt(c.determinant()));
    }
    CHECK(gm.reduced_energy(p.data(), nullptr) == doctest::Approx(-std::log(density)).epsilon(1e-12));
  }
}

TEST_CASE("gaussian_mixture: gradient at random points") {
  const auto gm = general_mixture();
  testing::check_gradient(gm, testing::random_points(2, 40, 3.0));
  // Higher dimension, full covariances.
  std::vector<Eigen::VectorXd> means;
  std::vector<Eigen::MatrixXd> covs;
  Rng rng(3, 0);
  for (int k = 0; k < 4; ++k) {
    Eigen::VectorXd m(5);
    Eigen::MatrixXd a(5, 5);
    for (int i = 0; i < 5; ++i) m[i] = 2 * rng.normal();
    for (int i = 0; i < 25; ++i) a.data()[i] = rng.normal();
    means.push_back(m);
    covs.push_back(a * a.transpose() / 5.0 + 0.2 * Eigen::MatrixXd::Identity(5, 5));
  }
  GaussianMixtureTarget gm5({1.0, 2.0, 0.5, 0.5}, means, covs);
  testing::check_gradient(gm5, testing::random_points(5, 30, 3.0, 5));
}

TEST_CASE("gaussian_mixture: 2-D quadrature equals log Z = log sum of weights") {
  const auto gm = general_mixture();
  CHECK(*gm.log_z() == doctest::Approx(std::log(0.7)).epsilon(1e-14));
  const double h = 0.02;
  double z = 0.0;
  for (double a = -10; a < 10; a += h)
    for (double b = -10; b < 10; b += h) {
      const double x[2] = {a, b};
      z += std::exp(-gm.reduced_energy(x, nullptr)) * h * h;
    }
  CHECK(std::log(z) == doctest::Approx(std::log(0.7)).epsilon(1e-7));
}

TEST_CASE("gaussian_mixture: GMM-40 potential file, normalized") {
  const auto pot = load_potential(std::filesystem::path(BOLTZLAB_SOURCE_DIR) / "potentials/gmm40.json");
  const auto& gm = dynamic_cast<const GaussianMixtureTarget&>(*pot.target);
  REQUIRE(gm.dim() == 2);
  REQUIRE(gm.components() == 40);
  CHECK(gm.covariances()[7](1, 1) == doctest::Approx(std::pow(std::log1p(std::exp(1.0)), 2)).epsilon(1e-10));
  CHECK(gm.means()[1][0] == doctest::Approx(-32.921806));
  CHECK(std::abs(*gm.log_z()) < 1e-14);
  // Trapezoid quadrature (h = 0.1 against σ = 1.31: error ~ exp(−2π²σ²/h²), negligible)
  // over a box holding all means ± 10σ.
  const double h = 0.1;
  double z = 0.0;
  for (int i = -560; i <= 560; ++i)
    for (int j = -560; j <= 560; ++j) {
      const double x[2] = {i * h, j * h};
      z += std::exp(-gm.reduced_energy(x, nullptr)) * h * h;
    }
  CHECK(std::abs(std::log(z)) < 1e-8);
  testing::check_gradient(gm, testing::random_points(2, 50, 25.0));
}

TEST_CASE("gaussian_mixture: stable far from every component") {
  // At |x| = 1e3 every density underflows (exp(−1e5)); log-sum-exp keeps u finite:
  // u ≈ ½ min_k r_kᵀΣ⁻¹r_k − log coefficient, and ∇u = Σ⁻¹ r of the nearest component.
  const auto gm = general_mixture();
  const double x[2] = {1000.0, 1000.0};
  double g[2];
  const double u = gm.reduced_energy(x, g);
  REQUIRE(std::isfinite(u));
  CHECK(std::isfinite(g[0]));
  CHECK(u > 1e5);
  testing::check_gradient(gm, {{1000.0, 1000.0}, {-300.0, 50.0}});
}

TEST_CASE("gaussian_mixture: bad input names the key or file") {
  auto err = [](const char* text, const std::filesystem::path& dir = ".") { return error_of(Json::parse(text), dir); };
  CHECK(err(R"({"means": [[0, 0]], "std": -1})").find("g.json.parameters.std") != std::string::npos);
  CHECK(err(R"({"means": [[0, 0]], "std": [1, 0]})").find("parameters.std") != std::string::npos);
  CHECK(err(R"({"means": [[0, 0], [1, 1]], "weights": [1]})").find("parameters.weights") != std::string::npos);
  CHECK(err(R"({"means": [[0, 0]], "weights": [-1]})").find("parameters.weights") != std::string::npos);
  const std::string missing = err(R"({"means_file": "no_such_means.txt"})", "/nonexistent_dir");
  CHECK(missing.find("parameters.means_file") != std::string::npos);
  CHECK(missing.find("no_such_means.txt") != std::string::npos);
  CHECK(err(R"({"std": 1})").find("means") != std::string::npos);
  CHECK(err(R"({"means": [[0, 0]], "covariances": [[[1, 2], [2, 1]]]})").find("positive definite") !=
        std::string::npos);
  CHECK(err(R"({"means": [[0, 0]], "sdt": 1})").find("did you mean 'std'") != std::string::npos);
}
