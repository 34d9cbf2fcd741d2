#include "boltzlab/io/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include <unistd.h>

#include "boltzlab/core/error.hpp"

namespace fs = std::filesystem;

namespace boltzlab {

namespace {

/// Line colours (Paul Tol's "bright" qualitative scheme, colour-blind safe).
const char* const kColours[] = {"#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb"};
constexpr std::size_t kColourCount = sizeof(kColours) / sizeof(kColours[0]);

/// Writes one panel's settings and plot command (its data blocks $p<panel>s<k> are
/// written before): the settings a previous panel may have left are reset first.
/// "[lo:hi]" with * for a NaN end.
std::string range_text(double lo, double hi) {
  std::ostringstream s;
  s.precision(10);
  s << "[";
  if (std::isfinite(lo)) s << lo; else s << "*";
  s << ":";
  if (std::isfinite(hi)) s << hi; else s << "*";
  s << "]";
  return s.str();
}

void write_panel(std::ostringstream& s, const LinePlot& p, std::size_t panel) {
  s << "unset logscale\nset grid\nset key top right opaque box\n";
  s << "set xrange " << range_text(p.x_lo, p.x_hi) << "\nset yrange " << range_text(p.y_lo, p.y_hi) << "\n";
  s << "set title " << gnuplot_string(p.title) << "\nset xlabel " << gnuplot_string(p.xlabel) << "\nset ylabel "
    << gnuplot_string(p.ylabel) << "\n";
  if (p.log_x) s << "set logscale x\n";
  if (p.log_y) s << "set logscale y\n";
  const std::string prefix = "$p" + std::to_string(panel) + "s";
  s << "plot ";
  bool first = true;
  for (std::size_t k = 0; k < p.series.size(); ++k) {
    const Series& se = p.series[k];
    s << (first ? "" : ", ") << prefix << k << " using 1:2 with "
      << (se.y.size() <= kMaxPointsWithMarkers ? "linespoints pt 7 ps 0.7" : "lines") << " lw 2 lc rgb '"
      << kColours[k % kColourCount] << "' title " << gnuplot_string(se.title);
    first = false;
  }
  // Markers: vertical lines through the whole panel, named in the key.
  for (std::size_t m = 0; m < p.markers.size(); ++m) {
    s << (first ? "" : ", ") << prefix << "m" << m << " using 1:2 with lines dt 2 lw 1.5 lc rgb '#555555' title "
      << gnuplot_string(p.markers[m].label);
    first = false;
  }
  for (const ReferenceLine& r : p.references) {
    s << (first ? "" : ", ") << r.at << " with lines dt 4 lw 2 lc rgb '#000000' title " << gnuplot_string(r.label);
    first = false;
  }
  s << "\n";
}

/// The data blocks of one panel: its series, and per marker a vertical segment
/// spanning the finite y range of the series (with room for the log axis).
void write_panel_data(std::ostringstream& s, const LinePlot& p, std::size_t panel) {
  const std::string prefix = "p" + std::to_string(panel) + "s";
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (std::size_t k = 0; k < p.series.size(); ++k) {
    std::vector<double> x = p.series[k].x;
    if (x.empty()) {
      x.resize(p.series[k].y.size());
      for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i);
    }
    s << gnuplot_datablock(prefix + std::to_string(k), {x, p.series[k].y});
    for (double y : p.series[k].y) {
      if (std::isfinite(y) && (!p.log_y || y > 0)) {
        lo = std::min(lo, y);
        hi = std::max(hi, y);
      }
    }
  }
  for (const ReferenceLine& r : p.references) {
    if (std::isfinite(r.at) && (!p.log_y || r.at > 0)) {
      lo = std::min(lo, r.at);
      hi = std::max(hi, r.at);
    }
  }
  if (!(lo <= hi)) lo = hi = p.log_y ? 1.0 : 0.0;
  for (std::size_t m = 0; m < p.markers.size(); ++m) {
    const double at = p.markers[m].at;
    s << gnuplot_datablock(prefix + "m" + std::to_string(m), {{at, at}, {lo, hi}});
  }
}

}  // namespace

bool gnuplot_available() {
  return std::system("command -v gnuplot >/dev/null 2>&1") == 0;
}

std::string gnuplot_string(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += "''";
    else if (c == '\n') out += ' ';  // a single-quoted gnuplot string cannot span lines
    else out += c;
  }
  return out + "'";
}

std::string gnuplot_preamble(const fs::path& png, int width, int height, bool cairo) {
  std::ostringstream s;
  s << "set terminal " << (cairo ? "pngcairo" : "png") << " size " << width << "," << height << " noenhanced"
    << (cairo ? " font 'Sans,10'" : "") << "\n";
  s << "set output " << gnuplot_string(png.string()) << "\n";
  return s.str();
}

