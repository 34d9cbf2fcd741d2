// The flow's base space as an SMC path: u₀ − u₁ equals the flow samples' importance
// log-weights, ∇u₁ (autograd through the flow and its log-det, plus ∇u) matches central
// differences, and annealed SMC from a briefly trained flow recovers log Z of a two-mode
// mixture that the flow alone misses. Statistical checks: 4 standard errors (the SMC's own).
#include <cmath>

#include "support/torch_doctest.hpp"

#include "boltzlab/core/error.hpp"
#include "boltzlab/generators/latent_path.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/targets/gaussian_mixture.hpp"

namespace bg = boltzlab::generators;
using boltzlab::RowMatrix;

namespace {

boltzlab::GaussianMixtureTarget two_modes() {
  Eigen::VectorXd m1(2), m2(2);
  m1 << -2.5, 0.0;
  m2 << 2.5, 0.5;
  const Eigen::MatrixXd c1 = 0.3 * Eigen::MatrixXd::Identity(2, 2), c2 = 0.5 * Eigen::MatrixXd::Identity(2, 2);
  return boltzlab::GaussianMixtureTarget({0.3 * 2.0, 0.7 * 2.0}, {m1, m2}, {c1, c2});
}

/// A small OT-Flow trained for a few reverse-KL steps (mode-seeking: it misses mass).
bg::BoltzmannGenerator brief_flow(const boltzlab::Target& target) {
  bg::GeneratorOptions o;
  o.potential.dim = 2;
  o.potential.width = 16;
  o.steps = 4;
  o.sample_steps = 4;
  bg::BoltzmannGenerator g(o, 5);
  g.set_standardization(Eigen::VectorXd::Zero(2), Eigen::VectorXd::Constant(2, 2.0));
  bg::TrainOptions t;
  t.preset = "ot-bg";
  t.weights = bg::LossWeights::preset("ot-bg", false);
  t.iterations = 40;
  t.batch_size = 128;
  t.learning_rate = 2e-2;
  t.eval_every = 0;
  t.progress = false;
  bg::train(g, target, nullptr, t);
  return g;
}

}  // namespace

TEST_CASE("generators.latent_path: u0 - u1 is the flow's log-weight, gradients match central differences") {
  const auto target = two_modes();
  bg::BoltzmannGenerator g = brief_flow(target);
  bg::EnergyCounters counters;
  const bg::GeneratorLatentPath path(g, target, nullptr, &counters, 16);
  const RowMatrix z = path.sample_reference(40, 11);
  boltzlab::PathValues v;
  CHECK(path.evaluate(z, v) == 40);
  CHECK(counters.evaluations.load() == 40);
  const bg::GeneratedSamples s = g.sample(40, 11);
  for (Eigen::Index i = 0; i < 40; ++i) {
    double grad[2];
    const double u = target.reduced_energy(s.x.row(i).data(), grad);
    CHECK(v.u0[i] - v.u1[i] == doctest::Approx(-u - s.log_q[i]).epsilon(1e-10));
  }
  // Central differences of u₀ and u₁ (h = 1e-5: truncation ~1e-10, rounding ~1e-11 / h).
  const double h = 1e-5;
  for (Eigen::Index i = 0; i < 5; ++i) {
    for (Eigen::Index k = 0; k < 2; ++k) {
      RowMatrix zp = z.middleRows(i, 1), zm = z.middleRows(i, 1);
      zp(0, k) += h;
      zm(0, k) -= h;
      boltzlab::PathValues vp, vm;
      path.evaluate(zp, vp);
      path.evaluate(zm, vm);
      CHECK(v.g0(i, k) == doctest::Approx((vp.u0[0] - vm.u0[0]) / (2 * h)).epsilon(1e-6));
      CHECK(v.g1(i, k) == doctest::Approx((vp.u1[0] - vm.u1[0]) / (2 * h)).epsilon(1e-5));
    }
  }
  const RowMatrix x = path.configurations(z);
  CHECK((x - s.x).cwiseAbs().maxCoeff() < 1e-12);
  // FAB's AIS target ρ₀ w² (weight exponent 2): u₀ − u₁ = 2 log w, and its gradient.
  const bg::GeneratorLatentPath fab(g, target, nullptr, nullptr, 16, 2.0);
  boltzlab::PathValues v2;
  fab.evaluate(z, v2);
  for (Eigen::Index i = 0; i < 40; ++i) {
    CHECK(v2.u0[i] - v2.u1[i] == doctest::Approx(2.0 * (v.u0[i] - v.u1[i])).epsilon(1e-10));
    for (Eigen::Index k = 0; k < 2; ++k)
      CHECK(v2.g1(i, k) - v2.g0(i, k) == doctest::Approx(2.0 * (v.g1(i, k) - v.g0(i, k))).epsilon(1e-10));
  }
  CHECK_THROWS_AS(bg::GeneratorLatentPath(g, target, nullptr, nullptr, 16, 0.0), boltzlab::DomainError);
}

TEST_CASE("generators.latent_path: annealed SMC from a mode-seeking flow recovers log Z") {
  const auto target = two_modes();
  bg::BoltzmannGenerator g = brief_flow(target);
  const bg::GeneratorLatentPath path(g, target);
  boltzlab::AnnealedSmcOptions o;
  o.seed = 2;
  o.cess = 0.98;
  o.mala_steps = 5;
  o.step_size = 0.2;
  const boltzlab::AnnealedSmcResult r = boltzlab::run_annealed_smc(path, 2000, o);
  MESSAGE("flow-only ESS ", r.initial_ess_fraction, " log Z ", r.initial_log_z, "; SMC log Z ", r.log_z, " ± ",
          r.log_z_se, " exact ", *target.log_z(), "; rungs ", r.rungs.size());
  CHECK(std::abs(r.log_z - *target.log_z()) < 4.0 * r.log_z_se);
  CHECK(r.log_z_se < 0.1);
  // The flow alone (rung 0) misses a quarter of the mass; the moves find it.
  CHECK(r.initial_log_z < *target.log_z() - 0.2);
  // Both modes in the final particles, with the right-hand one at 0.7.
  double right = 0.0, den = 0.0;
  const RowMatrix x = path.configurations(r.z);
  const double m = r.log_weights.maxCoeff();
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const double w = std::exp(r.log_weights[i] - m);
    den += w;
    right += x(i, 0) > 0.0 ? w : 0.0;
  }
  CHECK(std::abs(right / den - 0.7) < 4.0 * std::sqrt(0.21 / static_cast<double>(r.distinct_ancestors)) + 0.01);
}

TEST_CASE("generators.latent_path: refuses stochastic flows and mismatched targets") {
  const auto target = two_modes();
  bg::GeneratorOptions o;
  o.potential.dim = 2;
  o.noise = 0.1;
  bg::BoltzmannGenerator noisy(o, 1);
  CHECK_THROWS_AS(bg::GeneratorLatentPath(noisy, target), boltzlab::DomainError);
  o.noise = 0.0;
  o.potential.dim = 3;
  bg::BoltzmannGenerator wide(o, 1);
  CHECK_THROWS_AS(bg::GeneratorLatentPath(wide, target), boltzlab::DomainError);
}
