// Tests of fill_normal_streams (lib/boltzlab/core/rng.hpp, rng.cpp): several streams
// advanced side by side must give each stream exactly what Rng::fill_normal gives.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "boltzlab/core/rng.hpp"

using namespace boltzlab;

namespace {

using Filler = void (*)(Rng* const*, std::size_t, std::size_t, double*, std::size_t);

/// Runs `fill` on `count` streams (seed 11, indices 100…) twice in a row (n1, then n2
/// draws), and the reference fill_normal on copies of the same streams; returns the
/// number of draws beyond the ziggurat's tail start R (served by the slow path), after
/// checking values and the final stream states bit for bit.
std::size_t check_against_fill_normal(Filler fill, std::size_t count, std::size_t n1, std::size_t n2) {
  std::vector<Rng> lanes, reference;
  for (std::size_t l = 0; l < count; ++l) {
    lanes.push_back(stream_for(11, 100 + l));
    reference.push_back(stream_for(11, 100 + l));
  }
  std::vector<Rng*> ptrs;
  for (Rng& r : lanes) ptrs.push_back(&r);
  const std::size_t stride = n1 + n2 + 3;  // rows wider than the draws: stride is honoured
  std::vector<double> got(count * stride, -99.0), want(count * stride, -99.0);
  std::size_t tail = 0;
  for (const auto& [offset, n] : {std::pair<std::size_t, std::size_t>{0, n1}, {n1, n2}}) {
    fill(ptrs.data(), count, n, got.data() + offset, stride);
    for (std::size_t l = 0; l < count; ++l) reference[l].fill_normal(want.data() + l * stride + offset, n);
  }
  for (std::size_t l = 0; l < count; ++l) {
    CHECK(std::memcmp(got.data() + l * stride, want.data() + l * stride, stride * sizeof(double)) == 0);
    for (std::size_t k = 0; k < n1 + n2; ++k) tail += std::fabs(got[l * stride + k]) > ZigguratTables::kR;
    // Same state afterwards: the next raw draws agree.
    CHECK(lanes[l]() == reference[l]());
    CHECK(lanes[l].state().words == reference[l].state().words);
  }
  return tail;
}

}  // namespace

TEST_CASE("rng: fill_normal_streams gives every stream fill_normal's values and state") {
  // 8 × 20000 draws: P(|x| > R) = 2.6e-4, so ≈ 40 tail draws (slow path, layer 0) and
  // ≈ 1600 wedge tests; the check below makes sure the slow path was exercised.
  for (Filler fill : {Filler(&fill_normal_streams), Filler(&fill_normal_streams_portable)}) {
    CHECK(check_against_fill_normal(fill, kNormalLanes, 12000, 8000) > 10);
    for (std::size_t count : {1u, 3u, 7u}) check_against_fill_normal(fill, count, 500, 37);
    check_against_fill_normal(fill, kNormalLanes, 0, 1);
  }
}
