#pragma once
/// \file openmm_target.hpp
/// Any OpenMM System as a boltzlab target (registry type "openmm").
///
///   u(x) = E(x) / kT,   kT = k_B·T = 0.0083144626·T kJ/mol (T in K),
///   ∇u(x) = −F(x) / kT  (F = −∇E are OpenMM's forces, kJ/mol/nm),
///
/// with x the flat 3n vector of atom positions in nm. The System comes from a
/// serialized OpenMM XML file (XmlSerializer), atom names/residues/elements and the
/// starting coordinates from a PDB (optionally overridden by an Amber coordinate
/// file or a .npy array when more precision is needed than PDB's 0.001 Å).
///
/// Parallel evaluation (openmm_context_policy): on the CPU and Reference platforms every
/// thread that evaluates gets its own OpenMM Context (with its own copy of the System),
/// created on first use and reused for the lifetime of the target — no locks on the hot
/// path. On a GPU platform (OpenCL, CUDA, HIP) the target holds one Context on its
/// device(s) and evaluations go through it one at a time: further Contexts would only
/// queue on the same device and each hold a copy of the System in its memory.
///
/// Optional safeguards for training (both off by default):
///   - energy_max: u > energy_max (clashes) is reported as +inf (counted as non-finite);
///   - energy_cut: lin-log cut of high energies, as used to train Boltzmann generators
///     (Noé, Olsson, Köhler & Wu, Science 365, eaaw1147 (2019); bgflow's "linlogcut"):
///       ũ = u                      for u ≤ c,
///       ũ = c + log(1 + u − c)     for u > c,      ∇ũ = ∇u / (1 + u − c).
#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "boltzlab/targets/registry.hpp"

namespace OpenMM {
class System;
class Integrator;
class Context;
}  // namespace OpenMM

namespace boltzlab {

/// Boltzmann constant in kJ/(mol·K) (CODATA 2018 k_B·N_A), as OpenMM uses.
inline constexpr double kBoltzmannKJPerMolK = 0.0083144626;

/// How many OpenMM Contexts a target evaluates with.
enum class OpenMMContextPolicy {
  kPerThread,  ///< one Context per evaluating thread (host platforms: CPU, Reference)
  kShared,     ///< one Context for the target, evaluations serialized (GPU platforms)
};

/// The policy of an OpenMM platform by its name: kShared for the GPU platforms
/// "OpenCL", "CUDA" and "HIP", kPerThread for every other ("CPU", "Reference", plugins).
OpenMMContextPolicy openmm_context_policy(const std::string& platform);
/// "per_thread" or "shared" (summary.json's target.contexts).
std::string to_string(OpenMMContextPolicy policy);

/// Description of an OpenMM target (the "parameters" of a potential file).
struct OpenMMTargetOptions {
  std::filesystem::path system_xml;   ///< serialized OpenMM System (XmlSerializer)
  std::filesystem::path pdb;          ///< atom names, residues, elements, starting coordinates
  std::filesystem::path coordinates;  ///< optional: starting coordinates (.crd/.inpcrd in Å, .npy in nm)
  double temperature = 300.0;         ///< K; kT = kBoltzmannKJPerMolK · temperature
  std::string platform = "Reference"; ///< OpenMM platform: Reference, CPU, OpenCL, CUDA, HIP
  /// Platform properties, checked against the platform's names (OpenMM 7.7: OpenCL and
  /// CUDA take e.g. "DeviceIndex" = "0" and "Precision" = "single", "mixed" or "double");
  /// for CPU, "Threads" defaults to "1" (we parallelize over Contexts).
  std::map<std::string, std::string> platform_properties;
  /// Contexts used for evaluation; empty: openmm_context_policy(platform). Not a key of
  /// the potential file (tests run the shared path on a host platform).
  std::optional<OpenMMContextPolicy> context_policy;
  std::optional<double> energy_cut;   ///< lin-log cut start c (reduced units); empty: off
  std::optional<double> energy_max;   ///< u above this is +inf (reduced units); empty: off
  /// \throws ConfigError naming the field (temperature ≤ 0, cut/max not finite, ...).
  void validate() const;
};

/// Names of the OpenMM platforms that loaded (plugins included), e.g. {"Reference", "CPU"}.
std::vector<std::string> openmm_platform_names();

/// A Context with its own System copy and integrator, on the target's platform
/// (for MD runs and per-thread evaluation). Members are destroyed context first.
struct OpenMMContext {
  std::unique_ptr<OpenMM::System> system;
  std::unique_ptr<OpenMM::Integrator> integrator;
  std::unique_ptr<OpenMM::Context> context;
  OpenMMContext();
  ~OpenMMContext();
  OpenMMContext(OpenMMContext&&) noexcept;
  OpenMMContext& operator=(OpenMMContext&&) noexcept;
};

class OpenMMTarget : public Target {
 public:
  /// Loads the System and the PDB. \throws IoError (file missing/malformed, naming
  /// it), ConfigError (atom count mismatch, unknown platform, bad option), or
  /// BackendError (the platform cannot create a Context).
  explicit OpenMMTarget(OpenMMTargetOptions options);
  ~OpenMMTarget() override;

