#include "boltzlab/flows/langevin.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/mpi.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/rng_lanes.hpp"
#include "boltzlab/core/simd.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------- vector loops
// The per-coordinate loops of the kernels, compiled for AVX-512, AVX2 with FMA and the
// baseline ISA and chosen at run time (the library is compiled for the baseline ISA).
// Sums are taken in eight lanes, then over the lanes pairwise: the same order for
// every instruction set.

using simd::v8d;
#define BOLTZLAB_LANGEVIN_MULTIVERSION BOLTZLAB_MULTIVERSION
#define BOLTZLAB_LANGEVIN_INLINE BOLTZLAB_SIMD_INLINE

BOLTZLAB_LANGEVIN_INLINE v8d load8(const double* p) { return simd::load(p); }
BOLTZLAB_LANGEVIN_INLINE void store8(double* p, v8d v) { simd::store(p, v); }
/// p[0, m) (m ≤ 8) in the low lanes of a vector of zeros.
BOLTZLAB_LANGEVIN_INLINE v8d load_part(const double* p, std::size_t m) {
  v8d v = {};
  for (std::size_t l = 0; l < m; ++l) v[l] = p[l];
  return v;
}
BOLTZLAB_LANGEVIN_INLINE void store_part(double* p, v8d v, std::size_t m) {
  for (std::size_t l = 0; l < m; ++l) p[l] = v[l];
}
/// Σ of the lanes, pairwise, always as ((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7)),
/// by shuffles in registers.
BOLTZLAB_LANGEVIN_INLINE double lane_sum(v8d v) {
  typedef long long v8l __attribute__((vector_size(64)));
  const v8d a = v + __builtin_shuffle(v, v8l{1, 0, 3, 2, 5, 4, 7, 6});
  const v8d b = a + __builtin_shuffle(a, v8l{2, 3, 0, 1, 6, 7, 4, 5});
  const v8d c = b + __builtin_shuffle(b, v8l{4, 5, 6, 7, 0, 1, 2, 3});
  return c[0];
}

/// body(offset, count) over [0, d) in chunks of eight coordinates; the last chunk
/// (count < 8) works on zero-padded vectors. Every coordinate goes through the same
/// vector arithmetic, so no coordinate's rounding depends on d, on the alignment of
/// the arrays or on which loop (vector or scalar remainder) would have handled it.
template <class Body>
BOLTZLAB_LANGEVIN_INLINE void for_chunks(std::size_t d, Body&& body) {
  std::size_t k = 0;
  for (; k + 8 <= d; k += 8) body(k, std::size_t{8});
  if (k < d) body(k, d - k);
}
BOLTZLAB_LANGEVIN_INLINE v8d load_n(const double* p, std::size_t m) { return m == 8 ? load8(p) : load_part(p, m); }
BOLTZLAB_LANGEVIN_INLINE void store_n(double* p, v8d v, std::size_t m) {
  if (m == 8) {
    store8(p, v);
  } else {
    store_part(p, v, m);
  }
}

/// Whether every g[k], k < d, is finite (exponent field not all ones): an integer test,
/// which vectorizes (a floating-point comparison chain with an early exit does not).
BOLTZLAB_LANGEVIN_MULTIVERSION
bool all_finite(const double* g, std::size_t d) {
  std::uint64_t bad = 0;
  for (std::size_t k = 0; k < d; ++k) {
    std::uint64_t bits;
    std::memcpy(&bits, g + k, sizeof bits);
    bad |= static_cast<std::uint64_t>((bits & 0x7FF0000000000000ULL) == 0x7FF0000000000000ULL);
  }
  return bad == 0;
}

/// y ← x + a·ξ − b·g.
BOLTZLAB_LANGEVIN_MULTIVERSION
void overdamped_step(double* y, const double* x, const double* xi, const double* g, double a, double b,
                     std::size_t d) {
  for_chunks(d, [&](std::size_t k, std::size_t m) {
    store_n(y + k, load_n(x + k, m) + (a * load_n(xi + k, m) - b * load_n(g + k, m)), m);
  });
}

/// y ← x + a·ξ − b·g; returns |ξ|².
BOLTZLAB_LANGEVIN_MULTIVERSION
double overdamped_move(double* y, const double* x, const double* xi, const double* g, double a, double b,
                       std::size_t d) {
  v8d sq = {};
  for_chunks(d, [&](std::size_t k, std::size_t m) {
    const v8d v = load_n(xi + k, m);
    store_n(y + k, load_n(x + k, m) + (a * v - b * load_n(g + k, m)), m);
    sq += v * v;
  });
  return lane_sum(sq);
}

/// |x − y + b·g|².
BOLTZLAB_LANGEVIN_MULTIVERSION
double reverse_residual(const double* x, const double* y, const double* g, double b, std::size_t d) {
  v8d sq = {};
  for_chunks(d, [&](std::size_t k, std::size_t m) {
    const v8d r = load_n(x + k, m) - load_n(y + k, m) + b * load_n(g + k, m);
    sq += r * r;
  });
  return lane_sum(sq);
}

/// The B A O A part of a BAOAB step (langevin.hpp): p ← p − kick·g, x ← x + drift·p,
/// p ← c1·p + c2·ξ, y ← x + drift·p (the new positions into y).
BOLTZLAB_LANGEVIN_MULTIVERSION
void baoa(double* y, const double* x, double* p, const double* g, const double* xi, double kick, double drift,
          double c1, double c2, std::size_t d) {
  for_chunks(d, [&](std::size_t k, std::size_t m) {
    v8d pk = load_n(p + k, m) - kick * load_n(g + k, m);
    const v8d xk = load_n(x + k, m) + drift * pk;
    pk = c1 * pk + c2 * load_n(xi + k, m);
    store_n(y + k, xk + drift * pk, m);
    store_n(p + k, pk, m);
  });
}

