// Tests of lib/boltzlab/app/iw_diag.*: the binning of its free-energy maps.
#include <doctest/doctest.h>

#include <variant>

#include "boltzlab/app/iw_diag.hpp"
#include "boltzlab/core/rng.hpp"

using namespace boltzlab;

namespace {

/// Bins per axis of the 2-D map iw_diagnose made.
std::size_t map_bins_of(const IwDiagReport& r) {
  REQUIRE(r.free_energy.has_value());
  const auto* f = std::get_if<FreeEnergy2D>(&r.free_energy->result);
  REQUIRE(f != nullptr);
  CHECK(f->x_axis.bins == f->y_axis.bins);
  return f->x_axis.bins;
}

}  // namespace

TEST_CASE("iw-diag: free-energy map bins follow the sample size") {
  // 512 samples on 50 x 50 bins leave ~0.2 samples per bin: a map of noise. The rule
  // round(sqrt(n/10)) in [8, 64] gives 8 x 8 (8 samples per bin on average).
  Rng rng(3, 0);
  RowMatrix x(512, 2);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    x(i, 0) = rng.normal();
    x(i, 1) = rng.normal();
  }
  IwDiagInput in;
  in.samples = x;
  IwDiagOptions options;
  CHECK(map_bins_of(iw_diagnose(in, options, nullptr)) == 8);
  // Weighted samples count by their Kish ESS: 4000 samples, half of them with weight 0
  // (ESS 2000) give round(sqrt(200)) = 14.
  RowMatrix y(4000, 2);
  Eigen::VectorXd lw(4000);
  for (Eigen::Index i = 0; i < y.rows(); ++i) {
    y(i, 0) = rng.normal();
    y(i, 1) = rng.normal();
    lw[i] = i % 2 ? 0.0 : -std::numeric_limits<double>::infinity();
  }
  IwDiagInput weighted;
  weighted.samples = y;
  weighted.log_weights = lw;
  CHECK(map_bins_of(iw_diagnose(weighted, options, nullptr)) == 14);
  // --bins decides when given.
  options.bins = 30;
  CHECK(map_bins_of(iw_diagnose(in, options, nullptr)) == 30);
}
