#pragma once
/// \file bindings.hpp
/// Shared pieces of the Python module `boltzlab` (docs/python.md): the conversions
/// between NumPy arrays / Python objects and the library's Eigen matrices / JSON, and
/// the functions that add each part of the API to the module.
#include <memory>
#include <string>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab::python {

namespace py = pybind11;

/// A float64 C-contiguous array (other dtypes and layouts are converted on the way in).
using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

/// Rows of `x` as an N×d matrix: an (N, d) array, or a (d,) array as one row.
/// `what` names the argument in the DomainError thrown for other shapes or, when `dim`
/// is not 0, for a column count other than `dim`.
RowMatrix to_matrix(const DoubleArray& x, std::size_t dim, const std::string& what);

/// An (N,) array as a vector. \throws DomainError naming `what` for other shapes.
Eigen::VectorXd to_vector(const DoubleArray& x, const std::string& what);

/// A copy of `m` as an (N, d) float64 array.
py::array_t<double> from_matrix(const RowMatrix& m);

/// A copy of `v` as an (N,) float64 array.
py::array_t<double> from_vector(const Eigen::VectorXd& v);

/// A Python object (dict, list, number, str, None) as JSON, through Python's json
/// module and the library's strict parser. \throws ConfigError naming `what` when the
/// object is not JSON-serializable.
nlohmann::json to_json(const py::handle& obj, const std::string& what);

/// JSON as the Python object json.loads would give.
py::object from_json(const nlohmann::json& j);

/// Exceptions: boltzlab.Error (RuntimeError) and its subclasses ConfigError and
/// DomainError (also ValueError), IoError (also OSError), BackendError; the library's
/// exceptions are translated into them with the same one-line message the tools print.
void bind_errors(py::module_& m);
/// Target, Potential, load_potential, PythonTarget (bind_targets.cpp).
void bind_targets(py::module_& m);
/// run_flow and the flow table (bind_flows.cpp).
void bind_flows(py::module_& m);
/// ESS, PSIS, log Z, R̂, bulk/tail ESS (bind_estimators.cpp).
void bind_estimators(py::module_& m);
/// NetCDF (ArviZ InferenceData layout) writer (bind_io.cpp).
void bind_io(py::module_& m);
/// Boltzmann generators (bind_generators.cpp; LibTorch builds only).
void bind_generators(py::module_& m);

/// The Target that Python sees (shared: a flow run keeps it alive while Python may drop it).
using TargetPtr = std::shared_ptr<Target>;

/// A loaded potential file (targets/registry.hpp Potential) with a shared target.
struct PotentialFile {
  std::string path;           ///< the file as given
  std::string type;           ///< registry type name
  std::string name;           ///< display name
  nlohmann::json raw;         ///< the whole file
  nlohmann::json sampler;     ///< "sampler" section (wgf-relax defaults) or null
  nlohmann::json generator;   ///< "generator" section (bg-sample) or null
  TargetPtr target;
};

}  // namespace boltzlab::python
