// Score models, score matching and the score samplers against known answers.
//  - Closed-form derivatives (forward mode through the MLP, the OT potential at per-row
//    times) against LibTorch autograd, float64, to rounding error.
//  - The exact score of a Gaussian π under the noising SDE: its HJB residual (both the
//    vector form R₁ and the scalar form R₂) vanishes to rounding error; a wrong score
//    gives a residual of order one (so the check can fail).
//  - Implicit and denoising score matching differ by a θ-independent constant.
//  - The probability-flow ODE with the exact Gaussian score has a closed-form density.
//  - Euler–Maruyama for the reverse SDE is weakly first order.
#include "support/torch_doctest.hpp"

#include <cmath>

#include "boltzlab/core/rng.hpp"
#include "boltzlab/generators/noising.hpp"
#include "boltzlab/generators/score_matching.hpp"
#include "boltzlab/generators/score_model.hpp"
#include "boltzlab/generators/score_sampler.hpp"
#include "boltzlab/generators/target_bridge.hpp"

namespace bg = boltzlab::generators;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

double max_abs(const torch::Tensor& a) { return a.abs().max().item<double>(); }

bg::NoisingSde vp_sde() { return bg::NoisingSde(bg::NoisingOptions{}); }

bg::NoisingSde ve_sde() {
  bg::NoisingOptions o;
  o.kind = bg::NoisingKind::kVarianceExploding;
  o.sigma_min = 0.05;
  o.sigma_max = 5.0;
  o.time = 1.0;
  return bg::NoisingSde(o);
}

Eigen::VectorXd vec(std::initializer_list<double> v) {
  Eigen::VectorXd out(static_cast<Eigen::Index>(v.size()));
  Eigen::Index i = 0;
  for (double x : v) out[i++] = x;
  return out;
}

/// The Gaussian score seen as a plain vector field (is_gradient false), so that the
/// residual takes its vector form R₁.
class AsVectorField final : public bg::ScoreField {
 public:
  explicit AsVectorField(bg::ScoreField& inner) : inner_(inner) {}
  int dim() const override { return inner_.dim(); }
  bool is_gradient() const override { return false; }
  unsigned supported() const override { return inner_.supported(); }
  bg::ScoreEvaluation evaluate(const torch::Tensor& y, const torch::Tensor& s, unsigned needs) override {
    return inner_.evaluate(y, s, needs);
  }
  nlohmann::json describe() const override { return inner_.describe(); }

 private:
  bg::ScoreField& inner_;
};

}  // namespace

TEST_CASE("MLP score: forward-mode Jacobian, time derivative, divergence and Laplacians match autograd") {
  bg::MlpScore model(bg::MlpScoreOptions{3, {16, 8, 12}}, 5);
  torch::manual_seed(3);
  const auto y = torch::randn({6, 3}, kF64).requires_grad_(true);
  const auto s = (torch::rand({6}, kF64) * 3.0).requires_grad_(true);
  const auto e = model.evaluate(y, s, bg::kDivergence | bg::kJacobian | bg::kLaplacian);
  const auto plain = model.evaluate(y, s, bg::kScoreOnly);
  CHECK(max_abs(plain.score - e.score) < 1e-14);
  torch::Tensor lap = torch::zeros({6, 3}, kF64);
  for (int i = 0; i < 3; ++i) {
    const auto grads = torch::autograd::grad({e.score.select(1, i).sum()}, {y, s}, {}, true, true);
    // Row b of grads[0] is ∂s_i/∂y at sample b: the i-th row of the Jacobian.
    CHECK(max_abs(grads[0] - e.jacobian.select(1, i)) < 1e-12);
    CHECK(max_abs(grads[1] - e.time_derivative.select(1, i)) < 1e-12);
    for (int k = 0; k < 3; ++k) {
      const auto g2 = torch::autograd::grad({grads[0].select(1, k).sum()}, {y}, {}, true)[0];
      lap.select(1, i) += g2.select(1, k);
    }
  }
  CHECK(max_abs(lap - e.laplacian) < 1e-12);
  CHECK(max_abs(e.divergence - e.jacobian.diagonal(0, 1, 2).sum(-1)) < 1e-14);
}

