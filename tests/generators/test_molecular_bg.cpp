// The molecular Boltzmann generator (alanine dipeptide in internal coordinates): the
// reverse-KL term through the flow-space map (y → Cartesian, log π_y = −u(x(y)) + L(y))
// against finite differences with the real OBC2 force field, masking of invalid draws,
// the torus base (periodic torsions): 2π-shift invariance of log q, sample → evaluate
// consistency of wrapped samples, save → load, and a short end-to-end training.
#include <cmath>
#include <filesystem>
#include <limits>

#include "support/torch_doctest.hpp"
#include "support/internal_coordinates_support.hpp"

#include "boltzlab/core/error.hpp"
#include "boltzlab/generators/generator.hpp"
#include "boltzlab/generators/molecular_space.hpp"
#include "boltzlab/generators/trainer.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/targets/registry.hpp"

namespace bg = boltzlab::generators;
using boltzlab::RowMatrix;

namespace {

constexpr double kPi = 3.14159265358979323846;
const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

/// 100 frames of 300 K OBC2 Langevin MD (nm), tests/data/README.md.
torch::Tensor md_frames() {
  const RowMatrix f = boltzlab::read_npy_matrix(std::string(BOLTZLAB_TEST_DATA) + "/ala2_obc2_positions.npy", 66);
  return bg::to_tensor(f);
}

const boltzlab::Potential& obc2() {
  static const boltzlab::Potential p =
      boltzlab::load_potential(std::string(BOLTZLAB_SOURCE_DIR) + "/potentials/alanine_dipeptide.json");
  return p;
}

struct Setup {
  bg::MolecularFlowSpace space;
  torch::Tensor y_data;
  bg::BoltzmannGenerator model;
};

/// A tiny model on the 60 flow coordinates, periodic in the torsions, with a von Mises
/// base (or a von Mises mixture, `mixture`) fitted to the frames; parameters perturbed so
/// that the ResNet part is active.
Setup tiny_setup(int width, int steps, double perturb, bool mixture = false) {
  const auto frames = md_frames();
  auto space = bg::MolecularFlowSpace::fit(boltzlab::test::alanine_ic(), frames);
  const auto y = space.to_flow(frames).first;
  bg::GeneratorOptions o;
  o.potential.dim = 60;
  o.potential.width = width;
  o.potential.layers = 2;
  for (const auto c : space.coordinates().torsion_indices()) o.potential.periodic.push_back(static_cast<int>(c));
  o.steps = steps;
  o.sample_steps = steps;
  bg::BoltzmannGenerator g(o, 5);
  g.set_base(mixture ? bg::BaseDensity::fit_von_mises_mixture(y, space.torsion_mask())
                     : bg::BaseDensity::fit_von_mises(y, space.torsion_mask()));
  {
    torch::NoGradGuard ng;
    torch::manual_seed(12);
    for (auto& p : g.potential()->parameters()) p.add_(perturb * torch::randn(p.sizes(), kF64));
  }
  return {std::move(space), y, std::move(g)};
}

bg::FlowSpaceMap molecular_map(const bg::MolecularFlowSpace& space) {
  bg::FlowSpaceMap m;
  const auto* sp = &space;
  m.map = [sp](const torch::Tensor& y) {
    const auto d = sp->from_flow(y);
    return bg::FlowSpaceImage{d.cartesian, d.logdet, d.valid & d.chirality_ok};
  };
  return m;
}

}  // namespace

