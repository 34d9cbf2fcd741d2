// The CNF's log q against a brute-force change of variables, normalization on a
// grid, forward/reverse consistency, save → load, bad input.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "support/torch_doctest.hpp"
#include "support/grid_mass.hpp"

#include "boltzlab/core/error.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/targets/gaussian.hpp"

namespace bg = boltzlab::generators;
using boltzlab::RowMatrix;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

/// A flow made visibly nonlinear by a few reverse-KL steps against a correlated 2-D
/// Gaussian (Φ's ResNet gets a nonzero w), which is what the identity needs.
bg::BoltzmannGenerator briefly_trained_flow(int steps, int sample_steps) {
  bg::GeneratorOptions o;
  o.potential.dim = 2;
  o.potential.width = 16;
  o.steps = steps;
  o.sample_steps = sample_steps;
  bg::BoltzmannGenerator g(o, 3);
  Eigen::Vector2d mean(0.8, -0.4);
  Eigen::Matrix2d cov;
  cov << 1.5, 0.6, 0.6, 0.8;
  boltzlab::GaussianTarget target(mean, cov);
  bg::TrainOptions t;
  t.preset = "ot-bg";
  t.weights = bg::LossWeights::preset("ot-bg", false);
  t.iterations = 25;
  t.batch_size = 128;
  t.learning_rate = 2e-2;
  t.eval_every = 0;
  t.progress = false;
  bg::train(g, target, nullptr, t);
  // The ResNet part must be active, otherwise the flow is affine and the test weak.
  CHECK(g.potential()->named_parameters()["w"].abs().max().item<double>() > 1e-3);
  return g;
}

/// log q by brute force: log ρ₀(z) − log|det ∂x/∂z| with the Jacobian of the
/// discrete RK4 flow map from autograd (two backward passes for d = 2).
Eigen::VectorXd brute_force_log_q(bg::BoltzmannGenerator& g, const torch::Tensor& z0, int steps) {
  auto z = z0.clone().requires_grad_(true);
  const bg::FlowBatch f = g.forward(z, steps, false);
  const auto j0 = torch::autograd::grad({f.x.select(1, 0).sum()}, {z}, {}, true)[0];
  const auto j1 = torch::autograd::grad({f.x.select(1, 1).sum()}, {z}, {}, false)[0];
  const auto det = j0.select(1, 0) * j1.select(1, 1) - j0.select(1, 1) * j1.select(1, 0);
  return bg::to_vector(g.base_log_density(z0) - det.abs().log());
}

}  // namespace

TEST_CASE("generator: log q from the integrated divergence equals the brute-force change of variables") {
  // The integrated log-det and the exact Jacobian of the RK4 map both approximate the
  // exact flow with O(dt⁴) error, so their difference must shrink ~16× per halving
  // of dt, and be tiny at 32 steps.
  auto g = briefly_trained_flow(8, 8);
  const auto z = g.base_sample(16, 99);
  double err[3];
  const int steps[3] = {8, 16, 32};
  for (int k = 0; k < 3; ++k) {
    torch::Tensor lq;
    {
      torch::NoGradGuard ng;
      lq = g.forward(z, steps[k], false).log_q;
    }
    err[k] = (bg::to_vector(lq) - brute_force_log_q(g, z, steps[k])).cwiseAbs().maxCoeff();
  }
  MESSAGE("log q discrepancy at 8/16/32 steps: " << err[0] << " " << err[1] << " " << err[2]);
  CHECK(err[2] < 1e-6);
  CHECK(err[1] < err[0] / 6.0);  // ≈ 16× for 4th order; 6× leaves room for pre-asymptotics
  CHECK(err[2] < err[1] / 6.0);
}

TEST_CASE("generator: q integrates to 1 on a grid and forward/reverse log q agree") {
  auto g = briefly_trained_flow(8, 16);
  // Standardization changes log q by −Σ log σ: include a non-trivial one.
  g.set_standardization(Eigen::Vector2d(0.5, -1.0), Eigen::Vector2d(1.3, 0.7));
  // Riemann sum of q over [μ ± 9σ]²: the flow moves mass O(1) from N(0, I), so the
  // mass outside is < 1e-8; the midpoint rule on a 150² grid of a smooth density
  // has relative error O(h²·|∂²q|/q) ~ 1e-4.
  const double mass = boltzlab::testing::grid_mass([&g](const RowMatrix& x) { return g.log_q(x); }, 0.5 - 9 * 1.3,
                                                    0.5 + 9 * 1.3, -1.0 - 9 * 0.7, -1.0 + 9 * 0.7, 150);
  MESSAGE("mass on grid: " << mass);
  CHECK(mass == doctest::Approx(1.0).epsilon(2e-3));

  // Reverse integration of generated samples returns their forward log q (to the
  // RK4 error of 16 steps, ~1e-7 here).
  const bg::GeneratedSamples s = g.sample(64, 5);
  const Eigen::VectorXd back = g.log_q(s.x);
  CHECK((back - s.log_q).cwiseAbs().maxCoeff() < 1e-5);
}

