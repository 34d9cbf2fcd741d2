#include "boltzlab/targets/rosenbrock.hpp"

#include <cmath>

#include "boltzlab/core/error.hpp"

namespace boltzlab {

RosenbrockTarget::RosenbrockTarget(double a, double b, double mu) : a_(a), b_(b), mu_(mu) {
  if (!(a > 0) || !std::isfinite(a)) throw ConfigError("rosenbrock: a is " + std::to_string(a) + ", but must be > 0");
  if (!(b > 0) || !std::isfinite(b)) throw ConfigError("rosenbrock: b is " + std::to_string(b) + ", but must be > 0");
  if (!std::isfinite(mu)) throw ConfigError("rosenbrock: mu must be finite");
}

double RosenbrockTarget::reduced_energy(const double* x, double* grad) const {
  const double r1 = x[0] - mu_;
  const double r2 = x[1] - x[0] * x[0];
  if (grad) {
    grad[0] = 2.0 * a_ * r1 - 4.0 * b_ * x[0] * r2;
    grad[1] = 2.0 * b_ * r2;
  }
  return a_ * r1 * r1 + b_ * r2 * r2;
}

nlohmann::json RosenbrockTarget::describe() const {
  return {{"name", name()}, {"a", a_}, {"b", b_}, {"mu", mu_}, {"log_z", *log_z()}};
}

std::unique_ptr<Target> make_rosenbrock(JsonReader& params, const std::filesystem::path&) {
  const double a = params.get_double("a", 0.05);
  const double b = params.get_double("b", 5.0);
  const double mu = params.get_double("mu", 1.0);
  if (!(a > 0) || !std::isfinite(a)) params.fail("a", "is " + std::to_string(a) + ", but must be > 0");
  if (!(b > 0) || !std::isfinite(b)) params.fail("b", "is " + std::to_string(b) + ", but must be > 0");
  if (!std::isfinite(mu)) params.fail("mu", "must be finite");
  return std::make_unique<RosenbrockTarget>(a, b, mu);
}

}  // namespace boltzlab