/// p ← p − kick·g (the closing B of BAOAB).
BOLTZLAB_LANGEVIN_MULTIVERSION
void kick_momenta(double* p, const double* g, double kick, std::size_t d) {
  for_chunks(d, [&](std::size_t k, std::size_t m) { store_n(p + k, load_n(p + k, m) - kick * load_n(g + k, m), m); });
}

/// Particles per block. Fixed (never chosen by the scheduler), so per-block partial
/// sums combined in block order give the same bits for any thread count.
constexpr std::size_t kBlock = 16;
/// Most flow-specific monitor channels a kernel may add.
constexpr int kMaxExtras = 2;

/// Spatial layout of particle systems ({0, 0}: not a particle system).
struct Layout {
  std::size_t n = 0;
  std::size_t s = 0;
  /// Projects v (length n·s) onto the centre-of-mass-free subspace (no-op otherwise).
  void project(double* v) const {
    if (n > 0) remove_center_of_mass(v, n, s);
  }
};

/// Counters summed over a block of particles, combined in block order.
struct Tally {
  double accept_prob = 0.0;     ///< Σ min(1, acceptance ratio)
  std::size_t accepted = 0;     ///< accepted proposals
  std::size_t non_finite = 0;   ///< evaluations with non-finite u or ∇u
  std::size_t evaluations = 0;  ///< evaluations of u (with ∇u)
  void add(const Tally& o) {
    accept_prob += o.accept_prob;
    accepted += o.accepted;
    non_finite += o.non_finite;
    evaluations += o.evaluations;
  }
};

/// Monitor accumulator of one block at one monitor point.
struct MonitorAcc {
  double sum_u = 0.0;
  std::size_t finite = 0;
  double extra[kMaxExtras] = {0.0, 0.0};
};

/// Particles whose normals are drawn together (side by side in vector lanes, each from
/// its own stream): the block is taken through the steps in groups of this many.
constexpr std::size_t kGroup = kNormalLanes;
static_assert(kBlock % kGroup == 0, "a block is a whole number of groups");

/// n doubles starting at a 64-byte boundary (a cache line), so that a vector store
/// and the load of the same coordinates that follows it stay within one line (a
/// store split over two lines is not forwarded to the load: the load waits).
class AlignedDoubles {
 public:
  explicit AlignedDoubles(std::size_t n = 0) { resize(n); }
  AlignedDoubles(const AlignedDoubles&) = delete;
  AlignedDoubles& operator=(const AlignedDoubles&) = delete;
  void resize(std::size_t n) {
    storage_.assign(n + 8, 0.0);
    const auto address = reinterpret_cast<std::uintptr_t>(storage_.data());
    data_ = storage_.data() + (64 - address % 64) % 64 / sizeof(double);
  }
  double* data() { return data_; }
  const double* data() const { return data_; }

 private:
  std::vector<double> storage_;
  double* data_ = nullptr;
};

/// Per-block scratch (allocated once per block and segment, never per step): the
/// current group's projected draws (row i − first for particle i) and MALA's proposal.
struct Scratch {
  AlignedDoubles xi, y, gy;
  std::size_t first = 0;  ///< first particle of the group whose draws xi holds
  std::size_t d;
  explicit Scratch(std::size_t dim) : xi(kGroup * dim), y(dim), gy(dim), d(dim) {}
  /// Particle i's projected draw P ξ (its group's draws must be current).
  const double* draws(std::size_t i) const { return xi.data() + (i - first) * d; }
};

/// State shared by the three kernels: the ensemble, gradients and streams.
struct ChainState {
  const Target& target;
  Ensemble& ensemble;
  AlignedDoubles grad;     ///< ∇u at the current positions, n × d row-major
  std::vector<Rng> rng;    ///< rng[i] = stream_for(seed, i)
  Layout layout;
  std::size_t d;
  std::vector<double> tau;  ///< tau[i]: particle i's current step size
  ChainState(const Target& t, Ensemble& e) : target(t), ensemble(e), d(e.dim()) {}
  double* x(std::size_t i) { return ensemble.particle(i); }
  double* g(std::size_t i) { return grad.data() + i * d; }
  double& u(std::size_t i) { return ensemble.reduced_energies[static_cast<Eigen::Index>(i)]; }
  /// Draws the next N(0, I) vector of each particle of [first, last) (at most kGroup,
  /// each from its own stream rng[i]) into s.xi, projected onto the centre-of-mass-free
  /// subspace (P ξ).
  void draw_group(std::size_t first, std::size_t last, Scratch& s) {
    fill_normal_lanes(&rng[first], last - first, s.xi.data(), d);
    s.first = first;
    for (std::size_t i = first; i < last; ++i) layout.project(s.xi.data() + (i - first) * d);
  }
  /// u and ∇u at x into (u_out, g_out); counts the evaluation.
  double evaluate(const double* xp, double* gp, Tally& tally) const {
    double e = target.reduced_energy(xp, gp);
    ++tally.evaluations;
    // Branch-free finiteness test of ∇u: |g| <= DBL_MAX is false exactly for ±inf and
    // NaN. An integer OR reduction vectorizes (unlike a loop with an early exit, or a
    // floating-point sum, which the compiler may not reorder).
    if (!std::isfinite(e) || !all_finite(gp, d)) {
      e = std::numeric_limits<double>::infinity();
      ++tally.non_finite;
    }
    return e;
  }
};

// ---------------------------------------------------------------- adaptation