TEST_CASE("generator: save → load gives identical samples for the same seed") {
  auto g = briefly_trained_flow(4, 6);
  g.set_standardization(Eigen::Vector2d(0.1, 0.2), Eigen::Vector2d(2.0, 0.5));
  const auto path = std::filesystem::temp_directory_path() / "boltzlab_test_model.pt";
  g.save(path, {{"note", "test"}});
  nlohmann::json meta;
  auto h = bg::BoltzmannGenerator::load(path, &meta);
  std::filesystem::remove(path);
  std::filesystem::remove(bg::model_record_path(path));
  CHECK(meta.at("note") == "test");
  CHECK(h.options().to_json() == g.options().to_json());
  const auto a = g.sample(200, 42);
  const auto b = h.sample(200, 42);
  CHECK((a.x - b.x).cwiseAbs().maxCoeff() == 0.0);
  CHECK((a.log_q - b.log_q).cwiseAbs().maxCoeff() == 0.0);
  // A different seed gives different samples (the check above is not vacuous).
  const auto c = h.sample(200, 43);
  CHECK((a.x - c.x).cwiseAbs().maxCoeff() > 0.1);
}

TEST_CASE("generator: samples do not depend on the chunk size") {
  bg::GeneratorOptions o;
  o.potential.dim = 3;
  bg::BoltzmannGenerator g(o, 1);
  const auto a = g.sample(100, 7, 100);
  const auto b = g.sample(100, 7, 17);
  CHECK((a.x - b.x).cwiseAbs().maxCoeff() < 1e-13);
}

TEST_CASE("generator: bad model files are rejected with one clear message") {
  CHECK_THROWS_AS(bg::BoltzmannGenerator::load("/nonexistent/model.pt"), boltzlab::IoError);
  CHECK_THROWS_WITH(bg::BoltzmannGenerator::load("/nonexistent/model.pt"), doctest::Contains("not found"));
  const auto junk = std::filesystem::temp_directory_path() / "boltzlab_test_junk.pt";
  { std::ofstream(junk) << "not a model"; }
  bg::sign_model_file(junk, std::nullopt);  // recorded, so that LibTorch reads it (model_file.hpp)
  CHECK_THROWS_AS(bg::BoltzmannGenerator::load(junk), boltzlab::IoError);
  // An archive with a future format version.
  torch::serialize::OutputArchive a;
  a.write("format_version", c10::IValue(static_cast<int64_t>(99)));
  a.save_to(junk.string());
  bg::sign_model_file(junk, std::nullopt);
  CHECK_THROWS_WITH(bg::BoltzmannGenerator::load(junk), doctest::Contains("format_version 99"));
  std::filesystem::remove(junk);
  std::filesystem::remove(bg::model_record_path(junk));
}

TEST_CASE("generator: particle systems stay on the centre-of-mass-free subspace") {
  bg::GeneratorOptions o;
  o.potential.dim = 8;
  o.potential.n_particles = 4;
  o.potential.spatial_dim = 2;
  o.sample_steps = 32;
  bg::BoltzmannGenerator g(o, 2);
  {
    torch::NoGradGuard ng;
    torch::manual_seed(21);  // deterministic perturbation
    for (auto& p : g.potential()->parameters()) p.add_(0.3 * torch::randn(p.sizes(), kF64));
  }
  CHECK(g.degrees_of_freedom() == 6);
  const auto s = g.sample(50, 3);
  for (int i = 0; i < 50; ++i)
    for (int a = 0; a < 2; ++a) {
      double c = 0;
      for (int p = 0; p < 4; ++p) c += s.x(i, p * 2 + a);
      CHECK(std::abs(c) < 1e-12);
    }
  // Forward and reverse RK4 log q differ by the O(dt⁴) integration error of both
  // passes: at 8 steps this random (non-trained, steep) flow shows ~1e-3, so with
  // 32 steps (256× smaller) ~4e-6 is expected; 1e-4 leaves a 25× margin.
  CHECK((g.log_q(s.x) - s.log_q).cwiseAbs().maxCoeff() < 1e-4);
  CHECK_THROWS_AS(g.set_standardization(Eigen::VectorXd::Ones(8), Eigen::VectorXd::Ones(8)),
                  boltzlab::DomainError);
}

