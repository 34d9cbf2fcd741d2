#include "boltzlab/io/npy.hpp"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <numeric>
#include <regex>

#include "boltzlab/core/error.hpp"

namespace boltzlab {

std::size_t NpyArray::size() const {
  return std::accumulate(shape.begin(), shape.end(), std::size_t{1}, std::multiplies<>());
}

std::string shape_string(const std::vector<std::size_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

namespace {

std::string header_value(const std::string& header, const std::string& key,
                         const std::string& file) {
  const auto pos = header.find("'" + key + "'");
  if (pos == std::string::npos) throw IoError(file + ": .npy header lacks '" + key + "'");
  auto colon = header.find(':', pos);
  if (colon == std::string::npos) throw IoError(file + ": malformed .npy header");
  ++colon;
  while (colon < header.size() && header[colon] == ' ') ++colon;
  return header.substr(colon);
}

/// What the header dict of a .npy file says.
struct NpyHeader {
  std::string descr;  ///< dtype, e.g. "<f8"
  bool fortran = false;
  std::vector<std::size_t> shape;
};

/// Reads the magic string, the version, the header length and the header dict.
NpyHeader read_npy_header(std::istream& in, const std::string& file) {
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) {
    throw IoError(file + ": not a .npy file (bad magic string)");
  }
  const int major = static_cast<unsigned char>(magic[6]);
  std::uint32_t header_len = 0;
  if (major == 1) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2)) throw IoError(file + ": truncated .npy header");
    header_len = b[0] | (b[1] << 8);
  } else if (major == 2 || major == 3) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) throw IoError(file + ": truncated .npy header");
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
  } else {
    throw IoError(file + ": unsupported .npy format version " + std::to_string(major));
  }
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) throw IoError(file + ": truncated .npy header");

  NpyHeader h;
  h.descr = header_value(header, "descr", file);
  if (h.descr.size() < 2 || h.descr[0] != '\'') throw IoError(file + ": malformed dtype in .npy header");
  h.descr = h.descr.substr(1, h.descr.find('\'', 1) - 1);
  h.fortran = header_value(header, "fortran_order", file).rfind("True", 0) == 0;
  std::string shape_text = header_value(header, "shape", file);
  shape_text = shape_text.substr(0, shape_text.find(')') + 1);
  static const std::regex num("[0-9]+");
  for (auto it = std::sregex_iterator(shape_text.begin(), shape_text.end(), num); it != std::sregex_iterator();
       ++it) {
    h.shape.push_back(static_cast<std::size_t>(std::stoull(it->str())));
  }
  return h;
}

/// The element types read_npy accepts (little-endian or native byte order).
enum class NpyKind { kFloat64, kFloat32, kInt64, kInt32 };

NpyKind npy_kind(const std::string& descr, const std::string& file) {
  if (descr == "<f8" || descr == "=f8" || descr == "f8") return NpyKind::kFloat64;
  if (descr == "<f4" || descr == "=f4") return NpyKind::kFloat32;
  if (descr == "<i8" || descr == "=i8") return NpyKind::kInt64;
  if (descr == "<i4" || descr == "=i4") return NpyKind::kInt32;
  throw IoError(file + ": unsupported dtype '" + descr + "' (expected float64, float32, int64 or int32, little-endian)");
}

/// Reads n elements of `kind` and converts them to double.
std::vector<double> read_npy_values(std::istream& in, NpyKind kind, const std::vector<std::size_t>& shape,
                                    std::size_t n, const std::string& file) {
  const std::size_t item = kind == NpyKind::kFloat64 || kind == NpyKind::kInt64 ? 8 : 4;
  std::vector<char> raw(n * item);
  if (n && !in.read(raw.data(), static_cast<std::streamsize>(raw.size()))) {
    throw IoError(file + ": truncated data (expected " + std::to_string(n) + " values of shape " +
                  shape_string(shape) + ")");
  }
  std::vector<double> data(n);
  for (std::size_t i = 0; i < n; ++i) {
    const char* p = raw.data() + i * item;
    switch (kind) {
      case NpyKind::kFloat64: { double v; std::memcpy(&v, p, 8); data[i] = v; break; }
      case NpyKind::kFloat32: { float v; std::memcpy(&v, p, 4); data[i] = v; break; }
      case NpyKind::kInt64: { std::int64_t v; std::memcpy(&v, p, 8); data[i] = static_cast<double>(v); break; }
      case NpyKind::kInt32: { std::int32_t v; std::memcpy(&v, p, 4); data[i] = v; break; }
    }
  }
  return data;
}