TEST_CASE("molecular BG: reverse-KL gradient through the internal-coordinate map matches finite differences") {
  // J(θ) = Σ_i [log q_y(y_i) + ũ(x(y_i)) − L(y_i)] for fixed base draws z_i, y_i = F_θ(z_i),
  // with the real OBC2 energy (OpenMM Reference, double precision) and the exact
  // internal → Cartesian log-det. Central differences with h = 1e-6: truncation
  // O(h²·J''') ≲ 1e-9 relative, rounding ~1e-16·|J|/h with |J| ~ 1e3 → 1e-7 absolute.
  // Tolerance 1e-5·(1 + |fd|), far below the size of a wrong term (a missing −L or
  // a missing chain-rule factor changes the derivative at O(1)).
  auto s = tiny_setup(6, 2, 0.05);
  const auto& target = *obc2().target;
  const auto map = molecular_map(s.space);
  const auto z = s.model.base_sample(12, 21);
  bg::EnergyCut cut;  // u_high = 1e3 (linear branch for these samples, checked below)
  bg::EnergyCounters counters;
  auto term = [&]() {
    return bg::reverse_kl_term(s.model, z, 2, false, target, cut, &map, &counters, boltzlab::Execution::kSerial);
  };
  s.model.potential()->zero_grad();
  const auto rk = term();
  REQUIRE(rk.valid == 12);
  CHECK(rk.invalid == 0);
  CHECK(counters.cut == 0);
  CHECK(std::isfinite(rk.sum.item<double>()));
  rk.sum.backward();
  const double h = 1e-6;
  int checked = 0;
  for (auto& item : s.model.potential()->named_parameters()) {
    auto p = item.value();
    if (!p.grad().defined()) continue;  // c does not enter ∇Φ
    const auto grad = p.grad().reshape({-1});
    auto flat = p.data().view({-1});
    for (int64_t k : {int64_t(0), flat.numel() / 3, flat.numel() - 1}) {
      const double orig = flat[k].item<double>();
      double up, down;
      {
        torch::NoGradGuard ng;
        flat[k] = orig + h;
        up = term().sum.item<double>();
        flat[k] = orig - h;
        down = term().sum.item<double>();
        flat[k] = orig;
      }
      const double fd = (up - down) / (2 * h);
      const double an = grad[k].item<double>();
      INFO(item.key() << "[" << k << "]: autograd " << an << " vs fd " << fd);
      CHECK(std::abs(an - fd) < 1e-5 * (1.0 + std::abs(fd)));
      ++checked;
    }
  }
  CHECK(checked >= 18);

  // The same sum by hand: log q_y + u(x(y)) − L(y) with the sampled y (no gradient).
  torch::NoGradGuard ng;
  const bg::FlowBatch f = s.model.forward(z, 2, false);
  const auto d = s.space.from_flow(f.x);
  const Eigen::VectorXd u = bg::target_energy_values(bg::to_matrix(d.cartesian), target, nullptr);
  double by_hand = 0.0;
  for (int i = 0; i < 12; ++i) by_hand += f.log_q[i].item<double>() + u[i] - d.logdet[i].item<double>();
  CHECK(term().sum.item<double>() == doctest::Approx(by_hand).epsilon(1e-12));
}

TEST_CASE("molecular BG: invalid draws are masked out of the reverse KL and never poison the gradient") {
  // A map that declares rows with y₀ > 0 invalid and, row-wise through the graph, returns
  // NaN values (with NaN derivatives) there — as log r for r < 0 would: the term and its
  // gradient must equal those of the valid rows alone, and be finite.
  auto s = tiny_setup(6, 2, 0.05);
  const auto& target = *obc2().target;
  const auto inner = molecular_map(s.space);
  bg::FlowSpaceMap poisoned;
  poisoned.map = [&inner](const torch::Tensor& y) {
    auto img = inner.map(y);
    const auto bad = y.select(1, 0) > 0.0;
    const auto poison = 0.0 * torch::log(-y.select(1, 0));  // NaN where y₀ > 0, 0 elsewhere
    img.x = img.x + poison.unsqueeze(1);
    img.logdet = img.logdet + poison;
    img.valid = img.valid & ~bad;
    return img;
  };
  const auto z = s.model.base_sample(16, 4);
  bg::EnergyCut cut;
  auto grads_of = [&](const torch::Tensor& zz, const bg::FlowSpaceMap* m, bg::ReverseKlTerm* out) {
    s.model.potential()->zero_grad();
    *out = bg::reverse_kl_term(s.model, zz, 2, true, target, cut, m, nullptr, boltzlab::Execution::kSerial);
    out->sum.backward();
    std::vector<torch::Tensor> g;
    for (auto& p : s.model.potential()->parameters())
      if (p.grad().defined()) g.push_back(p.grad().clone());
    return g;
  };
  bg::ReverseKlTerm all, kept;
  const auto g_all = grads_of(z, &poisoned, &all);
  torch::Tensor keep_idx;
  {
    torch::NoGradGuard ng;
    keep_idx = (s.model.forward(z, 2, false).x.select(1, 0) <= 0.0).nonzero().reshape({-1});
  }
  REQUIRE(all.invalid > 0);
  REQUIRE(all.valid > 0);
  CHECK(all.valid == keep_idx.size(0));
  CHECK(all.transport.size(0) == 16);  // the path costs still cover every draw
  const auto g_kept = grads_of(z.index_select(0, keep_idx), &inner, &kept);
  CHECK(kept.invalid == 0);
  CHECK(std::isfinite(all.sum.item<double>()));
  CHECK(all.sum.item<double>() == doctest::Approx(kept.sum.item<double>()).epsilon(1e-12));
  REQUIRE(g_all.size() == g_kept.size());
  for (std::size_t k = 0; k < g_all.size(); ++k) {
    CHECK(torch::isfinite(g_all[k]).all().item<bool>());
    CHECK((g_all[k] - g_kept[k]).abs().max().item<double>() <= 1e-10 * (1.0 + g_kept[k].abs().max().item<double>()));
  }
}

