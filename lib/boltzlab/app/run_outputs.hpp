#pragma once
/// \file run_outputs.hpp
/// The standard run-directory writer of the sampling tools (wgf-relax, bg-sample,
/// md-reference, replica-exchange; iw-diag writes its own report, app/iw_diag.hpp). A tool fills a RunOutputs with what it ran and
/// produced, and calls write_run() on its RunDirectory; then commit():
///
///     RunDirectory run(out);                 // fails early if `out` is unwritable
///     ... compute ...
///     RunOutputs o;
///     o.tool = "bg-sample";  o.target = &target;  o.potential_path = path;
///     o.options = {{"particles", n}, ...};  o.seed = seed;
///     o.samples = &x;  o.reduced_energies = &u;  o.log_q = &log_q;  o.log_weights = &log_w;
///     o.statistics = {{"acceptance_rate", 0.57}};  o.timings = {{"sampling", 1.2}};
///     o.trace_steps = steps;  o.traces["mean_energy"] = mean_u;   // optional
///     nlohmann::json summary = write_run(run, o);
///     run.commit();
///
/// Files written (the run-directory contract, see README "Run directory"):
///   samples.npy           N×d float64, one configuration per row (target units)
///   reduced_energies.npy  N float64, u(x_i) = E/kT (+inf where not finite)
///   log_q.npy             N, log density of the sampler at x_i (when given)
///   log_weights.npy       N, log w_i = −u(x_i) − log q(x_i) (when given)
///   frames.npy            F×N×d, recorded frames (when given and F > 0)
///   summary.json          see below
///   energy_trace.png      MD runs (RunOutputs::md_trace): E (kJ/mol) and kinetic T (K)
///                         against time (ps); else with a "mean_energy" trace: ⟨u⟩ − min u
///                         on a log axis against the step, with the exact ⟨u⟩ where known
///                         (plot_reference.hpp) and the warm-up marked; else
///                         energy_histogram.png of the final energies
///   ksd_trace.png, bandwidth_trace.png, mmd2_trace.png
///                         monitors of the interacting-particle flows, when traced
///   samples.png           2-D targets: the final ensemble over energy contours, on the
///                         target's stated domain (plot_domain()) with its known modes
///   molecular files       through write_molecular_outputs() when target has a topology
///
/// summary.json schema: the one definition of its keys. A tool sets the fields of
/// RunOutputs; write_run() writes the keys below and nothing else. Changing a key's name,
/// type or meaning, or removing one, bumps kRunFormatVersion (app/run_directory.hpp);
/// adding a key does not.
///
///   key                 type    meaning
///   format_version      int     kRunFormatVersion
///   tool                string  RunOutputs::tool, e.g. "wgf-relax"
///   potential           object  {path, name, target: Target::describe(), dim,
///                               degrees_of_freedom, log_z (null when unknown)}
///   options             object  the tool's resolved options (RunOutputs::options)
///   seed                int     run seed
///   threads             int     worker threads used
///   counts              object  {particles, dim, non_finite_energies (of the final
///                               energies)} + the tool's counts (RunOutputs::counts)
///   timings             object  seconds per phase (RunOutputs::timings) + "write"
///   statistics          object  sampler statistics, e.g. acceptance_rate (RunOutputs::statistics)
///   energy              object  {mean, std, min, max} over the finite final reduced energies
///   trace               object  {step: [...], <series>: [...]} ({} when not traced)
///   plots               object  {png name: "ok" or why it is missing}
///   files               array   names of the files written, summary.json last
///   notes               array   human-readable remarks (strings)
///   molecular           object  targets with a topology only: write_molecular_outputs()
///
/// Tool keys at top level (RunOutputs::extra; the tool writes nothing else there):
///   interacting         bool    flows only (wgf-relax): whether the flow's particles
///                               interact (iw-diag uses it for R̂)
///   md_files            object  md-reference: {file name: what it holds} of its extra arrays
///   replica_exchange_files  object  replica-exchange: {file name: what it holds} of its
///                       extra arrays (app/replica_exchange_run.hpp)
///   conformations       object  replica-exchange, bg-sample (molecules with backbone φ/ψ): basin
///                       populations per residue (estimators/conformations.hpp)
///   bg-sample           the generator's summary entries besides tool/seed/threads
///                       (model, generator, base, importance, training, samples, ...;
///                       app/bg_run.cpp)
///
/// JSON has no NaN/inf: such numbers are written as null and a note says so.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/io/plot.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab {

/// Markers of energy_trace.png, in trace steps (0: no marker).
struct TraceMarkers {
  double warmup_steps = 0.0;  ///< the first steps are warm-up (burn-in, step-size adaptation)
  double anneal_steps = 0.0;  ///< β reaches 1 at this step (annealed runs)
};

/// An MD trace (md-reference, replica-exchange): energy_trace.png shows E (kJ/mol) and,
/// when given, the kinetic temperature (K) against the production time (ps).
struct MdTrace {
  std::vector<Series> energy;             ///< E (kJ/mol) against t (ps), one per replica or temperature
  std::vector<Series> temperature;        ///< kinetic T (K) against t (ps); may be empty
  std::vector<double> bath_temperatures;  ///< K: reference lines of the temperature panel
  std::vector<std::string> caption;       ///< lines, e.g. what ran before t = 0 and was discarded
};