TEST_CASE("MLP score: the divergence alone by the trace of the Jacobian's factors equals the full Jacobian's") {
  // One and two hidden layers take the closed-form trace path when only the divergence is asked
  // for; three layers keep forward mode. Each is checked against the trace of the forward-mode
  // Jacobian (and its gradient in the parameters against autograd through that Jacobian).
  for (const std::vector<int>& hidden : {std::vector<int>{16}, std::vector<int>{16, 8}, std::vector<int>{7, 9, 5}}) {
    CAPTURE(hidden.size());
    bg::MlpScore model(bg::MlpScoreOptions{4, hidden}, 11);
    torch::manual_seed(4);
    const auto y = torch::randn({9, 4}, kF64);
    const auto s = torch::rand({9}, kF64) * 3.0;
    const auto full = model.evaluate(y, s, bg::kDivergence | bg::kJacobian);
    const auto div = model.evaluate(y, s, bg::kDivergence);
    CHECK(max_abs(div.score - full.score) < 1e-14);
    CHECK(max_abs(div.divergence - full.jacobian.diagonal(0, 1, 2).sum(-1)) < 1e-13);
    CHECK(max_abs(div.divergence) > 1e-3);  // not vacuous
    const auto params = model.parameters();
    const auto g_fast = torch::autograd::grad({div.divergence.sum()}, params, {}, false, false, true);
    const auto g_full = torch::autograd::grad({full.divergence.sum()}, params, {}, false, false, true);
    for (std::size_t k = 0; k < params.size(); ++k)
      if (g_full[k].defined()) CHECK(max_abs(g_fast[k] - g_full[k]) < 1e-12);
  }
}

TEST_CASE("Potential score: per-row times agree with the scalar-time closed forms, s = -grad Phi") {
  boltzlab::generators::OtPotentialOptions o;
  o.dim = 3;
  o.width = 8;
  bg::PotentialScore model(o, 2);
  {
    torch::NoGradGuard ng;  // w = 0 after reset: randomize so every term contributes
    torch::manual_seed(1);
    for (auto& p : model.parameters()) p.copy_(0.5 * torch::randn(p.sizes(), kF64));
  }
  torch::manual_seed(4);
  const auto y = torch::randn({5, 3}, kF64);
  const auto s = torch::tensor({0.1, 0.5, 1.0, 2.0, 2.9}, kF64);
  const auto e = model.evaluate(y, s, bg::kDivergence);
  for (int b = 0; b < 5; ++b) {
    const double sb = s[b].item<double>();
    const auto der = model.potential()->derivatives(y.narrow(0, b, 1), sb, true);
    CHECK(max_abs(e.score[b] + der.grad_x[0]) < 1e-13);
    CHECK(std::abs(e.divergence[b].item<double>() + der.laplacian[0].item<double>()) < 1e-12);
    CHECK(std::abs(e.log_density_dt[b].item<double>() + der.dt[0].item<double>()) < 1e-13);
  }
  CHECK_THROWS(model.evaluate(y, s, bg::kJacobian));
}

TEST_CASE("Gaussian score: derivatives of log eta and HJB residuals vanish for the exact score") {
  for (const auto& sde : {vp_sde(), ve_sde()}) {
    bg::GaussianScore exact(sde, vec({1.0, -0.5}), vec({0.25, 2.0}));
    torch::manual_seed(8);
    const auto y = (2.0 * torch::randn({7, 2}, kF64)).requires_grad_(true);
    const auto s = (0.05 + torch::rand({7}, kF64) * (sde.horizon() - 0.1)).requires_grad_(true);
    const auto logp = exact.log_density(y, s);
    const auto grads = torch::autograd::grad({logp.sum()}, {y, s}, {}, true);
    const auto e = exact.evaluate(y, s, bg::kDivergence | bg::kJacobian | bg::kLaplacian);
    CHECK(max_abs(grads[0] - e.score) < 1e-12);
    CHECK(max_abs(grads[1] - e.log_density_dt) < 1e-12);
    const auto ds = torch::autograd::grad({(e.score * torch::tensor({1.0, 0.0}, kF64)).sum()}, {s}, {}, true)[0];
    CHECK(max_abs(ds - e.time_derivative.select(1, 0)) < 1e-12);

    torch::NoGradGuard ng;
    // η solves the noising Fokker–Planck equation, so both residual forms vanish; their
    // scale (the terms they cancel) is O(1), so 1e-10 is rounding error.
    const auto yd = y.detach(), sd = s.detach();
    CHECK(max_abs(bg::hjb_residual(exact, sde, yd, sd, 1)) < 1e-10);
    AsVectorField vector_form(exact);
    CHECK(max_abs(bg::hjb_residual(vector_form, sde, yd, sd, 1)) < 1e-10);
  }
  // A score of the wrong noising (β = 2 instead of 1) is not a solution.
  bg::NoisingOptions other;
  other.beta = 2.0;
  bg::GaussianScore wrong(bg::NoisingSde(other), vec({1.0, -0.5}), vec({0.25, 2.0}));
  const auto y = torch::randn({7, 2}, kF64);
  const auto s = torch::full({7}, 0.5, kF64);
  CHECK(bg::hjb_residual(wrong, vp_sde(), y, s, 1).mean().item<double>() > 1e-2);
}

