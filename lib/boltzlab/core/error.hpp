#pragma once
/// \file error.hpp
/// The library's exception hierarchy. Messages name where and what, e.g.
/// "mala: step_size is -0.1, but must be > 0". Tools catch in main only.
#include <stdexcept>
#include <string>

namespace boltzlab {

/// Base of every exception thrown by boltzlab.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Invalid configuration: malformed JSON, unknown keys, invalid option values.
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// A value outside the domain of a computation (wrong shape, empty input, ...).
class DomainError : public Error {
 public:
  using Error::Error;
};

/// Failure of an external backend (OpenMM, LibTorch, the file system).
class BackendError : public Error {
 public:
  using Error::Error;
};

/// Input/output failure: unreadable or malformed file, unwritable directory.
class IoError : public Error {
 public:
  using Error::Error;
};

}  // namespace boltzlab
