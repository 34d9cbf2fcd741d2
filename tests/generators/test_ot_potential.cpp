// Closed-form ∇Φ, ∂ₜΦ and ΔΦ of the OT-Flow potential against LibTorch autograd
// (float64, 1e-10): the closed forms of Onken et al. eqs. 11–17 must agree with the
// derivatives of Φ itself to rounding error.
#include "support/torch_doctest.hpp"

#include "boltzlab/generators/ot_potential.hpp"

namespace bg = boltzlab::generators;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

/// Randomizes all parameters (w included, which reset_parameters sets to 0).
void randomize(bg::OtPotentialImpl& phi, int seed) {
  torch::NoGradGuard ng;
  torch::manual_seed(seed);
  for (auto& p : phi.parameters()) p.copy_(0.7 * torch::randn(p.sizes(), kF64));
}

double max_rel(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs() / (1.0 + b.abs())).max().item<double>();
}

/// Checks the closed forms against autograd at B random points: ∇Φ = autograd grad
/// of Φ; ΔΦ = Σ_k ∂²Φ/∂x_k² from a second autograd pass per coordinate.
void check_against_autograd(bg::OtPotentialImpl& phi, double t) {
  const int d = phi.options().dim;
  torch::manual_seed(11);
  auto x = (1.5 * torch::randn({5, d}, kF64));
  const auto& po = phi.options();
  if (po.n_particles > 0) {  // points on the centre-of-mass-free subspace
    auto v = x.reshape({5, po.n_particles, po.spatial_dim});
    x = (v - v.mean(1, true)).reshape({5, d});
  }
  x = x.detach().requires_grad_(true);
  const auto phi_val = phi.value(x, t);
  const auto grad = torch::autograd::grad({phi_val.sum()}, {x}, {}, true, true)[0];
  const auto der = phi.derivatives(x, t, true);
  CHECK(max_rel(der.grad_x, grad) < 1e-10);

  torch::Tensor lap = torch::zeros({5}, kF64);
  for (int k = 0; k < d; ++k) {
    const auto g2 = torch::autograd::grad({grad.select(1, k).sum()}, {x}, {}, true)[0];
    lap = lap + g2.select(1, k);
  }
  CHECK(max_rel(der.laplacian, lap) < 1e-10);

  // ∂ₜΦ (value() takes t as a number, so no autograd here): Φ is smooth in t; a 4th-order central difference with step 1e-3 has
  // truncation error ~1e-12·|∂⁵Φ| and rounding ~1e-16·|Φ|/1e-3, far below 1e-8.
  const double e = 1e-3;
  torch::NoGradGuard ng;
  const auto xd = x.detach();
  const auto fd = (-phi.value(xd, t + 2 * e) + 8 * phi.value(xd, t + e) - 8 * phi.value(xd, t - e) +
                   phi.value(xd, t - 2 * e)) /
                  (12 * e);
  CHECK(max_rel(der.dt, fd) < 1e-8);
}

}  // namespace

TEST_CASE("ot_potential: closed-form gradient and Laplacian match autograd (nTh = 2)") {
  bg::OtPotentialOptions o;
  o.dim = 3;
  o.width = 8;
  o.layers = 2;
  bg::OtPotentialImpl phi(o);
  randomize(phi, 1);
  check_against_autograd(phi, 0.3);
}

TEST_CASE("ot_potential: closed-form gradient and Laplacian match autograd (nTh = 4, rank 2)") {
  bg::OtPotentialOptions o;
  o.dim = 4;
  o.width = 6;
  o.layers = 4;
  o.rank = 2;
  bg::OtPotentialImpl phi(o);
  randomize(phi, 2);
  check_against_autograd(phi, 0.8);
}

TEST_CASE("ot_potential: particle systems are translation invariant with exact subspace Laplacian") {
  bg::OtPotentialOptions o;
  o.dim = 6;
  o.width = 8;
  o.layers = 3;
  o.n_particles = 3;
  o.spatial_dim = 2;
  bg::OtPotentialImpl phi(o);
  randomize(phi, 3);
  // Autograd of Φ(Px) gives P∇Φ̃ and the Hessian P H P, whose full trace is the
  // divergence on the subspace: the closed forms must reproduce both.
  check_against_autograd(phi, 0.5);
  torch::NoGradGuard ng;
  torch::manual_seed(5);
  const auto x = torch::randn({4, 6}, kF64);
  const auto shifted = x + torch::tensor({0.3, -1.1, 0.3, -1.1, 0.3, -1.1}, kF64);
  CHECK(max_rel(phi.value(shifted, 0.2), phi.value(x, 0.2)) < 1e-12);
  // The velocity has no centre-of-mass component.
  const auto g = phi.derivatives(x, 0.2, false).grad_x.reshape({4, 3, 2}).sum(1);
  CHECK(g.abs().max().item<double>() < 1e-12);
}

