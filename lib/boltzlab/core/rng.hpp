#pragma once
/// \file rng.hpp
/// Random streams tied to (seed, stream index) so that results do not depend on
/// the thread count: particle i always draws from stream_for(seed, i).
///
/// Generator: xoshiro256++ (Blackman & Vigna 2018), state seeded by SplitMix64 of
/// a hash of (seed, index). Normals by the Marsaglia polar method, caching the pair
/// (normal()), or by the ziggurat method (normal_ziggurat(), fill_normal()): one
/// 64-bit draw per normal on the fast path. The Langevin samplers draw their normals
/// by Box–Muller, eight streams side by side (core/rng_lanes.hpp).
#include <array>
#include <cmath>
#include <cstddef>
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

/// Tables of the 256-layer ziggurat for the standard normal (Marsaglia & Tsang 2000,
/// "The ziggurat method for generating random variables", J. Stat. Softw. 5(8);
/// layout as in Doornik 2005, "An improved ziggurat method to generate normal random
/// samples"). Layer i covers |x| < edge[i] with edge[0] = V/f(R) (the base layer with
/// the tail folded in), edge[1] = R, edge[i+1] = f⁻¹(f(edge[i]) + V/edge[i]), edge[256] = 0,
/// f(x) = exp(−x²/2); every layer has area V. ratio[i] = edge[i+1]/edge[i] is the
/// fraction of layer i that lies wholly under the curve (the fast path).
struct ZigguratTables {
  static constexpr int kLayers = 256;
  static constexpr double kR = 3.6541528853610088;        ///< start of the tail
  static constexpr double kV = 0.00492867323399;          ///< area of each layer
  std::array<double, kLayers + 1> edge{};
  std::array<double, kLayers> ratio{};
  std::array<double, kLayers + 1> height{};  ///< f(edge[i])
  std::array<double, kLayers> chord_slope{};  ///< (f(edge[i+1]) − f(edge[i]))/(edge[i] − edge[i+1])
  ZigguratTables() {
    double f = std::exp(-0.5 * kR * kR);
    edge[0] = kV / f;
    edge[1] = kR;
    for (int i = 2; i < kLayers; ++i) {
      edge[i] = std::sqrt(-2.0 * std::log(kV / edge[i - 1] + f));
      f = std::exp(-0.5 * edge[i] * edge[i]);
    }
    edge[kLayers] = 0.0;
    for (int i = 0; i < kLayers; ++i) ratio[i] = edge[i + 1] / edge[i];
    for (int i = 0; i <= kLayers; ++i) height[i] = std::exp(-0.5 * edge[i] * edge[i]);
    for (int i = 0; i < kLayers; ++i) chord_slope[i] = (height[i + 1] - height[i]) / (edge[i] - edge[i + 1]);
  }
};

