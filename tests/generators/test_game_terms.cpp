// The MFG terms of the flow generator beyond OT-BG: the stochastic OT normalizing flow
// (σ = 0 identical to the ODE, unbiased path weights), the HJB terminal condition α₂ at a
// known optimum of the game, and the transport cost against W₂²/2T.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

#include "support/torch_doctest.hpp"

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/generators/game_spec.hpp"
#include "boltzlab/generators/relaxed_game.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/generators/velocity_field.hpp"
#include "boltzlab/targets/gaussian.hpp"

namespace bg = boltzlab::generators;
using boltzlab::RowMatrix;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

bg::GeneratorOptions small_model(double noise) {
  bg::GeneratorOptions o;
  o.potential.dim = 2;
  o.potential.width = 8;
  o.potential.layers = 2;
  o.potential.init_scale = 0.5;  // a flow far from the identity: the weights have work to do
  o.steps = 8;
  o.sample_steps = 8;
  o.noise = noise;
  return o;
}

boltzlab::GaussianTarget shifted_gaussian(double m) {
  return boltzlab::GaussianTarget(Eigen::Vector2d(m, 0.0), Eigen::Matrix2d::Identity());
}

// Φ(x, t) = bᵀ(x, t) + c exactly: the ResNet's output weights w and the quadratic A zeroed.
void set_affine_potential(bg::BoltzmannGenerator& g, const std::vector<double>& b, double c) {
  torch::NoGradGuard ng;
  auto params = g.potential()->named_parameters();
  params["w"].zero_();
  params["A"].zero_();
  auto bt = params["b"];
  for (std::size_t k = 0; k < b.size(); ++k) bt[static_cast<std::int64_t>(k)] = b[k];
  params["c"].fill_(c);
}

// Antithetic standard normal base draws (rows z and −z): their mean is exactly 0.
torch::Tensor antithetic_base(std::int64_t half) {
  boltzlab::Rng rng(11, 0);
  auto z = torch::empty({2 * half, 2}, kF64);
  for (std::int64_t i = 0; i < half; ++i)
    for (int k = 0; k < 2; ++k) {
      const double v = rng.normal();
      z[i][k] = v;
      z[half + i][k] = -v;
    }
  return z;
}

}  // namespace

TEST_CASE("stochastic flow: noise 0 is the ODE bit for bit, and the noise is tied to the row index") {
  bg::BoltzmannGenerator ode(small_model(0.0), 3);
  const auto z = ode.base_sample(64, 5);
  const auto noise = torch::randn({8, 64, 2}, kF64);
  const bg::FlowBatch a = ode.forward(z, 8, true);
  const bg::FlowBatch b = ode.forward(z, 8, true, noise);  // σ = 0: the increments are never used
  CHECK(torch::equal(a.x, b.x));
  CHECK(torch::equal(a.log_q, b.log_q));
  CHECK(torch::equal(a.hjb, b.hjb));

  bg::BoltzmannGenerator sde(small_model(0.3), 3);
  const auto s1 = sde.sample(300, 9, /*chunk=*/64);
  const auto s2 = sde.sample(300, 9, /*chunk=*/300);
  CHECK((s1.x - s2.x).cwiseAbs().maxCoeff() == 0.0);
  CHECK((s1.log_q - s2.log_q).cwiseAbs().maxCoeff() == 0.0);
  const auto d = ode.sample(300, 9);
  CHECK((s1.x - d.x).cwiseAbs().maxCoeff() > 1e-3);  // the noise does act
  CHECK_THROWS_AS(sde.log_q(d.x), boltzlab::DomainError);
}