TEST_CASE("Implicit and denoising score matching differ by a constant independent of the model") {
  // On one batch (y0 ~ π, s, ξ), D_b = [DSM_b(θ1) − DSM_b(θ2)] − [ISM_b(θ1) − ISM_b(θ2)] has
  // expectation 0 (Vincent 2011: both equal the explicit score matching up to constants).
  // Its sample mean is checked against 4 standard errors of the batch. The model-to-model
  // difference itself is many standard errors away from 0 (so the check has power).
  const auto sde = vp_sde();
  bg::MlpScore m1(bg::MlpScoreOptions{2, {16, 16}}, 1), m2(bg::MlpScoreOptions{2, {16, 16}}, 2);
  const int n = 40000;
  torch::manual_seed(12);
  const auto y0 = torch::randn({n, 2}, kF64) * torch::tensor({0.5, 1.4}, kF64) + torch::tensor({1.0, -0.5}, kF64);
  const auto s = 0.05 + torch::rand({n}, kF64) * 2.95;
  const auto xi = torch::randn({n, 2}, kF64);
  torch::NoGradGuard ng;
  using bg::ScoreObjective;
  const auto w = bg::ScoreWeighting::kVariance;
  const auto ism = bg::score_matching_terms(m1, sde, y0, s, xi, ScoreObjective::kImplicit, w) -
                   bg::score_matching_terms(m2, sde, y0, s, xi, ScoreObjective::kImplicit, w);
  const auto dsm = bg::score_matching_terms(m1, sde, y0, s, xi, ScoreObjective::kDenoising, w) -
                   bg::score_matching_terms(m2, sde, y0, s, xi, ScoreObjective::kDenoising, w);
  const auto diff = dsm - ism;
  const double se = diff.std().item<double>() / std::sqrt(static_cast<double>(n));
  CHECK(std::abs(diff.mean().item<double>()) < 4.0 * se);
  CHECK(std::abs(ism.mean().item<double>()) > 10.0 * ism.std().item<double>() / std::sqrt(static_cast<double>(n)));
}

TEST_CASE("Probability-flow ODE: exact Gaussian score gives the closed-form density; sampling and log q agree") {
  // With the exact score the PF map is affine per coordinate, sending η(T) to η(ε); the
  // prior N(0, 1) is sent to N(a_ε − r a_T, r² c_T'), r = √(c_ε / c_T), c_T' = prior variance.
  const auto sde = vp_sde();
  const Eigen::VectorXd mu = vec({1.0, -0.5}), var = vec({0.25, 2.0});
  bg::GaussianScore exact(sde, mu, var);
  const auto samples = bg::sample_probability_flow(exact, sde, 300, 7, 200, 64);
  const auto eps = torch::full({1}, sde.options().t_min, kF64), big_t = torch::full({1}, sde.horizon(), kF64);
  const auto me = exact.moments(eps), mt = exact.moments(big_t);
  const auto ratio = torch::sqrt(me.var / mt.var);
  const auto mean = me.mean - ratio * mt.mean, sd = ratio * std::sqrt(sde.prior_variance());
  const auto x = bg::to_tensor(samples.x);
  const auto r = (x - mean) / sd;
  const auto closed = (-0.5 * r * r - torch::log(sd) - 0.5 * std::log(2.0 * M_PI)).sum(1);
  // RK4 with 200 steps (h = 0.015, rates ≤ 3): the error of the affine map is below 1e-6.
  CHECK((bg::to_vector(closed) - samples.log_q).cwiseAbs().maxCoeff() < 1e-6);
  const Eigen::VectorXd back = bg::probability_flow_log_q(exact, sde, samples.x, 200, 100);
  CHECK((back - samples.log_q).cwiseAbs().maxCoeff() < 1e-6);
}

