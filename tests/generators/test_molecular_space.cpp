// Tests for lib/boltzlab/generators/molecular_space.*: the normalization layer, the
// base densities (von Mises, mixtures, Gaussian-mixture columns), their typed options and
// registry (base_options.hpp, base_registry.hpp) and the molecular
// flow space (log q bookkeeping, centre-of-mass-free normalization).
#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <string>

#include "support/torch_doctest.hpp"  // torch first: its CHECK macro must not shadow doctest's

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/generators/base_registry.hpp"
#include "boltzlab/generators/molecular_space.hpp"
#include "boltzlab/io/npy.hpp"
#include "support/internal_coordinates_support.hpp"
#include "boltzlab/molecules/dihedrals.hpp"
#include "boltzlab/targets/registry.hpp"

using namespace boltzlab;
using namespace boltzlab::generators;
using namespace boltzlab::test;

TEST_CASE("internal coordinates: normalization standardizes bonds/angles, rotates torsions, exact log-det") {
  const auto ic = alanine_ic();
  const auto z = ic.to_internal(perturbed_alanine(200, 0.05, 21)).first;
  const auto norm = InternalNormalization::fit(z, ic.torsion_mask());
  const auto [y, ld] = norm.forward(z);
  const auto mask = ic.torsion_mask();
  const auto y_np = y.index({torch::indexing::Slice(), ~mask});
  CHECK(max_abs(y_np.mean(0)) < 1e-10);
  CHECK(max_abs(y_np.std(0) - 1.0) < 1e-10);
  const auto y_t = y.index({torch::indexing::Slice(), mask});
  CHECK(y_t.min().item<double>() >= -kPi);
  CHECK(y_t.max().item<double>() < kPi);
  // The circular mean of the rotated torsions is 0.
  CHECK(max_abs(torch::atan2(torch::sin(y_t).mean(0), torch::cos(y_t).mean(0))) < 1e-10);
  const auto [z_back, ld_back] = norm.inverse(y);
  CHECK(max_abs(circular_difference(z_back, z)) < 1e-10);
  CHECK(max_abs(ld + ld_back) < 1e-12);
  // log-det vs the autograd Jacobian of the forward map at one sample.
  auto fwd = [&](const torch::Tensor& p) { return norm.forward(p.unsqueeze(0)).first[0]; };
  CHECK(std::abs(logabsdet(autograd_jacobian(fwd, z[0])) - ld[0].item<double>()) < 1e-9);
  // JSON round trip.
  const auto again = InternalNormalization::from_json(norm.to_json(), "norm");
  CHECK(max_abs(again.forward(z).first - y) == 0.0);
  check_config_error([&] { InternalNormalization::from_json(Json{{"mean", {0.0}}, {"std", {-1.0}},
                                                                 {"torsion_mask", {false}}}, "norm.json"); },
                     "std must be finite and > 0");
}

TEST_CASE("internal coordinates: base density normalizes and von Mises samples have the right moments") {
  // m = 2: one Gaussian coordinate and one von Mises torsion (μ = 1, κ = 2).
  const auto mask = torch::tensor({0, 1}, torch::TensorOptions().dtype(torch::kLong)).to(torch::kBool);
  const BaseDensity vm(mask, torch::tensor({0.0, 1.0}, f64()), torch::tensor({0.0, 2.0}, f64()));
  const BaseDensity uni(mask);
  // ∫∫ p = 1 by the midpoint rule: spectrally accurate on the circle, and the Gaussian
  // tail beyond ±12 is < 1e-30.
  const int ng = 2400, nt = 400;
  auto g = (torch::arange(ng, f64()) + 0.5) * (24.0 / ng) - 12.0;
  auto t = (torch::arange(nt, f64()) + 0.5) * (2.0 * kPi / nt) - kPi;
  auto grid = torch::stack(torch::meshgrid({g, t}, "ij"), -1).reshape({-1, 2});
  const double cell = (24.0 / ng) * (2.0 * kPi / nt);
  CHECK(std::abs(torch::exp(vm.log_prob(grid)).sum().item<double>() * cell - 1.0) < 1e-10);
  CHECK(std::abs(torch::exp(uni.log_prob(grid)).sum().item<double>() * cell - 1.0) < 1e-10);

  // Sampling: E cos(τ − μ) = I1(κ)/I0(κ) and Var cos(τ − μ) = (1 + I2/I0)/2 − (I1/I0)²;
  // the sample mean over n draws must lie within 4 standard errors (fails by chance with
  // probability 6e-5 for a fixed seed; it is deterministic here).
  const std::int64_t n = 40000;
  const auto s = vm.sample(n, 1234);
  const double i0 = std::cyl_bessel_i(0.0, 2.0), i1 = std::cyl_bessel_i(1.0, 2.0), i2 = std::cyl_bessel_i(2.0, 2.0);
  const double mean_cos = i1 / i0, var_cos = 0.5 * (1.0 + i2 / i0) - mean_cos * mean_cos;
  const auto c = torch::cos(s.select(1, 1) - 1.0);
  CHECK(std::abs(c.mean().item<double>() - mean_cos) < 4.0 * std::sqrt(var_cos / n));
  // E sin(τ − μ) = 0 with Var = 1 − E cos² = (1 − I2/I0)/2.
  CHECK(std::abs(torch::sin(s.select(1, 1) - 1.0).mean().item<double>()) < 4.0 * std::sqrt(0.5 * (1 - i2 / i0) / n));
  // Gaussian coordinate: mean 0 (SE 1/√n), variance 1 (SE √(2/n)).
  CHECK(std::abs(s.select(1, 0).mean().item<double>()) < 4.0 / std::sqrt(double(n)));
  CHECK(std::abs(s.select(1, 0).var().item<double>() - 1.0) < 4.0 * std::sqrt(2.0 / n));
  CHECK(s.select(1, 1).min().item<double>() >= -kPi);
  CHECK(s.select(1, 1).max().item<double>() < kPi);
  // Streams are tied to the sample index: the thread count does not change the draws.
  set_num_threads(1);
  const auto s1 = vm.sample(1000, 99);
  set_num_threads(2);
  const auto s2 = vm.sample(1000, 99);
  CHECK(torch::equal(s1, s2));
  const auto su = uni.sample(n, 5).select(1, 1);
  CHECK(std::abs(su.mean().item<double>()) < 4.0 * kPi / std::sqrt(3.0 * n));  // Var U(−π, π) = π²/3
}