TEST_CASE("stochastic flow: path weights estimate log Z without bias on a Gaussian") {
  // Untrained flow (random potential, σ = 0.5) towards N((1, 0), I), log Z = log 2π.
  // The path weight exp(−u(x_K) − log F/B) has E_F = Z exactly (cnf.hpp); RK4 makes the
  // log-det approximate at O(dt⁴), far below the Monte-Carlo error here. Tolerance: 4
  // delta-method standard errors of log Ẑ, se = sd(w) / (√N · mean(w)).
  const auto target = shifted_gaussian(1.0);
  bg::BoltzmannGenerator g(small_model(0.5), 17);
  const int n = 40000;
  const auto s = g.sample(n, 23);
  Eigen::VectorXd lw(n);
  for (int i = 0; i < n; ++i) {
    const Eigen::Vector2d x = s.x.row(i).transpose();
    lw[i] = -target.reduced_energy(x.data(), nullptr) - s.log_q[i];
  }
  const double mx = lw.maxCoeff();
  const Eigen::ArrayXd w = (lw.array() - mx).exp();
  const double mean = w.mean();
  const double sd = std::sqrt((w - mean).square().mean());
  const double log_z = mx + std::log(mean);
  const double se = sd / (std::sqrt(static_cast<double>(n)) * mean);
  MESSAGE("stochastic flow log Z " << log_z << " vs exact " << *target.log_z() << " (se " << se << ")");
  CHECK(se < 0.05);  // the estimate is informative
  CHECK(std::abs(log_z - *target.log_z()) < 4.0 * se);
}

TEST_CASE("stochastic flow: HJB residual gains (sigma^2/2) Laplacian") {
  // On the same path (zero increments), the residual differs between σ = 0 and σ = 0.4
  // where ΔΦ ≠ 0 (a random potential), and not at all for an affine Φ (ΔΦ = 0).
  bg::BoltzmannGenerator g0(small_model(0.0), 4), g1(small_model(0.4), 4);
  const auto z = g0.base_sample(16, 2);
  const auto zero_noise = torch::zeros({8, 16, 2}, kF64);
  const auto h0 = g0.forward(z, 8, true).hjb;
  const auto h1 = g1.forward(z, 8, true, zero_noise).hjb;  // same path, residual with the Laplacian
  CHECK(torch::equal(g0.forward(z, 8, true).x, g1.forward(z, 8, true, zero_noise).x));
  CHECK((h0 - h1).abs().max().item<double>() > 1e-6);
  set_affine_potential(g0, {0.3, -0.2, 0.1}, 0.0);
  set_affine_potential(g1, {0.3, -0.2, 0.1}, 0.0);
  const auto a0 = g0.forward(z, 8, true).hjb, a1 = g1.forward(z, 8, true, zero_noise).hjb;
  CHECK((a0 - a1).abs().max().item<double>() < 1e-14);  // ΔΦ = 0: no σ term
}

TEST_CASE("terminal condition: zero at the known optimum of the reverse-KL game, stationary objective") {
  // Game: base N(0, I), π = N((m, 0), I), T = 1, J = KL(ρ_T‖π) + ∫½|v|² dt. Within
  // translations x = z + a the objective is |a − m e₁|²/2 + |a|²/2 (+ const), minimal at
  // a = m e₁/2; the optimal potential is Φ(x, t) = −(m/2) x₁ + (m²/8) t + c (HJB ∂ₜΦ = ½|∇Φ|²
  // holds), and δM/δρ = log ρ_T + u + const is −(m/2) x₁ + const, so Φ(·, T) = δM/δρ for
  // c = m²/4 − log 2π (the constant worked out in the comment of trainer.hpp's formula).
  const double m = 1.5;
  const auto target = shifted_gaussian(m);
  bg::GeneratorOptions o = small_model(0.0);
  o.time = 1.0;
  bg::BoltzmannGenerator g(o, 1);
  set_affine_potential(g, {-m / 2, 0.0, m * m / 8}, m * m / 4 - std::log(2 * M_PI));
  const auto z = antithetic_base(500);
  bg::EnergyCut cut;
  bg::ReverseKlExtras extras;
  extras.terminal = true;
  auto term = bg::reverse_kl_term(g, z, 4, true, target, cut, nullptr, nullptr, boltzlab::Execution::kSerial, extras);
  const double b = static_cast<double>(z.size(0));
  CHECK(term.terminal.item<double>() / b < 1e-10);
  CHECK(term.hjb.abs().max().item<double>() < 1e-12);
  // Transport = W₂²/2T for the straight-line (translation) path: |a|²/2 = m²/8.
  CHECK(term.transport.mean().item<double>() == doctest::Approx(m * m / 8).epsilon(1e-12));
  // Stationarity of J = KL + transport: ∂J/∂b_x = 0 with the antithetic batch (the sample
  // mean of z is 0). (The L1 terminal term has no gradient at a zero residual.)
  auto params = g.potential()->named_parameters();
  const auto loss = term.sum / b + term.transport.mean();
  const auto grad = torch::autograd::grad({loss}, {params["b"]})[0];
  CHECK(std::abs(grad[0].item<double>()) < 1e-10);

  // Away from the optimum (a = m/3): the terminal residual and the gradient are not zero.
  set_affine_potential(g, {-m / 3, 0.0, m * m / 18}, m * m / 4 - std::log(2 * M_PI));
  term = bg::reverse_kl_term(g, z, 4, true, target, cut, nullptr, nullptr, boltzlab::Execution::kSerial, extras);
  CHECK(term.terminal.item<double>() / b > 0.05);
  const auto loss2 = term.sum / b + term.transport.mean();
  const auto grad2 = torch::autograd::grad({loss2}, {params["b"]})[0];
  // ∂J/∂a = 2a − m = −m/3 at a = m/3, and b_x = −a: ∂J/∂b_x = m/3.
  CHECK(grad2[0].item<double>() == doctest::Approx(m / 3).epsilon(1e-9));
}

