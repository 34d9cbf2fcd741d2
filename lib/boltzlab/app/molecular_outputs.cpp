#include "boltzlab/app/molecular_outputs.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/dcd.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/io/pdb.hpp"
#include "boltzlab/io/plot.hpp"
#include "boltzlab/molecules/dihedrals.hpp"

namespace boltzlab {

PlotResult plot_ramachandran(const RamachandranHistogram& h, const std::filesystem::path& png, const std::string& title) {
  double f_min = std::numeric_limits<double>::infinity();
  for (Eigen::Index k = 0; k < h.free_energy.size(); ++k) f_min = std::min(f_min, h.free_energy.data()[k]);
  std::vector<double> xs, ys, fs;
  const Eigen::Index bins = h.weights.rows();
  const double width = 360.0 / static_cast<double>(bins);
  // Scan order for "with image": x (φ) fastest.
  for (Eigen::Index b = 0; b < bins; ++b) {
    for (Eigen::Index a = 0; a < bins; ++a) {
      xs.push_back(-180.0 + (static_cast<double>(a) + 0.5) * width);
      ys.push_back(-180.0 + (static_cast<double>(b) + 0.5) * width);
      const double f = h.free_energy(a, b);
      fs.push_back(std::isfinite(f) ? f - f_min : std::numeric_limits<double>::quiet_NaN());
    }
  }
  std::ostringstream s;
  s << gnuplot_datablock("rama", {xs, ys, fs});
  s << "set title '" << title << "' noenhanced\n"
    << "set xlabel 'φ (degrees)'\nset ylabel 'ψ (degrees)'\n"
    << "set xrange [-180:180]\nset yrange [-180:180]\nset size square\n"
    << "set xtics 60\nset ytics 60\nset cblabel 'F − F_{min} (kT)'\nset cbrange [0:10]\n"
    << "set palette defined (0 '#000080', 2 '#2060ff', 4 '#40c0ff', 6 '#a0ff60', 8 '#ffd000', 10 '#ff3000')\n"
    << "set object 1 rectangle from -180,-180 to 180,180 fillcolor rgb 'white' behind\n"
    << "plot $rama using 1:2:3 with image notitle\n";
  return run_gnuplot(s.str(), png, 760, 700);
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
                        const Eigen::VectorXd* log_weights, MolecularSummary& out) {
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
  const PlotResult plot = plot_ramachandran(h, run.path("ramachandran.png"),
                                            target.name() + (h.weighted ? " (reweighted)" : "") + ": Ramachandran");
  if (plot.ok) {
    out.files.push_back("ramachandran.png");
  } else {
    out.notes.push_back(plot.note);
  }
}

}  // namespace

void write_molecular_outputs(const RunDirectory& run, const Target& target, const RowMatrix& samples,
                             const Eigen::VectorXd* log_weights, nlohmann::json& summary) {
  const Topology* top = target.topology();
  if (!top) return;
  if (static_cast<std::size_t>(samples.cols()) != 3 * top->atoms()) {
    throw DomainError("molecular outputs: samples have " + std::to_string(samples.cols()) + " columns, but " +
                      target.name() + " has " + std::to_string(top->atoms()) + " atoms");
  }
  MolecularSummary out;
  out.mol["frames"] = static_cast<std::size_t>(samples.rows());
  if (samples.rows() > 0) write_trajectory(run, target, *top, samples, out);
  write_ramachandran(run, target, *top, samples, log_weights, out);
  out.mol["files"] = out.files;
  if (!out.notes.empty()) out.mol["notes"] = out.notes;
  summary["molecular"] = out.mol;
}

}  // namespace boltzlab
