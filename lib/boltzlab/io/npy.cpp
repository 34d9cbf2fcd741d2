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

}  // namespace

NpyArray read_npy(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(file + ": cannot open file for reading");
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

  std::string descr = header_value(header, "descr", file);
  if (descr.size() < 2 || descr[0] != '\'') throw IoError(file + ": malformed dtype in .npy header");
  descr = descr.substr(1, descr.find('\'', 1) - 1);
  const std::string order = header_value(header, "fortran_order", file);
  const bool fortran = order.rfind("True", 0) == 0;
  std::string shape_text = header_value(header, "shape", file);
  shape_text = shape_text.substr(0, shape_text.find(')') + 1);

  NpyArray arr;
  static const std::regex num("[0-9]+");
  for (auto it = std::sregex_iterator(shape_text.begin(), shape_text.end(), num);
       it != std::sregex_iterator(); ++it) {
    arr.shape.push_back(static_cast<std::size_t>(std::stoull(it->str())));
  }
  const std::size_t n = arr.size();

  std::size_t item = 0;
  char kind = 0;
  if (descr == "<f8" || descr == "=f8" || descr == "f8") {
    item = 8; kind = 'd';
  } else if (descr == "<f4" || descr == "=f4") {
    item = 4; kind = 'f';
  } else if (descr == "<i8" || descr == "=i8") {
    item = 8; kind = 'l';
  } else if (descr == "<i4" || descr == "=i4") {
    item = 4; kind = 'i';
  } else {
    throw IoError(file + ": unsupported dtype '" + descr +
                  "' (expected float64, float32, int64 or int32, little-endian)");
  }
  std::vector<char> raw(n * item);
  if (n && !in.read(raw.data(), static_cast<std::streamsize>(raw.size()))) {
    throw IoError(file + ": truncated data (expected " + std::to_string(n) + " values of shape " +
                  shape_string(arr.shape) + ")");
  }
  arr.data.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const char* p = raw.data() + i * item;
    switch (kind) {
      case 'd': { double v; std::memcpy(&v, p, 8); arr.data[i] = v; break; }
      case 'f': { float v; std::memcpy(&v, p, 4); arr.data[i] = v; break; }
      case 'l': { std::int64_t v; std::memcpy(&v, p, 8); arr.data[i] = static_cast<double>(v); break; }
      default: { std::int32_t v; std::memcpy(&v, p, 4); arr.data[i] = v; break; }
    }
  }
  if (fortran && arr.shape.size() > 1) {
    // Transpose from column-major to row-major.
    std::vector<double> c(n);
    const std::size_t nd = arr.shape.size();
    std::vector<std::size_t> idx(nd, 0);
    for (std::size_t f = 0; f < n; ++f) {
      // f is the Fortran linear index of multi-index idx (first index fastest).
      std::size_t ci = 0;
      for (std::size_t k = 0; k < nd; ++k) ci = ci * arr.shape[k] + idx[k];
      c[ci] = arr.data[f];
      for (std::size_t k = 0; k < nd; ++k) {
        if (++idx[k] < arr.shape[k]) break;
        idx[k] = 0;
      }
    }
    arr.data.swap(c);
  }
  return arr;
}

void write_npy(const std::filesystem::path& path, const std::vector<std::size_t>& shape,
               const double* data) {
  std::size_t n = 1;
  for (auto s : shape) n *= s;
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape_string(shape) + ", }";
  // Pad so that magic(6)+version(2)+len(2)+header is a multiple of 64, ending in '\n'.
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
  if (n) out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n * sizeof(double)));
  out.flush();
  if (!out) throw IoError(path.string() + ": write failed");
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