TEST_CASE("ot_potential: options are validated") {
  bg::OtPotentialOptions o;
  o.layers = 1;
  CHECK_THROWS_WITH(o.validate(), doctest::Contains("layers"));
  o = {};
  o.dim = 5;
  o.n_particles = 2;
  o.spatial_dim = 2;
  CHECK_THROWS_WITH(o.validate(), doctest::Contains("dim"));
  CHECK_THROWS_WITH(bg::OtPotentialOptions::from_json({{"dim", 2}, {"width", 4}, {"layers", 2}, {"widht", 3}}),
                    doctest::Contains("widht"));
}

TEST_CASE("ot_potential: periodic columns — closed forms match autograd, Φ is 2π-periodic") {
  bg::OtPotentialOptions o;
  o.dim = 5;
  o.width = 7;
  o.layers = 3;
  o.periodic = {1, 3, 4};
  bg::OtPotentialImpl phi(o);
  randomize(phi, 4);
  // Autograd differentiates Φ through the (cos, sin) features, so this checks ∇ₓΦ = Gᵀ∇Φ̂
  // and the Laplacian including the feature-map curvature term.
  check_against_autograd(phi, 0.4);
  o.layers = 2;
  o.periodic = {0};
  bg::OtPotentialImpl phi2(o);
  randomize(phi2, 5);
  check_against_autograd(phi2, 0.9);

  // Shifting a periodic column by ±2π changes nothing (value, gradient, Laplacian);
  // shifting a non-periodic one does.
  torch::NoGradGuard ng;
  torch::manual_seed(8);
  const auto x = 2.0 * torch::randn({6, 5}, kF64);
  const auto shift = torch::tensor({0.0, 2 * M_PI, 0.0, -2 * M_PI, 4 * M_PI}, kF64);
  const auto d0 = phi.derivatives(x, 0.3, true), d1 = phi.derivatives(x + shift, 0.3, true);
  CHECK(max_rel(phi.value(x + shift, 0.3), phi.value(x, 0.3)) < 1e-12);
  CHECK(max_rel(d1.grad_x, d0.grad_x) < 1e-12);
  CHECK(max_rel(d1.laplacian, d0.laplacian) < 1e-12);
  const auto moved = x + torch::tensor({2 * M_PI, 0.0, 0.0, 0.0, 0.0}, kF64);
  CHECK(max_rel(phi.value(moved, 0.3), phi.value(x, 0.3)) > 1e-3);
}

TEST_CASE("ot_potential: periodic options are validated and serialized") {
  bg::OtPotentialOptions o;
  o.dim = 4;
  o.periodic = {2, 1};
  CHECK_THROWS_WITH(o.validate(), doctest::Contains("sorted"));
  o.periodic = {4};
  CHECK_THROWS_WITH(o.validate(), doctest::Contains("periodic column 4"));
  o.periodic = {0, 3};
  const auto back = bg::OtPotentialOptions::from_json(o.to_json());
  CHECK(back.periodic == o.periodic);
  CHECK(back.n_features() == 7);
  CHECK_THROWS_WITH(bg::OtPotentialOptions::from_json({{"dim", 2}, {"width", 4}, {"layers", 2}, {"periodic", {0.5}}}),
                    doctest::Contains("periodic"));
}

TEST_CASE("ot_potential: pair term — closed forms match autograd, alone and beside the network") {
  bg::OtPotentialOptions o;
  o.dim = 12;
  o.n_particles = 4;
  o.spatial_dim = 3;
  o.network = false;
  o.pair_basis = 6;
  o.pair_time_basis = 3;
  o.pair_range = 2.5;
  bg::OtPotentialImpl pair_only(o);
  randomize(pair_only, 6);
  // Autograd differentiates ½Σ_{i≠j} f(r_ij) through the distances: this checks
  // ∇Φ = Σ_j f'/r (x_i − x_j), ΔΦ = Σ_{i≠j} f'' + (D−1) f'/r and ∂ₜΦ.
  check_against_autograd(pair_only, 0.6);
  o.network = true;
  o.width = 5;
  o.dim = 6;
  o.n_particles = 3;
  o.spatial_dim = 2;
  o.pair_basis = 1;  // the single-bump case (s = R)
  bg::OtPotentialImpl both(o);
  randomize(both, 7);
  check_against_autograd(both, 0.35);
  // Many-body channels, alone with the pair term and beside the network: checks
  // ∇Φ_mb, ΔΦ_mb (F''|∇ρ|² + F'Δρ) and ∂ₜΦ_mb of ot_potential.hpp.
  o.pair_basis = 5;
  o.pair_channels = 3;
  bg::OtPotentialImpl with_channels(o);
  randomize(with_channels, 8);
  check_against_autograd(with_channels, 0.7);
  o.network = false;
  o.dim = 12;
  o.n_particles = 4;
  o.spatial_dim = 3;
  bg::OtPotentialImpl channels_only(o);
  randomize(channels_only, 12);
  check_against_autograd(channels_only, 0.45);
}

