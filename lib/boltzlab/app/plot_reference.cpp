#include "boltzlab/app/plot_reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "boltzlab/targets/double_well.hpp"
#include "boltzlab/targets/four_wells.hpp"
#include "boltzlab/targets/gaussian.hpp"
#include "boltzlab/targets/gaussian_mixture.hpp"
#include "boltzlab/targets/muller_brown.hpp"
#include "boltzlab/targets/rosenbrock.hpp"

namespace boltzlab {

namespace {

/// Bounding box of the means ± 5 × the largest sd per axis; the means as modes.
PlotDomain mixture_domain(const GaussianMixtureTarget& g) {
  PlotDomain d;
  double lo[2] = {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
  double hi[2] = {-lo[0], -lo[1]}, sd[2] = {0.0, 0.0};
  for (std::size_t k = 0; k < g.components(); ++k) {
    const Eigen::VectorXd& m = g.means()[k];
    const Eigen::MatrixXd& c = g.covariances()[k];
    for (int a = 0; a < 2; ++a) {
      lo[a] = std::min(lo[a], m[a]);
      hi[a] = std::max(hi[a], m[a]);
      sd[a] = std::max(sd[a], std::sqrt(c(a, a)));
    }
    d.modes.push_back({m[0], m[1], 2.0 * std::sqrt(std::max(c(0, 0), c(1, 1)))});
  }
  d.x_lo = lo[0] - 5 * sd[0];
  d.x_hi = hi[0] + 5 * sd[0];
  d.y_lo = lo[1] - 5 * sd[1];
  d.y_hi = hi[1] + 5 * sd[1];
  d.source = "bounding box of the " + std::to_string(g.components()) + " means ± 5 sd";
  return d;
}

PlotDomain gaussian_domain(const GaussianTarget& g) {
  const double sx = std::sqrt(g.covariance()(0, 0)), sy = std::sqrt(g.covariance()(1, 1));
  PlotDomain d{g.mean()[0] - 6 * sx, g.mean()[0] + 6 * sx, g.mean()[1] - 6 * sy, g.mean()[1] + 6 * sy,
               "mean ± 6 sd", {{g.mean()[0], g.mean()[1], 2.0 * std::min(sx, sy)}}};
  return d;
}

PlotDomain muller_brown_domain() {
  // Minima from muller_brown.hpp.
  return {-1.5, 1.2, -0.5, 2.0, "the window of Müller & Brown (1979)",
          {{-0.5582, 1.4417, 0.0}, {0.6235, 0.0280, 0.0}, {-0.0500, 0.4667, 0.0}}};
}

PlotDomain four_wells_domain(const FourWellsOptions& o) {
  // Minima from four_wells.hpp: (s, s), (−s, −s) with s² = 1 − c/(4a); (s, −s), (−s, s) with s² = 1 + c/(4a).
  const double sd = std::sqrt(1.0 - o.coupling / (4.0 * o.barrier));
  const double sa = std::sqrt(1.0 + o.coupling / (4.0 * o.barrier));
  return {-2.2, 2.2, -2.2, 2.2, "[-2.2, 2.2]²", {{sd, sd, 0.0}, {-sd, -sd, 0.0}, {sa, -sa, 0.0}, {-sa, sa, 0.0}}};
}

PlotDomain double_well_domain(const DoubleWellOptions& o) {
  PlotDomain d{-2.2, 2.2, -6 * o.sigma, 6 * o.sigma, "x1 in [-2.2, 2.2], x2 within ± 6 sigma", {}};
  if (o.tilt == 0.0) d.modes = {{-1.0, 0.0, 0.0}, {1.0, 0.0, 0.0}};
  return d;
}

/// ⟨u⟩ and min u by midpoint quadrature on the domain (see energy_reference()).
EnergyReference domain_quadrature(const Target& target, const PlotDomain& d) {
  const int n = kQuadraturePoints;
  RowMatrix grid(static_cast<Eigen::Index>(n) * n, 2);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      grid(i * n + j, 0) = d.x_lo + (i + 0.5) * (d.x_hi - d.x_lo) / n;
      grid(i * n + j, 1) = d.y_lo + (j + 0.5) * (d.y_hi - d.y_lo) / n;
    }
  Eigen::VectorXd u;
  target.evaluate_batch(grid, u, nullptr);
  EnergyReference r;
  double u_min = std::numeric_limits<double>::infinity();
  for (Eigen::Index k = 0; k < u.size(); ++k) u_min = std::min(u_min, u[k]);
  if (!std::isfinite(u_min)) return r;
  r.minimum = u_min;
  // Weights e^{−(u − min u)} (equal cells), summed serially in grid order.
  double total = 0.0, border = 0.0, weighted_u = 0.0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      const double uk = u[i * n + j];
      if (!std::isfinite(uk)) continue;
      const double w = std::exp(-(uk - u_min));
      total += w;
      weighted_u += w * uk;
      if (i == 0 || j == 0 || i == n - 1 || j == n - 1) border += w;
    }
  std::ostringstream src;
  src << "quadrature on " << d.source << ", " << n << "x" << n << " points";
  if (border > 1e-6 * total) {
    r.source = src.str() + ": not exact, the domain's border holds " + std::to_string(border / total) +
               " of the weight";
    return r;
  }
  r.mean = weighted_u / total;
  r.source = src.str();
  return r;
}

}  // namespace

std::optional<PlotDomain> plot_domain(const Target& target) {
  if (target.dim() != 2) return std::nullopt;
  if (const auto* g = dynamic_cast<const GaussianMixtureTarget*>(&target)) return mixture_domain(*g);
  if (const auto* g = dynamic_cast<const GaussianTarget*>(&target)) return gaussian_domain(*g);
  if (dynamic_cast<const MullerBrownTarget*>(&target)) return muller_brown_domain();
  if (const auto* f = dynamic_cast<const FourWellsTarget*>(&target)) return four_wells_domain(f->options());
  if (const auto* w = dynamic_cast<const DoubleWellTarget*>(&target)) return double_well_domain(w->options());
  return std::nullopt;
}

EnergyReference energy_reference(const Target& target) {
  if (const auto* g = dynamic_cast<const GaussianTarget*>(&target)) {
    const double u_mean = target.reduced_energy(g->mean().data(), nullptr);
    return {u_mean + 0.5 * static_cast<double>(target.dim()), u_mean, "Gaussian: <u> = u(mean) + d/2"};
  }
  if (dynamic_cast<const RosenbrockTarget*>(&target)) return {1.0, 0.0, "Rosenbrock: <u> = 1/2 + 1/2"};
  if (const std::optional<PlotDomain> d = plot_domain(target)) return domain_quadrature(target, *d);
  return {};
}

}  // namespace boltzlab
