#include "boltzlab/flows/langevin.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"

namespace boltzlab {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

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

/// Per-block scratch (allocated once per block and segment, never per step).
struct Scratch {
  std::vector<double> xi, y, gy;
  explicit Scratch(std::size_t d) : xi(d), y(d), gy(d) {}
};

/// State shared by the three kernels: the ensemble, gradients and streams.
struct ChainState {
  const Target& target;
  Ensemble& ensemble;
  RowMatrix grad;          ///< ∇u at the current positions
  std::vector<Rng> rng;    ///< rng[i] = stream_for(seed, i)
  Layout layout;
  std::size_t d;
  double tau = 0.0;        ///< current step size
  ChainState(const Target& t, Ensemble& e) : target(t), ensemble(e), d(e.dim()) {}
  double* x(std::size_t i) { return ensemble.particle(i); }
  double* g(std::size_t i) { return grad.row(static_cast<Eigen::Index>(i)).data(); }
  double& u(std::size_t i) { return ensemble.reduced_energies[static_cast<Eigen::Index>(i)]; }
  /// u and ∇u at x into (u_out, g_out); counts the evaluation.
  double evaluate(const double* xp, double* gp, Tally& tally) const {
    double e = target.reduced_energy(xp, gp);
    ++tally.evaluations;
    // Branch-free finiteness test of ∇u: |g| <= DBL_MAX is false exactly for ±inf and
    // NaN. An integer OR reduction vectorizes (unlike a loop with an early exit, or a
    // floating-point sum, which the compiler may not reorder).
    int bad = 0;
    for (std::size_t k = 0; k < d; ++k) bad |= !(std::fabs(gp[k]) <= std::numeric_limits<double>::max());
    if (!std::isfinite(e) || bad) {
      e = std::numeric_limits<double>::infinity();
      ++tally.non_finite;
    }
    return e;
  }
};

// ---------------------------------------------------------------- kernels
// Each kernel advances one particle by one step: step(i, β, scratch, tally) returns
// the acceptance probability of the step (1 for unadjusted moves).

struct UlaKernel {
  ChainState& st;
  static constexpr int kExtras = 0;
  static const char* extra_name(int) { return ""; }
  void init(std::size_t) {}
  /// x ← x − τβ∇u(x) + √(2τ) Pξ; then u, ∇u at the new x.
  double step(std::size_t i, double beta, Scratch& s, Tally& tally) {
    const std::size_t d = st.d;
    double* x = st.x(i);
    double* g = st.g(i);
    double* xi = s.xi.data();
    st.rng[i].fill_normal(xi, d);
    st.layout.project(xi);
    const double drift = st.tau * beta;
    const double noise = std::sqrt(2.0 * st.tau);
    for (std::size_t k = 0; k < d; ++k) x[k] += noise * xi[k] - drift * g[k];
    st.u(i) = st.evaluate(x, g, tally);
    return 1.0;
  }
  void extras(std::size_t, double, double*) const {}
};

struct MalaKernel {
  ChainState& st;
  static constexpr int kExtras = 1;
  static const char* extra_name(int) { return "acceptance"; }
  void init(std::size_t) {}
  /// Proposal y = x − τβ∇u(x) + √(2τ) Pξ, accepted with probability
  /// min(1, exp(log α)), log α = −β(u(y) − u(x)) − |x − y + τβ∇u(y)|²/(4τ) + |Pξ|²/2
  /// (the forward term |y − x + τβ∇u(x)|²/(4τ) equals |Pξ|²/2).
  double step(std::size_t i, double beta, Scratch& s, Tally& tally) {
    const std::size_t d = st.d;
    double* x = st.x(i);
    double* g = st.g(i);
    double* xi = s.xi.data();
    double* y = s.y.data();
    double* gy = s.gy.data();
    Rng& rng = st.rng[i];
    rng.fill_normal(xi, d);
    st.layout.project(xi);
    const double tau = st.tau;
    const double drift = tau * beta;
    const double noise = std::sqrt(2.0 * tau);
    double forward = 0.0;
    for (std::size_t k = 0; k < d; ++k) {
      y[k] = x[k] + noise * xi[k] - drift * g[k];
      forward += xi[k] * xi[k];
    }
    const double uy = st.evaluate(y, gy, tally);
    double backward = 0.0;
    for (std::size_t k = 0; k < d; ++k) {
      const double r = x[k] - y[k] + drift * gy[k];
      backward += r * r;
    }
    const double log_alpha = -beta * (uy - st.u(i)) - backward / (4.0 * tau) + 0.5 * forward;
    const double log_uniform = std::log(rng.uniform_pos());
    // NaN compares false: a NaN ratio is a rejection, and so is u(y) = +inf.
    const double prob = log_alpha >= 0.0 ? 1.0 : (log_alpha < 0.0 ? std::exp(log_alpha) : 0.0);
    tally.accept_prob += prob;
    if (log_uniform < log_alpha) {
      std::copy(y, y + d, x);
      std::copy(gy, gy + d, g);
      st.u(i) = uy;
      ++tally.accepted;
    }
    return prob;
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
  static const char* extra_name(int) { return "kinetic_temperature"; }
  double* p(std::size_t i) { return momenta.row(static_cast<Eigen::Index>(i)).data(); }
  /// p ~ N(0, m I) projected (centred) for particle systems.
  void init(std::size_t i) {
    double* pi = p(i);
    st.rng[i].fill_normal(pi, st.d);
    st.layout.project(pi);
    const double sm = std::sqrt(mass);
    for (std::size_t k = 0; k < st.d; ++k) pi[k] *= sm;
  }
  /// B A O A B (see langevin.hpp); ∇u at the start is the one stored from the last step.
  double step(std::size_t i, double beta, Scratch& s, Tally& tally) {
    const std::size_t d = st.d;
    double* x = st.x(i);
    double* g = st.g(i);
    double* pi = p(i);
    double* xi = s.xi.data();
    st.rng[i].fill_normal(xi, d);
    st.layout.project(xi);
    const double h = st.tau;
    const double kick = 0.5 * h * beta;
    const double drift = 0.5 * h / mass;
    const double c1 = std::exp(-friction * h);
    const double c2 = std::sqrt((1.0 - c1 * c1) * mass);
    for (std::size_t k = 0; k < d; ++k) {
      double pk = pi[k] - kick * g[k];   // B
      double xk = x[k] + drift * pk;      // A
      pk = c1 * pk + c2 * xi[k];          // O
      x[k] = xk + drift * pk;             // A
      pi[k] = pk;
    }
    st.u(i) = st.evaluate(x, g, tally);
    for (std::size_t k = 0; k < d; ++k) pi[k] -= kick * g[k];  // B
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

// ---------------------------------------------------------------- adaptation

/// Dual averaging of log τ toward a target acceptance (Hoffman & Gelman 2014,
/// Algorithm 5): H̄_t = (1 − 1/(t+t0)) H̄_{t−1} + (α* − α_t)/(t+t0);
/// log τ_t = μ − √t/γ · H̄_t; log τ̄_t = t^{−κ} log τ_t + (1 − t^{−κ}) log τ̄_{t−1}.
/// The frozen step size after warm-up is τ̄.
class DualAveraging {
 public:
  DualAveraging(double tau0, double target) : mu_(std::log(10.0 * tau0)), target_(target) {}
  /// Feeds the acceptance probability α_t of the step just taken; returns the next τ.
  double update(double acceptance) {
    ++t_;
    const double t = static_cast<double>(t_);
    const double a = std::isfinite(acceptance) ? acceptance : 0.0;
    h_bar_ = (1.0 - 1.0 / (t + kT0)) * h_bar_ + (target_ - a) / (t + kT0);
    const double log_tau = mu_ - std::sqrt(t) / kGamma * h_bar_;
    const double w = std::pow(t, -kKappa);
    log_tau_bar_ = w * log_tau + (1.0 - w) * log_tau_bar_;
    return std::exp(log_tau);
  }
  double final_step_size() const { return std::exp(log_tau_bar_); }

 private:
  static constexpr double kGamma = 0.05;
  static constexpr double kT0 = 10.0;
  static constexpr double kKappa = 0.75;
  double mu_;
  double target_;
  double h_bar_ = 0.0;
  double log_tau_bar_ = 0.0;
  std::size_t t_ = 0;
};

// ---------------------------------------------------------------- driver

struct DriverConfig {
  std::string label;
  double step_size = 0.0;
  DualAveraging* adapter = nullptr;  ///< warm-up adaptation of τ (null: none)
};

struct DriverOutcome {
  FlowResult result;
  Tally warmup;
  Tally main;
  double final_step_size = 0.0;
};

/// Runs warm-up + steps of `kernel` over all particles. Between synchronization
/// points ("segments") each block advances its particles through all steps of the
/// segment one particle at a time (its state stays in cache); monitors and frames
/// are written into per-block / per-row slots, combined in block order afterwards.
template <class Kernel>
DriverOutcome drive(Kernel& kernel, ChainState& st, const FlowOptions& opt, const DriverConfig& cfg) {
  const std::size_t n = st.ensemble.size();
  const std::size_t d = st.d;
  const std::size_t warmup = opt.warmup;
  const std::size_t total = opt.warmup + opt.steps;
  const std::size_t blocks = (n + kBlock - 1) / kBlock;
  DriverOutcome out;
  FlowResult& res = out.result;
  res.monitors["mean_energy"] = {};
  for (int c = 0; c < Kernel::kExtras; ++c) res.monitors[Kernel::extra_name(c)] = {};
  st.tau = cfg.step_size;

  // Frames (thinning): frame f is taken after main-phase step (f+1)·thin.
  std::size_t n_frames = opt.thin > 0 ? std::min(opt.steps / opt.thin, opt.max_frames) : 0;
  res.frames.assign(n_frames, RowMatrix(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d)));

  auto record_monitor = [&](double step, const std::vector<MonitorAcc>& accs) {
    MonitorAcc tot;
    for (const auto& a : accs) {
      tot.sum_u += a.sum_u;
      tot.finite += a.finite;
      for (int c = 0; c < kMaxExtras; ++c) tot.extra[c] += a.extra[c];
    }
    res.monitor_steps.push_back(step);
    res.monitors["mean_energy"].push_back(tot.finite ? tot.sum_u / static_cast<double>(tot.finite) : kNaN);
    for (int c = 0; c < Kernel::kExtras; ++c) {
      res.monitors[Kernel::extra_name(c)].push_back(n ? tot.extra[c] / static_cast<double>(n) : kNaN);
    }
  };
  auto accumulate = [&](MonitorAcc& acc, std::size_t i, double last_accept) {
    const double ui = st.ensemble.reduced_energies[static_cast<Eigen::Index>(i)];
    if (std::isfinite(ui)) {
      acc.sum_u += ui;
      ++acc.finite;
    }
    double e[kMaxExtras] = {0.0, 0.0};
    kernel.extras(i, last_accept, e);
    for (int c = 0; c < Kernel::kExtras; ++c) acc.extra[c] += e[c];
  };

  // Initial state: streams, centring, kernel init (momenta), u and ∇u.
  st.rng.resize(n);
  st.grad.resize(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  std::vector<Tally> block_tally(blocks);
  for_each_block(
      n, kBlock,
      [&](std::size_t b, std::size_t e) {
        Tally& t = block_tally[b / kBlock];
        for (std::size_t i = b; i < e; ++i) {
          st.rng[i] = stream_for(opt.seed, i);
          st.layout.project(st.x(i));
          kernel.init(i);
          st.u(i) = st.evaluate(st.x(i), st.g(i), t);
        }
      },
      opt.exec);
  Tally init_tally;
  for (const auto& t : block_tally) init_tally.add(t);
  {
    std::vector<MonitorAcc> one(1);
    for (std::size_t i = 0; i < n; ++i) accumulate(one[0], i, kNaN);
    record_monitor(0.0, one);
  }

  Progress progress(cfg.label, total, opt.progress);
  std::vector<MonitorAcc> accs;
  std::vector<int> slot_of;   // per step of the segment: monitor slot or −1
  std::vector<long> frame_of; // per step of the segment: frame index or −1
  std::vector<double> betas;
  double last_monitor_energy = kNaN;
  bool have_last = false;

  // Runs steps [t0, t1) over all particles; returns the combined tally.
  auto run_segment = [&](std::size_t t0, std::size_t t1) {
    const std::size_t len = t1 - t0;
    slot_of.assign(len, -1);
    frame_of.assign(len, -1);
    betas.resize(len);
    std::vector<double> slot_steps;
    for (std::size_t k = 0; k < len; ++k) {
      const std::size_t t = t0 + k;
      betas[k] = opt.beta.at(t);
      const std::size_t done = t + 1;
      if (done % opt.monitor_every == 0 || done == total) {
        slot_of[k] = static_cast<int>(slot_steps.size());
        slot_steps.push_back(static_cast<double>(done));
      }
      if (done > warmup && opt.thin > 0 && (done - warmup) % opt.thin == 0) {
        const std::size_t f = (done - warmup) / opt.thin - 1;
        if (f < n_frames) frame_of[k] = static_cast<long>(f);
      }
    }
    const std::size_t slots = slot_steps.size();
    accs.assign(blocks * std::max<std::size_t>(slots, 1), MonitorAcc{});
    block_tally.assign(blocks, Tally{});
    for_each_block(
        n, kBlock,
        [&](std::size_t b, std::size_t e) {
          const std::size_t blk = b / kBlock;
          Tally& tally = block_tally[blk];
          Scratch scratch(d);
          for (std::size_t i = b; i < e; ++i) {
            for (std::size_t k = 0; k < len; ++k) {
              const double a = kernel.step(i, betas[k], scratch, tally);
              if (slot_of[k] >= 0) accumulate(accs[static_cast<std::size_t>(slot_of[k]) * blocks + blk], i, a);
              if (frame_of[k] >= 0) {
                res.frames[static_cast<std::size_t>(frame_of[k])].row(static_cast<Eigen::Index>(i)) =
                    st.ensemble.positions.row(static_cast<Eigen::Index>(i));
              }
            }
          }
        },
        opt.exec);
    for (std::size_t sl = 0; sl < slots; ++sl) {
      std::vector<MonitorAcc> slot_accs(accs.begin() + static_cast<long>(sl * blocks),
                                        accs.begin() + static_cast<long>((sl + 1) * blocks));
      record_monitor(slot_steps[sl], slot_accs);
    }
    Tally seg;
    for (const auto& t : block_tally) seg.add(t);
    return seg;
  };
  auto status = [&]() {
    const double e = res.monitors["mean_energy"].back();
    char buf[96];
    std::snprintf(buf, sizeof buf, "<u> = %.6g, step size %.4g", e, st.tau);
    return std::string(buf);
  };

  // Warm-up: with adaptation one synchronized step at a time.
  std::size_t t = 0;
  const std::size_t chunk = std::max<std::size_t>(opt.monitor_every,
                                                   (total / 100 + opt.monitor_every - 1) /
                                                       opt.monitor_every * opt.monitor_every);
  while (t < warmup) {
    const std::size_t t1 = cfg.adapter ? t + 1 : std::min(warmup, t + chunk);
    const Tally seg = run_segment(t, t1);
    out.warmup.add(seg);
    if (cfg.adapter && n > 0) st.tau = cfg.adapter->update(seg.accept_prob / static_cast<double>(n));
    t = t1;
    progress.update(t, status());
  }
  if (cfg.adapter && warmup > 0) st.tau = cfg.adapter->final_step_size();
  out.final_step_size = st.tau;

  // Main phase.
  const std::size_t main_chunk = opt.tolerance > 0 ? opt.monitor_every : chunk;
  while (t < total) {
    const std::size_t t1 = std::min(total, t + main_chunk);
    const std::size_t monitors_before = res.monitor_steps.size();
    out.main.add(run_segment(t, t1));
    t = t1;
    progress.update(t, status());
    if (opt.tolerance > 0 && res.monitor_steps.size() > monitors_before && t >= opt.beta.steps) {
      const double e = res.monitors["mean_energy"].back();
      if (have_last && std::isfinite(e) && std::isfinite(last_monitor_energy) &&
          std::fabs(e - last_monitor_energy) < opt.tolerance * std::max(1.0, std::fabs(e))) {
        res.converged = true;
        break;
      }
      last_monitor_energy = e;
      have_last = true;
    }
  }
  progress.finish(status());

  if (res.converged) {
    // Keep only the frames that were reached.
    const std::size_t main_done = t - warmup;
    const std::size_t reached = opt.thin > 0 ? std::min(n_frames, main_done / opt.thin) : 0;
    res.frames.resize(reached);
  }
  res.steps_done = t;
  Tally all = init_tally;
  all.add(out.warmup);
  all.add(out.main);
  res.energy_evaluations = all.evaluations;
  res.non_finite = all.non_finite;
  res.statistics["step_size"] = st.tau;
  res.statistics["warmup_steps"] = warmup;
  res.statistics["steps"] = t - std::min(t, warmup);
  res.statistics["beta_final"] = opt.beta.at(t > 0 ? t - 1 : 0);
  res.statistics["tolerance_stop"] = res.converged;
  res.statistics["initial_non_finite"] = init_tally.non_finite;
  return out;
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

FlowResult UlaFlow::run(const Target& target, Ensemble& ensemble, const FlowOptions& options) {
  check_inputs(target, ensemble, options, "ula");
  ChainState st(target, ensemble);
  st.layout = layout_of(target);
  UlaKernel kernel{st};
  DriverConfig cfg{"ula", options.step_size > 0 ? options.step_size : kDefaultStepSize, nullptr};
  DriverOutcome out = drive(kernel, st, options, cfg);
  out.result.statistics["flow"] = "ula";
  return std::move(out.result);
}

void MalaParams::validate() const {
  if (!(target_acceptance > 0.0 && target_acceptance < 1.0)) {
    throw ConfigError("mala: target_acceptance is " + std::to_string(target_acceptance) +
                      ", but must be in (0, 1)");
  }
}

MalaFlow::MalaFlow(MalaParams params) : params_(params) { params_.validate(); }

FlowResult MalaFlow::run(const Target& target, Ensemble& ensemble, const FlowOptions& options) {
  check_inputs(target, ensemble, options, "mala");
  ChainState st(target, ensemble);
  st.layout = layout_of(target);
  MalaKernel kernel{st};
  const double dof = static_cast<double>(std::max<std::size_t>(1, degrees_of_freedom(target)));
  const double tau0 = options.step_size > 0 ? options.step_size : 0.1 * std::pow(dof, -1.0 / 3.0);
  DualAveraging adapter(tau0, params_.target_acceptance);
  const bool adapt = params_.adapt && options.warmup > 0;
  DriverConfig cfg{"mala", tau0, adapt ? &adapter : nullptr};
  DriverOutcome out = drive(kernel, st, options, cfg);
  auto& s = out.result.statistics;
  const double n = static_cast<double>(ensemble.size());
  const double main_steps = s["steps"].get<double>();
  const double warm_steps = static_cast<double>(options.warmup);
  s["flow"] = "mala";
  s["step_size_initial"] = tau0;
  s["adaptation"] = adapt ? "dual averaging of log step size on the ensemble-mean acceptance "
                            "probability (shared by all particles), frozen after warm-up"
                          : "none";
  s["target_acceptance"] = params_.target_acceptance;
  const double main_props = n * main_steps;
  s["acceptance_rate"] = main_props > 0 ? static_cast<double>(out.main.accepted) / main_props : kNaN;
  s["mean_acceptance_probability"] = main_props > 0 ? out.main.accept_prob / main_props : kNaN;
  const double warm_props = n * warm_steps;
  s["warmup_acceptance_rate"] = warm_props > 0 ? static_cast<double>(out.warmup.accepted) / warm_props : kNaN;
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

FlowResult BaoabFlow::run(const Target& target, Ensemble& ensemble, const FlowOptions& options) {
  check_inputs(target, ensemble, options, "baoab");
  ChainState st(target, ensemble);
  st.layout = layout_of(target);
  BaoabKernel kernel{st, RowMatrix(ensemble.positions.rows(), ensemble.positions.cols()), params_.friction,
                     params_.mass, static_cast<double>(std::max<std::size_t>(1, degrees_of_freedom(target)))};
  DriverConfig cfg{"baoab", options.step_size > 0 ? options.step_size : 0.05, nullptr};
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
  return std::make_unique<MalaFlow>(p);
}

std::unique_ptr<Flow> make_baoab(JsonReader& params) {
  BaoabParams p;
  p.friction = params.get_double("friction", p.friction);
  p.mass = params.get_double("mass", p.mass);
  return std::make_unique<BaoabFlow>(p);
}

}  // namespace boltzlab
