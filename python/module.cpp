// The compiled part of the Python package `boltzlab` (docs/python.md).
#include <exception>

#include "bindings.hpp"
#include "boltzlab/core/error.hpp"

namespace boltzlab::python {

namespace {

/// A new exception class boltzlab.NAME with the given bases, added to the module.
/// The handle lives as long as the module (the translator below needs it).
py::handle new_exception(py::module_& m, const char* name, const py::tuple& bases, const char* doc) {
  const std::string qualified = std::string("boltzlab.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases.ptr(), nullptr);
  if (!type) throw py::error_already_set();
  m.add_object(name, py::handle(type));
  return py::handle(type);
}

}  // namespace

void bind_errors(py::module_& m) {
  static py::handle error, config_error, domain_error, io_error, backend_error;
  error = new_exception(m, "Error", py::make_tuple(py::handle(PyExc_RuntimeError)),
                        "Base of every boltzlab error; the message is the one line the tools print.");
  config_error = new_exception(m, "ConfigError", py::make_tuple(error, py::handle(PyExc_ValueError)),
                               "Invalid configuration: unknown keys, invalid option values, bad JSON.");
  domain_error = new_exception(m, "DomainError", py::make_tuple(error, py::handle(PyExc_ValueError)),
                               "A value outside the domain of a computation (wrong shape, empty input).");
  io_error = new_exception(m, "IoError", py::make_tuple(error, py::handle(PyExc_OSError)),
                           "Unreadable or malformed file, unwritable path.");
  backend_error = new_exception(m, "BackendError", py::make_tuple(error),
                                "Failure of an external backend (OpenMM, LibTorch, NetCDF).");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ConfigError& e) {
      PyErr_SetString(config_error.ptr(), e.what());
    } catch (const DomainError& e) {
      PyErr_SetString(domain_error.ptr(), e.what());
    } catch (const IoError& e) {
      PyErr_SetString(io_error.ptr(), e.what());
    } catch (const BackendError& e) {
      PyErr_SetString(backend_error.ptr(), e.what());
    } catch (const Error& e) {
      PyErr_SetString(error.ptr(), e.what());
    }
  });
}

}  // namespace boltzlab::python

PYBIND11_MODULE(_boltzlab, m) {
  namespace bp = boltzlab::python;
  m.doc() = "boltzlab: Boltzmann-distribution sampling (targets, particle flows, estimators, generators)";
  bp::bind_errors(m);
  bp::bind_targets(m);
  bp::bind_flows(m);
  bp::bind_estimators(m);
  bp::bind_io(m);
#ifdef BOLTZLAB_PY_WITH_TORCH
  bp::bind_generators(m);
  m.attr("with_torch") = true;
#else
  m.attr("with_torch") = false;
#endif
}
