#include "boltzlab/io/npy.hpp"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <numeric>
#include <algorithm>
#include <streambuf>
#include <system_error>

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

// The format is numpy's (numpy/lib/format.py, "Format Version 1.0" to "3.0"): the magic
// string \x93NUMPY, the major and minor version, the header length (little-endian uint16
// in 1.0, uint32 in 2.0 and 3.0), then the header: the repr of a Python dict with exactly
// the keys 'descr', 'fortran_order' and 'shape', padded with spaces and ended by '\n' so
// that the data start at a multiple of 64 bytes (numpy before 1.14 aligned to 16, which
// the reader accepts), then the data.
constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;
/// numpy refuses longer headers unless told otherwise (np.load's max_header_size).
constexpr std::uint64_t kMaxHeaderBytes = 10000;
/// numpy's largest number of dimensions (NPY_MAXDIMS of numpy 2).
constexpr std::size_t kMaxDims = 64;
/// numpy's dimensions and byte counts are npy_intp: at most 2^63 − 1.
constexpr std::uint64_t kMaxIntp = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

/// A read-only stream buffer over bytes in memory (parse_npy reads without a copy).
class MemoryBuffer : public std::streambuf {
 public:
  explicit MemoryBuffer(std::string_view bytes) {
    char* begin = const_cast<char*>(bytes.data());  // never written: the buffer only reads
    setg(begin, begin, begin + bytes.size());
  }
};

/// What the header dict of a .npy file says.
struct NpyHeader {
  std::string descr;  ///< dtype, e.g. "<f8"
  bool fortran = false;
  std::vector<std::size_t> shape;
};

/// The element types read_npy accepts (little-endian or native byte order).
enum class NpyKind { kFloat64, kFloat32, kInt64, kInt32 };

std::size_t item_size(NpyKind kind) { return kind == NpyKind::kFloat64 || kind == NpyKind::kInt64 ? 8 : 4; }

NpyKind npy_kind(const std::string& descr, const std::string& file) {
  if (descr == "<f8" || descr == "=f8" || descr == "f8") return NpyKind::kFloat64;
  if (descr == "<f4" || descr == "=f4") return NpyKind::kFloat32;
  if (descr == "<i8" || descr == "=i8") return NpyKind::kInt64;
  if (descr == "<i4" || descr == "=i4") return NpyKind::kInt32;
  throw IoError(file + ": unsupported dtype '" + descr +
                "' (expected float64, float32, int64 or int32, little-endian)");
}

