// Rational-quadratic spline coupling flows: the spline against finite differences and its
// inverse, the circular boundary conditions, the flow's log-det against the brute-force
// Jacobian, periodicity on the torus, normalization on a grid, save → load, the generator's
// refusals, and training to a known log Z.
#include <cmath>
#include <filesystem>
#include <utility>
#include <vector>

#include "support/torch_doctest.hpp"
#include "support/grid_mass.hpp"

#include "boltzlab/core/constants.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/spline_coupling.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/targets/gaussian_mixture.hpp"

namespace bg = boltzlab::generators;
using boltzlab::RowMatrix;
using boltzlab::kPi;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

/// Random spline parameters for 7×3 points, K bins: one spline per column (the 7 rows share it).
struct RawParams {
  torch::Tensor w, h, d;
};
RawParams raw_params(int bins, bool circular, int seed) {
  torch::manual_seed(seed);
  const auto draw = [](std::int64_t k) { return (1.5 * torch::randn({1, 3, k}, kF64)).expand({7, 3, k}); };
  const auto w = draw(bins), h = draw(bins);
  return {w, h, draw(circular ? bins : bins - 1)};
}

/// Perturbs every parameter of the flow (the fresh flow is the identity map).
void perturb(bg::SplineCouplingFlowImpl& flow, double scale, int seed) {
  torch::NoGradGuard ng;
  torch::manual_seed(seed);
  for (auto& p : flow.parameters()) p.add_(scale * torch::randn_like(p));
}

/// A perturbed flow on ℝ^{d−2} × T² (columns 1 and 4 periodic) and 6 points with those columns in
/// [−π, π), with its forward values; `condition_only` as SplineCouplingOptions.
struct TorusCase {
  bg::SplineCouplingFlow flow{nullptr};
  torch::Tensor z;
  bg::CouplingValues f;
};
TorusCase torus_case(int dim, std::vector<int> condition_only) {
  bg::SplineCouplingOptions o;
  o.dim = dim;
  o.periodic = {1, 4};
  o.condition_only = std::move(condition_only);
  o.layers = 4;
  o.hidden = 16;
  o.bins = 6;
  o.bound = 4.0;
  TorusCase c;
  c.flow = bg::SplineCouplingFlow(o, 9);
  perturb(*c.flow, 0.3, 4);
  torch::manual_seed(8);
  c.z = torch::randn({6, dim}, kF64);
  c.z.index_put_({torch::indexing::Slice(), 1}, (2 * torch::rand({6}, kF64) - 1) * kPi);
  c.z.index_put_({torch::indexing::Slice(), 4}, (2 * torch::rand({6}, kF64) - 1) * kPi);
  c.f = c.flow->forward(c.z);
  return c;
}

/// The forward log-det of every row against log |det J| of the autograd Jacobian, and the
/// inverse: back to z with the opposite log-det.
void check_log_det_and_inverse(TorusCase& c) {
  const std::int64_t d = c.z.size(1);
  for (std::int64_t i = 0; i < c.z.size(0); ++i) {
    auto zi = c.z.narrow(0, i, 1).clone().requires_grad_(true);
    const auto yi = c.flow->forward(zi).y;
    auto jac = torch::zeros({d, d}, kF64);
    for (std::int64_t r = 0; r < d; ++r)
      jac[r] = torch::autograd::grad({yi.select(1, r).sum()}, {zi}, {}, true)[0].squeeze(0);
    const double brute = std::log(std::abs(torch::det(jac).item<double>()));
    CHECK(c.f.log_det[i].item<double>() == doctest::Approx(brute).epsilon(1e-10));
  }
  const auto back = c.flow->inverse(c.f.y);
  CHECK((back.y - c.z).abs().max().item<double>() < 1e-9);
  CHECK((back.log_det + c.f.log_det).abs().max().item<double>() < 1e-9);
}

}  // namespace

