// Tests for lib/boltzlab/estimators/conformations.*: basin assignment, populations of independent
// weighted draws against the exact basin masses of a known density (within standard errors), and
// batch-means errors of a correlated series.
#include <cmath>
#include <vector>

#include <doctest/doctest.h>

#include "boltzlab/core/constants.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/estimators/conformations.hpp"

using namespace boltzlab;

TEST_CASE("conformations: basin of (phi, psi)") {
  CHECK(basin_names()[static_cast<std::size_t>(ramachandran_basin(-1.2, -0.7))] == "alpha_R");
  CHECK(basin_names()[static_cast<std::size_t>(ramachandran_basin(-1.4, 2.5))] == "beta_C7eq");
  CHECK(basin_names()[static_cast<std::size_t>(ramachandran_basin(-1.4, 1.2))] == "beta_C7eq");  // C7eq
  CHECK(basin_names()[static_cast<std::size_t>(ramachandran_basin(-1.4, -2.5))] == "beta_C7eq");  // β across ±π
  CHECK(basin_names()[static_cast<std::size_t>(ramachandran_basin(1.2, -1.2))] == "C7ax");
  CHECK(basin_names()[static_cast<std::size_t>(ramachandran_basin(1.0, 0.7))] == "alpha_L");
  CHECK(ramachandran_basin(std::nan(""), 0.0) == -1);
}

TEST_CASE("conformations: importance-weighted populations of uniform angles match the exact basin masses") {
  // Proposal: φ, ψ uniform on [−π, π)². Target: density ∝ exp(0.8 cos(φ − 1)) (ψ uniform), so the
  // weights are w = exp(0.8 cos(φ − 1)). Exact masses by quadrature of the von Mises density on a fine
  // grid; each estimate must lie within 4 of its own delta-method standard errors (two-sided
  // p ≈ 6e-5 per check for a normal estimator; 4·10⁴ draws make the delta method accurate).
  const int n = 40000;
  RowMatrix angles(n, 2);
  Eigen::VectorXd log_w(n);
  Rng rng(17, 0);
  for (int i = 0; i < n; ++i) {
    angles(i, 0) = -kPi + kTwoPi * rng.uniform();
    angles(i, 1) = -kPi + kTwoPi * rng.uniform();
    log_w[i] = 0.8 * std::cos(angles(i, 0) - 1.0);
  }
  const auto report = conformation_populations_from_angles(angles, {"2"}, &log_w);
  // Exact: P(φ ≥ 0) from the von Mises marginal; ψ uniform splits the basins by the ψ-ranges' lengths.
  const int grid = 200000;
  double total = 0, positive = 0;
  for (int k = 0; k < grid; ++k) {
    const double phi = -kPi + kTwoPi * (k + 0.5) / grid;
    const double p = std::exp(0.8 * std::cos(phi - 1.0));
    total += p;
    if (phi >= 0) positive += p;
  }
  const double pp = positive / total;
  const double alpha_r_share = 2.7 / kTwoPi;  // ψ ∈ [−2.2, 0.5)
  const double exact[5] = {(1 - pp) * alpha_r_share, (1 - pp) * (1 - alpha_r_share), pp * 0.5, pp * 0.5, pp};
  REQUIRE(report.residues.size() == 1);
  for (int b = 0; b < 5; ++b) {
    const auto& e = report.residues[0].basins[static_cast<std::size_t>(b)];
    CHECK(e.standard_error > 0);
    CHECK_MESSAGE(std::abs(e.value - exact[b]) < 4 * e.standard_error, basin_names()[static_cast<std::size_t>(b)]);
  }
  CHECK(report.frames == static_cast<std::size_t>(n));
}

TEST_CASE("conformations: batch means of a series and rejected input") {
  // A series that sits in αR for the first half and in C7ax for the second: the population is 0.5 and
  // the batch-means error over 2 blocks is exactly 0.5 (block means 1 and 0).
  RowMatrix angles(100, 2);
  for (int i = 0; i < 100; ++i) {
    angles(i, 0) = i < 50 ? -1.2 : 1.2;
    angles(i, 1) = -0.7;
  }
  const auto r = conformation_populations_from_angles(angles, {"2"}, nullptr, 2);
  CHECK(r.residues[0].basins[0].value == doctest::Approx(0.5));
  CHECK(r.residues[0].basins[0].standard_error == doctest::Approx(0.5));
  CHECK(r.residues[0].basins[4].value == doctest::Approx(0.5));  // φ ≥ 0
  CHECK_THROWS_AS(conformation_populations_from_angles(angles, {"2", "3"}, nullptr), DomainError);
  RowMatrix nan_angles = RowMatrix::Constant(10, 2, std::nan(""));
  CHECK_THROWS_AS(conformation_populations_from_angles(nan_angles, {"2"}, nullptr, 2), DomainError);
}
