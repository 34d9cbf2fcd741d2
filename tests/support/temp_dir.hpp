#pragma once
/// \file temp_dir.hpp
/// A fresh folder under the system's temporary directory, removed at the end of the
/// scope: `<tmp>/boltzlab_<name>_<pid>`, so that concurrent test processes (ctest -j)
/// never share one.
#include <filesystem>
#include <string>
#include <system_error>

#include <unistd.h>

namespace boltzlab::testing {

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("boltzlab_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace boltzlab::testing