TEST_CASE("internal coordinates: the centre-of-mass-free density integrates to one") {
  // A triatomic (n = 3, no Z-matrix rows): q_int = independent Gaussians on (r1, r2, θ)
  // (mass outside r > 0, θ ∈ (0, π) below 1e-6). The induced density on the 6-dimensional
  // centre-of-mass-free subspace, q_cf = q_int · exp(logdet_forward + offset), must
  // integrate to one. Importance sampling from g = isotropic Gaussian on that subspace
  // (centred iid N(0, σ²) in ℝ⁹, density (2πσ²)^{−3} exp(−|y|²/2σ²)): mean of q_cf/g = 1
  // within 4 standard errors estimated from the same draws. A wrong constant (8π² vs
  // 4π², n^{3/2} vs n) changes the mean by a factor ≥ 1.7.
  ZMatrix zm;
  zm.n_atoms = 3;
  zm.anchors = {0, 1, 2};
  const InternalCoordinates ic(zm);
  const std::int64_t n = 200000;
  const double sigma = 0.55;
  torch::manual_seed(17);
  auto x = sigma * torch::randn({n, 9}, f64());
  auto y = (x.view({n, 3, 3}) - x.view({n, 3, 3}).mean(1, true)).reshape({n, 9});
  const auto log_g = -3.0 * std::log(2.0 * kPi * sigma * sigma) - 0.5 * (y * y).sum(1) / (sigma * sigma);
  const auto [z, ld] = ic.to_internal(y);
  const auto mean = torch::tensor({1.0, 1.0, 1.6}, f64());
  const auto sd = torch::tensor({0.2, 0.2, 0.3}, f64());
  const auto log_q_int = (-0.5 * ((z - mean) / sd).pow(2) - 0.5 * std::log(2.0 * kPi) - torch::log(sd)).sum(1);
  const auto ratio = torch::exp(log_q_int + ld + ic.com_free_log_density_offset() - log_g);
  const double est = ratio.mean().item<double>();
  const double se = ratio.std().item<double>() / std::sqrt(double(n));
  INFO("integral " << est << " +- " << se);
  CHECK(se < 0.05);
  CHECK(std::abs(est - 1.0) < 4.0 * se);
}

