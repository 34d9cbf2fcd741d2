// The hand-fused OT-Flow loss and its hand-written adjoint (fused_otflow.hpp) against
// LibTorch autograd through cnf.hpp's integrate(): same loss value and the same
// parameter gradients to rounding error (float64, relative 1e-9). Both compute the
// gradient of the same discrete RK4 map, so only rounding separates them.
#include "support/torch_doctest.hpp"

#include <cmath>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/generators/cnf.hpp"
#include "boltzlab/generators/fused_otflow.hpp"

namespace bg = boltzlab::generators;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

bg::OtPotential make_phi(int d, int width, int seed) {
  bg::OtPotentialOptions po;
  po.dim = d;
  po.width = width;
  bg::OtPotential phi(po);
  torch::NoGradGuard ng;
  torch::manual_seed(seed);
  for (auto& p : phi->parameters()) p.copy_(0.5 * torch::randn(p.sizes(), kF64));
  return phi;
}

boltzlab::RowMatrix make_data(int n, int d) {
  boltzlab::RowMatrix x(n, d);
  boltzlab::Rng rng(3, 0);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < d; ++k) x(i, k) = 0.3 + 1.2 * rng.normal();
  return x;
}

/// The same loss through autograd: −mean log q + α_L mean L + α_R mean R.
std::pair<double, std::vector<torch::Tensor>> autograd_loss(bg::OtPotentialImpl& phi,
                                                           const boltzlab::RowMatrix& x,
                                                           const bg::FusedOtFlowOptions& o) {
  const int d = phi.options().dim;
  const auto xt = torch::from_blob(const_cast<double*>(x.data()), {x.rows(), x.cols()}, kF64).clone();
  const auto s = bg::integrate(phi, xt, o.t_end, 0.0, o.steps, true);
  const auto log_q = -0.5 * (s.x * s.x).sum(1) - 0.5 * d * std::log(2.0 * M_PI) + s.log_det;
  const auto loss = -log_q.mean() + o.alpha_transport * s.transport.mean() + o.alpha_hjb * s.hjb.mean();
  auto params = phi.parameters();
  auto grads = torch::autograd::grad({loss}, params, {}, false, false, /*allow_unused=*/true);
  for (std::size_t i = 0; i < grads.size(); ++i)
    if (!grads[i].defined()) grads[i] = torch::zeros_like(params[i]);
  return {loss.item<double>(), grads};
}

void check_matches_autograd(int d, int width, int steps, int chunk) {
  auto phi = make_phi(d, width, 5 + d);
  const auto x = make_data(37, d);
  bg::FusedOtFlowOptions o;
  o.steps = steps;
  o.t_end = 0.8;
  o.alpha_transport = 0.3;  // large weights so the cost adjoints matter
  o.alpha_hjb = 0.7;
  o.chunk_size = chunk;
  const auto fused = bg::fused_otflow_loss(*phi, x, o);
  const auto [loss, grads] = autograd_loss(*phi, x, o);
  CHECK(std::abs(fused.loss - loss) <= 1e-11 * (1.0 + std::abs(loss)));
  const auto named = phi->named_parameters();
  REQUIRE(fused.grads.size() == grads.size());
  for (std::size_t i = 0; i < grads.size(); ++i) {
    const double scale = grads[i].abs().max().item<double>() + 1e-12;
    const double err = (fused.grads[i] - grads[i]).abs().max().item<double>();
    INFO("parameter " << named[i].key() << ": max |fused − autograd| = " << err << ", scale " << scale);
    CHECK(err <= 1e-9 * scale);
  }
}

}  // namespace

TEST_CASE("fused_otflow: loss and parameter gradients match LibTorch autograd (d = 2)") {
  check_matches_autograd(2, 8, 3, 256);
}

TEST_CASE("fused_otflow: loss and parameter gradients match LibTorch autograd (d = 3, chunks)") {
  check_matches_autograd(3, 6, 2, 10);  // 37 rows in 4 chunks: reduction over chunks
}

TEST_CASE("fused_otflow: backward stores the gradients; unsupported architectures are refused") {
  auto phi = make_phi(2, 5, 1);
  const auto x = make_data(9, 2);
  bg::FusedOtFlowOptions o;
  o.steps = 2;
  const auto r = bg::fused_otflow_backward(*phi, x, o);
  auto params = phi->parameters();
  for (std::size_t i = 0; i < params.size(); ++i) {
    REQUIRE(params[i].grad().defined());
    CHECK(torch::equal(params[i].grad(), r.grads[i]));
  }
  bg::OtPotentialOptions po;
  po.dim = 2;
  po.layers = 3;
  bg::OtPotential deep(po);
  CHECK_FALSE(bg::fused_otflow_supports(deep->options()));
  CHECK_THROWS_AS(bg::fused_otflow_loss(*deep, x, o), boltzlab::ConfigError);
  o.steps = 0;
  CHECK_THROWS_AS(bg::fused_otflow_loss(*phi, x, o), boltzlab::ConfigError);
}