TEST_CASE("Reverse SDE: Euler-Maruyama realizes its discrete law and converges at weak order 1") {
  // For the exact Gaussian score the drift is affine, so the Euler–Maruyama chain is
  // Gaussian with a mean/variance recursion M ← A M + b, V ← A² V + g² h (per coordinate),
  // A = 1 + (c − g²/C(s)) h, b = g² a(s)/C(s) h. (1) The sampler's output matches that
  // recursion within 4 standard errors of 2·10⁴ samples. (2) The recursion's variance
  // error against the continuous-time law (the same recursion with 2¹⁶ steps, whose own
  // error is ~2⁻¹⁰ of the coarsest) halves with h: weak order 1.
  const auto sde = vp_sde();
  const Eigen::VectorXd mu = vec({1.0, -0.5}), var = vec({0.25, 2.0});
  bg::GaussianScore exact(sde, mu, var);
  auto em_law = [&](int steps) {
    const double eps = sde.options().t_min, h = (sde.horizon() - eps) / steps, c = sde.drift_coefficient();
    Eigen::Array2d m = Eigen::Array2d::Zero(), v = Eigen::Array2d::Constant(sde.prior_variance());
    for (int k = 0; k < steps; ++k) {
      const double s = sde.horizon() - k * h;
      const auto mo = exact.moments(torch::full({1}, s, kF64));
      const double g2 = sde.diffusion_squared(s);
      for (int i = 0; i < 2; ++i) {
        const double ci = mo.var[0][i].item<double>(), ai = mo.mean[0][i].item<double>();
        const double a = 1.0 + (c - g2 / ci) * h;
        m[i] = a * m[i] + g2 * ai / ci * h;
        v[i] = a * a * v[i] + g2 * h;
      }
    }
    return std::make_pair(m, v);
  };
  const int n = 20000;
  bg::ReverseSdeOptions o;
  o.steps = 40;
  const auto x = bg::sample_reverse_sde(exact, sde, n, 3, o, 512);
  const auto [m40, v40] = em_law(40);
  for (int i = 0; i < 2; ++i) {
    const double mean = x.col(i).mean();
    const double sample_var = (x.col(i).array() - mean).square().sum() / (n - 1);
    CHECK(std::abs(mean - m40[i]) < 4.0 * std::sqrt(v40[i] / n));
    CHECK(std::abs(sample_var - v40[i]) < 4.0 * v40[i] * std::sqrt(2.0 / (n - 1)));
  }
  const auto exact_v = em_law(1 << 16).second;
  const double e1 = (em_law(40).second - exact_v).abs().maxCoeff();
  const double e2 = (em_law(80).second - exact_v).abs().maxCoeff();
  const double e3 = (em_law(160).second - exact_v).abs().maxCoeff();
  CHECK(e1 / e2 == doctest::Approx(2.0).epsilon(0.15));
  CHECK(e2 / e3 == doctest::Approx(2.0).epsilon(0.15));
}

