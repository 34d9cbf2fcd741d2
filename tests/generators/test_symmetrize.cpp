// The symmetrized generator q_G(x) = (1/|G|) Σ_g q(g x) over particle permutations and a
// reflection: the group's action, G-invariance and normalization of q_G, and the log Z of a
// symmetric target that q alone misses by log |G| and q_G recovers.
#include <cmath>
#include <set>
#include <vector>

#include "support/torch_doctest.hpp"

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/generators/symmetrize.hpp"

namespace bg = boltzlab::generators;
using boltzlab::RowMatrix;

namespace {

constexpr double kLog2Pi = 1.8378770664093453;

/// log N(x; m, sd² I) for each row of x.
Eigen::VectorXd gaussian_log_density(const RowMatrix& x, const Eigen::RowVectorXd& m, double sd) {
  const double d = static_cast<double>(x.cols());
  return ((x.rowwise() - m).rowwise().squaredNorm().array() / (-2.0 * sd * sd) - 0.5 * d * kLog2Pi -
          d * std::log(sd))
      .matrix();
}

RowMatrix gaussian_draws(Eigen::Index n, const Eigen::RowVectorXd& m, double sd, std::uint64_t seed) {
  RowMatrix x(n, m.size());
  for (Eigen::Index i = 0; i < n; ++i) {
    boltzlab::Rng rng = boltzlab::stream_for(seed, static_cast<std::uint64_t>(i));
    for (Eigen::Index k = 0; k < m.size(); ++k) x(i, k) = m[k] + sd * rng.normal();
  }
  return x;
}

}  // namespace

TEST_CASE("symmetrize: the group of 3 particles in 2-D with a reflection has 12 distinct orthogonal elements") {
  const bg::ParticleSymmetry group(3, 2, true);
  REQUIRE(group.size() == 12);
  const double x[6] = {0.3, -1.1, 2.0, 0.4, -0.7, 1.9};
  std::set<std::vector<double>> images;
  for (std::size_t g = 0; g < group.size(); ++g) {
    std::vector<double> y(6);
    group.apply(g, x, y.data());
    double nx = 0, ny = 0, cx = 0, cy = 0;
    for (int k = 0; k < 6; ++k) nx += x[k] * x[k], ny += y[k] * y[k];
    for (int j = 0; j < 3; ++j) cx += x[2 * j + 1], cy += y[2 * j + 1];
    CHECK(ny == doctest::Approx(nx).epsilon(1e-15));  // orthogonal
    CHECK(cy == doctest::Approx(cx).epsilon(1e-15));  // the unreflected axis's centre is kept
    images.insert(y);
    // Closed under composition: h(g x) is again one of the images g' x.
    for (std::size_t h = 0; h < group.size(); ++h) {
      std::vector<double> z(6);
      group.apply(h, y.data(), z.data());
      bool found = false;
      for (std::size_t g2 = 0; g2 < group.size() && !found; ++g2) {
        std::vector<double> w(6);
        group.apply(g2, x, w.data());
        found = w == z;
      }
      CHECK(found);
    }
  }
  CHECK(images.size() == 12);
  CHECK(bg::ParticleSymmetry(4, 2, false).size() == 24);
  CHECK_THROWS_WITH_AS(bg::ParticleSymmetry(13, 3, true), doctest::Contains("use an equivariant flow"),
                       boltzlab::ConfigError);
}

