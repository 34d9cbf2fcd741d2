#pragma once
/// \file circular.hpp
/// Small circular-statistics helpers shared by the base densities (internal_coordinates.cpp,
/// conditional_base.cpp): von Mises normalizer, maximum-likelihood concentration, exact
/// von Mises draws and angle wrapping.
#include <torch/torch.h>

#include "boltzlab/core/rng.hpp"

namespace boltzlab::generators::circular {

inline constexpr double kPi = 3.14159265358979323846;
inline constexpr double kTwoPi = 2.0 * kPi;

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

}  // namespace boltzlab::generators::circular
