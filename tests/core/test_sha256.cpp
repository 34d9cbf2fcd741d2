// SHA-256 against the test vectors of FIPS 180-4's examples (NIST CSRC "SHA256.pdf",
// "SHA2_Additional.pdf"): incremental updates, the padding boundaries and files.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/sha256.hpp"

using boltzlab::sha256_hex;

TEST_CASE("sha256: the FIPS 180-4 example vectors") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256: any split of the message into updates gives the same digest") {
  // 55, 56 and 64 bytes straddle the padding boundaries (one or two final blocks).
  for (const std::size_t n : {55u, 56u, 63u, 64u, 65u, 200u}) {
    std::string message;
    for (std::size_t k = 0; k < n; ++k) message += static_cast<char>('A' + k % 26);
    boltzlab::Sha256 bytewise;
    for (const char c : message) bytewise.update(&c, 1);
    CHECK(bytewise.hex_digest() == sha256_hex(message));
  }
  // A one-bit change changes the digest.
  CHECK(sha256_hex("abd") != sha256_hex("abc"));
}

TEST_CASE("sha256: files are hashed by their bytes; a missing file is an IoError naming it") {
  const auto path = std::filesystem::temp_directory_path() / "boltzlab_sha256_test.bin";
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string(70000, 'a') << "abc";  // more than one read chunk
  }
  CHECK(boltzlab::sha256_file_hex(path) == sha256_hex(std::string(70000, 'a') + "abc"));
  std::filesystem::remove(path);
  CHECK_THROWS_AS(boltzlab::sha256_file_hex(path), boltzlab::IoError);
  CHECK_THROWS_WITH(boltzlab::sha256_file_hex(path), doctest::Contains("boltzlab_sha256_test.bin"));
}