TEST_CASE("ot_potential: the network-free pair potential (with channels) is E(n)- and permutation-invariant") {
  bg::OtPotentialOptions o;
  o.dim = 15;
  o.n_particles = 5;
  o.spatial_dim = 3;
  o.network = false;
  o.pair_basis = 8;
  o.pair_channels = 2;
  bg::OtPotentialImpl phi(o);
  randomize(phi, 9);
  torch::NoGradGuard ng;
  torch::manual_seed(10);
  const auto x = torch::randn({4, 15}, kF64);
  // A random orthogonal matrix (QR of a Gaussian matrix, det ±1 both allowed), a
  // permutation of the particles and a translation.
  const auto q = std::get<0>(torch::linalg_qr(torch::randn({3, 3}, kF64)));
  const auto perm = torch::tensor({3, 0, 4, 1, 2}, torch::kInt64);
  const auto shift = torch::tensor({0.7, -0.2, 1.3}, kF64);
  auto transform = [&](const torch::Tensor& y, bool translate) {
    auto p = torch::matmul(y.reshape({4, 5, 3}), q.t()).index_select(1, perm);
    if (translate) p = p + shift;
    return p.reshape({4, 15});
  };
  const auto d0 = phi.derivatives(x, 0.4, true);
  const auto d1 = phi.derivatives(transform(x, true), 0.4, true);
  CHECK(max_rel(phi.value(transform(x, true), 0.4), phi.value(x, 0.4)) < 1e-12);
  CHECK(max_rel(d1.laplacian, d0.laplacian) < 1e-12);
  CHECK(max_rel(d1.dt, d0.dt) < 1e-12);
  // The velocity is equivariant: ∇Φ(gx) = g∇Φ(x) (rotation and permutation, no shift).
  CHECK(max_rel(d1.grad_x, transform(d0.grad_x, false)) < 1e-12);
  // And has no centre-of-mass component.
  CHECK(d0.grad_x.reshape({4, 5, 3}).sum(1).abs().max().item<double>() < 1e-12);
}

TEST_CASE("ot_potential: pair options are validated and serialized") {
  bg::OtPotentialOptions o;
  o.dim = 6;
  o.pair_basis = 4;
  CHECK_THROWS_WITH(o.validate(), doctest::Contains("particle system"));
  o.n_particles = 3;
  o.spatial_dim = 2;
  o.pair_range = 0.0;
  CHECK_THROWS_WITH(o.validate(), doctest::Contains("pair_range"));
  o.pair_range = 3.0;
  o.pair_time_basis = 0;
  CHECK_THROWS_WITH(o.validate(), doctest::Contains("pair_time_basis"));
  o.pair_time_basis = 2;
  o.network = false;
  const auto back = bg::OtPotentialOptions::from_json(o.to_json());
  CHECK(back.pair_basis == 4);
  CHECK(back.pair_time_basis == 2);
  CHECK(back.pair_range == 3.0);
  CHECK_FALSE(back.network);
  o.pair_basis = 0;
  CHECK_THROWS_WITH(o.validate(), doctest::Contains("network = false"));
  // A pair-only potential has only the pair parameters (C, c; with channels also B, b, A).
  o.pair_basis = 4;
  bg::OtPotentialImpl phi(o);
  CHECK(phi.parameters().size() == 2);
  o.pair_channels = 3;
  bg::OtPotentialImpl phi_mb(o);
  CHECK(phi_mb.parameters().size() == 5);
  CHECK(bg::OtPotentialOptions::from_json(o.to_json()).pair_channels == 3);
  o.pair_channels = -1;
  CHECK_THROWS_WITH(o.validate(), doctest::Contains("pair_channels"));
  o.pair_channels = 2;
  o.pair_basis = 0;
  o.network = true;
  CHECK_THROWS_WITH(o.validate(), doctest::Contains("pair_channels > 0 needs"));
}
