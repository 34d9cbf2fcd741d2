#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/npy.hpp"

using namespace boltzlab;
namespace fs = std::filesystem;

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
