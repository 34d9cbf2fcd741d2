// Whitened flows (generator.hpp, set_whitening): the conditional-Gaussian whitening W is a
// bijection with a constant log-det that turns draws of its own Gaussian into standard normals;
// a flow conjugated by it, W⁻¹ ∘ F ∘ W, has log q equal to the brute-force change of variables
// (autograd Jacobian of the whole map), of any 2π representative; save → load reproduces the
// draws; and misuse is refused.
#include <cmath>
#include <filesystem>
#include <vector>

#include "support/torch_doctest.hpp"  // torch first: its CHECK macro must not shadow doctest's

#include "boltzlab/core/constants.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/generators/conditional_base.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/molecular_space.hpp"

namespace bg = boltzlab::generators;
using boltzlab::kPi;
using boltzlab::RowMatrix;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

torch::Tensor bool_mask(std::vector<std::int64_t> v) {
  return torch::tensor(v, torch::TensorOptions().dtype(torch::kLong)).to(torch::kBool);
}

// m = 4: columns 0, 1 periodic soft (a joint pair), column 2 real hard, column 3 periodic hard
// (sd ≈ 0.19 rad, mean near π so that values wrap). One harmonic: 9 features. `experts` = 2 gives
// a second expert with other coefficients and covariance (a base like the molecular ones);
// `experts` = 1 the pooled block a whitening uses.
bg::ConditionalGaussian block(int experts) {
  const auto coef0 = torch::tensor(
      {{0.3, 3.0}, {0.5, 0.1}, {-0.2, 0.05}, {0.4, -0.1}, {0.1, 0.08}, {0.2, 0.0}, {-0.1, 0.02}, {0.05, 0.0}, {0.3, -0.04}},
      kF64);
  const auto chol0 = torch::tensor({{0.6, 0.0}, {0.05, 0.18}}, kF64);
  if (experts == 1)
    return bg::ConditionalGaussian(4, {0, 1}, {0, 1}, {2, 3}, {false, true}, 1, coef0.unsqueeze(0), chol0.unsqueeze(0),
                                   torch::tensor({{-1.2, 2.5}}, kF64), torch::tensor({{4.0, 2.0}}, kF64),
                                   torch::tensor({1.0}, kF64));
  const auto coef1 = coef0 * 0.5;
  const auto chol1 = torch::tensor({{0.3, 0.0}, {-0.03, 0.1}}, kF64);
  return bg::ConditionalGaussian(4, {0, 1}, {0, 1}, {2, 3}, {false, true}, 1, torch::stack({coef0, coef1}),
                                 torch::stack({chol0, chol1}), torch::tensor({{-1.2, 2.5}, {1.0, -0.7}}, kF64),
                                 torch::tensor({{4.0, 2.0}, {8.0, 1.0}}, kF64), torch::tensor({0.7, 0.3}, kF64));
}

bg::BaseDensity base_of(const bg::ConditionalGaussian& b) {
  bg::BaseDensity base(bool_mask({1, 1, 0, 1}));
  base.set_conditional(b);
  return base;
}

void perturb(const std::vector<torch::Tensor>& params, double scale, int seed) {
  torch::NoGradGuard ng;
  torch::manual_seed(seed);
  for (auto p : params) p.add_(scale * torch::randn_like(p));
}

/// A whitened generator on the 4-column example: flow periodic in the soft pair only, the
/// two-expert base, the pooled whitening; parameters perturbed away from the identity.
bg::BoltzmannGenerator whitened_model(bool coupling) {
  bg::GeneratorOptions o;
  o.potential.dim = 4;
  o.potential.width = 8;
  o.potential.periodic = {0, 1};
  o.whitened = true;
  o.steps = o.sample_steps = 32;
  if (coupling) {
    o.flow = bg::FlowFamily::spline_coupling;
    o.coupling.layers = 4;
    o.coupling.hidden = 8;
    o.coupling.bins = 6;
    o.coupling.bound = 4.0;
  }
  bg::BoltzmannGenerator g(o, 5);
  perturb(g.parameters(), coupling ? 0.3 : 0.5, 7);
  g.set_whitening(block(1));
  g.set_base(base_of(block(2)));
  return g;
}