TEST_CASE("internal coordinates: molecular flow space round trip, log q bookkeeping and log weights") {
  const auto ic = alanine_ic();
  const auto data = perturbed_alanine(100, 0.04, 31);
  const auto space = MolecularFlowSpace::fit(ic, data);
  CHECK(space.dim() == 60);
  const auto x = perturbed_alanine(8, 0.04, 32);
  const auto [y, ld_to] = space.to_flow(x);
  const auto d = space.from_flow(y);
  CHECK(max_abs(d.cartesian - ic.standard_orientation(x)) < 1e-10);
  CHECK(max_abs(d.logdet + ld_to) < 1e-10);
  CHECK(d.valid.all().item<bool>());
  CHECK(d.chirality_ok.all().item<bool>());
  // Both directions give the same Cartesian density for the same points.
  const BaseDensity base(space.torsion_mask());
  const auto log_q_y = base.log_prob(y);
  const auto from_data = log_q_y + ld_to + ic.com_free_log_density_offset();
  CHECK(max_abs(space.log_q_cartesian(log_q_y, d) - from_data) < 1e-10);
  // log w = −u − log q_cf; −∞ outside the domain, for the wrong enantiomer, for u = +∞.
  auto u = torch::linspace(-5.0, 5.0, 8, f64());
  auto log_w = space.log_weights(u, log_q_y, d);
  CHECK(max_abs(log_w + u + from_data) < 1e-10);
  auto y_bad = y.clone();
  y_bad.index_put_({1, 0}, -1e6);  // bond a1 far below zero
  const auto cb = ic.torsion_column_of_atom(10), ha = ic.torsion_column_of_atom(9);
  y_bad.index_put_({2, cb}, y[2][ha] + (space.normalization().mean()[ha] - space.normalization().mean()[cb]));
  y_bad.index_put_({2, ha}, y[2][cb] + (space.normalization().mean()[cb] - space.normalization().mean()[ha]));
  u.index_put_({3}, std::numeric_limits<double>::infinity());
  const auto d_bad = space.from_flow(y_bad);
  CHECK_FALSE(d_bad.valid[1].item<bool>());
  CHECK_FALSE(d_bad.chirality_ok[2].item<bool>());
  log_w = space.log_weights(u, base.log_prob(y_bad), d_bad);
  const auto finite = torch::isfinite(log_w);
  CHECK_FALSE(finite[1].item<bool>());
  CHECK_FALSE(finite[2].item<bool>());
  CHECK_FALSE(finite[3].item<bool>());
  CHECK(finite.sum().item<std::int64_t>() == 5);
  CHECK(torch::isfinite(space.log_weights(u, base.log_prob(y_bad), d_bad, false))[2].item<bool>());
  // Saved with a model and loaded again: the same map.
  const auto again = MolecularFlowSpace::from_json(space.to_json(), "model.json");
  CHECK(max_abs(again.to_flow(x).first - y) == 0.0);
  auto broken = space.to_json();
  broken["normalization"]["mean"].erase(0);
  CHECK_THROWS_AS(MolecularFlowSpace::from_json(broken, "model.json"), ConfigError);
}

TEST_CASE("internal coordinates: von Mises base fitted by maximum likelihood recovers the concentration") {
  // Draw from von Mises (κ = 2, μ = 1) and (κ = 150, μ = −3, next to the cut), refit.
  // The MLE κ̂ has asymptotic variance 1/(n A'(κ)), A'(κ) = 1 − A/κ − A², A = I₁/I₀;
  // μ̂ has variance 1/(n κ A). Accept within 4 standard errors.
  const auto mask = torch::tensor({0, 1, 1}, torch::TensorOptions().dtype(torch::kLong)).to(torch::kBool);
  const BaseDensity truth(mask, torch::tensor({0.0, 1.0, -3.0}, f64()), torch::tensor({0.0, 2.0, 150.0}, f64()));
  const std::int64_t n = 20000;
  const auto s = truth.sample(n, 77);
  const auto fit = BaseDensity::fit_von_mises(s, mask);
  CHECK(fit.von_mises());
  const double kappas[2] = {2.0, 150.0}, mus[2] = {1.0, -3.0};
  for (int q = 0; q < 2; ++q) {
    const double k = kappas[q];
    const double a = std::cyl_bessel_i(1.0, k) / std::cyl_bessel_i(0.0, k);
    const double se_kappa = std::sqrt(1.0 / (n * (1.0 - a / k - a * a)));
    const double se_mu = std::sqrt(1.0 / (n * k * a));
    INFO("kappa " << fit.kappa()[q + 1].item<double>() << " (se " << se_kappa << "), mu " << fit.mu()[q + 1].item<double>());
    CHECK(std::abs(fit.kappa()[q + 1].item<double>() - k) < 4.0 * se_kappa);
    CHECK(std::abs(circular_difference(fit.mu()[q + 1], torch::tensor(mus[q], f64())).item<double>()) < 4.0 * se_mu);
  }
  CHECK(fit.kappa()[0].item<double>() == 0.0);  // the Gaussian column is untouched
  // The fitted base has a higher average log-likelihood on fresh draws than the uniform one.
  const auto fresh = truth.sample(2000, 78);
  CHECK(fit.log_prob(fresh).mean().item<double>() > BaseDensity(mask).log_prob(fresh).mean().item<double>() + 1.0);
}