/// Dual averaging of log τ toward a target acceptance (Hoffman & Gelman 2014,
/// Algorithm 5): H̄_t = (1 − 1/(t+t0)) H̄_{t−1} + (α* − α_t)/(t+t0);
/// log τ_t = μ − √t/γ · H̄_t (clamped to log τ₀ ± kClamp, so that τ neither underflows
/// to 0 nor overflows); log τ̄_t = t^{−κ} log τ_t + (1 − t^{−κ}) log τ̄_{t−1}.
/// The frozen step size after warm-up is τ̄. One instance per chain.
class DualAveraging {
 public:
  DualAveraging(double tau0, double target)
      : log_tau0_(std::log(tau0)), mu_(std::log(10.0 * tau0)), target_(target), log_tau_bar_(log_tau0_) {}
  /// Feeds the acceptance probability α_t of the step just taken; returns the next τ.
  double update(double acceptance) {
    ++t_;
    const double t = static_cast<double>(t_);
    const double a = std::isfinite(acceptance) ? acceptance : 0.0;
    h_bar_ = (1.0 - 1.0 / (t + kT0)) * h_bar_ + (target_ - a) / (t + kT0);
    const double log_tau = std::clamp(mu_ - std::sqrt(t) / kGamma * h_bar_, log_tau0_ - kClamp, log_tau0_ + kClamp);
    const double w = std::pow(t, -kKappa);
    log_tau_bar_ = w * log_tau + (1.0 - w) * log_tau_bar_;
    return std::exp(log_tau);
  }
  double final_step_size() const { return std::exp(log_tau_bar_); }

 private:
  static constexpr double kGamma = 0.05;
  static constexpr double kT0 = 10.0;
  static constexpr double kKappa = 0.75;
  static constexpr double kClamp = 30.0;
  double log_tau0_;
  double mu_;
  double target_;
  double h_bar_ = 0.0;
  double log_tau_bar_;
  std::size_t t_ = 0;
};

// ---------------------------------------------------------------- kernels
// Each kernel advances one particle by one step: step(i, β, warmup, scratch, tally)
// returns the acceptance probability of the step (1 for unadjusted moves); `warmup`
// is true during the warm-up steps. end_warmup() is called once between the phases.

/// The overdamped Langevin move of particle i at inverse temperature β: position,
/// gradient, the projected draw Pξ (in the block's scratch), drift τβ and noise √(2τ).
struct OverdampedMove {
  double* x;
  double* g;
  const double* xi;
  double drift;
  double noise;
  OverdampedMove(ChainState& st, std::size_t i, double beta, const Scratch& s)
      : x(st.x(i)), g(st.g(i)), xi(s.draws(i)), drift(st.tau[i] * beta),
        noise(std::sqrt(2.0 * st.tau[i])) {}
};

/// Base of the kernels without adaptation or per-chain counters: init and end_warmup
/// do nothing.
struct PlainKernel {
  static constexpr bool kDrawsAtInit = false;
  void init(std::size_t, const Scratch&) {}
  void end_warmup() {}
  void share_chains(std::size_t, std::size_t) {}
};

struct UlaKernel : PlainKernel {
  ChainState& st;
  explicit UlaKernel(ChainState& state) : st(state) {}
  static constexpr int kExtras = 0;
  static const char* extra_name(int) { return ""; }
  /// x ← x − τβ∇u(x) + √(2τ) Pξ; then u, ∇u at the new x. The new x is evaluated
  /// from the block's aligned scratch (see AlignedDoubles), then copied into place.
  double step(std::size_t i, double beta, bool, Scratch& s, Tally& tally) {
    const OverdampedMove m(st, i, beta, s);
    double* y = s.y.data();
    overdamped_step(y, m.x, m.xi, m.g, m.noise, m.drift, st.d);
    st.u(i) = st.evaluate(y, m.g, tally);
    std::copy(y, y + st.d, m.x);
    return 1.0;
  }
  void extras(std::size_t, double, double*) const {}
};

struct MalaKernel {
  ChainState& st;
  std::vector<DualAveraging> adapters;  ///< one per chain; empty: no adaptation
  std::vector<std::size_t> accepted;    ///< per chain: accepted proposals of the sampling phase
  std::vector<std::size_t> rejections;  ///< per chain: proposals rejected since its last acceptance (sampling phase)
  MalaKernel(ChainState& state, std::size_t n, double tau0, double target, bool adapt)
      : st(state), accepted(n, 0), rejections(n, 0) {
    if (adapt) adapters.assign(n, DualAveraging(tau0, target));
  }
  static constexpr int kExtras = 1;
  static constexpr bool kDrawsAtInit = false;
  static const char* extra_name(int) { return "acceptance"; }
  void init(std::size_t, const Scratch&) {}
  /// Over MPI ranks: every rank gets the per-chain counters of all chains (this rank
  /// owns [first, last)), for the chain statistics.
  void share_chains(std::size_t first, std::size_t last) {
    std::vector<double> mine;
    for (std::size_t i = first; i < last; ++i) {
      mine.push_back(static_cast<double>(accepted[i]));
      mine.push_back(static_cast<double>(rejections[i]));
    }
    const std::vector<double> all = mpi::allgatherv(mine);
    for (std::size_t i = 0; i < accepted.size(); ++i) {
      accepted[i] = static_cast<std::size_t>(all[2 * i]);
      rejections[i] = static_cast<std::size_t>(all[2 * i + 1]);
    }
  }
  /// Freezes τ_i at the averaged iterate τ̄_i of its dual averaging.
  void end_warmup() {
    for (std::size_t i = 0; i < adapters.size(); ++i) st.tau[i] = adapters[i].final_step_size();
  }
  /// Proposal y = x − τβ∇u(x) + √(2τ) Pξ, accepted with probability
  /// min(1, exp(log α)), log α = −β(u(y) − u(x)) − |x − y + τβ∇u(y)|²/(4τ) + |Pξ|²/2
  /// (the forward term |y − x + τβ∇u(x)|²/(4τ) equals |Pξ|²/2). In warm-up the
  /// acceptance probability then drives particle i's own τ_i.
  double step(std::size_t i, double beta, bool warmup, Scratch& s, Tally& tally) {
    const double prob = propose(i, beta, warmup, s, tally);
    if (warmup && !adapters.empty()) st.tau[i] = adapters[i].update(prob);
    return prob;
  }
  double propose(std::size_t i, double beta, bool warmup, Scratch& s, Tally& tally) {
    const std::size_t d = st.d;
    const OverdampedMove m(st, i, beta, s);
    double* y = s.y.data();
    double* gy = s.gy.data();
    const double forward = overdamped_move(y, m.x, m.xi, m.g, m.noise, m.drift, d);
    const double uy = st.evaluate(y, gy, tally);
    const double backward = reverse_residual(m.x, y, gy, m.drift, d);
    const double log_alpha = -beta * (uy - st.u(i)) - backward / (4.0 * st.tau[i]) + 0.5 * forward;
    const double prob = metropolis_probability(log_alpha);
    tally.accept_prob += prob;
    const bool accept = std::log(st.rng[i].uniform_pos()) < log_alpha;  // NaN compares false: rejected
    if (accept) {
      std::copy(y, y + d, m.x);
      std::copy(gy, gy + d, m.g);
      st.u(i) = uy;
      ++tally.accepted;
    }
    if (!warmup) {
      accepted[i] += accept;
      rejections[i] = accept ? 0 : rejections[i] + 1;
    }
    return prob;
  }
  /// min(1, exp(log α)); a NaN ratio (or u(y) = +inf) gives 0.
  static double metropolis_probability(double log_alpha) {
    return log_alpha >= 0.0 ? 1.0 : (log_alpha < 0.0 ? std::exp(log_alpha) : 0.0);
  }
  void extras(std::size_t, double last_accept, double* out) const { out[0] = last_accept; }
};

