#pragma once
/// \file vector_math.hpp
/// Element-wise functions over arrays of doubles in vector lanes (core/simd.hpp), for
/// loops whose scalar libm calls dominate (the E-steps of the base densities' EM fits).
#include <cstddef>

namespace boltzlab {

/// x[i] ← exp(scale·x[i]) for i < n: simd::exp_lanes (Taylor degree 13 after Cody–Waite
/// reduction, within 2 ulp of the correctly rounded value; below −708 gives 0) of the
/// rounded product (scale 1: of x[i] itself). Each element's result depends on its own
/// value only, not on n or its position.
void exp_in_place(double* x, std::size_t n, double scale = 1.0);

}  // namespace boltzlab
