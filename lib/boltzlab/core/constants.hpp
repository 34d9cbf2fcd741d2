#pragma once
/// \file constants.hpp
/// Mathematical constants shared by every layer.

namespace boltzlab {

inline constexpr double kPi = 3.14159265358979323846;
inline constexpr double kTwoPi = 2.0 * kPi;

}  // namespace boltzlab
