#include "python_target.hpp"

#include <algorithm>
#include <cmath>

#include "boltzlab/core/error.hpp"

namespace boltzlab::python {

namespace {

/// Relative step of the central differences: h = kFdStep·max(1, |x_k|) balances the
/// O(h²) truncation error against the O(ε/h) rounding error (ε^{1/3} ≈ 6e-6).
constexpr double kFdStep = 1e-5;

/// A callback's result as float64, with the expected element count and shape checked.
py::array_t<double, py::array::c_style | py::array::forcecast> checked_result(
    const py::object& result, const std::string& what, py::ssize_t rows, py::ssize_t cols) {
  auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(result);
  if (!a) throw DomainError(what + " returned " + std::string(py::str(result.get_type())) + ", not an array of numbers");
  const bool ok = cols == 0 ? (a.ndim() == 1 && a.shape(0) == rows) || (a.ndim() == 0 && rows == 1)
                            : a.ndim() == 2 && a.shape(0) == rows && a.shape(1) == cols;
  if (!ok) {
    std::string shape = "(";
    for (py::ssize_t k = 0; k < a.ndim(); ++k) shape += (k ? ", " : "") + std::to_string(a.shape(k));
    shape += a.ndim() == 1 ? ",)" : ")";
    const std::string want = cols == 0 ? "(" + std::to_string(rows) + ",)"
                                       : "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")";
    throw DomainError(what + " returned shape " + shape + ", expected " + want);
  }
  return a;
}

/// Takes the GIL for a callback. A worker thread's first callback creates its Python
/// thread state; one extra reference keeps it for the thread's lifetime, so later
/// callbacks do not create and destroy a thread state each time (oneTBB's workers live
/// as long as the process).
class CallbackGil {
 public:
  CallbackGil() {
    thread_local bool kept = false;
    if (!kept) {
      gil_.inc_ref();
      kept = true;
    }
  }

 private:
  py::gil_scoped_acquire gil_;
};

}  // namespace

void PythonTargetSpec::validate() const {
  if (dim == 0) throw ConfigError("PythonTarget '" + name + "': dim is 0, but must be >= 1");
  if (!u || !PyCallable_Check(u.ptr())) throw ConfigError("PythonTarget '" + name + "': u is not callable");
  if (grad_u && !grad_u.is_none() && !PyCallable_Check(grad_u.ptr())) {
    throw ConfigError("PythonTarget '" + name + "': grad_u is not callable");
  }
  if (u_and_grad && !u_and_grad.is_none() && !PyCallable_Check(u_and_grad.ptr())) {
    throw ConfigError("PythonTarget '" + name + "': u_and_grad is not callable");
  }
  if (layout.first != 0 && layout.first * layout.second != dim) {
    throw ConfigError("PythonTarget '" + name + "': particle_layout (" + std::to_string(layout.first) + ", " +
                      std::to_string(layout.second) + ") does not multiply to dim " + std::to_string(dim));
  }
  if (layout.first != 0) validate_particle_layout(name, layout.first, layout.second);
}

PythonTarget::PythonTarget(PythonTargetSpec spec) : spec_(std::move(spec)) {
  spec_.validate();
  if (spec_.grad_u && spec_.grad_u.is_none()) spec_.grad_u = py::object();
  if (spec_.u_and_grad && spec_.u_and_grad.is_none()) spec_.u_and_grad = py::object();
}

PythonTarget::~PythonTarget() {
  // The callables are Python objects: release them under the GIL, whichever thread
  // drops the last reference (not at all while the interpreter shuts down).
  if (!Py_IsInitialized()) {
    spec_.u.release();
    spec_.grad_u.release();
    spec_.u_and_grad.release();
    return;
  }
  py::gil_scoped_acquire gil;
  spec_.u = py::object();
  spec_.grad_u = py::object();
  spec_.u_and_grad = py::object();
}

nlohmann::json PythonTarget::describe() const {
  nlohmann::json j = {{"name", spec_.name}, {"dim", spec_.dim}, {"kind", "python"}};
  j["gradient"] = spec_.u_and_grad ? "u_and_grad" : (spec_.grad_u ? "grad_u" : "central differences");
  if (spec_.log_z) j["log_z"] = *spec_.log_z;
  return j;
}