TEST_CASE("Score training: a trained MLP and a trained potential score approach the exact Gaussian score") {
  // 2-D Gaussian data; after 1500 Adam steps (batch 256) the relative L2 error of the learned
  // score over η(·, s), s ~ U[0.1, 3], must be below 0.15 for the MLP (0.057 measured) and
  // 0.25 for the potential form (0.16 measured; the untrained models' is ≈ 1), and the
  // PF-ODE density of the MLP must be close to π in KL(π‖q). Thresholds are model-quality
  // margins over values measured once with these fixed seeds.
  const auto sde = vp_sde();
  const Eigen::VectorXd mu = vec({1.0, -0.5}), var = vec({0.25, 2.0});
  bg::GaussianScore exact(sde, mu, var);
  boltzlab::RowMatrix data(4096, 2);
  for (Eigen::Index i = 0; i < data.rows(); ++i) {
    boltzlab::Rng rng = boltzlab::stream_for(99, static_cast<std::uint64_t>(i));
    for (int k = 0; k < 2; ++k) data(i, k) = mu[k] + std::sqrt(var[k]) * rng.normal();
  }
  bg::ScoreTrainOptions t;
  t.iterations = 1500;
  t.batch_size = 256;
  t.learning_rate = 3e-3;
  t.lr_final_ratio = 0.1;
  t.progress = false;
  t.loss.objective = bg::ScoreObjective::kDenoising;
  t.loss.weighting = bg::ScoreWeighting::kVariance;
  auto score_error = [&](bg::ScoreField& m) {
    torch::NoGradGuard ng;
    torch::manual_seed(5);
    const auto s = 0.1 + torch::rand({4000}, kF64) * 2.9;
    const auto y0 = bg::to_tensor(data.topRows(4000));
    const auto y = sde.perturb(y0, s, torch::randn({4000, 2}, kF64));
    const auto want = exact.evaluate(y, s, bg::kScoreOnly).score;
    const auto got = m.evaluate(y, s, bg::kScoreOnly).score;
    return std::sqrt(((got - want).pow(2).sum() / want.pow(2).sum()).item<double>());
  };
  bg::MlpScore mlp(bg::MlpScoreOptions{2, {32, 32}}, 1);
  CHECK(score_error(mlp) > 0.5);
  const auto hist = bg::train_score(mlp, sde, data, t);
  CHECK(hist.iterations_done == 1500);
  CHECK(score_error(mlp) < 0.15);
  const Eigen::VectorXd lq = bg::probability_flow_log_q(mlp, sde, data.topRows(500), 100);
  const auto logp = exact.log_density(bg::to_tensor(data.topRows(500)), torch::full({500}, sde.options().t_min, kF64));
  // KL(π‖q) estimated on 500 π-samples: 0.045 measured, standard error 0.013.
  const Eigen::VectorXd log_ratio = bg::to_vector(logp) - lq;
  CHECK(log_ratio.mean() < 0.1);
  CHECK(log_ratio.mean() > -4.0 * std::sqrt((log_ratio.array() - log_ratio.mean()).square().mean() / 500.0));

  boltzlab::generators::OtPotentialOptions po;
  po.dim = 2;
  po.width = 32;
  bg::PotentialScore pot(po, 1);
  t.loss.objective = bg::ScoreObjective::kImplicit;
  bg::train_score(pot, sde, data, t);
  CHECK(score_error(pot) < 0.25);
}

TEST_CASE("Reverse SDE: the Langevin corrector removes most of a coarse predictor's error") {
  // Exact score of a standardized-scale Gaussian (variances 0.6 and 1.4), 8 Euler–Maruyama
  // steps (h ≈ 0.37): the plain chain's final variance is off by far more than its standard
  // error V·√(2/n) ≈ 0.01 V (n = 20000). 20 corrector steps per level with snr 0.16
  // (δ = 2 snr² (m² + v) ≈ 0.05) contract each level's error by (1 − δ/c)²⁰ ≈ e^{−1.7} or
  // better and add a Langevin bias of ≈ δ/(2c) ≤ 4 %, so the corrected error must be under
  // half the plain one. Errors are relative to the variance of η(·, ε).
  const auto sde = vp_sde();
  const Eigen::VectorXd mu = vec({0.3, -0.2}), var = vec({0.6, 1.4});
  bg::GaussianScore exact(sde, mu, var);
  const int n = 20000;
  auto variance_error = [&](int correctors) {
    bg::ReverseSdeOptions o;
    o.steps = 8;
    o.corrector_steps = correctors;
    const auto x = bg::sample_reverse_sde(exact, sde, n, 11, o, 1000);
    const auto me = exact.moments(torch::full({1}, sde.options().t_min, kF64));
    double worst = 0.0;
    for (int i = 0; i < 2; ++i) {
      const double mean = x.col(i).mean();
      const double v = (x.col(i).array() - mean).square().sum() / (n - 1);
      worst = std::max(worst, std::abs(v - me.var[0][i].item<double>()) / me.var[0][i].item<double>());
    }
    return worst;
  };
  const double plain = variance_error(0), corrected = variance_error(20);
  MESSAGE("relative variance error: plain " << plain << ", corrected " << corrected);
  CHECK(plain > 0.1);
  CHECK(corrected < 0.5 * plain);
}
