// The Schrödinger-bridge sampler (bridge_sampler.hpp): exact path weights (unbiased log Z for
// any control, trained or not, with and without the generalized bridge's interaction), training
// that moves the control towards the known Föllmer drift of a Gaussian target, and samples that
// do not depend on the thread count or on chunking.
#include <cmath>

#include "support/torch_doctest.hpp"

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/generators/bridge_sampler.hpp"
#include "boltzlab/targets/gaussian.hpp"

namespace bg = boltzlab::generators;
using boltzlab::RowMatrix;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

bg::BridgeOptions small_bridge(double alpha = 0.0) {
  bg::BridgeOptions o;
  o.potential.dim = 2;
  o.potential.width = 16;
  o.potential.layers = 2;
  o.potential.init_scale = 0.5;  // a control far from zero: the weights have work to do
  o.steps = 20;
  o.alpha_interaction = alpha;
  return o;
}

// π = N((1.5, −0.5), diag(0.25, 0.25)): narrow and off-centre against the reference N(0, I).
boltzlab::GaussianTarget target() {
  return boltzlab::GaussianTarget(Eigen::Vector2d(1.5, -0.5), 0.25 * Eigen::Matrix2d::Identity());
}

struct LogZ {
  double value, se, ess;
};
// log Ẑ = log mean w with the delta-method standard error sd(w)/(√N mean(w)), and Kish ESS.
LogZ estimate(bg::BridgeSampler& b, const boltzlab::Target& t, int n, std::uint64_t seed) {
  const bg::BridgeDraws d = b.sample(n, seed, 512);
  Eigen::VectorXd lw(n);
  for (int i = 0; i < n; ++i) {
    const Eigen::Vector2d x = d.x.row(i).transpose();
    lw[i] = -t.reduced_energy(x.data(), nullptr) + d.log_path[i];
  }
  const double mx = lw.maxCoeff();
  const Eigen::ArrayXd w = (lw.array() - mx).exp();
  const double mean = w.mean(), sd = std::sqrt((w - mean).square().mean());
  return {mx + std::log(mean), sd / (std::sqrt(static_cast<double>(n)) * mean),
          w.sum() * w.sum() / w.square().sum() / n};
}

}  // namespace

TEST_CASE("bridge: path weights estimate log Z without bias for an untrained and a trained control") {
  // E[w] = Z holds exactly for the Euler–Maruyama chain and any control (bridge_sampler.hpp), so
  // the check is 4 standard errors of log Ẑ; the trained control must also raise the ESS.
  const auto t = target();
  for (double alpha : {0.0, 1.0}) {
    CAPTURE(alpha);
    bg::BridgeSampler b(small_bridge(alpha), 5);
    const LogZ before = estimate(b, t, 20000, 9);
    CHECK(std::abs(before.value - *t.log_z()) < 4.0 * before.se);
    bg::BridgeTrainOptions o;
    o.iterations = 150;
    o.batch_size = 128;
    o.learning_rate = 1e-2;
    o.seed = 3;
    const bg::BridgeHistory h = b.train(t, o);
    CHECK(h.iterations_done == 150);
    CHECK(h.energy_evaluations == 150u * 128u);
    const LogZ after = estimate(b, t, 20000, 11);
    MESSAGE("bridge alpha " << alpha << ": ESS " << before.ess << " -> " << after.ess << ", log Z " << after.value
                            << " ± " << after.se << " (exact " << *t.log_z() << ")");
    CHECK(after.se < 0.05);
    CHECK(std::abs(after.value - *t.log_z()) < 4.0 * after.se);
    CHECK(after.ess > before.ess + 0.2);
  }
}

TEST_CASE("bridge: the trained control approaches the Föllmer drift of a Gaussian target") {
  // π = N(μ, s² I), σ = 1, T = 1: with f = π/N(0, I), h(x, t) = E f(x + √(1−t) Z) and the
  // optimal control v* = ∇ log h = (b − a x)/(1 + a(1 − t)), a = 1/s² − 1, b = μ/s²
  // (a Gaussian integral per coordinate). The error is measured where the optimal paths go:
  // X_t = t X_1 + a Brownian bridge, so X_t ~ N(t μ, (t² s² + t(1 − t)) I). The untrained
  // control is far from v*; after training the mean relative error must be < 0.25.
  const auto t = target();
  bg::BridgeSampler b(small_bridge(), 5);
  const double a = 1.0 / 0.25 - 1.0;
  const auto mu = torch::tensor({1.5, -0.5}, kF64);
  torch::manual_seed(1);
  const auto z = torch::randn({400, 2}, kF64);
  const auto error = [&](bg::BridgeSampler& model) {
    double sum = 0.0;
    for (double time : {0.1, 0.5, 0.9}) {
      const auto x = time * mu + std::sqrt(time * time * 0.25 + time * (1.0 - time)) * z;
      const auto exact = (mu / 0.25 - a * x) / (1.0 + a * (1.0 - time));
      const auto v = model.control(x, time);
      sum += ((v - exact).norm(2, 1) / exact.norm(2, 1)).mean().item<double>();
    }
    return sum / 3.0;
  };
  const double before = error(b);
  bg::BridgeTrainOptions o;
  o.iterations = 300;
  o.batch_size = 128;
  o.learning_rate = 1e-2;
  o.seed = 3;
  b.train(t, o);
  const double after = error(b);
  MESSAGE("relative control error " << before << " -> " << after);
  CHECK(before > 0.5);
  CHECK(after < 0.25);
}

TEST_CASE("bridge: samples do not depend on the thread count or on chunking") {
  bg::BridgeSampler b(small_bridge(), 7);
  boltzlab::set_num_threads(1);
  const bg::BridgeDraws one = b.sample(300, 4, 64);
  boltzlab::set_num_threads(2);
  const bg::BridgeDraws two = b.sample(300, 4, 64);
  const bg::BridgeDraws whole = b.sample(300, 4, 1000);
  CHECK(one.x == two.x);
  CHECK(one.log_path == two.log_path);
  CHECK((one.x - whole.x).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((one.log_path - whole.log_path).cwiseAbs().maxCoeff() < 1e-10);
  auto bad = small_bridge();
  bad.sigma = 0.0;
  CHECK_THROWS_AS(bg::BridgeSampler(bad, 1), boltzlab::ConfigError);
}
