#pragma once
/// \file netcdf.hpp
/// NetCDF-4 output in the layout of ArviZ's InferenceData (arviz.from_netcdf,
/// xarray.open_dataset(file, group=...)), written with libnetcdf's C API:
///
///   group "posterior":    dims chain, draw, <var>_dim_0, ...; coordinate variables of
///                         the same names (int64 0, 1, ...); one float64 variable per
///                         ChainVariable, dims (chain, draw, <var>_dim_0, ...)
///   group "sample_stats": the same for per-draw statistics, e.g. "lp" (= −u, the log
///                         density up to its constant), "reduced_energy" (u), and for
///                         importance-weighted samples "log_weight" and "log_q"
///
/// Every group carries the attributes created_at (UTC, ISO 8601), inference_library
/// ("boltzlab") and the caller's attributes (tool, potential, flow, ...). The file is written to a temporary name beside `path` and
/// renamed into place, so a failed write leaves no partial file.
///
/// libnetcdf is optional: without it (CMake found no netcdf.h/libnetcdf) the library
/// builds, netcdf_available() is false and write_inference_data throws ConfigError.
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace boltzlab {

/// A variable over (chain, draw, extra dims...), values in C order (last dim fastest).
struct ChainVariable {
  std::string name;                      ///< variable name, e.g. "x" or "lp"
  std::vector<std::size_t> extra_shape;  ///< sizes of the dims after (chain, draw), named <name>_dim_k
  std::vector<double> values;            ///< chains·draws·Π extra_shape values
};

/// The groups of an InferenceData file.
struct InferenceData {
  std::size_t chains = 0;                   ///< size of dim "chain" (≥ 1)
  std::size_t draws = 0;                    ///< size of dim "draw" (≥ 1)
  std::vector<ChainVariable> posterior;     ///< group "posterior" (at least one variable)
  std::vector<ChainVariable> sample_stats;  ///< group "sample_stats" (omitted when empty)
  std::map<std::string, std::string> attributes;  ///< written on every group
  /// \throws DomainError when chains or draws is 0, posterior is empty, a name is empty,
  /// repeated within a group or not a valid NetCDF name, or a variable's value count
  /// does not match chains·draws·Π extra_shape (naming the variable).
  void validate() const;
};

/// Whether this build can write NetCDF (libnetcdf was found).
bool netcdf_available();

/// Writes `data` as a NetCDF-4 file (layout above). \throws DomainError as
/// InferenceData::validate, IoError naming the file and libnetcdf's message,
/// ConfigError when the build has no libnetcdf.
void write_inference_data(const std::filesystem::path& path, const InferenceData& data);

/// The checks of a tool's `--netcdf FILE` before its run, so that a bad path fails in one
/// line before any work: this build has libnetcdf, the folder of `path` exists, `path` is
/// not a directory, not the run's output directory `out` (empty: none), and, when it exists
/// (it would be replaced), neither one of the run's `inputs` nor inside an input folder
/// (empty entries are skipped).
/// \throws ConfigError "--netcdf FILE: ..." naming the path and the problem.
void check_netcdf_output(const std::filesystem::path& path, const std::vector<std::filesystem::path>& inputs,
                         const std::filesystem::path& out = {});

}  // namespace boltzlab
