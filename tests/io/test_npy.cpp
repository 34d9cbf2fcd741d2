#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/npy.hpp"
#include "support/allocation_guard.hpp"
#include "support/npy_bytes.hpp"

using namespace boltzlab;
namespace fs = std::filesystem;
using boltzlab::testing::npy_bytes;

TEST_CASE("npy: round trip of a float64 matrix") {
  const fs::path dir = fs::temp_directory_path() / "boltzlab_test_npy";
  fs::create_directories(dir);
  RowMatrix m(3, 4);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = 0.5 * static_cast<double>(i) - 1.0;
  write_npy(dir / "m.npy", m);
  RowMatrix r = read_npy_matrix(dir / "m.npy", 4);
  CHECK(r == m);
  CHECK_THROWS_AS(read_npy_matrix(dir / "m.npy", 5), IoError);
}

TEST_CASE("npy: reads files written by numpy (float64, float32, int64, Fortran order)") {
  // tests/data/numpy_*.npy were written by numpy.save (see tests/data/README.md):
  // a = np.arange(6).reshape(2, 3) * 0.25 in several dtypes/orders.
  const fs::path data = BOLTZLAB_TEST_DATA;
  for (const char* name : {"numpy_f8.npy", "numpy_f4.npy", "numpy_i8.npy", "numpy_f8_fortran.npy"}) {
    INFO(name);
    RowMatrix m = read_npy_matrix(data / name);
    REQUIRE(m.rows() == 2);
    REQUIRE(m.cols() == 3);
    const bool integer = std::string(name).find("i8") != std::string::npos;
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) CHECK(m(i, j) == (integer ? 3 * i + j : 0.25 * (3 * i + j)));
  }
}

TEST_CASE("npy: malformed input is an IoError naming the file") {
  const fs::path p = fs::temp_directory_path() / "boltzlab_bad.npy";
  { std::ofstream(p) << "not a numpy file"; }
  try {
    read_npy(p);
    FAIL("expected IoError");
  } catch (const IoError& e) {
    CHECK(std::string(e.what()).find(p.string()) != std::string::npos);
  }
}

TEST_CASE("npy: an array written in pieces has the bytes of the array written whole") {
  const fs::path dir = fs::temp_directory_path() / "boltzlab_test_npy_pieces";
  fs::create_directories(dir);
  RowMatrix m(5, 3);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = 0.1 * static_cast<double>(i * i) - 2.0;
  write_npy(dir / "whole.npy", {5, 3}, m.data());
  // Three pieces (2 rows, 0 values, 3 rows): what write_frames_npy does with frames.
  write_npy_pieces(dir / "pieces.npy", {5, 3}, {{m.data(), 6}, {m.data() + 6, 0}, {m.data() + 6, 9}});
  auto bytes = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  CHECK(bytes(dir / "pieces.npy") == bytes(dir / "whole.npy"));
  CHECK(read_npy_matrix(dir / "pieces.npy", 3) == m);
  // Pieces that do not fill the shape: an error naming the file and the count.
  CHECK_THROWS_WITH_AS(write_npy_pieces(dir / "short.npy", {5, 3}, {{m.data(), 14}}),
                       doctest::Contains("short.npy: 14 values for shape (5, 3)"), IoError);
}

// ---------------------------------------------------------------- headers that must not trick the reader

namespace {

/// A .npy file: magic, version major.0, the header length, `dict` padded with spaces and a
/// `count` little-endian doubles 0, 1, 2, ... as raw bytes.
std::string doubles(std::size_t count) {
  std::string out(count * sizeof(double), '\0');
  for (std::size_t i = 0; i < count; ++i) {
    const double v = static_cast<double>(i);
    std::memcpy(out.data() + i * sizeof(double), &v, sizeof v);
  }
  return out;
}

fs::path write_bytes(const std::string& name, const std::string& bytes) {
  const fs::path dir = fs::temp_directory_path() / "boltzlab_test_npy_headers";
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
  return dir / name;
}

/// read_npy(path) must throw IoError whose message contains the file and `fragment`.
void check_refused(const fs::path& p, const std::string& fragment) {
  INFO(p.string());
  try {
    // A guard refuses any single allocation above 1 MiB (all these files are < 1 KiB):
    // a reader that believes the header and allocates first fails here, not with 16 GB.
    test::AllocationGuard guard(1 << 20);
    read_npy(p);
    FAIL("expected IoError");
  } catch (const IoError& e) {
    const std::string what = e.what();
    CHECK(what.find(p.string() + ": ") == 0);
    CHECK_MESSAGE(what.find(fragment) != std::string::npos, what);
    CHECK(what.find('\n') == std::string::npos);
  } catch (const std::exception& e) {
    FAIL("expected IoError, got " << std::string(e.what()));
  }
}

}  // namespace