/// A recursive-descent parser of the header dict, as strict as numpy's reader (which
/// evaluates it as a Python literal and checks its keys and value types) and stricter
/// where numpy is lenient for no benefit: one spelling of each value, no duplicate keys,
/// printable ASCII only.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string file) : text_(text), file_(std::move(file)) {}

  NpyHeader parse() {
    check_characters();
    NpyHeader h;
    bool seen[3] = {false, false, false};
    skip_space();
    expect('{', "'{'");
    skip_space();
    while (!accept('}')) {
      read_entry(h, seen);
      skip_space();
      if (accept(',')) {
        skip_space();
      } else if (peek() != '}') {
        fail("expected ',' or '}'");
      }
    }
    skip_space();
    if (pos_ + 1 != text_.size()) fail("unexpected text after the dict");
    const char* names[3] = {"descr", "fortran_order", "shape"};
    for (int k = 0; k < 3; ++k) {
      if (!seen[k]) throw IoError(file_ + ": .npy header lacks '" + names[k] + "'");
    }
    return h;
  }

 private:
  /// Printable ASCII, ended by the one '\n' the format prescribes.
  void check_characters() const {
    if (text_.empty() || text_.back() != '\n') throw IoError(file_ + ": .npy header does not end in a newline");
    for (std::size_t i = 0; i + 1 < text_.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(text_[i]);
      if (c < 0x20 || c > 0x7e) {
        throw IoError(file_ + ": .npy header has a non-printable byte " + std::to_string(c) + " at offset " +
                      std::to_string(i));
      }
    }
  }

  void read_entry(NpyHeader& h, bool seen[3]) {
    const std::size_t key_at = pos_;
    const std::string key = read_string();
    skip_space();
    expect(':', "':'");
    skip_space();
    int slot = -1;
    if (key == "descr") {
      slot = 0;
      h.descr = read_string();
    } else if (key == "fortran_order") {
      slot = 1;
      h.fortran = read_bool();
    } else if (key == "shape") {
      slot = 2;
      h.shape = read_shape();
    } else {
      pos_ = key_at;
      fail("unknown key '" + key + "' (expected 'descr', 'fortran_order', 'shape')");
    }
    if (seen[slot]) {
      pos_ = key_at;
      fail("duplicate key '" + key + "'");
    }
    seen[slot] = true;
  }

  /// A Python string literal without escapes: '...' or "...".
  std::string read_string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    const std::size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string s(text_.substr(pos_ + 1, end - pos_ - 1));
    if (s.find('\\') != std::string::npos) fail("escapes are not allowed in a string");
    pos_ = end + 1;
    return s;
  }

  bool read_bool() {
    for (const bool value : {true, false}) {
      const std::string_view word = value ? "True" : "False";
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    fail("fortran_order must be True or False");
  }

  /// A tuple of non-negative ints: (), (n,), (n, m), (n, m,) and so on.
  std::vector<std::size_t> read_shape() {
    const std::size_t start = pos_;
    shape_at_ = pos_;
    expect('(', "a tuple '(' for the shape");
    std::vector<std::size_t> shape;
    skip_space();
    while (!accept(')')) {
      if (shape.size() == kMaxDims) fail_shape("more than " + std::to_string(kMaxDims) + " dimensions");
      shape.push_back(read_dim());
      skip_space();
      if (accept(',')) {
        skip_space();
      } else if (peek() != ')') {
        fail("expected ',' or ')' in the shape");
      } else if (shape.size() == 1) {
        pos_ = start;
        fail("shape must be a tuple: a 1-D shape is written (n,)");
      }
    }
    return shape;
  }

  std::size_t read_dim() {
    if (peek() == '-') fail_shape("negative dimension");
    const std::size_t start = pos_;
    std::uint64_t v = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      const std::uint64_t digit = static_cast<std::uint64_t>(text_[pos_] - '0');
      if (v > (kMaxIntp - digit) / 10) {
        fail_shape("dimension " + std::string(text_.substr(start, span_of_digits(start))) + " exceeds 2^63 - 1");
      }
      v = 10 * v + digit;
      ++pos_;
    }
    if (pos_ == start) fail("expected a dimension (a non-negative integer)");
    if (text_[start] == '0' && pos_ - start > 1) {
      pos_ = start;
      fail("dimension with a leading zero");
    }
    return static_cast<std::size_t>(v);
  }

  std::size_t span_of_digits(std::size_t start) const {
    std::size_t end = start;
    while (end < text_.size() && text_[end] >= '0' && text_[end] <= '9') ++end;
    return end - start;
  }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool accept(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void expect(char c, const char* what) {
    if (!accept(c)) fail(std::string("expected ") + what);
  }
  void skip_space() {
    while (peek() == ' ') ++pos_;
  }

  /// A shape error, quoting the shape as written (up to its ')', at most 120 characters).
  [[noreturn]] void fail_shape(const std::string& what) const {
    const std::size_t close = text_.find(')', shape_at_);
    const std::size_t length = std::min<std::size_t>(close == std::string_view::npos ? 120 : close + 1 - shape_at_, 120);
    throw IoError(file_ + ": .npy shape " + std::string(text_.substr(shape_at_, length)) + ": " + what);
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw IoError(file_ + ": malformed .npy header: " + what + " at offset " + std::to_string(pos_) + " of the dict");
  }

  std::string_view text_;
  std::string file_;
  std::size_t pos_ = 0;
  std::size_t shape_at_ = 0;  ///< where the shape's '(' is
};

