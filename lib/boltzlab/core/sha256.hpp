#pragma once
/// \file sha256.hpp
/// SHA-256 (FIPS 180-4, "Secure Hash Standard", NIST 2015, §6.2) of byte strings and files:
/// the checksum of saved model files and the identity hash of a potential file.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace boltzlab {

/// Incremental SHA-256: update() with any split of the message gives the digest of the
/// concatenation (FIPS 180-4 §5.1.1 padding, §6.2.2 compression).
class Sha256 {
 public:
  Sha256();
  /// Appends `size` bytes at `data` to the message.
  void update(const void* data, std::size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  /// The 32-byte digest; the object is spent afterwards (call no more update()).
  std::array<std::uint8_t, 32> digest();
  /// The digest as 64 lower-case hex digits.
  std::string hex_digest();

 private:
  void compress(const std::uint8_t* block);
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t length_ = 0;  ///< message length in bytes
};

/// SHA-256 of `bytes` as 64 lower-case hex digits.
std::string sha256_hex(std::string_view bytes);

/// SHA-256 of the bytes of the file at `path`, as 64 lower-case hex digits.
/// \throws IoError naming the file when it cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace boltzlab
