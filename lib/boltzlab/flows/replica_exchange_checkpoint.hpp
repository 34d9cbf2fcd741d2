#pragma once
/// \file replica_exchange_checkpoint.hpp
/// The complete state of a replica-exchange run between two exchanges, and its
/// checkpoint file: everything run_replica_exchange needs to continue exactly as the
/// uninterrupted run would have.
///
/// File layout (little-endian, as written on the machines we run on):
///   "BOLTZLAB-REX\n"                      magic (13 bytes)
///   uint64 n, then n bytes of JSON        header: checkpoint_format_version, the
///                                         options (ReplicaExchangeOptions::to_json),
///                                         target name, dimension and System
///                                         fingerprint (FNV-1a of its XML), counters,
///                                         permutation, round-trip labels, random
///                                         stream words (uint64), array sizes
///   float64 arrays                        per replica x, v, f (3n each) and energy;
///                                         the Rng caches; per temperature the recorded
///                                         frames (F_done×3n), energies (F_done), kinetic
///                                         temperature sums; replica_states (P_done×K);
///                                         swap_attempts, swap_accepted (K×K); start and
///                                         minimized energies; wall and MD seconds
/// written to "<path>.tmp" and renamed over `path` (a crash never leaves half a file).
#include <cstddef>
#include <filesystem>
#include <vector>

#include "boltzlab/core/rng.hpp"
#include "boltzlab/flows/openmm_langevin.hpp"
#include "boltzlab/flows/replica_exchange.hpp"

namespace boltzlab {

/// Version of the checkpoint layout above.
inline constexpr int kReplicaExchangeCheckpointVersion = 1;

/// A run between exchanges. `result` holds everything recorded so far: frames and
/// energies are allocated for the whole production and filled up to frames_done.
struct ReplicaExchangeState {
  std::vector<LangevinState> replicas;          ///< per replica r
  std::vector<Rng> streams;                     ///< per replica r: Rng(seed, r)
  Rng swap_stream;                              ///< Rng(seed, kSwapStream)
  std::vector<std::size_t> state_of_replica;    ///< temperature index of replica r
  /// Per replica: 0 not yet at T_0, 1 at T_0 since it was last at T_{K−1}, 2 reached
  /// T_{K−1} after T_0 (a return to T_0 then completes a round trip).
  std::vector<int> trip_label;
  std::vector<double> kinetic_temperature_sum;  ///< per k: Σ over recorded frames
  std::size_t frames_done = 0;
  std::size_t production_done = 0;             ///< production exchanges done (rows of replica_states)
  ReplicaExchangeResult result;

  /// replica_at_state[k]: the replica currently at temperature k.
  std::vector<std::size_t> replica_at_state() const;
};

/// Writes `state` of a run with `options` on `target` to `path` atomically.
/// \throws IoError naming the file.
void write_replica_exchange_checkpoint(const std::filesystem::path& path, const ReplicaExchangeState& state,
                                       const ReplicaExchangeOptions& options, const OpenMMTarget& target);

/// Reads a checkpoint into `state` (its result arrays sized for `options`' whole
/// production). The checkpoint must come from the same target and the same options,
/// except production_ps, which may be longer (the run is then extended) or shorter
/// as long as what was recorded fits. \throws IoError (unreadable, malformed, wrong
/// format version) or ConfigError naming the option that differs.
void read_replica_exchange_checkpoint(const std::filesystem::path& path, ReplicaExchangeState& state,
                                      const ReplicaExchangeOptions& options, const OpenMMTarget& target);

}  // namespace boltzlab
