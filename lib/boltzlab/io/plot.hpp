#pragma once
/// \file plot.hpp
/// PNG plots through gnuplot (Debian gnuplot-nox). When gnuplot is missing or
/// fails, the plot is skipped and a note is returned instead of an error: a run
/// never fails because a picture could not be drawn.
#include <filesystem>
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

/// Runs a gnuplot script. Data blocks are passed inline by the caller
/// (`$data << EOD ... EOD`). `png` is the output file; the script must not set
/// the terminal or output itself.
PlotResult run_gnuplot(const std::string& script, const std::filesystem::path& png,
                       int width = 800, int height = 600);

/// A line plot of one or more series against their index (or given x).
struct Series {
  std::string title;
  std::vector<double> x;  ///< empty: 0, 1, 2, ...
  std::vector<double> y;
};
PlotResult plot_lines(const std::vector<Series>& series, const std::string& title,
                      const std::string& xlabel, const std::string& ylabel,
                      const std::filesystem::path& png, bool log_y = false);

/// Inline data block "$name << EOD\n...EOD\n" from columns of equal length.
std::string gnuplot_datablock(const std::string& name, const std::vector<std::vector<double>>& columns);

}  // namespace boltzlab
