#pragma once
/// \file ensemble.hpp
/// A particle ensemble: N configurations of dimension d, stored row-major so that
/// each particle is contiguous, with per-particle reduced energies and log-weights.
#include <cstddef>
#include <cstdint>
#include <limits>

#include <Eigen/Core>

namespace boltzlab {

/// Row-major dynamic matrix: row i is particle i.
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// N×d particles with per-particle state.
struct Ensemble {
  RowMatrix positions;              ///< N×d configurations (target units, e.g. nm)
  Eigen::VectorXd reduced_energies; ///< u(x_i) = E/kT; +inf when not finite
  Eigen::VectorXd log_weights;      ///< log w_i (0 for an unweighted ensemble)

  Ensemble() = default;
  /// n particles of dimension d, all zero, unit weights, energies unset (NaN).
  Ensemble(std::size_t n, std::size_t d)
      : positions(RowMatrix::Zero(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d))),
        reduced_energies(Eigen::VectorXd::Constant(static_cast<Eigen::Index>(n),
                                                   std::numeric_limits<double>::quiet_NaN())),
        log_weights(Eigen::VectorXd::Zero(static_cast<Eigen::Index>(n))) {}

  std::size_t size() const { return static_cast<std::size_t>(positions.rows()); }
  std::size_t dim() const { return static_cast<std::size_t>(positions.cols()); }
  double* particle(std::size_t i) { return positions.row(static_cast<Eigen::Index>(i)).data(); }
  const double* particle(std::size_t i) const {
    return positions.row(static_cast<Eigen::Index>(i)).data();
  }
};

}  // namespace boltzlab