struct BaoabKernel {
  ChainState& st;
  RowMatrix momenta;
  double friction;
  double mass;
  double dof;
  static constexpr int kExtras = 1;
  static constexpr bool kDrawsAtInit = true;  ///< the momenta
  static const char* extra_name(int) { return "kinetic_temperature"; }
  double* p(std::size_t i) { return momenta.row(static_cast<Eigen::Index>(i)).data(); }
  void end_warmup() {}
  void share_chains(std::size_t, std::size_t) {}
  /// p ~ N(0, m I) projected (centred) for particle systems: √m times the group's draw.
  void init(std::size_t i, const Scratch& s) {
    double* pi = p(i);
    const double* xi = s.draws(i);
    const double sm = std::sqrt(mass);
    for (std::size_t k = 0; k < st.d; ++k) pi[k] = sm * xi[k];
  }
  /// B A O A B (see langevin.hpp); ∇u at the start is the one stored from the last step.
  double step(std::size_t i, double beta, bool, Scratch& s, Tally& tally) {
    const std::size_t d = st.d;
    double* x = st.x(i);
    double* g = st.g(i);
    double* pi = p(i);
    const double* xi = s.draws(i);
    const double h = st.tau[i];
    const double kick = 0.5 * h * beta;
    const double drift = 0.5 * h / mass;
    const double c1 = std::exp(-friction * h);
    const double c2 = std::sqrt((1.0 - c1 * c1) * mass);
    // The new x goes through the block's aligned scratch, as in ULA.
    double* y = s.y.data();
    baoa(y, x, pi, g, xi, kick, drift, c1, c2, d);
    st.u(i) = st.evaluate(y, g, tally);
    std::copy(y, y + d, x);
    kick_momenta(pi, g, kick, d);  // B
    return 1.0;
  }
  /// Instantaneous kinetic temperature |p|²/(m·dof) (1 in equilibrium).
  void extras(std::size_t i, double, double* out) const {
    const double* pi = momenta.row(static_cast<Eigen::Index>(i)).data();
    double sum = 0.0;
    for (std::size_t k = 0; k < st.d; ++k) sum += pi[k] * pi[k];
    out[0] = sum / (mass * dof);
  }
};

// ---------------------------------------------------------------- driver

struct DriverConfig {
  std::string label;
  double step_size = 0.0;  ///< initial τ of every particle
};

struct DriverOutcome {
  FlowResult result;
  Tally warmup;
  Tally main;
};

