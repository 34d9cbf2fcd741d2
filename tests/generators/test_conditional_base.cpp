// Tests for lib/boltzlab/generators/conditional_base.* and its use in BaseDensity: the
// conditional-Gaussian base ρ_soft(y_S) · N(y_H; Bᵀf(y_S), Σ) is normalized (quadrature),
// 2π-periodic in every periodic column, its draws have the density's moments, its
// gradient matches finite differences, the fit recovers known parameters within their
// standard errors, and JSON round trips are exact.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "support/torch_doctest.hpp"  // torch first: its CHECK macro must not shadow doctest's

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/generators/conditional_base.hpp"
#include "boltzlab/generators/molecular_space.hpp"

using namespace boltzlab;
using namespace boltzlab::generators;

namespace {

constexpr double kPi = 3.14159265358979323846;

torch::TensorOptions f64() { return torch::TensorOptions().dtype(torch::kDouble); }
torch::Tensor bool_mask(std::vector<std::int64_t> v) {
  return torch::tensor(v, torch::TensorOptions().dtype(torch::kLong)).to(torch::kBool);
}
double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

// m = 4: columns 0, 1 periodic soft (a joint pair, 2 components = 2 experts), column 2 a
// real hard coordinate, column 3 a periodic hard coordinate (sd ≤ 0.19 rad, centred near ±π
// so that its values wrap). One harmonic: features (1, cos y0, cos y1, sin y0, sin y1, four
// products). Expert 1 has other coefficients and another covariance than expert 0.
ConditionalGaussian example_block() {
  const auto coef0 = torch::tensor({{0.3, 3.0},
                                    {0.5, 0.1},
                                    {-0.2, 0.05},
                                    {0.4, -0.1},
                                    {0.1, 0.08},
                                    {0.2, 0.0},
                                    {-0.1, 0.02},
                                    {0.05, 0.0},
                                    {0.3, -0.04}},
                                   f64());
  const auto coef1 = coef0 * 0.5 + torch::tensor({{-1.0, -3.05}}, f64()) * (torch::arange(9, f64()) == 0).unsqueeze(1);
  const auto chol0 = torch::tensor({{0.6, 0.0}, {0.05, 0.18}}, f64());
  const auto chol1 = torch::tensor({{0.3, 0.0}, {-0.03, 0.1}}, f64());
  const auto jmu = torch::tensor({{-1.2, 2.5}, {1.0, -0.7}}, f64());
  const auto jkappa = torch::tensor({{4.0, 2.0}, {8.0, 1.0}}, f64());
  const auto jw = torch::tensor({0.7, 0.3}, f64());
  return ConditionalGaussian(4, {0, 1}, {0, 1}, {2, 3}, {false, true}, 1, torch::stack({coef0, coef1}),
                             torch::stack({chol0, chol1}), jmu, jkappa, jw);
}

// The same with expert 0's regression and covariance for both components (the shared form).
ConditionalGaussian shared_block() {
  auto j = example_block().to_json();
  j["coef"][1] = j["coef"][0];
  j["chol"][1] = j["chol"][0];
  return ConditionalGaussian::from_json(j, "shared");
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
  CHECK(base.conditional()->components() == 2);
  CHECK_FALSE(base.conditional()->shared());
  // ρ = Σ_k w_k vM_k(y0, y1) N_k(y2, y3 | y0, y1): check ∫ Σ_k w_k vM_k = 1 on a 200² periodic
  // midpoint grid (spectrally accurate for κ ≤ 8), and ∫ N_k = 1 for both experts at five soft
  // values on a (real 1200 points over ±12) × (periodic 400 points) grid — the wrapped Gaussian
  // of the periodic column integrates to 1 up to the neglected images (< 1e-100 at sd 0.19).
  const int nt = 200;
  const auto t = (torch::arange(nt, f64()) + 0.5) * (2.0 * kPi / nt) - kPi;
  const auto tt = torch::stack(torch::meshgrid({t, t}, "ij"), -1).reshape({-1, 2});
  auto y = torch::zeros({tt.size(0), 4}, f64());
  y.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, 2)}, tt);
  const double cell2 = std::pow(2.0 * kPi / nt, 2);
  const auto joint = torch::logsumexp(base.conditional()->log_prob_joint_components(y), 0);
  CHECK(std::abs(torch::exp(joint).sum().item<double>() * cell2 - 1.0) < 1e-10);
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
    const auto hard = base.conditional()->log_prob_hard(yh);  // K × B
    for (int k = 0; k < 2; ++k) CHECK(std::abs(torch::exp(hard[k]).sum().item<double>() * cell - 1.0) < 1e-10);
    // The full base is the mixture of the experts (the uniform per-column densities of the
    // replaced columns do not enter).
    const auto expected = torch::logsumexp(base.conditional()->log_prob_joint_components(yh) + hard, 0);
    CHECK(max_abs(base.log_prob(yh) - expected) < 1e-12);
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