TEST_CASE("terminal condition: the forward-KL part uses the self-normalized density ratio") {
  // No flow (Φ ≡ −1) and π = N(0, I) = ρ₀ = ρ_T: every draw has g = log q + u = −log 2π,
  // the importance estimate gives π/q = exp(−g − log Ẑ) = 1 exactly, and
  // δM/δρ = −λ·1 + (1 − λ)·g (additive constants are Φ's c). At λ = 1 that is −1 = Φ
  // (residual 0); at λ = ½ the residual is |−1 − (−½ − ½ log 2π)| on every row.
  const auto target = shifted_gaussian(0.0);
  bg::BoltzmannGenerator g(small_model(0.0), 1);
  set_affine_potential(g, {0.0, 0.0, 0.0}, -1.0);
  const auto z = antithetic_base(100);
  bg::EnergyCut cut;
  bg::ReverseKlExtras extras;
  extras.terminal = true;
  extras.lambda = 1.0;
  auto term = bg::reverse_kl_term(g, z, 2, false, target, cut, nullptr, nullptr, boltzlab::Execution::kSerial, extras);
  CHECK(term.terminal.item<double>() < 1e-10);
  extras.lambda = 0.5;
  term = bg::reverse_kl_term(g, z, 2, false, target, cut, nullptr, nullptr, boltzlab::Execution::kSerial, extras);
  const double expect = std::abs(-1.0 - (-0.5 - 0.5 * std::log(2 * M_PI)));
  CHECK(term.terminal.item<double>() / 200.0 == doctest::Approx(expect).epsilon(1e-10));
}

TEST_CASE("terminal condition and noise: option checks") {
  bg::TrainOptions t;
  t.weights.lambda = 1.0;
  t.weights.alpha_terminal = 1.0;
  CHECK_THROWS_WITH_AS(t.validate(true), doctest::Contains("alpha_terminal"), boltzlab::ConfigError);
  t.weights.alpha_terminal = -1.0;
  t.weights.lambda = 0.0;
  CHECK_THROWS_WITH_AS(t.validate(false), doctest::Contains("alpha_terminal"), boltzlab::ConfigError);
  bg::GeneratorOptions o = small_model(-0.1);
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("noise"), boltzlab::ConfigError);
  o.noise = 0.25;
  const auto back = bg::GeneratorOptions::from_json(o.to_json());
  CHECK(back.noise == 0.25);
  CHECK(bg::GeneratorOptions::from_json(small_model(0.0).to_json()).noise == 0.0);
}

