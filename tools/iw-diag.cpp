// iw-diag: importance-weight and MCMC diagnostics of a run directory or of plain
// arrays. Thin CLI: flags → IwDiagInput/IwDiagOptions; the analysis lives in
// lib/boltzlab/app/iw_diag.* (and, for --potential, the energies are evaluated
// here through the target registry).
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>

#include <CLI/CLI.hpp>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/app/cli.hpp"
#include "boltzlab/app/console.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/app/iw_diag.hpp"
#include "boltzlab/estimators/ramachandran_compare.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/io/netcdf.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/molecules/dihedrals.hpp"
#include "boltzlab/targets/registry.hpp"

namespace fs = std::filesystem;
using namespace boltzlab;

namespace {

struct Options {
  fs::path run, log_weights, chains, samples, log_q, potential, out, reference, netcdf;
  IwDiagOptions analysis;
  std::string fes_columns = "0,1";
  bool interacting = false, independent = false, no_plots = false, print_json = false, quiet = false;
  int threads = 0;
};

void setup(CLI::App& app, Options& o) {
  app.description(
      "Importance-weight diagnostics (Kish ESS, PSIS k-hat, log Z, reweighted free energies) and MCMC "
      "diagnostics (rank-normalized split R-hat, bulk/tail ESS, autocorrelation time).\n"
      "Inputs: --run DIR | --log-weights LW.npy | --chains C.npy | --samples X.npy [--log-q Q.npy --potential P.json]");
  app.add_option("--run", o.run, "run directory (samples.npy, reduced_energies.npy, log_q.npy, log_weights.npy, "
                                 "dihedrals.npy, chains.npy/frames.npy, summary.json)");
  app.add_option("--log-weights", o.log_weights, "log importance weights, shape (N,)");
  app.add_option("--chains", o.chains, "Markov chains, shape (chains, draws) or (chains, draws, params)");
  app.add_option("--samples", o.samples, "samples, shape (N, d); with --log-q and --potential u is evaluated here");
  app.add_option("--log-q", o.log_q, "proposal log-densities log q(x_i), shape (N,) (needs --samples, --potential)");
  app.add_option("--potential", o.potential, "potential file to evaluate u(x) of --samples");
  app.add_option("--reference", o.reference,
                 "reference MD phi/psi (.npy, N x 2, radians): Ramachandran KL/TV vs the reference, their "
                 "noise floor (half vs half) and the phi>=0 population");
  app.add_option("--out", o.out, "output directory (summary.json, arrays, plots), written atomically");
  app.add_option("--netcdf", o.netcdf,
                 "also write the samples as NetCDF (ArviZ InferenceData: one chain, posterior x, sample_stats "
                 "log_weight, log_q, reduced_energy, lp)");
  app.add_option("--r-eff", o.analysis.r_eff, "relative efficiency ESS/S of the draws for PSIS")->capture_default_str();
  app.add_option("--clip-fraction", o.analysis.clip_fraction, "fraction of largest log-weights clipped for the clipped ESS")
      ->capture_default_str();
  app.add_option("--level", o.analysis.level, "confidence level of the log Z interval")->capture_default_str();
  app.add_option("--region", o.analysis.regions,
                 "region for a free-energy difference, e.g. 'phi<0' or 'A:x0<0&x1>1'; give twice (A then B)");
  app.add_option("--bins", o.analysis.bins, "histogram bins per axis (default: 2-D maps sqrt(ESS/10) in [8, 64], 1-D profiles 50)");
  app.add_option("--fes-columns", o.fes_columns, "two sample columns for the generic 2-D free energy")->capture_default_str();
  app.add_flag("--interacting", o.interacting, "chains are interacting particles (independence violated)");
  app.add_flag("--independent", o.independent, "chains are independent (overrides the run's flow)");
  app.add_flag("--no-plots", o.no_plots, "do not draw PNG plots");
  app.add_flag("--json", o.print_json, "print summary.json to stdout instead of the table");
  app.add_option("--threads", o.threads, "threads for energy evaluation (0: all cores)")->capture_default_str();
  add_quiet_flag(app, o.quiet);  // iw-diag prints no progress lines; accepted like every tool's
}

std::vector<std::size_t> parse_columns(const std::string& text) {
  std::vector<std::size_t> cols;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    try {
      std::size_t used = 0;
      const long v = std::stol(part, &used);
      if (used != part.size() || v < 0) throw std::invalid_argument("bad");
      cols.push_back(static_cast<std::size_t>(v));
    } catch (const std::exception&) {
      throw ConfigError("--fes-columns '" + text + "' must be two column indices like 0,1");
    }
  }
  return cols;
}

/// Checks the combination of flags. \throws ConfigError naming the flags.
void validate(const Options& o) {
  if (o.threads < 0) throw ConfigError("--threads is " + std::to_string(o.threads) + ", but must be ≥ 0");
  if (o.interacting && o.independent) throw ConfigError("--interacting and --independent exclude each other");
  if (!o.run.empty() && (!o.log_weights.empty() || !o.samples.empty() || !o.log_q.empty() || !o.potential.empty())) {
    throw ConfigError("--run reads the arrays of the run directory; do not combine it with "
                      "--log-weights, --samples, --log-q or --potential");
  }
  if (!o.log_q.empty() && (o.samples.empty() || o.potential.empty())) {
    throw ConfigError("--log-q needs --samples and --potential (u is evaluated from the potential)");
  }
  if (!o.potential.empty() && o.samples.empty()) throw ConfigError("--potential needs --samples");
  if (o.run.empty() && o.log_weights.empty() && o.chains.empty() && o.samples.empty()) {
    throw ConfigError("nothing to analyse: give --run DIR, --log-weights, --chains or --samples (see --help)");
  }
  if (!o.log_q.empty() && !o.log_weights.empty()) {
    throw ConfigError("give either --log-weights or --log-q with --potential, not both");
  }
  if (!o.netcdf.empty()) {
    if (o.run.empty() && o.samples.empty()) throw ConfigError("--netcdf writes samples: give --run DIR or --samples");
    check_netcdf_output(o.netcdf, {o.run, o.log_weights, o.chains, o.samples, o.log_q, o.potential, o.reference}, o.out);
  }
}