TEST_CASE("conditional base: draws satisfy the score identities of the density, independent of threads") {
  // For draws y ~ ρ (on T² × ℝ × T, no boundary terms): E[∂_c log ρ] = 0 and
  // E[∂²_c log ρ + (∂_c log ρ)²] = 0 for every column c (Stein / score identities). Both fail
  // for a sampler that does not match log_prob (wrong expert, mean, scale, or mixture weight).
  // Sample means within 4 standard errors (s.e. = sample sd / √n).
  const auto base = example_base();
  const std::int64_t n = 40000;
  const auto y = base.sample(n, 2024);
  CHECK(y.select(1, 3).min().item<double>() >= -kPi);
  CHECK(y.select(1, 3).max().item<double>() < kPi);
  auto yg = y.clone().requires_grad_(true);
  const auto score = torch::autograd::grad({base.log_prob(yg).sum()}, {yg}, {}, true, true)[0];
  for (int c = 0; c < 4; ++c) {
    const auto sc = score.select(1, c);
    const auto second = torch::autograd::grad({sc.sum()}, {yg}, {}, true)[0].select(1, c);
    const auto stein2 = second + sc * sc;
    INFO("column " << c);
    CHECK(std::abs(sc.mean().item<double>()) < 4.0 * sc.std().item<double>() / std::sqrt(double(n)));
    CHECK(std::abs(stein2.mean().item<double>()) < 4.0 * stein2.std().item<double>() / std::sqrt(double(n)));
  }
  // A sampler whose second expert is 30 % too wide fails the identities: the check has power.
  auto wide_json = base.conditional()->to_json();
  for (auto& row : wide_json["chol"][1])
    for (auto& v : row) v = v.get<double>() * 1.3;
  BaseDensity wrong(bool_mask({1, 1, 0, 1}));
  wrong.set_conditional(ConditionalGaussian::from_json(wide_json, "wrong"));
  auto yw = wrong.sample(n, 2024).requires_grad_(true);
  const auto sc_w = torch::autograd::grad({base.log_prob(yw).sum()}, {yw}, {}, true, true)[0];
  double worst = 0.0;
  for (int c = 0; c < 4; ++c) {
    const auto sc = sc_w.select(1, c);
    const auto st2 = torch::autograd::grad({sc.sum()}, {yw}, {}, true)[0].select(1, c) + sc * sc;
    worst = std::max(worst, std::abs(st2.mean().item<double>()) / (st2.std().item<double>() / std::sqrt(double(n))));
  }
  CHECK(worst > 10.0);
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

TEST_CASE("conditional base: the fit recovers the regression, the covariance and the experts") {
  const auto mask = bool_mask({1, 1, 0, 1});
  // (a) One expert (shared form): truth with expert 0's regression for both components.
  const auto one_block = shared_block();
  CHECK(one_block.shared());
  BaseDensity truth_one(mask);
  truth_one.set_conditional(one_block);
  const std::int64_t n = 20000;
  const auto y = truth_one.sample(n, 77);
  const auto fit = ConditionalGaussian::fit(y, mask, {0, 1}, {0, 1}, 1, 4);
  CHECK(fit.shared());
  // Least-squares coefficients: se(B̂_fk) = σ_k √[(FᵀF)⁻¹]_ff with σ_k² = Σ_kk (residual
  // variance of output k); all 18 within 4 standard errors.
  const auto F = one_block.features(y);
  const auto inv_gram = torch::linalg::inv(torch::matmul(F.t(), F));
  const auto sigma = (one_block.chol()[0] * one_block.chol()[0]).sum(1).sqrt();
  const auto se = torch::sqrt(inv_gram.diagonal()).unsqueeze(1) * sigma.unsqueeze(0);
  CHECK(((fit.coef()[0] - one_block.coef()[0]).abs() < 4.0 * se).all().item<bool>());
  // Residual covariance: se(Σ̂_kk) = Σ_kk √(2/n).
  const auto cov_fit = torch::matmul(fit.chol()[0], fit.chol()[0].t());
  const auto cov_true = torch::matmul(one_block.chol()[0], one_block.chol()[0].t());
  for (int k = 0; k < 2; ++k)
    CHECK(std::abs(cov_fit[k][k].item<double>() - cov_true[k][k].item<double>()) <
          4.0 * cov_true[k][k].item<double>() * std::sqrt(2.0 / double(n)));
  // Joint mixture: BIC picks the two components; weights within 4·√(w(1−w)/n).
  REQUIRE(fit.components() == 2);
  const double w_big = fit.joint_weight().max().item<double>();
  CHECK(std::abs(w_big - 0.7) < 4.0 * std::sqrt(0.21 / double(n)));

  // (b) Two experts: the truth of example_block(). KL(truth ‖ fit) on fresh draws, estimated by
  // the mean log-ratio (≥ 0 up to 4 s.e.), is small with experts and clearly larger when one
  // regression is forced on both components.
  const auto truth = example_base();
  const auto y2 = truth.sample(n, 79);
  const auto fresh = truth.sample(20000, 80);
  auto kl_of = [&](const ConditionalGaussian& block) {
    BaseDensity fitted(mask);
    fitted.set_conditional(block);
    const auto d = truth.log_prob(fresh) - fitted.log_prob(fresh);
    return std::make_pair(d.mean().item<double>(), d.std().item<double>() / std::sqrt(20000.0));
  };
  // Shrinkage 0: here the experts differ by 4.5 rad in a periodic column, so the pooled fit is
  // far from both and any prior weight toward it biases them (the shrinkage is for data-poor
  // experts; its limit is checked below).
  const auto experts = ConditionalGaussian::fit(y2, mask, {0, 1}, {0, 1}, 1, 4, true, 500, 0.0);
  const auto shared = ConditionalGaussian::fit(y2, mask, {0, 1}, {0, 1}, 1, 4, false);
  CHECK_FALSE(experts.shared());
  const auto [kl_e, se_e] = kl_of(experts);
  const auto [kl_s, se_s] = kl_of(shared);
  CHECK(kl_e > -4.0 * se_e);
  CHECK(kl_e < 0.01);  // expected ≈ (#parameters)/(2n) ≈ 1e-3 nats
  CHECK(kl_s > kl_e + 0.05);
  // Shrinkage toward the pooled fit: a huge prior weight gives the shared fit's regression
  // and covariance in every expert (to the weight ratio n / ν ≈ 1e-5).
  const auto pooled = ConditionalGaussian::fit(y2, mask, {0, 1}, {0, 1}, 1, 4, true, 3, 1e8);
  for (int k = 0; k < 2; ++k) {
    CHECK(max_abs(pooled.coef()[k] - shared.coef()[0]) < 1e-3);
    CHECK(max_abs(pooled.chol()[k] - shared.chol()[0]) < 1e-3);
  }
  // BaseDensity::fit_conditional with ConditionalBaseOptions: the mixture base of its
  // components, the block of ConditionalGaussian::fit with its settings and the bin correction.
  ConditionalBaseOptions o;
  o.components = 4;
  o.harmonics = 1;
  o.experts = true;
  o.em_iterations = 3;
  o.shrinkage = 2.0;
  o.joint_bins = 12;
  o.joint_defensive = 0.05;
  const BaseDensity base = BaseDensity::fit_conditional(y2, mask, {0, 1}, {0, 1}, o);
  auto block = ConditionalGaussian::fit(y2, mask, {0, 1}, {0, 1}, 1, 4, true, 3, 2.0);
  block.fit_joint_correction(y2, 12, 0.05);
  BaseDensity expected = BaseDensity::fit_mixture(y2, mask, 4, 1);
  expected.set_conditional(block);
  CHECK(base.conditional()->correction_bins() == 12);
  CHECK(max_abs(base.log_prob(fresh) - expected.log_prob(fresh)) == 0.0);
  CHECK(torch::equal(base.sample(200, 5), expected.sample(200, 5)));
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
  bad["conditional"]["chol"][0][0][1] = 0.3;
  try {
    BaseDensity::from_json(bad, "model.base");
    FAIL("upper-triangular entry accepted");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("model.base.conditional") != std::string::npos);
    CHECK(std::string(e.what()).find("lower triangular") != std::string::npos);
  }
  // wide_torsions: circular sd √(−2 log R̄) above the threshold, plus the forced columns (on
  // draws of the shared form, where column 3 is one narrow mode).
  BaseDensity one(bool_mask({1, 1, 0, 1}));
  one.set_conditional(shared_block());
  const auto y = one.sample(20000, 1);
  const auto wide = BaseDensity::wide_torsions(y, bool_mask({1, 1, 0, 1}), 0.5);
  CHECK(wide == std::vector<std::int64_t>{0, 1});  // column 3 (sd ≈ 0.19) is hard, 2 is not periodic
  CHECK(BaseDensity::wide_torsions(y, bool_mask({1, 1, 0, 1}), 0.5, {3}) == std::vector<std::int64_t>{0, 1, 3});
  // A hard periodic column wider than 0.5 rad is refused (the wrapped-Gaussian bound).
  auto wide_y = y.clone();
  wide_y.select(1, 3).copy_(torch::rand({20000}, f64()) * 2.0 * kPi - kPi);
  CHECK_THROWS_WITH_AS(ConditionalGaussian::fit(wide_y, bool_mask({1, 1, 0, 1}), {0, 1}, {0, 1}, 1, 2, true),
                       doctest::Contains("make it a soft column"), DomainError);
  // A soft column must be periodic; a joint group needs two columns.
  CHECK_THROWS_AS(ConditionalGaussian::fit(y, bool_mask({1, 1, 0, 1}), {0, 2}, {}, 1, 2), DomainError);
  CHECK_THROWS_AS(ConditionalGaussian::fit(y, bool_mask({1, 1, 0, 1}), {0, 1}, {0}, 1, 2), DomainError);
  // The experts need at least one M-step.
  CHECK_THROWS_WITH_AS(ConditionalGaussian::fit(y, bool_mask({1, 1, 0, 1}), {0, 1}, {0, 1}, 1, 2, true, 0),
                       doctest::Contains("em_iterations must be >= 1"), DomainError);
}