TEST_CASE("internal coordinates: von Mises mixture base — normalization, moments, gradient, K = 1 compatibility") {
  // m = 2: one Gaussian coordinate and one torsion with a 3-component mixture.
  const auto mask = torch::tensor({0, 1}, torch::TensorOptions().dtype(torch::kLong)).to(torch::kBool);
  const auto mu = torch::tensor({{0.0, -2.0}, {0.0, 0.3}, {0.0, 2.4}}, f64());
  const auto kappa = torch::tensor({{0.0, 6.0}, {0.0, 25.0}, {0.0, 0.5}}, f64());
  const auto weight = torch::tensor({{1.0, 0.5}, {0.0, 0.3}, {0.0, 0.2}}, f64());
  const BaseDensity mix(mask, mu, kappa, weight);
  CHECK(mix.kind() == "von_mises_mixture");
  CHECK(mix.components() == 3);
  CHECK(mix.components_per_column() == std::vector<int>{1, 3});
  // ∫∫ p = 1 by the midpoint rule (spectrally accurate on the circle; κ = 25 is resolved
  // by 400 points: its width 0.2 rad spans 13 cells).
  const int ng = 2400, nt = 400;
  auto g = (torch::arange(ng, f64()) + 0.5) * (24.0 / ng) - 12.0;
  auto t = (torch::arange(nt, f64()) + 0.5) * (2.0 * kPi / nt) - kPi;
  auto grid = torch::stack(torch::meshgrid({g, t}, "ij"), -1).reshape({-1, 2});
  const double cell = (24.0 / ng) * (2.0 * kPi / nt);
  CHECK(std::abs(torch::exp(mix.log_prob(grid)).sum().item<double>() * cell - 1.0) < 1e-10);
  // Periodic: log p(τ + 2π) = log p(τ).
  const auto probe = torch::tensor({{0.3, 1.1}, {-0.7, -3.0}}, f64());
  auto shifted = probe.clone();
  shifted.select(1, 1).add_(2.0 * kPi);
  CHECK(max_abs(mix.log_prob(probe) - mix.log_prob(shifted)) < 1e-12);

  // Trigonometric moments of the draws: E e^{iτ} = Σ_k w_k A(κ_k) e^{iμ_k}, A = I₁/I₀.
  // Each sample mean lies within 4 standard errors (Var cos τ ≤ E cos² τ ≤ 1, estimated
  // from the draws); deterministic for the fixed seed.
  const std::int64_t n = 40000;
  const auto s = mix.sample(n, 4321).select(1, 1);
  double ec = 0.0, es = 0.0;
  const double w[3] = {0.5, 0.3, 0.2}, m[3] = {-2.0, 0.3, 2.4}, k[3] = {6.0, 25.0, 0.5};
  for (int j = 0; j < 3; ++j) {
    const double a = std::cyl_bessel_i(1.0, k[j]) / std::cyl_bessel_i(0.0, k[j]);
    ec += w[j] * a * std::cos(m[j]);
    es += w[j] * a * std::sin(m[j]);
  }
  const auto cs = torch::cos(s), sn = torch::sin(s);
  CHECK(std::abs(cs.mean().item<double>() - ec) < 4.0 * cs.std().item<double>() / std::sqrt(double(n)));
  CHECK(std::abs(sn.mean().item<double>() - es) < 4.0 * sn.std().item<double>() / std::sqrt(double(n)));
  CHECK(s.min().item<double>() >= -kPi);
  CHECK(s.max().item<double>() < kPi);
  // Thread-count independence.
  set_num_threads(1);
  const auto s1 = mix.sample(1000, 99);
  set_num_threads(2);
  CHECK(torch::equal(s1, mix.sample(1000, 99)));

  // d log p / dy by autograd vs central differences (the forward KL differentiates it).
  auto y = torch::tensor({{0.4, -2.5}, {-1.2, 0.9}, {2.0, 3.1}}, f64()).requires_grad_(true);
  const auto grad = torch::autograd::grad({mix.log_prob(y).sum()}, {y})[0];
  const double h = 1e-6;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 2; ++c) {
      auto yp = y.detach().clone(), ym = y.detach().clone();
      yp[r][c] += h;
      ym[r][c] -= h;
      const double fd = (mix.log_prob(yp).sum().item<double>() - mix.log_prob(ym).sum().item<double>()) / (2 * h);
      CHECK(std::abs(grad[r][c].item<double>() - fd) < 1e-7);
    }
  }

  // K = 1 through the mixture constructor is the plain von Mises base: same density, same draws.
  const BaseDensity vm(mask, torch::tensor({0.0, 1.0}, f64()), torch::tensor({0.0, 2.0}, f64()));
  const BaseDensity vm1(mask, torch::tensor({{0.0, 1.0}}, f64()), torch::tensor({{0.0, 2.0}}, f64()),
                        torch::tensor({{1.0, 1.0}}, f64()));
  CHECK(vm1.kind() == "von_mises");
  CHECK(torch::equal(vm.sample(500, 8), vm1.sample(500, 8)));
  CHECK(max_abs(vm.log_prob(grid) - vm1.log_prob(grid)) == 0.0);

  // JSON round trip; bad weights are refused with a clear message.
  const auto again = BaseDensity::from_json(mix.to_json(), "model.base");
  CHECK(max_abs(again.log_prob(grid) - mix.log_prob(grid)) == 0.0);
  CHECK(torch::equal(again.sample(300, 3), mix.sample(300, 3)));
  auto bad = mix.to_json();
  bad["mixture"]["weight"][0][1] = 0.9;
  check_config_error([&] { BaseDensity::from_json(bad, "model.base"); }, "weights must be >= 0 and sum to 1");
}

