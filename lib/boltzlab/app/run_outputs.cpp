#include "boltzlab/app/run_outputs.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
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

/// q-quantile of finite values (nearest rank); NaN when none.
double quantile(std::vector<double> v, double q) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  const auto k = static_cast<std::size_t>(std::clamp(q, 0.0, 1.0) * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

std::string plot_energy_histogram(const Eigen::VectorXd& u, const fs::path& png) {
  std::vector<double> finite;
  for (Eigen::Index i = 0; i < u.size(); ++i)
    if (std::isfinite(u[i])) finite.push_back(u[i]);
  if (finite.size() < 2) return "energy_histogram.png skipped: fewer than 2 finite energies";
  const double lo = quantile(finite, 0.001), hi = quantile(finite, 0.999);
  const int bins = 60;
  const double width = hi > lo ? (hi - lo) / bins : 1.0;
  std::vector<double> centres(bins), counts(bins, 0.0);
  for (int b = 0; b < bins; ++b) centres[b] = lo + (b + 0.5) * width;
  for (double x : finite) {
    const int b = static_cast<int>((x - lo) / width);
    if (b >= 0 && b < bins) counts[b] += 1.0;
  }
  std::ostringstream s;
  s << gnuplot_datablock("h", {centres, counts});
  s << "set title 'final reduced energies'\nset xlabel 'u = E/kT'\nset ylabel 'count'\nset grid\n"
    << "set style fill solid 0.6\nplot $h using 1:2 with boxes lc rgb '#3060a0' notitle\n";
  const PlotResult r = run_gnuplot(s.str(), png);
  return r.ok ? "ok" : r.note;
}

}  // namespace

