// Tests for lib/boltzlab/generators/conditional_base.* and its use in BaseDensity: the
// conditional-Gaussian base ρ_soft(y_S) · N(y_H; Bᵀf(y_S), Σ) is normalized (quadrature),
// 2π-periodic in every periodic column, its draws have the density's moments, its
// gradient matches finite differences, the fit recovers known parameters within their
// standard errors, and JSON round trips are exact.
#include <cmath>
#include <string>
#include <vector>

#include "support/torch_doctest.hpp"  // torch first: its CHECK macro must not shadow doctest's

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/generators/conditional_base.hpp"
#include "boltzlab/generators/internal_coordinates.hpp"

using namespace boltzlab;
using namespace boltzlab::generators;

namespace {

constexpr double kPi = 3.14159265358979323846;

torch::TensorOptions f64() { return torch::TensorOptions().dtype(torch::kDouble); }
torch::Tensor bool_mask(std::vector<std::int64_t> v) {
  return torch::tensor(v, torch::TensorOptions().dtype(torch::kLong)).to(torch::kBool);
}
double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

// m = 4: columns 0, 1 periodic soft (a joint pair, 2 components), column 2 a real hard
// coordinate, column 3 a periodic hard coordinate (sd ≈ 0.2 rad, centred near ±π so that
// its values wrap). One harmonic: features (1, cos y0, cos y1, sin y0, sin y1, four products).
ConditionalGaussian example_block() {
  const auto coef = torch::tensor({{0.3, 3.0},
                                   {0.5, 0.1},
                                   {-0.2, 0.05},
                                   {0.4, -0.1},
                                   {0.1, 0.08},
                                   {0.2, 0.0},
                                   {-0.1, 0.02},
                                   {0.05, 0.0},
                                   {0.3, -0.04}},
                                  f64());
  const auto chol = torch::tensor({{0.6, 0.0}, {0.05, 0.18}}, f64());
  const auto jmu = torch::tensor({{-1.2, 2.5}, {1.0, -0.7}}, f64());
  const auto jkappa = torch::tensor({{4.0, 2.0}, {8.0, 1.0}}, f64());
  const auto jw = torch::tensor({0.7, 0.3}, f64());
  return ConditionalGaussian(4, {0, 1}, {0, 1}, {2, 3}, {false, true}, 1, coef, chol, jmu, jkappa, jw);
}

BaseDensity example_base() {
  BaseDensity base(bool_mask({1, 1, 0, 1}));  // uniform per column, replaced by the block
  base.set_conditional(example_block());
  return base;
}

}  // namespace

TEST_CASE("conditional base: normalized on T² × ℝ × T, periodic, kind and feature count") {
  const auto base = example_base();
  CHECK(base.kind() == "uniform+conditional_gaussian");
  REQUIRE(base.conditional() != nullptr);
  CHECK(base.conditional()->n_features() == 9);
  CHECK(base.conditional()->max_periodic_sd() == doctest::Approx(std::sqrt(0.05 * 0.05 + 0.18 * 0.18)));
  // ρ = ρ_joint(y0, y1) · ρ_hard(y2, y3 | y0, y1): check ∫ρ_joint = 1 on a 200² periodic
  // midpoint grid (spectrally accurate for κ ≤ 8), and ∫ρ_hard = 1 at five soft values on a
  // (real 1200 points over ±12) × (periodic 400 points) grid — the wrapped Gaussian of the
  // periodic column integrates to 1 up to the neglected images (< 1e-100 at sd 0.19).
  const int nt = 200;
  const auto t = (torch::arange(nt, f64()) + 0.5) * (2.0 * kPi / nt) - kPi;
  const auto tt = torch::stack(torch::meshgrid({t, t}, "ij"), -1).reshape({-1, 2});
  auto y = torch::zeros({tt.size(0), 4}, f64());
  y.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, 2)}, tt);
  const double cell2 = std::pow(2.0 * kPi / nt, 2);
  CHECK(std::abs(torch::exp(base.conditional()->log_prob_joint(y)).sum().item<double>() * cell2 - 1.0) < 1e-10);
  const int ng = 1200, np = 400;
  const auto g = (torch::arange(ng, f64()) + 0.5) * (24.0 / ng) - 12.0;
  const auto p = (torch::arange(np, f64()) + 0.5) * (2.0 * kPi / np) - kPi;
  const auto gp = torch::stack(torch::meshgrid({g, p}, "ij"), -1).reshape({-1, 2});
  const double cell = (24.0 / ng) * (2.0 * kPi / np);
  for (const auto& soft : std::vector<std::pair<double, double>>{{0.0, 0.0}, {-1.2, 2.5}, {3.0, -3.0}, {1.7, 0.4}, {-2.9, -1.0}}) {
    auto yh = torch::zeros({gp.size(0), 4}, f64());
    yh.select(1, 0).fill_(soft.first);
    yh.select(1, 1).fill_(soft.second);
    yh.index_put_({torch::indexing::Slice(), torch::indexing::Slice(2, 4)}, gp);
    INFO("soft " << soft.first << ", " << soft.second);
    CHECK(std::abs(torch::exp(base.conditional()->log_prob_hard(yh)).sum().item<double>() * cell - 1.0) < 1e-10);
    // The full base is the product of the two parts (the uniform per-column densities of the
    // replaced columns do not enter).
    CHECK(max_abs(base.log_prob(yh) - base.conditional()->log_prob_joint(yh) - base.conditional()->log_prob_hard(yh)) < 1e-12);
  }
  // 2π-periodic in every periodic column (0, 1, 3), not in the real one.
  const auto probe = torch::tensor({{0.3, 1.1, 0.2, 3.0}, {-2.0, -3.1, -0.5, -2.9}}, f64());
  for (const int c : {0, 1, 3}) {
    auto shifted = probe.clone();
    shifted.select(1, c).add_(2.0 * kPi);
    CHECK(max_abs(base.log_prob(probe) - base.log_prob(shifted)) < 1e-12);
  }
  auto moved = probe.clone();
  moved.select(1, 2).add_(2.0 * kPi);
  CHECK(max_abs(base.log_prob(probe) - base.log_prob(moved)) > 1.0);
}

