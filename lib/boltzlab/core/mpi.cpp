#include "boltzlab/core/mpi.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "boltzlab/core/error.hpp"

#ifdef BOLTZLAB_HAVE_MPI
#include <mpi.h>
#endif

namespace boltzlab::mpi {
namespace {

double g_communication_seconds = 0.0;

/// Adds the wall time of its scope to communication_seconds().
struct CommunicationTimer {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  ~CommunicationTimer() {
    g_communication_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

}  // namespace

double communication_seconds() { return g_communication_seconds; }

bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

namespace {

/// A failure to start: "PROGRAM: error: MESSAGE" (the tools' convention, app/cli.hpp)
/// and exit status 1, before the tool's own error handling exists.
[[noreturn]] void start_failure(char** argv, const std::string& message) {
  std::string program = argv && argv[0] ? argv[0] : "boltzlab";
  const std::size_t slash = program.rfind('/');
  if (slash != std::string::npos) program.erase(0, slash + 1);
  std::fprintf(stderr, "%s: error: %s\n", program.c_str(), message.c_str());
  std::exit(1);
}

}  // namespace

Block block_of(std::size_t n, int rank, int ranks) {
  const auto r = static_cast<std::size_t>(rank), p = static_cast<std::size_t>(ranks);
  const std::size_t base = n / p, extra = n % p;
  Block b;
  b.begin = r * base + (r < extra ? r : extra);
  b.end = b.begin + base + (r < extra ? 1 : 0);
  return b;
}

Block my_block(std::size_t n) { return block_of(n, rank(), size()); }

bool is_root() { return rank() == 0; }

int run_step(const std::function<int()>& step, double grace_seconds) {
  if (size() == 1 || is_root()) return step();
  try {
    return step();
  } catch (...) {
    std::this_thread::sleep_for(std::chrono::duration<double>(grace_seconds));
    throw;
  }
}

#ifdef BOLTZLAB_HAVE_MPI

namespace {

bool active() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

int to_count(std::size_t n, const char* what) {
  if (n > static_cast<std::size_t>(INT_MAX)) {
    throw DomainError(std::string("mpi: ") + what + " of " + std::to_string(n) +
                      " elements exceeds MPI's int count limit");
  }
  return static_cast<int>(n);
}

/// Counts of every rank and their displacements, from each rank's local count.
struct Layout {
  std::vector<int> counts, displs;
  int total = 0;
  explicit Layout(std::size_t local, const char* what) : counts(static_cast<std::size_t>(size())) {
    int mine = to_count(local, what);
    MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
    displs.resize(counts.size());
    std::size_t sum = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      displs[r] = to_count(sum, what);
      sum += static_cast<std::size_t>(counts[r]);
    }
    total = to_count(sum, what);
  }
  void sizes(std::vector<std::size_t>* out) const {
    if (out) out->assign(counts.begin(), counts.end());
  }
};

}  // namespace

bool built_with_mpi() { return true; }

Session::Session(int& argc, char**& argv) {
  if (!launched_by_mpi() || active()) return;
  int provided = 0;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    start_failure(argv, "mpi: MPI_Init_thread failed");
  }
  initialized_ = true;
  if (provided < MPI_THREAD_FUNNELED) {
    start_failure(argv, "mpi: the MPI library does not support MPI_THREAD_FUNNELED (threads calling MPI one at a time)");
  }
}

Session::~Session() {
  if (initialized_ && active()) MPI_Finalize();
}

int Session::finish(int status) {
  if (status != 0 && size() > 1) abort_job(status);
  return status;
}

int rank() {
  if (!active()) return 0;
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int size() {
  if (!active()) return 1;
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

std::vector<double> allgatherv(const std::vector<double>& local) {
  if (size() == 1) return local;
  const CommunicationTimer timer;
  const Layout l(local.size(), "allgatherv");
  std::vector<double> all(static_cast<std::size_t>(l.total));
  MPI_Allgatherv(local.data(), l.counts[static_cast<std::size_t>(rank())], MPI_DOUBLE, all.data(), l.counts.data(),
                 l.displs.data(), MPI_DOUBLE, MPI_COMM_WORLD);
  return all;
}

std::string allgatherv(const std::string& local, std::vector<std::size_t>* sizes) {
  if (size() == 1) {
    if (sizes) sizes->assign(1, local.size());
    return local;
  }
  const CommunicationTimer timer;
  const Layout l(local.size(), "allgatherv");
  l.sizes(sizes);
  std::string all(static_cast<std::size_t>(l.total), '\0');
  MPI_Allgatherv(local.data(), l.counts[static_cast<std::size_t>(rank())], MPI_BYTE, all.data(), l.counts.data(),
                 l.displs.data(), MPI_BYTE, MPI_COMM_WORLD);
  return all;
}

std::string gatherv(const std::string& local, std::vector<std::size_t>* sizes) {
  if (size() == 1) {
    if (sizes) sizes->assign(1, local.size());
    return local;
  }
  const CommunicationTimer timer;
  const Layout l(local.size(), "gatherv");
  std::string all;
  if (is_root()) {
    l.sizes(sizes);
    all.assign(static_cast<std::size_t>(l.total), '\0');
  }
  MPI_Gatherv(local.data(), l.counts[static_cast<std::size_t>(rank())], MPI_BYTE, all.data(), l.counts.data(),
              l.displs.data(), MPI_BYTE, 0, MPI_COMM_WORLD);
  return all;
}

void allreduce_sum(double* data, std::size_t n) {
  if (size() == 1) return;
  const CommunicationTimer timer;
  const std::vector<double> mine(data, data + n);
  std::vector<double> all;
  const int count = to_count(n * static_cast<std::size_t>(size()), "allreduce_sum");
  if (is_root()) all.resize(static_cast<std::size_t>(count));
  MPI_Gather(mine.data(), to_count(n, "allreduce_sum"), MPI_DOUBLE, all.data(), to_count(n, "allreduce_sum"),
             MPI_DOUBLE, 0, MPI_COMM_WORLD);
  if (is_root()) {
    for (std::size_t k = 0; k < n; ++k) {
      double sum = all[k];
      for (std::size_t r = 1; r < static_cast<std::size_t>(size()); ++r) sum += all[r * n + k];
      data[k] = sum;
    }
  }
  MPI_Bcast(data, to_count(n, "allreduce_sum"), MPI_DOUBLE, 0, MPI_COMM_WORLD);
}

void bcast(double* data, std::size_t n) {
  if (size() == 1) return;
  const CommunicationTimer timer;
  MPI_Bcast(data, to_count(n, "bcast"), MPI_DOUBLE, 0, MPI_COMM_WORLD);
}

void bcast(std::string& bytes) {
  if (size() == 1) return;
  const CommunicationTimer timer;
  unsigned long long n = bytes.size();
  MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
  bytes.resize(static_cast<std::size_t>(n));
  MPI_Bcast(bytes.data(), to_count(static_cast<std::size_t>(n), "bcast"), MPI_BYTE, 0, MPI_COMM_WORLD);
}

bool bcast(bool value) {
  if (size() == 1) return value;
  const CommunicationTimer timer;
  int v = value ? 1 : 0;
  MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return v != 0;
}

void barrier() {
  if (size() == 1) return;
  const CommunicationTimer timer;
  MPI_Barrier(MPI_COMM_WORLD);
}

void abort_job(int status) {
  std::fflush(stdout);
  std::fflush(stderr);
  if (active()) MPI_Abort(MPI_COMM_WORLD, status);
  std::_Exit(status);
}

#else  // no MPI: one process of a job of size 1

namespace {

/// Processes the launcher started (its environment), 1 when it says nothing.
long launcher_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"}) {
    if (const char* v = std::getenv(name)) return std::max(1L, std::strtol(v, nullptr, 10));
  }
  return 1;
}

/// This process's rank by the launcher's environment (0 when it says nothing).
long launcher_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    if (const char* v = std::getenv(name)) return std::strtol(v, nullptr, 10);
  }
  return 0;
}

}  // namespace

