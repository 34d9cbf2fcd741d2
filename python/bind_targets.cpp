// Targets from Python: potential files, batched u and ∇u, Python-defined targets.
#include <optional>

#include <pybind11/stl.h>

#include "bindings.hpp"
#include "python_target.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/targets/registry.hpp"

namespace boltzlab::python {

namespace {

/// u (and ∇u) of the rows of x with the GIL released; a (d,) input gives a float and a
/// (d,) gradient, an (N, d) input an (N,) array and an (N, d) gradient.
py::object evaluate(const Target& target, const DoubleArray& x, bool energy, bool gradient) {
  const RowMatrix m = to_matrix(x, target.dim(), target.name());
  Eigen::VectorXd u;
  RowMatrix g;
  {
    py::gil_scoped_release release;
    target.evaluate_batch(m, u, gradient ? &g : nullptr);
  }
  const bool single = x.ndim() == 1;
  py::object uo = single ? py::object(py::float_(u[0])) : py::object(from_vector(u));
  if (!gradient) return uo;
  py::array_t<double> go = from_matrix(g);
  py::object gout = single ? py::object(go.attr("reshape")(target.dim())) : py::object(go);
  if (!energy) return gout;
  return py::make_tuple(uo, gout);
}

PotentialFile load_potential_file(const std::string& path) {
  Potential p = load_potential(path);
  PotentialFile f;
  f.path = path;
  f.type = p.type;
  f.name = p.name;
  f.raw = p.raw;
  f.sampler = p.sampler;
  f.generator = p.generator;
  f.target = TargetPtr(std::move(p.target));
  return f;
}

std::shared_ptr<PythonTarget> make_python_target(py::object u, std::size_t dim, py::object grad_u,
                                                 py::object u_and_grad, std::string name,
                                                 std::optional<double> log_z,
                                                 std::optional<std::pair<std::size_t, std::size_t>> layout) {
  PythonTargetSpec spec;
  spec.u = std::move(u);
  spec.grad_u = std::move(grad_u);
  spec.u_and_grad = std::move(u_and_grad);
  spec.dim = dim;
  spec.name = std::move(name);
  spec.log_z = log_z;
  if (layout) spec.layout = *layout;
  return std::make_shared<PythonTarget>(std::move(spec));
}

void bind_target_class(py::module_& m) {
  py::class_<Target, TargetPtr>(m, "Target", "A reduced-energy target u(x) = E(x)/kT (targets/target.hpp).")
      .def_property_readonly("name", &Target::name)
      .def_property_readonly("dim", &Target::dim, "dimension d of a configuration")
      .def_property_readonly("log_z", &Target::log_z, "exact log Z when known, else None")
      .def_property_readonly("particle_layout", &Target::particle_layout,
                             "(particles, spatial dim), (0, 0) when not a particle system")
      .def_property_readonly("kT", &Target::kT, "kT in the target's energy unit (kJ/mol for OpenMM targets)")
      .def_property_readonly("reference_configuration",
                             [](const Target& t) -> py::object {
                               const std::vector<double> r = t.reference_configuration();
                               if (r.empty()) return py::none();
                               return py::array_t<double>(static_cast<py::ssize_t>(r.size()), r.data());
                             })
      .def("describe", [](const Target& t) { return from_json(t.describe()); })
      .def("u", [](const Target& t, const DoubleArray& x) { return evaluate(t, x, true, false); }, py::arg("x"),
           "reduced energies of the rows of x, (N, d) -> (N,) (a (d,) x gives a float); +inf where not finite")
      .def("grad_u", [](const Target& t, const DoubleArray& x) { return evaluate(t, x, false, true); },
           py::arg("x"), "gradients of u, (N, d) -> (N, d)")
      .def("u_and_grad", [](const Target& t, const DoubleArray& x) { return evaluate(t, x, true, true); },
           py::arg("x"), "(u, grad_u) in one evaluation")
      .def("__repr__", [](const Target& t) { return "<boltzlab.Target " + t.name() + " d=" + std::to_string(t.dim()) + ">"; });
}

}  // namespace

void bind_targets(py::module_& m) {
  bind_target_class(m);
  py::class_<PythonTarget, Target, std::shared_ptr<PythonTarget>>(
      m, "PythonTarget",
      "A target with u written in Python (python/python_target.hpp): u(X) on (B, d) float64 arrays -> (B,), "
      "optional grad_u(X) -> (B, d) or u_and_grad(X) -> (u, grad); without either, central differences.")
      .def(py::init(&make_python_target), py::arg("u"), py::arg("dim"), py::arg("grad_u") = py::none(),
           py::arg("u_and_grad") = py::none(), py::arg("name") = "python", py::arg("log_z") = py::none(),
           py::arg("particle_layout") = py::none())
      .def_property_readonly("callback_calls", &PythonTarget::callback_calls,
                             "number of Python callback invocations so far");

  py::class_<PotentialFile>(m, "Potential", "A loaded potential file (targets/registry.hpp).")
      .def_readonly("path", &PotentialFile::path)
      .def_readonly("type", &PotentialFile::type)
      .def_readonly("name", &PotentialFile::name)
      .def_readonly("target", &PotentialFile::target)
      .def_property_readonly("sampler", [](const PotentialFile& p) { return from_json(p.sampler); })
      .def_property_readonly("generator", [](const PotentialFile& p) { return from_json(p.generator); })
      .def_property_readonly("raw", [](const PotentialFile& p) { return from_json(p.raw); })
      .def("__repr__", [](const PotentialFile& p) { return "<boltzlab.Potential " + p.name + " (" + p.path + ")>"; });
  m.def("load_potential", &load_potential_file, py::arg("path"),
        "Reads a potential file (potentials/*.json) with the tools' loader and builds its target.");
  m.def("target_types", &target_types, "registered target type names");
  m.def("set_num_threads", &set_num_threads, py::arg("threads"),
        "worker threads of every parallel loop (0: all cores); results do not depend on it");
  m.def("num_threads", &num_threads);
}

}  // namespace boltzlab::python
