#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/vector_math.hpp"

using boltzlab::exp_in_place;

TEST_CASE("exp in vector lanes: within 2 ulp of std::exp from -708 to 709, 0 below") {
  // Values spread over the whole range, plus the edges and integers (exact powers of e's
  // reduction: r = 0 there).
  std::vector<double> x;
  boltzlab::Rng rng(7, 0);
  for (int i = 0; i < 20000; ++i) x.push_back(-708.0 + 1417.0 * rng.uniform());
  for (int i = 0; i < 2000; ++i) x.push_back(-1.0 + 2.0 * rng.uniform());  // near 0, where r is the whole x
  for (double v : {-708.0, -700.5, -1.0, -1e-300, 0.0, 1e-300, 1.0, 2.0, 100.0, 709.0}) x.push_back(v);
  std::vector<double> y = x;
  exp_in_place(y.data(), y.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double ref = std::exp(x[i]);
    const double ulp = std::nextafter(ref, std::numeric_limits<double>::infinity()) - ref;
    worst = std::max(worst, std::abs(y[i] - ref) / ulp);
  }
  CHECK(worst <= 2.0);
  std::vector<double> low = {-708.5, -745.0, -1e4, -std::numeric_limits<double>::infinity()};
  exp_in_place(low.data(), low.size());
  for (double v : low) CHECK(v == 0.0);
}

TEST_CASE("exp in vector lanes: each result depends on its own value only, not on the length or the position") {
  boltzlab::Rng rng(8, 0);
  std::vector<double> base(19);
  for (auto& v : base) v = -20.0 + 40.0 * rng.uniform();
  std::vector<double> alone(base.size());
  for (std::size_t i = 0; i < base.size(); ++i) {
    alone[i] = base[i];
    exp_in_place(&alone[i], 1);  // the zero-padded tail path
  }
  for (std::size_t n = 1; n <= base.size(); ++n) {
    for (std::size_t offset = 0; offset + n <= base.size(); offset += 3) {
      std::vector<double> y(base.begin() + static_cast<std::ptrdiff_t>(offset),
                            base.begin() + static_cast<std::ptrdiff_t>(offset + n));
      exp_in_place(y.data(), y.size());
      for (std::size_t i = 0; i < n; ++i) REQUIRE(y[i] == alone[offset + i]);
    }
  }
}

TEST_CASE("exp in vector lanes: a scale gives the exp of the rounded product, bit for bit") {
  // The kernel sums turn kept squared distances into exp(−c·D²) with it: the same bits as
  // exp of the product formed first (vector body and tail alike).
  boltzlab::Rng rng(9, 0);
  std::vector<double> base(21);
  for (auto& v : base) v = 60.0 * rng.uniform();
  for (const double scale : {-0.37, -1.0, 2.5}) {
    std::vector<double> scaled = base, product(base.size());
    for (std::size_t i = 0; i < base.size(); ++i) product[i] = scale * base[i];
    exp_in_place(scaled.data(), scaled.size(), scale);
    exp_in_place(product.data(), product.size());
    for (std::size_t i = 0; i < base.size(); ++i) {
      REQUIRE(scaled[i] == product[i]);
      // And it is exp of the product: within 2 ulp (relative 4.4e-16) of std::exp.
      const double exact = std::exp(scale * base[i]);
      CHECK(std::abs(scaled[i] - exact) <= 4.5e-16 * exact);
    }
  }
}
