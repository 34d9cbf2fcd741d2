#include "boltzlab/app/run_outputs.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <future>
#include <limits>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/app/molecular_outputs.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/io/plot.hpp"

namespace fs = std::filesystem;

namespace boltzlab {

void RunOutputs::validate() const {
  const std::string where = (tool.empty() ? std::string("run outputs") : tool) + ": ";
  if (!target) throw DomainError(where + "run outputs need the target");
  if (!samples) throw DomainError(where + "run outputs need the samples");
  if (!reduced_energies) throw DomainError(where + "run outputs need the reduced energies");
  const auto n = samples->rows();
  if (static_cast<std::size_t>(samples->cols()) != target->dim()) {
    throw DomainError(where + "samples have " + std::to_string(samples->cols()) +
                      " columns, but the target has dimension " + std::to_string(target->dim()));
  }
  auto check_len = [&](const Eigen::VectorXd* v, const char* name) {
    if (v && v->size() != n) {
      throw DomainError(where + name + " has length " + std::to_string(v->size()) + ", but there are " +
                        std::to_string(n) + " samples");
    }
  };
  check_len(reduced_energies, "reduced_energies");
  check_len(log_q, "log_q");
  check_len(log_weights, "log_weights");
  if (frames) {
    for (const auto& f : *frames) {
      if (f.rows() != n || f.cols() != samples->cols()) {
        throw DomainError(where + "a frame has shape (" + std::to_string(f.rows()) + ", " +
                          std::to_string(f.cols()) + "), but samples are (" + std::to_string(n) + ", " +
                          std::to_string(samples->cols()) + ")");
      }
    }
  }
  for (const auto& [name, series] : traces) {
    if (series.size() != trace_steps.size()) {
      throw DomainError(where + "trace '" + name + "' has " + std::to_string(series.size()) +
                        " values for " + std::to_string(trace_steps.size()) + " steps");
    }
  }
}

void write_frames_npy(const fs::path& path, const std::vector<RowMatrix>& frames) {
  const std::size_t f = frames.size();
  const std::size_t n = f ? static_cast<std::size_t>(frames[0].rows()) : 0;
  const std::size_t d = f ? static_cast<std::size_t>(frames[0].cols()) : 0;
  for (const auto& fr : frames) {
    if (static_cast<std::size_t>(fr.rows()) != n || static_cast<std::size_t>(fr.cols()) != d) {
      throw DomainError(path.string() + ": frames differ in shape");
    }
  }
  std::vector<NpyPiece> pieces;
  pieces.reserve(f);
  for (const auto& fr : frames) pieces.push_back(NpyPiece{fr.data(), n * d});
  write_npy_pieces(path, {f, n, d}, pieces);
}

namespace {

/// The arrays (samples, reduced energies, log q, log weights, frames); returns their names.
nlohmann::json write_arrays(const RunDirectory& run, const RunOutputs& o) {
  nlohmann::json files = nlohmann::json::array();
  run.write_array("samples.npy", *o.samples);
  files.push_back("samples.npy");
  run.write_array("reduced_energies.npy", *o.reduced_energies);
  files.push_back("reduced_energies.npy");
  if (o.log_q) {
    run.write_array("log_q.npy", *o.log_q);
    files.push_back("log_q.npy");
  }
  if (o.log_weights) {
    run.write_array("log_weights.npy", *o.log_weights);
    files.push_back("log_weights.npy");
  }
  if (o.frames && !o.frames->empty()) {
    write_frames_npy(run.path("frames.npy"), *o.frames);
    files.push_back("frames.npy");
  }
  return files;
}

std::string display_name(const RunOutputs& o) {
  return o.potential_name.empty() ? o.target->name() : o.potential_name;
}

/// summary["potential"].
nlohmann::json potential_summary(const RunOutputs& o) {
  const Target& target = *o.target;
  const std::optional<double> log_z = target.log_z();
  return {{"path", o.potential_path.string()},
          {"name", display_name(o)},
          {"target", target.describe()},
          {"dim", target.dim()},
          {"degrees_of_freedom", degrees_of_freedom(target)},
          {"log_z", log_z ? nlohmann::json(*log_z) : nlohmann::json(nullptr)}};
}

}  // namespace

nlohmann::json EnergyStats::to_json() const {
  return {{"mean", mean}, {"std", std}, {"min", min}, {"max", max}};
}

EnergyStats energy_stats(const Eigen::VectorXd& u) {
  EnergyStats out;
  double sum = 0.0, sum2 = 0.0, lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (Eigen::Index i = 0; i < u.size(); ++i) {
    const double e = u[i];
    if (!std::isfinite(e)) {
      ++out.non_finite;
      continue;
    }
    sum += e;
    sum2 += e * e;
    lo = std::min(lo, e);
    hi = std::max(hi, e);
  }
  const double finite = static_cast<double>(static_cast<std::size_t>(u.size()) - out.non_finite);
  out.mean = finite > 0 ? sum / finite : std::numeric_limits<double>::quiet_NaN();
  const double var = finite > 1 ? std::max(0.0, (sum2 - finite * out.mean * out.mean) / (finite - 1)) : std::nan("");
  out.std = std::sqrt(var);
  out.min = lo;
  out.max = hi;
  return out;
}

nlohmann::json write_run(const RunDirectory& run, const RunOutputs& o) {
  o.validate();
  const double t_start = wall_seconds();
  const Target& target = *o.target;
  const std::size_t n = static_cast<std::size_t>(o.samples->rows());
  // The plots (gnuplot processes, from the data in memory) are drawn while the arrays
  // are written; their results are recorded below, in the same order as before.
  std::future<nlohmann::json> plotted;
  if (o.plots) plotted = std::async(std::launch::async, [&run, &o] { return write_run_plots(run, o); });
  nlohmann::json files = write_arrays(run, o);
  for (const std::string& f : o.extra_files) files.push_back(f);

  nlohmann::json s = nlohmann::json::object();
  s["tool"] = o.tool;
  s["potential"] = potential_summary(o);
  s["options"] = o.options;
  s["seed"] = o.seed;
  s["threads"] = o.threads > 0 ? o.threads : num_threads();
  const EnergyStats energy = energy_stats(*o.reduced_energies);
  nlohmann::json counts = {{"particles", n}, {"dim", target.dim()}, {"non_finite_energies", energy.non_finite}};
  for (const auto& [k, v] : o.counts.items()) counts[k] = v;
  s["counts"] = counts;
  s["energy"] = energy.to_json();
  s["statistics"] = o.statistics;
  nlohmann::json trace = nlohmann::json::object();
  if (!o.trace_steps.empty()) {
    trace["step"] = o.trace_steps;
    for (const auto& [k, v] : o.traces) trace[k] = v;
  }
  s["trace"] = trace;

  nlohmann::json notes = nlohmann::json::array();
  for (const auto& note : o.notes) notes.push_back(note);
  if (energy.non_finite > 0) {
    notes.push_back(std::to_string(energy.non_finite) + " of " + std::to_string(n) +
                    " final reduced energies are not finite (+inf in reduced_energies.npy)");
  }
  nlohmann::json plots = nlohmann::json::object();
  if (!o.plots) {
    notes.push_back("plots disabled");
  } else {
    plots = plotted.get();
    for (const auto& [name, status] : plots.items()) {
      if (status == "ok") {
        files.push_back(name);
      } else {
        notes.push_back(status.get<std::string>());
      }
    }
  }
  s["plots"] = plots;
  write_molecular_outputs(run, target, *o.samples, o.log_weights, s,
                          {o.reference_dihedrals, o.reference_name});
  for (const auto& [k, v] : o.extra.items()) s[k] = v;

  nlohmann::json timings = o.timings;
  timings["write"] = wall_seconds() - t_start;
  s["timings"] = timings;
  s["format_version"] = kRunFormatVersion;
  nlohmann::json check = s;
  if (sanitize_non_finite(check) > 0) {
    notes.push_back("null numbers in this file stand for undefined or non-finite values (NaN/inf, e.g. an "
                    "acceptance rate at step 0 or a mean over no finite energies; JSON has neither)");
  }
  s["notes"] = notes;
  files.push_back("summary.json");
  s["files"] = files;
  run.write_summary(s);
  sanitize_non_finite(s);
  return s;
}

}  // namespace boltzlab
