#pragma once
/// \file limits.hpp
/// The largest sizes a potential file may ask of a target. The factories check them
/// before anything of that size is allocated, so that a file cannot make the loader
/// allocate gigabytes or spend hours in one energy evaluation: "dim": 1e15 is refused
/// naming the file and key ("...parameters.dim: is 1000000000000000, but must be <= 1000000").
namespace boltzlab {

/// Coordinates of a target with O(d) memory and work per evaluation (ManyWell, funnel).
inline constexpr long long kMaxDimension = 1'000'000;
/// Dimension of a target with a dense d × d covariance (Gaussian: 8 d² bytes, d³/3 flops
/// for its Cholesky factor; 4096 is 128 MiB).
inline constexpr long long kMaxDenseDimension = 4096;
/// Particles of a pair-potential system (n(n − 1)/2 pair terms per evaluation).
inline constexpr long long kMaxParticles = 10'000;

}  // namespace boltzlab
