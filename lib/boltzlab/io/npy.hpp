#pragma once
/// \file npy.hpp
/// NumPy .npy files (format 1.0/2.0/3.0), interoperable with numpy.save/numpy.load.
/// Reading accepts little-endian float64, float32, int64 and int32 in C or Fortran
/// order and converts to float64; writing produces little-endian float64 ('<f8').
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "boltzlab/core/ensemble.hpp"

namespace boltzlab {

/// An n-dimensional float64 array in C (row-major) order.
struct NpyArray {
  std::vector<std::size_t> shape;
  std::vector<double> data;
  std::size_t size() const;
};

/// Reads a .npy file. \throws IoError naming the file on any format problem
/// (bad magic, unsupported dtype such as complex or object, truncated data).
NpyArray read_npy(const std::filesystem::path& path);

/// Writes `data` (the shape's size of doubles) with `shape` as '<f8' C-order.
/// \throws IoError if not writable.
void write_npy(const std::filesystem::path& path, const std::vector<std::size_t>& shape,
               const double* data);

/// A run of `count` doubles of an array written in pieces.
struct NpyPiece {
  const double* data = nullptr;
  std::size_t count = 0;
};

/// Writes an array of `shape` as '<f8' C-order whose data are the pieces one after the
/// other (no copy into one buffer; e.g. F frames of N×d as shape (F, N, d)).
/// \throws IoError if not writable or if the pieces do not hold the shape's size.
void write_npy_pieces(const std::filesystem::path& path, const std::vector<std::size_t>& shape,
                      const std::vector<NpyPiece>& pieces);

/// Convenience: a vector as shape (n,).
void write_npy(const std::filesystem::path& path, const Eigen::VectorXd& v);
/// Convenience: a row-major matrix as shape (rows, cols).
void write_npy(const std::filesystem::path& path, const RowMatrix& m);

/// Reads an (N, d) array (a 1-D array of length d is read as one row when
/// `d` is given and matches). \throws IoError if the shape is not (N, d) when
/// d > 0 is required, naming the file and the shape found.
RowMatrix read_npy_matrix(const std::filesystem::path& path, std::size_t required_cols = 0);
/// Reads a 1-D array (or (N,1)). \throws IoError otherwise.
Eigen::VectorXd read_npy_vector(const std::filesystem::path& path);

/// "(3, 4)" as numpy prints shapes.
std::string shape_string(const std::vector<std::size_t>& shape);

}  // namespace boltzlab