/// Column-major (Fortran) data of `shape` rearranged into row-major (C) order.
std::vector<double> fortran_to_c_order(const std::vector<double>& f_data, const std::vector<std::size_t>& shape) {
  const std::size_t n = f_data.size(), nd = shape.size();
  std::vector<double> c(n);
  std::vector<std::size_t> idx(nd, 0);
  for (std::size_t f = 0; f < n; ++f) {
    // f is the Fortran linear index of multi-index idx (first index fastest).
    std::size_t ci = 0;
    for (std::size_t k = 0; k < nd; ++k) ci = ci * shape[k] + idx[k];
    c[ci] = f_data[f];
    for (std::size_t k = 0; k < nd; ++k) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return c;
}

}  // namespace

NpyArray read_npy(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(file + ": cannot open file for reading");
  NpyHeader header = read_npy_header(in, file);
  const NpyKind kind = npy_kind(header.descr, file);
  NpyArray arr;
  arr.shape = std::move(header.shape);
  arr.data = read_npy_values(in, kind, arr.shape, arr.size(), file);
  if (header.fortran && arr.shape.size() > 1) arr.data = fortran_to_c_order(arr.data, arr.shape);
  return arr;
}

void write_npy_pieces(const std::filesystem::path& path, const std::vector<std::size_t>& shape,
                      const std::vector<NpyPiece>& pieces) {
  std::size_t n = 1, given = 0;
  for (auto s : shape) n *= s;
  for (const auto& piece : pieces) given += piece.count;
  if (given != n) {
    throw IoError(path.string() + ": " + std::to_string(given) + " values for shape " + shape_string(shape));
  }
  // Format 1.0: magic, version, little-endian header length, then the header dict
  // padded with spaces so that magic(6)+version(2)+len(2)+header is a multiple of 64,
  // ending in '\n'.
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape_string(shape) + ", }";
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw IoError(path.string() + ": cannot open file for writing");
  out.write("\x93NUMPY\x01\x00", 8);
  const std::uint16_t len = static_cast<std::uint16_t>(header.size());
  const char lb[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  out.write(lb, 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const auto& piece : pieces) {
    if (piece.count) {
      out.write(reinterpret_cast<const char*>(piece.data), static_cast<std::streamsize>(piece.count * sizeof(double)));
    }
  }
  out.flush();
  if (!out) throw IoError(path.string() + ": write failed");
}

void write_npy(const std::filesystem::path& path, const std::vector<std::size_t>& shape,
               const double* data) {
  std::size_t n = 1;
  for (auto s : shape) n *= s;
  write_npy_pieces(path, shape, {NpyPiece{data, n}});
}

void write_npy(const std::filesystem::path& path, const Eigen::VectorXd& v) {
  write_npy(path, {static_cast<std::size_t>(v.size())}, v.data());
}

void write_npy(const std::filesystem::path& path, const RowMatrix& m) {
  write_npy(path, {static_cast<std::size_t>(m.rows()), static_cast<std::size_t>(m.cols())}, m.data());
}

RowMatrix read_npy_matrix(const std::filesystem::path& path, std::size_t required_cols) {
  NpyArray a = read_npy(path);
  std::size_t rows = 0, cols = 0;
  if (a.shape.size() == 2) {
    rows = a.shape[0];
    cols = a.shape[1];
  } else if (a.shape.size() == 1 && required_cols > 0 && a.shape[0] == required_cols) {
    rows = 1;
    cols = a.shape[0];
  } else {
    throw IoError(path.string() + ": expected a 2-D array (N, " +
                  (required_cols ? std::to_string(required_cols) : std::string("d")) +
                  "), got shape " + shape_string(a.shape));
  }
  if (required_cols && cols != required_cols) {
    throw IoError(path.string() + ": expected shape (N, " + std::to_string(required_cols) +
                  "), got " + shape_string(a.shape));
  }
  RowMatrix m(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
  std::copy(a.data.begin(), a.data.end(), m.data());
  return m;
}

Eigen::VectorXd read_npy_vector(const std::filesystem::path& path) {
  NpyArray a = read_npy(path);
  if (!(a.shape.size() == 1 || (a.shape.size() == 2 && a.shape[1] == 1))) {
    throw IoError(path.string() + ": expected a 1-D array, got shape " + shape_string(a.shape));
  }
  Eigen::VectorXd v(static_cast<Eigen::Index>(a.data.size()));
  std::copy(a.data.begin(), a.data.end(), v.data());
  return v;
}

}  // namespace boltzlab