TEST_CASE("npy: a shape whose size overflows 64 bits is refused, naming the file and the shape") {
  // 2^63 × 2 elements: the product wraps to 0 in 64 bits; the old reader returned an
  // empty array of that shape and read_npy_matrix then crashed.
  check_refused(write_bytes("overflow.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': "
                                                     "(9223372036854775808, 2), }", doubles(2))),
                ".npy shape (9223372036854775808, 2): dimension 9223372036854775808 exceeds 2^63 - 1");
  check_refused(write_bytes("overflow2.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': "
                                                      "(4294967296, 4294967296, 2), }", doubles(2))),
                ".npy shape (4294967296, 4294967296, 2) of '<f8' is too large");
  check_refused(write_bytes("overflow3.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': "
                                                      "(99999999999999999999999,), }", doubles(2))),
                ".npy shape (99999999999999999999999,): dimension");
}

TEST_CASE("npy: a header claiming more data than the file holds is refused before allocating") {
  // 193 bytes claiming 10^9 × 2 doubles (16 GB): refused from the file size alone (the
  // guard in check_refused turns any allocation over 1 MiB into a failure).
  const std::string claim = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 2), }";
  check_refused(write_bytes("claim.npy", npy_bytes(claim, doubles(8))), "(1000000000, 2)");
  // Short and long data by one element, and by one byte.
  const std::string d23 = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
  check_refused(write_bytes("short.npy", npy_bytes(d23, doubles(5))), "needs 48 bytes of data, but the file has 40");
  check_refused(write_bytes("long.npy", npy_bytes(d23, doubles(7))), "needs 48 bytes of data, but the file has 56");
  check_refused(write_bytes("byte.npy", npy_bytes(d23, doubles(6) + "x")), "the file has 49");
  // A header length beyond the end of the file.
  std::string cut = npy_bytes(d23, doubles(6));
  cut[8] = '\xff';
  cut[9] = '\x7f';
  check_refused(write_bytes("header_len.npy", cut), "header length 32767 exceeds the file's");
}

TEST_CASE("npy: header grammar is numpy's: what numpy refuses is refused") {
  const std::string f = "'fortran_order': False";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{'descr': '<f8', " + f + ", 'shape': (2, 3), 'extra': 1, }", "unknown key 'extra'"},
      {"{'descr': '<f8', " + f + ", 'shape': (2, 3), 'shape': (2, 3), }", "duplicate key 'shape'"},
      {"{'descr': '<f8', " + f + ", }", "lacks 'shape'"},
      {"{'descr': '<f8', " + f + ", 'shape': (-2, -3), }", "negative dimension"},
      {"{'descr': '<f8', " + f + ", 'shape': 6, }", "tuple"},
      {"{'descr': '<f8', " + f + ", 'shape': (6), }", "tuple"},
      {"{'descr': '<f8', " + f + ", 'shape': [2, 3], }", "tuple"},
      {"{'descr': '<f8', " + f + ", 'shape': (2, 3), } garbage", "unexpected text after the dict"},
      {"{'descr': '<f8', 'fortran_order': Tru, 'shape': (2, 3), }", "True or False"},
      {"{'descr': '<f8', 'fortran_order': 0, 'shape': (2, 3), }", "True or False"},
      {"{'descr': '>f8', " + f + ", 'shape': (2, 3), }", "unsupported dtype '>f8'"},
      {"{'descr': '<c16', " + f + ", 'shape': (2, 3), }", "unsupported dtype '<c16'"},
      {"{'descr': '|O', " + f + ", 'shape': (2, 3), }", "unsupported dtype '|O'"},
      {"{'descr': '<f8' " + f + ", 'shape': (2, 3), }", "expected ',' or '}'"},
  };
  for (std::size_t k = 0; k < bad.size(); ++k) {
    check_refused(write_bytes("grammar" + std::to_string(k) + ".npy", npy_bytes(bad[k].first, doubles(6))),
                  bad[k].second);
  }
  const std::string good = "{'descr': '<f8', " + f + ", 'shape': (2, 3), }";
  std::string no_newline = npy_bytes(good, doubles(6));
  no_newline[no_newline.size() - 48 - 1] = ' ';
  check_refused(write_bytes("no_newline.npy", no_newline), "newline");
  std::string version = npy_bytes(good, doubles(6));
  version[7] = '\x05';
  check_refused(write_bytes("version.npy", version), "version 1.5");
  check_refused(write_bytes("unaligned.npy", npy_bytes(good, doubles(6), 1, 4)), "not a multiple of 16");
  std::string control = npy_bytes(good, doubles(6));
  control[20] = '\0';
  check_refused(write_bytes("control.npy", control), "non-printable byte 0");
}