/// Reads exactly n bytes. \throws IoError (the size was checked before: a failure here
/// is the file changing under us or an I/O error).
void read_exactly(std::istream& in, char* out, std::size_t n, const std::string& file) {
  if (n && !in.read(out, static_cast<std::streamsize>(n))) throw IoError(file + ": read failed");
}

/// The magic string, the version and the header of a stream of `total` bytes; `data_at`
/// is set to the offset of the data.
NpyHeader read_npy_header(std::istream& in, std::uint64_t total, const std::string& file, std::uint64_t& data_at) {
  unsigned char pre[12] = {};
  if (total < 10) throw IoError(file + ": not a .npy file (" + std::to_string(total) + " bytes)");
  read_exactly(in, reinterpret_cast<char*>(pre), 10, file);
  if (std::memcmp(pre, kMagic, kMagicSize) != 0) throw IoError(file + ": not a .npy file (bad magic string)");
  const int major = pre[6], minor = pre[7];
  if (!((major == 1 || major == 2 || major == 3) && minor == 0)) {
    throw IoError(file + ": unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                  " (expected 1.0, 2.0 or 3.0)");
  }
  std::uint64_t header_len = pre[8] | (static_cast<std::uint64_t>(pre[9]) << 8);
  std::uint64_t prefix = 10;
  if (major > 1) {
    if (total < 12) throw IoError(file + ": truncated .npy header");
    read_exactly(in, reinterpret_cast<char*>(pre) + 10, 2, file);
    header_len |= (static_cast<std::uint64_t>(pre[10]) << 16) | (static_cast<std::uint64_t>(pre[11]) << 24);
    prefix = 12;
  }
  if (header_len > total - prefix) {
    throw IoError(file + ": .npy header length " + std::to_string(header_len) + " exceeds the file's " +
                  std::to_string(total) + " bytes");
  }
  if (header_len > kMaxHeaderBytes) {
    throw IoError(file + ": .npy header length " + std::to_string(header_len) + " exceeds " +
                  std::to_string(kMaxHeaderBytes) + " bytes");
  }
  if ((prefix + header_len) % 16 != 0) {
    throw IoError(file + ": .npy header ends at byte " + std::to_string(prefix + header_len) +
                  ", not a multiple of 16 (the data must be aligned)");
  }
  std::string text(static_cast<std::size_t>(header_len), '\0');
  read_exactly(in, text.data(), text.size(), file);
  data_at = prefix + header_len;
  return HeaderParser(text, file).parse();
}

/// The number of elements of the header's shape, checked: the shape's bytes must fit
/// in npy_intp (as numpy requires) and be exactly the `available` bytes after the header.
std::size_t checked_element_count(const NpyHeader& h, std::size_t item, std::uint64_t available,
                                  const std::string& file) {
  std::uint64_t bytes = item;
  bool empty = false;
  for (const std::size_t dim : h.shape) {
    if (dim == 0) {
      empty = true;  // as numpy: zero dimensions are left out of the overflow check
    } else if (bytes > kMaxIntp / dim) {
      throw IoError(file + ": .npy shape " + shape_string(h.shape) + " of '" + h.descr +
                    "' is too large (more than 2^63 - 1 bytes)");
    } else {
      bytes *= dim;
    }
  }
  if (empty) bytes = 0;
  if (bytes != available) {
    throw IoError(file + ": .npy shape " + shape_string(h.shape) + " of '" + h.descr + "' needs " +
                  std::to_string(bytes) + " bytes of data, but the file has " + std::to_string(available) +
                  " after its header");
  }
  return static_cast<std::size_t>(bytes / item);
}

double to_double(const char* p, NpyKind kind) {
  switch (kind) {
    case NpyKind::kFloat64: { double v; std::memcpy(&v, p, 8); return v; }
    case NpyKind::kFloat32: { float v; std::memcpy(&v, p, 4); return v; }
    case NpyKind::kInt64: { std::int64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
    case NpyKind::kInt32: { std::int32_t v; std::memcpy(&v, p, 4); return v; }
  }
  return 0.0;
}

/// The C-order (row-major) index of successive Fortran-order (column-major) elements.
class FortranToC {
 public:
  explicit FortranToC(const std::vector<std::size_t>& shape) : shape_(shape), index_(shape.size(), 0) {}
  std::size_t next() {
    std::size_t c = 0;
    for (std::size_t k = 0; k < shape_.size(); ++k) c = c * shape_[k] + index_[k];
    for (std::size_t k = 0; k < shape_.size(); ++k) {  // first index fastest
      if (++index_[k] < shape_[k]) break;
      index_[k] = 0;
    }
    return c;
  }

 private:
  const std::vector<std::size_t>& shape_;
  std::vector<std::size_t> index_;
};

/// n elements of `kind` converted to double in C order, into `data` (n doubles).
/// Float64 in C order is read in place; anything else goes through a fixed-size buffer,
/// so the only storage that grows with the file is the n doubles of the result.
void read_npy_values(std::istream& in, NpyKind kind, const NpyHeader& h, std::size_t n, double* data,
                     const std::string& file) {
  const bool reorder = h.fortran && h.shape.size() > 1;
  if (kind == NpyKind::kFloat64 && !reorder) {
    read_exactly(in, reinterpret_cast<char*>(data), n * sizeof(double), file);
    return;
  }
  const std::size_t item = item_size(kind);
  constexpr std::size_t kChunkBytes = 1 << 16;
  std::vector<char> buffer(std::min(n * item, kChunkBytes));
  FortranToC order(h.shape);
  for (std::size_t done = 0; done < n;) {
    const std::size_t m = std::min(n - done, kChunkBytes / item);
    read_exactly(in, buffer.data(), m * item, file);
    for (std::size_t k = 0; k < m; ++k) data[reorder ? order.next() : done + k] = to_double(buffer.data() + k * item, kind);
    done += m;
  }
}

/// A .npy held in `in`, which has `total` bytes: the header is checked, then
/// `destination(shape, n)` returns where the n values go (it may throw on the shape,
/// before any data are read or stored). Returns the shape.
template <class Destination>
std::vector<std::size_t> read_npy_stream(std::istream& in, std::uint64_t total, const std::string& file,
                                         Destination&& destination) {
  std::uint64_t data_at = 0;
  NpyHeader header = read_npy_header(in, total, file, data_at);
  const NpyKind kind = npy_kind(header.descr, file);
  const std::size_t n = checked_element_count(header, item_size(kind), total - data_at, file);
  double* out = destination(static_cast<const std::vector<std::size_t>&>(header.shape), n);
  read_npy_values(in, kind, header, n, out, file);
  return std::move(header.shape);
}

/// The .npy file at `path` into destination(shape, n), as read_npy_stream.
template <class Destination>
std::vector<std::size_t> read_npy_file(const std::filesystem::path& path, Destination&& destination) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(file + ": cannot open file for reading");
  std::error_code ec;
  const bool regular = std::filesystem::is_regular_file(path, ec);
  const std::uintmax_t size = regular ? std::filesystem::file_size(path, ec) : 0;
  if (regular && !ec) return read_npy_stream(in, size, file, destination);
  // A pipe or device has no size to check the header against: read what it holds
  // (the allocation is what was actually sent), then parse that.
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  MemoryBuffer buffer(bytes);
  std::istream from_memory(&buffer);
  return read_npy_stream(from_memory, bytes.size(), file, destination);
}

/// A destination of read_npy_stream: NpyArray::data.
struct IntoArray {
  NpyArray& array;
  double* operator()(const std::vector<std::size_t>&, std::size_t n) {
    array.data.resize(n);
    return array.data.data();
  }
};

/// The header dict and its padding, with the magic, version and length before it.
std::string npy_preamble_and_header(const std::vector<std::size_t>& shape) {
  std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape_string(shape) + ", }";
  // Version 1.0 stores the header length in 16 bits; 2.0 in 32 bits.
  const bool v1 = dict.size() + 1 + 10 + 63 <= 0xffff;
  const std::size_t prefix = v1 ? 10 : 12;
  const std::size_t unpadded = prefix + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  std::string out(kMagic, kMagicSize);
  out.push_back(static_cast<char>(v1 ? 1 : 2));
  out.push_back('\0');
  for (std::size_t b = 0; b < prefix - 8; ++b) out.push_back(static_cast<char>((dict.size() >> (8 * b)) & 0xff));
  return out + dict;
}

/// The element count of `shape`. \throws IoError naming the file on overflow.
std::size_t checked_size(const std::vector<std::size_t>& shape, const std::string& file) {
  std::size_t n = 1;
  for (const std::size_t s : shape) {
    if (s != 0 && n > std::numeric_limits<std::size_t>::max() / sizeof(double) / s) {
      throw IoError(file + ": shape " + shape_string(shape) + " is too large to write");
    }
    n *= s;
  }
  return n;
}

}  // namespace

