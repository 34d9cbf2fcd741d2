/// bench_mpi_collectives: time per call of the collectives the tools use (core/mpi.hpp)
/// at the message sizes of docs/results/mpi.md's cost model, under mpirun:
///
///   mpirun -np 2 build/bin/bench_mpi_collectives [--rounds 2000]
///
/// Each size: every rank contributes its share of the bytes to an allgatherv (what the
/// replica-exchange swap, the Langevin block slots and the SVGD energy gather do), then
/// a gatherv to rank 0 (frames); a barrier before each round, so a round measures the
/// collective, not a slower rank. Rank 0 prints microseconds per call. On one process it
/// says so and measures the pass-through.
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "boltzlab/core/blas_kernels.hpp"
#include "boltzlab/core/mpi.hpp"
#include "boltzlab/core/timing.hpp"

using namespace boltzlab;

int main(int argc, char** argv) {
  boltzlab::select_blas_kernels(argv);  // may restart once with OpenBLAS kernels for this CPU
  mpi::Session session(argc, argv);
  CLI::App app{"time per call of core/mpi's collectives (run under mpirun)"};
  int rounds = 2000;
  app.add_option("--rounds", rounds, "calls per size");
  CLI11_PARSE(app, argc, argv);
  struct Size {
    const char* what;
    std::size_t doubles;  // all ranks together
  };
  const std::vector<Size> sizes = {{"rex swap, K=4 (2 doubles/replica)", 8},
                                   {"rex swap, K=64", 128},
                                   {"langevin slots, N=4096 (256 blocks x 12)", 3072},
                                   {"svgd u+grad, N=1000 d=2", 3000},
                                   {"svgd u+grad, N=256 d=39 (LJ13)", 10240},
                                   {"svgd u+grad, N=10000 d=32", 330000}};
  if (mpi::is_root()) {
    std::printf("ranks %d%s\n%-44s %12s %14s %14s\n", mpi::size(), mpi::size() == 1 ? " (not under mpirun: pass-through)" : "",
                "message", "bytes", "allgatherv us", "gatherv us");
  }
  for (const Size& s : sizes) {
    const mpi::Block mine = mpi::my_block(s.doubles);
    const std::vector<double> local(mine.size(), 1.0);
    const std::string bytes(mine.size() * sizeof(double), 'x');
    double t_all = 0, t_gather = 0;
    for (int r = 0; r < rounds; ++r) {
      mpi::barrier();
      double t0 = wall_seconds();
      const std::vector<double> all = mpi::allgatherv(local);
      t_all += wall_seconds() - t0;
      mpi::barrier();
      t0 = wall_seconds();
      const std::string gathered = mpi::gatherv(bytes);
      t_gather += wall_seconds() - t0;
      if (all.size() != s.doubles) return 1;
    }
    if (mpi::is_root()) {
      std::printf("%-44s %12zu %14.2f %14.2f\n", s.what, s.doubles * sizeof(double), 1e6 * t_all / rounds,
                  1e6 * t_gather / rounds);
    }
  }
  return 0;
}
