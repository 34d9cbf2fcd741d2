#include "boltzlab/io/dcd.hpp"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <vector>

#include "boltzlab/core/error.hpp"

namespace boltzlab {
namespace {

// Fortran unformatted record: length, payload, length (little-endian int32).
void record(std::ofstream& out, const void* data, std::int32_t bytes) {
  out.write(reinterpret_cast<const char*>(&bytes), 4);
  out.write(static_cast<const char*>(data), bytes);
  out.write(reinterpret_cast<const char*>(&bytes), 4);
}

}  // namespace

void write_dcd(const std::filesystem::path& path, const RowMatrix& frames, double timestep_ps, const std::string& title) {
  if (frames.cols() % 3 != 0) {
    throw DomainError(path.string() + ": frames have " + std::to_string(frames.cols()) + " columns, not a multiple of 3");
  }
  const auto atoms = static_cast<std::int32_t>(frames.cols() / 3);
  std::ofstream out(path, std::ios::binary);
  if (!out) throw IoError(path.string() + ": cannot write DCD file");

  // Header: "CORD" and 20 control integers (CHARMM layout, as read by VMD's dcdplugin):
  // [0] frames, [1] first step, [2] steps between frames, [3] total steps,
  // [8] fixed atoms (0), [9] timestep (float32, AKMA units), [10] unit cell (0),
  // [11] 4-D (0), [19] CHARMM version (24).
  char header[84] = {};
  std::memcpy(header, "CORD", 4);
  std::int32_t control[20] = {};
  control[0] = static_cast<std::int32_t>(frames.rows());
  control[1] = 1;
  control[2] = 1;
  control[3] = static_cast<std::int32_t>(frames.rows());
  const float delta = static_cast<float>(timestep_ps / 0.04888821);  // 1 AKMA time unit = 48.88821 fs
  std::memcpy(&control[9], &delta, 4);
  control[19] = 24;
  std::memcpy(header + 4, control, sizeof control);
  record(out, header, 84);

  char titles[4 + 80] = {};
  const std::int32_t ntitle = 1;
  std::memcpy(titles, &ntitle, 4);
  std::memset(titles + 4, ' ', 80);
  std::memcpy(titles + 4, title.data(), std::min<std::size_t>(title.size(), 80));
  record(out, titles, sizeof titles);
  record(out, &atoms, 4);

  std::vector<float> axis(static_cast<std::size_t>(atoms));
  for (Eigen::Index f = 0; f < frames.rows(); ++f) {
    for (int c = 0; c < 3; ++c) {
      for (std::int32_t a = 0; a < atoms; ++a) axis[static_cast<std::size_t>(a)] = static_cast<float>(10.0 * frames(f, 3 * a + c));
      record(out, axis.data(), 4 * atoms);
    }
  }
  if (!out) throw IoError(path.string() + ": write failed");
}

}  // namespace boltzlab