TEST_CASE("generators.spline_coupling: the spline's log-derivative matches central differences, and its inverse") {
  for (const bool circular : {false, true}) {
    const auto p = raw_params(6, circular, 11);
    const double bound = 3.0;
    const double lo = circular ? -kPi : -bound, hi = circular ? kPi : bound;
    // Points spread over the interval (and, for real columns, beyond it: the identity tails).
    // Sorted down each column (the column's spline is shared by its 7 rows).
    const auto x = torch::linspace(lo - (circular ? 0.0 : 1.0), hi - (circular ? 1e-9 : -1.0), 21, kF64).reshape({7, 3});
    const auto s = bg::rational_quadratic_spline(x, p.w, p.h, p.d, bound, circular, false);
    const double eps = 1e-6;
    const auto sp = bg::rational_quadratic_spline(x + eps, p.w, p.h, p.d, bound, circular, false);
    const auto sm = bg::rational_quadratic_spline(x - eps, p.w, p.h, p.d, bound, circular, false);
    auto fd = (sp.y - sm.y) / (2 * eps);
    // Central differences of a C¹ piecewise rational: O(ε²) inside a bin, O(ε) across a knot
    // (the second derivative jumps there), so 1e-5 relative is a fair bound away from ±π.
    const auto inner = (x.abs() < hi - 2 * eps);
    const auto err = torch::where(inner, (fd.log() - s.log_det).abs(), torch::zeros_like(x)).max().item<double>();
    CHECK(err < 1e-5);
    const auto back = bg::rational_quadratic_spline(s.y, p.w, p.h, p.d, bound, circular, true);
    auto expected = circular ? x - 2 * kPi * torch::floor((x + kPi) / (2 * kPi)) : x;
    CHECK((back.y - expected).abs().max().item<double>() < 1e-10);
    CHECK((back.log_det + s.log_det).abs().max().item<double>() < 1e-10);
    // Monotone: each column's sorted inputs give sorted outputs.
    CHECK((s.y.narrow(0, 1, 6) - s.y.narrow(0, 0, 6)).min().item<double>() > 0.0);
    if (!circular) {  // identity outside [−B, B], continuous at the ends
      const auto out = x.abs() > bound;
      CHECK(((s.y - x).abs() * out).max().item<double>() == 0.0);
      const auto ends = torch::tensor({-bound, bound}, kF64).reshape({1, 2}).expand({7, 3, 2}).select(2, 0);
      const auto e = bg::rational_quadratic_spline(ends, p.w, p.h, p.d, bound, false, false);
      CHECK((e.y - ends).abs().max().item<double>() < 1e-12);
      CHECK(e.log_det.abs().max().item<double>() < 1e-12);  // unit slope at the ends: C¹
    }
  }
}

TEST_CASE("generators.spline_coupling: circular splines fix -pi and pi with equal slopes, and are 2pi-periodic") {
  const auto p = raw_params(5, true, 3);
  const auto lo = torch::full({7, 3}, -kPi, kF64), hi = torch::full({7, 3}, kPi - 1e-12, kF64);
  const auto a = bg::rational_quadratic_spline(lo, p.w, p.h, p.d, 1.0, true, false);
  const auto b = bg::rational_quadratic_spline(hi, p.w, p.h, p.d, 1.0, true, false);
  CHECK((a.y + kPi).abs().max().item<double>() < 1e-12);
  CHECK((b.y - kPi).abs().max().item<double>() < 1e-9);
  // C¹ across the seam: the slopes at −π and at π − 10⁻¹² agree to the rounding of ξ near 1.
  CHECK((a.log_det - b.log_det).abs().max().item<double>() < 1e-7);
  torch::manual_seed(5);
  const auto x = (2 * torch::rand({7, 3}, kF64) - 1) * kPi;
  const auto s0 = bg::rational_quadratic_spline(x, p.w, p.h, p.d, 1.0, true, false);
  const auto s1 = bg::rational_quadratic_spline(x + 4 * kPi, p.w, p.h, p.d, 1.0, true, false);
  CHECK((s0.y - s1.y).abs().max().item<double>() < 1e-12);
  CHECK((s0.log_det - s1.log_det).abs().max().item<double>() < 1e-12);
}