/// The q-quantile (nearest rank) of v; NaN when v is empty.
double quantile(std::vector<double> v, double q) {
  if (v.empty()) return kNaN;
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

/// Runs warm-up + steps of `kernel` over all particles. Between synchronization
/// points ("segments") each block advances its particles through all steps of the
/// segment one particle at a time (its state stays in cache); monitors and frames
/// are written into per-block / per-row slots, combined in block order afterwards.
/// Over MPI ranks (core/mpi.hpp) each rank advances a contiguous range of blocks; after
/// each segment every rank receives all blocks' slots and combines them in the same
/// block order, and at the end the particles (and frames, on rank 0), so the result is
/// bit-identical to one process.
template <class Kernel>
class Driver {
 public:
  Driver(Kernel& kernel, ChainState& st, const FlowOptions& opt, const DriverConfig& cfg)
      : kernel_(kernel), st_(st), opt_(opt), cfg_(cfg), res_(out_.result), n_(st.ensemble.size()),
        total_(opt.warmup + opt.steps), blocks_((n_ + kBlock - 1) / kBlock),
        chunk_(std::max<std::size_t>(opt.monitor_every,
                                     (total_ / 100 + opt.monitor_every - 1) / opt.monitor_every * opt.monitor_every)),
        mine_(mpi::my_block(blocks_)), first_(std::min(n_, mine_.begin * kBlock)),
        last_(std::min(n_, mine_.end * kBlock)) {}

  DriverOutcome run() {
    res_.monitors["mean_energy"] = {};
    for (int c = 0; c < Kernel::kExtras; ++c) res_.monitors[Kernel::extra_name(c)] = {};
    st_.tau.assign(n_, cfg_.step_size);
    // Frames (thinning): frame f is taken after main-phase step (f+1)·thin.
    n_frames_ = opt_.thin > 0 ? std::min(opt_.steps / opt_.thin, opt_.max_frames) : 0;
    res_.frames.assign(n_frames_, RowMatrix(static_cast<Eigen::Index>(n_), static_cast<Eigen::Index>(st_.d)));
    const Tally init = initialize();
    Progress progress(cfg_.label + " (" + std::to_string(n_) + " particles)", total_, opt_.progress);
    std::size_t t = warm_up(progress);
    t = sample(t, progress);
    share_particles();
    progress.finish(status());
    finish(t, init);
    return std::move(out_);
  }

 private:
  // ------------------------------------------------------------ phases

  /// Streams, centring, kernel init (momenta), u and ∇u; the monitor row at step 0.
  Tally initialize() {
    st_.rng.resize(n_);
    st_.grad.resize(n_ * st_.d);
    block_tally_.assign(blocks_, Tally{});
    for_my_blocks([&](std::size_t b, std::size_t e) {
      Tally& t = block_tally_[b / kBlock];
      Scratch scratch(st_.d);
      for (std::size_t i = b; i < e; ++i) {
        st_.rng[i] = stream_for(opt_.seed, i);
        st_.layout.project(st_.x(i));
      }
      for (std::size_t g = b; g < e; g += kGroup) {
        const std::size_t g_end = std::min(e, g + kGroup);
        if (Kernel::kDrawsAtInit) st_.draw_group(g, g_end, scratch);
        for (std::size_t i = g; i < g_end; ++i) {
          kernel_.init(i, scratch);
          st_.u(i) = st_.evaluate(st_.x(i), st_.g(i), t);
        }
      }
    });
    share_blocks(0);
    Tally init;
    for (const auto& t : block_tally_) init.add(t);
    // The step-0 monitor sums over particles in particle order: every rank gets u and
    // the extras of all particles.
    constexpr std::size_t w = 1 + kMaxExtras;
    std::vector<double> mine(w * (last_ - first_), 0.0);
    for (std::size_t i = first_; i < last_; ++i) {
      mine[w * (i - first_)] = st_.ensemble.reduced_energies[static_cast<Eigen::Index>(i)];
      kernel_.extras(i, kNaN, mine.data() + w * (i - first_) + 1);
    }
    const std::vector<double> values = mpi::allgatherv(mine);
    MonitorAcc all;
    for (std::size_t i = 0; i < n_; ++i) add_values(all, values[w * i], values.data() + w * i + 1);
    record_monitor(0.0, &all, 1);
    return init;
  }

  /// Warm-up (the kernel adapts per particle, so no synchronization is needed), then
  /// the kernel's end of warm-up (MALA: every τ_i frozen).
  std::size_t warm_up(Progress& progress) {
    std::size_t t = 0;
    while (t < opt_.warmup) {
      const std::size_t t1 = std::min(opt_.warmup, t + chunk_);
      out_.warmup.add(run_segment(t, t1));
      t = t1;
      progress.update(t, status());
    }
    kernel_.end_warmup();
    return t;
  }

  /// Main phase from step t; with a tolerance, segments end at monitors and the run
  /// stops once the mean energy has settled. Returns the steps done.
  std::size_t sample(std::size_t t, Progress& progress) {
    const std::size_t main_chunk = opt_.tolerance > 0 ? opt_.monitor_every : chunk_;
    double last_monitor_energy = kNaN;
    bool have_last = false;
    while (t < total_) {
      const std::size_t t1 = std::min(total_, t + main_chunk);
      const std::size_t monitors_before = res_.monitor_steps.size();
      out_.main.add(run_segment(t, t1));
      t = t1;
      progress.update(t, status());
      if (opt_.tolerance > 0 && res_.monitor_steps.size() > monitors_before && t >= opt_.beta.steps) {
        const double e = res_.monitors["mean_energy"].back();
        if (have_last && settled(e, last_monitor_energy)) {
          res_.converged = true;
          break;
        }
        last_monitor_energy = e;
        have_last = true;
      }
    }
    return t;
  }

  /// |e − last| < tolerance·max(1, |e|), both finite.
  bool settled(double e, double last) const {
    return std::isfinite(e) && std::isfinite(last) && std::fabs(e - last) < opt_.tolerance * std::max(1.0, std::fabs(e));
  }

  /// Frames reached, counters and statistics after t steps.
  void finish(std::size_t t, const Tally& init) {
    const std::size_t warmup = opt_.warmup;
    if (res_.converged) {
      // Keep only the frames that were reached.
      const std::size_t main_done = t - warmup;
      const std::size_t reached = opt_.thin > 0 ? std::min(n_frames_, main_done / opt_.thin) : 0;
      res_.frames.resize(reached);
    }
    res_.steps_done = t;
    Tally all = init;
    all.add(out_.warmup);
    all.add(out_.main);
    res_.energy_evaluations = all.evaluations;
    res_.non_finite = all.non_finite;
    res_.statistics["step_size"] = quantile(st_.tau, 0.5);
    res_.statistics["warmup_steps"] = warmup;
    res_.statistics["steps"] = t - std::min(t, warmup);
    res_.statistics["beta_final"] = opt_.beta.at(t > 0 ? t - 1 : 0);
    res_.statistics["tolerance_stop"] = res_.converged;
    res_.statistics["initial_non_finite"] = init.non_finite;
  }

  // ------------------------------------------------------------ segments

  /// Runs steps [t0, t1) over all particles; returns the combined tally.
  Tally run_segment(std::size_t t0, std::size_t t1) {
    plan_segment(t0, t1);
    const std::size_t slots = slot_steps_.size();
    accs_.assign(blocks_ * std::max<std::size_t>(slots, 1), MonitorAcc{});
    block_tally_.assign(blocks_, Tally{});
    advance_blocks();
    share_blocks(slots);
    for (std::size_t sl = 0; sl < slots; ++sl) record_monitor(slot_steps_[sl], accs_.data() + sl * blocks_, blocks_);
    Tally seg;
    for (const auto& t : block_tally_) seg.add(t);
    return seg;
  }

  /// Per step of [t0, t1): β, the monitor slot (or −1) and the frame index (or −1);
  /// slot_steps_ lists the step counts of the monitor slots.
  void plan_segment(std::size_t t0, std::size_t t1) {
    const std::size_t len = t1 - t0;
    slot_of_.assign(len, -1);
    frame_of_.assign(len, -1);
    betas_.resize(len);
    warmup_.resize(len);
    slot_steps_.clear();
    for (std::size_t k = 0; k < len; ++k) {
      const std::size_t t = t0 + k;
      betas_[k] = opt_.beta.at(t);
      warmup_[k] = t < opt_.warmup;
      const std::size_t done = t + 1;
      if (done % opt_.monitor_every == 0 || done == total_) {
        slot_of_[k] = static_cast<int>(slot_steps_.size());
        slot_steps_.push_back(static_cast<double>(done));
      }
      if (done > opt_.warmup && opt_.thin > 0 && (done - opt_.warmup) % opt_.thin == 0) {
        const std::size_t f = (done - opt_.warmup) / opt_.thin - 1;
        if (f < n_frames_) frame_of_[k] = static_cast<long>(f);
      }
    }
  }

  /// The hot loop: every block takes its particles, a group of kGroup at a time (their
  /// normals drawn side by side, each from its own stream), through the planned steps,
  /// filling its monitor slots (in particle order, as one particle at a time would) and
  /// the frame rows.
  void advance_blocks() {
    const std::size_t len = betas_.size();
    for_my_blocks([&](std::size_t b, std::size_t e) {
      const std::size_t blk = b / kBlock;
      Tally& tally = block_tally_[blk];
      Scratch scratch(st_.d);
      for (std::size_t g = b; g < e; g += kGroup) {
        const std::size_t g_end = std::min(e, g + kGroup);
        for (std::size_t k = 0; k < len; ++k) {
          st_.draw_group(g, g_end, scratch);
          for (std::size_t i = g; i < g_end; ++i) {
            const double a = kernel_.step(i, betas_[k], warmup_[k] != 0, scratch, tally);
            if (slot_of_[k] >= 0) accumulate(accs_[static_cast<std::size_t>(slot_of_[k]) * blocks_ + blk], i, a);
            if (frame_of_[k] >= 0) {
              res_.frames[static_cast<std::size_t>(frame_of_[k])].row(static_cast<Eigen::Index>(i)) =
                  st_.ensemble.positions.row(static_cast<Eigen::Index>(i));
            }
          }
        }
      }
    });
  }

  /// body(b, e) for each block [b, e) of this rank's range (all blocks on one rank).
  template <class Body>
  void for_my_blocks(Body&& body) {
    for_each_index(
        mine_.size(),
        [&](std::size_t k) {
          const std::size_t b = (mine_.begin + k) * kBlock;
          body(b, std::min(n_, b + kBlock));
        },
        opt_.exec);
  }

  // ------------------------------------------------------------ ranks

  /// Over MPI ranks: every rank gets every block's tally and its `slots` monitor
  /// accumulators (rank order is block order). Nothing to do on one rank.
  void share_blocks(std::size_t slots) {
    if (mpi::size() == 1) return;
    const std::size_t w = 4 + slots * (2 + kMaxExtras);
    std::vector<double> mine;
    mine.reserve(w * mine_.size());
    for (std::size_t blk = mine_.begin; blk < mine_.end; ++blk) {
      const Tally& t = block_tally_[blk];
      mine.insert(mine.end(), {t.accept_prob, static_cast<double>(t.accepted), static_cast<double>(t.non_finite),
                               static_cast<double>(t.evaluations)});
      for (std::size_t sl = 0; sl < slots; ++sl) {
        const MonitorAcc& a = accs_[sl * blocks_ + blk];
        mine.insert(mine.end(), {a.sum_u, static_cast<double>(a.finite), a.extra[0], a.extra[1]});
      }
    }
    const std::vector<double> all = mpi::allgatherv(mine);
    for (std::size_t blk = 0; blk < blocks_; ++blk) {
      const double* v = all.data() + w * blk;
      block_tally_[blk] = Tally{v[0], static_cast<std::size_t>(v[1]), static_cast<std::size_t>(v[2]),
                                static_cast<std::size_t>(v[3])};
      for (std::size_t sl = 0; sl < slots; ++sl) {
        const double* a = v + 4 + sl * (2 + kMaxExtras);
        MonitorAcc& acc = accs_[sl * blocks_ + blk];
        acc.sum_u = a[0];
        acc.finite = static_cast<std::size_t>(a[1]);
        acc.extra[0] = a[2];
        acc.extra[1] = a[3];
      }
    }
  }

  /// Over MPI ranks, after the last step: every rank gets every particle's position,
  /// u and step size and the kernel's per-chain counters; rank 0 the frames' rows.
  void share_particles() {
    if (mpi::size() == 1) return;
    const std::size_t d = st_.d, w = d + 2;
    std::vector<double> mine(w * (last_ - first_));
    for (std::size_t i = first_; i < last_; ++i) {
      double* v = mine.data() + w * (i - first_);
      std::copy(st_.x(i), st_.x(i) + d, v);
      v[d] = st_.u(i);
      v[d + 1] = st_.tau[i];
    }
    const std::vector<double> all = mpi::allgatherv(mine);
    for (std::size_t i = 0; i < n_; ++i) {
      std::copy(all.data() + w * i, all.data() + w * i + d, st_.x(i));
      st_.u(i) = all[w * i + d];
      st_.tau[i] = all[w * i + d + 1];
    }
    kernel_.share_chains(first_, last_);
    for (RowMatrix& frame : res_.frames) {
      const std::size_t bytes = (last_ - first_) * d * sizeof(double);
      const std::string rows = mpi::gatherv(std::string(reinterpret_cast<const char*>(frame.data() + first_ * d), bytes));
      if (mpi::is_root()) std::memcpy(frame.data(), rows.data(), rows.size());
    }
  }

  // ------------------------------------------------------------ monitors

  /// Adds particle i (its u when finite, and the kernel's extras) to `acc`.
  void accumulate(MonitorAcc& acc, std::size_t i, double last_accept) const {
    double e[kMaxExtras] = {0.0, 0.0};
    kernel_.extras(i, last_accept, e);
    add_values(acc, st_.ensemble.reduced_energies[static_cast<Eigen::Index>(i)], e);
  }

  /// Adds a particle's u (when finite) and extras `e` to `acc`.
  static void add_values(MonitorAcc& acc, double ui, const double* e) {
    if (std::isfinite(ui)) {
      acc.sum_u += ui;
      ++acc.finite;
    }
    for (int c = 0; c < Kernel::kExtras; ++c) acc.extra[c] += e[c];
  }

  /// Records the monitor row at `step` from `count` block accumulators, summed in order.
  void record_monitor(double step, const MonitorAcc* accs, std::size_t count) {
    MonitorAcc tot;
    for (std::size_t b = 0; b < count; ++b) {
      tot.sum_u += accs[b].sum_u;
      tot.finite += accs[b].finite;
      for (int c = 0; c < kMaxExtras; ++c) tot.extra[c] += accs[b].extra[c];
    }
    res_.monitor_steps.push_back(step);
    res_.monitors["mean_energy"].push_back(tot.finite ? tot.sum_u / static_cast<double>(tot.finite) : kNaN);
    for (int c = 0; c < Kernel::kExtras; ++c) {
      res_.monitors[Kernel::extra_name(c)].push_back(n_ ? tot.extra[c] / static_cast<double>(n_) : kNaN);
    }
  }

  std::string status() {
    const double e = res_.monitors["mean_energy"].back();
    char buf[96];
    std::snprintf(buf, sizeof buf, "<u> = %.6g, step size %.4g", e, quantile(st_.tau, 0.5));
    return std::string(buf);
  }

  Kernel& kernel_;
  ChainState& st_;
  const FlowOptions& opt_;
  const DriverConfig& cfg_;
  DriverOutcome out_;
  FlowResult& res_;
  const std::size_t n_;
  const std::size_t total_;
  const std::size_t blocks_;
  const std::size_t chunk_;  ///< segment length without adaptation or tolerance
  const mpi::Block mine_;    ///< this rank's blocks (all of them on one rank)
  const std::size_t first_;  ///< this rank's particles: [first_, last_)
  const std::size_t last_;
  std::size_t n_frames_ = 0;
  std::vector<Tally> block_tally_;
  std::vector<MonitorAcc> accs_;    ///< per monitor slot of the segment, per block
  std::vector<int> slot_of_;        ///< per step of the segment: monitor slot or −1
  std::vector<long> frame_of_;      ///< per step of the segment: frame index or −1
  std::vector<double> betas_;       ///< per step of the segment: β
  std::vector<char> warmup_;        ///< per step of the segment: whether it is a warm-up step
  std::vector<double> slot_steps_;  ///< per monitor slot: steps done
};

template <class Kernel>
DriverOutcome drive(Kernel& kernel, ChainState& st, const FlowOptions& opt, const DriverConfig& cfg) {
  return Driver<Kernel>(kernel, st, opt, cfg).run();
}

void check_inputs(const Target& target, const Ensemble& ensemble, const FlowOptions& options,
                  const std::string& flow) {
  options.validate();
  if (ensemble.dim() != target.dim()) {
    throw DomainError(flow + ": ensemble has dimension " + std::to_string(ensemble.dim()) +
                      ", but the target '" + target.name() + "' has dimension " + std::to_string(target.dim()));
  }
  if (static_cast<std::size_t>(ensemble.reduced_energies.size()) != ensemble.size()) {
    throw DomainError(flow + ": ensemble reduced_energies has the wrong length");
  }
}

Layout layout_of(const Target& target) {
  const auto [n, s] = target.particle_layout();
  return Layout{n, s};
}

}  // namespace

