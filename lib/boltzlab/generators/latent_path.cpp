#include "boltzlab/generators/latent_path.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"

namespace boltzlab::generators {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

/// Gradient of `value` (a scalar) with respect to z, non-finite entries set to 0 (rows
/// without target mass, whose gradient is never read).
RowMatrix gradient_rows(const torch::Tensor& value, const torch::Tensor& z, bool retain) {
  auto g = torch::autograd::grad({value}, {z}, {}, retain, false)[0];
  g = torch::nan_to_num(g.detach(), 0.0, 0.0, 0.0);
  return to_matrix(g.contiguous());
}

}  // namespace

GeneratorLatentPath::GeneratorLatentPath(BoltzmannGenerator& model, const Target& target,
                                         const MolecularFlowSpace* space, EnergyCounters* counters,
                                         std::int64_t chunk, double weight_exponent)
    : model_(&model), target_(target), space_(space), counters_(counters), chunk_(chunk), alpha_(weight_exponent) {
  if (!(weight_exponent > 0.0 && std::isfinite(weight_exponent)))
    throw DomainError("annealed SMC: the weight exponent must be > 0, got " + std::to_string(weight_exponent));
  if (model.options().stochastic())
    throw DomainError("annealed SMC needs a deterministic flow (exact log q); this model has noise " +
                      std::to_string(model.options().noise));
  const std::int64_t target_dim = space ? 3 * space->coordinates().n_atoms() : model.dim();
  if (static_cast<std::size_t>(target_dim) != target.dim() || (space && space->dim() != model.dim()))
    throw DomainError("annealed SMC: model dimension " + std::to_string(model.dim()) + " does not match target " +
                      "dimension " + std::to_string(target.dim()));
  if (chunk < 1) throw DomainError("annealed SMC: chunk must be >= 1");
}

RowMatrix GeneratorLatentPath::sample_reference(std::size_t n, std::uint64_t seed) const {
  return to_matrix(model_->base_sample(static_cast<std::int64_t>(n), seed).contiguous());
}

std::vector<std::size_t> GeneratorLatentPath::periodic_columns() const {
  std::vector<std::size_t> out;
  for (std::int64_t c : model_->periodic_columns()) out.push_back(static_cast<std::size_t>(c));
  return out;
}

void GeneratorLatentPath::project(double* v) const {
  const auto& po = model_->options().potential;
  if (po.n_particles > 0)
    remove_center_of_mass(v, static_cast<std::size_t>(po.n_particles), static_cast<std::size_t>(po.spatial_dim));
}

std::size_t GeneratorLatentPath::evaluate(const RowMatrix& z, PathValues& out) const {
  const Eigen::Index n = z.rows(), d = z.cols();
  out.u0.resize(n);
  out.u1.resize(n);
  out.g0.resize(n, d);
  out.g1.resize(n, d);
  const std::size_t chunks = static_cast<std::size_t>((n + chunk_ - 1) / chunk_);
  for_each_index(chunks, [&](std::size_t c) {
    const Eigen::Index b = static_cast<Eigen::Index>(c) * chunk_;
    evaluate_rows(z, b, std::min<Eigen::Index>(n, b + chunk_), out);
  });
  return static_cast<std::size_t>(n);
}

void GeneratorLatentPath::evaluate_rows(const RowMatrix& z, Eigen::Index begin, Eigen::Index end,
                                        PathValues& out) const {
  torch::AutoGradMode grad_mode(true);
  const Eigen::Index m = end - begin;
  const torch::Tensor zt = to_tensor(RowMatrix(z.middleRows(begin, m))).requires_grad_(true);
  const FlowBatch f = model_->forward(zt, model_->options().sample_steps, false);
  const torch::Tensor log_base = model_->base_log_density(zt);
  torch::Tensor x = f.x, log_q = f.log_q;
  torch::Tensor keep = torch::ones({m}, torch::TensorOptions().dtype(torch::kBool));
  if (space_ != nullptr) {
    const auto dec = space_->from_flow(f.x);
    x = dec.cartesian;
    log_q = space_->log_q_cartesian(f.log_q, dec);
    keep = dec.valid & dec.chirality_ok;
  }
  const RowMatrix xm = to_matrix(x.detach().contiguous());
  RowMatrix gu = RowMatrix::Zero(m, xm.cols());
  Eigen::VectorXd u(m);
  const auto keep_acc = keep.accessor<bool, 1>();
  for (Eigen::Index i = 0; i < m; ++i) {
    u[i] = target_.reduced_energy(xm.row(i).data(), gu.row(i).data());
    if (counters_ != nullptr) ++counters_->evaluations;
    const bool finite = std::isfinite(u[i]) && gu.row(i).allFinite();
    if (!finite && counters_ != nullptr) ++counters_->non_finite;
    if (!finite || !keep_acc[i]) {
      u[i] = kInf;
      gu.row(i).setZero();
    }
  }
  // u₁ = α(u + log q) − log ρ₀: its z-gradient through the flow (log q) and through x (∇u · ∂x/∂z).
  const torch::Tensor pulled = alpha_ * (log_q + (x * to_tensor(gu)).sum(1)) - log_base;
  const Eigen::VectorXd lq = to_vector(log_q.detach()), lb = to_vector(log_base.detach());
  out.g0.middleRows(begin, m) = gradient_rows(-log_base.sum(), zt, true);
  out.g1.middleRows(begin, m) = gradient_rows(pulled.sum(), zt, false);
  for (Eigen::Index i = 0; i < m; ++i) {
    out.u0[begin + i] = -lb[i];
    const double u1 = alpha_ * (u[i] + lq[i]) - lb[i];
    out.u1[begin + i] = std::isfinite(u1) ? u1 : kInf;
  }
}

RowMatrix GeneratorLatentPath::configurations(const RowMatrix& z) const {
  RowMatrix out(z.rows(), static_cast<Eigen::Index>(target_.dim()));
  const std::size_t chunks = static_cast<std::size_t>((z.rows() + chunk_ - 1) / chunk_);
  for_each_index(chunks, [&](std::size_t c) {
    torch::NoGradGuard no_grad;
    const Eigen::Index b = static_cast<Eigen::Index>(c) * chunk_, m = std::min<Eigen::Index>(z.rows() - b, chunk_);
    const FlowBatch f = model_->forward(to_tensor(RowMatrix(z.middleRows(b, m))), model_->options().sample_steps, false);
    const torch::Tensor x = space_ != nullptr ? space_->from_flow(f.x).cartesian : f.x;
    out.middleRows(b, m) = to_matrix(x.contiguous());
  });
  return out;
}

}  // namespace boltzlab::generators
