#pragma once
/// \file replica_exchange.hpp
/// Replica exchange (parallel tempering) of an OpenMM target: K replicas of the
/// system run Langevin dynamics at the temperatures T_0 < T_1 < ... < T_{K−1} of a
/// ladder, and every exchange interval the temperatures are swapped between
/// replicas with the Metropolis criterion (Swendsen & Wang, Phys. Rev. Lett. 57,
/// 2607 (1986); Hukushima & Nemoto, J. Phys. Soc. Jpn. 65, 1604 (1996); for
/// molecular dynamics Sugita & Okamoto, Chem. Phys. Lett. 314, 141 (1999)):
///
///   P(accept swap of the configurations at states i, j)
///       = min(1, exp((β_i − β_j)(E_i − E_j))),   β = 1/(k_B T),
///
/// with E_i the potential energy of the configuration currently at temperature T_i.
/// After an accepted swap each replica's velocities are rescaled by sqrt(T_new/T_old)
/// (Sugita & Okamoto 1999), so they stay Maxwell–Boltzmann at the new temperature.
/// Temperatures are permuted among the replicas (as openmmtools does), configurations
/// never move: replica r keeps its positions, velocities and random stream.
///
/// Dynamics: the LangevinMiddle ("BAOA") stepper of flows/openmm_langevin.hpp with
/// forces from the target's per-thread Contexts; replica r draws its noise from
/// Rng(seed, r) and the swap decisions come, serially, from a separate stream
/// Rng(seed, kSwapStream). OpenMM's own Reference integrators share one process-global
/// random generator, so running them concurrently would make the result depend on the
/// thread schedule; this design gives bit-identical results for any thread count, and
/// a run continued from a checkpoint is bit-identical to one never interrupted.
///
/// Swap schemes:
///   kNeighbors  deterministic even/odd neighbour swaps: exchange e attempts every
///               pair (k, k+1) with k ≡ e (mod 2), all independent (Okabe, Kawata,
///               Okamoto & Mikami, Chem. Phys. Lett. 335, 435 (2001); the
///               non-reversible "DEO" scheme of Syed, Bouchard-Côté, Deligiannidis &
///               Doucet, J. R. Stat. Soc. B 84, 321 (2022)). Exchange e counts from
///               0 at the start of equilibration.
///   kAllPairs   K³ attempts, each of a pair (i ≠ j) drawn uniformly, applied one
///               after the other: an approximation of Gibbs sampling of the whole
///               permutation (Chodera & Shirts, J. Chem. Phys. 135, 194110 (2011),
///               "independence sampling"; openmmtools' "swap-all" does the same).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/targets/openmm_target.hpp"

namespace boltzlab {

/// Which temperature pairs an exchange attempts (see the file comment).
enum class SwapScheme { kNeighbors, kAllPairs };

/// "neighbors" or "all-pairs".
std::string swap_scheme_name(SwapScheme scheme);
/// Parses "neighbors" / "all-pairs". \throws ConfigError "<context>: ..." otherwise.
SwapScheme parse_swap_scheme(const std::string& name, const std::string& context);

/// Random stream index of the swap decisions (replica r uses stream r).
inline constexpr std::uint64_t kSwapStream = 0xFFFFFFFFULL;

/// Settings of a replica-exchange run. Times are MD time per replica.
struct ReplicaExchangeOptions {
  std::vector<double> temperatures;   ///< K ≥ 2, strictly ascending; samples are wanted at temperatures[0]
  double timestep_fs = 1.0;           ///< LangevinMiddle step Δt (fs)
  double friction_per_ps = 1.0;       ///< collision rate γ (1/ps)
  double exchange_interval_ps = 1.0;  ///< MD time between swap attempts (whole steps)
  double equilibration_ps = 100.0;    ///< swaps run, nothing recorded (whole exchange intervals)
  double production_ps = 1000.0;      ///< recorded production (whole frame intervals)
  double frame_interval_ps = 1.0;     ///< a whole multiple of exchange_interval_ps
  bool minimize = true;               ///< minimize the start configuration once (LocalEnergyMinimizer)
  SwapScheme swaps = SwapScheme::kNeighbors;
  std::uint64_t seed = 1;             ///< replica r: stream (seed, r); swaps: (seed, kSwapStream)
  bool progress = false;              ///< progress lines (rate, ETA) on stderr
  /// \throws ConfigError naming the option ("temperatures: ...", "frame_interval_ps: ...").
  void validate() const;