/// log ρ₀(z) − log|det ∂x/∂z| by autograd, one row at a time (x = the model's forward map).
torch::Tensor brute_force_log_q(bg::BoltzmannGenerator& g, const torch::Tensor& z) {
  std::vector<double> out;
  for (std::int64_t i = 0; i < z.size(0); ++i) {
    auto zi = z.narrow(0, i, 1).clone().requires_grad_(true);
    const auto xi = g.forward(zi, g.options().sample_steps, false).x;
    auto jac = torch::zeros({4, 4}, kF64);
    for (int r = 0; r < 4; ++r) jac[r] = torch::autograd::grad({xi.select(1, r).sum()}, {zi}, {}, true)[0].squeeze(0);
    out.push_back(g.base_log_density(zi.detach()).item<double>() - std::log(std::abs(torch::det(jac).item<double>())));
  }
  return torch::tensor(out, kF64);
}

}  // namespace

TEST_CASE("whitened flow: W is inverted by unwhiten, has a constant log-det, and whitens its own draws") {
  const auto w = block(1);
  const auto base = base_of(w);
  const auto y = base.sample(20000, 3);
  const auto u = w.whiten(y);
  // Inverse: the real columns exactly, the periodic hard column up to a multiple of 2π.
  const auto back = w.unwhiten(u);
  CHECK((back.narrow(1, 0, 3) - y.narrow(1, 0, 3)).abs().max().item<double>() < 1e-12);
  const auto d3 = back.select(1, 3) - y.select(1, 3);
  CHECK((d3 - 2 * kPi * torch::round(d3 / (2 * kPi))).abs().max().item<double>() < 1e-12);
  CHECK(torch::equal(u.narrow(1, 0, 2), y.narrow(1, 0, 2)));  // the soft columns pass through
  // log|det ∂u/∂y| = −Σ log L_ii = −log(0.6 · 0.18) at every point (the Jacobian is triangular
  // in blocks: identity on the soft columns, L⁻¹ on the hard ones).
  for (int i = 0; i < 5; ++i) {
    auto yi = y.narrow(0, i, 1).clone().requires_grad_(true);
    const auto ui = w.whiten(yi);
    auto jac = torch::zeros({4, 4}, kF64);
    for (int r = 0; r < 4; ++r) jac[r] = torch::autograd::grad({ui.select(1, r).sum()}, {yi}, {}, true)[0].squeeze(0);
    CHECK(std::log(std::abs(torch::det(jac).item<double>())) == doctest::Approx(-std::log(0.6 * 0.18)).epsilon(1e-12));
  }
  // Draws of the block's own Gaussian whiten to N(0, I) in the hard columns: with n = 2·10⁴ the
  // standard errors are 1/√n = 0.0071 for a mean and a covariance, √(2/n) = 0.010 for a variance;
  // tolerances are 5 standard errors.
  const auto h = u.narrow(1, 2, 2);
  const auto mean = h.mean(0);
  const auto c = h - mean;
  const auto cov = torch::matmul(c.t(), c) / static_cast<double>(h.size(0) - 1);
  CHECK(mean.abs().max().item<double>() < 5 * 0.0071);
  CHECK(std::abs(cov[0][0].item<double>() - 1.0) < 5 * 0.010);
  CHECK(std::abs(cov[1][1].item<double>() - 1.0) < 5 * 0.010);
  CHECK(std::abs(cov[0][1].item<double>()) < 5 * 0.0071);
  // Several experts have no single whitening.
  CHECK_THROWS_AS(block(2).whiten(y), boltzlab::DomainError);
}