// ---------------------------------------------------------------- flows

FlowResult UlaFlow::evolve(const Target& target, Ensemble& ensemble, const FlowOptions& options) {
  check_inputs(target, ensemble, options, "ula");
  ChainState st(target, ensemble);
  st.layout = layout_of(target);
  UlaKernel kernel(st);
  DriverConfig cfg{"ula", options.step_size > 0 ? options.step_size : kDefaultStepSize};
  DriverOutcome out = drive(kernel, st, options, cfg);
  out.result.statistics["flow"] = "ula";
  return std::move(out.result);
}

void MalaParams::validate() const {
  if (!(target_acceptance > 0.0 && target_acceptance < 1.0)) {
    throw ConfigError("mala: target_acceptance is " + format_number(target_acceptance) + ", but must be in (0, 1)");
  }
  if (stuck_window == 0) throw ConfigError("mala: stuck_window is 0, but must be >= 1");
  if (!(stuck_acceptance >= 0.0 && stuck_acceptance < 1.0)) {
    throw ConfigError("mala: stuck_acceptance is " + format_number(stuck_acceptance) + ", but must be in [0, 1)");
  }
}

MalaFlow::MalaFlow(MalaParams params) : params_(params) { params_.validate(); }

namespace {

/// Per-chain statistics of a MALA run: the spread of the frozen τ_i and of the
/// sampling acceptance rates, and the stuck chains (MalaParams) into `health`.
void mala_chain_statistics(const MalaParams& params, const MalaKernel& kernel, const ChainState& st,
                           std::size_t main_steps, nlohmann::json& s, FlowHealth& health) {
  const std::size_t n = st.tau.size();
  s["step_size_min"] = n ? *std::min_element(st.tau.begin(), st.tau.end()) : kNaN;
  s["step_size_max"] = n ? *std::max_element(st.tau.begin(), st.tau.end()) : kNaN;
  s["step_size_quantiles"] = {{"q05", quantile(st.tau, 0.05)}, {"q50", quantile(st.tau, 0.5)},
                              {"q95", quantile(st.tau, 0.95)}};
  std::vector<double> rates(n);
  for (std::size_t i = 0; i < n; ++i) {
    rates[i] = main_steps ? static_cast<double>(kernel.accepted[i]) / static_cast<double>(main_steps) : kNaN;
  }
  s["acceptance_rate_min"] = main_steps && n ? *std::min_element(rates.begin(), rates.end()) : kNaN;
  health.stuck_window = params.stuck_window;
  health.stuck_acceptance = params.stuck_acceptance;
  health.sampling_steps = main_steps;
  health.stuck_assessed = main_steps >= params.stuck_window && n > 0;
  health.stuck = 0;
  if (health.stuck_assessed) {
    for (std::size_t i = 0; i < n; ++i) {
      health.stuck += kernel.rejections[i] >= params.stuck_window || rates[i] < params.stuck_acceptance;
    }
  }
  s["stuck_particles"] = health.stuck_assessed ? nlohmann::json(health.stuck) : nlohmann::json(nullptr);
  s["stuck_rule"] = health.stuck_rule();
}

}  // namespace