  /// Stem of the System XML file, e.g. "alanine_dipeptide".
  std::string name() const override { return name_; }
  std::size_t dim() const override { return 3 * atoms_; }
  /// u = E/kT and ∇u = −F/kT (then energy_max / energy_cut when set). Non-finite
  /// coordinates and OpenMM exceptions give +inf (counted, never thrown).
  double reduced_energy(const double* x, double* grad) const override;
  std::pair<std::size_t, std::size_t> particle_layout() const override { return {atoms_, 3}; }
  const Topology* topology() const override { return &topology_; }
  /// kT in kJ/mol.
  double kT() const override { return kT_; }
  nlohmann::json describe() const override;
  /// Same contract as Target::evaluate_batch; looks up the thread's Context once per block
  /// (with one shared Context the rows are evaluated in order on the calling thread).
  BatchStats evaluate_batch(const RowMatrix& x, Eigen::VectorXd& u, RowMatrix* grad,
                            Execution exec = Execution::kParallel) const override;

  /// Raw potential energy E(x) in kJ/mol and forces F = −∇E in kJ/mol/nm (when not
  /// null), without cut or cap; NaN when OpenMM fails or x is not finite.
  double potential_energy(const double* x, double* forces) const;

  /// Starting coordinates (flat 3n, nm) from the PDB or the coordinates file.
  const std::vector<double>& initial_positions() const { return initial_positions_; }
  std::vector<double> reference_configuration() const override { return initial_positions_; }
  double temperature() const { return options_.temperature; }
  const OpenMMTargetOptions& options() const { return options_; }
  /// The target's System (read-only; never pass it to a Context yourself, use make_context).
  const OpenMM::System& system() const { return *system_; }
  /// A fresh Context on the target's platform with a copy of the System and the
  /// given integrator. \throws BackendError when OpenMM cannot create it.
  OpenMMContext make_context(std::unique_ptr<OpenMM::Integrator> integrator) const;

  /// Counters of exceptional evaluations since construction.
  struct Counters {
    std::size_t non_finite = 0;     ///< u or ∇u not finite (NaN input, OpenMM NaN)
    std::size_t openmm_errors = 0;  ///< OpenMM threw (counted in non_finite too)
    std::size_t above_max = 0;      ///< u > energy_max, reported as +inf
    std::size_t cut = 0;            ///< u > energy_cut, lin-log cut applied
  };
  Counters counters() const;
  /// Contexts made for evaluation so far (per thread, or the one shared Context).
  std::size_t evaluation_contexts() const;
  /// The policy in use (options.context_policy, or that of the platform).
  OpenMMContextPolicy context_policy() const;

 private:
  struct ThreadState;
  struct StateLease;
  ThreadState& local_state() const;
  /// The Context to evaluate with: the thread's own, or the shared one with its lock held.
  StateLease lease_state() const;
  std::unique_ptr<ThreadState> new_state() const;
  double reduced_energy_with(ThreadState& state, const double* x, double* grad) const;
  double potential_energy_with(ThreadState& state, const double* x, double* forces) const;

  OpenMMTargetOptions options_;
  std::string name_;
  std::size_t atoms_ = 0;
  double kT_ = 0.0;
  Topology topology_;
  std::vector<double> initial_positions_;
  std::string system_xml_text_;
  std::unique_ptr<OpenMM::System> system_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  mutable std::atomic<std::size_t> non_finite_{0}, openmm_errors_{0}, above_max_{0}, cut_{0};
};

/// Factory for the registry. Parameters:
///   "system" (path, required), "pdb" (path, required), "coordinates" (path),
///   "temperature" (K, required, > 0), "platform" ("Reference"), "platform_properties"
///   (object of strings), "energy_cut" (number), "energy_max" (number).
/// Relative paths are relative to the potential file's folder.
std::unique_ptr<Target> make_openmm(JsonReader& params, const std::filesystem::path& dir);

}  // namespace boltzlab
