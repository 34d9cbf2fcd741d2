// Estimators on NumPy arrays: importance weights (estimators/importance.hpp) and MCMC
// convergence diagnostics (estimators/mcmc.hpp).
#include "bindings.hpp"
#include "boltzlab/estimators/importance.hpp"
#include "boltzlab/estimators/mcmc.hpp"

namespace boltzlab::python {

namespace {

/// A Quantity as a float, or None (the reason is in the docs of each function).
py::object quantity(const Quantity& q) {
  if (!q.value) return py::none();
  return py::float_(*q.value);
}

/// Draws of one scalar: a (chains, draws) array; a (draws,) array is one chain.
RowMatrix draws_matrix(const DoubleArray& draws, const std::string& what) {
  return to_matrix(draws, 0, what);
}

py::dict weight_dict(const WeightDiagnostics& w) {
  py::dict r;
  r["samples"] = w.samples;
  r["zero_weight"] = w.zero_weight;
  r["kish_ess"] = w.kish_ess;
  r["ess_fraction"] = w.ess_fraction;
  r["max_weight_share"] = w.max_weight_share;
  r["kish_ess_clipped"] = w.kish_ess_clipped;
  r["ess_fraction_clipped"] = w.ess_fraction_clipped;
  r["clipped"] = w.clipped;
  r["clip_fraction"] = w.clip_fraction;
  r["log_weight_max"] = w.log_weight_max;
  r["log_weight_mean"] = w.log_weight_mean;
  r["log_weight_sd"] = w.log_weight_sd;
  return r;
}

py::dict psis_dict(const PsisResult& p) {
  py::dict r;
  r["smoothed_log_weights"] = from_vector(p.smoothed_log_weights);
  r["khat"] = quantity(p.khat);
  r["khat_reason"] = p.khat.ok() ? std::string() : p.khat.reason;
  r["sigma"] = p.sigma;
  r["tail_length"] = p.tail_length;
  r["threshold"] = p.threshold;
  r["reliable"] = p.reliable;
  r["diagnosis"] = p.diagnosis;
  r["kish_ess"] = p.kish_ess;
  return r;
}

void bind_importance(py::module_& m) {
  m.def("log_importance_weights",
        [](const DoubleArray& u, const DoubleArray& log_q) {
          return from_vector(log_importance_weights(to_vector(u, "u"), to_vector(log_q, "log_q")));
        },
        py::arg("u"), py::arg("log_q"), "log w = -u - log q (non-finite u gives -inf)");
  m.def("kish_ess", [](const DoubleArray& lw) { return kish_ess(to_vector(lw, "log_weights")); },
        py::arg("log_weights"), "Kish ESS (sum w)^2 / sum w^2");
  m.def("weight_diagnostics",
        [](const DoubleArray& lw, double clip) { return weight_dict(weight_diagnostics(to_vector(lw, "log_weights"), clip)); },
        py::arg("log_weights"), py::arg("clip_fraction") = 1e-4, "Kish ESS, clipped ESS, largest weight share");
  m.def("log_z",
        [](const DoubleArray& lw, double level) {
          const LogZEstimate e = estimate_log_z(to_vector(lw, "log_weights"), level);
          py::dict r;
          r["estimate"] = e.estimate;
          r["standard_error"] = e.standard_error;
          r["ci_low"] = e.ci_low;
          r["ci_high"] = e.ci_high;
          r["level"] = e.level;
          r["samples"] = e.samples;
          return r;
        },
        py::arg("log_weights"), py::arg("level") = 0.95, "log Z = log mean w with its delta-method error");
  m.def("psis",
        [](const DoubleArray& lw, double r_eff) {
          PsisOptions o;
          o.r_eff = r_eff;
          o.validate();
          return psis_dict(pareto_smoothed_importance_sampling(to_vector(lw, "log_weights"), o));
        },
        py::arg("log_weights"), py::arg("r_eff") = 1.0, "Pareto-smoothed importance sampling and k-hat");
  m.def("snis",
        [](const DoubleArray& lw, const DoubleArray& f) {
          const SnisEstimate e = snis_estimate(to_vector(lw, "log_weights"), to_vector(f, "values"));
          return py::make_tuple(e.mean, e.standard_error);
        },
        py::arg("log_weights"), py::arg("values"), "self-normalized estimate of E[f] and its standard error");
}

void bind_mcmc(py::module_& m) {
  const char* shape = " of draws (chains, draws) or (draws,); None when it cannot be computed";
  m.def("rhat", [](const DoubleArray& d) { return quantity(rhat_rank(draws_matrix(d, "draws"))); }, py::arg("draws"),
        (std::string("rank-normalized split R-hat") + shape).c_str());
  m.def("ess_bulk", [](const DoubleArray& d) { return quantity(ess_bulk(draws_matrix(d, "draws"))); },
        py::arg("draws"), (std::string("bulk ESS") + shape).c_str());
  m.def("ess_tail",
        [](const DoubleArray& d, double prob) { return quantity(ess_tail(draws_matrix(d, "draws"), prob)); },
        py::arg("draws"), py::arg("prob") = 0.05, (std::string("tail ESS") + shape).c_str());
  m.def("ess_mean", [](const DoubleArray& d) { return quantity(ess_mean(draws_matrix(d, "draws"))); },
        py::arg("draws"), (std::string("ESS of the mean") + shape).c_str());
  m.def("autocorrelation_time",
        [](const DoubleArray& d) { return quantity(integrated_autocorrelation_time(draws_matrix(d, "draws"))); },
        py::arg("draws"), (std::string("integrated autocorrelation time in draws") + shape).c_str());
}

}  // namespace

void bind_estimators(py::module_& m) {
  bind_importance(m);
  bind_mcmc(m);
}

}  // namespace boltzlab::python
