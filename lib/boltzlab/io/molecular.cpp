#include "boltzlab/io/molecular.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/dcd.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/io/pdb.hpp"
#include "boltzlab/io/plot.hpp"
#include "boltzlab/targets/dihedrals.hpp"

namespace boltzlab {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::size_t angle_bin(double angle, Eigen::Index bins) {
  // [−π, π) split into `bins` bins; atan2 returns (−π, π], so π wraps to −π.
  double a = angle;
  if (a >= kPi) a -= 2 * kPi;
  if (a < -kPi) a += 2 * kPi;
  auto b = static_cast<long long>(std::floor((a + kPi) / (2 * kPi) * static_cast<double>(bins)));
  return static_cast<std::size_t>(std::clamp<long long>(b, 0, static_cast<long long>(bins) - 1));
}

}  // namespace

RamachandranHistogram ramachandran_histogram(const Eigen::VectorXd& phi, const Eigen::VectorXd& psi,
                                             const Eigen::VectorXd* log_weights, Eigen::Index bins) {
  if (phi.size() != psi.size() || (log_weights && log_weights->size() != phi.size())) {
    throw DomainError("ramachandran_histogram: phi, psi and log_weights have different lengths");
  }
  if (bins < 1) throw DomainError("ramachandran_histogram: bins is " + std::to_string(bins) + ", but must be >= 1");
  RamachandranHistogram h;
  h.weights = RowMatrix::Zero(bins, bins);
  h.weighted = log_weights != nullptr;
  // Weights exp(log w − max log w) for numerical range; non-finite log w count as 0.
  double max_lw = -std::numeric_limits<double>::infinity();
  if (log_weights) {
    for (Eigen::Index i = 0; i < log_weights->size(); ++i)
      if (std::isfinite((*log_weights)[i])) max_lw = std::max(max_lw, (*log_weights)[i]);
  }
  double sum_w = 0.0, sum_w2 = 0.0;
  for (Eigen::Index i = 0; i < phi.size(); ++i) {
    if (!std::isfinite(phi[i]) || !std::isfinite(psi[i])) {
      ++h.skipped_frames;
      continue;
    }
    double w = 1.0;
    if (log_weights) {
      const double lw = (*log_weights)[i];
      if (!std::isfinite(lw)) {
        ++h.zero_weight_frames;
        continue;
      }
      w = std::exp(lw - max_lw);
    }
    h.weights(static_cast<Eigen::Index>(angle_bin(phi[i], bins)), static_cast<Eigen::Index>(angle_bin(psi[i], bins))) += w;
    sum_w += w;
    sum_w2 += w * w;
    // Basins (radians): φ > 0 is C7ax/αL; for φ < 0, αR is −2.2 ≤ ψ < 0.5 (−126°..29°),
    // the rest (ψ ≥ 0.5 or ψ < −2.2) is C7eq/β.
    if (phi[i] >= 0) h.phi_positive += w;
    else if (psi[i] >= -2.2 && psi[i] < 0.5) h.alpha_r += w;
    else h.beta_c7eq += w;
  }
  h.total_weight = sum_w;
  h.effective_sample_size = sum_w2 > 0 ? sum_w * sum_w / sum_w2 : 0.0;
  if (sum_w > 0) {
    h.phi_positive /= sum_w;
    h.alpha_r /= sum_w;
    h.beta_c7eq /= sum_w;
  }
  // F = −log p per bin (kT), p = bin weight / total; +inf for empty bins.
  h.free_energy = RowMatrix::Constant(bins, bins, std::numeric_limits<double>::infinity());
  if (sum_w > 0) {
    for (Eigen::Index a = 0; a < bins; ++a)
      for (Eigen::Index b = 0; b < bins; ++b)
        if (h.weights(a, b) > 0) h.free_energy(a, b) = -std::log(h.weights(a, b) / sum_w);
  }
  return h;
}

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