namespace {

// The relaxed game's optimum among translations x(t) = z + a(t) e₁ for ρ₀ = N(0, I),
// π = N(m e₁, I), F = KL(ρ‖π) = |a − m|²/2 (eq. 70 with T = 1): the Euler–Lagrange
// equation of ∫ e^{−t/ε}(|ȧ|² + |a − m|²/ε)/2 dt + e^{−T/ε}|a_T − m|²/2 is
// b'' − b'/ε − b/ε = 0 for b = a − m, with b(0) = −m and the transversality condition
// b'(T) = −b(T). Roots r± = (1/ε ± √(1/ε² + 4/ε))/2; a(T) = m + b(T). ε → ∞ gives a(T) = m/2
// (the OT game), ε → 0 gives a(T) = m(1 − e^{−T}) (the Wasserstein gradient flow of KL, an
// Ornstein–Uhlenbeck mean).
double relaxed_translation_end(double m, double eps) {
  const double r1 = 0.5 * (1 / eps + std::sqrt(1 / (eps * eps) + 4 / eps));
  const double r2 = 0.5 * (1 / eps - std::sqrt(1 / (eps * eps) + 4 / eps));
  // b = A e^{r+ t} + B e^{r− t}: A + B = −m and A (r+ + 1) e^{r+} + B (r− + 1) e^{r−} = 0 (T = 1).
  // Divided by e^{r+} (no overflow at small ε): A c₁ + B c₂ = 0, so B = −m c₁/(c₁ − c₂),
  // A e^{r+} = m (r− + 1) e^{r−}/(c₁ − c₂), and b(T) = e^{r−} m (r− − r+)/(c₁ − c₂).
  const double c1 = r1 + 1, c2 = (r2 + 1) * std::exp(r2 - r1);
  return m + std::exp(r2) * m * (r2 - r1) / (c1 - c2);
}

}  // namespace

TEST_CASE("relaxed game: eps -> infinity is the reverse-KL (ot-rkl) game") {
  const auto target = shifted_gaussian(1.0);
  bg::BoltzmannGenerator g(small_model(0.0), 8);
  const auto z = g.base_sample(64, 4);
  bg::EnergyCut cut;
  const auto plain = bg::reverse_kl_term(g, z, 8, true, target, cut, nullptr, nullptr, boltzlab::Execution::kSerial);
  const auto relaxed = bg::relaxed_game_term(g, z, 8, true, 1e9, target, cut, nullptr, boltzlab::Execution::kSerial);
  // Weights e^{−t/ε} = 1 − O(1e−9), interaction O(1e−9)·|g|.
  CHECK(relaxed.sum.item<double>() == doctest::Approx(plain.sum.item<double>()).epsilon(1e-7));
  CHECK(relaxed.terminal.item<double>() == doctest::Approx(plain.sum.item<double>()).epsilon(1e-12));
  CHECK((relaxed.transport - plain.transport).abs().max().item<double>() < 1e-7);
  CHECK_THROWS_AS(bg::relaxed_game_term(g, z, 8, true, 0.0, target, cut, nullptr), boltzlab::ConfigError);
}

TEST_CASE("relaxed game: the terms of a translation, by hand") {
  // Φ = β x₁ + γ t + c: v = −β e₁, x(t) = z − β t e₁, log ρ_t(x(t)) = log ρ₀(z) and
  // u = |x − m e₁|²/2, so per row g_t = −log 2π − z₁(βt + m) + (βt + m)²/2, whose mean over the
  // antithetic batch is −log 2π + (βt + m)²/2; the running cost is ∫ e^{−t/ε} β²/2 dt.
  const double m = 1.0, beta = -0.6, gamma = 0.3, c = 0.2, eps = 0.5;
  const auto target = shifted_gaussian(m);
  bg::BoltzmannGenerator g(small_model(0.0), 8);
  set_affine_potential(g, {beta, 0.0, gamma}, c);
  const auto z = antithetic_base(200);
  const int steps = 4;
  bg::EnergyCut cut;
  const auto term = bg::relaxed_game_term(g, z, steps, true, eps, target, cut, nullptr, boltzlab::Execution::kSerial);
  const double h = 1.0 / steps;
  double expect = 0.0;
  for (int k = 0; k <= steps; ++k) {
    const double t = k * h, w = (k == 0 || k == steps) ? 0.5 * h : h;
    const double g_mean = -std::log(2 * M_PI) + 0.5 * (beta * t + m) * (beta * t + m);
    expect += w * std::exp(-t / eps) / eps * g_mean;
    if (k == steps) expect += std::exp(-1.0 / eps) * g_mean;
  }
  CHECK(term.sum.item<double>() / 400.0 == doctest::Approx(expect).epsilon(1e-10));
  CHECK(term.transport.mean().item<double>() == doctest::Approx(0.5 * beta * beta * eps * (1 - std::exp(-1 / eps))).epsilon(1e-4));  // RK4 = Simpson: O(h⁴)
  // Residual at row z, time t: (γ − β²/2) − (β(z₁ − βt) + γt + c − g)/ε, g per row as above with z.
  const auto z1 = z.select(1, 0);
  auto r = torch::zeros({400}, kF64);
  for (int k = 0; k <= steps; ++k) {
    const double t = k * h, w = (k == 0 || k == steps) ? 0.5 * h : h;
    const auto x1 = z1 - beta * t;
    const auto gk = -std::log(2 * M_PI) - z1 * (beta * t + m) + 0.5 * (beta * t + m) * (beta * t + m);
    r = r + w * ((gamma - 0.5 * beta * beta) - (beta * x1 + gamma * t + c - gk) / eps).abs();
  }
  CHECK((term.hjb - r).abs().max().item<double>() < 1e-10);
}

