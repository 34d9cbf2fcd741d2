#pragma once
/// \file plot.hpp
/// PNG plots through gnuplot (Debian gnuplot-nox). When gnuplot is missing or
/// fails, the plot is skipped and a note is returned instead of an error: a run
/// never fails because a picture could not be drawn.
///
/// Every plot is a script (text) first and a PNG second: the `*_script` functions build
/// the gnuplot commands without running anything, so what a plot states (scales,
/// reference lines, markers, colours) is testable; run_gnuplot() draws a script.
/// Scripts run with `noenhanced` text: a title such as "muller_brown" is drawn as
/// written (enhanced text would make "_b" a subscript), and gnuplot_string() quotes
/// any text for the script.
#include <cstddef>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

namespace boltzlab {

/// Result of a plot request: ok, or the reason it was skipped.
struct PlotResult {
  bool ok = false;
  std::string note;  ///< why the plot was skipped (empty when ok)
};

/// True when `gnuplot` is on PATH.
bool gnuplot_available();

/// `text` as a gnuplot single-quoted string literal, e.g. it's → 'it''s' (inside
/// single quotes gnuplot reads '' as one quote and nothing else specially).
std::string gnuplot_string(const std::string& text);

/// The lines run_gnuplot() puts before a script: the terminal (pngcairo, or the plain
/// png terminal when `cairo` is false) with noenhanced text, and the output file.
std::string gnuplot_preamble(const std::filesystem::path& png, int width, int height, bool cairo = true);

/// Runs a gnuplot script. Data blocks are passed inline by the caller
/// (`$data << EOD ... EOD`). `png` is the output file; the script must not set
/// the terminal or output itself (gnuplot_preamble() does).
PlotResult run_gnuplot(const std::string& script, const std::filesystem::path& png,
                       int width = 800, int height = 600);

/// Inline data block "$name << EOD\n...EOD\n" from columns of equal length
/// (non-finite values are written as NaN, which gnuplot leaves out).
std::string gnuplot_datablock(const std::string& name, const std::vector<std::vector<double>>& columns);

/// Caption lines as labels at the bottom left of the canvas (character units, so they
/// keep their place whatever the canvas size; the first line on top), after `unset
/// label`, and the bottom margin that makes room for them below the x label. In a
/// multiplot, set it before the plot that should carry the caption.
std::string gnuplot_caption(const std::vector<std::string>& lines);

/// The perceptual, colour-blind-safe colormap viridis (van der Walt & Smith, matplotlib
/// 1.5, 2015) as `set palette defined (...)` through 9 of its colours at equal steps.
std::string viridis_palette();

/// A script ready for run_gnuplot(), or why the plot is skipped.
struct PlotScript {
  std::string script;   ///< gnuplot commands without preamble (empty when skipped)
  std::string skipped;  ///< why there is no plot (empty when there is one)
  int width = 800;
  int height = 600;
};

/// Draws `plot` into `png` (a skipped plot gives its reason as the note).
PlotResult draw_plot(const PlotScript& plot, const std::filesystem::path& png);

/// A line of a plot: y against x (x empty: 0, 1, 2, ...).
struct Series {
  std::string title;
  std::vector<double> x;  ///< empty: 0, 1, 2, ...
  std::vector<double> y;
};

/// A vertical marker at x = `at` (e.g. the end of the warm-up), named in the key.
struct VerticalMarker {
  double at = 0.0;
  std::string label;
};

/// A horizontal reference line at y = `at` (e.g. an exact mean), named in the key.
struct ReferenceLine {
  double at = 0.0;
  std::string label;
};

/// One panel of line plots: series, optional log axes, markers and reference lines.
struct LinePlot {
  std::string title;
  std::string xlabel;
  std::string ylabel;
  std::vector<Series> series;
  bool log_x = false;
  bool log_y = false;
  /// Axis ranges; a NaN end is autoscaled.
  double x_lo = std::numeric_limits<double>::quiet_NaN(), x_hi = std::numeric_limits<double>::quiet_NaN();
  double y_lo = std::numeric_limits<double>::quiet_NaN(), y_hi = std::numeric_limits<double>::quiet_NaN();
  std::vector<VerticalMarker> markers;
  std::vector<ReferenceLine> references;
  /// Lines of text at the bottom of the figure (a multiplot gathers those of its panels).
  std::vector<std::string> caption;
};

/// Series with at most this many points are drawn with point markers as well, so a
/// series of one point (a single evaluation) is visible.
inline constexpr std::size_t kMaxPointsWithMarkers = 50;

/// The gnuplot script of one panel (without preamble): data blocks, then settings,
/// then the plot command. On a log axis, values ≤ 0 are left out by gnuplot.
std::string line_plot_script(const LinePlot& plot);

/// The script of several panels stacked vertically (a multiplot) under `title`.
std::string line_panels_script(const std::vector<LinePlot>& panels, const std::string& title);

/// Draws line_plot_script(plot) into `png`.
PlotResult plot_lines(const LinePlot& plot, const std::filesystem::path& png, int width = 800, int height = 600);

/// A line plot of one or more series against their index (or given x).
PlotResult plot_lines(const std::vector<Series>& series, const std::string& title,
                      const std::string& xlabel, const std::string& ylabel,
                      const std::filesystem::path& png, bool log_y = false);

/// Bins per axis of a 2-D histogram map of `effective_samples` samples (the Kish ESS
/// for weighted samples): b = round(√(n/10)), clamped to [lo, hi]. With b² bins, a
/// sample spread evenly over the square puts ≈ 10 samples in each bin, so the map's
/// relative noise per bin is ≈ 1/√10 ≈ 0.3 (F to ≈ ±0.3 kT) where the samples are.
/// \throws DomainError when lo < 1 or lo > hi.
std::size_t histogram_bins_per_axis(double effective_samples, std::size_t lo = 8, std::size_t hi = 64);

}  // namespace boltzlab