TEST_CASE("generator: the equivariant pair flow — exact log q on the subspace, invariant density") {
  // Three particles in 2-D, Φ = the pair term only: 4 degrees of freedom on the
  // centre-of-mass-free subspace, with orthonormal basis U (the unit-eigenvalue
  // eigenvectors of the projector P = I − (1/n) 11ᵀ ⊗ I₂).
  bg::GeneratorOptions o;
  o.potential.dim = 6;
  o.potential.n_particles = 3;
  o.potential.spatial_dim = 2;
  o.potential.network = false;
  o.potential.pair_basis = 5;
  o.potential.pair_range = 3.0;
  bg::BoltzmannGenerator g(o, 4);
  {
    torch::NoGradGuard ng;
    torch::manual_seed(22);  // a visibly nonlinear pair flow
    for (auto& p : g.potential()->parameters()) p.add_(0.2 * torch::randn(p.sizes(), kF64));
  }
  const auto centring = torch::eye(6, kF64) - torch::kron(torch::full({3, 3}, 1.0 / 3.0, kF64), torch::eye(2, kF64));
  const auto u = std::get<1>(torch::linalg_eigh(centring)).narrow(1, 2, 4);  // 6×4
  const auto z = g.base_sample(12, 5);
  const auto a0 = torch::mm(z, u);  // subspace coordinates of the base draws
  // Brute force: log ρ₀(z) − log|det ∂(Uᵀx)/∂a| with the 4×4 Jacobian of the discrete RK4
  // map from autograd; it and the integrated divergence differ by O(dt⁴).
  auto brute_force = [&](int steps) {
    auto a = a0.clone().requires_grad_(true);
    const auto b = torch::mm(g.forward(torch::mm(a, u.t()), steps, false).x, u);
    std::vector<torch::Tensor> rows;
    for (int k = 0; k < 4; ++k)
      rows.push_back(torch::autograd::grad({b.select(1, k).sum()}, {a}, {}, true)[0]);
    const auto jac = torch::stack(rows, 1);  // B×4×4
    return bg::to_vector(g.base_log_density(z) - torch::linalg_det(jac).abs().log());
  };
  double err[3];
  const int steps[3] = {16, 32, 64};
  for (int k = 0; k < 3; ++k) {
    torch::Tensor lq;
    {
      torch::NoGradGuard ng;
      lq = g.forward(z, steps[k], false).log_q;
    }
    err[k] = (bg::to_vector(lq) - brute_force(steps[k])).cwiseAbs().maxCoeff();
  }
  MESSAGE("pair flow log q discrepancy at 16/32/64 steps: " << err[0] << " " << err[1] << " " << err[2]);
  // Measured ≈ 15× per halving (2.1e-3, 1.4e-4, 8.5e-6 at 8/16/32 steps): 4th order.
  CHECK(err[2] < 1e-6);
  CHECK(err[2] < err[0] / 36.0);  // ≈ 256× for 4th order over two halvings

  // q is invariant under permutations and rotations of the particles (the base is
  // isotropic on the subspace and the flow equivariant; a fixed-step RK4 map of an
  // equivariant field is itself equivariant): log q at permuted and rotated samples
  // equals log q at the samples to rounding.
  const auto s = g.sample(20, 6);
  RowMatrix moved(20, 6);
  const double c = std::cos(0.9), sn = std::sin(0.9);
  const int perm[3] = {2, 0, 1};
  for (int i = 0; i < 20; ++i)
    for (int p = 0; p < 3; ++p) {
      const double x = s.x(i, 2 * perm[p]), y = s.x(i, 2 * perm[p] + 1);
      moved(i, 2 * p) = c * x - sn * y;
      moved(i, 2 * p + 1) = sn * x + c * y;
    }
  const Eigen::VectorXd lq0 = g.log_q(s.x), lq1 = g.log_q(moved);
  CHECK((lq1 - lq0).cwiseAbs().maxCoeff() < 1e-10);
}
