#include "boltzlab/generators/target_bridge.hpp"

#include <cmath>
#include <string>

#include "boltzlab/core/error.hpp"

namespace boltzlab::generators {

void EnergyCut::validate() const {
  if (!(high < max)) throw ConfigError("energy_cut: high must be < max");
  if (!std::isfinite(high) || !std::isfinite(max))
    throw ConfigError("energy_cut: high and max must be finite");
}

double EnergyCut::apply(double u, double* slope) const {
  if (!std::isfinite(u)) {
    *slope = 0.0;
    return max;
  }
  double v = u, s = 1.0;
  if (u > high) {
    v = high + std::log1p(u - high);
    s = 1.0 / (1.0 + u - high);
  }
  if (v > max) {
    v = max;
    s = 0.0;
  }
  *slope = s;
  return v;
}

RowMatrix to_matrix(const torch::Tensor& x) {
  const auto c = x.detach().to(torch::kFloat64).contiguous();
  RowMatrix m(c.size(0), c.size(1));
  std::copy(c.data_ptr<double>(), c.data_ptr<double>() + c.numel(), m.data());
  return m;
}

torch::Tensor to_tensor(const RowMatrix& x) {
  auto t = torch::empty({x.rows(), x.cols()}, torch::TensorOptions().dtype(torch::kFloat64));
  std::copy(x.data(), x.data() + x.size(), t.data_ptr<double>());
  return t;
}

Eigen::VectorXd to_vector(const torch::Tensor& v) {
  const auto c = v.detach().to(torch::kFloat64).contiguous().reshape({-1});
  Eigen::VectorXd out(c.numel());
  std::copy(c.data_ptr<double>(), c.data_ptr<double>() + c.numel(), out.data());
  return out;
}

Eigen::VectorXd target_energy_values(const RowMatrix& x, const Target& target,
                                     EnergyCounters* counters, Execution exec) {
  Eigen::VectorXd u;
  const BatchStats stats = target.evaluate_batch(x, u, nullptr, exec);
  if (counters) {
    counters->evaluations += stats.evaluated;
    counters->non_finite += stats.non_finite;
  }
  return u;
}

namespace {

/// autograd::Function: forward ũ(u(x)); saves dũ/du · ∇u for backward.
class TargetEnergyFunction : public torch::autograd::Function<TargetEnergyFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x,
                               const Target* target, const EnergyCut* cut, EnergyCounters* counters,
                               Execution exec) {
    if (x.dim() != 2 || x.size(1) != static_cast<int64_t>(target->dim()))
      throw DomainError("target_energy: points have " + std::to_string(x.dim() == 2 ? x.size(1) : -1) +
                        " columns, target '" + target->name() + "' has dim " +
                        std::to_string(target->dim()));
    const RowMatrix xm = to_matrix(x);
    Eigen::VectorXd u;
    RowMatrix grad;
    const BatchStats stats = target->evaluate_batch(xm, u, &grad, exec);
    std::size_t n_cut = 0;
    auto out = torch::empty({x.size(0)}, x.options());
    auto g = torch::empty({x.size(0), x.size(1)}, x.options());
    double* po = out.data_ptr<double>();
    double* pg = g.data_ptr<double>();
    const auto d = x.size(1);
    for (Eigen::Index i = 0; i < xm.rows(); ++i) {
      double slope = 0.0;
      po[i] = cut->apply(u[i], &slope);
      if (std::isfinite(u[i]) && u[i] > cut->high) ++n_cut;
      for (int64_t k = 0; k < d; ++k) {
        const double gk = grad(i, k);
        pg[i * d + k] = slope == 0.0 || !std::isfinite(gk) ? 0.0 : slope * gk;
      }
    }
    if (counters) {
      counters->evaluations += stats.evaluated;
      counters->non_finite += stats.non_finite;
      counters->cut += n_cut;
    }
    ctx->save_for_backward({g});
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto g = ctx->get_saved_variables()[0];
    // ∂/∂x_i Σ_j c_j ũ(u(x_j)) = c_i ũ'(u(x_i)) ∇u(x_i).
    return {grad_outputs[0].unsqueeze(1) * g, torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

torch::Tensor target_energy(const torch::Tensor& x, const Target& target, const EnergyCut& cut,
                            EnergyCounters* counters, Execution exec) {
  return TargetEnergyFunction::apply(x, &target, &cut, counters, exec);
}

}  // namespace boltzlab::generators
