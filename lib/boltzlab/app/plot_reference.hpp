#pragma once
/// \file plot_reference.hpp
/// What a plot can state about a target besides its samples: the domain a 2-D target
/// is drawn on (its whole support that matters, not the region the samples reached),
/// its known modes, its lowest reduced energy and its exact mean reduced energy ⟨u⟩_π.
/// A plot drawn on the samples' window hides a collapse onto a few modes; a trace
/// without the exact ⟨u⟩ cannot show how far from equilibrium it still is.
///
/// The facts come from the targets' own parameters (the table in plot_reference.cpp,
/// one entry per target type that states them); a target without an entry has none,
/// and the plots say so.
#include <optional>
#include <string>
#include <vector>

#include "boltzlab/targets/target.hpp"

namespace boltzlab {

/// A known mode (local minimum of u) of a 2-D target.
struct PlotMode {
  double x = 0.0;
  double y = 0.0;
  /// Samples within this distance count as having found the mode (2 standard
  /// deviations of a Gaussian component); 0: no such count is made.
  double radius = 0.0;
};

/// The rectangle a 2-D target is drawn on, with how it was chosen.
struct PlotDomain {
  double x_lo = 0.0, x_hi = 1.0;
  double y_lo = 0.0, y_hi = 1.0;
  std::string source;            ///< e.g. "the means' bounding box ± 5 sd"
  std::vector<PlotMode> modes;   ///< known modes (may be empty)
};

/// The stated domain of a 2-D target, or nullopt when its type states none:
///  - gaussian_mixture: the bounding box of the means ± 5 × the largest component sd
///    per axis; modes: the means (radius 2 sd);
///  - gaussian: mean ± 6 sd per axis; mode: the mean (radius 2 × the smaller sd);
///  - muller_brown: [−1.5, 1.2] × [−0.5, 2.0] (the window of Müller & Brown 1979, which
///    holds all but 2e-6 of the mass at β = 0.1); modes: its three minima;
///  - four_wells: [−2.2, 2.2]²; modes: the four minima (four_wells.hpp);
///  - double_well (2-D): x1 ∈ [−2.2, 2.2], x2 ∈ ±6σ; modes (±1, 0) when untilted.
std::optional<PlotDomain> plot_domain(const Target& target);

/// Exact values of u under π, where known.
struct EnergyReference {
  std::optional<double> mean;     ///< ⟨u⟩_π
  std::optional<double> minimum;  ///< min u (for a grid: the lowest grid value)
  std::string source;             ///< how they were obtained
};

/// Grid points per axis of the quadrature in energy_reference().
inline constexpr int kQuadraturePoints = 600;

/// ⟨u⟩_π and min u where they are known:
///  - gaussian (any dimension): u = ½ rᵀΣ⁻¹r + u(μ), so ⟨u⟩ = u(μ) + d/2 and min u = u(μ);
///  - rosenbrock: u = a(x1 − μ)² + b(x2 − x1²)² is a sum of two independent squared
///    standard normals / 2 under π (substitute s = x2 − x1²), so ⟨u⟩ = 1 and min u = 0;
///  - other 2-D targets with a plot_domain(): midpoint quadrature on kQuadraturePoints²
///    points, ⟨u⟩ = Σ u e^{−u} / Σ e^{−u}, min u = the lowest grid value; refused (mean
///    left empty) when more than 1e-6 of the grid's weight lies on its border cells,
///    i.e. when the domain does not hold the mass.
EnergyReference energy_reference(const Target& target);

}  // namespace boltzlab