TEST_CASE("relaxed game: trained end points follow the exact optimum from the gradient flow to OT") {
  // π = N((m, 0), I) from ρ₀ = N(0, I), T = 1: the optimum is a translation whose end
  // a(T) moves from m(1 − e^{−1}) (ε → 0, the KL gradient flow) to m/2 (ε → ∞, the OT game);
  // relaxed_translation_end gives it for every ε. The trained model's mean end point
  // (4000 samples: standard error ≈ 1/√4000 ≈ 0.016) must land within 0.06 of it — the
  // optimization error of 300 Adam steps (batches of 128) on a width-8 potential, measured at 0.004–0.03.
  // (Without the relaxation-form HJB term, α_HJB = 0, ε = 0.1 ends at 1.61: for t ≫ ε the
  // game's weights e^{−t/ε} leave the path undetermined on the grid; the residual pins it.)
  const double m = 2.0;
  const auto target = shifted_gaussian(m);
  for (const double eps : {0.1, 1.0, 100.0}) {
    bg::BoltzmannGenerator g(small_model(0.0), 21);
    bg::TrainOptions t;
    t.weights = bg::LossWeights::preset("relaxed-wgf", false);
    t.weights.epsilon = eps;
    t.iterations = 300;
    t.batch_size = 128;
    t.learning_rate = 1e-2;
    t.eval_every = 0;
    t.progress = false;
    t.seed = 5;
    bg::train(g, target, nullptr, t);
    const auto s = g.sample(4000, 3);
    const double mean = s.x.col(0).mean();
    const double exact = relaxed_translation_end(m, eps);
    MESSAGE("eps " << eps << ": mean end " << mean << ", exact optimum " << exact);
    CHECK(std::abs(mean - exact) < 0.06);
  }
  CHECK(relaxed_translation_end(m, 1e-3) == doctest::Approx(m * (1 - std::exp(-1.0))).epsilon(1e-2));
  CHECK(relaxed_translation_end(m, 1e5) == doctest::Approx(m / 2).epsilon(1e-3));
}

namespace {

// ∇·v by autograd: Σ_i ∂v_i/∂x_i, one backward pass per coordinate.
torch::Tensor autograd_divergence(bg::FreeVelocity& field, const torch::Tensor& x0, double t) {
  auto x = x0.clone().requires_grad_(true);
  const auto v = field.evaluate(x, t).v;
  auto div = torch::zeros({x.size(0)}, kF64);
  for (int i = 0; i < x.size(1); ++i)
    div = div + torch::autograd::grad({v.select(1, i).sum()}, {x}, {}, true)[0].select(1, i);
  return div;
}

}  // namespace

TEST_CASE("free velocity: exact divergence against autograd, bounded and projected variants") {
  boltzlab::Rng rng(3, 0);
  auto x = torch::empty({16, 4}, kF64);
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 4; ++k) x[i][k] = 1.5 * rng.normal();
  for (const double bound : {0.0, 0.3}) {
    for (const int particles : {0, 2}) {
      bg::FreeVelocityOptions o;
      o.dim = 4;
      o.hidden = {16, 16};
      o.bound = bound;
      o.n_particles = particles;
      o.spatial_dim = particles ? 2 : 0;
      bg::FreeVelocity field(o, 7);
      {  // a larger output layer, so that the bound acts on most rows
        torch::NoGradGuard ng;
        auto p = field.parameters();
        p[p.size() - 2].mul_(30.0);
      }
      INFO("bound " << bound << ", particles " << particles);
      const auto r = field.evaluate(x, 0.4);
      CHECK((r.divergence - autograd_divergence(field, x, 0.4)).abs().max().item<double>() < 1e-10);
      if (bound > 0.0) {
        CHECK(r.v.norm(2, {1}).max().item<double>() <= bound * (1 + 1e-12));
        CHECK(r.v.norm(2, {1}).max().item<double>() > 0.7 * bound);  // the squashing acts
      }
      if (particles) CHECK(r.v.reshape({16, 2, 2}).sum(1).abs().max().item<double>() < 1e-12);
    }
  }
}

