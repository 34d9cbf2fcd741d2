#pragma once
/// \file mpi.hpp
/// The few MPI operations boltzlab uses, on MPI_COMM_WORLD, behind plain C++ types, so
/// call sites need no #ifdef: built without MPI (BOLTZLAB_WITH_MPI off or MPI not
/// found) every function behaves as the one process of a job of size 1.
///
/// MPI is initialised only when the process was started by an MPI launcher (mpirun,
/// mpiexec, srun: its environment names a rank); a tool started by hand stays a plain
/// process of size 1, with no MPI start-up cost and no launcher needed. Only the main
/// thread calls MPI (MPI_THREAD_FUNNELED): oneTBB workers never do.
///
/// Determinism: every collective here either moves data unchanged (gather, bcast) or
/// hands every rank all the pieces in rank order; sums are left to the caller, who adds
/// the pieces in a fixed order, so results are bit-identical for any number of ranks.
///
/// Errors: a rank that fails prints one line and calls abort_job(), which ends every
/// rank (MPI_Abort); a rank waiting in a collective never hangs on a dead peer.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace boltzlab::mpi {

/// Whether this build has MPI (BOLTZLAB_WITH_MPI).
bool built_with_mpi();

/// Whether the environment says this process was started by an MPI launcher
/// (OMPI_COMM_WORLD_SIZE: Open MPI's mpirun; PMI_SIZE: MPICH's mpiexec, srun --mpi=pmi2;
/// PMIX_RANK: srun --mpi=pmix).
bool launched_by_mpi();

/// MPI_Init_thread / MPI_Finalize for the lifetime of a tool's main (RAII). Does nothing
/// when the process was not started by a launcher. One per process. When MPI cannot
/// start (MPI_Init_thread fails or gives less than MPI_THREAD_FUNNELED), or a build
/// without MPI was started by a launcher as several processes (each would run the whole
/// job and race for --out), prints "PROGRAM: error: ..." and exits with status 1.
class Session {
 public:
  Session(int& argc, char**& argv);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// A tool's exit: `status` unchanged on one rank or when it is 0; otherwise the whole
  /// job is ended with MPI_Abort(status) (other ranks may wait in a collective).
  int finish(int status);

 private:
  bool initialized_ = false;
};

/// This process's rank in MPI_COMM_WORLD (0 without MPI).
int rank();
/// Number of ranks (1 without MPI).
int size();
/// rank() == 0: the rank that alone writes run directories and checkpoints.
bool is_root();

/// [begin, end) of the items of `rank` when `n` items are split into contiguous
/// blocks over `ranks`: the first n mod ranks ranks get one item more.
struct Block {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::size_t size() const { return end - begin; }
};
Block block_of(std::size_t n, int rank, int ranks);
/// block_of(n, rank(), size()).
Block my_block(std::size_t n);

/// Every rank's `local` doubles concatenated in rank order, on every rank.
std::vector<double> allgatherv(const std::vector<double>& local);
/// Every rank's `local` bytes concatenated in rank order, on every rank; `sizes`
/// (when given) receives each rank's byte count.
std::string allgatherv(const std::string& local, std::vector<std::size_t>* sizes = nullptr);
/// Every rank's `local` bytes concatenated in rank order on rank 0 (empty elsewhere);
/// `sizes` (when given, rank 0) receives each rank's byte count.
std::string gatherv(const std::string& local, std::vector<std::size_t>* sizes = nullptr);
/// Element-wise sum over ranks of `data` (n doubles) on every rank, added in rank
/// order on rank 0 and broadcast (so the bits do not depend on MPI's reduction tree).
void allreduce_sum(double* data, std::size_t n);
/// Rank 0's `data` (n doubles) on every rank.
void bcast(double* data, std::size_t n);
/// Rank 0's `bytes` on every rank.
void bcast(std::string& bytes);
/// Rank 0's `value` on every rank.
bool bcast(bool value);
/// Waits until every rank gets here.
void barrier();

/// Wall time (s) this process spent in the collectives above, waiting for slower ranks
/// included (0 on one rank): the communication share of a run's timings.
double communication_seconds();

/// Ends every rank of the job with exit status `status` (MPI_Abort); exits this
/// process when there is no MPI.
[[noreturn]] void abort_job(int status);

/// Runs a tool step so that an error every rank hits (bad input read by all) is
/// printed once: on a rank other than 0, an exception waits `grace_seconds` before it
/// propagates (rank 0, failing too, prints and ends the job meanwhile), so a rank that
/// fails alone still prints its own line. Plain call on one rank.
int run_step(const std::function<int()>& step, double grace_seconds = 2.0);

}  // namespace boltzlab::mpi