namespace {

// Target bin masses for the bin correction of example_block() on an n × n grid: the mixture's
// own masses m_b reweighted by exp(0.8 sin φ_b + 0.5 cos 2ψ_b) (bin centres) and normalized.
torch::Tensor reweighted_masses(const ConditionalGaussian& block, int n) {
  const auto m = block.joint_bin_masses(n).reshape({n, n});
  const auto centre = (torch::arange(n, f64()) + 0.5) * (2.0 * kPi / n) - kPi;
  const auto tilt = torch::exp(0.8 * torch::sin(centre).unsqueeze(1) + 0.5 * torch::cos(2.0 * centre).unsqueeze(0));
  const auto p = m * tilt;
  return (p / p.sum()).reshape({-1});
}

// ∫ over each of the n × n bins of exp(f(φ, ψ)) by the midpoint rule on a grid of `per_bin`²
// points per bin, Richardson-extrapolated from per_bin and 2·per_bin (error O(h⁴)).
torch::Tensor bin_integrals(const std::function<torch::Tensor(const torch::Tensor&)>& log_density, int n, int per_bin) {
  auto midpoint = [&](int q) {
    const int g = n * q;
    const auto t = (torch::arange(g, f64()) + 0.5) * (2.0 * kPi / g) - kPi;
    const auto tt = torch::stack(torch::meshgrid({t, t}, "ij"), -1).reshape({-1, 2});
    auto y = torch::zeros({tt.size(0), 4}, f64());
    y.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, 2)}, tt);
    const auto v = torch::exp(log_density(y)).reshape({n, q, n, q}).sum({1, 3});
    return (v * std::pow(2.0 * kPi / g, 2)).reshape({-1});
  };
  return (4.0 * midpoint(2 * per_bin) - midpoint(per_bin)) / 3.0;
}

}  // namespace