void write_molecular_outputs(const RunDirectory& run, const Target& target, const RowMatrix& samples,
                             const Eigen::VectorXd* log_weights, nlohmann::json& summary) {
  const Topology* top = target.topology();
  if (!top) return;
  nlohmann::json mol;
  nlohmann::json files = nlohmann::json::array();
  nlohmann::json notes = nlohmann::json::array();
  if (static_cast<std::size_t>(samples.cols()) != 3 * top->atoms()) {
    throw DomainError("molecular outputs: samples have " + std::to_string(samples.cols()) + " columns, but " +
                      target.name() + " has " + std::to_string(top->atoms()) + " atoms");
  }
  const auto frames = static_cast<std::size_t>(samples.rows());
  mol["frames"] = frames;

  // Trajectory: DCD with every frame + a one-model PDB topology (MDTraj:
  // md.load('trajectory.dcd', top='topology.pdb'); VMD: vmd topology.pdb trajectory.dcd),
  // and a multi-model PDB of at most kMaxPdbModels evenly thinned frames.
  if (frames > 0) {
    write_dcd(run.path("trajectory.dcd"), samples, 0.0, "boltzlab " + target.name());
    files.push_back("trajectory.dcd");
    run.write_text("topology.pdb", "REMARK   1 BOLTZLAB TOPOLOGY (FIRST FRAME), COORDINATES IN ANGSTROM\n" +
                                       format_pdb_model(*top, samples.row(0).data(), 0) + "END\n");
    files.push_back("topology.pdb");
    const std::size_t stride = (frames + kMaxPdbModels - 1) / kMaxPdbModels;
    RowMatrix pdb_frames((static_cast<Eigen::Index>(frames) + static_cast<Eigen::Index>(stride) - 1) /
                             static_cast<Eigen::Index>(stride),
                         samples.cols());
    for (Eigen::Index r = 0; r < pdb_frames.rows(); ++r) pdb_frames.row(r) = samples.row(r * static_cast<Eigen::Index>(stride));
    write_pdb_models(run.path("trajectory.pdb"), *top, pdb_frames);
    files.push_back("trajectory.pdb");
    mol["trajectory_pdb_stride"] = stride;
    if (stride > 1) {
      notes.push_back("trajectory.pdb holds every " + std::to_string(stride) + "th frame (" +
                      std::to_string(pdb_frames.rows()) + " models); trajectory.dcd holds all frames");
    }
  }

  const auto rama = ramachandran_dihedrals(*top);
  if (!rama) {
    notes.push_back("no backbone phi/psi pair found in the topology: Ramachandran outputs skipped");
  } else {
    const auto& [phi_def, psi_def] = *rama;
    const Eigen::VectorXd phi = dihedral_series(samples, phi_def);
    const Eigen::VectorXd psi = dihedral_series(samples, psi_def);
    RowMatrix angles(samples.rows(), 2);
    angles.col(0) = phi;
    angles.col(1) = psi;
    run.write_array("dihedrals.npy", angles);
    files.push_back("dihedrals.npy");
    mol["dihedrals"] = {{"file", "dihedrals.npy"},
                        {"columns", {phi_def.name, psi_def.name}},
                        {"units", "radians, (-pi, pi], IUPAC sign convention"},
                        {"phi_atoms", phi_def.atoms},
                        {"psi_atoms", psi_def.atoms}};
    const RamachandranHistogram h = ramachandran_histogram(phi, psi, log_weights);
    run.write_array("ramachandran_histogram.npy", h.weights);
    run.write_array("ramachandran_free_energy.npy", h.free_energy);
    files.push_back("ramachandran_histogram.npy");
    files.push_back("ramachandran_free_energy.npy");
    mol["ramachandran"] = {
        {"bins", kRamachandranBins},
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
    const PlotResult plot = plot_ramachandran(h, run.path("ramachandran.png"),
                                              target.name() + (h.weighted ? " (reweighted)" : "") + ": Ramachandran");
    if (plot.ok) files.push_back("ramachandran.png");
    else notes.push_back(plot.note);
  }
  mol["files"] = files;
  if (!notes.empty()) mol["notes"] = notes;
  summary["molecular"] = mol;
}

}  // namespace boltzlab
