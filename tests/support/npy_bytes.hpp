#pragma once
/// \file npy_bytes.hpp
/// A .npy file built by hand, for reader tests: magic, version `major`.0, the header
/// length field, `dict` padded with spaces so that the data start at a multiple of
/// `align` bytes (0: no padding), a final newline, then `data` as given.
#include <cstddef>
#include <string>

namespace boltzlab::testing {

inline std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1,
                             std::size_t align = 64) {
  const std::size_t prefix = major == 1 ? 10 : 12;  // magic 6 + version 2 + length 2 or 4
  std::string header = dict;
  if (align > 0) header.append((align - (prefix + header.size() + 1) % align) % align, ' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(major));
  out.push_back('\0');
  for (std::size_t b = 0; b < prefix - 8; ++b) out.push_back(static_cast<char>((header.size() >> (8 * b)) & 0xff));
  return out + header + data;
}

}  // namespace boltzlab::testing
