#include "boltzlab/io/netcdf.hpp"

#include <cctype>
#include <ctime>
#include <set>
#include <system_error>

#include <unistd.h>

#include "boltzlab/core/error.hpp"

#ifdef BOLTZLAB_HAVE_NETCDF
#include <netcdf.h>
#endif

namespace boltzlab {

namespace {

/// NetCDF names: a letter or underscore, then letters, digits, '_', '-', '.'.
bool valid_name(const std::string& name) {
  if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  }
  return true;
}

void validate_group(const std::vector<ChainVariable>& vars, const std::string& group, std::size_t chains,
                    std::size_t draws) {
  std::set<std::string> seen;
  for (const ChainVariable& v : vars) {
    if (!valid_name(v.name) || v.name == "chain" || v.name == "draw") {
      throw DomainError("netcdf: " + group + ": variable name '" + v.name + "' is not a valid NetCDF variable name");
    }
    if (!seen.insert(v.name).second) throw DomainError("netcdf: " + group + ": variable '" + v.name + "' given twice");
    std::size_t count = chains * draws;
    for (std::size_t s : v.extra_shape) {
      if (s == 0) throw DomainError("netcdf: " + group + "." + v.name + ": a dimension of size 0");
      count *= s;
    }
    if (v.values.size() != count) {
      throw DomainError("netcdf: " + group + "." + v.name + ": " + std::to_string(v.values.size()) +
                        " values, but chains x draws x extra dims = " + std::to_string(count));
    }
  }
}

}  // namespace

void InferenceData::validate() const {
  if (chains == 0 || draws == 0) {
    throw DomainError("netcdf: chains is " + std::to_string(chains) + " and draws is " + std::to_string(draws) +
                      ", but both must be >= 1");
  }
  if (posterior.empty()) throw DomainError("netcdf: the posterior group has no variable");
  validate_group(posterior, "posterior", chains, draws);
  validate_group(sample_stats, "sample_stats", chains, draws);
}

#ifdef BOLTZLAB_HAVE_NETCDF

namespace {

/// Throws IoError naming the file and libnetcdf's message when status is an error.
void check(int status, const std::filesystem::path& path, const std::string& what) {
  if (status != NC_NOERR) throw IoError(path.string() + ": NetCDF " + what + ": " + nc_strerror(status));
}

std::string utc_now() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// A dimension with its int64 coordinate variable 0, 1, ..., size − 1.
int define_dimension(int group, const std::string& name, std::size_t size, const std::filesystem::path& path) {
  int dim = 0, var = 0;
  check(nc_def_dim(group, name.c_str(), size, &dim), path, "dimension " + name);
  check(nc_def_var(group, name.c_str(), NC_INT64, 1, &dim, &var), path, "coordinate " + name);
  std::vector<long long> index(size);
  for (std::size_t i = 0; i < size; ++i) index[i] = static_cast<long long>(i);
  check(nc_put_var_longlong(group, var, index.data()), path, "coordinate " + name);
  return dim;
}

void put_text(int group, int var, const std::string& key, const std::string& value, const std::filesystem::path& path) {
  check(nc_put_att_text(group, var, key.c_str(), value.size(), value.c_str()), path, "attribute " + key);
}

void write_group(int root, const std::string& name, const std::vector<ChainVariable>& vars, const InferenceData& data,
                 const std::string& created, const std::filesystem::path& path) {
  int group = 0;
  check(nc_def_grp(root, name.c_str(), &group), path, "group " + name);
  const int chain = define_dimension(group, "chain", data.chains, path);
  const int draw = define_dimension(group, "draw", data.draws, path);
  for (const ChainVariable& v : vars) {
    std::vector<int> dims = {chain, draw};
    for (std::size_t k = 0; k < v.extra_shape.size(); ++k) {
      dims.push_back(define_dimension(group, v.name + "_dim_" + std::to_string(k), v.extra_shape[k], path));
    }
    int var = 0;
    check(nc_def_var(group, v.name.c_str(), NC_DOUBLE, static_cast<int>(dims.size()), dims.data(), &var), path,
          "variable " + name + "." + v.name);
    check(nc_put_var_double(group, var, v.values.data()), path, "variable " + name + "." + v.name);
  }
  put_text(group, NC_GLOBAL, "created_at", created, path);
  put_text(group, NC_GLOBAL, "inference_library", "boltzlab", path);
  for (const auto& [key, value] : data.attributes) put_text(group, NC_GLOBAL, key, value, path);
}

}  // namespace

bool netcdf_available() { return true; }

void write_inference_data(const std::filesystem::path& path, const InferenceData& data) {
  data.validate();
  const std::filesystem::path tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  int root = 0;
  check(nc_create(tmp.c_str(), NC_NETCDF4 | NC_CLOBBER, &root), path, "create");
  try {
    const std::string created = utc_now();
    write_group(root, "posterior", data.posterior, data, created, path);
    if (!data.sample_stats.empty()) write_group(root, "sample_stats", data.sample_stats, data, created, path);
    check(nc_close(root), path, "close");
  } catch (...) {
    nc_abort(root);
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    std::filesystem::remove(tmp, ec);
    throw IoError(path.string() + ": cannot write the NetCDF file: " + why);
  }
}

#else

bool netcdf_available() { return false; }

void write_inference_data(const std::filesystem::path& path, const InferenceData& data) {
  data.validate();
  throw ConfigError(path.string() + ": NetCDF output needs libnetcdf, and this build of boltzlab has none");
}

#endif

void check_netcdf_output(const std::filesystem::path& path, const std::vector<std::filesystem::path>& inputs,
                         const std::filesystem::path& out) {
  namespace fs = std::filesystem;
  const std::string flag = "--netcdf " + path.string() + ": ";
  if (!netcdf_available()) throw ConfigError(flag + "this build of boltzlab has no libnetcdf");
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(parent, ec)) throw ConfigError(flag + "folder '" + parent.string() + "' does not exist");
  if (fs::is_directory(path, ec)) throw ConfigError(flag + "is a directory, but must name a file");
  if (!out.empty() && fs::absolute(path).lexically_normal() == fs::absolute(out).lexically_normal()) {
    throw ConfigError(flag + "is the run's output directory, but must name a file");
  }
  if (!fs::exists(path, ec)) return;
  // An existing file is replaced: refuse it when the run reads it, itself or inside an input folder.
  for (const fs::path& input : inputs) {
    if (input.empty() || !fs::exists(input, ec)) continue;
    for (fs::path p = fs::absolute(path, ec); !p.empty() && p != p.root_path(); p = p.parent_path()) {
      if (fs::equivalent(p, input, ec)) throw ConfigError(flag + "is an input of the run (" + input.string() + ")");
    }
  }
}

}  // namespace boltzlab