TEST_CASE("npy: every header form numpy writes is read (versions 1.0-3.0, 16-aligned, 0-d, empty, Fortran 3-D)") {
  const std::string f = "'fortran_order': False";
  for (const int major : {1, 2, 3}) {
    INFO("version " << major);
    const NpyArray a = read_npy(write_bytes("v.npy", npy_bytes("{'descr': '<f8', " + f + ", 'shape': (2, 3), }",
                                                              doubles(6), major)));
    CHECK(a.shape == std::vector<std::size_t>{2, 3});
    CHECK(a.data == std::vector<double>{0, 1, 2, 3, 4, 5});
  }
  // numpy < 1.14 aligned the data to 16 bytes; no trailing comma; double quotes.
  const NpyArray old = read_npy(write_bytes("a16.npy", npy_bytes("{\"descr\": \"<f8\", \"fortran_order\": False, "
                                                                "\"shape\": (3,)}", doubles(3), 1, 16)));
  CHECK(old.shape == std::vector<std::size_t>{3});
  const NpyArray scalar = read_npy(write_bytes("scalar.npy", npy_bytes("{'descr': '<f8', " + f + ", 'shape': (), }",
                                                                      doubles(1))));
  CHECK(scalar.shape.empty());
  CHECK(scalar.data.size() == 1);
  // A zero dimension: no data; as in numpy, the other dimensions' bytes must still fit
  // in 2^63 − 1 (8 × (2^60 − 1) does, 8 × (2^63 − 1) does not).
  const NpyArray empty = read_npy(write_bytes("empty.npy", npy_bytes("{'descr': '<f8', " + f +
                                                                    ", 'shape': (0, 1152921504606846975), }", "")));
  CHECK(empty.data.empty());
  CHECK(empty.shape == std::vector<std::size_t>{0, 1152921504606846975ULL});
  check_refused(write_bytes("empty_big.npy", npy_bytes("{'descr': '<f8', " + f + ", 'shape': (0, 9223372036854775807), }",
                                                      "")),
                "too large");
  // Fortran order, 3-D: element (i, j, k) is at i + 2 j + 6 k in the file.
  const NpyArray fortran = read_npy(write_bytes("f3.npy", npy_bytes("{'descr': '<f8', 'fortran_order': True, "
                                                                   "'shape': (2, 3, 4), }", doubles(24))));
  REQUIRE(fortran.data.size() == 24);
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      for (std::size_t k = 0; k < 4; ++k) CHECK(fortran.data[(i * 3 + j) * 4 + k] == double(i + 2 * j + 6 * k));
}

TEST_CASE("npy: the writer pads the header to 64 bytes and ends it with a newline") {
  const fs::path p = write_bytes("written.npy", "");
  write_npy(p, {7, 5}, std::vector<double>(35, 1.5).data());
  std::ifstream in(p, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), {}};
  const std::size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  CHECK((10 + header_len) % 64 == 0);
  CHECK(bytes[10 + header_len - 1] == '\n');
  CHECK(bytes.size() == 10 + header_len + 35 * sizeof(double));
  CHECK(read_npy(p).data == std::vector<double>(35, 1.5));
}