FlowResult MalaFlow::evolve(const Target& target, Ensemble& ensemble, const FlowOptions& options) {
  check_inputs(target, ensemble, options, "mala");
  ChainState st(target, ensemble);
  st.layout = layout_of(target);
  const double dof = static_cast<double>(std::max<std::size_t>(1, degrees_of_freedom(target)));
  const double tau0 = options.step_size > 0 ? options.step_size : 0.1 * std::pow(dof, -1.0 / 3.0);
  const bool adapt = params_.adapt && options.warmup > 0;
  MalaKernel kernel(st, ensemble.size(), tau0, params_.target_acceptance, adapt);
  DriverOutcome out = drive(kernel, st, options, DriverConfig{"mala", tau0});
  auto& s = out.result.statistics;
  const double n = static_cast<double>(ensemble.size());
  const double main_steps = s["steps"].get<double>();
  const double warm_steps = static_cast<double>(options.warmup);
  s["flow"] = "mala";
  s["step_size_initial"] = tau0;
  s["adaptation"] = adapt ? "per-particle dual averaging of log step size on each chain's own acceptance "
                            "probability during warm-up, then frozen (step_size: the median)"
                          : "none";
  s["target_acceptance"] = params_.target_acceptance;
  const double main_props = n * main_steps;
  s["acceptance_rate"] = main_props > 0 ? static_cast<double>(out.main.accepted) / main_props : kNaN;
  s["mean_acceptance_probability"] = main_props > 0 ? out.main.accept_prob / main_props : kNaN;
  const double warm_props = n * warm_steps;
  s["warmup_acceptance_rate"] = warm_props > 0 ? static_cast<double>(out.warmup.accepted) / warm_props : kNaN;
  mala_chain_statistics(params_, kernel, st, static_cast<std::size_t>(main_steps), s, out.result.health);
  return std::move(out.result);
}