Eigen::VectorXd PythonTarget::call_u(const RowMatrix& x) const {
  ++calls_;
  const py::object r = spec_.u(from_matrix(x));
  const auto a = checked_result(r, spec_.name + ": u", x.rows(), 0);
  Eigen::VectorXd u(x.rows());
  std::copy(a.data(), a.data() + x.rows(), u.data());
  return u;
}

void PythonTarget::finite_difference_gradient(const RowMatrix& x, RowMatrix& grad) const {
  const Eigen::Index b = x.rows(), d = x.cols();
  RowMatrix shifted(2 * d * b, d);
  Eigen::MatrixXd step(b, d);
  for (Eigen::Index i = 0; i < b; ++i) {
    for (Eigen::Index k = 0; k < d; ++k) {
      const double h = kFdStep * std::max(1.0, std::abs(x(i, k)));
      step(i, k) = h;
      const Eigen::Index row = (i * d + k) * 2;
      shifted.row(row) = x.row(i);
      shifted.row(row + 1) = x.row(i);
      shifted(row, k) += h;
      shifted(row + 1, k) -= h;
    }
  }
  const Eigen::VectorXd us = call_u(shifted);
  grad.resize(b, d);
  for (Eigen::Index i = 0; i < b; ++i) {
    for (Eigen::Index k = 0; k < d; ++k) {
      const Eigen::Index row = (i * d + k) * 2;
      grad(i, k) = (us[row] - us[row + 1]) / (2.0 * step(i, k));
    }
  }
}

void PythonTarget::call(const RowMatrix& x, Eigen::VectorXd& u, RowMatrix* grad) const {
  const Eigen::Index b = x.rows(), d = x.cols();
  if (grad && spec_.u_and_grad) {
    ++calls_;
    const py::object r = spec_.u_and_grad(from_matrix(x));
    if (!py::isinstance<py::tuple>(r) || py::len(r) != 2) {
      throw DomainError(spec_.name + ": u_and_grad must return a pair (u, grad_u)");
    }
    const py::tuple pair = r;
    const auto ua = checked_result(pair[0], spec_.name + ": u_and_grad (u)", b, 0);
    const auto ga = checked_result(pair[1], spec_.name + ": u_and_grad (grad_u)", b, d);
    u.resize(b);
    grad->resize(b, d);
    std::copy(ua.data(), ua.data() + b, u.data());
    std::copy(ga.data(), ga.data() + b * d, grad->data());
    return;
  }
  u = call_u(x);
  if (!grad) return;
  if (!spec_.grad_u) {
    finite_difference_gradient(x, *grad);
    return;
  }
  ++calls_;
  const auto ga = checked_result(spec_.grad_u(from_matrix(x)), spec_.name + ": grad_u", b, d);
  grad->resize(b, d);
  std::copy(ga.data(), ga.data() + b * d, grad->data());
}

double PythonTarget::reduced_energy(const double* x, double* grad) const {
  const Eigen::Index d = static_cast<Eigen::Index>(spec_.dim);
  RowMatrix row = Eigen::Map<const RowMatrix>(x, 1, d);
  Eigen::VectorXd u;
  RowMatrix g;
  {
    CallbackGil gil;
    call(row, u, grad ? &g : nullptr);
  }
  if (grad) std::copy(g.data(), g.data() + d, grad);
  return u[0];
}

BatchStats PythonTarget::evaluate_batch(const RowMatrix& x, Eigen::VectorXd& u, RowMatrix* grad,
                                        Execution) const {
  const std::size_t n = prepare_batch(x, u, grad);
  if (n == 0) return BatchStats{};
  {
    CallbackGil gil;
    call(x, u, grad);
  }
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto row = static_cast<Eigen::Index>(i);
    double* g = grad ? grad->row(row).data() : nullptr;
    if (!sanitize_energy(u[row], g, spec_.dim)) ++bad;
  }
  return BatchStats{n, bad};
}

}  // namespace boltzlab::python
