#include "boltzlab/targets/manywell.hpp"

#include <cmath>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/quadrature.hpp"
#include "boltzlab/targets/limits.hpp"

namespace boltzlab {
namespace {

// exp(−x1_energy) is below e^{−1000} outside [−6, 6]; h = 5e-4 makes Simpson's
// error negligible (the integrand's width is O(0.3)).
constexpr double kLo = -6.0, kHi = 6.0;
constexpr long kIntervalsPerHalf = 12000;

struct X1Quadrature {
  double log_z;
  double positive_fraction;
};

const X1Quadrature& x1_quadrature() {
  static const X1Quadrature q = [] {
    const double log_neg = log_integral_exp_neg(ManyWellTarget::x1_energy, kLo, 0.0, kIntervalsPerHalf);
    const double log_pos = log_integral_exp_neg(ManyWellTarget::x1_energy, 0.0, kHi, kIntervalsPerHalf);
    const double m = std::fmax(log_neg, log_pos);
    const double log_z = m + std::log(std::exp(log_neg - m) + std::exp(log_pos - m));
    return X1Quadrature{log_z, std::exp(log_pos - log_z)};
  }();
  return q;
}

}  // namespace

double ManyWellTarget::x1_log_z() { return x1_quadrature().log_z; }
double ManyWellTarget::x1_positive_fraction() { return x1_quadrature().positive_fraction; }

ManyWellTarget::ManyWellTarget(std::size_t dim) : dim_(dim) {
  if (dim == 0 || dim % 2 != 0) {
    throw ConfigError("manywell: dim is " + std::to_string(dim) + ", but must be even and > 0");
  }
  log_z_ = 0.5 * static_cast<double>(dim) * (x1_log_z() + 0.5 * std::log(2.0 * M_PI));
}

double ManyWellTarget::reduced_energy(const double* x, double* grad) const {
  double u = 0.0;
  for (std::size_t k = 0; k < dim_; k += 2) {
    const double a = x[k], b = x[k + 1];
    const double a2 = a * a;
    u += (a2 - 6.0) * a2 - 0.5 * a + 0.5 * b * b;
    if (grad) {
      grad[k] = (4.0 * a2 - 12.0) * a - 0.5;
      grad[k + 1] = b;
    }
  }
  return u;
}

nlohmann::json ManyWellTarget::describe() const {
  return {{"name", name()}, {"dim", dim_}, {"log_z", log_z_},
          {"x1_positive_fraction", x1_positive_fraction()}};
}

std::unique_ptr<Target> make_manywell(JsonReader& params, const std::filesystem::path&) {
  const long long d = params.get_int("dim", 32);
  if (d <= 0 || d % 2 != 0) params.fail("dim", "is " + std::to_string(d) + ", but must be even and > 0");
  if (d > kMaxDimension) params.fail("dim", "is " + std::to_string(d) + ", but must be <= " + std::to_string(kMaxDimension));
  return std::make_unique<ManyWellTarget>(static_cast<std::size_t>(d));
}

}  // namespace boltzlab