TEST_CASE("internal coordinates: von Mises mixture fitted by EM recovers the components, BIC picks K") {
  // Truth: a three-fold rotor-like torsion (w 0.5/0.3/0.2, κ 20/30/15, means 2π/3 apart
  // up to shifts) and a single von Mises torsion; n = 20000 draws.
  const auto mask = torch::tensor({1, 0, 1}, torch::TensorOptions().dtype(torch::kLong)).to(torch::kBool);
  const double w[3] = {0.5, 0.3, 0.2}, m[3] = {-2.1, 0.1, 2.2}, k[3] = {20.0, 30.0, 15.0};
  const BaseDensity truth(mask, torch::tensor({{m[0], 0.0, 1.0}, {m[1], 0.0, 1.0}, {m[2], 0.0, 1.0}}, f64()),
                          torch::tensor({{k[0], 0.0, 3.0}, {k[1], 0.0, 3.0}, {k[2], 0.0, 3.0}}, f64()),
                          torch::tensor({{w[0], 1.0, 1.0}, {w[1], 0.0, 0.0}, {w[2], 0.0, 0.0}}, f64()));
  const std::int64_t n = 20000;
  const auto data = truth.sample(n, 2024);
  const auto fit = BaseDensity::fit_von_mises_mixture(data, mask, 4);
  CHECK(fit.components_per_column() == std::vector<int>{3, 1, 1});
  // Components come sorted by weight. The modes are separated by > 10 widths, so each is
  // estimated as from its own n_k = w_k n draws: se(ŵ) = √(w(1−w)/n), se(μ̂) = 1/√(n_k κ A),
  // se(κ̂) = 1/√(n_k A'(κ)), A'(κ) = 1 − A/κ − A². Accept 4 standard errors.
  for (int j = 0; j < 3; ++j) {
    const double nk = w[j] * n;
    const double a = std::cyl_bessel_i(1.0, k[j]) / std::cyl_bessel_i(0.0, k[j]);
    const double wj = fit.mixture_weight()[j][0].item<double>();
    const double mj = fit.mixture_mu()[j][0].item<double>();
    const double kj = fit.mixture_kappa()[j][0].item<double>();
    INFO("component " << j << ": w " << wj << " mu " << mj << " kappa " << kj);
    CHECK(std::abs(wj - w[j]) < 4.0 * std::sqrt(w[j] * (1 - w[j]) / n));
    CHECK(std::abs(circular_difference(torch::tensor(mj, f64()), torch::tensor(m[j], f64())).item<double>()) <
          4.0 / std::sqrt(nk * k[j] * a));
    CHECK(std::abs(kj - k[j]) < 4.0 / std::sqrt(nk * (1.0 - a / k[j] - a * a)));
  }
  // The unimodal torsion: K = 1 by BIC, equal to the single von Mises fit.
  const auto single = BaseDensity::fit_von_mises(data, mask);
  CHECK(std::abs(fit.mixture_kappa()[0][2].item<double>() - single.kappa()[2].item<double>()) < 1e-8);
  CHECK(std::abs(fit.mixture_mu()[0][2].item<double>() - single.mu()[2].item<double>()) < 1e-10);
  // The Gaussian column is untouched, and the mixture beats the single von Mises on fresh draws
  // (for this truth the difference in mean log-likelihood is ≈ 1 nat).
  CHECK(fit.mixture_weight()[0][1].item<double>() == 1.0);
  const auto fresh = truth.sample(4000, 2025);
  CHECK(fit.log_prob(fresh).mean().item<double>() > single.log_prob(fresh).mean().item<double>() + 0.5);
  CHECK_THROWS_AS(BaseDensity::fit_von_mises_mixture(data, mask, 0), DomainError);
}

