#pragma once
/// \file gradient_check.hpp
/// The one shared finite-difference gradient checker used by every target test
/// (in the spirit of Stan's expect_ad and Ceres's GradientChecker).
///
/// For random unit directions v, compares the directional derivative ∇u(x)·v with
/// the central difference (u(x + h v) − u(x − h v)) / (2h), whose truncation error
/// is O(h² |u'''|) and rounding error O(ε |u| / h). It also compares full
/// coordinate-wise central differences when `coordinatewise` is set.
#include <cmath>
#include <vector>

#include <doctest/doctest.h>

#include "boltzlab/core/rng.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab::testing {

struct GradientCheckOptions {
  int directions = 8;          ///< random directions per point
  double step = 1e-5;          ///< h
  double rel_tol = 1e-6;       ///< tolerance relative to max(1, |∇u·v|, |u|·1e-3)
  bool coordinatewise = true;  ///< also check each coordinate
};

/// Largest scaled discrepancy between analytic and finite-difference gradients at x.
inline double gradient_error(const Target& target, const std::vector<double>& x, Rng& rng,
                             const GradientCheckOptions& opt = {}) {
  const std::size_t d = target.dim();
  std::vector<double> g(d), xp(x), xm(x);
  const double u0 = target.reduced_energy(x.data(), g.data());
  double worst = 0.0;
  auto check = [&](const std::vector<double>& v) {
    double analytic = 0.0;
    for (std::size_t k = 0; k < d; ++k) {
      xp[k] = x[k] + opt.step * v[k];
      xm[k] = x[k] - opt.step * v[k];
      analytic += g[k] * v[k];
    }
    const double fd = (target.reduced_energy(xp.data(), nullptr) -
                       target.reduced_energy(xm.data(), nullptr)) / (2 * opt.step);
    const double scale = std::max({1.0, std::abs(analytic), 1e-3 * std::abs(u0)});
    worst = std::max(worst, std::abs(fd - analytic) / scale);
  };
  std::vector<double> v(d);
  for (int r = 0; r < opt.directions; ++r) {
    double norm = 0.0;
    for (auto& e : v) { e = rng.normal(); norm += e * e; }
    for (auto& e : v) e /= std::sqrt(norm);
    check(v);
  }
  if (opt.coordinatewise) {
    for (std::size_t k = 0; k < d; ++k) {
      std::fill(v.begin(), v.end(), 0.0);
      v[k] = 1.0;
      check(v);
    }
  }
  return worst;
}

/// CHECKs the gradient at each of `points`.
inline void check_gradient(const Target& target, const std::vector<std::vector<double>>& points,
                           const GradientCheckOptions& opt = {}, std::uint64_t seed = 12345) {
  Rng rng(seed, 0);
  for (const auto& x : points) {
    REQUIRE(x.size() == target.dim());
    const double err = gradient_error(target, x, rng, opt);
    INFO("target " << target.name() << ", gradient error " << err);
    CHECK(err < opt.rel_tol);
  }
}

/// `count` random points x ~ center + scale·N(0, I).
inline std::vector<std::vector<double>> random_points(std::size_t d, int count, double scale,
                                                      std::uint64_t seed = 7, double center = 0.0) {
  Rng rng(seed, 1);
  std::vector<std::vector<double>> pts(static_cast<std::size_t>(count), std::vector<double>(d));
  for (auto& p : pts)
    for (auto& e : p) e = center + scale * rng.normal();
  return pts;
}

}  // namespace boltzlab::testing
