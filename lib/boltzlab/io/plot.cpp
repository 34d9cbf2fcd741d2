#include "boltzlab/io/plot.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <unistd.h>

namespace fs = std::filesystem;

namespace boltzlab {

bool gnuplot_available() {
  return std::system("command -v gnuplot >/dev/null 2>&1") == 0;
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

PlotResult run_gnuplot(const std::string& script, const fs::path& png, int width, int height) {
  PlotResult result;
  if (!gnuplot_available()) {
    result.note = "gnuplot not found (apt-get install gnuplot-nox): " + png.filename().string() + " skipped";
    return result;
  }
  const fs::path script_path = png.parent_path() / (png.stem().string() + ".gp.tmp");
  {
    std::ofstream out(script_path);
    if (!out) {
      result.note = "cannot write gnuplot script for " + png.filename().string();
      return result;
    }
    out << "set terminal pngcairo size " << width << "," << height << " enhanced font 'Sans,10'\n";
    out << "set output '" << png.string() << "'\n";
    out << script << "\nunset output\n";
  }
  const std::string cmd = "gnuplot '" + script_path.string() + "' >/dev/null 2>&1";
  const int rc = std::system(cmd.c_str());
  std::error_code ec;
  fs::remove(script_path, ec);
  if (rc != 0 || !fs::exists(png)) {
    // pngcairo may be absent in minimal gnuplot builds: retry with the plain png terminal.
    std::ofstream out(script_path);
    out << "set terminal png size " << width << "," << height << "\n";
    out << "set output '" << png.string() << "'\n" << script << "\nunset output\n";
    out.close();
    const int rc2 = std::system(("gnuplot '" + script_path.string() + "' >/dev/null 2>&1").c_str());
    fs::remove(script_path, ec);
    if (rc2 != 0 || !fs::exists(png)) {
      result.note = "gnuplot failed to draw " + png.filename().string();
      return result;
    }
  }
  result.ok = true;
  return result;
}

PlotResult plot_lines(const std::vector<Series>& series, const std::string& title,
                      const std::string& xlabel, const std::string& ylabel, const fs::path& png,
                      bool log_y) {
  std::ostringstream s;
  s << "set title '" << title << "'\nset xlabel '" << xlabel << "'\nset ylabel '" << ylabel
    << "'\nset grid\nset key top right\n";
  if (log_y) s << "set logscale y\n";
  for (std::size_t k = 0; k < series.size(); ++k) {
    std::vector<double> x = series[k].x;
    if (x.empty()) {
      x.resize(series[k].y.size());
      for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i);
    }
    s << gnuplot_datablock("s" + std::to_string(k), {x, series[k].y});
  }
  s << "plot ";
  for (std::size_t k = 0; k < series.size(); ++k) {
    if (k) s << ", ";
    s << "$s" << k << " using 1:2 with lines lw 2 title '" << series[k].title << "'";
  }
  s << "\n";
  return run_gnuplot(s.str(), png);
}

}  // namespace boltzlab
