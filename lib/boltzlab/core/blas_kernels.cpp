#include "boltzlab/core/blas_kernels.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace boltzlab {

namespace {

using NameFn = char* (*)();

/// OpenBLAS's own query, looked up by symbol so that other BLAS libraries are left alone.
std::string openblas_query(const char* symbol) {
  auto fn = reinterpret_cast<NameFn>(dlsym(RTLD_DEFAULT, symbol));
  if (!fn) return "";
  const char* s = fn();
  return s ? std::string(s) : std::string();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// The kernel family the CPU can run, or nullptr when it has neither AVX2+FMA nor AVX-512.
const char* native_core() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return nullptr;
}

/// The core to choose for an OpenBLAS whose core name is `core`, or nullptr: only in place of
/// the generic cores it falls back to for an x86-64 CPU it does not recognize.
const char* better_core(const std::string& core) {
  const std::string c = lower(core);
  if (c != "prescott" && c != "core2" && c != "unknown") return nullptr;
  return native_core();
}

/// OpenBLAS's core name: of the library loaded in this process, or, with `open`, of the one a
/// later load would get (opened here to ask; left open: OpenBLAS starts its thread pool when
/// loaded, and unloading it is not safe). "" without OpenBLAS.
std::string core_name(bool open) {
  std::string core = openblas_query("openblas_get_corename");
  if (!core.empty() || !open) return core;
  void* lib = dlopen("libopenblas.so.0", RTLD_LAZY | RTLD_LOCAL);
  if (lib == nullptr) return "";
  if (auto fn = reinterpret_cast<NameFn>(dlsym(lib, "openblas_get_corename"))) {
    const char* s = fn();
    core = s ? s : "";
  }
  return core;
}

}  // namespace

void select_blas_kernels(char** argv, bool later_load) {
  if (argv == nullptr || argv[0] == nullptr || std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const char* native = better_core(core_name(later_load));
  if (native == nullptr) return;
  if (setenv("OPENBLAS_CORETYPE", native, 1) != 0) return;
  execv("/proc/self/exe", argv);
  unsetenv("OPENBLAS_CORETYPE");  // execv failed: carry on with the generic kernels
}

std::string blas_environment_for_children() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return "";  // inherited as it is
  const char* native = better_core(core_name(true));
  return native ? std::string("OPENBLAS_CORETYPE=") + native + " " : std::string();
}

std::string blas_description() {
  const std::string config = openblas_query("openblas_get_config");
  if (config.empty()) return "";
  std::string out = config.substr(0, config.find(' ', config.find(' ') + 1));  // "OpenBLAS 0.3.21"
  out += ", kernels " + openblas_query("openblas_get_corename");
  if (const char* set = std::getenv("OPENBLAS_CORETYPE")) out += std::string(" (OPENBLAS_CORETYPE=") + set + ")";
  return out;
}

}  // namespace boltzlab
