#include "boltzlab/generators/cnf.hpp"

#include <cmath>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/generators/velocity_field.hpp"

namespace boltzlab::generators {

namespace {

struct Rates {
  torch::Tensor dx, dlog_det, dtransport, dhjb;
};

Rates rates(OtPotentialImpl& phi, const torch::Tensor& x, double t, bool with_costs, double half_sigma2,
            double decay) {
  const auto der = phi.derivatives(x, t, /*with_laplacian=*/true);
  Rates r;
  r.dx = -der.grad_x;
  r.dlog_det = -der.laplacian;
  if (with_costs) {
    const auto half_sq = 0.5 * (der.grad_x * der.grad_x).sum(1);
    r.dtransport = decay > 0.0 ? std::exp(-t * decay) * half_sq : half_sq;
    r.dhjb = half_sigma2 > 0.0 ? (der.dt - half_sq + half_sigma2 * der.laplacian).abs() : (der.dt - half_sq).abs();
  }
  return r;
}

// Free velocity: dx = v, dℓ = ∇·v, the running cost ½|v|²; no potential, so no HJB residual.
Rates rates(FreeVelocity& field, const torch::Tensor& x, double t, bool with_costs, double /*half_sigma2*/,
            double decay) {
  const VelocityRates v = field.evaluate(x, t);
  Rates r;
  r.dx = v.v;
  r.dlog_det = v.divergence;
  if (with_costs) {
    const auto half_sq = 0.5 * (v.v * v.v).sum(1);
    r.dtransport = decay > 0.0 ? std::exp(-t * decay) * half_sq : half_sq;
    r.dhjb = torch::zeros_like(half_sq);
  }
  return r;
}

template <class Field>
CnfState integrate_field(Field& field, int dim, const torch::Tensor& x0, double t0, double t1, int steps,
                         bool with_costs, const CnfExtras& extras) {
  if (steps < 1) throw ConfigError("cnf: steps is " + std::to_string(steps) + ", but must be >= 1");
  if (x0.dim() != 2 || x0.size(1) != dim)
    throw DomainError("cnf: points have shape [" + std::to_string(x0.size(0)) + ", " +
                      std::to_string(x0.dim() == 2 ? x0.size(1) : -1) + "], expected [B, " +
                      std::to_string(dim) + "]");
  const double dt = (t1 - t0) / steps;
  const double adt = std::abs(dt);
  const auto batch = x0.size(0);
  const double sigma = extras.sigma, decay = extras.transport_decay;
  const torch::Tensor& noise = extras.noise;
  const bool stochastic = sigma > 0.0 && noise.defined();
  if (stochastic && (noise.dim() != 3 || noise.size(0) != steps || noise.size(1) != batch || noise.size(2) != x0.size(1)))
    throw DomainError("cnf: noise must have shape [steps, B, d] = [" + std::to_string(steps) + ", " +
                      std::to_string(batch) + ", " + std::to_string(x0.size(1)) + "]");
  const double kick = sigma * std::sqrt(adt);
  const bool forward_in_time = t1 > t0;
  const double half_sigma2 = stochastic ? 0.5 * sigma * sigma : 0.0;
  CnfState s;
  s.x = x0;
  s.log_det = torch::zeros({batch}, x0.options());
  s.transport = torch::zeros({batch}, x0.options());
  s.hjb = torch::zeros({batch}, x0.options());
  double t = t0;
  auto record = [&] {
    if (extras.path_x) extras.path_x->push_back(s.x);
    if (extras.path_log_det) extras.path_log_det->push_back(s.log_det);
  };
  record();
  for (int k = 0; k < steps; ++k) {
    if (stochastic && !forward_in_time) s.x = s.x - kick * noise[k];  // backward kernel: noise, then Ψ⁻¹
    const Rates k1 = rates(field, s.x, t, with_costs, half_sigma2, decay);
    const Rates k2 = rates(field, s.x + (0.5 * dt) * k1.dx, t + 0.5 * dt, with_costs, half_sigma2, decay);
    const Rates k3 = rates(field, s.x + (0.5 * dt) * k2.dx, t + 0.5 * dt, with_costs, half_sigma2, decay);
    const Rates k4 = rates(field, s.x + dt * k3.dx, t + dt, with_costs, half_sigma2, decay);
    s.x = s.x + (dt / 6.0) * (k1.dx + 2.0 * k2.dx + 2.0 * k3.dx + k4.dx);
    s.log_det = s.log_det + (dt / 6.0) * (k1.dlog_det + 2.0 * k2.dlog_det + 2.0 * k3.dlog_det +
                                          k4.dlog_det);
    if (with_costs) {
      s.transport = s.transport + (adt / 6.0) * (k1.dtransport + 2.0 * k2.dtransport +
                                                 2.0 * k3.dtransport + k4.dtransport);
      s.hjb = s.hjb + (adt / 6.0) * (k1.dhjb + 2.0 * k2.dhjb + 2.0 * k3.dhjb + k4.dhjb);
    }
    if (stochastic && forward_in_time) s.x = s.x + kick * noise[k];  // forward kernel: Ψ, then noise
    t = t0 + (k + 1) * dt;
    record();
  }
  return s;
}

}  // namespace

CnfState integrate(OtPotentialImpl& phi, const torch::Tensor& x0, double t0, double t1, int steps, bool with_costs,
                   const CnfExtras& extras) {
  return integrate_field(phi, phi.options().dim, x0, t0, t1, steps, with_costs, extras);
}

CnfState integrate(FreeVelocity& velocity, const torch::Tensor& x0, double t0, double t1, int steps,
                   bool with_costs, const CnfExtras& extras) {
  return integrate_field(velocity, velocity.options().dim, x0, t0, t1, steps, with_costs, extras);
}

}  // namespace boltzlab::generators
