#pragma once
/// \file rng.hpp
/// Random streams tied to (seed, stream index) so that results do not depend on
/// the thread count: particle i always draws from stream_for(seed, i).
///
/// Generator: xoshiro256++ (Blackman & Vigna 2018), state seeded by SplitMix64 of
/// a hash of (seed, index). Normals by the Marsaglia polar method, caching the pair.
#include <cmath>
#include <cstdint>
#include <limits>

namespace boltzlab {

/// SplitMix64 step (Steele, Lea & Flood 2014): a bijective 64-bit mixer.
inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// A small, fast, copyable random stream (xoshiro256++).
class Rng {
 public:
  using result_type = std::uint64_t;

  /// Stream number `stream` of the run seeded with `seed`.
  explicit Rng(std::uint64_t seed = 0, std::uint64_t stream = 0) {
    std::uint64_t sm = seed ^ (0xD1B54A32D192ED03ULL * (stream + 1));
    // Two rounds of mixing decorrelate neighbouring (seed, stream) pairs.
    sm = splitmix64(sm) ^ stream;
    for (auto& w : s_) w = splitmix64(sm);
  }

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  /// Next raw 64-bit value.
  result_type operator()() {
    const std::uint64_t result = rotl(s_[0] + s_[3], 23) + s_[0];
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform on [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }

  /// Uniform on (0, 1]: safe to take the log of.
  double uniform_pos() { return (static_cast<double>((*this)() >> 11) + 1.0) * 0x1.0p-53; }

  /// Standard normal N(0, 1) (Marsaglia polar method).
  double normal() {
    if (has_cached_) {
      has_cached_ = false;
      return cached_;
    }
    double u, v, s;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * std::log(s) / s);
    cached_ = v * f;
    has_cached_ = true;
    return u * f;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
  double cached_ = 0.0;
  bool has_cached_ = false;
};

/// The stream of particle/chain `index` in a run seeded with `seed`.
inline Rng stream_for(std::uint64_t seed, std::uint64_t index) { return Rng(seed, index); }

}  // namespace boltzlab
