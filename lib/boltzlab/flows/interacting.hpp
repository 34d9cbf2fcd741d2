#pragma once
/// \file interacting.hpp
/// The run loop shared by the deterministic interacting-particle flows (SVGD, blob-method
/// KL flow, MMD flow): annealing, monitors (mean energy, KSD, bandwidth), stopping on a
/// tolerance, frames. A flow only supplies its update x ← x + Δ(x, ∇u, β).
#include <cstddef>
#include <string>

#include "boltzlab/flows/flow.hpp"
#include "boltzlab/flows/kernels.hpp"

namespace boltzlab {

/// Options common to the interacting-particle flows (read from the flow params).
struct InteractingOptions {
  bool ksd = true;                           ///< monitor the IMQ KSD of the ensemble vs π (O(N²d) per monitor)
  KsdOptions ksd_kernel;                     ///< IMQ scale c ("ksd_c")
  std::string stop_monitor = "mean_energy";  ///< monitor whose change the tolerance applies to: "mean_energy" or "ksd"
  std::size_t patience = 3;                  ///< consecutive monitor evaluations within tolerance before stopping
  /// \throws ConfigError naming the field.
  void validate(const std::string& flow) const;
  /// Reads "ksd", "ksd_c", "stop_monitor", "patience" (all optional).
  static InteractingOptions read(JsonReader& params);
};

/// Base of SVGD, blob and MMD flows.
///
/// Loop, for step = 0 … warmup+steps−1 (β = options.beta.at(step)):
///  1. evaluate u and ∇u at every particle (once per particle per step); a particle
///     with non-finite u or ∇u is counted and gets ∇u := 0 for this step (it keeps
///     interacting; its position stays finite);
///  2. compute the update Δ at x_t (so "bandwidth" is the one used at x_t);
///  3. every monitor_every steps after warm-up: record mean_energy (mean of finite u),
///     ksd (√ of the V-statistic of KSD² against π = π_{β_end}, see kernels.hpp),
///     ksd2_u (its U-statistic), bandwidth, beta (+ flow extras); stop when the chosen monitor changed
///     by ≤ tolerance·max(1, |value|) between `patience`+1 consecutive evaluations,
///     counted only once annealing is over (step ≥ beta.steps);
///  4. x ← x + Δ.
/// On return ensemble.reduced_energies holds u at the final positions and a final
/// monitor row is recorded at steps_done (its bandwidth: the last update's).
class InteractingFlow : public Flow {
 public:
  explicit InteractingFlow(InteractingOptions common) : common_(std::move(common)) {}

 protected:
  FlowResult evolve(const Target& target, Ensemble& ensemble, const FlowOptions& options) final;
  /// Called once before the loop (check shapes, load data). Default: nothing.
  virtual void prepare(const Target& target, const Ensemble& ensemble, const FlowOptions& options);
  /// The update Δ (N×d) at positions x with ∇u (N×d, finite) at inverse temperature β;
  /// `step` counts from 0, τ = resolved step size. Must be deterministic in its inputs.
  virtual void update(const RowMatrix& x, const RowMatrix& grad_u, double beta, std::size_t step,
                      double step_size, const FlowOptions& options, RowMatrix& delta) = 0;
  /// Default step size when options.step_size is 0.
  virtual double default_step_size() const = 0;
  /// Kernel bandwidth used at the last update (for the "bandwidth" monitor).
  virtual double bandwidth() const = 0;
  /// Flow-specific monitors at positions x (called at every monitor step; e.g. "mmd2").
  virtual void extra_monitors(const RowMatrix& x, const FlowOptions& options,
                              std::map<std::string, std::vector<double>>& monitors) {
    (void)x, (void)options, (void)monitors;
  }
  /// Flow-specific entries of FlowResult::statistics.
  virtual void add_statistics(nlohmann::json& statistics) const { (void)statistics; }

  InteractingOptions common_;

 private:
  struct Loop;  // one run's state (interacting.cpp)
  /// \throws ConfigError (options), DomainError (dimension mismatch, fewer than 2 particles).
  void check_inputs(const Target& target, const Ensemble& ensemble, const FlowOptions& options) const;
};

/// x − mean(x) over rows, summed in row order (kernels are translation invariant, so
/// the flows work on centred copies to avoid cancellation in x_i Σk − Σ k x_j).
Eigen::RowVectorXd row_mean(const RowMatrix& x);

/// The rows of an N-particle update that this MPI rank computes: its block
/// mpi::my_block(N) (every row on one process).
RowRange my_rows(std::size_t n);

/// The N × p matrix whose rows my_rows(n) this rank holds in `mine`, whole on every rank
/// (mpi::allgatherv: the blocks in rank order are the rows in order; on one process,
/// `mine` itself). Rows move unchanged, so the bits are those each owner computed.
/// \throws DomainError when `mine` has not my_rows(n).size() rows.
RowMatrix gather_rows(RowMatrix mine, std::size_t n);

/// Squared kernel width of the centred positions xc: fixed² when fixed > 0, else the
/// median heuristic (median_heuristic_bandwidth2); 1 when all particles are at one
/// point (then any width gives the same update: keep it finite and > 0). With `keep`
/// non-null, the median pass keeps the squared distances of xc in it when that pays
/// (d ≥ kMinDimKeptPairDistances, N ≤ kMaxKeptPairDistances); else *keep is empty.
/// Over MPI ranks the median pass is split (MedianShare with mpi::allreduce_sum and
/// mpi::allgatherv): by
/// my_rows when D² is kept (a rank keeps only the rows it computes sums for, all j),
/// else by pair_row_share; the width is the same double on every rank.
double kernel_width2(const RowMatrix& xc, double fixed, Execution exec, PairDistances* keep = nullptr);

/// Σ_j exp(−c|x_i − x_j|²) v_j for the centred positions xc and the rows i in `rows`
/// (out: rows.size() × p): from `kept` (the squared distances kernel_width2 kept for xc)
/// when not empty, else computed. Same values.
void self_kernel_sums(const RowMatrix& xc, const PairDistances& kept, const RowMatrix& v, double c, RowMatrix& out,
                      Execution exec, RowRange rows = {});

/// KSD of the particles x with scores s (kernel_stein_discrepancy); over MPI ranks each
/// rank computes the per-row partial sums of its pair_row_share and every rank adds all
/// of them in index order: the one-process bits.
KsdResult kernel_stein_discrepancy_over_ranks(const RowMatrix& x, const RowMatrix& scores, const KsdOptions& options,
                                              Execution exec);

/// Reads a bandwidth parameter: a number > 0 (fixed) or the string "median" (returns 0).
/// \throws ConfigError "flow.key: bandwidth is -1, but must be > 0 or \"median\"".
double read_bandwidth(JsonReader& params, const std::string& key);

}  // namespace boltzlab
