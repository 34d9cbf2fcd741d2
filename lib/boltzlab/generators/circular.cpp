#include "boltzlab/generators/circular.hpp"

#include <algorithm>
#include <cmath>

#include "boltzlab/core/constants.hpp"
#include "boltzlab/molecules/internal_coordinates.hpp"

namespace boltzlab::generators {
namespace {

torch::TensorOptions f64() { return torch::TensorOptions().dtype(torch::kDouble); }

}  // namespace

namespace circular {

torch::Tensor wrap(const torch::Tensor& a) { return molecules::wrap_angle(a); }

double wrap(double a) { return molecules::wrap_angle(a); }


torch::Tensor log_i0(const torch::Tensor& kappa) { return torch::log(torch::special::i0e(kappa)) + kappa; }

double log_i0(double kappa) { return log_i0(torch::tensor({kappa}, f64())).item<double>(); }

double ml_kappa(double rbar, double max_kappa) {
  const double r = std::clamp(rbar, 0.0, 1.0 - 1e-12);
  // Start (Best & Fisher 1981; Fisher, Statistical Analysis of Circular Data, eq. 4.40).
  double k = r < 0.53 ? 2 * r + r * r * r + 5 * std::pow(r, 5) / 6
             : r < 0.85 ? -0.4 + 1.39 * r + 0.43 / (1 - r)
                        : 1 / (r * r * r - 4 * r * r + 3 * r);
  // Newton on A(κ) − R̄ = 0 with A'(κ) = 1 − A/κ − A², A(κ) = I₁(κ)/I₀(κ).
  auto bessel_ratio = [](double kk) {
    const auto kt = torch::tensor({kk}, f64());
    return (torch::special::i1e(kt) / torch::special::i0e(kt)).item<double>();
  };
  for (int it = 0; it < 50 && k > 0 && k < max_kappa; ++it) {
    const double a = bessel_ratio(k);
    const double da = 1.0 - a / k - a * a;
    const double step = (a - r) / da;
    k = std::max(k - step, 0.5 * k);
    if (std::abs(step) < 1e-12 * (1.0 + k)) break;
  }
  return std::clamp(k, 0.0, max_kappa);
}

double sample_von_mises(Rng& rng, double mu, double k) {
  if (k == 0.0) return kTwoPi * rng.uniform() - kPi;
  const double t = 1.0 + std::sqrt(1.0 + 4.0 * k * k);
  const double rho = (t - std::sqrt(2.0 * t)) / (2.0 * k);
  const double r = (1.0 + rho * rho) / (2.0 * rho);
  double f = 0.0;
  for (;;) {
    const double u1 = rng.uniform();
    const double u2 = rng.uniform_pos();
    const double zz = std::cos(kPi * u1);
    f = (1.0 + r * zz) / (r + zz);
    const double cc = k * (r - f);
    if (cc * (2.0 - cc) - u2 > 0.0 || std::log(cc / u2) + 1.0 - cc >= 0.0) break;
  }
  const double sign = rng.uniform() < 0.5 ? -1.0 : 1.0;
  return wrap(mu + sign * std::acos(std::clamp(f, -1.0, 1.0)));
}



}  // namespace circular

}  // namespace boltzlab::generators
