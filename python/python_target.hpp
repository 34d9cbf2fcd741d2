#pragma once
/// \file python_target.hpp
/// A target whose reduced energy u is written in Python: the C++ Target every flow
/// and the generator's training (generators/target_bridge.hpp) call.
///
/// Callbacks are batched over configurations: u(X) takes an (B, d) float64 array and
/// returns B energies; grad_u(X) returns (B, d); u_and_grad(X), when given, returns both
/// at once and is used for every evaluation that needs ∇u. Without a gradient callback
/// ∇u is the central difference (u(x + h e_k) − u(x − h e_k)) / 2h with
/// h = 1e-5·max(1, |x_k|), all 2dB shifted configurations in one call of u.
///
/// The GIL: every callback acquires it, so C++ threads can call it while the caller
/// released it (the module releases it around every flow, evaluation and training); the
/// callbacks of concurrent threads run one at a time. evaluate_batch() — what the
/// interacting flows (SVGD, blob, MMD), the generator's training and Target.u from Python
/// use — makes one call for the whole batch. The Langevin flows (ULA, MALA, BAOAB) call
/// reduced_energy() one particle at a time, so they pay the call overhead (≈ 3 µs) per
/// particle and step (docs/python.md, docs/results/python.md).
///
/// A Python exception raised by a callback propagates unchanged (as
/// py::error_already_set) through the flow to the Python caller.
#include <optional>
#include <string>
#include <utility>

#include "bindings.hpp"

namespace boltzlab::python {

/// The Python callables and metadata of a PythonTarget.
struct PythonTargetSpec {
  py::object u;            ///< u(X: (B, d)) -> (B,)
  py::object grad_u;       ///< grad_u(X) -> (B, d), or None
  py::object u_and_grad;   ///< u_and_grad(X) -> ((B,), (B, d)), or None
  std::size_t dim = 0;     ///< d ≥ 1
  std::string name = "python";
  std::optional<double> log_z;                     ///< exact log Z when known
  std::pair<std::size_t, std::size_t> layout{0, 0};  ///< particle layout (n, s), {0, 0}: none
  /// \throws ConfigError for dim 0, a non-callable u, or a layout with n·s ≠ dim.
  void validate() const;
};

class PythonTarget final : public Target {
 public:
  explicit PythonTarget(PythonTargetSpec spec);
  ~PythonTarget() override;

  std::string name() const override { return spec_.name; }
  std::size_t dim() const override { return spec_.dim; }
  std::optional<double> log_z() const override { return spec_.log_z; }
  std::pair<std::size_t, std::size_t> particle_layout() const override { return spec_.layout; }
  nlohmann::json describe() const override;

  /// One configuration: a (1, d) call of the callbacks, under the GIL.
  double reduced_energy(const double* x, double* grad) const override;
  /// The whole batch in one callback (exec is ignored: the GIL serializes anyway).
  BatchStats evaluate_batch(const RowMatrix& x, Eigen::VectorXd& u, RowMatrix* grad,
                            Execution exec = Execution::kParallel) const override;

  /// Number of callback invocations so far (for tests and the overhead benchmark).
  std::size_t callback_calls() const { return calls_; }

 private:
  /// u (B) and, when grad is not null, ∇u (B×d) of the rows of x; GIL held by the caller.
  void call(const RowMatrix& x, Eigen::VectorXd& u, RowMatrix* grad) const;
  Eigen::VectorXd call_u(const RowMatrix& x) const;
  void finite_difference_gradient(const RowMatrix& x, RowMatrix& grad) const;

  PythonTargetSpec spec_;
  mutable std::size_t calls_ = 0;  ///< guarded by the GIL
};

}  // namespace boltzlab::python