NpyArray parse_npy(std::string_view bytes, const std::string& name) {
  MemoryBuffer buffer(bytes);
  std::istream in(&buffer);
  NpyArray a;
  a.shape = read_npy_stream(in, bytes.size(), name, IntoArray{a});
  return a;
}

NpyArray read_npy(const std::filesystem::path& path) {
  NpyArray a;
  a.shape = read_npy_file(path, IntoArray{a});
  return a;
}

void write_npy_pieces(const std::filesystem::path& path, const std::vector<std::size_t>& shape,
                      const std::vector<NpyPiece>& pieces) {
  const std::size_t n = checked_size(shape, path.string());
  std::size_t given = 0;
  for (const auto& piece : pieces) given += piece.count;
  if (given != n) {
    throw IoError(path.string() + ": " + std::to_string(given) + " values for shape " + shape_string(shape));
  }
  const std::string header = npy_preamble_and_header(shape);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw IoError(path.string() + ": cannot open file for writing");
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
  write_npy_pieces(path, shape, {NpyPiece{data, checked_size(shape, path.string())}});
}

void write_npy(const std::filesystem::path& path, const Eigen::VectorXd& v) {
  write_npy(path, {static_cast<std::size_t>(v.size())}, v.data());
}

void write_npy(const std::filesystem::path& path, const RowMatrix& m) {
  write_npy(path, {static_cast<std::size_t>(m.rows()), static_cast<std::size_t>(m.cols())}, m.data());
}

RowMatrix read_npy_matrix(const std::filesystem::path& path, std::size_t required_cols) {
  // The values are read straight into the matrix (no intermediate copy): its shape is
  // checked from the header, before any data are read.
  RowMatrix m;
  read_npy_file(path, [&](const std::vector<std::size_t>& shape, std::size_t) {
    std::size_t rows = 0, cols = 0;
    if (shape.size() == 2) {
      rows = shape[0];
      cols = shape[1];
    } else if (shape.size() == 1 && required_cols > 0 && shape[0] == required_cols) {
      rows = 1;
      cols = shape[0];
    } else {
      throw IoError(path.string() + ": expected a 2-D array (N, " +
                    (required_cols ? std::to_string(required_cols) : std::string("d")) + "), got shape " +
                    shape_string(shape));
    }
    if (required_cols && cols != required_cols) {
      throw IoError(path.string() + ": expected shape (N, " + std::to_string(required_cols) + "), got " +
                    shape_string(shape));
    }
    m.resize(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
    return m.data();
  });
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
