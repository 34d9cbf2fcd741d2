#include "boltzlab/targets/lennard_jones.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/pair_geometry.hpp"
#include "boltzlab/targets/limits.hpp"

namespace boltzlab {

void LennardJonesOptions::validate() const {
  auto bad = [](const std::string& field, double v, const std::string& need) {
    throw_bad_parameter("lennard_jones", field, v, need);
  };
  validate_particle_layout("lennard_jones", n_particles, spatial_dim);
  if (!(epsilon > 0) || !std::isfinite(epsilon)) bad("epsilon", epsilon, "> 0");
  if (!(rm > 0) || !std::isfinite(rm)) bad("rm", rm, "> 0");
  if (!(tau > 0) || !std::isfinite(tau)) bad("tau", tau, "> 0");
  if (!(pair_prefactor > 0) || !std::isfinite(pair_prefactor)) bad("pair_prefactor", pair_prefactor, "> 0");
  if (!(harmonic >= 0) || !std::isfinite(harmonic)) bad("harmonic", harmonic, ">= 0");
}

LennardJonesTarget::LennardJonesTarget(const LennardJonesOptions& options) : options_(options) {
  options_.validate();
  pair_scale_ = options_.pair_prefactor * options_.epsilon / options_.tau;
  rm2_ = options_.rm * options_.rm;
  harmonic_scale_ = options_.harmonic / options_.tau;
}

namespace {

// Pair and harmonic terms with the spatial dimension S fixed at compile time.
// No allocation: this is the inner loop of every sampler step on LJ clusters.
template <int S>
double lj_energy(const double* x, double* grad, std::size_t n, double pair_scale, double rm2,
                 double harmonic_scale) {
  double pair = 0.0;
  if (grad) std::fill(grad, grad + n * S, 0.0);
  for (std::size_t i = 0; i + 1 < n; ++i) {
    const double* xi = x + i * S;
    double gi[S] = {};
    for (std::size_t j = i + 1; j < n; ++j) {
      const double* xj = x + j * S;
      double diff[S];
      const double d2 = pair_difference<S>(xi, xj, diff);
      const double inv_d2 = 1.0 / d2;  // +inf at a collision
      const double r2 = rm2 * inv_d2;
      const double s6 = r2 * r2 * r2;
      pair += s6 * (s6 - 2.0);  // = s6² − 2 s6, but +inf (not inf − inf) at a collision
      if (grad) {
        const double f = 12.0 * s6 * (1.0 - s6) * inv_d2;  // pair-energy derivative / d
        double* gj = grad + j * S;
        for (int k = 0; k < S; ++k) {
          gi[k] += f * diff[k];
          gj[k] -= f * diff[k];
        }
      }
    }
    if (grad)
      for (int k = 0; k < S; ++k) grad[i * S + k] += gi[k];
  }
  double u = pair_scale * pair;
  if (grad)
    for (std::size_t m = 0; m < n * S; ++m) grad[m] *= pair_scale;
  if (harmonic_scale > 0.0) {
    double mean[S] = {};
    for (std::size_t i = 0; i < n; ++i)
      for (int k = 0; k < S; ++k) mean[k] += x[i * S + k];
    for (int k = 0; k < S; ++k) mean[k] /= static_cast<double>(n);
    double h = 0.0;
    for (std::size_t i = 0; i < n; ++i)
      for (int k = 0; k < S; ++k) {
        const double r = x[i * S + k] - mean[k];
        h += r * r;
        if (grad) grad[i * S + k] += harmonic_scale * r;
      }
    u += 0.5 * harmonic_scale * h;
  }
  return u;
}

}  // namespace

double LennardJonesTarget::reduced_energy(const double* x, double* grad) const {
  const std::size_t n = options_.n_particles;
  switch (options_.spatial_dim) {
    case 1: return lj_energy<1>(x, grad, n, pair_scale_, rm2_, harmonic_scale_);
    case 2: return lj_energy<2>(x, grad, n, pair_scale_, rm2_, harmonic_scale_);
    default: return lj_energy<3>(x, grad, n, pair_scale_, rm2_, harmonic_scale_);
  }
}

nlohmann::json LennardJonesTarget::describe() const {
  return {{"name", name()},
          {"n_particles", options_.n_particles},
          {"spatial_dim", options_.spatial_dim},
          {"epsilon", options_.epsilon},
          {"rm", options_.rm},
          {"tau", options_.tau},
          {"pair_prefactor", options_.pair_prefactor},
          {"harmonic", options_.harmonic},
          {"degrees_of_freedom", degrees_of_freedom(*this)}};
}

std::unique_ptr<Target> make_lennard_jones(JsonReader& params, const std::filesystem::path&) {
  LennardJonesOptions o;
  const long long n = params.get_int("n_particles");
  const long long s = params.get_int("spatial_dim", 3);
  if (n < 2) params.fail("n_particles", "is " + std::to_string(n) + ", but must be >= 2");
  if (n > kMaxParticles) {
    params.fail("n_particles", "is " + std::to_string(n) + ", but must be <= " + std::to_string(kMaxParticles));
  }
  if (s < 1 || s > 3) params.fail("spatial_dim", "is " + std::to_string(s) + ", but must be 1, 2 or 3");
  o.n_particles = static_cast<std::size_t>(n);
  o.spatial_dim = static_cast<std::size_t>(s);
  auto positive = [&](const char* key, double fallback, bool allow_zero) {
    const double v = params.get_double(key, fallback);
    if (!std::isfinite(v) || v < 0 || (!allow_zero && v == 0)) {
      params.fail(key, "is " + std::to_string(v) + ", but must be " + (allow_zero ? ">= 0" : "> 0"));
    }
    return v;
  };
  o.epsilon = positive("epsilon", o.epsilon, false);
  o.rm = positive("rm", o.rm, false);
  o.tau = positive("tau", o.tau, false);
  o.pair_prefactor = positive("pair_prefactor", o.pair_prefactor, false);
  o.harmonic = positive("harmonic", o.harmonic, true);
  return std::make_unique<LennardJonesTarget>(o);
}

}  // namespace boltzlab
