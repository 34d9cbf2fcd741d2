#pragma once
/// \file rng_lanes.hpp
/// Standard normals of up to eight streams drawn side by side in vector lanes.
///
/// Method: Box–Muller (Box & Muller 1958, "A note on the generation of random normal
/// deviates", Ann. Math. Statist. 29(2)), branch-free. Each pair of normals of a stream
/// takes two 64-bit xoshiro256++ words of that stream, w1 then w2:
///   u = (⌊w1/2¹¹⌋ + 1)·2⁻⁵³ ∈ (0, 1]  (53 bits),   r = √(−2 ln u);
///   θ = ⌊w2/2¹¹⌋·2⁻⁵³·π/4 ∈ [0, π/4)  (53 bits),   (c, s) = (cos θ, sin θ);
///   bit 0 of w2 swaps c and s (the angle becomes π/2 − θ), bits 1 and 2 give the signs,
///   so the angle is uniform on the whole circle;
///   (z₁, z₂) = (±r·c, ±r·s) are independent N(0, 1).
/// ln u = e·ln 2 + ln m with u = m·2ᵉ, m ∈ (√½, √2], and ln m = 2 atanh t,
/// t = (m − 1)/(m + 1), |t| ≤ 0.1716, by its series to t¹⁷ (truncation below 1e−15
/// relative); sin and cos on [0, π/4] by their Taylor series to θ¹⁵ and θ¹⁴ (truncation
/// below 1e−15 relative). Every other step is an IEEE operation, so the normals are
/// exact N(0, 1) up to a few rounding errors (≲ 1e−15 relative); the largest |z| is
/// √(−2 ln 2⁻⁵³) = 8.57 (probability of |z| beyond it: 1e−17).
///
/// Each lane is a whole stream: stream j's draws do not depend on which other streams
/// share the call (or on how many), so results stay tied to the stream, never to the
/// grouping or the thread count. The code is compiled for AVX-512, AVX2+FMA and the
/// baseline x86-64 ISA, one chosen at run time for the whole process; the baseline
/// version computes without FMA, so its last bits may differ from the others.
#include <cstddef>

#include "boltzlab/core/rng.hpp"

namespace boltzlab {

/// Most streams one call of fill_normal_lanes() advances side by side.
constexpr std::size_t kNormalLanes = 8;

/// For j < lanes (≤ kNormalLanes): out[j·n, j·n + n) ← the next n N(0, 1) draws of
/// streams[j] (Box–Muller, see above). Stream j advances by 2·⌈n/2⌉ words (for odd n
/// the second normal of the last pair is dropped); normal()'s cached value is left as
/// it was. The values of stream j are the same for any `lanes` and any partners.
/// \throws ConfigError when lanes > kNormalLanes.
void fill_normal_lanes(Rng* streams, std::size_t lanes, double* out, std::size_t n);

/// n N(0, 1) draws of one stream by the same method: fill_normal_lanes(&rng, 1, out, n).
inline void fill_normal_box_muller(Rng& rng, double* out, std::size_t n) { fill_normal_lanes(&rng, 1, out, n); }

}  // namespace boltzlab
