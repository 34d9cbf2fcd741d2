#include "boltzlab/targets/manywell.hpp"

#include <cmath>
#include <cstddef>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/simd.hpp"
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

// Clones for AVX-512, AVX2 with FMA and the baseline ISA, chosen at run time (the library
// is compiled for the baseline ISA). The vector helpers are always inlined into them.
#define BOLTZLAB_MANYWELL_MULTIVERSION BOLTZLAB_MULTIVERSION
using simd::v8d;
using simd::v8l;
using simd::v8d_unaligned;

/// u and (when grad is not null) ∇u of ManyWell-dim (see the header), eight coordinates
/// (four pairs) at a time: even lanes hold x_{2k}, odd lanes x_{2k+1}; the last pairs
/// (dim not a multiple of 8) in a zero-padded vector (zeros add exact zeros to u). Every
/// coordinate goes through the same vector arithmetic, the terms are summed per lane,
/// then over the lanes pairwise: the rounding does not depend on the alignment of x or
/// on dim's remainder.
BOLTZLAB_MANYWELL_MULTIVERSION
double manywell_energy(const double* x, double* grad, std::size_t dim) {
  const v8l even = {-1, 0, -1, 0, -1, 0, -1, 0};
  v8d acc = {};
  for (std::size_t k = 0; k < dim; k += 8) {
    const std::size_t m = dim - k < 8 ? dim - k : 8;
    v8d v = {};
    if (m == 8) {
      v = *reinterpret_cast<const v8d_unaligned*>(x + k);
    } else {
      for (std::size_t l = 0; l < m; ++l) v[l] = x[k + l];
    }
    const v8d v2 = v * v;
    acc += even ? (v2 - 6.0) * v2 - 0.5 * v : 0.5 * v2;
    if (!grad) continue;
    const v8d gv = even ? (4.0 * v2 - 12.0) * v - 0.5 : v;
    if (m == 8) {
      *reinterpret_cast<v8d_unaligned*>(grad + k) = gv;
    } else {
      for (std::size_t l = 0; l < m; ++l) grad[k + l] = gv[l];
    }
  }
  // ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)), by shuffles in registers.
  const v8d a = acc + __builtin_shuffle(acc, v8l{1, 0, 3, 2, 5, 4, 7, 6});
  const v8d b = a + __builtin_shuffle(a, v8l{2, 3, 0, 1, 6, 7, 4, 5});
  const v8d c = b + __builtin_shuffle(b, v8l{4, 5, 6, 7, 0, 1, 2, 3});
  return c[0];
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

double ManyWellTarget::reduced_energy(const double* x, double* grad) const { return manywell_energy(x, grad, dim_); }

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
