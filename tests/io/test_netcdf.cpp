#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/netcdf.hpp"

#if __has_include(<netcdf.h>)
#include <netcdf.h>
#define BOLTZLAB_TEST_NETCDF 1
#endif

using namespace boltzlab;
namespace fs = std::filesystem;

namespace {

/// 2 chains × 3 draws of a 2-D x (value 100c + 10d + k) and of lp (−(10c + d)).
InferenceData small_data() {
  InferenceData data;
  data.chains = 2;
  data.draws = 3;
  ChainVariable x{"x", {2}, {}};
  ChainVariable lp{"lp", {}, {}};
  for (int c = 0; c < 2; ++c) {
    for (int d = 0; d < 3; ++d) {
      for (int k = 0; k < 2; ++k) x.values.push_back(100.0 * c + 10.0 * d + k);
      lp.values.push_back(-(10.0 * c + d));
    }
  }
  data.posterior = {x};
  data.sample_stats = {lp};
  data.attributes = {{"tool", "test"}};
  return data;
}

std::string validation_message(const InferenceData& data) {
  try {
    data.validate();
  } catch (const DomainError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("netcdf: validation names the group, the variable and the sizes") {
  InferenceData data = small_data();
  CHECK(validation_message(data).empty());
  data.sample_stats[0].values.pop_back();
  CHECK(validation_message(data) == "netcdf: sample_stats.lp: 5 values, but chains x draws x extra dims = 6");
  data = small_data();
  data.posterior.push_back(data.posterior[0]);
  CHECK(validation_message(data) == "netcdf: posterior: variable 'x' given twice");
  data = small_data();
  data.posterior[0].name = "2x";
  CHECK(validation_message(data) == "netcdf: posterior: variable name '2x' is not a valid NetCDF variable name");
  data = small_data();
  data.draws = 0;
  CHECK(validation_message(data) == "netcdf: chains is 2 and draws is 0, but both must be >= 1");
}

#ifdef BOLTZLAB_TEST_NETCDF
TEST_CASE("netcdf: the InferenceData layout reads back through libnetcdf") {
  REQUIRE(netcdf_available());
  const fs::path dir = fs::temp_directory_path() / "boltzlab_test_netcdf";
  fs::create_directories(dir);
  const fs::path file = dir / "idata.nc";
  const InferenceData data = small_data();
  write_inference_data(file, data);
  int root = 0, group = 0, var = 0, dims[3] = {0, 0, 0}, ndims = 0;
  REQUIRE(nc_open(file.c_str(), NC_NOWRITE, &root) == NC_NOERR);
  REQUIRE(nc_inq_grp_ncid(root, "posterior", &group) == NC_NOERR);
  REQUIRE(nc_inq_varid(group, "x", &var) == NC_NOERR);
  REQUIRE(nc_inq_varndims(group, var, &ndims) == NC_NOERR);
  REQUIRE(ndims == 3);
  REQUIRE(nc_inq_vardimid(group, var, dims) == NC_NOERR);
  const char* names[3] = {"chain", "draw", "x_dim_0"};
  const std::size_t sizes[3] = {2, 3, 2};
  for (int k = 0; k < 3; ++k) {
    char name[NC_MAX_NAME + 1];
    std::size_t len = 0;
    REQUIRE(nc_inq_dim(group, dims[k], name, &len) == NC_NOERR);
    CHECK(std::string(name) == names[k]);
    CHECK(len == sizes[k]);
  }
  std::vector<double> x(12);
  REQUIRE(nc_get_var_double(group, var, x.data()) == NC_NOERR);
  CHECK(x == data.posterior[0].values);
  std::vector<long long> draw(3);
  REQUIRE(nc_inq_varid(group, "draw", &var) == NC_NOERR);
  REQUIRE(nc_get_var_longlong(group, var, draw.data()) == NC_NOERR);
  CHECK(draw == std::vector<long long>{0, 1, 2});
  REQUIRE(nc_inq_grp_ncid(root, "sample_stats", &group) == NC_NOERR);
  REQUIRE(nc_inq_varid(group, "lp", &var) == NC_NOERR);
  std::vector<double> lp(6);
  REQUIRE(nc_get_var_double(group, var, lp.data()) == NC_NOERR);
  CHECK(lp == data.sample_stats[0].values);
  char tool[5] = {0};
  REQUIRE(nc_get_att_text(group, NC_GLOBAL, "tool", tool) == NC_NOERR);
  CHECK(std::string(tool) == "test");
  nc_close(root);
  // A failed write leaves neither the file nor its temporary name.
  CHECK_THROWS_AS(write_inference_data(dir / "no" / "such" / "dir.nc", data), IoError);
  CHECK_FALSE(fs::exists(dir / "no"));
  fs::remove_all(dir);
}
#endif