TEST_CASE("generators.spline_coupling: zero network outputs give the identity") {
  const auto z = torch::zeros({7, 3, 8}, kF64), zd = torch::zeros({7, 3, 7}, kF64);
  torch::manual_seed(1);
  const auto x = 2 * torch::randn({7, 3}, kF64);
  const auto s = bg::rational_quadratic_spline(x, z, z, zd, 5.0, false, false);
  CHECK((s.y - x).abs().max().item<double>() < 1e-13);
  CHECK(s.log_det.abs().max().item<double>() < 1e-13);
  bg::SplineCouplingOptions o;
  o.dim = 4;
  bg::SplineCouplingFlow flow(o, 2);
  const auto y = torch::randn({5, 4}, kF64);
  const auto f = flow->forward(y);
  CHECK((f.y - y).abs().max().item<double>() < 1e-13);
  CHECK(f.log_det.abs().max().item<double>() < 1e-13);
}

TEST_CASE("generators.spline_coupling: the flow's log-det equals the brute-force Jacobian, on R^3 x T^2") {
  TorusCase c = torus_case(5, {});
  auto& flow = c.flow;
  const auto& z = c.z;
  const auto& f = c.f;
  // The log-det against brute force; the inverse back to z (periodic columns in [−π, π)),
  // log-dets of opposite sign.
  check_log_det_and_inverse(c);
  // Periodic columns: a 2π shift of an input angle changes nothing; outputs lie in [−π, π].
  auto shifted = z.clone();
  shifted.index_put_({torch::indexing::Slice(), 1}, z.select(1, 1) + 2 * kPi);
  shifted.index_put_({torch::indexing::Slice(), 4}, z.select(1, 4) - 6 * kPi);
  const auto g = flow->forward(shifted);
  CHECK((g.y - f.y).abs().max().item<double>() < 1e-9);
  CHECK((g.log_det - f.log_det).abs().max().item<double>() < 1e-9);
  CHECK(f.y.select(1, 1).abs().max().item<double>() <= kPi);
  // Every column is transformed by some layer: each column moves on average.
  CHECK((f.y - z).abs().mean(0).min().item<double>() > 0.05);
}

TEST_CASE("generators.spline_coupling: condition-only columns stay fixed, condition every layer, and save with the model") {
  TorusCase c = torus_case(6, {1, 3});  // a torsion and a real column: never transformed
  auto& flow = c.flow;
  const auto& z = c.z;
  const auto& f = c.f;
  CHECK((f.y.select(1, 1) - z.select(1, 1)).abs().max().item<double>() == 0.0);
  CHECK((f.y.select(1, 3) - z.select(1, 3)).abs().max().item<double>() == 0.0);
  // The other columns move, and depend on the fixed ones (they are in every conditioner).
  for (const int c : {0, 2, 4, 5}) CHECK((f.y.select(1, c) - z.select(1, c)).abs().mean().item<double>() > 0.02);
  auto moved = z.clone();
  moved.index_put_({torch::indexing::Slice(), 3}, z.select(1, 3) + 0.5);
  CHECK((flow->forward(moved).y - f.y).narrow(1, 4, 2).abs().max().item<double>() > 1e-3);
  // The Jacobian is block triangular with an identity block: log-det against brute force.
  check_log_det_and_inverse(c);
  // The architecture keys carry the columns; bad lists are refused naming the key.
  const bg::SplineCouplingOptions& o = flow->options();
  const auto j = o.to_json();
  CHECK(j.at("condition_only") == nlohmann::json::array({1, 3}));
  bg::SplineCouplingOptions shell;
  shell.dim = 6;
  shell.periodic = {1, 4};
  CHECK(bg::SplineCouplingOptions::from_json(j, shell).condition_only == std::vector<int>{1, 3});
  bg::SplineCouplingOptions bad = o;
  bad.condition_only = {3, 1};
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("condition-only columns must be sorted"), boltzlab::ConfigError);
  bad.condition_only = {0, 1, 2, 3, 4, 5};
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("leave no column to transform"), boltzlab::ConfigError);
}

