#include "boltzlab/generators/relaxed_game.hpp"

#include <cmath>
#include <string>

#include "boltzlab/core/error.hpp"

namespace boltzlab::generators {

RelaxedGameTerm relaxed_game_term(BoltzmannGenerator& model, const torch::Tensor& z, int steps, bool with_costs,
                                  double epsilon, const Target& target, const EnergyCut& cut,
                                  EnergyCounters* counters, Execution exec) {
  if (!(epsilon > 0.0) || !std::isfinite(epsilon))
    throw ConfigError("relaxed game: epsilon is " + std::to_string(epsilon) + ", but must be finite and > 0");
  if (model.velocity() != nullptr) throw DomainError("relaxed game: needs the potential's velocity v = -grad Phi");
  const FlowPath path = model.forward_path(z, steps, with_costs, 1.0 / epsilon);
  const std::size_t n = path.t.size();
  const double h = model.options().time / steps;
  RelaxedGameTerm out;
  torch::Tensor interaction = torch::zeros({z.size(0)}, z.options());
  torch::Tensor residual = torch::zeros({z.size(0)}, z.options());
  torch::Tensor g_end;
  for (std::size_t k = 0; k < n; ++k) {
    const double t = path.t[k];
    const double w = (k == 0 || k + 1 == n) ? 0.5 * h : h;  // trapezoid weights
    // g_k at t = 0 is log ρ₀(z) + ũ(z): constant in the parameters, kept for the value of J.
    const auto g = path.log_q[k] + target_energy(path.x[k], target, cut, counters, exec);
    interaction = interaction + (w * std::exp(-t / epsilon) / epsilon) * g;
    if (with_costs) {
      auto& phi = *model.potential();
      const auto der = phi.derivatives(path.y[k], t, /*with_laplacian=*/false);
      const auto hjb = der.dt - 0.5 * (der.grad_x * der.grad_x).sum(1);
      residual = residual + w * (hjb - (phi.value(path.y[k], t) - g) / epsilon).abs();
    }
    if (k + 1 == n) g_end = g;
  }
  out.sum = (std::exp(-model.options().time / epsilon) * g_end + interaction).sum();
  out.terminal = g_end.detach().sum();
  out.transport = path.end.transport;
  out.hjb = with_costs ? residual : path.end.hjb;
  return out;
}

}  // namespace boltzlab::generators
