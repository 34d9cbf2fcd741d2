// Particle flows from Python: any row of the flow table (flows/registry.cpp) on an
// ensemble given as a NumPy array, with the settings of wgf-relax's "sampler" section.
#include <cmath>
#include <optional>

#include <pybind11/stl.h>

#include "bindings.hpp"
#include "boltzlab/app/relax_run.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/timing.hpp"

namespace boltzlab::python {

namespace {

/// The initial ensemble: the rows of x (finite; particle systems centred, as
/// wgf-relax --init), or the plan's default recipe (make_initial_ensemble, as wgf-relax).
Ensemble initial_ensemble(const Target& target, const py::object& x, const RelaxPlan& plan) {
  if (x.is_none()) return make_initial_ensemble(target, plan.particles, plan.init, plan.flow_options.seed);
  RowMatrix m = to_matrix(x.cast<DoubleArray>(), target.dim(), "x");
  if (m.rows() == 0) throw DomainError("x: has no rows (need at least 1 particle)");
  for (Eigen::Index i = 0; i < m.rows(); ++i) {
    for (Eigen::Index k = 0; k < m.cols(); ++k) {
      if (!std::isfinite(m(i, k))) throw DomainError("x: row " + std::to_string(i) + " has a non-finite coordinate");
    }
  }
  Ensemble ens(static_cast<std::size_t>(m.rows()), target.dim());
  ens.positions = std::move(m);
  const auto [np, s] = target.particle_layout();
  if (np > 0) {
    for (std::size_t i = 0; i < ens.size(); ++i) remove_center_of_mass(ens.particle(i), np, s);
  }
  return ens;
}

/// The recorded frames as one (F, N, d) array.
py::array_t<double> frames_array(const std::vector<RowMatrix>& frames, std::size_t n, std::size_t d) {
  py::array_t<double> out({static_cast<py::ssize_t>(frames.size()), static_cast<py::ssize_t>(n),
                           static_cast<py::ssize_t>(d)});
  double* dst = out.mutable_data();
  for (const RowMatrix& f : frames) dst = std::copy(f.data(), f.data() + f.size(), dst);
  return out;
}

py::dict result_dict(const RelaxPlan& plan, const Ensemble& ens, const FlowResult& res, double seconds) {
  py::dict trace;
  trace["step"] = py::array_t<double>(static_cast<py::ssize_t>(res.monitor_steps.size()), res.monitor_steps.data());
  for (const auto& [key, values] : res.monitors) {
    trace[py::str(key)] = py::array_t<double>(static_cast<py::ssize_t>(values.size()), values.data());
  }
  py::dict r;
  r["flow"] = plan.flow_name;
  r["interacting"] = flow_info(plan.flow_name).interacting;
  r["flow_params"] = from_json(plan.flow_params);
  r["seed"] = plan.flow_options.seed;
  r["samples"] = from_matrix(ens.positions);
  r["reduced_energies"] = from_vector(ens.reduced_energies);
  r["log_weights"] = from_vector(ens.log_weights);
  r["frames"] = frames_array(res.frames, ens.size(), ens.dim());
  r["trace"] = trace;
  r["statistics"] = from_json(res.statistics);
  r["health"] = from_json(res.health.to_json());
  r["steps_done"] = res.steps_done;
  r["converged"] = res.converged;
  r["energy_evaluations"] = res.energy_evaluations;
  r["non_finite_evaluations"] = res.non_finite;
  r["seconds"] = seconds;
  return r;
}

/// Resolves the settings exactly as wgf-relax does (resolve_relax_plan on `options` read
/// as a "sampler" section, messages prefixed with `context`), builds the initial
/// ensemble and runs the flow with the GIL released.
py::dict run_flow(const TargetPtr& target, const py::object& options, const std::string& context,
                  const py::object& x, std::optional<int> threads, bool progress) {
  if (!target) throw DomainError("run_flow: target is None");
  RelaxOptions flags;
  flags.quiet = !progress;
  if (threads) {  // None: keep the process-wide setting (set_num_threads)
    if (*threads < 0 || *threads > 1024) {
      throw ConfigError("threads is " + std::to_string(*threads) + ", but must be in [0, 1024] (0: all cores)");
    }
    set_num_threads(*threads);
  }
  const nlohmann::json section = to_json(options, context);
  RelaxPlan plan = resolve_relax_plan(flags, section, *target, context);
  Ensemble ens = initial_ensemble(*target, x, plan);
  plan.flow_options.max_frames = plan.max_frames;
  FlowResult res;
  double seconds = 0.0;
  {
    py::gil_scoped_release release;
    const double start = wall_seconds();
    res = plan.flow->run(*target, ens, plan.flow_options);
    seconds = wall_seconds() - start;
  }
  return result_dict(plan, ens, res, seconds);
}

}  // namespace

void bind_flows(py::module_& m) {
  m.def("_run_flow", &run_flow, py::arg("target"), py::arg("options"), py::arg("context"), py::arg("x"),
        py::arg("threads"), py::arg("progress"));
  m.def("flow_names", &flow_names, "registered flow names (wgf-relax --flow)");
  m.def(
      "flow_table",
      [] {
        py::list rows;
        for (const FlowInfo& f : flow_table()) {
          py::dict row;
          row["name"] = f.name;
          row["interacting"] = f.interacting;
          row["description"] = f.description;
          rows.append(row);
        }
        return rows;
      },
      "the flow table: name, interacting, description");
}

}  // namespace boltzlab::python