TEST_CASE("internal coordinates: Gaussian-mixture base columns — normalization, moments, EM recovery") {
  // m = 3: a Gaussian-mixture column, a torsion (von Mises κ = 2), a single Gaussian column.
  const auto mask = torch::tensor({0, 1, 0}, torch::TensorOptions().dtype(torch::kLong)).to(torch::kBool);
  const double w[2] = {0.3, 0.7}, m[2] = {-2.0, 1.5}, sd[2] = {0.4, 0.8};
  const BaseDensity truth(mask, torch::tensor({{m[0], 1.0, 0.2}, {m[1], 0.0, 0.0}}, f64()),
                          torch::tensor({{0.0, 2.0, 0.0}, {0.0, 0.0, 0.0}}, f64()),
                          torch::tensor({{w[0], 1.0, 1.0}, {w[1], 0.0, 0.0}}, f64()),
                          torch::tensor({{sd[0], 1.0, 1.3}, {sd[1], 1.0, 1.0}}, f64()));
  CHECK(truth.gaussian_mixture());
  CHECK(truth.kind() == "von_mises+gaussian_mixture");
  // ∫ p = 1 over the first two columns (midpoint rule, ±12 covers all but < 1e-30 of the
  // mass) with the third column fixed and its N(0.2, 1.3²) density divided out.
  const int ng = 2400, nt = 200;
  auto g = (torch::arange(ng, f64()) + 0.5) * (24.0 / ng) - 12.0;
  auto t = (torch::arange(nt, f64()) + 0.5) * (2.0 * kPi / nt) - kPi;
  auto grid2 = torch::stack(torch::meshgrid({g, t}, "ij"), -1).reshape({-1, 2});
  auto grid = torch::cat({grid2, torch::full({grid2.size(0), 1}, 0.7, f64())}, 1);
  const double log_n3 = -0.5 * std::pow((0.7 - 0.2) / 1.3, 2) - std::log(1.3) - 0.5 * std::log(2 * kPi);
  const double cell = (24.0 / ng) * (2.0 * kPi / nt);
  CHECK(std::abs(torch::exp(truth.log_prob(grid) - log_n3).sum().item<double>() * cell - 1.0) < 1e-10);

  // Moments of the draws: mean Σ w μ and variance Σ w (s² + μ²) − mean², within 4 standard
  // errors (se of the mean √(Var/n); of the variance √((μ₄ − Var²)/n), μ₄ from the draws).
  const std::int64_t n = 20000;
  const auto draws = truth.sample(n, 606);
  const auto x0 = draws.select(1, 0);
  double mean = 0.0, second = 0.0;
  for (int j = 0; j < 2; ++j) {
    mean += w[j] * m[j];
    second += w[j] * (sd[j] * sd[j] + m[j] * m[j]);
  }
  const double var = second - mean * mean;
  const auto centred = x0 - x0.mean();
  const double mu4 = centred.pow(4).mean().item<double>();
  CHECK(std::abs(x0.mean().item<double>() - mean) < 4.0 * std::sqrt(var / n));
  CHECK(std::abs(x0.var().item<double>() - var) < 4.0 * std::sqrt((mu4 - var * var) / n));
  const auto x2 = draws.select(1, 2);
  CHECK(std::abs(x2.mean().item<double>() - 0.2) < 4.0 * 1.3 / std::sqrt(double(n)));

  // EM + BIC on the draws: two components on column 0, one on column 2, the torsion left
  // alone when torsion_components = 1 (one von Mises). The modes are 3.5 apart (≈ 6 pooled
  // sds), so each is estimated as from its own n_k = w_k n draws: se(ŵ) = √(w(1−w)/n),
  // se(μ̂) = s/√n_k, se(ŝ) = s/√(2 n_k). Accept 4 standard errors.
  const auto fit = BaseDensity::fit_mixture(draws, mask, 1, 4);
  CHECK(fit.components_per_column() == std::vector<int>{2, 1, 1});
  for (int j = 0; j < 2; ++j) {
    const int row = w[j] > 0.5 ? 0 : 1;  // components are sorted by weight
    const double nk = w[j] * n;
    INFO("component " << j);
    CHECK(std::abs(fit.mixture_weight()[row][0].item<double>() - w[j]) < 4.0 * std::sqrt(w[j] * (1 - w[j]) / n));
    CHECK(std::abs(fit.mixture_mu()[row][0].item<double>() - m[j]) < 4.0 * sd[j] / std::sqrt(nk));
    CHECK(std::abs(fit.mixture_sd()[row][0].item<double>() - sd[j]) < 4.0 * sd[j] / std::sqrt(2.0 * nk));
  }
  CHECK(std::abs(fit.mixture_mu()[0][2].item<double>() - 0.2) < 4.0 * 1.3 / std::sqrt(double(n)));
  CHECK(std::abs(fit.mixture_sd()[0][2].item<double>() - 1.3) < 4.0 * 1.3 / std::sqrt(2.0 * n));
  // A defensive component of weight ε = 0.01 per fitted column (the lightest, so last):
  // N(mean, (2 sd)²) on Gaussian columns, uniform on the torsion; weights still sum to 1.
  const auto def = BaseDensity::fit_mixture(draws, mask, 1, 4, 1e3, 0.01);
  CHECK(def.components_per_column() == std::vector<int>{3, 2, 2});
  CHECK(def.mixture_weight()[2][0].item<double>() == doctest::Approx(0.01).epsilon(1e-12));
  CHECK(def.mixture_weight()[1][1].item<double>() == doctest::Approx(0.01).epsilon(1e-12));
  CHECK(def.mixture_kappa()[1][1].item<double>() == 0.0);
  // All 20000 rows enter the fit (≤ 2·10⁴), so the defensive sd is 2·(population sd) to rounding.
  CHECK(def.mixture_sd()[1][2].item<double>() == doctest::Approx(2.0 * x2.std(/*unbiased=*/false).item<double>()).epsilon(1e-10));
  CHECK(max_abs(def.mixture_weight().sum(0) - 1.0) < 1e-12);
  // Defensive bound: log q ≥ log ε + log of the broad density, everywhere (here at a far point).
  const auto far = torch::tensor({{0.0, 0.0, 9.0}}, f64());
  CHECK(def.log_prob(far).item<double>() > fit.log_prob(far).item<double>() + 5.0);
  // gaussian_components = 1 keeps N(0, 1) on the non-periodic columns.
  CHECK_FALSE(BaseDensity::fit_mixture(draws, mask, 3, 1).gaussian_mixture());
  // JSON round trip keeps the Gaussian mixture.
  const auto again = BaseDensity::from_json(fit.to_json(), "model.base");
  CHECK(max_abs(again.log_prob(grid) - fit.log_prob(grid)) == 0.0);
  CHECK(torch::equal(again.sample(200, 7), fit.sample(200, 7)));
}