TEST_CASE("symmetrize: q_G is invariant, normalized, and gives the log Z of a symmetric target that q misses") {
  // q = N(m, 0.3² I) on ℝ⁶ (3 particles in 2-D) with m far from its 11 other images, so q
  // covers one copy of the symmetric target π(x) = Σ_g N(x; g m', 0.3² I), whose
  // normalizing constant is exactly |G| = 12 (log Z = 2.4849).
  const bg::ParticleSymmetry group(3, 2, true);
  Eigen::RowVectorXd m(6), mp(6);
  m << 3.0, 0.5, -1.0, 2.5, 0.7, -3.0;  // its nearest image is 4.2 = 14 sd away
  mp = m.array() + 0.05;
  const double sd = 0.3;
  auto log_q = [&](const RowMatrix& y) { return gaussian_log_density(y, m, sd); };
  const double log_g = std::log(12.0);

  // Draws of q_G: draws of q moved by a uniform element.
  const Eigen::Index n = 20000;
  RowMatrix x = gaussian_draws(n, m, sd, 7), xg(n, 6);
  std::vector<int> count(12, 0);
  for (Eigen::Index i = 0; i < n; ++i) {
    boltzlab::Rng rng = boltzlab::stream_for(8, static_cast<std::uint64_t>(i));
    const auto g = static_cast<std::size_t>(rng.uniform() * 12.0);
    group.apply(g, x.row(i).data(), xg.row(i).data());
    ++count[g];
  }
  const Eigen::VectorXd lqg = bg::symmetrized_log_q(log_q, group, xg);

  // Invariance: log q_G(h x) = log q_G(x) for every h (the same terms, summed in another order).
  for (std::size_t h = 0; h < group.size(); ++h) {
    RowMatrix moved(50, 6);
    for (Eigen::Index i = 0; i < 50; ++i) group.apply(h, xg.row(i).data(), moved.row(i).data());
    const Eigen::VectorXd lh = bg::symmetrized_log_q(log_q, group, moved);
    CHECK((lh - lqg.head(50)).cwiseAbs().maxCoeff() < 1e-12);
  }
  // The copies are far apart: q_G(x) = q(g⁻¹x)/12 at each draw, to rounding.
  const Eigen::VectorXd lq_own = log_q(x);
  CHECK((lqg - (lq_own.array() - log_g).matrix()).cwiseAbs().maxCoeff() < 1e-9);

  // Symmetric target: log π(x) = log Σ_g N(g x; m', sd²) (π is G-invariant).
  auto log_pi = [&](const RowMatrix& y) {
    const Eigen::VectorXd lp = bg::symmetrized_log_q(
        [&](const RowMatrix& z) { return gaussian_log_density(z, mp, sd); }, group, y);
    return Eigen::VectorXd((lp.array() + log_g).matrix());
  };
  // Importance sampling with q_G: log Z = log mean exp(log π − log q_G) → log 12, which holds
  // only if q_G is a normalized density of its draws. With q alone (its own draws, its own
  // density) the estimate is log 1 = 0: it sees one copy.
  const Eigen::VectorXd lw_sym = log_pi(xg) - lqg;
  const Eigen::VectorXd lw_one = log_pi(x) - lq_own;
  const auto z_sym = boltzlab::estimate_log_z(lw_sym);
  const auto z_one = boltzlab::estimate_log_z(lw_one);
  // Tolerance: 4 delta-method standard errors (the estimator's own se).
  CHECK(std::abs(z_sym.estimate - log_g) < 4.0 * z_sym.standard_error);
  CHECK(std::abs(z_one.estimate) < 4.0 * z_one.standard_error);
  CHECK(z_sym.standard_error < 0.05);

  // Each element drawn about n/12 times (binomial sd √(n·p(1−p)) = 39; 5 sd).
  for (int c : count) CHECK(std::abs(c - n / 12.0) < 5.0 * std::sqrt(n * (1.0 / 12) * (11.0 / 12)));
}

TEST_CASE("symmetrize: a particle generator's symmetrized draws carry their exact log q_G, at any thread count") {
  bg::GeneratorOptions o;
  o.potential.dim = 6;
  o.potential.n_particles = 3;
  o.potential.spatial_dim = 2;
  o.potential.width = 8;
  o.steps = 4;
  o.sample_steps = 4;
  bg::BoltzmannGenerator model(o, 5);
  {
    torch::NoGradGuard ng;
    torch::manual_seed(3);  // a visibly non-symmetric flow
    for (auto& p : model.potential()->parameters()) p.add_(0.3 * torch::randn(p.sizes(), torch::kFloat64));
  }
  const bg::ParticleSymmetry group(3, 2, true);
  boltzlab::set_num_threads(1);
  const bg::GeneratedSamples one = bg::symmetrized_sample(model, group, 40, 11);
  boltzlab::set_num_threads(2);
  const bg::GeneratedSamples two = bg::symmetrized_sample(model, group, 40, 11);
  boltzlab::set_num_threads(0);
  CHECK((one.x - two.x).cwiseAbs().maxCoeff() == 0.0);
  CHECK((one.log_q - two.log_q).cwiseAbs().maxCoeff() == 0.0);
  // The log q_G of the draws is the mixture of the model's log q over the group's images.
  const Eigen::VectorXd again =
      bg::symmetrized_log_q([&](const RowMatrix& y) { return model.log_q(y); }, group, one.x);
  CHECK((again - one.log_q).cwiseAbs().maxCoeff() < 1e-12);
  // The draws stay centred (the centre-of-mass-free subspace is kept).
  CHECK(one.x.col(0).size() == 40);
  for (Eigen::Index i = 0; i < one.x.rows(); ++i) {
    CHECK(std::abs(one.x(i, 0) + one.x(i, 2) + one.x(i, 4)) < 1e-12);
    CHECK(std::abs(one.x(i, 1) + one.x(i, 3) + one.x(i, 5)) < 1e-12);
  }
  // And q_G differs from q: the model is not symmetric.
  const Eigen::VectorXd lq = model.log_q(one.x);
  CHECK((lq - one.log_q).cwiseAbs().maxCoeff() > 1e-3);
  CHECK_THROWS_WITH_AS(bg::symmetrized_sample(model, bg::ParticleSymmetry(2, 2, true), 4, 1),
                       doctest::Contains("dimension 6"), boltzlab::ConfigError);
}