std::string gnuplot_datablock(const std::string& name, const std::vector<std::vector<double>>& columns) {
  std::ostringstream os;
  os.precision(10);
  os << "$" << name << " << EOD\n";
  const std::size_t n = columns.empty() ? 0 : columns[0].size();
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t c = 0; c < columns.size(); ++c) {
      const double v = columns[c][i];
      if (c) os << ' ';
      if (std::isfinite(v)) os << v; else os << "NaN";
    }
    os << '\n';
  }
  os << "EOD\n";
  return os.str();
}

std::string gnuplot_caption(const std::vector<std::string>& lines) {
  std::ostringstream s;
  s << "unset label\n";
  for (std::size_t k = 0; k < lines.size(); ++k) {
    s << "set label " << 100 + k << " " << gnuplot_string(lines[k]) << " at character 1, character "
      << static_cast<double>(lines.size() - k) - 0.4 << " left font ',9'\n";
  }
  s << "set bmargin " << 4 + lines.size() << "\n";
  return s.str();
}

std::string viridis_palette() {
  // viridis at 0, 1/8, ..., 1 (matplotlib's _viridis_data, rounded to 8 bits).
  return "set palette defined (0 '#440154', 1 '#472d7b', 2 '#3b528b', 3 '#2c728e', 4 '#21918c', "
         "5 '#28ae80', 6 '#5ec962', 7 '#addc30', 8 '#fde725')\n";
}

PlotResult run_gnuplot(const std::string& script, const fs::path& png, int width, int height) {
  PlotResult result;
  if (!gnuplot_available()) {
    result.note = "gnuplot not found (apt-get install gnuplot-nox): " + png.filename().string() + " skipped";
    return result;
  }
  const fs::path script_path = png.parent_path() / (png.stem().string() + ".gp.tmp");
  // pngcairo may be absent in minimal gnuplot builds: on failure, retry with the plain png terminal.
  for (const bool cairo : {true, false}) {
    {
      std::ofstream out(script_path);
      if (!out) {
        result.note = "cannot write gnuplot script for " + png.filename().string();
        return result;
      }
      out << gnuplot_preamble(png, width, height, cairo) << script << "\nunset output\n";
    }
    const int rc = std::system(("gnuplot '" + script_path.string() + "' >/dev/null 2>&1").c_str());
    std::error_code ec;
    fs::remove(script_path, ec);
    if (rc == 0 && fs::exists(png)) {
      result.ok = true;
      return result;
    }
  }
  result.note = "gnuplot failed to draw " + png.filename().string();
  return result;
}

PlotResult draw_plot(const PlotScript& plot, const fs::path& png) {
  if (!plot.skipped.empty()) return {false, plot.skipped};
  return run_gnuplot(plot.script, png, plot.width, plot.height);
}

std::string line_plot_script(const LinePlot& plot) {
  std::ostringstream s;
  write_panel_data(s, plot, 0);
  if (!plot.caption.empty()) s << gnuplot_caption(plot.caption);
  write_panel(s, plot, 0);
  return s.str();
}

std::string line_panels_script(const std::vector<LinePlot>& panels, const std::string& title) {
  std::ostringstream s;
  for (std::size_t k = 0; k < panels.size(); ++k) write_panel_data(s, panels[k], k);
  std::vector<std::string> caption;
  for (const LinePlot& p : panels) caption.insert(caption.end(), p.caption.begin(), p.caption.end());
  s << "set multiplot layout " << panels.size() << ",1 title " << gnuplot_string(title) << "\n";
  for (std::size_t k = 0; k < panels.size(); ++k) {
    // The caption goes under the last panel: its labels are drawn once, with that panel.
    if (k + 1 == panels.size() && !caption.empty()) s << gnuplot_caption(caption);
    write_panel(s, panels[k], k);
  }
  s << "unset multiplot\n";
  return s.str();
}

PlotResult plot_lines(const LinePlot& plot, const fs::path& png, int width, int height) {
  return run_gnuplot(line_plot_script(plot), png, width, height);
}

PlotResult plot_lines(const std::vector<Series>& series, const std::string& title,
                      const std::string& xlabel, const std::string& ylabel, const fs::path& png,
                      bool log_y) {
  LinePlot p;
  p.title = title;
  p.xlabel = xlabel;
  p.ylabel = ylabel;
  p.series = series;
  p.log_y = log_y;
  return plot_lines(p, png);
}

std::size_t histogram_bins_per_axis(double effective_samples, std::size_t lo, std::size_t hi) {
  if (lo < 1 || lo > hi) {
    throw DomainError("histogram_bins_per_axis: bounds [" + std::to_string(lo) + ", " + std::to_string(hi) +
                      "] must satisfy 1 <= lo <= hi");
  }
  const double n = std::isfinite(effective_samples) ? std::max(effective_samples, 0.0) : 0.0;
  const double b = std::min(std::round(std::sqrt(n / 10.0)), static_cast<double>(hi));
  return std::clamp(static_cast<std::size_t>(b), lo, hi);
}

}  // namespace boltzlab