TEST_CASE("conditional base: the bin correction of the joint pair is normalized, has the target bin masses, "
          "keeps the hard block, and its draws follow it") {
  const int n = 8;
  const auto plain = example_block();
  auto block = example_block();
  const auto p = reweighted_masses(block, n);
  block.set_joint_correction(n, p);
  CHECK(block.correction_bins() == n);
  // The quadrature of joint_bin_masses against an independent one (midpoint, extrapolated).
  const auto m = plain.joint_bin_masses(n);
  auto joint_plain = [&](const torch::Tensor& y) { return torch::logsumexp(plain.log_prob_joint_components(y), 0); };
  CHECK(max_abs(bin_integrals(joint_plain, n, 60) - m) < 1e-9);
  CHECK(std::abs(m.sum().item<double>() - 1.0) < 1e-10);
  // The corrected joint density c_b · Σ_k w_k vM_k integrates to p_b over every bin, hence to 1.
  auto joint_corrected = [&](const torch::Tensor& y) { return joint_plain(y) + block.log_correction(y); };
  CHECK(max_abs(bin_integrals(joint_corrected, n, 60) - p) < 1e-9);
  // The block density is the plain one plus log c_b of the point's bin: the hard block given
  // (φ, ψ) is untouched. Periodic in φ, ψ (bins of the wrapped angles).
  BaseDensity plain_base(bool_mask({1, 1, 0, 1})), base(bool_mask({1, 1, 0, 1}));
  plain_base.set_conditional(plain);
  base.set_conditional(block);
  const auto y = plain_base.sample(2000, 31);
  const auto lc = block.log_correction(y);
  CHECK(max_abs(base.log_prob(y) - plain_base.log_prob(y) - lc) < 1e-12);
  auto shifted = y.clone();
  shifted.select(1, 0).add_(2.0 * kPi);
  shifted.select(1, 1).sub_(4.0 * kPi);
  CHECK(max_abs(base.log_prob(shifted) - base.log_prob(y)) < 1e-9);
  CHECK(lc.abs().max().item<double>() > 0.3);  // the correction is not trivial

  // Draws: bin counts against p (Pearson X² with n² − 1 = 63 degrees of freedom: mean 63,
  // sd 11.2; the bound 63 + 5 sd). The uncorrected sampler fails the same test (power).
  const std::int64_t draws = 40000;
  auto pearson = [&](const torch::Tensor& d) {
    const auto bin_of = [&](int c) {
      return torch::clamp(torch::floor((d.select(1, c) + kPi) / (2.0 * kPi) * n), 0, n - 1).to(torch::kLong);
    };
    const auto counts = torch::bincount(bin_of(0) * n + bin_of(1), {}, n * n).to(torch::kDouble);
    const auto expected = p * static_cast<double>(draws);
    return ((counts - expected).square() / expected).sum().item<double>();
  };
  const auto yc = base.sample(draws, 2025);
  CHECK(pearson(yc) < 63.0 + 5.0 * 11.2);
  CHECK(pearson(plain_base.sample(draws, 2025)) > 300.0);
  // Given (φ, ψ) the hard columns follow the experts with their responsibilities: the score
  // identities of the hard columns (2, 3) hold for the corrected draws (no boundary in those
  // columns; 4 standard errors).
  auto yg = yc.clone().requires_grad_(true);
  const auto score = torch::autograd::grad({base.log_prob(yg).sum()}, {yg}, {}, true, true)[0];
  for (int c = 2; c < 4; ++c) {
    const auto sc = score.select(1, c);
    const auto stein2 = torch::autograd::grad({sc.sum()}, {yg}, {}, true)[0].select(1, c) + sc * sc;
    INFO("column " << c);
    CHECK(std::abs(sc.mean().item<double>()) < 4.0 * sc.std().item<double>() / std::sqrt(double(draws)));
    CHECK(std::abs(stein2.mean().item<double>()) < 4.0 * stein2.std().item<double>() / std::sqrt(double(draws)));
  }
  // Thread count and batching do not change the (rejection) draws.
  set_num_threads(1);
  const auto one = base.sample(600, 5);
  set_num_threads(2);
  CHECK(torch::equal(one, base.sample(600, 5)));
  CHECK(torch::equal(one.index({torch::indexing::Slice(300, 600)}), base.sample(300, 5, 300)));

  // Fitted from draws of the corrected base: the frequencies are recovered within 4 multinomial
  // standard errors √(p(1 − p)/N) (defensive fraction 1e-6: negligible).
  auto refit = example_block();
  refit.fit_joint_correction(yc, n, 1e-6);
  const auto back = refit.to_json()["joint_correction"]["target_masses"].get<std::vector<double>>();
  const auto p_back = torch::tensor(back, f64());
  CHECK(((p_back - p).abs() < 4.0 * torch::sqrt(p * (1 - p) / double(draws)) + 1e-6).all().item<bool>());
  // Frames piled into the bin of least mixture mass: the ratio is capped at kMaxJointCorrection
  // (renormalized: the others shrink), the block stays normalized, and a larger ratio set by hand
  // is refused (each draw would need that many mixture draws).
  const auto least = m.argmin().item<std::int64_t>();
  auto piled = yc.index({torch::indexing::Slice(0, 1000)}).clone();
  piled.select(1, 0).fill_(-kPi + (static_cast<double>(least / n) + 0.5) * 2.0 * kPi / n);
  piled.select(1, 1).fill_(-kPi + (static_cast<double>(least % n) + 0.5) * 2.0 * kPi / n);
  auto capped = example_block();
  capped.fit_joint_correction(piled, n, 0.01);
  // The piled bin gets exactly the cap; every other bin the same ratio s·0.01 (data-free bins of
  // the defensive mixture, rescaled by one s).
  const auto all = torch::exp(capped.log_correction(yc));
  const auto piled_ratio = torch::exp(capped.log_correction(piled))[0].item<double>();
  CHECK(std::abs(piled_ratio - kMaxJointCorrection) < 1e-9 * kMaxJointCorrection);
  const auto others = all.masked_select(torch::abs(all - piled_ratio) > 1e-6);
  CHECK(others.numel() > 0);
  CHECK((others.max() - others.min()).item<double>() < 1e-12);
  CHECK(others.max().item<double>() > 0.01);  // rescaled up from the defensive fraction (s > 1)
  auto joint_capped = [&](const torch::Tensor& q) { return joint_plain(q) + capped.log_correction(q); };
  CHECK(std::abs(bin_integrals(joint_capped, n, 60).sum().item<double>() - 1.0) < 1e-9);
  auto extreme = m * 1e-3;
  extreme[least] = 0.0;
  extreme[least] = 1.0 - extreme.sum().item<double>();
  CHECK_THROWS_WITH_AS(capped.set_joint_correction(n, extreme), doctest::Contains("mixture draws"), DomainError);
  // JSON round trip of the corrected block: same density and draws.
  BaseDensity again = BaseDensity::from_json(base.to_json(), "model.base");
  CHECK(max_abs(again.log_prob(y) - base.log_prob(y)) < 1e-12);
  CHECK(torch::equal(again.sample(300, 9), base.sample(300, 9)));
  // Refused: a block without a joint pair, one bin, masses that do not sum to 1 or are zero,
  // a defensive fraction of 0; a corrupted JSON names its field.
  CHECK_THROWS_WITH_AS(block.set_joint_correction(1, torch::ones({1}, f64())), doctest::Contains(">= 2 bins"), DomainError);
  CHECK_THROWS_WITH_AS(block.set_joint_correction(n, p * 1.01), doctest::Contains("sum to 1"), DomainError);
  auto with_zero = p.clone();
  with_zero[0] = 0.0;
  CHECK_THROWS_AS(block.set_joint_correction(n, with_zero / with_zero.sum()), DomainError);
  CHECK_THROWS_WITH_AS(refit.fit_joint_correction(yc, n, 0.0), doctest::Contains("defensive"), DomainError);
  const auto no_joint = ConditionalGaussian::fit(yc, bool_mask({1, 1, 0, 1}), {0, 1}, {}, 1, 1);
  CHECK_THROWS_WITH_AS(no_joint.joint_bin_masses(n), doctest::Contains("joint pair"), DomainError);
  auto bad = base.to_json();
  bad["conditional"]["joint_correction"]["target_masses"][3] = -0.1;
  CHECK_THROWS_WITH_AS(BaseDensity::from_json(bad, "model.base"), doctest::Contains("model.base.conditional"), ConfigError);
}