TEST_CASE("conditional base: draws have the density's moments, independent of threads and batching") {
  const auto base = example_base();
  const auto& block = *base.conditional();
  const std::int64_t n = 40000;
  const auto y = base.sample(n, 2024);
  CHECK(y.select(1, 3).min().item<double>() >= -kPi);
  CHECK(y.select(1, 3).max().item<double>() < kPi);
  // Whitened residuals ε = L⁻¹ wrap(y_H − μ(y_S)) are i.i.d. N(0, I): sample means within
  // 4 standard errors (1/√n), variances within 4·√(2/n), the covariance within 4/√n.
  auto r = y.index({torch::indexing::Slice(), torch::indexing::Slice(2, 4)}) - torch::matmul(block.features(y), block.coef());
  r.select(1, 1).copy_(r.select(1, 1) - 2.0 * kPi * torch::floor((r.select(1, 1) + kPi) / (2.0 * kPi)));
  const auto e = torch::matmul(r, torch::linalg::inv(block.chol()).t());
  const double se = 1.0 / std::sqrt(double(n));
  CHECK(max_abs(e.mean(0)) < 4.0 * se);
  const auto cov = torch::matmul(e.t(), e) / double(n);
  CHECK(std::abs(cov[0][0].item<double>() - 1.0) < 4.0 * std::sqrt(2.0) * se);
  CHECK(std::abs(cov[1][1].item<double>() - 1.0) < 4.0 * std::sqrt(2.0) * se);
  CHECK(std::abs(cov[0][1].item<double>()) < 4.0 * se);
  // Joint pair: E[cos y_j], E[sin y_j] = Σ_k w_k A(κ_kj) (cos, sin) μ_kj, A = I₁/I₀, within 4 s.e.
  const double w[2] = {0.7, 0.3}, mu[2][2] = {{-1.2, 2.5}, {1.0, -0.7}}, ka[2][2] = {{4.0, 2.0}, {8.0, 1.0}};
  for (int j = 0; j < 2; ++j) {
    double ec = 0.0, es = 0.0;
    for (int k = 0; k < 2; ++k) {
      const double a = std::cyl_bessel_i(1.0, ka[k][j]) / std::cyl_bessel_i(0.0, ka[k][j]);
      ec += w[k] * a * std::cos(mu[k][j]);
      es += w[k] * a * std::sin(mu[k][j]);
    }
    const auto c = torch::cos(y.select(1, j)), s = torch::sin(y.select(1, j));
    INFO("joint column " << j);
    CHECK(std::abs(c.mean().item<double>() - ec) < 4.0 * c.std().item<double>() * se);
    CHECK(std::abs(s.mean().item<double>() - es) < 4.0 * s.std().item<double>() * se);
  }
  // Same stream per sample: thread count and batching do not change the draws.
  set_num_threads(1);
  const auto one = base.sample(600, 5);
  set_num_threads(2);
  CHECK(torch::equal(one, base.sample(600, 5)));
  using torch::indexing::Slice;
  CHECK(torch::equal(one.index({Slice(300, 600)}), base.sample(300, 5, 300)));
}

TEST_CASE("conditional base: gradient of log p vs central differences") {
  const auto base = example_base();
  auto y = torch::tensor({{0.4, -2.5, 0.3, 2.9}, {-1.2, 0.9, -0.8, -3.0}, {2.0, 3.1, 1.5, 3.1}}, f64()).requires_grad_(true);
  const auto grad = torch::autograd::grad({base.log_prob(y).sum()}, {y})[0];
  const double h = 1e-6;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) {
      auto yp = y.detach().clone(), ym = y.detach().clone();
      yp[r][c] += h;
      ym[r][c] -= h;
      const double fd = (base.log_prob(yp).sum().item<double>() - base.log_prob(ym).sum().item<double>()) / (2 * h);
      INFO("row " << r << " column " << c);
      CHECK(std::abs(grad[r][c].item<double>() - fd) < 1e-6 * (1.0 + std::abs(fd)));
    }
}

