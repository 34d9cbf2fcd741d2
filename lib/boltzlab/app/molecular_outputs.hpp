#pragma once
/// \file molecular_outputs.hpp
/// Outputs of molecular run directories: backbone dihedrals, Ramachandran histogram
/// and free energy, PNG plot, and a trajectory readable by MDTraj/VMD.
/// Every tool that writes a run directory for a target with a topology() calls
/// write_molecular_outputs().
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/app/run_directory.hpp"
#include "boltzlab/estimators/ramachandran.hpp"
#include "boltzlab/io/plot.hpp"
#include "boltzlab/targets/target.hpp"

namespace boltzlab {

/// At most this many models in trajectory.pdb (the DCD always holds every frame).
inline constexpr std::size_t kMaxPdbModels = 1000;

/// One panel of a Ramachandran figure.
struct RamachandranPanel {
  std::string title;
  RowMatrix free_energy;  ///< bins×bins F (kT) on [−π, π)², rows φ, columns ψ; +inf where empty
};

/// The one Ramachandran style of every tool: panels side by side, φ and ψ in degrees,
/// F − min F (kT) of each panel on one colour scale fitted to the data (0 to the largest
/// finite value over the panels, rounded up to a whole kT), the perceptual colormap
/// viridis, empty bins white; the caption (KL/TV against a reference) under the panels.
struct RamachandranFigure {
  std::string title;
  std::vector<RamachandranPanel> panels;  ///< model first, then the reference when given
  std::vector<std::string> caption;       ///< lines under the panels
};

/// The gnuplot script of a figure (skipped without panels).
PlotScript ramachandran_script(const RamachandranFigure& figure);

/// The figure of (weighted) model angles φ, ψ (radians) and, when `reference` (N×2 φ/ψ
/// radians in time order) is given, of the reference beside it, both histogrammed on
/// b×b bins with b = histogram_bins_per_axis(Kish ESS of the model); the caption holds
/// the forward KL and TV of compare_ramachandran() (on its benchmark bins, 64² and
/// 100²) with their noise floors and the φ ≥ 0 populations, or why they are missing.
/// `log_weights` null or empty: equal weights.
RamachandranFigure ramachandran_figure(const Eigen::VectorXd& phi, const Eigen::VectorXd& psi,
                                       const Eigen::VectorXd* log_weights, const RowMatrix* reference,
                                       const std::string& reference_name, const std::string& title);

/// Draws ramachandran_script(figure) into `png`.
PlotResult plot_ramachandran(const RamachandranFigure& figure, const std::filesystem::path& png);

/// The reference run of a molecular run directory's Ramachandran figure.
struct MolecularReference {
  const RowMatrix* dihedrals = nullptr;  ///< N×2 φ/ψ (radians, time order); null: no reference
  std::string name;                      ///< where it came from (in the caption)
};

/// Writes the molecular files for `samples` (N×3n, nm) into `run`, weighted by
/// exp(log_weights) when given, and adds their summary (basin populations, files
/// written, notes for skipped plots) under summary["molecular"]. Does nothing when
/// target.topology() is null. Files: trajectory.dcd (all frames, Å) + topology.pdb,
/// trajectory.pdb (≤ kMaxPdbModels models), dihedrals.npy (N×2: φ, ψ in radians),
/// ramachandran_histogram.npy, ramachandran_free_energy.npy, ramachandran.png (with a
/// model-vs-reference panel when `reference` is given).
void write_molecular_outputs(const RunDirectory& run, const Target& target, const RowMatrix& samples,
                             const Eigen::VectorXd* log_weights, nlohmann::json& summary,
                             const MolecularReference& reference = {});

}  // namespace boltzlab