  std::size_t steps_per_exchange() const;      ///< exchange_interval_ps / Δt
  std::size_t equilibration_exchanges() const;  ///< equilibration_ps / exchange interval
  std::size_t production_exchanges() const;     ///< production_ps / exchange interval
  std::size_t exchanges_per_frame() const;      ///< frame_interval_ps / exchange interval
  std::size_t frames() const;                   ///< production_exchanges / exchanges_per_frame
  /// The options as a JSON object in the keys of replica_exchange_options_from_json
  /// (production as "production_ns"), without "progress".
  Json to_json() const;
};

/// n temperatures t_min·(t_max/t_min)^(k/(n−1)), k = 0..n−1 (constant ratio between
/// neighbours: roughly constant neighbour acceptance when the heat capacity is
/// constant; Sugita & Okamoto 1999). t_min and t_max exactly at the ends.
/// \throws ConfigError unless 0 < t_min < t_max (finite) and n ≥ 2.
std::vector<double> geometric_ladder(double t_min, double t_max, std::size_t n);

/// Applies a "replica_exchange" section of a potential file (or command-line
/// overrides) on top of `base`. Keys, all optional: "temperatures" (array of K),
/// or "t_max" with "replicas" (a geometric ladder from "t_min", default the
/// temperatures[0] of `base`), "timestep_fs", "friction_per_ps",
/// "exchange_interval_ps", "equilibration_ps", "production_ns", "frame_interval_ps",
/// "minimize", "swaps" ("neighbors" | "all-pairs"), "seed". Unknown keys are
/// rejected. The result is validated. \throws ConfigError "<context>.<key>: ...".
ReplicaExchangeOptions replica_exchange_options_from_json(const Json& section, const std::string& context,
                                                          ReplicaExchangeOptions base = {});

/// What a run produced. Frames and energies are indexed by temperature (state) k,
/// not by replica.
struct ReplicaExchangeResult {
  std::vector<double> temperatures;
  std::vector<RowMatrix> frames;                    ///< per k: F×3n positions (nm)
  std::vector<Eigen::VectorXd> potential_energies;  ///< per k: E at those frames (kJ/mol)
  /// Per k: mean kinetic temperature 2 KE/(k_B·dof) at the frames (K), dof = 3n − 3
  /// with a CMMotionRemover, else 3n: a thermostat check.
  std::vector<double> mean_kinetic_temperature;
  Eigen::MatrixXd swap_attempts, swap_accepted;     ///< K×K by temperature pair, symmetric (production)
  /// Per replica: completed T_0 → T_{K−1} → T_0 cycles during production (a replica
  /// counts a cycle when it comes back to T_0 after having reached T_{K−1} since it
  /// was last at T_0; what it visited during equilibration counts as history).
  std::vector<std::size_t> round_trips;
  /// P×K: temperature index of replica r after each production exchange p (after the
  /// swaps), for the mixing plot.
  RowMatrix replica_states;
  /// Exchanges (and hence MD segments) done, equilibration included.
  std::size_t exchanges_done = 0;
  std::size_t equilibration_exchanges = 0;
  std::size_t steps_per_exchange = 0;
  std::size_t md_steps = 0;                ///< per replica
  double start_energy = 0.0;               ///< E of `start` (kJ/mol)
  double minimized_energy = 0.0;           ///< E after minimization (= start when off)
  bool removes_com = false;                ///< the System has a CMMotionRemover
  std::size_t non_finite_replicas = 0;     ///< replicas whose energy or forces became non-finite
  bool failed = false;                     ///< the run stopped early (non-finite replica, OpenMM error)
  std::string failure;                     ///< why (names the replica, temperature and step)
  bool interrupted = false;                ///< stopped by ReplicaExchangeCheckpointing::stop_after_exchanges
  bool resumed = false;                    ///< continued from a checkpoint
  std::size_t resumed_at_exchange = 0;     ///< exchanges_done of that checkpoint
  std::size_t checkpoints_written = 0;     ///< in this invocation
  double wall_seconds = 0.0;               ///< of the run, all invocations together
  double md_seconds = 0.0;                 ///< of the MD segments, all invocations together

  /// Accepted / attempted swaps of the neighbour pairs (k, k+1), K − 1 values (NaN
  /// where none was attempted).
  std::vector<double> neighbor_acceptance() const;
};

/// Checkpoints of a run (replica_exchange_checkpoint.hpp has the format). A checkpoint
/// is written after an exchange when `every_exchanges` > 0 and the exchange count is
/// a multiple of it, or when `every_seconds` of wall time passed since the last one.
struct ReplicaExchangeCheckpointing {
  std::filesystem::path path;        ///< checkpoint file; empty: no checkpoints
  double every_seconds = 300.0;      ///< wall time between checkpoints (≤ 0: not by time)
  std::size_t every_exchanges = 0;   ///< every this many exchanges (0: not by count)
  bool resume = false;               ///< continue from `path` (which must exist)
  /// Tests: write a checkpoint after this many exchanges and return (result.interrupted);
  /// 0: run to the end.
  std::size_t stop_after_exchanges = 0;
};

/// Runs replica exchange from `start` (flat 3n, nm): minimize once (optional), draw
/// each replica's velocities at its temperature, equilibrate, then record frames.
/// Over MPI ranks (core/mpi.hpp) the replicas are split in contiguous blocks; a swap
/// exchanges only the energies; rank 0 alone writes checkpoints; every rank returns the
/// same result, bit-identical to one process (timings aside).
/// A replica whose energy or forces become non-finite stops the run: the result has
/// failed = true, the failure, non_finite_replicas and everything recorded before.
/// \throws ConfigError (options; a checkpoint from other options), DomainError
/// (start has the wrong size), IoError (checkpoint unreadable or unwritable).
ReplicaExchangeResult run_replica_exchange(const OpenMMTarget& target, const std::vector<double>& start,
                                           const ReplicaExchangeOptions& options,
                                           const ReplicaExchangeCheckpointing* checkpointing = nullptr);

}  // namespace boltzlab
