#include "boltzlab/flows/interacting.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/mpi.hpp"
#include "boltzlab/io/config.hpp"

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
  if (!(h > 0) || !std::isfinite(h)) params.fail(key, "is " + format_number(h) + ", but must be > 0 or \"median\"");
  return h;
}

Eigen::RowVectorXd row_mean(const RowMatrix& x) {
  Eigen::RowVectorXd m = Eigen::RowVectorXd::Zero(x.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i) m += x.row(i);
  if (x.rows() > 0) m /= static_cast<double>(x.rows());
  return m;
}

RowRange my_rows(std::size_t n) {
  const mpi::Block b = mpi::my_block(n);
  return {b.begin, b.end};
}

RowMatrix gather_rows(RowMatrix mine, std::size_t n) {
  const RowRange rows = my_rows(n);
  if (static_cast<std::size_t>(mine.rows()) != rows.size()) {
    throw DomainError("gather_rows: this rank holds " + std::to_string(mine.rows()) + " rows, but its block has " +
                      std::to_string(rows.size()));
  }
  if (mpi::size() == 1) return mine;
  const std::vector<double> local(mine.data(), mine.data() + mine.size());
  const std::vector<double> all = mpi::allgatherv(local);
  RowMatrix out(static_cast<Eigen::Index>(n), mine.cols());
  if (all.size() != static_cast<std::size_t>(out.size())) {
    throw DomainError("gather_rows: gathered " + std::to_string(all.size()) + " values, expected " +
                      std::to_string(out.size()));
  }
  std::copy(all.begin(), all.end(), out.data());
  return out;
}

double kernel_width2(const RowMatrix& xc, double fixed, Execution exec, PairDistances* keep) {
  if (keep) keep->clear();
  if (fixed > 0) return fixed * fixed;
  const std::size_t n = static_cast<std::size_t>(xc.rows());
  const bool pays = static_cast<std::size_t>(xc.cols()) >= kMinDimKeptPairDistances;
  MedianShare share;
  if (mpi::size() > 1) {
    share.rows = pays && keep && n <= kMaxKeptPairDistances ? my_rows(n) : pair_row_share(n, mpi::rank(), mpi::size());
    share.sum = [](double* values, std::size_t count) { mpi::allreduce_sum(values, count); };
    share.gather = [](const std::vector<double>& local) { return mpi::allgatherv(local); };
  }
  const double w2 = median_heuristic_bandwidth2(xc, exec, pays ? keep : nullptr, share);
  return w2 > 0 ? w2 : 1.0;
}

void self_kernel_sums(const RowMatrix& xc, const PairDistances& kept, const RowMatrix& v, double c, RowMatrix& out,
                      Execution exec, RowRange rows) {
  if (kept.empty()) {
    gaussian_kernel_sums(xc, xc, v, c, out, exec, rows);
  } else {
    gaussian_kernel_sums(kept, v, c, out, exec, rows);
  }
}

KsdResult kernel_stein_discrepancy_over_ranks(const RowMatrix& x, const RowMatrix& scores, const KsdOptions& options,
                                              Execution exec) {
  if (mpi::size() == 1) return kernel_stein_discrepancy(x, scores, options, exec);
  const RowRange share = pair_row_share(static_cast<std::size_t>(x.rows()), mpi::rank(), mpi::size());
  return ksd_from_row_sums(mpi::allgatherv(ksd_row_sums(x, scores, options, exec, share)), scores, options);
}

void InteractingFlow::prepare(const Target&, const Ensemble&, const FlowOptions&) {}

/// One run of an interacting flow: u and ∇u at the ensemble's positions, the update,
/// the monitors and the stopping rule (see InteractingFlow).
struct InteractingFlow::Loop {
  InteractingFlow& flow;
  const Target& target;
  Ensemble& ensemble;
  const FlowOptions& options;
  double tau;  ///< resolved step size
  FlowResult result;
  RowMatrix grad, delta;
  Eigen::VectorXd u;
  double last_monitor = std::numeric_limits<double>::quiet_NaN();
  std::size_t within = 0;  ///< consecutive monitor changes within tolerance

