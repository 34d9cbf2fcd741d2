#include "boltzlab/targets/dw4.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/pair_geometry.hpp"
#include "boltzlab/targets/limits.hpp"

namespace boltzlab {

void Dw4Options::validate() const {
  auto bad = [](const std::string& field, double v, const std::string& need) {
    throw_bad_parameter("dw4", field, v, need);
  };
  validate_particle_layout("dw4", n_particles, spatial_dim);
  if (!std::isfinite(a)) bad("a", a, "finite");
  if (!std::isfinite(b)) bad("b", b, "finite");
  if (!(c > 0) || !std::isfinite(c)) bad("c", c, "> 0");
  if (!std::isfinite(d0)) bad("d0", d0, "finite");
  if (!(tau > 0) || !std::isfinite(tau)) bad("tau", tau, "> 0");
}

Dw4Target::Dw4Target(const Dw4Options& options) : options_(options) {
  options_.validate();
  a_ = options_.a / options_.tau;
  b_ = options_.b / options_.tau;
  c_ = options_.c / options_.tau;
}

namespace {

// Pair loop with the spatial dimension S fixed at compile time (no allocation).
template <int S>
double dw_pairs(const double* x, double* grad, std::size_t n, double a, double b, double c, double d0) {
  double u = 0.0;
  if (grad) std::fill(grad, grad + n * S, 0.0);
  for (std::size_t i = 0; i + 1 < n; ++i) {
    const double* xi = x + i * S;
    for (std::size_t j = i + 1; j < n; ++j) {
      const double* xj = x + j * S;
      double diff[S];
      const double d2 = pair_difference<S>(xi, xj, diff);
      const double d = std::sqrt(d2);
      const double t = d - d0;
      const double t2 = t * t;
      u += t * (a + b * t + c * t2 * t);
      if (grad) {
        const double f = (a + 2.0 * b * t + 4.0 * c * t2 * t) / d;  // e'(t) / d
        double* gi = grad + i * S;
        double* gj = grad + j * S;
        for (int k = 0; k < S; ++k) {
          gi[k] += f * diff[k];
          gj[k] -= f * diff[k];
        }
      }
    }
  }
  return u;
}

}  // namespace

double Dw4Target::reduced_energy(const double* x, double* grad) const {
  const std::size_t n = options_.n_particles;
  switch (options_.spatial_dim) {
    case 1: return dw_pairs<1>(x, grad, n, a_, b_, c_, options_.d0);
    case 2: return dw_pairs<2>(x, grad, n, a_, b_, c_, options_.d0);
    default: return dw_pairs<3>(x, grad, n, a_, b_, c_, options_.d0);
  }
}

nlohmann::json Dw4Target::describe() const {
  return {{"name", name()},         {"n_particles", options_.n_particles}, {"spatial_dim", options_.spatial_dim},
          {"a", options_.a},        {"b", options_.b},                     {"c", options_.c},
          {"d0", options_.d0},      {"tau", options_.tau},
          {"degrees_of_freedom", degrees_of_freedom(*this)}};
}

std::unique_ptr<Target> make_dw4(JsonReader& params, const std::filesystem::path&) {
  Dw4Options o;
  const long long n = params.get_int("n_particles", 4);
  const long long s = params.get_int("spatial_dim", 2);
  if (n < 2) params.fail("n_particles", "is " + std::to_string(n) + ", but must be >= 2");
  if (n > kMaxParticles) {
    params.fail("n_particles", "is " + std::to_string(n) + ", but must be <= " + std::to_string(kMaxParticles));
  }
  if (s < 1 || s > 3) params.fail("spatial_dim", "is " + std::to_string(s) + ", but must be 1, 2 or 3");
  o.n_particles = static_cast<std::size_t>(n);
  o.spatial_dim = static_cast<std::size_t>(s);
  o.a = params.get_double("a", o.a);
  o.b = params.get_double("b", o.b);
  o.c = params.get_double("c", o.c);
  o.d0 = params.get_double("d0", o.d0);
  o.tau = params.get_double("tau", o.tau);
  if (!(o.c > 0) || !std::isfinite(o.c)) params.fail("c", "is " + std::to_string(o.c) + ", but must be > 0");
  if (!(o.tau > 0) || !std::isfinite(o.tau)) params.fail("tau", "is " + std::to_string(o.tau) + ", but must be > 0");
  try {
    return std::make_unique<Dw4Target>(o);
  } catch (const ConfigError& e) {
    throw ConfigError(params.context() + ": " + e.what());
  }
}

}  // namespace boltzlab