/// The process-wide ziggurat tables (built once, thread-safe static initialization).
inline const ZigguratTables& ziggurat_tables() {
  static const ZigguratTables tables;
  return tables;
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

  /// The complete generator state (xoshiro256++ words and normal()'s cached second
  /// draw), for checkpoints: set_state(state()) continues the stream exactly.
  struct State {
    std::array<std::uint64_t, 4> words{};
    double cached = 0.0;
    bool has_cached = false;
  };
  State state() const { return State{{s_[0], s_[1], s_[2], s_[3]}, cached_, has_cached_}; }
  void set_state(const State& st) {
    for (int k = 0; k < 4; ++k) s_[k] = st.words[static_cast<std::size_t>(k)];
    cached_ = st.cached;
    has_cached_ = st.has_cached;
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

  /// Standard normal N(0, 1) by the 256-layer ziggurat (see ZigguratTables). One
  /// 64-bit draw gives the layer (low 8 bits) and a signed 53-bit uniform u ∈ [−1, 1)
  /// (high bits); |u| < ratio[layer] (≈ 99 % of draws) returns u·edge[layer] at once.
  /// Otherwise the base layer samples the tail |x| > R (Marsaglia 1964) and the other
  /// layers accept the wedge point x = u·edge[i] with probability given by f(x).
  /// Independent of normal()'s cached pair.
  double normal_ziggurat() { return normal_ziggurat(ziggurat_tables()); }

  /// As normal_ziggurat(), with the tables passed in (hot loops fetch them once).
  double normal_ziggurat(const ZigguratTables& t) {
    const std::uint64_t bits = (*this)();
    const int layer = static_cast<int>(bits & 0xFF);
    // Arithmetic shift keeps the sign: an integer in [−2⁵², 2⁵²) scaled to [−1, 1).
    const double u = static_cast<double>(static_cast<std::int64_t>(bits) >> 11) * 0x1.0p-52;
    if (__builtin_expect(std::fabs(u) < t.ratio[layer], 1)) return u * t.edge[layer];
    return normal_ziggurat_slow(t, layer, u);
  }

  /// Fills out[0..n) with independent N(0, 1) draws (ziggurat), in order.
  /// Same values as n calls of normal_ziggurat(); the generator state is kept in
  /// registers for the fast path.
  void fill_normal(double* out, std::size_t n) {
    const ZigguratTables& t = ziggurat_tables();
    std::uint64_t s0 = s_[0], s1 = s_[1], s2 = s_[2], s3 = s_[3];
    for (std::size_t k = 0; k < n; ++k) {
      const std::uint64_t bits = rotl(s0 + s3, 23) + s0;
      const std::uint64_t tt = s1 << 17;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= tt;
      s3 = rotl(s3, 45);
      const int layer = static_cast<int>(bits & 0xFF);
      const double u = static_cast<double>(static_cast<std::int64_t>(bits) >> 11) * 0x1.0p-52;
      if (__builtin_expect(std::fabs(u) < t.ratio[layer], 1)) {
        out[k] = u * t.edge[layer];
      } else {
        s_[0] = s0, s_[1] = s1, s_[2] = s2, s_[3] = s3;
        out[k] = normal_ziggurat_slow(t, layer, u);
        s0 = s_[0], s1 = s_[1], s2 = s_[2], s3 = s_[3];
      }
    }
    s_[0] = s0, s_[1] = s1, s_[2] = s2, s_[3] = s3;
  }

 private:
  // Slow path of the ziggurat (≈ 1 % of draws), kept out of line so that the fast
  // path inlines into tight loops: the tail (layer 0), or a wedge point accepted with
  // the right probability; a rejected wedge point starts over with a fresh draw.
  __attribute__((noinline, cold)) double normal_ziggurat_slow(const ZigguratTables& t, int layer, double u) {
    for (;;) {
      const double r = ziggurat_tail_or_wedge(t, layer, u);
      if (r == r) return r;  // NaN: rejected wedge point, draw again
      const std::uint64_t bits = (*this)();
      layer = static_cast<int>(bits & 0xFF);
      u = static_cast<double>(static_cast<std::int64_t>(bits) >> 11) * 0x1.0p-52;
      if (std::fabs(u) < t.ratio[layer]) return u * t.edge[layer];
    }
  }

  double ziggurat_tail_or_wedge(const ZigguratTables& t, int layer, double u) {
    if (layer == 0) {
      // Tail beyond R: x = −log(U1)/R, accept when −2 log(U2) > x² (Marsaglia 1964).
      double x, y;
      do {
        x = -std::log(uniform_pos()) / ZigguratTables::kR;
        y = -std::log(uniform_pos());
      } while (2.0 * y < x * x);
      return u < 0 ? -(ZigguratTables::kR + x) : ZigguratTables::kR + x;
    }
    const double x = u * t.edge[layer];
    // Wedge: a point of height uniform between f(edge[i]) and f(edge[i+1]) is under
    // the curve with probability given by f(x).
    const double y = t.height[layer] + uniform() * (t.height[layer + 1] - t.height[layer]);
    // Chord pre-test (saves the exp for about half of the wedge points): between the
    // layer's corners f lies below the chord where f is convex (|x| ≥ 1) and above it
    // where f is concave (|x| ≤ 1).
    const double ax = std::fabs(x);
    const double chord = t.height[layer] + (t.edge[layer] - ax) * t.chord_slope[layer];
    if (t.edge[layer + 1] >= 1.0 && y >= chord) return std::numeric_limits<double>::quiet_NaN();
    if (t.edge[layer] <= 1.0 && y <= chord) return x;
    if (y < std::exp(-0.5 * x * x)) return x;
    return std::numeric_limits<double>::quiet_NaN();
  }

  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  // Reads and advances the xoshiro256++ words of several streams side by side.
  friend void fill_normal_lanes(Rng* streams, std::size_t lanes, double* out, std::size_t n);
  std::uint64_t s_[4];
  double cached_ = 0.0;
  bool has_cached_ = false;
};

/// The stream of particle/chain `index` in a run seeded with `seed`.
inline Rng stream_for(std::uint64_t seed, std::uint64_t index) { return Rng(seed, index); }

}  // namespace boltzlab