TEST_CASE("free velocity: the generator's log q is exact (forward against reverse), saved and reloaded") {
  bg::GeneratorOptions o = small_model(0.0);
  o.free_velocity = true;
  o.velocity_hidden = {16, 16};
  o.velocity_bound = 2.0;
  o.sample_steps = 32;
  bg::BoltzmannGenerator g(o, 5);
  {
    torch::NoGradGuard ng;
    auto p = g.parameters();
    p[p.size() - 2].mul_(20.0);  // a flow far from the identity
  }
  const auto s = g.sample(200, 1);
  // log q of the samples by integrating back: equal up to the RK4 error (32 steps).
  CHECK((g.log_q(s.x) - s.log_q).cwiseAbs().maxCoeff() < 1e-6);
  // The map moved the points: log q differs from the base density by more than that.
  const auto z = g.base_sample(200, 1);
  const auto log_base = g.base_log_density(z);
  double moved = 0.0;
  for (int i = 0; i < 200; ++i) moved = std::max(moved, std::abs(log_base[i].item<double>() - s.log_q[i]));
  CHECK(moved > 0.1);
  const auto dir = std::filesystem::temp_directory_path() / "boltzlab_free_velocity_test";
  std::filesystem::create_directories(dir);
  g.save(dir / "model.pt");
  auto loaded = bg::BoltzmannGenerator::load(dir / "model.pt");
  CHECK(loaded.options().free_velocity);
  const auto s2 = loaded.sample(200, 1);
  CHECK((s2.x - s.x).cwiseAbs().maxCoeff() == 0.0);
  std::filesystem::remove_all(dir);
  // Games that need a potential are refused with one clear message.
  bg::TrainOptions t;
  t.weights = bg::LossWeights::preset("free-bg", false);
  t.iterations = 1;
  t.weights.alpha_hjb = 0.05;
  const auto target = shifted_gaussian(0.0);
  CHECK_THROWS_WITH_AS(bg::train(g, target, nullptr, t), doctest::Contains("free velocity"), boltzlab::ConfigError);
  bg::GeneratorOptions bad = o;
  bad.free_velocity = false;
  CHECK_THROWS_AS(bad.validate(), boltzlab::ConfigError);  // velocity keys without velocity free
}

TEST_CASE("game specification: every flow row is an instance, read back key by key") {
  for (const auto& row : bg::loss_presets()) {
    if (row.family != bg::ModelFamily::kFlow) continue;
    INFO("preset " << std::string(row.name));
    const bg::GameSpec g = bg::GameSpec::of(row, false);
    bg::GameSpec back;  // all defaults, then the row's game read from its JSON
    const nlohmann::json spelled = g.to_json();  // JsonReader keeps a reference
    boltzlab::JsonReader r(spelled, "game");
    back.read(r);
    CHECK(back.to_json() == g.to_json());
    bg::LossWeights w;
    bg::GeneratorOptions m;
    back.apply(w, m);
    CHECK(m.noise == row.noise);
    CHECK(m.free_velocity == row.free_velocity);
    CHECK(w.epsilon == row.resolve(false).epsilon);
  }
  // One key overrides one term; misspelt keys and sections are refused with a suggestion.
  bg::GameSpec g = bg::GameSpec::of(bg::find_loss_preset("ot-bg"), true);
  const nlohmann::json one = {{"dynamics", {{"noise", 0.3}}}};
  boltzlab::JsonReader r(one, "game");
  g.read(r);
  CHECK(g.noise == 0.3);
  CHECK(g.weights.alpha_hjb == 0.05);
  const nlohmann::json misspelt = {{"dynamics", {{"nosie", 0.3}}}};
  boltzlab::JsonReader bad(misspelt, "game");
  CHECK_THROWS_WITH_AS(g.read(bad), doctest::Contains("noise"), boltzlab::ConfigError);
  const nlohmann::json section = {{"interactions", {{"epsilon", 1}}}};
  boltzlab::JsonReader bad2(section, "game");
  CHECK_THROWS_WITH_AS(g.read(bad2), doctest::Contains("interaction"), boltzlab::ConfigError);
}
