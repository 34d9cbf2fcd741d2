// The plots of the standard run directory (declared in run_outputs.hpp): energy trace
// or histogram, the interacting flows' monitors, 2-D samples and densities.
#include <algorithm>
#include <cmath>
#include <future>
#include <limits>
#include <sstream>

#include "boltzlab/app/plot_reference.hpp"
#include "boltzlab/app/run_outputs.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/io/plot.hpp"

namespace fs = std::filesystem;

namespace boltzlab {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string plot_title(const RunOutputs& o) {
  return o.tool + ": " + (o.potential_name.empty() ? o.target->name() : o.potential_name);
}

/// q-quantile of finite values (nearest rank); NaN when none.
double quantile(std::vector<double> v, double q) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return kNaN;
  const auto k = static_cast<std::size_t>(std::clamp(q, 0.0, 1.0) * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

PlotScript energy_histogram_script(const Eigen::VectorXd& u) {
  std::vector<double> finite;
  for (Eigen::Index i = 0; i < u.size(); ++i)
    if (std::isfinite(u[i])) finite.push_back(u[i]);
  if (finite.size() < 2) return {"", "energy_histogram.png skipped: fewer than 2 finite energies"};
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
  return {s.str(), ""};
}

/// The lowest finite value of the final energies and of the trace (+inf when none).
double lowest_energy(const RunOutputs& o, const std::vector<double>& trace) {
  double lo = std::numeric_limits<double>::infinity();
  for (Eigen::Index i = 0; i < o.reduced_energies->size(); ++i) {
    if (std::isfinite((*o.reduced_energies)[i])) lo = std::min(lo, (*o.reduced_energies)[i]);
  }
  for (double v : trace)
    if (std::isfinite(v)) lo = std::min(lo, v);
  return lo;
}

/// The window of the samples (central 99.8 %, widened by 15 % per side), for targets
/// without a stated domain.
PlotDomain sample_window(const RowMatrix& samples) {
  std::vector<double> xs(samples.col(0).data(), samples.col(0).data() + samples.rows());
  std::vector<double> ys(samples.col(1).data(), samples.col(1).data() + samples.rows());
  double x0 = quantile(xs, 0.001), x1 = quantile(xs, 0.999), y0 = quantile(ys, 0.001), y1 = quantile(ys, 0.999);
  const double wx = std::max(x1 - x0, 1e-3), wy = std::max(y1 - y0, 1e-3);
  return {x0 - 0.15 * wx, x1 + 0.15 * wx, y0 - 0.15 * wy, y1 + 0.15 * wy,
          "the samples' window (no stated domain for this target)", {}};
}

/// True when some row of the N×2 samples is finite.
bool any_finite(const RowMatrix& samples) {
  for (Eigen::Index i = 0; i < samples.rows(); ++i)
    if (std::isfinite(samples(i, 0)) && std::isfinite(samples(i, 1))) return true;
  return false;
}

/// The target's stated domain, else the samples' window.
PlotDomain domain_for(const Target& target, const RowMatrix& samples) {
  if (std::optional<PlotDomain> d = plot_domain(target)) return *d;
  return sample_window(samples);
}

/// Caption lines: the domain, "samples within 2 sd of k of K modes" (when every mode
/// has a radius) and "m of N samples outside the domain".
std::vector<std::string> coverage_text(const PlotDomain& d, const RowMatrix& samples) {
  std::vector<std::string> lines = {"domain: " + d.source};
  std::ostringstream s;
  const bool radii = !d.modes.empty() &&
                     std::all_of(d.modes.begin(), d.modes.end(), [](const PlotMode& m) { return m.radius > 0; });
  if (radii) {
    std::size_t found = 0;
    for (const PlotMode& m : d.modes) {
      for (Eigen::Index i = 0; i < samples.rows(); ++i) {
        if (std::hypot(samples(i, 0) - m.x, samples(i, 1) - m.y) <= m.radius) {
          ++found;
          break;
        }
      }
    }
    s << "samples within 2 sd of " << found << " of " << d.modes.size() << " modes; ";
  } else if (!d.modes.empty()) {
    s << d.modes.size() << " known modes marked; ";
  }
  std::size_t outside = 0;
  for (Eigen::Index i = 0; i < samples.rows(); ++i) {
    const double x = samples(i, 0), y = samples(i, 1);
    outside += !(x >= d.x_lo && x <= d.x_hi && y >= d.y_lo && y <= d.y_hi);
  }
  s << outside << " of " << samples.rows() << " samples outside the domain";
  lines.push_back(s.str());
  return lines;
}

/// $modes data block and the plot clause of the known modes (empty without modes).
std::string modes_block(const PlotDomain& d) {
  if (d.modes.empty()) return "";
  std::vector<double> mx, my;
  for (const PlotMode& m : d.modes) {
    mx.push_back(m.x);
    my.push_back(m.y);
  }
  return gnuplot_datablock("modes", {mx, my});
}

std::string modes_clause(const PlotDomain& d) {
  if (d.modes.empty()) return "";
  return ", $modes using 1:2 with points pt 6 ps 1.6 lw 1.5 lc rgb '#e8202a' title " +
         gnuplot_string(std::to_string(d.modes.size()) + " known modes");
}

std::string range_text(const PlotDomain& d) {
  std::ostringstream s;
  s.precision(10);
  s << "set xrange [" << d.x_lo << ":" << d.x_hi << "]\nset yrange [" << d.y_lo << ":" << d.y_hi << "]\n";
  return s.str();
}

/// Grid of m×m points over the domain, x slowest (rows a·m + b at x_a, y_b).
RowMatrix domain_grid(const PlotDomain& d, int m) {
  RowMatrix grid(static_cast<Eigen::Index>(m) * m, 2);
  for (int a = 0; a < m; ++a)
    for (int b = 0; b < m; ++b) {
      grid(a * m + b, 0) = d.x_lo + (d.x_hi - d.x_lo) * (a + 0.5) / m;
      grid(a * m + b, 1) = d.y_lo + (d.y_hi - d.y_lo) * (b + 0.5) / m;
    }
  return grid;
}

/// A grid field as a gnuplot block for `with image` (a blank line after each x).
std::string grid_block(const std::string& name, const RowMatrix& grid, const std::vector<double>& z, int m) {
  std::ostringstream s;
  s.precision(8);
  s << "$" << name << " << EOD\n";
  for (int a = 0; a < m; ++a) {
    for (int b = 0; b < m; ++b) {
      const auto k = static_cast<Eigen::Index>(a * m + b);
      s << grid(k, 0) << ' ' << grid(k, 1) << ' ';
      if (std::isfinite(z[static_cast<std::size_t>(k)])) s << z[static_cast<std::size_t>(k)]; else s << "NaN";
      s << '\n';
    }
    s << '\n';
  }
  s << "EOD\n";
  return s.str();
}

/// At most `max_points` finite samples (every k-th) as the block $name.
std::string samples_block(const std::string& name, const RowMatrix& samples, std::size_t max_points) {
  std::vector<double> px, py;
  const std::size_t stride = std::max<std::size_t>(1, (static_cast<std::size_t>(samples.rows()) + max_points - 1) / max_points);
  for (Eigen::Index i = 0; i < samples.rows(); i += static_cast<Eigen::Index>(stride)) {
    if (std::isfinite(samples(i, 0)) && std::isfinite(samples(i, 1))) {
      px.push_back(samples(i, 0));
      py.push_back(samples(i, 1));
    }
  }
  return gnuplot_datablock(name, {px, py});
}

}  // namespace

PlotScript energy_trace_script(const RunOutputs& o) {
  const auto it = o.traces.find("mean_energy");
  if (it == o.traces.end() || o.trace_steps.empty()) return {"", "energy_trace.png skipped: no mean-energy trace"};
  const EnergyReference ref = energy_reference(*o.target);
  const double lowest = lowest_energy(o, it->second);
  // A grid minimum may lie above the true one: never above what the run reached.
  const double u_min = ref.minimum ? std::min(*ref.minimum, lowest) : lowest;
  if (!std::isfinite(u_min)) return {"", "energy_trace.png skipped: no finite energy"};
  LinePlot p;
  p.title = plot_title(o) + ": mean reduced energy";
  p.xlabel = "step";
  p.ylabel = "<u> - u_min   (u_min = " + format_number(u_min) + ")";
  p.log_y = true;
  std::vector<double> excess;
  std::size_t left_out = 0;
  for (double v : it->second) {
    excess.push_back(std::isfinite(v) && v > u_min ? v - u_min : kNaN);
    left_out += std::isfinite(v) && !(v > u_min);
  }
  p.series.push_back({"<u> - u_min of the ensemble", o.trace_steps, excess});
  if (ref.mean && *ref.mean > u_min) {
    p.references.push_back({*ref.mean - u_min, "exact <u> - u_min (<u> = " + format_number(*ref.mean) + ")"});
    p.caption.push_back("exact <u> and u_min: " + ref.source);
  } else {
    p.caption.push_back("no exact <u> known for " + o.target->name() + (ref.source.empty() ? "" : " (" + ref.source + ")"));
    p.caption.push_back(ref.minimum ? "u_min: " + ref.source : "u_min: the lowest u of the run (final ensemble and trace)");
  }
  if (left_out > 0) p.caption.push_back(std::to_string(left_out) + " trace values <= u_min left out");
  if (o.trace_markers.warmup_steps > 0) {
    p.markers.push_back({o.trace_markers.warmup_steps,
                         "end of warm-up (step " + format_number(o.trace_markers.warmup_steps) + ")"});
  }
  if (o.trace_markers.anneal_steps > 0) {
    p.markers.push_back({o.trace_markers.anneal_steps,
                         "beta reaches 1 (step " + format_number(o.trace_markers.anneal_steps) + ")"});
  }
  return {line_plot_script(p), ""};
}

PlotScript md_trace_script(const MdTrace& t, const std::string& title) {
  if (t.energy.empty()) return {"", "energy_trace.png skipped: no MD energies"};
  LinePlot e;
  e.title = "potential energy";
  e.xlabel = "production time (ps)";
  e.ylabel = "E (kJ/mol)";
  e.series = t.energy;
  e.caption = t.caption;
  if (t.temperature.empty()) return {line_panels_script({e}, title), "", 1000, 560};
  LinePlot k;
  k.title = "kinetic temperature";
  k.xlabel = "production time (ps)";
  k.ylabel = "T (K)";
  k.series = t.temperature;
  for (double bath : t.bath_temperatures) k.references.push_back({bath, "bath " + format_number(bath) + " K"});
  return {line_panels_script({e, k}, title), "", 1000, 900};
}

PlotScript samples_2d_script(const Target& target, const RowMatrix& samples, const std::string& title) {
  if (target.dim() != 2 || samples.cols() != 2) return {"", "samples.png skipped: target is not 2-D"};
  if (!any_finite(samples)) return {"", "samples.png skipped: no finite samples"};
  const PlotDomain d = domain_for(target, samples);
  // Energy field on the domain, shifted to its minimum and capped so that the contours
  // resolve the low-energy region (where the samples should be).
  const int m = 160;
  const RowMatrix grid = domain_grid(d, m);
  Eigen::VectorXd u;
  target.evaluate_batch(grid, u, nullptr);
  double umin = std::numeric_limits<double>::infinity();
  for (Eigen::Index k = 0; k < u.size(); ++k) umin = std::min(umin, u[k]);
  if (!std::isfinite(umin)) return {"", "samples.png skipped: no finite energy on the plot domain"};
  const double cap = 20.0;
  std::vector<double> z(static_cast<std::size_t>(u.size()));
  for (Eigen::Index k = 0; k < u.size(); ++k) z[static_cast<std::size_t>(k)] = std::isfinite(u[k]) ? std::min(u[k] - umin, cap) : cap;
  std::ostringstream s;
  s << grid_block("grid", grid, z, m) << samples_block("pts", samples, 20000) << modes_block(d);
  s << "set view map\nset contour base\nset cntrparam levels incremental 0.5,1.5," << cap
    << "\nunset surface\nset table $cont\nsplot $grid using 1:2:3 with lines notitle\nunset table\n"
    << "unset contour\nset surface\n" << range_text(d) << "set size ratio -1\n"
    << "set title " << gnuplot_string(title + ": final ensemble over u - min u (capped at 20)") << "\n"
    << gnuplot_caption(coverage_text(d, samples))
    << "set xlabel 'x1'\nset ylabel 'x2'\nset key top left opaque box\n"
    << "set palette defined (0 '#f7fbff', 1 '#c6dbef', 2 '#6baed6', 3 '#2171b5')\nset cblabel 'u - min u'\n"
    << "plot $grid using 1:2:3 with image notitle, $cont using 1:2 with lines lc rgb '#404040' lw 0.6 notitle, "
    << "$pts using 1:2 with points pt 7 ps 0.25 lc rgb '#c0202a' title 'samples'" << modes_clause(d) << "\n";
  return {s.str(), "", 820, 860};
}

std::string plot_2d_samples(const Target& target, const RowMatrix& samples, const fs::path& png) {
  const PlotResult r = draw_plot(samples_2d_script(target, samples, target.name()), png);
  return r.ok ? "ok" : r.note;
}

PlotScript density_comparison_script(const Target& target, const LogDensityFunction& log_q, const RowMatrix& samples,
                                     int grid_points) {
  if (target.dim() != 2 || samples.cols() != 2) return {"", "density.png skipped: target is not 2-D"};
  if (!any_finite(samples)) return {"", "density.png skipped: no finite samples"};
  const PlotDomain d = domain_for(target, samples);
  const int m = grid_points;
  const RowMatrix grid = domain_grid(d, m);
  Eigen::VectorXd u;
  target.evaluate_batch(grid, u, nullptr);
  const Eigen::VectorXd lq = log_q(grid);
  // log π = −u − log Z: the exact log Z where known, else normalized on the grid.
  const double cell = (d.x_hi - d.x_lo) * (d.y_hi - d.y_lo) / (static_cast<double>(m) * m);
  double log_z = 0.0;
  const bool exact_z = target.log_z().has_value();
  if (exact_z) {
    log_z = *target.log_z();
  } else {
    double top = -std::numeric_limits<double>::infinity(), sum = 0.0;
    for (Eigen::Index k = 0; k < u.size(); ++k) top = std::max(top, -u[k]);
    for (Eigen::Index k = 0; k < u.size(); ++k) sum += std::exp(-u[k] - top);
    log_z = top + std::log(sum * cell);
  }
  std::vector<double> lp(static_cast<std::size_t>(u.size())), lm(static_cast<std::size_t>(u.size()));
  double top = -std::numeric_limits<double>::infinity();
  for (Eigen::Index k = 0; k < u.size(); ++k) {
    lp[static_cast<std::size_t>(k)] = -u[k] - log_z;
    lm[static_cast<std::size_t>(k)] = lq[k];
    for (double v : {lp[static_cast<std::size_t>(k)], lm[static_cast<std::size_t>(k)]})
      if (std::isfinite(v)) top = std::max(top, v);
  }
  if (!std::isfinite(top)) return {"", "density.png skipped: no finite density on the plot domain"};
  const double floor = top - 12.0;  // one colour scale: the top 12 nats of either density
  for (auto* v : {&lp, &lm})
    for (double& x : *v) x = std::isfinite(x) ? std::max(x, floor) : floor;
  std::ostringstream s;
  s << grid_block("t", grid, lp, m) << grid_block("q", grid, lm, m) << samples_block("s", samples, 2000)
    << modes_block(d);
  s << range_text(d) << "set cbrange [" << floor << ":" << top << "]\n" << viridis_palette()
    << "set cblabel 'log density'\nset size ratio -1\nset xlabel 'x1'\nset ylabel 'x2'\nset key top left opaque box\n";
  s << "set multiplot layout 1,2 title " << gnuplot_string(target.name() + ": target vs model") << "\n";
  s << gnuplot_caption(coverage_text(d, samples));
  s << "set title " << gnuplot_string(std::string("target log pi") + (exact_z ? " (exact log Z)" : " (normalized on the grid)"))
    << "\nplot $t using 1:2:3 with image notitle" << modes_clause(d) << "\nunset label\n";
  s << "set title 'model log q, with samples'\nplot $q using 1:2:3 with image notitle, "
    << "$s using 1:2 with points pt 7 ps 0.3 lc rgb '#ff8c00' title 'samples'" << modes_clause(d) << "\nunset multiplot\n";
  return {s.str(), "", 1400, 680};
}

nlohmann::json write_run_plots(const RunDirectory& run, const RunOutputs& o) {
  const Target& target = *o.target;
  const std::string title = plot_title(o);
  // The scripts are built first and drawn concurrently (one gnuplot process each: its
  // start-up, not the drawing, is most of the time), recorded in order.
  std::vector<std::pair<std::string, PlotScript>> scripts;
  auto record = [&](const std::string& png, const PlotScript& script) { scripts.emplace_back(png, script); };
  if (o.md_trace) {
    record("energy_trace.png", md_trace_script(*o.md_trace, title));
  } else if (o.traces.count("mean_energy") && !o.trace_steps.empty()) {
    record("energy_trace.png", energy_trace_script(o));
  } else {
    record("energy_histogram.png", energy_histogram_script(*o.reduced_energies));
  }
  // Monitors of the interacting-particle flows (flows/interacting.hpp), one plot each.
  for (const std::string key : {"ksd", "bandwidth", "mmd2"}) {
    auto it = o.traces.find(key);
    if (it == o.traces.end() || o.trace_steps.empty() || it->second.size() != o.trace_steps.size()) continue;
    LinePlot p;
    p.title = title;
    p.xlabel = "step";
    p.ylabel = key;
    p.series = {{key, o.trace_steps, it->second}};
    p.log_y = key != "bandwidth";
    record(key + "_trace.png", {line_plot_script(p), ""});
  }
  if (target.dim() == 2) record("samples.png", samples_2d_script(target, *o.samples, title));
  std::vector<std::future<PlotResult>> drawn;
  for (const auto& [png, script] : scripts) {
    drawn.push_back(std::async(std::launch::async, [&run, png = png, script = script] {
      return draw_plot(script, run.path(png));
    }));
  }
  nlohmann::json plots = nlohmann::json::object();
  for (std::size_t k = 0; k < scripts.size(); ++k) {
    const PlotResult r = drawn[k].get();
    plots[scripts[k].first] = r.ok ? "ok" : r.note;
  }
  return plots;
}

}  // namespace boltzlab