void BaoabParams::validate() const {
  if (!(friction > 0.0) || !std::isfinite(friction)) {
    throw ConfigError("baoab: friction is " + std::to_string(friction) + ", but must be > 0");
  }
  if (!(mass > 0.0) || !std::isfinite(mass)) {
    throw ConfigError("baoab: mass is " + std::to_string(mass) + ", but must be > 0");
  }
}

BaoabFlow::BaoabFlow(BaoabParams params) : params_(params) { params_.validate(); }

FlowResult BaoabFlow::evolve(const Target& target, Ensemble& ensemble, const FlowOptions& options) {
  check_inputs(target, ensemble, options, "baoab");
  ChainState st(target, ensemble);
  st.layout = layout_of(target);
  BaoabKernel kernel{st, RowMatrix(ensemble.positions.rows(), ensemble.positions.cols()), params_.friction,
                     params_.mass, static_cast<double>(std::max<std::size_t>(1, degrees_of_freedom(target)))};
  DriverConfig cfg{"baoab", options.step_size > 0 ? options.step_size : 0.05};
  DriverOutcome out = drive(kernel, st, options, cfg);
  auto& s = out.result.statistics;
  s["flow"] = "baoab";
  s["friction"] = params_.friction;
  s["mass"] = params_.mass;
  const auto& kt = out.result.monitors["kinetic_temperature"];
  s["kinetic_temperature_final"] = kt.empty() ? kNaN : kt.back();
  return std::move(out.result);
}

std::unique_ptr<Flow> make_ula(JsonReader& params) {
  (void)params;
  return std::make_unique<UlaFlow>();
}

std::unique_ptr<Flow> make_mala(JsonReader& params) {
  MalaParams p;
  p.target_acceptance = params.get_double("target_acceptance", p.target_acceptance);
  p.adapt = params.get_bool("adapt", p.adapt);
  const long long window = params.get_int("stuck_window", static_cast<long long>(p.stuck_window));
  if (window < 1) params.fail("stuck_window", "is " + std::to_string(window) + ", but must be >= 1");
  p.stuck_window = static_cast<std::size_t>(window);
  p.stuck_acceptance = params.get_double("stuck_acceptance", p.stuck_acceptance);
  return std::make_unique<MalaFlow>(p);
}

std::unique_ptr<Flow> make_baoab(JsonReader& params) {
  BaoabParams p;
  p.friction = params.get_double("friction", p.friction);
  p.mass = params.get_double("mass", p.mass);
  return std::make_unique<BaoabFlow>(p);
}

}  // namespace boltzlab