  Loop(InteractingFlow& f, const Target& t, Ensemble& e, const FlowOptions& o)
      : flow(f), target(t), ensemble(e), options(o), tau(o.step_size > 0 ? o.step_size : f.default_step_size()) {}

  void declare_monitors() {
    for (const char* key : {"mean_energy", "ksd", "ksd2_u", "bandwidth", "beta"}) {
      if (std::string(key).rfind("ksd", 0) == 0 && !flow.common_.ksd) continue;
      result.monitors[key];
    }
  }

  /// u, ∇u at the current positions; non-finite ones counted and their gradient zeroed.
  std::size_t evaluate() {
    const BatchStats stats = mpi::size() == 1 ? target.evaluate_batch(ensemble.positions, u, &grad, options.exec)
                                              : evaluate_over_ranks();
    result.energy_evaluations += stats.evaluated;
    result.non_finite += stats.non_finite;
    if (stats.non_finite > 0) {
      for (Eigen::Index i = 0; i < grad.rows(); ++i)
        if (!std::isfinite(u[i])) grad.row(i).setZero();
    }
    return stats.non_finite;
  }

  /// Over MPI ranks: each rank evaluates a contiguous block of particles, then every
  /// rank gets all u and ∇u (the update of a particle needs every particle's; each rank
  /// computes the update rows of its block, see the flows). Each row is evaluated alone,
  /// so the bits are those of one process.
  BatchStats evaluate_over_ranks() {
    const std::size_t n = ensemble.size(), d = ensemble.dim();
    const mpi::Block mine = mpi::my_block(n);
    const RowMatrix x = ensemble.positions.middleRows(static_cast<Eigen::Index>(mine.begin),
                                                      static_cast<Eigen::Index>(mine.size()));
    Eigen::VectorXd u_mine;
    RowMatrix g_mine;
    const BatchStats stats = target.evaluate_batch(x, u_mine, &g_mine, options.exec);
    std::vector<double> packed(mine.size() * (d + 1) + 1);
    for (std::size_t i = 0; i < mine.size(); ++i) {
      packed[i * (d + 1)] = u_mine[static_cast<Eigen::Index>(i)];
      std::copy(g_mine.row(static_cast<Eigen::Index>(i)).data(), g_mine.row(static_cast<Eigen::Index>(i)).data() + d,
                packed.begin() + static_cast<std::ptrdiff_t>(i * (d + 1) + 1));
    }
    packed.back() = static_cast<double>(stats.non_finite);  // this rank's count, after its rows
    const std::vector<double> all = mpi::allgatherv(packed);
    u.resize(static_cast<Eigen::Index>(n));
    grad.resize(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
    BatchStats total;
    std::size_t pos = 0;
    for (int r = 0; r < mpi::size(); ++r) {
      const mpi::Block b = mpi::block_of(n, r, mpi::size());
      for (std::size_t i = b.begin; i < b.end; ++i, pos += d + 1) {
        u[static_cast<Eigen::Index>(i)] = all[pos];
        std::copy(all.begin() + static_cast<std::ptrdiff_t>(pos + 1), all.begin() + static_cast<std::ptrdiff_t>(pos + 1 + d),
                  grad.row(static_cast<Eigen::Index>(i)).data());
      }
      total.non_finite += static_cast<std::size_t>(all[pos++]);
    }
    total.evaluated = n;
    return total;
  }

  /// Step `step` at β: evaluate, update, monitor; then x ← x + Δ and the frame.
  /// Returns false when the stopping rule ends the run at x_step (not moved).
  bool advance(std::size_t step) {
    const double beta = options.beta.at(step);
    const std::size_t bad = evaluate();
    // The update is computed before the monitors so that "bandwidth" is the one used at x_t.
    flow.update(ensemble.positions, grad, beta, step, tau, options, delta);
    if (step >= options.warmup && (step - options.warmup) % options.monitor_every == 0) {
      const double value = record(step, beta, bad);
      if (settled(step, value)) {
        result.converged = true;  // x_t is returned, with its energies u
        return false;
      }
      last_monitor = value;
    }
    ensemble.positions += delta;
    if (options.thin > 0 && step >= options.warmup && (step + 1 - options.warmup) % options.thin == 0 &&
        result.frames.size() < options.max_frames) {
      result.frames.push_back(ensemble.positions);
    }
    return true;
  }

  /// Counts a monitor change within tolerance·max(1, |value|) (after annealing);
  /// true once `patience` consecutive changes were.
  bool settled(std::size_t step, double value) {
    if (!(options.tolerance > 0 && step >= options.beta.steps && std::isfinite(value) && std::isfinite(last_monitor))) {
      return false;
    }
    within = std::abs(value - last_monitor) <= options.tolerance * std::max(1.0, std::abs(value)) ? within + 1 : 0;
    return within >= flow.common_.patience;
  }

  /// Records a monitor row at `step`; returns the value of the stop monitor.
  double record(std::size_t step, double beta, std::size_t non_finite) {
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
    result.monitors["bandwidth"].push_back(flow.bandwidth());
    result.monitors["beta"].push_back(beta);
    const double ksd_value = flow.common_.ksd ? record_ksd(non_finite) : std::numeric_limits<double>::quiet_NaN();
    flow.extra_monitors(ensemble.positions, options, result.monitors);
    return flow.common_.stop_monitor == "ksd" ? ksd_value : mean_u;
  }

  /// KSD of the ensemble against π = π_{β_end} (NaN when some ∇u was not finite).
  double record_ksd(std::size_t non_finite) {
    double ksd_value = std::numeric_limits<double>::quiet_NaN();
    KsdResult k{ksd_value, ksd_value};
    if (non_finite == 0) {
      const RowMatrix scores = -options.beta.end * grad;
      k = kernel_stein_discrepancy_over_ranks(ensemble.positions, scores, flow.common_.ksd_kernel, options.exec);
    }
    ksd_value = k.ksd();
    if (non_finite > 0) ksd_value = std::numeric_limits<double>::quiet_NaN();
    result.monitors["ksd"].push_back(ksd_value);
    result.monitors["ksd2_u"].push_back(k.u_statistic);
    return ksd_value;
  }
};

void InteractingFlow::check_inputs(const Target& target, const Ensemble& ensemble, const FlowOptions& options) const {
  options.validate();
  common_.validate(name());
  const std::size_t n = ensemble.size(), d = target.dim();
  if (ensemble.dim() != d) {
    throw DomainError(name() + ": particles have " + std::to_string(ensemble.dim()) +
                      " coordinates, but target '" + target.name() + "' has dimension " + std::to_string(d));
  }
  if (n < 2) throw DomainError(name() + ": needs at least 2 particles, got " + std::to_string(n));
}

FlowResult InteractingFlow::evolve(const Target& target, Ensemble& ensemble, const FlowOptions& options) {
  check_inputs(target, ensemble, options);
  prepare(target, ensemble, options);
  Loop loop(*this, target, ensemble, options);
  loop.declare_monitors();
  const std::size_t total = options.warmup + options.steps;
  Progress progress(name(), total, options.progress);
  std::size_t step = 0;
  for (; step < total && loop.advance(step); ++step) progress.update(step + 1, "");
  FlowResult& result = loop.result;
  result.steps_done = step;
  if (!result.converged) {
    // Final state: energies (and a final monitor row) at the returned positions.
    const std::size_t bad = loop.evaluate();
    loop.record(step, options.beta.at(step), bad);
  }
  progress.finish();
  ensemble.reduced_energies = loop.u;
  result.statistics["step_size"] = loop.tau;
  result.statistics["final_bandwidth"] = bandwidth();
  add_statistics(result.statistics);
  return std::move(result);
}

}  // namespace boltzlab
