#include "boltzlab/app/molecular_outputs.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/estimators/ramachandran_compare.hpp"
#include "boltzlab/io/dcd.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/io/pdb.hpp"
#include "boltzlab/io/plot.hpp"
#include "boltzlab/molecules/dihedrals.hpp"

namespace boltzlab {

namespace {

/// F − min F of a panel (NaN where empty) and its largest finite value (0 when none).
std::vector<double> relative_free_energy(const RowMatrix& f, double& largest) {
  double f_min = std::numeric_limits<double>::infinity();
  for (Eigen::Index k = 0; k < f.size(); ++k) f_min = std::min(f_min, f.data()[k]);
  std::vector<double> out;
  largest = 0.0;
  const Eigen::Index bins = f.rows();
  // Scan order for "with image": φ (x) fastest.
  for (Eigen::Index b = 0; b < bins; ++b) {
    for (Eigen::Index a = 0; a < bins; ++a) {
      const double v = f(a, b);
      out.push_back(std::isfinite(v) ? v - f_min : std::numeric_limits<double>::quiet_NaN());
      if (std::isfinite(v)) largest = std::max(largest, v - f_min);
    }
  }
  return out;
}

/// Caption lines of a comparison: KL and TV with their noise floors, φ ≥ 0 populations.
std::vector<std::string> comparison_caption(const RamachandranComparison& c, const std::string& reference_name) {
  std::ostringstream a, b;
  a.precision(3);
  b.precision(3);
  a << "vs " << reference_name << " (" << c.reference_frames << " frames): KL(ref || model) = " << c.model.forward_kl
    << " (noise floor " << c.noise_floor.forward_kl << ", " << c.options.kl_bins << "^2 bins),  TV = "
    << c.model.total_variation << " (noise floor " << c.noise_floor.total_variation << ", " << c.options.tv_bins
    << "^2 bins)";
  b << "population of phi >= 0: model " << c.model_phi_positive.mean << " +- " << c.model_phi_positive.standard_error
    << ", reference " << c.reference_phi_positive.mean << " +- " << c.reference_phi_positive.standard_error;
  return {a.str(), b.str()};
}

}  // namespace

PlotScript ramachandran_script(const RamachandranFigure& figure) {
  if (figure.panels.empty()) return {"", "ramachandran.png skipped: nothing to draw"};
  std::ostringstream s;
  double top = 0.0;
  for (std::size_t p = 0; p < figure.panels.size(); ++p) {
    const RowMatrix& f = figure.panels[p].free_energy;
    double largest = 0.0;
    const std::vector<double> fs = relative_free_energy(f, largest);
    top = std::max(top, largest);
    std::vector<double> xs, ys;
    const Eigen::Index bins = f.rows();
    const double width = 360.0 / static_cast<double>(bins);
    for (Eigen::Index b = 0; b < bins; ++b) {
      for (Eigen::Index a = 0; a < bins; ++a) {
        xs.push_back(-180.0 + (static_cast<double>(a) + 0.5) * width);
        ys.push_back(-180.0 + (static_cast<double>(b) + 0.5) * width);
      }
    }
    s << gnuplot_datablock("rama" + std::to_string(p), {xs, ys, fs});
  }
  const double cb_max = std::max(1.0, std::ceil(top));
  const std::size_t n = figure.panels.size();
  s << "set xlabel 'phi (degrees)'\nset ylabel 'psi (degrees)'\n"
    << "set xrange [-180:180]\nset yrange [-180:180]\nset size square\nset xtics 60\nset ytics 60\n"
    << "set cblabel 'F - min F (kT); white: no samples'\nset cbrange [0:" << cb_max << "]\n"
    << viridis_palette() << "set multiplot layout 1," << n << " title " << gnuplot_string(figure.title) << "\n";
  if (!figure.caption.empty()) s << gnuplot_caption(figure.caption);
  for (std::size_t p = 0; p < n; ++p) {
    s << "set title " << gnuplot_string(figure.panels[p].title) << "\nplot $rama" << p
      << " using 1:2:3 with image notitle\nunset label\n";
  }
  s << "unset multiplot\n";
  return {s.str(), "", static_cast<int>(640 * n + 120), 680};
}

RamachandranFigure ramachandran_figure(const Eigen::VectorXd& phi, const Eigen::VectorXd& psi,
                                       const Eigen::VectorXd* log_weights, const RowMatrix* reference,
                                       const std::string& reference_name, const std::string& title) {
  const Eigen::VectorXd* lw = log_weights && log_weights->size() > 0 ? log_weights : nullptr;
  const RamachandranHistogram first = ramachandran_histogram(phi, psi, lw);
  const auto bins = static_cast<Eigen::Index>(histogram_bins_per_axis(first.effective_sample_size));
  RamachandranFigure fig;
  fig.title = title;
  std::ostringstream model;
  if (lw) {
    model << "model, reweighted (ESS " << std::llround(first.effective_sample_size) << " of " << phi.size() << ", ";
  } else {
    model << "samples (" << std::llround(first.effective_sample_size) << ", ";
  }
  model << bins << "^2 bins)";
  fig.panels.push_back({model.str(), ramachandran_histogram(phi, psi, lw, bins).free_energy});
  if (reference == nullptr) return fig;
  if (reference->cols() == 2) {
    const Eigen::VectorXd rphi = reference->col(0), rpsi = reference->col(1);
    fig.panels.push_back({"reference: " + reference_name + " (" + std::to_string(reference->rows()) + " frames)",
                          ramachandran_histogram(rphi, rpsi, nullptr, bins).free_energy});
  }
  try {
    fig.caption = comparison_caption(compare_ramachandran(phi, psi, lw, *reference), reference_name);
  } catch (const DomainError& e) {
    fig.caption = {std::string("no KL/TV against the reference: ") + e.what()};
  }
  return fig;
}

PlotResult plot_ramachandran(const RamachandranFigure& figure, const std::filesystem::path& png) {
  return draw_plot(ramachandran_script(figure), png);
}

namespace {

/// Files and notes of the molecular outputs, gathered for summary["molecular"].
struct MolecularSummary {
  nlohmann::json mol = nlohmann::json::object();
  nlohmann::json files = nlohmann::json::array();
  nlohmann::json notes = nlohmann::json::array();
};

/// Trajectory: DCD with every frame + a one-model PDB topology (MDTraj:
/// md.load('trajectory.dcd', top='topology.pdb'); VMD: vmd topology.pdb trajectory.dcd),
/// and a multi-model PDB of at most kMaxPdbModels evenly thinned frames.
void write_trajectory(const RunDirectory& run, const Target& target, const Topology& top, const RowMatrix& samples,
                      MolecularSummary& out) {
  const auto frames = static_cast<std::size_t>(samples.rows());
  write_dcd(run.path("trajectory.dcd"), samples, 0.0, "boltzlab " + target.name());
  out.files.push_back("trajectory.dcd");
  run.write_text("topology.pdb", "REMARK   1 BOLTZLAB TOPOLOGY (FIRST FRAME), COORDINATES IN ANGSTROM\n" +
                                     format_pdb_model(top, samples.row(0).data(), 0) + "END\n");
  out.files.push_back("topology.pdb");
  const std::size_t stride = (frames + kMaxPdbModels - 1) / kMaxPdbModels;
  const auto stride_rows = static_cast<Eigen::Index>(stride);
  RowMatrix pdb_frames((static_cast<Eigen::Index>(frames) + stride_rows - 1) / stride_rows, samples.cols());
  for (Eigen::Index r = 0; r < pdb_frames.rows(); ++r) pdb_frames.row(r) = samples.row(r * stride_rows);
  write_pdb_models(run.path("trajectory.pdb"), top, pdb_frames);
  out.files.push_back("trajectory.pdb");
  out.mol["trajectory_pdb_stride"] = stride;
  if (stride > 1) {
    out.notes.push_back("trajectory.pdb holds every " + std::to_string(stride) + "th frame (" +
                        std::to_string(pdb_frames.rows()) + " models); trajectory.dcd holds all frames");
  }
}

/// The (φ, ψ) summary entries of histogram h: binning, weighting, basin populations.
void describe_ramachandran(const RamachandranHistogram& h, nlohmann::json& mol) {
  mol["ramachandran"] = {{"bins", kRamachandranBins},
                         {"range", "[-pi, pi) for phi (rows) and psi (columns)"},
                         {"weighted", h.weighted},
                         {"histogram", h.weighted ? "importance weights exp(log_w - max log_w)" : "counts"},
                         {"free_energy", "-log p per bin in kT (+inf where empty)"},
                         {"frames_skipped_non_finite", h.skipped_frames},
                         {"frames_zero_weight", h.zero_weight_frames},
                         {"effective_sample_size", h.effective_sample_size}};
  mol["basins"] = {{"phi_negative", h.alpha_r + h.beta_c7eq},
                   {"phi_positive", h.phi_positive},
                   {"alpha_R", h.alpha_r},
                   {"beta_C7eq", h.beta_c7eq},
                   {"definitions",
                    "phi_positive: phi >= 0 (C7ax/alpha_L); alpha_R: phi < 0 and -2.2 <= psi < 0.5 rad; "
                    "beta_C7eq: phi < 0, other psi"}};
}

/// Backbone dihedrals, the (weighted) Ramachandran histogram and free energy, the plot.
void write_ramachandran(const RunDirectory& run, const Target& target, const Topology& top, const RowMatrix& samples,
                        const Eigen::VectorXd* log_weights, const MolecularReference& reference,
                        MolecularSummary& out) {
  const auto rama = ramachandran_dihedrals(top);
  if (!rama) {
    out.notes.push_back("no backbone phi/psi pair found in the topology: Ramachandran outputs skipped");
    return;
  }
  const auto& [phi_def, psi_def] = *rama;
  const Eigen::VectorXd phi = dihedral_series(samples, phi_def);
  const Eigen::VectorXd psi = dihedral_series(samples, psi_def);
  RowMatrix angles(samples.rows(), 2);
  angles.col(0) = phi;
  angles.col(1) = psi;
  run.write_array("dihedrals.npy", angles);
  out.files.push_back("dihedrals.npy");
  out.mol["dihedrals"] = {{"file", "dihedrals.npy"},
                          {"columns", {phi_def.name, psi_def.name}},
                          {"units", "radians, (-pi, pi], IUPAC sign convention"},
                          {"phi_atoms", phi_def.atoms},
                          {"psi_atoms", psi_def.atoms}};
  const RamachandranHistogram h = ramachandran_histogram(phi, psi, log_weights);
  run.write_array("ramachandran_histogram.npy", h.weights);
  run.write_array("ramachandran_free_energy.npy", h.free_energy);
  out.files.push_back("ramachandran_histogram.npy");
  out.files.push_back("ramachandran_free_energy.npy");
  describe_ramachandran(h, out.mol);
  const RamachandranFigure figure = ramachandran_figure(
      phi, psi, log_weights, reference.dihedrals, reference.name,
      target.name() + (h.weighted ? " (reweighted)" : "") + ": Ramachandran");
  const PlotResult plot = plot_ramachandran(figure, run.path("ramachandran.png"));
  if (plot.ok) {
    out.files.push_back("ramachandran.png");
  } else {
    out.notes.push_back(plot.note);
  }
}

}  // namespace

void write_molecular_outputs(const RunDirectory& run, const Target& target, const RowMatrix& samples,
                             const Eigen::VectorXd* log_weights, nlohmann::json& summary,
                             const MolecularReference& reference) {
  const Topology* top = target.topology();
  if (!top) return;
  if (static_cast<std::size_t>(samples.cols()) != 3 * top->atoms()) {
    throw DomainError("molecular outputs: samples have " + std::to_string(samples.cols()) + " columns, but " +
                      target.name() + " has " + std::to_string(top->atoms()) + " atoms");
  }
  MolecularSummary out;
  out.mol["frames"] = static_cast<std::size_t>(samples.rows());
  if (samples.rows() > 0) write_trajectory(run, target, *top, samples, out);
  write_ramachandran(run, target, *top, samples, log_weights, reference, out);
  out.mol["files"] = out.files;
  if (!out.notes.empty()) out.mol["notes"] = out.notes;
  summary["molecular"] = out.mol;
}

}  // namespace boltzlab