std::string plot_2d_samples(const Target& target, const RowMatrix& samples, const fs::path& png) {
  if (target.dim() != 2 || samples.cols() != 2) return "samples.png skipped: target is not 2-D";
  std::vector<double> xs, ys;
  for (Eigen::Index i = 0; i < samples.rows(); ++i) {
    if (std::isfinite(samples(i, 0)) && std::isfinite(samples(i, 1))) {
      xs.push_back(samples(i, 0));
      ys.push_back(samples(i, 1));
    }
  }
  if (xs.empty()) return "samples.png skipped: no finite samples";
  // Window: central 99.8 % of the samples, widened by 15 % on each side.
  double x0 = quantile(xs, 0.001), x1 = quantile(xs, 0.999);
  double y0 = quantile(ys, 0.001), y1 = quantile(ys, 0.999);
  const double wx = std::max(x1 - x0, 1e-3), wy = std::max(y1 - y0, 1e-3);
  x0 -= 0.15 * wx;
  x1 += 0.15 * wx;
  y0 -= 0.15 * wy;
  y1 += 0.15 * wy;
  // Energy field on a grid, shifted to its minimum and capped so that the contours
  // resolve the low-energy region (where the samples should be).
  const int m = 120;
  std::vector<double> gx, gy, gu;
  double umin = std::numeric_limits<double>::infinity();
  std::vector<double> field(static_cast<std::size_t>(m * m));
  for (int a = 0; a < m; ++a)
    for (int b = 0; b < m; ++b) {
      const double p[2] = {x0 + (x1 - x0) * a / (m - 1), y0 + (y1 - y0) * b / (m - 1)};
      const double u = target.reduced_energy(p, nullptr);
      field[static_cast<std::size_t>(a * m + b)] = u;
      if (std::isfinite(u)) umin = std::min(umin, u);
    }
  if (!std::isfinite(umin)) return "samples.png skipped: no finite energy on the plot window";
  const double cap = 20.0;
  std::ostringstream grid;
  grid << "$grid << EOD\n";
  grid.precision(8);
  for (int a = 0; a < m; ++a) {
    for (int b = 0; b < m; ++b) {
      const double u = field[static_cast<std::size_t>(a * m + b)];
      const double z = std::isfinite(u) ? std::min(u - umin, cap) : cap;
      grid << x0 + (x1 - x0) * a / (m - 1) << ' ' << y0 + (y1 - y0) * b / (m - 1) << ' ' << z << '\n';
    }
    grid << '\n';
  }
  grid << "EOD\n";
  // At most 20000 points (every k-th sample) to keep the PNG readable.
  const std::size_t stride = std::max<std::size_t>(1, xs.size() / 20000);
  std::vector<double> px, py;
  for (std::size_t i = 0; i < xs.size(); i += stride) {
    px.push_back(xs[i]);
    py.push_back(ys[i]);
  }
  std::ostringstream s;
  s << grid.str() << gnuplot_datablock("pts", {px, py});
  s << "set view map\nset contour base\nset cntrparam levels incremental 0.5,1.5," << cap
    << "\nunset surface\nset table $cont\nsplot $grid using 1:2:3 with lines notitle\nunset table\n"
    << "unset contour\nset surface\nset xrange [" << x0 << ":" << x1 << "]\nset yrange [" << y0 << ":" << y1
    << "]\nset title '" << target.name() << ": final ensemble (" << xs.size()
    << " samples) over u - min u (capped at " << cap << ")'\nset xlabel 'x_1'\nset ylabel 'x_2'\n"
    << "set palette defined (0 '#f7fbff', 1 '#c6dbef', 2 '#6baed6', 3 '#2171b5')\n"
    << "set cblabel 'u - min u'\n"
    << "plot $grid using 1:2:3 with image notitle, $cont using 1:2 with lines lc rgb '#404040' lw 0.6 notitle, "
    << "$pts using 1:2 with points pt 7 ps 0.25 lc rgb '#c0202a' notitle\n";
  const PlotResult r = run_gnuplot(s.str(), png, 800, 800);
  return r.ok ? "ok" : r.note;
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

namespace {

/// The plots (never fatal): energy trace (or histogram), interacting-flow monitors,
/// 2-D samples. Returns {png: "ok" or the reason it is missing}.
nlohmann::json write_plots(const RunDirectory& run, const RunOutputs& o) {
  const Target& target = *o.target;
  const std::string title = o.tool + ": " + display_name(o);
  nlohmann::json plots = nlohmann::json::object();
  auto mean_trace = o.traces.find("mean_energy");
  if (mean_trace != o.traces.end() && !o.trace_steps.empty()) {
    std::vector<Series> series{{"mean reduced energy", o.trace_steps, mean_trace->second}};
    const PlotResult r = plot_lines(series, title, "step", "<u>", run.path("energy_trace.png"));
    plots["energy_trace.png"] = r.ok ? "ok" : r.note;
  } else {
    plots["energy_histogram.png"] = plot_energy_histogram(*o.reduced_energies, run.path("energy_histogram.png"));
  }
  // Monitors of the interacting-particle flows (flows/interacting.hpp), one plot each.
  for (const std::string key : {"ksd", "bandwidth", "mmd2"}) {
    auto it = o.traces.find(key);
    if (it == o.traces.end() || o.trace_steps.empty() || it->second.size() != o.trace_steps.size()) continue;
    const PlotResult r = plot_lines({{key, o.trace_steps, it->second}}, title, "step", key,
                                    run.path(key + "_trace.png"), key != "bandwidth");
    plots[key + "_trace.png"] = r.ok ? "ok" : r.note;
  }
  if (target.dim() == 2) plots["samples.png"] = plot_2d_samples(target, *o.samples, run.path("samples.png"));
  return plots;
}

}  // namespace

nlohmann::json write_run(const RunDirectory& run, const RunOutputs& o) {
  o.validate();
  const double t_start = wall_seconds();
  const Target& target = *o.target;
  const std::size_t n = static_cast<std::size_t>(o.samples->rows());
  nlohmann::json files = write_arrays(run, o);

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
    plots = write_plots(run, o);
    for (const auto& [name, status] : plots.items()) {
      if (status == "ok") {
        files.push_back(name);
      } else {
        notes.push_back(status.get<std::string>());
      }
    }
  }
  s["plots"] = plots;
  write_molecular_outputs(run, target, *o.samples, o.log_weights, s);
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
