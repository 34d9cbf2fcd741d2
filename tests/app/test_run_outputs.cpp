// Tests of lib/boltzlab/app/run_outputs.*: the standard run-directory writer.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include <unistd.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/app/plot_reference.hpp"
#include "boltzlab/app/run_outputs.hpp"
#include "boltzlab/targets/gaussian.hpp"
#include "boltzlab/targets/gaussian_mixture.hpp"
#include "boltzlab/targets/muller_brown.hpp"
#include "boltzlab/targets/registry.hpp"

using namespace boltzlab;
namespace fs = std::filesystem;

namespace {
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// The two numbers of the script line "set <axis>range [lo:hi]".
std::pair<double, double> script_range(const std::string& script, const std::string& axis) {
  const std::string key = "set " + axis + "range [";
  const std::size_t at = script.find(key);
  REQUIRE(at != std::string::npos);
  const std::size_t colon = script.find(':', at), end = script.find(']', at);
  return {std::stod(script.substr(at + key.size(), colon - at - key.size())),
          std::stod(script.substr(colon + 1, end - colon - 1))};
}

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("boltzlab_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}
}  // namespace

TEST_CASE("run outputs: files, summary keys, frames and non-finite energies") {
  const GaussianTarget target(Eigen::Vector2d(0.0, 1.0), Eigen::Matrix2d::Identity());
  RowMatrix x(3, 2);
  x << 0.0, 1.0, 1.0, 2.0, -1.0, 0.5;
  Eigen::VectorXd u(3);
  u << 0.0, 1.0, std::numeric_limits<double>::infinity();
  Eigen::VectorXd log_q = -u, log_w = Eigen::VectorXd::Zero(3);
  std::vector<RowMatrix> frames = {x * 2.0, x};
  const fs::path out = temp_dir("run_outputs");
  {
    RunDirectory run(out);
    RunOutputs o;
    o.tool = "test-tool";
    o.target = &target;
    o.potential_name = "g2";
    o.options = {{"particles", 3}};
    o.seed = 5;
    o.threads = 2;
    o.samples = &x;
    o.reduced_energies = &u;
    o.log_q = &log_q;
    o.log_weights = &log_w;
    o.frames = &frames;
    o.counts = {{"energy_evaluations", 42}};
    o.statistics = {{"acceptance_rate", 0.5}};
    o.trace_steps = {0, 10};
    o.traces["mean_energy"] = {2.0, std::numeric_limits<double>::quiet_NaN()};
    o.plots = false;
    const Json s = write_run(run, o);
    run.commit();
    CHECK(s["counts"]["non_finite_energies"] == 1);
    CHECK(s["counts"]["energy_evaluations"] == 42);
    CHECK(s["energy"]["mean"].get<double>() == doctest::Approx(0.5));
    CHECK(s["trace"]["mean_energy"][1].is_null());  // NaN → null, with a note
  }
  for (const char* f : {"samples.npy", "reduced_energies.npy", "log_q.npy", "log_weights.npy", "frames.npy",
                        "summary.json"}) {
    CHECK(fs::exists(out / f));
  }
  const NpyArray fr = read_npy(out / "frames.npy");
  REQUIRE(fr.shape == std::vector<std::size_t>{2, 3, 2});
  CHECK(fr.data[1] == 2.0);            // frame 0 = 2x: x(0,1) = 1 → 2
  CHECK(fr.data[6 + 2] == 1.0);        // frame 1 = x: x(1,0) = 1
  const Json s = read_json_file(out / "summary.json");
  CHECK(s["format_version"] == kRunFormatVersion);
  CHECK(s["tool"] == "test-tool");
  CHECK(s["seed"] == 5);
  CHECK(s["threads"] == 2);
  CHECK(s["potential"]["name"] == "g2");
  CHECK(s["statistics"]["acceptance_rate"] == 0.5);
  CHECK(read_npy_vector(out / "reduced_energies.npy")[2] == std::numeric_limits<double>::infinity());
  bool noted = false;
  for (const auto& n : s["notes"]) noted |= n.get<std::string>().find("not finite") != std::string::npos;
  CHECK(noted);
  fs::remove_all(out);
}

TEST_CASE("run outputs: inconsistent outputs are rejected before anything is written") {
  const GaussianTarget target(Eigen::Vector2d(0.0, 1.0), Eigen::Matrix2d::Identity());
  RowMatrix x = RowMatrix::Zero(3, 2);
  Eigen::VectorXd u = Eigen::VectorXd::Zero(2);
  const fs::path out = temp_dir("run_outputs_bad");
  {
    RunDirectory run(out);
    RunOutputs o;
    o.target = &target;
    o.samples = &x;
    o.reduced_energies = &u;
    CHECK_THROWS_AS(write_run(run, o), DomainError);
    o.reduced_energies = nullptr;
    CHECK_THROWS_AS(write_run(run, o), DomainError);
  }
  CHECK_FALSE(fs::exists(out));  // never committed, staging removed
}

TEST_CASE("plot reference: exact mean energies and stated domains") {
  // Mueller-Brown at beta = 0.1: <u> = -13.4934 and min u = -14.6699 by an independent
  // 500 x 500 midpoint quadrature on a larger box [-3, 2.5] x [-2, 3.5] (the stated
  // window holds all but 2e-6 of the mass).
  const MullerBrownTarget mb(0.1);
  const EnergyReference r = energy_reference(mb);
  REQUIRE(r.mean.has_value());
  CHECK(*r.mean == doctest::Approx(-13.4934).epsilon(1e-4));
  CHECK(*r.minimum == doctest::Approx(-14.6699).epsilon(1e-4));
  // Gaussian in any dimension: <u> = u(mean) + d/2 (u(mean) = 0 here).
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(10);
  const GaussianTarget g10(mean, Eigen::MatrixXd::Identity(10, 10) * 2.0);
  CHECK(*energy_reference(g10).mean == doctest::Approx(5.0));
  // A 3-D mixture states nothing.
  const GaussianMixtureTarget g3({1.0}, {Eigen::Vector3d(0, 0, 0)}, {Eigen::Matrix3d::Identity()});
  CHECK_FALSE(energy_reference(g3).mean.has_value());
  CHECK_FALSE(plot_domain(g3).has_value());
  // GMM-40: the domain holds every mean with 5 sd to spare.
  const Potential gmm = load_potential(fs::path(BOLTZLAB_SOURCE_DIR) / "potentials" / "gmm40.json");
  const auto* mix = dynamic_cast<const GaussianMixtureTarget*>(gmm.target.get());
  REQUIRE(mix != nullptr);
  const std::optional<PlotDomain> d = plot_domain(*mix);
  REQUIRE(d.has_value());
  REQUIRE(d->modes.size() == 40);
  for (const auto& m : mix->means()) {
    CHECK(m[0] - 5 * 1.3132616875 >= d->x_lo - 1e-9);
    CHECK(m[1] + 5 * 1.3132616875 <= d->y_hi + 1e-9);
  }
}

TEST_CASE("run outputs: energy trace on a log axis with the exact <u> and the warm-up marked") {
  // A Mueller-Brown trace 1454 -> 1435 looks converged on a linear axis; here it is
  // drawn as <u> - u_min on a log axis next to the exact <u> - u_min = 1.18.
  const MullerBrownTarget mb(0.1);
  RowMatrix x = RowMatrix::Zero(2, 2);
  Eigen::VectorXd u(2);
  u << -14.0, 2800.0;
  RunOutputs o;
  o.tool = "wgf-relax";
  o.target = &mb;
  o.samples = &x;
  o.reduced_energies = &u;
  o.trace_steps = {0, 100, 200, 300, 400};
  o.traces["mean_energy"] = {1454.0, 1445.0, 1440.0, 1437.0, 1435.0};
  o.trace_markers.warmup_steps = 100;
  o.trace_markers.anneal_steps = 50;
  const PlotScript p = energy_trace_script(o);
  REQUIRE(p.skipped.empty());
  CHECK(contains(p.script, "set logscale y\n"));
  CHECK(contains(p.script, "set title 'wgf-relax: muller_brown: mean reduced energy'"));
  // The first trace value, shifted by u_min = -14.6699..., is in the data.
  CHECK(contains(p.script, "\n0 1468.66"));
  const std::size_t ref = p.script.find("with lines dt 4");
  REQUIRE(ref != std::string::npos);
  const std::size_t comma = p.script.rfind(", ", ref);
  CHECK(std::stod(p.script.substr(comma + 2)) == doctest::Approx(1.1765).epsilon(1e-3));
  CHECK(contains(p.script, "title 'exact <u> - u_min (<u> = -13.49"));
  CHECK(contains(p.script, "title 'end of warm-up (step 100)'"));
  CHECK(contains(p.script, "title 'beta reaches 1 (step 50)'"));
  CHECK(contains(p.script, "$p0sm0 << EOD\n100 "));

  // Without an exact <u>, the caption says so, and no reference line is drawn.
  const GaussianMixtureTarget g3({1.0}, {Eigen::Vector3d(0, 0, 0)}, {Eigen::Matrix3d::Identity()});
  RowMatrix x3 = RowMatrix::Zero(2, 3);
  Eigen::VectorXd u3(2);
  u3 << 4.0, 5.0;
  o.target = &g3;
  o.samples = &x3;
  o.reduced_energies = &u3;
  o.traces["mean_energy"] = {9.0, 6.0, 5.0, 4.6, 4.5};
  o.trace_markers = {};
  const PlotScript q = energy_trace_script(o);
  CHECK(contains(q.script, "no exact <u> known for gaussian_mixture"));
  CHECK(contains(q.script, "u_min = 4)"));
  CHECK_FALSE(contains(q.script, "dt 4"));
  CHECK_FALSE(contains(q.script, "warm-up"));
}

TEST_CASE("run outputs: MD trace shows E in kJ/mol and the kinetic temperature against ps") {
  MdTrace t;
  t.energy = {{"replica 0", {0.05, 0.1, 0.15}, {-80.0, -75.5, -78.2}}};
  t.temperature = {{"replica 0", {0.05, 0.1, 0.15}, {290.0, 310.0, 301.0}}};
  t.bath_temperatures = {300.0};
  t.caption = {"t = 0: start of production"};
  const PlotScript p = md_trace_script(t, "md-reference: alanine_dipeptide_vacuum");
  REQUIRE(p.skipped.empty());
  CHECK(contains(p.script, "set multiplot layout 2,1 title 'md-reference: alanine_dipeptide_vacuum'"));
  CHECK(contains(p.script, "set ylabel 'E (kJ/mol)'"));
  CHECK(contains(p.script, "set xlabel 'production time (ps)'"));
  CHECK(contains(p.script, "set ylabel 'T (K)'"));
  CHECK(contains(p.script, "300 with lines dt 4 lw 2 lc rgb '#000000' title 'bath 300 K'"));
  CHECK(contains(p.script, "$p0s0 << EOD\n0.05 -80\n"));
  CHECK_FALSE(contains(p.script, "logscale y\n"));
  t.temperature.clear();
  CHECK(contains(md_trace_script(t, "replica-exchange").script, "set multiplot layout 1,1"));
}

TEST_CASE("run outputs: samples and density plots are drawn on the target's whole domain") {
  // GMM-40 samples collapsed onto 2 of its 40 modes: a window fitted to the samples
  // would show those 2 modes only.
  const Potential gmm = load_potential(fs::path(BOLTZLAB_SOURCE_DIR) / "potentials" / "gmm40.json");
  const auto& mix = dynamic_cast<const GaussianMixtureTarget&>(*gmm.target);
  RowMatrix x(200, 2);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const Eigen::VectorXd& m = mix.means()[static_cast<std::size_t>(i % 2)];
    x(i, 0) = m[0] + 0.01 * static_cast<double>(i % 7);
    x(i, 1) = m[1] - 0.01 * static_cast<double>(i % 5);
  }
  double lo = 1e300, hi = -1e300;
  for (const auto& m : mix.means()) {
    lo = std::min(lo, m[0]);
    hi = std::max(hi, m[0]);
  }
  // A model that is one Gaussian at the first mode (log q of N(m0, I)).
  const Eigen::VectorXd m0 = mix.means()[0];
  const LogDensityFunction log_q = [m0](const RowMatrix& g) {
    Eigen::VectorXd out(g.rows());
    for (Eigen::Index k = 0; k < g.rows(); ++k)
      out[k] = -0.5 * (g.row(k).transpose() - m0).squaredNorm() - std::log(2 * 3.14159265358979);
    return out;
  };
  const PlotScript d = density_comparison_script(mix, log_q, x, 40);
  REQUIRE(d.skipped.empty());
  const auto [x0, x1] = script_range(d.script, "x");
  CHECK(x0 < lo - 4 * 1.31);
  CHECK(x1 > hi + 4 * 1.31);
  CHECK(contains(d.script, "set multiplot layout 1,2"));
  CHECK(contains(d.script, "samples within 2 sd of 2 of 40 modes"));
  CHECK(contains(d.script, "title '40 known modes'"));
  CHECK(contains(d.script, "set palette defined (0 '#440154'"));
  const PlotScript s = samples_2d_script(mix, x, "wgf-relax: gmm40");
  REQUIRE(s.skipped.empty());
  const auto [s0, s1] = script_range(s.script, "x");
  CHECK(s0 == doctest::Approx(x0));
  CHECK(s1 == doctest::Approx(x1));
  CHECK(contains(s.script, "samples within 2 sd of 2 of 40 modes"));
}
