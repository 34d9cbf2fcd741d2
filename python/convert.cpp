// Conversions between NumPy arrays / Python objects and the library's types.
#include <string>

#include "bindings.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/io/json_file.hpp"

namespace boltzlab::python {

namespace {

std::string shape_of(const py::array& x) {
  std::string s = "(";
  for (py::ssize_t k = 0; k < x.ndim(); ++k) {
    s += (k ? ", " : "") + std::to_string(x.shape(k));
  }
  return s + (x.ndim() == 1 ? ",)" : ")");
}

}  // namespace

RowMatrix to_matrix(const DoubleArray& x, std::size_t dim, const std::string& what) {
  if (x.ndim() != 1 && x.ndim() != 2) {
    throw DomainError(what + ": expected an (N, d) array, got shape " + shape_of(x));
  }
  const py::ssize_t rows = x.ndim() == 2 ? x.shape(0) : 1;
  const py::ssize_t cols = x.ndim() == 2 ? x.shape(1) : x.shape(0);
  if (dim != 0 && static_cast<std::size_t>(cols) != dim) {
    throw DomainError(what + ": configurations have " + std::to_string(cols) +
                      " coordinates, but the target has dimension " + std::to_string(dim));
  }
  RowMatrix m(rows, cols);
  if (m.size() > 0) std::copy(x.data(), x.data() + m.size(), m.data());
  return m;
}

Eigen::VectorXd to_vector(const DoubleArray& x, const std::string& what) {
  if (x.ndim() != 1) throw DomainError(what + ": expected a 1-D array, got shape " + shape_of(x));
  Eigen::VectorXd v(x.shape(0));
  if (v.size() > 0) std::copy(x.data(), x.data() + v.size(), v.data());
  return v;
}

py::array_t<double> from_matrix(const RowMatrix& m) {
  py::array_t<double> out({m.rows(), m.cols()});
  if (m.size() > 0) std::copy(m.data(), m.data() + m.size(), out.mutable_data());
  return out;
}

py::array_t<double> from_vector(const Eigen::VectorXd& v) {
  py::array_t<double> out(v.size());
  if (v.size() > 0) std::copy(v.data(), v.data() + v.size(), out.mutable_data());
  return out;
}

nlohmann::json to_json(const py::handle& obj, const std::string& what) {
  if (obj.is_none()) return nlohmann::json::object();
  std::string text;
  try {
    text = py::module_::import("json").attr("dumps")(obj).cast<std::string>();
  } catch (const py::error_already_set& e) {
    throw ConfigError(what + ": not JSON-serializable (" + std::string(e.what()) + ")");
  }
  return parse_json(text, what);
}

py::object from_json(const nlohmann::json& j) {
  return py::module_::import("json").attr("loads")(j.dump());
}

}  // namespace boltzlab::python