TEST_CASE("generators.spline_coupling: the generator's q integrates to 1, log q round-trips, save and load agree") {
  bg::GeneratorOptions o;
  o.potential.dim = 2;
  o.flow = bg::FlowFamily::spline_coupling;
  o.coupling.layers = 4;
  o.coupling.hidden = 16;
  o.coupling.bins = 8;
  o.coupling.bound = 4.0;
  bg::BoltzmannGenerator g(o, 3);
  perturb(*g.coupling(), 0.2, 6);
  g.set_standardization(Eigen::Vector2d(0.5, -1.0), Eigen::Vector2d(1.3, 0.7));
  // Midpoint rule on a 300² grid over μ ± 10σ: the tails are Gaussian beyond the spline
  // interval (|y| > 4 is the identity), so the mass outside is < 1e-20; q is C¹ with
  // bounded second derivative inside bins, so the rule's error is O(h²) ~ 1e-4 relative.
  const double mass = boltzlab::testing::grid_mass([&g](const RowMatrix& x) { return g.log_q(x); }, 0.5 - 10 * 1.3,
                                                    0.5 + 10 * 1.3, -1.0 - 10 * 0.7, -1.0 + 10 * 0.7, 300);
  MESSAGE("mass on grid: " << mass);
  CHECK(mass == doctest::Approx(1.0).epsilon(2e-3));
  const bg::GeneratedSamples s = g.sample(256, 5);
  CHECK((g.log_q(s.x) - s.log_q).cwiseAbs().maxCoeff() < 1e-10);

  const auto dir = std::filesystem::temp_directory_path() / "boltzlab_spline_coupling_test";
  std::filesystem::create_directories(dir);
  g.save(dir / "model.pt");
  auto h = bg::BoltzmannGenerator::load(dir / "model.pt");
  CHECK(h.options().coupling_flow());
  CHECK(h.options().coupling.bins == 8);
  const bg::GeneratedSamples t = h.sample(256, 5);
  CHECK((t.x - s.x).cwiseAbs().maxCoeff() == 0.0);
  CHECK((t.log_q - s.log_q).cwiseAbs().maxCoeff() == 0.0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("generators.spline_coupling: a torus base, samples wrapped, log q of any representative") {
  bg::GeneratorOptions o;
  o.potential.dim = 3;
  o.potential.periodic = {2};
  o.flow = bg::FlowFamily::spline_coupling;
  o.coupling.layers = 2;
  o.coupling.hidden = 8;
  bg::BoltzmannGenerator g(o, 1);
  perturb(*g.coupling(), 0.3, 2);
  // Without a torus base the periodic column has no circle to live on.
  CHECK_THROWS_AS(g.sample(4, 1), boltzlab::DomainError);
  g.set_base(bg::BaseDensity(torch::tensor({false, false, true})));
  const auto s = g.sample(500, 2);
  CHECK(s.x.col(2).cwiseAbs().maxCoeff() <= kPi);
  RowMatrix moved = s.x;
  moved.col(2).array() += 2 * kPi;
  CHECK((g.log_q(moved) - s.log_q).cwiseAbs().maxCoeff() < 1e-9);
}

TEST_CASE("generators.spline_coupling: what a coupling flow cannot do is refused with one line") {
  bg::GeneratorOptions o;
  o.potential.dim = 2;
  o.flow = bg::FlowFamily::spline_coupling;
  auto noisy = o;
  noisy.noise = 0.1;
  CHECK_THROWS_WITH_AS(noisy.validate(), doctest::Contains("deterministic map"), boltzlab::ConfigError);
  auto particles = o;
  particles.potential.dim = 6;
  particles.potential.n_particles = 3;
  particles.potential.spatial_dim = 2;
  CHECK_THROWS_WITH_AS(particles.validate(), doctest::Contains("not equivariant"), boltzlab::ConfigError);
  auto bins = o;
  bins.coupling.bins = 1;
  CHECK_THROWS_WITH_AS(bins.validate(), doctest::Contains("generator.spline_bins is 1"), boltzlab::ConfigError);
  bg::BoltzmannGenerator g(o, 1);
  CHECK_THROWS_AS(g.forward_path(torch::zeros({2, 2}, kF64), 4, false, 0.0), boltzlab::DomainError);
  CHECK_THROWS_AS(g.terminal_potential(torch::zeros({2, 2}, kF64)), boltzlab::DomainError);
  // The keys of a generator section.
  boltzlab::Json j = {{"flow", "spline_coupling"}, {"spline_bins", 12}, {"coupling_layers", 6}};
  boltzlab::JsonReader r(j, "f.json: generator");
  bg::GeneratorOptions m;
  bg::read_flow_options(r, m);
  CHECK(m.coupling_flow());
  CHECK(m.coupling.bins == 12);
  CHECK(m.coupling.layers == 6);
  boltzlab::Json bad = {{"spline_bins", 12}};
  boltzlab::JsonReader rb(bad, "f.json: generator");
  bg::GeneratorOptions mb;
  CHECK_THROWS_WITH_AS(bg::read_flow_options(rb, mb), doctest::Contains("spline_bins"), boltzlab::ConfigError);
  boltzlab::Json unknown = {{"flow", "realnvp"}};
  boltzlab::JsonReader ru(unknown, "f.json: generator");
  CHECK_THROWS_WITH_AS(bg::read_flow_options(ru, mb), doctest::Contains("realnvp"), boltzlab::ConfigError);
}

TEST_CASE("generators.spline_coupling: reverse KL on a two-mode mixture reaches the exact log Z") {
  // A 2-D mixture of two well-separated Gaussians: a coupling flow trained by reverse KL
  // alone from N(0, I) typically covers both modes at this separation (the modes are 3σ
  // apart from the origin's N(0,1) mass). The check is the importance-sampling identity:
  // log Ẑ within 5 delta-method se of the exact log Z, at an ESS a linear map cannot reach.
  const boltzlab::GaussianMixtureTarget target({0.5, 0.5}, {Eigen::Vector2d(-1.5, 0.0), Eigen::Vector2d(1.5, 0.0)},
                                               {0.16 * Eigen::Matrix2d::Identity(), 0.16 * Eigen::Matrix2d::Identity()});
  bg::GeneratorOptions o;
  o.potential.dim = 2;
  o.flow = bg::FlowFamily::spline_coupling;
  o.coupling.layers = 4;
  o.coupling.hidden = 32;
  o.coupling.bins = 8;
  o.coupling.bound = 4.0;
  bg::BoltzmannGenerator g(o, 5);
  bg::TrainOptions t;
  t.weights = bg::LossWeights::preset("ot-bg", false);
  t.weights.alpha_hjb = 0.0;
  t.weights.alpha_transport = 0.0;
  t.iterations = 300;
  t.batch_size = 256;
  t.learning_rate = 1e-2;
  t.eval_every = 0;
  t.progress = false;
  bg::train(g, target, nullptr, t);
  const int n = 20000;
  const auto s = g.sample(n, 321);
  Eigen::VectorXd lw(n);
  for (int i = 0; i < n; ++i) lw[i] = -target.reduced_energy(s.x.row(i).data(), nullptr) - s.log_q[i];
  const double ess = boltzlab::kish_ess(lw) / n;
  const auto lz = boltzlab::estimate_log_z(lw);
  const double log_z = lz.estimate, se = lz.standard_error;  // delta-method se
  // The reweighted mass of the right mode, 1/2 exactly; its delta-method se with Kish's n_eff.
  const Eigen::ArrayXd w = (lw.array() - lw.maxCoeff()).exp();
  const double right = (w * (s.x.col(0).array() > 0).cast<double>()).sum() / w.sum();
  const double right_se = std::sqrt(0.25 / (ess * n));
  MESSAGE("ESS " << ess << "  log Z " << log_z << " vs exact " << *target.log_z() << " (se " << se
                 << "), mass x > 0 " << right << " (se " << right_se << ")");
  CHECK(ess > 0.8);
  CHECK(std::abs(log_z - *target.log_z()) < 5 * se);
  CHECK(std::abs(right - 0.5) < 5 * right_se);
}