namespace {

/// read_base_options on a generator section (context "p.json: generator"); the message of a
/// ConfigError, or "" when it reads.
std::string base_error(const Json& section, bool molecular, bool particles = false) {
  try {
    JsonReader r(section, "p.json: generator");
    read_base_options(r, BaseTarget{molecular, particles});
    r.finish();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("base options: registry rows, defaults, typed reading and the generator-section messages") {
  // One row per kind, found by name, each applying to molecules or to the other targets.
  CHECK(base_kinds().size() == 6);
  for (const auto& spec : base_kinds()) {
    CHECK(find_base_kind(spec.name) == &spec);
    CHECK(&base_kind_spec(spec.kind) == &spec);
    CHECK(std::string(base_kind_name(spec.kind)) == spec.name);
    CHECK(kind_of(default_base_options(spec.kind)) == spec.kind);
  }
  CHECK(find_base_kind("gaussian") == nullptr);
  CHECK(default_base_kind(BaseTarget{true, false}) == BaseKind::von_mises);
  CHECK(default_base_kind(BaseTarget{false, false}) == BaseKind::normal);

  // Typed options: only the kind's fields, defaults for the absent keys.
  const Json cond = {{"base", "conditional_gaussian"}, {"base_experts", true}, {"base_components", 8},
                     {"base_em_iterations", 3}, {"base_joint_bins", 36}};
  JsonReader r(cond, "p.json: generator");
  const BaseOptions o = read_base_options(r, BaseTarget{true, false});
  r.finish();
  REQUIRE(kind_of(o) == BaseKind::conditional_gaussian);
  const auto& c = std::get<ConditionalBaseOptions>(o);
  CHECK(c.components == 8);
  CHECK(c.experts);
  CHECK(c.em_iterations == 3);
  CHECK(c.joint_bins == 36);
  CHECK(c.harmonics == 3);
  CHECK(c.shrinkage == 1.0);
  CHECK(c.soft_threshold == 0.5);
  CHECK(c.joint_defensive == 0.01);
  // to_json gives the section back: reading it again gives the same options.
  const Json written = to_json(o);  // JsonReader keeps a reference: no temporaries
  JsonReader again(written, "again");
  const auto back = std::get<ConditionalBaseOptions>(read_base_options(again, BaseTarget{true, false}));
  again.finish();
  CHECK(back.components == c.components);
  CHECK(back.em_iterations == c.em_iterations);
  CHECK(back.joint_bins == c.joint_bins);
  CHECK(back.joint_defensive == c.joint_defensive);
  // Default kinds and a mixture of the other targets.
  const Json empty = Json::object();
  JsonReader none(empty, "none");
  CHECK(kind_of(read_base_options(none, BaseTarget{false, false})) == BaseKind::normal);
  const Json gm_section = {{"base", "gaussian_mixture"}, {"base_defensive", 0.05}};
  JsonReader gm(gm_section, "gm");
  const auto g = std::get<GaussianMixtureBaseOptions>(read_base_options(gm, BaseTarget{false, false}));
  CHECK(g.components == 4);
  CHECK(g.defensive == 0.05);

  // The messages of the generator section, one per misuse, naming the field.
  CHECK(base_error({{"base", "normal"}}, true) ==
        "p.json: generator.base: must be \"von_mises\", \"von_mises_mixture\", \"conditional_gaussian\" or "
        "\"uniform\" for a molecular target");
  CHECK(base_error({{"base", "von_mises"}}, false) ==
        "p.json: generator.base: must be \"normal\" or \"gaussian_mixture\" for this target");
  CHECK(base_error({{"base", "gaussian_mixture"}}, false, true) ==
        "p.json: generator.base: \"gaussian_mixture\" is not available for particle systems");
  CHECK(base_error({{"base", "uniform"}, {"base_components", 3}}, true) ==
        "p.json: generator.base_components: is only used with \"base\": \"von_mises_mixture\", "
        "\"conditional_gaussian\" or \"gaussian_mixture\"");
  CHECK(base_error({{"base", "conditional_gaussian"}, {"base_defensive", 0.1}}, true) ==
        "p.json: generator.base_defensive: is only used with \"base\": \"von_mises_mixture\" or "
        "\"gaussian_mixture\"");
  CHECK(base_error({{"base", "uniform"}, {"base_experts", true}}, true) ==
        "p.json: generator.base_experts: is only used with \"base\": \"conditional_gaussian\"");
  CHECK(base_error({{"base", "conditional_gaussian"}, {"base_shrinkage", 2.0}}, true) ==
        "p.json: generator.base_shrinkage: is only used with \"base_experts\": true");
  CHECK(base_error({{"base", "von_mises"}, {"base_em_iterations", 2}}, true) ==
        "p.json: generator.base_em_iterations: is only used with \"base_experts\": true");
  CHECK(base_error({{"base", "conditional_gaussian"}, {"base_joint_defensive", 0.1}}, true) ==
        "p.json: generator.base_joint_defensive: is only used with \"base_joint_bins\" > 0");
  CHECK(base_error({{"base", "von_mises_mixture"}, {"base_components", 9}}, true) ==
        "p.json: generator.base_components: must be between 1 and 8");
  CHECK(base_error({{"base", "conditional_gaussian"}, {"base_joint_bins", 1}}, true) ==
        "p.json: generator.base_joint_bins: must be 0 (no correction) or between 2 and 360");
  CHECK(base_error({{"base", "conditional_gaussian"}, {"base_soft_threshold", 0.7}}, true) ==
        "p.json: generator.base_soft_threshold: must be in (0, 0.5] rad");
  // Every base key is known to the reader: a typo gets a suggestion.
  CHECK(base_error({{"base_harmonic", 2}}, true) ==
        "p.json: generator.base_harmonic: unknown key (did you mean 'base_harmonics'?)");
  // validate() checks the values of options built in code, with the same messages.
  ConditionalBaseOptions bad;
  bad.harmonics = 7;
  CHECK_THROWS_WITH_AS(bad.validate("p.json: generator"), "p.json: generator.base_harmonics: must be between 1 and 6",
                       ConfigError);
  VonMisesMixtureBaseOptions vm;
  vm.defensive = 0.5;
  CHECK_THROWS_WITH_AS(validate(BaseOptions(vm)), "generator.base_defensive: must be in [0, 0.5)", ConfigError);
}

TEST_CASE("base options: the registry's fitters give the bases of the named BaseDensity fits") {
  const auto ic = alanine_ic();
  const auto z = ic.to_internal(perturbed_alanine(300, 0.05, 23)).first;
  const auto mask = ic.torsion_mask();
  const auto y = InternalNormalization::fit(z, mask).forward(z).first;
  const BaseFitData data{y, mask, {}};
  CHECK_FALSE(fit_base(NormalBaseOptions{}, data).has_value());
  CHECK(fit_base(UniformBaseOptions{}, data)->kind() == "uniform");
  const auto grid = y.narrow(0, 0, 50);
  CHECK(max_abs(fit_base(VonMisesBaseOptions{}, data)->log_prob(grid) -
                BaseDensity::fit_von_mises(y, mask).log_prob(grid)) == 0.0);
  VonMisesMixtureBaseOptions vmm;
  vmm.components = 3;
  vmm.defensive = 0.02;
  CHECK(max_abs(fit_base(vmm, data)->log_prob(grid) - BaseDensity::fit_mixture(y, mask, 3, 1, 1e3, 0.02).log_prob(grid)) ==
        0.0);
  // A kind fitted to data without data: DomainError naming the kind.
  CHECK_THROWS_WITH_AS(fit_base(VonMisesBaseOptions{}, BaseFitData{torch::Tensor(), mask, {}}),
                       "base density: \"von_mises\" is fitted to data, but none were given", DomainError);
}

TEST_CASE("torsions to the real line: the logit map round-trips and carries the exact log-Jacobian") {
  // Columns 0 and 2 are torsions, column 1 is not. A standard logistic t has density
  // σ(t)σ(−t); its image τ = 2πσ(t) − π is uniform on [−π, π), density 1/2π. So after
  // torsions_to_circle, log q_t(t) − log|dτ/dt| must be −log 2π per torsion column for every
  // row, exactly (a wrong sign or factor in the Jacobian moves it by O(1)).
  const torch::Tensor mask = torch::tensor({true, false, true});
  RowMatrix t(7, 3);
  t << -30, 0.5, 3, -4, -1, -0.2, -1, 2, 0, 0, 7, 1, 0.3, -3, -2.5, 2.5, 1, 5, 35, 0, -8;
  const auto log_sigmoid = [](double v) { return -std::log1p(std::exp(-v)); };
  Eigen::VectorXd log_q(7);
  for (int i = 0; i < 7; ++i)
    log_q[i] = log_sigmoid(t(i, 0)) + log_sigmoid(-t(i, 0)) + log_sigmoid(t(i, 2)) + log_sigmoid(-t(i, 2));
  RowMatrix x = t;
  torsions_to_circle(x, &log_q, mask);
  for (int i = 0; i < 7; ++i) {
    CHECK(log_q[i] == doctest::Approx(-2.0 * std::log(2.0 * M_PI)).epsilon(1e-12));
    CHECK(x(i, 1) == t(i, 1));  // the non-torsion column is untouched
    for (int c : {0, 2}) CHECK((x(i, c) >= -M_PI && x(i, c) <= M_PI));
  }
  // Round trip (rows away from the clamped edge), and a finite-difference check of dτ/dt.
  const RowMatrix back = torsions_to_line(x, mask);
  for (int i = 0; i < 7; ++i)
    for (int c : {0, 2})
      if (std::abs(t(i, c)) < 20) CHECK(back(i, c) == doctest::Approx(t(i, c)).epsilon(1e-9));
  RowMatrix a(1, 3), b(1, 3);
  a << 0.7, 0, 0.7;
  b << 0.7 + 1e-6, 0, 0.7 + 1e-6;
  torsions_to_circle(a, nullptr, mask);
  torsions_to_circle(b, nullptr, mask);
  const double s = 1.0 / (1.0 + std::exp(-0.7));
  CHECK((b(0, 0) - a(0, 0)) / 1e-6 == doctest::Approx(2.0 * M_PI * s * (1.0 - s)).epsilon(1e-5));
}
