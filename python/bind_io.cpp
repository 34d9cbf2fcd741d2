// NetCDF output in ArviZ's InferenceData layout (io/netcdf.hpp).
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/io/netcdf.hpp"

namespace boltzlab::python {

namespace {

/// The variables of one group from a {name: array} dict; every array's leading dims are
/// (chain, draw), which the first array fixes when `chains` is still 0.
std::vector<ChainVariable> group_variables(const py::dict& arrays, const std::string& group, std::size_t& chains,
                                           std::size_t& draws) {
  std::vector<ChainVariable> vars;
  for (const auto& [key, value] : arrays) {
    const std::string name = py::str(key);
    const auto a = value.cast<DoubleArray>();
    if (a.ndim() < 2) {
      throw DomainError("write_netcdf: " + group + "." + name + ": expected an array of shape (chain, draw, ...), got " +
                        std::to_string(a.ndim()) + " dimension(s)");
    }
    if (chains == 0) {
      chains = static_cast<std::size_t>(a.shape(0));
      draws = static_cast<std::size_t>(a.shape(1));
    }
    if (static_cast<std::size_t>(a.shape(0)) != chains || static_cast<std::size_t>(a.shape(1)) != draws) {
      throw DomainError("write_netcdf: " + group + "." + name + ": (chain, draw) = (" + std::to_string(a.shape(0)) +
                        ", " + std::to_string(a.shape(1)) + "), but the first variable has (" + std::to_string(chains) +
                        ", " + std::to_string(draws) + ")");
    }
    ChainVariable v;
    v.name = name;
    for (py::ssize_t k = 2; k < a.ndim(); ++k) v.extra_shape.push_back(static_cast<std::size_t>(a.shape(k)));
    v.values.assign(a.data(), a.data() + a.size());
    vars.push_back(std::move(v));
  }
  return vars;
}

void write_netcdf(const std::string& path, const py::dict& posterior, const py::dict& sample_stats,
                  const std::map<std::string, std::string>& attributes) {
  InferenceData data;
  data.posterior = group_variables(posterior, "posterior", data.chains, data.draws);
  data.sample_stats = group_variables(sample_stats, "sample_stats", data.chains, data.draws);
  data.attributes = attributes;
  py::gil_scoped_release release;
  write_inference_data(path, data);
}

}  // namespace

void bind_io(py::module_& m) {
  m.def("write_netcdf", &write_netcdf, py::arg("path"), py::arg("posterior"),
        py::arg("sample_stats") = py::dict(), py::arg("attributes") = std::map<std::string, std::string>(),
        "Writes a NetCDF-4 file in ArviZ's InferenceData layout: groups posterior and sample_stats, "
        "each {name: array (chain, draw, ...)}; extra dims are named <name>_dim_0, ...");
  m.def("netcdf_available", &netcdf_available, "whether this build writes NetCDF (libnetcdf found)");
}

}  // namespace boltzlab::python
