#include "boltzlab/targets/muller_brown.hpp"

#include <cmath>

#include "boltzlab/core/error.hpp"

namespace boltzlab {
namespace {

constexpr double kA[4] = {-200.0, -100.0, -170.0, 15.0};
constexpr double ka[4] = {-1.0, -1.0, -6.5, 0.7};
constexpr double kb[4] = {0.0, 0.0, 11.0, 0.6};
constexpr double kc[4] = {-10.0, -10.0, -6.5, 0.7};
constexpr double kx0[4] = {1.0, 0.0, -0.5, -1.0};
constexpr double ky0[4] = {0.0, 0.5, 1.5, 1.0};

}  // namespace

MullerBrownTarget::MullerBrownTarget(double beta) : beta_(beta) {
  if (!(beta > 0) || !std::isfinite(beta)) {
    throw ConfigError("muller_brown: beta is " + std::to_string(beta) + ", but must be > 0");
  }
}

double MullerBrownTarget::potential(double x, double y, double* grad) {
  double v = 0.0, gx = 0.0, gy = 0.0;
  for (int k = 0; k < 4; ++k) {
    const double dx = x - kx0[k], dy = y - ky0[k];
    const double e = kA[k] * std::exp(ka[k] * dx * dx + kb[k] * dx * dy + kc[k] * dy * dy);
    v += e;
    gx += e * (2.0 * ka[k] * dx + kb[k] * dy);
    gy += e * (kb[k] * dx + 2.0 * kc[k] * dy);
  }
  if (grad) {
    grad[0] = gx;
    grad[1] = gy;
  }
  return v;
}

double MullerBrownTarget::reduced_energy(const double* x, double* grad) const {
  const double v = potential(x[0], x[1], grad);
  if (grad) {
    grad[0] *= beta_;
    grad[1] *= beta_;
  }
  return beta_ * v;
}

nlohmann::json MullerBrownTarget::describe() const { return {{"name", name()}, {"beta", beta_}}; }

std::unique_ptr<Target> make_muller_brown(JsonReader& params, const std::filesystem::path&) {
  const double beta = params.get_double("beta");
  if (!(beta > 0) || !std::isfinite(beta)) params.fail("beta", "is " + std::to_string(beta) + ", but must be > 0");
  return std::make_unique<MullerBrownTarget>(beta);
}

}  // namespace boltzlab