TEST_CASE("whitened flow: log q is the change of variables through the whole map, of any representative") {
  for (const bool coupling : {true, false}) {
    INFO((coupling ? "spline coupling" : "OT-Flow CNF"));
    auto g = whitened_model(coupling);
    const auto z = g.base_sample(6, 11);
    const auto f = g.forward(z, g.options().sample_steps, false);
    const double error = (f.log_q - brute_force_log_q(g, z)).abs().max().item<double>();
    // The map really moves the hard columns (the checks are not of the identity).
    CHECK((f.x - z).narrow(1, 2, 1).abs().max().item<double>() > 0.05);
    // log q of the samples against their log q, and of other 2π representatives (a soft column
    // and the hard periodic one): equal but for the integrator.
    const bg::GeneratedSamples s = g.sample(64, 4);
    RowMatrix moved = s.x;
    moved.col(0).array() -= 2 * kPi;
    moved.col(3).array() += 2 * kPi;
    const double round_trip = (g.log_q(s.x) - s.log_q).cwiseAbs().maxCoeff();
    const double representative = (g.log_q(moved) - g.log_q(s.x)).cwiseAbs().maxCoeff();
    CHECK(s.x.col(3).cwiseAbs().maxCoeff() <= kPi);
    CHECK(representative < 1e-9);
    if (coupling) {  // exact log-det and inverse
      CHECK(error < 1e-9);
      CHECK(round_trip < 1e-9);
      continue;
    }
    // The CNF's log-det is the RK4 integral of the divergence, its inverse the RK4 map backwards:
    // both match to O(h⁴). Doubling the steps must shrink both discrepancies about 16×
    // (required: 8×); a whitening whose log-det did not cancel would leave a constant offset.
    g.set_integration_steps(64, 64);
    const auto f64 = g.forward(z, 64, false);
    const double error64 = (f64.log_q - brute_force_log_q(g, z)).abs().max().item<double>();
    const bg::GeneratedSamples s64 = g.sample(64, 4);
    const double round_trip64 = (g.log_q(s64.x) - s64.log_q).cwiseAbs().maxCoeff();
    MESSAGE("CNF: Jacobian " << error << " -> " << error64 << ", round trip " << round_trip << " -> " << round_trip64);
    CHECK(error64 < error / 8);
    CHECK(round_trip64 < round_trip / 8);
    CHECK(error64 < 1e-5);
  }
}

TEST_CASE("whitened flow: save and load reproduce the draws") {
  auto g = whitened_model(false);
  const auto dir = std::filesystem::temp_directory_path() / "boltzlab_whitened_flow_test";
  std::filesystem::create_directories(dir);
  g.save(dir / "model.pt");
  auto h = bg::BoltzmannGenerator::load(dir / "model.pt");
  REQUIRE(h.whitening() != nullptr);
  CHECK(h.options().whitened);
  const auto s = g.sample(128, 9), t = h.sample(128, 9);
  CHECK((t.x - s.x).cwiseAbs().maxCoeff() == 0.0);
  CHECK((t.log_q - s.log_q).cwiseAbs().maxCoeff() == 0.0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("whitened flow: misuse is refused") {
  bg::GeneratorOptions o;
  o.potential.dim = 4;
  o.potential.width = 8;
  o.potential.periodic = {0, 1};
  bg::BoltzmannGenerator plain(o, 1);
  CHECK_THROWS_AS(plain.set_whitening(block(1)), boltzlab::DomainError);  // options not whitened
  o.whitened = true;
  bg::BoltzmannGenerator g(o, 1);
  CHECK_THROWS_AS(g.set_whitening(block(2)), boltzlab::DomainError);     // two experts
  CHECK_THROWS_AS(g.set_base(base_of(block(2))), boltzlab::DomainError);  // base before the whitening
  o.potential.periodic = {0, 1, 3};  // the hard torsion is a residual for the flow, not periodic
  bg::BoltzmannGenerator wrong(o, 1);
  CHECK_THROWS_AS(wrong.set_whitening(block(1)), boltzlab::DomainError);
  g.set_whitening(block(1));
  g.set_base(base_of(block(2)));
  CHECK_THROWS_AS(g.forward_path(g.base_sample(2, 1), 4, false, 0.0), boltzlab::DomainError);
  o.potential.periodic = {};
  o.potential.n_particles = 2;
  o.potential.spatial_dim = 2;
  CHECK_THROWS_AS(bg::BoltzmannGenerator(o, 1), boltzlab::ConfigError);  // particle systems
}