TEST_CASE("molecular BG: log q is 2π-periodic in the torsions; wrapped samples re-evaluate to their log q") {
  bool mixture = false;
  SUBCASE("von Mises base") { mixture = false; }
  SUBCASE("von Mises mixture base") { mixture = true; }
  auto s = tiny_setup(8, 16, 0.1, mixture);
  const auto& model = s.model;
  REQUIRE(model.base() != nullptr);
  // The MD frames have multimodal torsions (ψ, methyl rotors): BIC keeps several components.
  if (mixture) CHECK(model.base()->components() > 1);
  const auto torsions = s.space.coordinates().torsion_indices();
  CHECK(model.periodic_columns() == torsions);

  // (1) log q(y) = log q(y + 2πk) for integer k on the torsion columns (reverse integration
  // of MD frames): Φ sees (cos, sin) of those columns and the base is periodic, so only
  // rounding differs (|y| ≲ 20 → ~1e-14 in the angles, ~1e-12 in log q).
  torch::manual_seed(3);
  const auto y = s.y_data.narrow(0, 0, 24).clone();
  auto shifted = y.clone();
  const auto k = torch::randint(-2, 3, {24, static_cast<int64_t>(torsions.size())}, kF64);
  for (std::size_t c = 0; c < torsions.size(); ++c) {
    auto col = shifted.select(1, torsions[c]);
    col.add_(2.0 * kPi * k.select(1, static_cast<int64_t>(c)));
  }
  CHECK(k.abs().sum().item<double>() > 0);
  const Eigen::VectorXd lq = s.model.log_q(bg::to_matrix(y));
  const Eigen::VectorXd lq_shift = s.model.log_q(bg::to_matrix(shifted));
  CHECK((lq - lq_shift).cwiseAbs().maxCoeff() < 1e-9);
  // A non-periodic column is not invariant (the check above is not vacuous).
  auto bond_shift = y.clone();
  bond_shift.select(1, 0).add_(2.0 * kPi);
  CHECK((lq - s.model.log_q(bg::to_matrix(bond_shift))).cwiseAbs().maxCoeff() > 1e-3);

  // (2) sample() = forward flow of the same base draws, wrapped into [−π, π), same log q.
  const int n = 64;
  const auto z = s.model.base_sample(n, 17);
  torch::Tensor x_unwrapped, lq_forward;
  {
    torch::NoGradGuard ng;
    const auto f = s.model.forward(z, s.model.options().sample_steps, false);
    x_unwrapped = f.x;
    lq_forward = f.log_q;
  }
  const bg::GeneratedSamples smp = s.model.sample(n, 17);
  CHECK((bg::to_vector(lq_forward) - smp.log_q).cwiseAbs().maxCoeff() == 0.0);
  const auto xs = bg::to_tensor(smp.x);
  const auto tcols = torch::tensor(torsions, torch::TensorOptions().dtype(torch::kLong));
  const auto t_wrapped = xs.index_select(1, tcols), t_raw = x_unwrapped.index_select(1, tcols);
  CHECK((t_wrapped >= -kPi).all().item<bool>());
  CHECK((t_wrapped < kPi).all().item<bool>());
  const auto moved = (t_wrapped - t_raw).abs() > 1.0;  // wrapped by a multiple of 2π
  REQUIRE(moved.any().item<bool>());  // some sample left [−π, π) and was wrapped
  CHECK(torch::remainder(t_wrapped - t_raw + kPi, 2.0 * kPi).sub(kPi).abs().max().item<double>() < 1e-12);

  // (3) evaluate(sample) = its log q: the reverse RK4 from the wrapped point. Forward and
  // reverse RK4 (16 steps) invert each other up to the O(h⁴) local errors; for this
  // smooth, slow random field the round trip agrees to ~1e-8 — tolerance 1e-6. The
  // wrapped and unwrapped points agree to rounding.
  const Eigen::VectorXd back_wrapped = s.model.log_q(smp.x);
  const Eigen::VectorXd back_raw = s.model.log_q(bg::to_matrix(x_unwrapped));
  CHECK((back_wrapped - back_raw).cwiseAbs().maxCoeff() < 1e-9);
  INFO("max |log q(sample) − evaluate| = " << (back_wrapped - smp.log_q).cwiseAbs().maxCoeff());
  CHECK((back_wrapped - smp.log_q).cwiseAbs().maxCoeff() < 1e-6);

  // (4) save → load keeps the torus base: identical samples.
  const auto path = std::filesystem::temp_directory_path() / "boltzlab_test_molecular_bg_model.pt";
  s.model.save(path);
  auto loaded = bg::BoltzmannGenerator::load(path);
  std::filesystem::remove(path);
  REQUIRE(loaded.base() != nullptr);
  CHECK(loaded.base()->von_mises());
  CHECK(loaded.base()->kind() == model.base()->kind());
  CHECK(loaded.periodic_columns() == torsions);
  const bg::GeneratedSamples again = loaded.sample(n, 17);
  CHECK((again.x - smp.x).cwiseAbs().maxCoeff() == 0.0);
  CHECK((again.log_q - smp.log_q).cwiseAbs().maxCoeff() == 0.0);
}
