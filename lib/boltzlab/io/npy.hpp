#pragma once
/// \file npy.hpp
/// NumPy .npy files (format 1.0/2.0/3.0), interoperable with numpy.save/numpy.load.
/// Reading accepts little-endian float64, float32, int64 and int32 in C or Fortran
/// order and converts to float64; writing produces little-endian float64 ('<f8').
///
/// The reader cannot be tricked by a header: the header must follow numpy's format
/// (magic, version 1.0/2.0/3.0, a dict with exactly 'descr', 'fortran_order' and 'shape',
/// space padding, a final newline, data aligned to 16 bytes, at most 10000 header bytes),
/// the shape's byte count must fit in 2^63 − 1, and the data must be exactly the bytes
/// after the header. All of this is checked before the data are allocated, so reading
/// allocates at most 2 × the file's size plus a fixed 64 KiB buffer (the result's doubles
/// are at most twice the bytes of 4-byte elements).
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
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
/// (bad magic, malformed header, unsupported dtype such as complex or object, a shape
/// that overflows or does not match the data's size).
NpyArray read_npy(const std::filesystem::path& path);

/// Parses the bytes of a whole .npy file held in memory, as read_npy does; `name` names
/// it in messages. \throws IoError as read_npy.
NpyArray parse_npy(std::string_view bytes, const std::string& name);

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