/// Evaluates u (and, for molecules, kT and the backbone φ/ψ) of in.samples with the
/// potential file. \throws DomainError when the dimensions differ.
void evaluate_potential(const fs::path& potential, const fs::path& samples, IwDiagInput& in) {
  Potential p = load_potential(potential);
  const Target& target = *p.target;
  if (static_cast<std::size_t>(in.samples->cols()) != target.dim()) {
    throw DomainError(samples.string() + ": samples have " + std::to_string(in.samples->cols()) +
                      " columns but potential '" + p.name + "' has dimension " + std::to_string(target.dim()));
  }
  Eigen::VectorXd u;
  target.evaluate_batch(*in.samples, u, nullptr, Execution::kParallel);
  in.reduced_energies = u;
  if (target.topology()) {
    in.kt_kj_mol = target.kT();
    // Molecules: backbone φ/ψ for the (reweighted) Ramachandran free energy.
    if (const auto pair = ramachandran_dihedrals(*target.topology())) {
      RowMatrix d(in.samples->rows(), 2);
      d.col(0) = dihedral_series(*in.samples, pair->first);
      d.col(1) = dihedral_series(*in.samples, pair->second);
      in.dihedrals = d;
    }
  }
  in.exact_log_z = target.log_z();
}

/// The input from plain arrays (--log-weights, --samples, --potential, --log-q).
IwDiagInput arrays_input(const Options& o) {
  IwDiagInput in;
  std::vector<std::string> parts;
  if (!o.log_weights.empty()) {
    in.log_weights = read_npy_vector(o.log_weights);
    parts.push_back("log-weights " + o.log_weights.string());
  }
  if (!o.samples.empty()) {
    in.samples = read_npy_matrix(o.samples);
    if (in.samples->rows() == 0) throw DomainError(o.samples.string() + ": empty array (no samples)");
    parts.push_back("samples " + o.samples.string());
  }
  if (!o.potential.empty()) {
    evaluate_potential(o.potential, o.samples, in);
    parts.push_back("potential " + o.potential.string());
  }
  if (!o.log_q.empty()) {
    in.log_q = read_npy_vector(o.log_q);
    parts.push_back("log q " + o.log_q.string());
  }
  std::string d;
  for (const auto& part : parts) d += (d.empty() ? "" : ", ") + part;
  in.description = d;
  return in;
}

/// The input of the analysis: a run directory or plain arrays, plus --chains,
/// --reference and the --interacting/--independent override.
IwDiagInput gather_input(const Options& o) {
  IwDiagInput in = o.run.empty() ? arrays_input(o) : load_run_directory(o.run);
  if (o.run.empty()) in.sources = {o.log_weights, o.samples, o.log_q, o.potential};  // never written over
  if (!o.chains.empty()) {
    in.chains = read_chains_npy(o.chains);
    in.chains_source = o.chains.string();
    in.description += (in.description.empty() ? "" : ", ") + std::string("chains ") + o.chains.string();
  }
  if (!o.reference.empty()) {
    in.reference_dihedrals = read_reference_dihedrals(o.reference, "--reference");
    in.reference_source = o.reference.string();
  }
  if (o.interacting || o.independent) {
    in.interacting = o.interacting;
    in.interacting_inferred_from_flow.clear();  // the user said so
  }
  return in;
}

int run(const Options& o) {
  if (o.threads > 0) set_num_threads(o.threads);
  IwDiagOptions analysis = o.analysis;
  analysis.fes_columns = parse_columns(o.fes_columns);
  analysis.plots = !o.no_plots;
  analysis.validate();
  const IwDiagInput in = gather_input(o);
  std::optional<InferenceData> netcdf;  // built before the analysis: a length mismatch fails first
  if (!o.netcdf.empty()) netcdf = importance_inference_data(in);
  IwDiagReport report;
  if (!o.out.empty()) {
    RunDirectory out(o.out);
    report = iw_diagnose(in, analysis, &out);
    out.commit();
  } else {
    report = iw_diagnose(in, analysis, nullptr);
  }
  if (netcdf) write_inference_data(o.netcdf, *netcdf);
  nlohmann::json summary = report.to_json();
  sanitize_non_finite(summary);
  const std::string headline = o.out.empty() ? "diagnosed " + report.input : "wrote " + o.out.string();
  const ConsoleVerdict verdict = run_verdict("iw-diag", summary, headline);
  if (o.print_json) {
    std::cout << summary.dump(2) << "\n";  // stdout stays pure JSON; warnings go to stderr
    std::cerr << verdict.format_warnings();
  } else {
    std::cout << format_report(report) << "\n";
    verdict.print();
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  CLI::App app{"iw-diag"};
  Options options;
  setup(app, options);
  return run_tool("iw-diag", app, argc, argv, {[&] { validate(options); }, [&] { return run(options); }});
}