/// What a tool ran and produced. Pointers are not owned and must outlive write_run();
/// null means "not produced" (samples and reduced_energies are required).
struct RunOutputs {
  std::string tool;                         ///< e.g. "wgf-relax"
  std::filesystem::path potential_path;     ///< potential file (may be empty)
  std::string potential_name;               ///< display name (defaults to target->name())
  const Target* target = nullptr;           ///< required: describes the run, drives the plots
  nlohmann::json options = nlohmann::json::object();  ///< the tool's resolved options
  std::uint64_t seed = 0;                   ///< run seed
  int threads = 0;                          ///< thread count (0: num_threads())

  const RowMatrix* samples = nullptr;               ///< N×d, required
  const Eigen::VectorXd* reduced_energies = nullptr;  ///< N, required
  const Eigen::VectorXd* log_q = nullptr;           ///< N, optional
  const Eigen::VectorXd* log_weights = nullptr;     ///< N, optional
  const std::vector<RowMatrix>* frames = nullptr;   ///< F frames of N×d, optional

  nlohmann::json counts = nlohmann::json::object();      ///< tool counts (merged into "counts")
  nlohmann::json timings = nlohmann::json::object();     ///< seconds per phase
  nlohmann::json statistics = nlohmann::json::object();  ///< sampler statistics (acceptance, ...)
  std::vector<double> trace_steps;                        ///< x-axis of the traces
  std::map<std::string, std::vector<double>> traces;      ///< e.g. "mean_energy" (same length)
  nlohmann::json extra = nlohmann::json::object();        ///< tool-specific top-level keys
  std::vector<std::string> extra_files;  ///< files the tool wrote into the run itself (listed in "files")
  std::vector<std::string> notes;                         ///< human-readable remarks
  bool plots = true;                                      ///< draw PNGs (false: skip, noted)
  TraceMarkers trace_markers;                             ///< warm-up and annealing marks of the trace
  std::optional<MdTrace> md_trace;                        ///< MD runs: energy_trace.png in kJ/mol, K and ps
  /// Molecules: reference φ/ψ (N×2, radians, time order) for the model-vs-reference
  /// Ramachandran panel and its KL/TV caption (null: model panel only).
  const RowMatrix* reference_dihedrals = nullptr;
  std::string reference_name;                             ///< where the reference came from

  /// \throws DomainError when required fields are missing or sizes disagree.
  void validate() const;
};

/// mean, std, min and max of the finite final reduced energies (NaN where undefined:
/// no finite u, or fewer than two for std) and the count of non-finite ones; to_json()
/// is summary["energy"].
struct EnergyStats {
  double mean = 0.0, std = 0.0, min = 0.0, max = 0.0;
  std::size_t non_finite = 0;
  nlohmann::json to_json() const;
};
EnergyStats energy_stats(const Eigen::VectorXd& u);

/// Writes the standard files of `outputs` into run.staging() and returns the summary
/// that was written. Does not commit: the caller commits once everything (including
/// its own extra files) is in place. Plot failures never throw (they become notes).
/// \throws DomainError (bad outputs), IoError (a file could not be written).
nlohmann::json write_run(const RunDirectory& run, const RunOutputs& outputs);

/// Draws the plots of `outputs` into run.staging() (write_run() calls it unless
/// outputs.plots is false): energy_trace.png or energy_histogram.png, the monitors of
/// the interacting flows, samples.png of 2-D targets. Never throws for a plot that
/// cannot be drawn. Returns {png name: "ok" or why it is missing}.
nlohmann::json write_run_plots(const RunDirectory& run, const RunOutputs& outputs);

/// Writes F frames of N×d as one (F, N, d) float64 .npy file, streaming frame by
/// frame (no F×N×d copy). \throws IoError; DomainError if the frames differ in shape.
void write_frames_npy(const std::filesystem::path& path, const std::vector<RowMatrix>& frames);

/// The script of energy_trace.png for a run with a "mean_energy" trace (outputs.md_trace
/// unset): ⟨u⟩ − u_min on a log axis against the step (a linear axis makes a trace that
/// is still three decades above equilibrium look converged), u_min the exact minimum
/// where known, else the lowest final or traced energy; a horizontal line at the exact
/// ⟨u⟩ − u_min where known (energy_reference(), named with its source; the caption says
/// when none is known); vertical lines at the end of the warm-up and of the annealing.
/// Skipped without a "mean_energy" trace.
PlotScript energy_trace_script(const RunOutputs& outputs);

/// The script of energy_trace.png for an MD trace: E (kJ/mol) against t (ps) and, when
/// given, the kinetic temperature (K) with the bath temperatures as reference lines.
PlotScript md_trace_script(const MdTrace& trace, const std::string& title);

/// The script of samples.png: the final ensemble of a 2-D target over contours of
/// u − min u on the target's plot_domain() with its known modes marked (a target
/// without a stated domain is drawn on the samples' window, and the title says so).
PlotScript samples_2d_script(const Target& target, const RowMatrix& samples, const std::string& title);

/// Draws samples_2d_script() into `png`. Returns "ok" or the reason it was skipped.
std::string plot_2d_samples(const Target& target, const RowMatrix& samples, const std::filesystem::path& png);

/// log q of a model at the rows of a matrix (N×2 → N).
using LogDensityFunction = std::function<Eigen::VectorXd(const RowMatrix&)>;

/// The script of density.png (bg-sample, 2-D targets): target and model densities side by
/// side on the target's plot_domain() (else the samples' window, said so), each as log
/// density normalized on the grid with one shared colour scale (viridis, the top 12 nats),
/// the known modes marked on both, ≤ 2000 samples over the model, and a caption that
/// counts the modes the samples found (when the modes have radii).
PlotScript density_comparison_script(const Target& target, const LogDensityFunction& log_q,
                                     const RowMatrix& samples, int grid_points = 160);

}  // namespace boltzlab
