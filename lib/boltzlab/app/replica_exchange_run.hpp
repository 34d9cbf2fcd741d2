#pragma once
/// \file replica_exchange_run.hpp
/// The `replica-exchange` tool: replica exchange (parallel tempering,
/// flows/replica_exchange.hpp) of an OpenMM potential, written as a standard run
/// directory whose samples are the frames at the lowest temperature T_0.
///
/// Options come from the potential file's "replica_exchange" section with the
/// command-line overrides on top (a ladder given on the command line replaces the
/// file's). Checkpoints go to <out>.checkpoint.rex (replica_exchange_checkpoint.hpp),
/// beside the run directory, every `checkpoint_seconds` of wall time; `resume`
/// continues from there, bit-identical to an uninterrupted run. The checkpoint is
/// removed once the run directory is committed.
#include <cstddef>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "boltzlab/flows/replica_exchange.hpp"

namespace boltzlab {

/// Options of a replica-exchange run (the tool `replica-exchange`).
struct ReplicaExchangeRunOptions {
  std::filesystem::path potential;  ///< potential file (type openmm)
  std::filesystem::path out;        ///< run directory
  /// Overrides in the keys of replica_exchange_options_from_json (from the flags),
  /// applied over the potential's "replica_exchange" section.
  Json protocol = Json::object();
  bool progress = true;             ///< progress lines on stderr
  int threads = 0;                  ///< worker threads (0: all cores)
  bool resume = false;              ///< continue from <out>.checkpoint.rex
  double checkpoint_seconds = 300;  ///< wall time between checkpoints (0: not by time)
  std::size_t checkpoint_exchanges = 0;  ///< also every this many exchanges (0: not by count)
  /// --netcdf FILE: also write the samples in ArviZ's InferenceData layout (io/netcdf.hpp):
  /// the frames at the lowest temperature T_0 as one chain (draw = frame; the other
  /// temperatures are other distributions, not chains of this one), posterior "x" (nm,
  /// the rows of samples.npy), sample_stats "reduced_energy" (u, reduced_energies.npy),
  /// "lp" (−u) and "potential_energy" (kJ/mol); attributes temperature_K (T_0) and
  /// temperatures_K (the ladder). Checked before the run. Empty: none.
  std::filesystem::path netcdf;
  /// \throws ConfigError naming the flag.
  void validate() const;
};

/// <out>.checkpoint.rex
std::filesystem::path replica_exchange_checkpoint_path(const std::filesystem::path& out);

/// The options of a run: the potential's section (null: none) with `protocol` on top,
/// the ladder starting at `temperature` (K) unless given. \throws ConfigError naming
/// the key (context "options" when flags were given, else "<potential>: replica_exchange").
ReplicaExchangeOptions resolve_replica_exchange_options(const Json& section, const Json& protocol,
                                                        double temperature, const std::string& potential);

/// Runs replica exchange and writes the run directory through app/run_outputs:
///   samples.npy, reduced_energies.npy   frames at T_0 and u = E/kT (target's kT)
///   molecular outputs                   of the T_0 frames (trajectory.dcd, Ramachandran, ...)
///   energy_histogram.png                u of the T_0 frames
///   potential_energies.npy              E of the T_0 frames (kJ/mol)
///   temperatures.npy                    (K) the ladder (K)
///   frames_by_temperature.npy           (K, F, 3n) frames at each temperature (nm)
///   energies_by_temperature.npy         (K, F) E of those frames (kJ/mol)
///   swap_attempts.npy, swap_acceptance.npy   (K, K) attempts and accepted/attempted
///   replica_states.npy                  (P, K) temperature index of each replica after
///                                       each production exchange
///   mixing.png                          those states against time
/// Over MPI ranks (core/mpi.hpp) the replicas are split in contiguous blocks over the
/// ranks; rank 0 alone writes the run directory and the checkpoints, and the result is
/// byte-identical to one process (summary "ranks" and "timings" aside).
/// Returns the summary (on every rank). A run that stopped on a non-finite replica still writes what
/// it recorded (summary counts.non_finite_replicas, a note) when it has frames.
/// \throws ConfigError/IoError/BackendError naming what failed.
nlohmann::json run_replica_exchange_tool(const ReplicaExchangeRunOptions& options);

}  // namespace boltzlab
