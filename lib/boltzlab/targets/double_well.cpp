#include "boltzlab/targets/double_well.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/quadrature.hpp"

namespace boltzlab {

void DoubleWellOptions::validate() const {
  auto bad = [](const std::string& field, double v, const std::string& need) {
    throw_bad_parameter("double_well", field, v, need);
  };
  if (dim != 1 && dim != 2) bad("dim", static_cast<double>(dim), "1 or 2");
  if (!(barrier > 0) || !std::isfinite(barrier)) bad("barrier", barrier, "> 0");
  if (!std::isfinite(tilt)) bad("tilt", tilt, "finite");
  if (!(sigma > 0) || !std::isfinite(sigma)) bad("sigma", sigma, "> 0");
}

DoubleWellTarget::DoubleWellTarget(const DoubleWellOptions& options) : options_(options) {
  options_.validate();
  inv_var_ = 1.0 / (options_.sigma * options_.sigma);
  const double a = options_.barrier, t = options_.tilt;
  auto f = [a, t](double s) {
    const double q = s * s - 1.0;
    return a * q * q + t * s;
  };
  // Integration range [−L, L]: stationary points satisfy |s| ≤ 1 + ∛(|t|/a), so
  // f_min ≥ −|t|(1 + ∛(|t|/a)), while f(±L) ≥ a(L² − 1)² − |t|L; grow L until
  // f(±L) − f_min ≥ 800 (beyond, exp(−f) is negligible and decreasing). The grid
  // resolves the narrowest feature, the well width ~ 1/√(8a), with h ≤ 1e-3.
  const double f_min_bound = -std::abs(t) * (1.0 + std::cbrt(std::abs(t) / a));
  double L = 1.5;
  while (a * (L * L - 1.0) * (L * L - 1.0) - std::abs(t) * L - f_min_bound < 800.0) L *= 1.25;
  const double h = std::min(1e-3, 0.02 / std::sqrt(8.0 * a));
  // Clamped as a double: for a huge barrier h underflows to 0 and 2L / h is inf, which
  // no integer holds (converting it is undefined).
  const long intervals = static_cast<long>(std::min(2e7, 2.0 * L / h + 2.0));
  log_z_ = log_integral_exp_neg(f, -L, L, intervals);
  if (options_.dim == 2) log_z_ += 0.5 * std::log(2.0 * M_PI * options_.sigma * options_.sigma);
}

double DoubleWellTarget::reduced_energy(const double* x, double* grad) const {
  const double s = x[0];
  const double q = s * s - 1.0;
  double u = options_.barrier * q * q + options_.tilt * s;
  if (grad) grad[0] = 4.0 * options_.barrier * s * q + options_.tilt;
  if (options_.dim == 2) {
    u += 0.5 * x[1] * x[1] * inv_var_;
    if (grad) grad[1] = x[1] * inv_var_;
  }
  return u;
}

nlohmann::json DoubleWellTarget::describe() const {
  return {{"name", name()},         {"dim", options_.dim},     {"barrier", options_.barrier},
          {"tilt", options_.tilt}, {"sigma", options_.sigma}, {"log_z", log_z_}};
}

std::unique_ptr<Target> make_double_well(JsonReader& params, const std::filesystem::path&) {
  DoubleWellOptions o;
  const long long d = params.get_int("dim", 2);
  if (d != 1 && d != 2) params.fail("dim", "is " + std::to_string(d) + ", but must be 1 or 2");
  o.dim = static_cast<std::size_t>(d);
  o.barrier = params.get_double("barrier", o.barrier);
  if (!(o.barrier > 0) || !std::isfinite(o.barrier)) {
    params.fail("barrier", "is " + std::to_string(o.barrier) + ", but must be > 0");
  }
  o.tilt = params.get_double("tilt", o.tilt);
  o.sigma = params.get_double("sigma", o.sigma);
  if (!(o.sigma > 0) || !std::isfinite(o.sigma)) {
    params.fail("sigma", "is " + std::to_string(o.sigma) + ", but must be > 0");
  }
  return std::make_unique<DoubleWellTarget>(o);
}

}  // namespace boltzlab