TEST_CASE("conditional base: the fit recovers the regression, the covariance and the joint mixture") {
  const auto truth = example_base();
  const auto& tb = *truth.conditional();
  const std::int64_t n = 20000;
  const auto y = truth.sample(n, 77);
  const auto mask = bool_mask({1, 1, 0, 1});
  const auto fit = ConditionalGaussian::fit(y, mask, {0, 1}, {0, 1}, 1, 4);
  // Least-squares coefficients: se(B̂_fk) = σ_k √[(FᵀF)⁻¹]_ff with σ_k² = Σ_kk (residual
  // variance of output k); all 18 within 4 standard errors.
  const auto F = tb.features(y);
  const auto inv_gram = torch::linalg::inv(torch::matmul(F.t(), F));
  const auto sigma = (tb.chol() * tb.chol()).sum(1).sqrt();
  const auto se = torch::sqrt(inv_gram.diagonal()).unsqueeze(1) * sigma.unsqueeze(0);
  CHECK(((fit.coef() - tb.coef()).abs() < 4.0 * se).all().item<bool>());
  // Residual covariance: se(Σ̂_kk) = Σ_kk √(2/n).
  const auto cov_fit = torch::matmul(fit.chol(), fit.chol().t()), cov_true = torch::matmul(tb.chol(), tb.chol().t());
  for (int k = 0; k < 2; ++k)
    CHECK(std::abs(cov_fit[k][k].item<double>() - cov_true[k][k].item<double>()) <
          4.0 * cov_true[k][k].item<double>() * std::sqrt(2.0 / double(n)));
  // Joint mixture: BIC picks the two components; weights within 4·√(w(1−w)/n).
  REQUIRE(fit.joint_components() == 2);
  BaseDensity fitted(mask);
  fitted.set_conditional(fit);
  const auto jw = fitted.conditional()->to_json()["joint_weight"];
  const double w_big = std::max(jw[0].get<double>(), jw[1].get<double>());
  CHECK(std::abs(w_big - 0.7) < 4.0 * std::sqrt(0.21 / double(n)));
  // KL(truth ‖ fit) on fresh draws is small and ≥ 0 within its s.e.: the fitted density is
  // a proper estimate of the truth (about (#parameters)/(2n) ≈ 1e-3 nats expected).
  const auto fresh = truth.sample(20000, 78);
  const auto d = truth.log_prob(fresh) - fitted.log_prob(fresh);
  const double kl = d.mean().item<double>(), kl_se = d.std().item<double>() / std::sqrt(20000.0);
  CHECK(kl > -4.0 * kl_se);
  CHECK(kl < 0.01);
}

TEST_CASE("conditional base: JSON round trip, wide torsions, and refused inputs") {
  const auto base = example_base();
  const auto again = BaseDensity::from_json(base.to_json(), "model.base");
  REQUIRE(again.conditional() != nullptr);
  const auto grid = base.sample(500, 3);
  CHECK(max_abs(again.log_prob(grid) - base.log_prob(grid)) == 0.0);
  CHECK(torch::equal(again.sample(300, 9), base.sample(300, 9)));
  // A corrupted block names its field.
  auto bad = base.to_json();
  bad["conditional"]["chol"][0][1] = 0.3;
  try {
    BaseDensity::from_json(bad, "model.base");
    FAIL("upper-triangular entry accepted");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("model.base.conditional") != std::string::npos);
    CHECK(std::string(e.what()).find("lower triangular") != std::string::npos);
  }
  // wide_torsions: circular sd √(−2 log R̄) above the threshold, plus the forced columns.
  const auto y = base.sample(20000, 1);
  const auto wide = BaseDensity::wide_torsions(y, bool_mask({1, 1, 0, 1}), 0.5);
  CHECK(wide == std::vector<std::int64_t>{0, 1});  // column 3 (sd ≈ 0.19) is hard, 2 is not periodic
  CHECK(BaseDensity::wide_torsions(y, bool_mask({1, 1, 0, 1}), 0.5, {3}) == std::vector<std::int64_t>{0, 1, 3});
  // A hard periodic column wider than 0.5 rad is refused (the wrapped-Gaussian bound).
  auto wide_y = y.clone();
  wide_y.select(1, 3).copy_(torch::rand({20000}, f64()) * 2.0 * kPi - kPi);
  CHECK_THROWS_WITH_AS(ConditionalGaussian::fit(wide_y, bool_mask({1, 1, 0, 1}), {0, 1}, {0, 1}, 1, 2),
                       doctest::Contains("make it a soft column"), DomainError);
  // A soft column must be periodic; a joint group needs two columns.
  CHECK_THROWS_AS(ConditionalGaussian::fit(y, bool_mask({1, 1, 0, 1}), {0, 2}, {}, 1, 2), DomainError);
  CHECK_THROWS_AS(ConditionalGaussian::fit(y, bool_mask({1, 1, 0, 1}), {0, 1}, {0}, 1, 2), DomainError);
}
