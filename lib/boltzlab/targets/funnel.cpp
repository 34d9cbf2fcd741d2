#include "boltzlab/targets/funnel.hpp"

#include <cmath>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/limits.hpp"

namespace boltzlab {

FunnelTarget::FunnelTarget(std::size_t dim, double scale) : dim_(dim), scale_(scale) {
  if (dim < 2) throw ConfigError("funnel: dim is " + std::to_string(dim) + ", but must be >= 2");
  if (!(scale > 0) || !std::isfinite(scale)) {
    throw ConfigError("funnel: scale is " + std::to_string(scale) + ", but must be > 0");
  }
  inv_var_v_ = 1.0 / (scale * scale);
  constant_ = 0.5 * std::log(2.0 * M_PI * scale * scale) + 0.5 * static_cast<double>(dim - 1) * std::log(2.0 * M_PI);
}

double FunnelTarget::reduced_energy(const double* x, double* grad) const {
  const double v = x[0];
  const double inv_var_x = std::exp(-v);
  double sum_sq = 0.0;
  for (std::size_t i = 1; i < dim_; ++i) {
    sum_sq += x[i] * x[i];
    if (grad) grad[i] = x[i] * inv_var_x;
  }
  const double half_n = 0.5 * static_cast<double>(dim_ - 1);
  if (grad) grad[0] = v * inv_var_v_ + half_n - 0.5 * inv_var_x * sum_sq;
  return 0.5 * v * v * inv_var_v_ + 0.5 * inv_var_x * sum_sq + half_n * v + constant_;
}

nlohmann::json FunnelTarget::describe() const {
  return {{"name", name()}, {"dim", dim_}, {"scale", scale_}, {"log_z", 0.0}};
}

std::unique_ptr<Target> make_funnel(JsonReader& params, const std::filesystem::path&) {
  const long long d = params.get_int("dim", 10);
  if (d < 2) params.fail("dim", "is " + std::to_string(d) + ", but must be >= 2");
  if (d > kMaxDimension) params.fail("dim", "is " + std::to_string(d) + ", but must be <= " + std::to_string(kMaxDimension));
  const double scale = params.get_double("scale", 3.0);
  if (!(scale > 0) || !std::isfinite(scale)) params.fail("scale", "is " + std::to_string(scale) + ", but must be > 0");
  return std::make_unique<FunnelTarget>(static_cast<std::size_t>(d), scale);
}

}  // namespace boltzlab
