#include "boltzlab/flows/interacting.hpp"

#include <cmath>
#include <limits>
#include <sstream>

#include "boltzlab/core/error.hpp"

namespace boltzlab {

void InteractingOptions::validate(const std::string& flow) const {
  ksd_kernel.validate();
  if (stop_monitor != "mean_energy" && stop_monitor != "ksd") {
    throw ConfigError(flow + ": stop_monitor is '" + stop_monitor + "', but must be 'mean_energy' or 'ksd'");
  }
  if (stop_monitor == "ksd" && !ksd) throw ConfigError(flow + ": stop_monitor is 'ksd', but ksd is false");
  if (patience == 0) throw ConfigError(flow + ": patience is 0, but must be >= 1");
}

InteractingOptions InteractingOptions::read(JsonReader& params) {
  InteractingOptions o;
  o.ksd = params.get_bool("ksd", o.ksd);
  o.ksd_kernel.c = params.get_double("ksd_c", o.ksd_kernel.c);
  if (!(o.ksd_kernel.c > 0) || !std::isfinite(o.ksd_kernel.c)) {
    params.fail("ksd_c", "is " + std::to_string(o.ksd_kernel.c) + ", but must be > 0");
  }
  o.stop_monitor = params.get_string("stop_monitor", o.stop_monitor);
  if (o.stop_monitor != "mean_energy" && o.stop_monitor != "ksd") {
    params.fail("stop_monitor", "is '" + o.stop_monitor + "', but must be 'mean_energy' or 'ksd'");
  }
  const long long patience = params.get_int("patience", static_cast<long long>(o.patience));
  if (patience < 1) params.fail("patience", "is " + std::to_string(patience) + ", but must be >= 1");
  o.patience = static_cast<std::size_t>(patience);
  return o;
}

double read_bandwidth(JsonReader& params, const std::string& key) {
  if (!params.has(key)) {
    params.ignore(key);
    return 0.0;
  }
  const Json& v = params.get_json(key);
  if (v.is_string() && v.get<std::string>() == "median") return 0.0;
  if (!v.is_number()) params.fail(key, "is " + v.dump() + ", but must be a number > 0 or \"median\"");
  const double h = v.get<double>();
  if (!(h > 0) || !std::isfinite(h)) {
    std::ostringstream s;
    s << "is " << h << ", but must be > 0 or \"median\"";
    params.fail(key, s.str());
  }
  return h;
}

Eigen::RowVectorXd row_mean(const RowMatrix& x) {
  Eigen::RowVectorXd m = Eigen::RowVectorXd::Zero(x.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i) m += x.row(i);
  if (x.rows() > 0) m /= static_cast<double>(x.rows());
  return m;
}

void InteractingFlow::prepare(const Target&, const Ensemble&, const FlowOptions&) {}

FlowResult InteractingFlow::run(const Target& target, Ensemble& ensemble, const FlowOptions& options) {
  options.validate();
  common_.validate(name());
  const std::size_t n = ensemble.size(), d = target.dim();
  if (ensemble.dim() != d) {
    throw DomainError(name() + ": particles have " + std::to_string(ensemble.dim()) +
                      " coordinates, but target '" + target.name() + "' has dimension " + std::to_string(d));
  }
  if (n < 2) throw DomainError(name() + ": needs at least 2 particles, got " + std::to_string(n));
  prepare(target, ensemble, options);
  const double tau = options.step_size > 0 ? options.step_size : default_step_size();
  const double beta_end = options.beta.end;

  FlowResult result;
  for (const char* key : {"mean_energy", "ksd", "ksd2_u", "bandwidth", "beta"}) {
    if (std::string(key).rfind("ksd", 0) == 0 && !common_.ksd) continue;
    result.monitors[key];
  }
  const std::size_t total = options.warmup + options.steps;
  Progress progress(name(), total, options.progress);
  RowMatrix grad, delta;
  Eigen::VectorXd u;
  double last_monitor = std::numeric_limits<double>::quiet_NaN();
  std::size_t within = 0;

  // u, ∇u at the current positions; non-finite ones counted and their gradient zeroed.
  auto evaluate = [&]() {
    const BatchStats stats = target.evaluate_batch(ensemble.positions, u, &grad, options.exec);
    result.energy_evaluations += stats.evaluated;
    result.non_finite += stats.non_finite;
    if (stats.non_finite > 0) {
      for (Eigen::Index i = 0; i < grad.rows(); ++i)
        if (!std::isfinite(u[i])) grad.row(i).setZero();
    }
    return stats.non_finite;
  };
  auto record = [&](std::size_t step, double beta, std::size_t non_finite) -> double {
    double sum = 0.0;
    std::size_t finite = 0;
    for (Eigen::Index i = 0; i < u.size(); ++i)
      if (std::isfinite(u[i])) {
        sum += u[i];
        ++finite;
      }
    const double mean_u = finite ? sum / static_cast<double>(finite) : std::numeric_limits<double>::quiet_NaN();
    result.monitor_steps.push_back(static_cast<double>(step));
    result.monitors["mean_energy"].push_back(mean_u);
    result.monitors["bandwidth"].push_back(bandwidth());
    result.monitors["beta"].push_back(beta);
    double ksd_value = std::numeric_limits<double>::quiet_NaN();
    if (common_.ksd) {
      KsdResult k{ksd_value, ksd_value};
      if (non_finite == 0) {
        const RowMatrix scores = -beta_end * grad;
        k = kernel_stein_discrepancy(ensemble.positions, scores, common_.ksd_kernel, options.exec);
      }
      ksd_value = k.ksd();
      if (non_finite > 0) ksd_value = std::numeric_limits<double>::quiet_NaN();
      result.monitors["ksd"].push_back(ksd_value);
      result.monitors["ksd2_u"].push_back(k.u_statistic);
    }
    extra_monitors(ensemble.positions, options, result.monitors);
    return common_.stop_monitor == "ksd" ? ksd_value : mean_u;
  };

  std::size_t step = 0;
  for (; step < total; ++step) {
    const double beta = options.beta.at(step);
    const std::size_t bad = evaluate();
    // The update is computed before the monitors so that "bandwidth" is the one used at x_t.
    update(ensemble.positions, grad, beta, step, tau, options, delta);
    if (step >= options.warmup && (step - options.warmup) % options.monitor_every == 0) {
      const double value = record(step, beta, bad);
      if (options.tolerance > 0 && step >= options.beta.steps && std::isfinite(value) &&
          std::isfinite(last_monitor)) {
        within = std::abs(value - last_monitor) <= options.tolerance * std::max(1.0, std::abs(value)) ? within + 1 : 0;
        if (within >= common_.patience) {
          result.converged = true;  // x_t is returned, with its energies u
          break;
        }
      }
      last_monitor = value;
    }
    ensemble.positions += delta;
    if (options.thin > 0 && step >= options.warmup && (step + 1 - options.warmup) % options.thin == 0 &&
        result.frames.size() < options.max_frames) {
      result.frames.push_back(ensemble.positions);
    }
    progress.update(step + 1, "");
  }
  result.steps_done = step;
  if (!result.converged) {
    // Final state: energies (and a final monitor row) at the returned positions.
    const std::size_t bad = evaluate();
    record(step, options.beta.at(step), bad);
  }
  progress.finish();
  ensemble.reduced_energies = u;
  result.statistics["step_size"] = tau;
  result.statistics["final_bandwidth"] = bandwidth();
  add_statistics(result.statistics);
  return result;
}

}  // namespace boltzlab
