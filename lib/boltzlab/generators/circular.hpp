#pragma once
/// \file circular.hpp
/// Small circular-statistics helpers shared by the base densities (internal_coordinates.cpp,
/// conditional_base.cpp): von Mises normalizer, maximum-likelihood concentration, exact
/// von Mises draws, angle wrapping, and the EM loop of their mixture fits.
#include <cmath>
#include <cstddef>
#include <limits>

#include <Eigen/Core>
#include <torch/torch.h>

#include "boltzlab/core/constants.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/vector_math.hpp"

namespace boltzlab::generators::circular {

using ::boltzlab::kPi;
using ::boltzlab::kTwoPi;

/// log I₀(κ), stable for large κ (exponentially scaled Bessel function).
torch::Tensor log_i0(const torch::Tensor& kappa);
double log_i0(double kappa);

/// Maximum-likelihood concentration of a von Mises density for mean resultant length R̄:
/// the root of A(κ) = I₁(κ)/I₀(κ) = R̄ (Newton from the Best–Fisher start), capped at max_kappa.
double ml_kappa(double rbar, double max_kappa);

/// One von Mises(μ, κ) draw in [−π, π) (κ = 0: uniform), Best & Fisher (1979),
/// Appl. Statist. 28, 152 (wrapped-Cauchy envelope).
double sample_von_mises(Rng& rng, double mu, double kappa);

/// a − 2π ⌊(a + π)/2π⌋ ∈ [−π, π) (derivative 1 almost everywhere).
torch::Tensor wrap(const torch::Tensor& a);
double wrap(double a);

/// The EM loop shared by the mixture fits (von Mises, Gaussian, joint von Mises): `log_joint()` returns
/// the n × K matrix log w_k + log f_k(t_i) of the current parameters, `m_step(k, r, n_k)`
/// updates component k from its responsibilities r (n_k = Σ r > 0), `drop(k)` neutralizes an
/// empty component. Stops when the log-likelihood changes by < 1e-9 relative; returns it.
template <class LogJoint, class MStep, class Drop>
double run_em(Eigen::Index n, std::size_t k_count, int max_iterations, LogJoint log_joint, MStep m_step, Drop drop) {
  double previous = -std::numeric_limits<double>::infinity(), ll = previous;
  for (int it = 0; it < max_iterations; ++it) {
    const Eigen::MatrixXd lp = log_joint();
    const Eigen::VectorXd mx = lp.rowwise().maxCoeff();
    Eigen::MatrixXd r = lp.colwise() - mx;
    exp_in_place(r.data(), static_cast<std::size_t>(r.size()));
    const Eigen::VectorXd norm = r.rowwise().sum();
    ll = (mx.array() + norm.array().log()).sum();
    if (std::abs(ll - previous) < 1e-9 * (1.0 + std::abs(ll))) break;
    previous = ll;
    const Eigen::MatrixXd resp = r.array().colwise() / norm.array();
    for (std::size_t k = 0; k < k_count; ++k) {
      const Eigen::VectorXd col = resp.col(static_cast<Eigen::Index>(k));
      const double nk = col.sum();
      if (nk < 1e-8 * static_cast<double>(n)) {
        drop(k);
      } else {
        m_step(k, col, nk);
      }
    }
  }
  return ll;
}

}  // namespace boltzlab::generators::circular