bool built_with_mpi() { return false; }
Session::Session(int&, char**& argv) {
  // Several copies of a build without MPI would each run the whole job and race for --out.
  const long processes = launched_by_mpi() ? launcher_size() : 1;
  if (processes > 1) {
    if (launcher_rank() != 0) std::exit(1);  // one line for the job: rank 0's
    start_failure(argv, "started by an MPI launcher as " + std::to_string(processes) +
                            " processes, but this build has no MPI (configured with BOLTZLAB_WITH_MPI=OFF or "
                            "without an MPI found): run it as one process, or rebuild with MPI");
  }
}
Session::~Session() = default;
int Session::finish(int status) { return status; }
int rank() { return 0; }
int size() { return 1; }
std::vector<double> allgatherv(const std::vector<double>& local) { return local; }
std::string allgatherv(const std::string& local, std::vector<std::size_t>* sizes) {
  if (sizes) sizes->assign(1, local.size());
  return local;
}
std::string gatherv(const std::string& local, std::vector<std::size_t>* sizes) {
  if (sizes) sizes->assign(1, local.size());
  return local;
}
void allreduce_sum(double*, std::size_t) {}
void bcast(double*, std::size_t) {}
void bcast(std::string&) {}
bool bcast(bool value) { return value; }
void barrier() {}
void abort_job(int status) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(status);
}

#endif

}  // namespace boltzlab::mpi
