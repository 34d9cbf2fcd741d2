// Tests of lib/boltzlab/io/plot.*: the gnuplot scripts the plot helpers write.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/plot.hpp"

using namespace boltzlab;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// The number of times `part` occurs in `text`.
std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

}  // namespace

TEST_CASE("plot: titles are drawn as written (noenhanced) and quoted safely") {
  // Enhanced text would draw "muller_brown" as "muller" with a subscript "b" + "rown".
  const std::string preamble = gnuplot_preamble("/tmp/x.png", 800, 600);
  CHECK(contains(preamble, "noenhanced"));
  CHECK_FALSE(contains(preamble, " enhanced"));
  CHECK(contains(gnuplot_preamble("/tmp/x.png", 800, 600, false), "noenhanced"));
  CHECK(gnuplot_string("muller_brown") == "'muller_brown'");
  CHECK(gnuplot_string("it's x^2") == "'it''s x^2'");
  CHECK(gnuplot_string("two\nlines") == "'two lines'");

  LinePlot p;
  p.title = "wgf-relax: muller_brown's trace";
  p.xlabel = "step";
  p.ylabel = "<u>";
  p.series = {{"mean_energy", {0, 1, 2}, {3, 2, 1}}};
  const std::string s = line_plot_script(p);
  CHECK(contains(s, "set title 'wgf-relax: muller_brown''s trace'"));
  CHECK(contains(s, "title 'mean_energy'"));
  // gnuplot accepts the quoted title (an unescaped quote would end the string early).
  if (gnuplot_available()) {
    const fs::path png = fs::temp_directory_path() / ("boltzlab_plot_quote_" + std::to_string(::getpid()) + ".png");
    const PlotResult r = plot_lines(p, png);
    CHECK(r.ok);
    CHECK(fs::file_size(png) > 0);
    fs::remove(png);
  }
}

TEST_CASE("plot: a series of a single point is drawn with a marker, long series as lines") {
  // training_ess.png of a run shorter than the evaluation interval holds one evaluation:
  // "with lines" draws nothing for one point.
  LinePlot p;
  p.series = {{"running ESS", {20}, {0.4}}};
  const std::string one = line_plot_script(p);
  CHECK(contains(one, "$p0s0 using 1:2 with linespoints"));
  std::vector<double> y(kMaxPointsWithMarkers + 1, 1.0);
  p.series = {{"long", {}, y}};
  const std::string many = line_plot_script(p);
  CHECK(contains(many, "$p0s0 using 1:2 with lines"));
  CHECK_FALSE(contains(many, "linespoints"));
}

TEST_CASE("plot: log axis, vertical markers and reference lines") {
  LinePlot p;
  p.title = "trace";
  p.series = {{"<u> - u_min", {0, 100, 200, 300}, {1468.7, 1456.0, 1451.1, 1449.7}}};
  p.log_y = true;
  p.markers = {{100.0, "end of warm-up (step 100)"}};
  p.references = {{1.1765, "exact <u> = -13.4934"}};
  const std::string s = line_plot_script(p);
  CHECK(contains(s, "set logscale y\n"));
  CHECK_FALSE(contains(s, "set logscale x"));
  // The marker is a vertical segment at x = 100 spanning the data and the reference line.
  CHECK(contains(s, "$p0sm0 << EOD\n100 1.1765\n100 1468.7\nEOD\n"));
  CHECK(contains(s, "title 'end of warm-up (step 100)'"));
  CHECK(contains(s, ", 1.1765 with lines dt 4 lw 2 lc rgb '#000000' title 'exact <u> = -13.4934'"));
  // Without the options, none of it.
  LinePlot plain;
  plain.series = p.series;
  const std::string t = line_plot_script(plain);
  CHECK_FALSE(contains(t, "logscale y\n"));
  CHECK(count(t, " << EOD") == 1);
}

TEST_CASE("plot: panels of a multiplot reset the previous panel's log axes") {
  LinePlot a, b;
  a.series = {{"E", {0, 1}, {1, 2}}};
  a.log_y = true;
  b.series = {{"T", {0, 1}, {300, 301}}};
  const std::string s = line_panels_script({a, b}, "md");
  CHECK(contains(s, "set multiplot layout 2,1 title 'md'"));
  CHECK(count(s, "unset logscale\n") == 2);
  CHECK(s.find("set logscale y") < s.find("$p1s0 using"));
  CHECK(count(s, "set logscale y") == 1);
}

TEST_CASE("plot: viridis palette") {
  const std::string v = viridis_palette();
  CHECK(contains(v, "set palette defined (0 '#440154'"));
  CHECK(contains(v, "8 '#fde725')"));
}

TEST_CASE("plot: 2-D histogram bins per axis follow the effective sample size") {
  // b = round(sqrt(n / 10)) in [8, 64]: ~10 samples per bin where the samples are.
  CHECK(histogram_bins_per_axis(512) == 8);  // 50 x 50 bins would hold 0.2 samples each
  CHECK(histogram_bins_per_axis(4000) == 20);
  CHECK(histogram_bins_per_axis(2760) == 17);
  CHECK(histogram_bins_per_axis(1e5) == 64);
  CHECK(histogram_bins_per_axis(0) == 8);
  CHECK(histogram_bins_per_axis(1e300) == 64);
  CHECK(histogram_bins_per_axis(std::nan("")) == 8);
  CHECK(histogram_bins_per_axis(4000, 4, 10) == 10);
  CHECK_THROWS_AS(histogram_bins_per_axis(100, 9, 8), DomainError);
  CHECK_THROWS_AS(histogram_bins_per_axis(100, 0, 8), DomainError);
}
