#include "boltzlab/estimators/annealed_smc.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/estimators/importance.hpp"

namespace boltzlab {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kPi = 3.14159265358979323846;
/// Particles per block of the parallel loops (fixed: block sums combine in block order).
constexpr std::size_t kBlock = 64;

/// Kish ESS / N of the weights exp(lw), 0 when every weight is 0 (kish_ess would refuse).
double ess_fraction(const Eigen::VectorXd& lw) {
  const double l1 = log_sum_exp(lw);
  if (!std::isfinite(l1)) return 0.0;
  const double l2 = log_sum_exp(2.0 * lw);
  return std::exp(2.0 * l1 - l2) / static_cast<double>(lw.size());
}

/// The part of the walk that moves with the particles under resampling.
struct Particles {
  RowMatrix z;
  PathValues v;
  Eigen::VectorXd lw;               ///< log-weights since the last resampling
  std::vector<std::size_t> ancestor;  ///< rung-0 ancestor of each particle
  std::vector<Rng> rng;             ///< stream of particle slot i (never moves with resampling)
};

double delta_log_weight(const PathValues& v, Eigen::Index i) {
  return std::isfinite(v.u1[i]) ? v.u0[i] - v.u1[i] : -kInf;
}

/// Conditional ESS fraction of the step Δ (Zhou, Johansen & Aston 2016), relative to its
/// Δ → 0⁺ limit (the weight of the particles whose target energy is finite).
double conditional_ess(const Particles& p, double step) {
  const Eigen::Index n = p.lw.size();
  Eigen::VectorXd a(n), b(n);
  double alive = 0.0;
  const double l0 = log_sum_exp(p.lw);
  for (Eigen::Index i = 0; i < n; ++i) {
    const double d = delta_log_weight(p.v, i);
    a[i] = d > -kInf ? p.lw[i] + step * d : -kInf;
    b[i] = d > -kInf ? p.lw[i] + 2.0 * step * d : -kInf;
    if (d > -kInf && p.lw[i] > -kInf) alive += std::exp(p.lw[i] - l0);
  }
  const double la = log_sum_exp(a), lb = log_sum_exp(b);
  if (!std::isfinite(la) || alive <= 0.0) return 0.0;
  return std::exp(2.0 * la - l0 - lb) / alive;
}

/// The next β: fixed schedule, or the largest step keeping the conditional ESS ≥ cess.
double next_beta(const Particles& p, double beta, int rung, const AnnealedSmcOptions& o) {
  if (o.rungs > 0) return rung >= o.rungs ? 1.0 : static_cast<double>(rung) / o.rungs;
  const double rest = 1.0 - beta;
  if (conditional_ess(p, rest) >= o.cess) return 1.0;
  double lo = 0.0, hi = rest;
  for (int it = 0; it < 60; ++it) {
    const double mid = 0.5 * (lo + hi);
    (conditional_ess(p, mid) >= o.cess ? lo : hi) = mid;
  }
  return std::min(1.0, beta + std::max(lo, 1e-12 * rest));
}

/// Multinomial resampling: ancestors from N sorted uniforms of stream (seed ^ mix, rung).
void resample(Particles& p, std::uint64_t seed, int rung) {
  const std::size_t n = static_cast<std::size_t>(p.lw.size());
  const double l = log_sum_exp(p.lw);
  Rng rng(seed ^ kSmcResampleMix, static_cast<std::uint64_t>(rung));
  std::vector<double> u(n);
  for (double& x : u) x = rng.uniform();
  std::sort(u.begin(), u.end());
  std::vector<std::size_t> from(n);
  double cum = 0.0;
  std::size_t j = 0;
  for (std::size_t i = 0; i < n; ++i) {
    while (j + 1 < n && (p.lw[static_cast<Eigen::Index>(j)] == -kInf ||
                         cum + std::exp(p.lw[static_cast<Eigen::Index>(j)] - l) <= u[i])) {
      cum += p.lw[static_cast<Eigen::Index>(j)] == -kInf ? 0.0 : std::exp(p.lw[static_cast<Eigen::Index>(j)] - l);
      ++j;
    }
    from[i] = j;
  }
  Particles q{RowMatrix(p.z.rows(), p.z.cols()), PathValues{}, Eigen::VectorXd::Zero(p.lw.size()),
              std::vector<std::size_t>(n), {}};
  q.v = PathValues{Eigen::VectorXd(n), Eigen::VectorXd(n), RowMatrix(p.z.rows(), p.z.cols()),
                   RowMatrix(p.z.rows(), p.z.cols())};
  for (std::size_t i = 0; i < n; ++i) {
    const auto s = static_cast<Eigen::Index>(from[i]), t = static_cast<Eigen::Index>(i);
    q.z.row(t) = p.z.row(s);
    q.v.u0[t] = p.v.u0[s];
    q.v.u1[t] = p.v.u1[s];
    q.v.g0.row(t) = p.v.g0.row(s);
    q.v.g1.row(t) = p.v.g1.row(s);
    q.ancestor[i] = p.ancestor[from[i]];
  }
  q.rng = std::move(p.rng);
  p = std::move(q);
}

std::size_t count_non_finite(const PathValues& v) {
  std::size_t k = 0;
  for (Eigen::Index i = 0; i < v.u1.size(); ++i) k += std::isfinite(v.u1[i]) ? 0 : 1;
  return k;
}

/// State of one rung's moves shared by its helpers.
struct MoveContext {
  const AnnealingPath& path;
  std::vector<std::size_t> periodic;
  double beta;
  double tau;
  std::size_t d;
  std::vector<double> scale;  ///< M: the diagonal preconditioner (all 1 without preconditioning)
};

/// Weighted per-column variance of the particles (circular for periodic columns), clamped to
/// [1e-10, 1e10]; one common value (their mean) when the path's moves may not scale columns.
std::vector<double> particle_scale(const Particles& p, const AnnealingPath& path) {
  const Eigen::Index n = p.z.rows(), d = p.z.cols();
  const double l = log_sum_exp(p.lw);
  Eigen::VectorXd w(n);
  for (Eigen::Index i = 0; i < n; ++i) w[i] = p.lw[i] > -kInf ? std::exp(p.lw[i] - l) : 0.0;
  std::vector<bool> periodic(static_cast<std::size_t>(d), false);
  for (std::size_t k : path.periodic_columns()) periodic[k] = true;
  std::vector<double> out(static_cast<std::size_t>(d));
  for (Eigen::Index k = 0; k < d; ++k) {
    double v = 0.0;
    if (periodic[static_cast<std::size_t>(k)]) {
      double c = 0.0, s = 0.0;
      for (Eigen::Index i = 0; i < n; ++i) c += w[i] * std::cos(p.z(i, k)), s += w[i] * std::sin(p.z(i, k));
      v = -2.0 * std::log(std::max(std::hypot(c, s), 1e-300));
    } else {
      double m = 0.0;
      for (Eigen::Index i = 0; i < n; ++i) m += w[i] * p.z(i, k);
      for (Eigen::Index i = 0; i < n; ++i) v += w[i] * (p.z(i, k) - m) * (p.z(i, k) - m);
    }
    out[static_cast<std::size_t>(k)] = std::clamp(v, 1e-10, 1e10);
  }
  if (!path.columnwise()) {
    double mean = 0.0;
    for (double v : out) mean += v;
    std::fill(out.begin(), out.end(), mean / static_cast<double>(d));
  }
  return out;
}

/// ∇u_β of particle i into g (projected).
void tempered_gradient(const MoveContext& c, const PathValues& v, Eigen::Index i, double* g) {
  for (std::size_t k = 0; k < c.d; ++k)
    g[k] = (1.0 - c.beta) * v.g0(i, static_cast<Eigen::Index>(k)) + c.beta * v.g1(i, static_cast<Eigen::Index>(k));
  c.path.project(g);
}

double tempered_energy(double beta, const PathValues& v, Eigen::Index i) {
  return (1.0 - beta) * v.u0[i] + beta * v.u1[i];
}

/// Proposals y_i = z_i − τM∇u_β + √(2τ) M^{1/2} ξ_i (unwrapped into `raw`, wrapped into `y`).
void propose(const MoveContext& c, Particles& p, RowMatrix& raw, RowMatrix& y, Execution exec) {
  const double s = std::sqrt(2.0 * c.tau);
  for_each_block(
      static_cast<std::size_t>(p.z.rows()), kBlock,
      [&](std::size_t b, std::size_t e) {
        std::vector<double> g(c.d), xi(c.d);
        for (std::size_t i = b; i < e; ++i) {
          const auto r = static_cast<Eigen::Index>(i);
          p.rng[i].fill_normal(xi.data(), c.d);
          c.path.project(xi.data());
          if (std::isfinite(p.v.u1[r])) tempered_gradient(c, p.v, r, g.data());
          else std::fill(g.begin(), g.end(), 0.0);
          for (std::size_t k = 0; k < c.d; ++k) {
            const auto kk = static_cast<Eigen::Index>(k);
            raw(r, kk) = p.z(r, kk) - c.tau * c.scale[k] * g[k] + s * std::sqrt(c.scale[k]) * xi[k];
            y(r, kk) = raw(r, kk);
          }
          for (std::size_t k : c.periodic) {
            const auto kk = static_cast<Eigen::Index>(k);
            y(r, kk) = y(r, kk) - 2.0 * kPi * std::floor((y(r, kk) + kPi) / (2.0 * kPi));
          }
        }
      },
      exec);
}

/// Metropolis–Hastings log acceptance ratio of particle i's proposal.
/// `gz`, `gy`: scratch of d entries each.
double log_accept_ratio(const MoveContext& c, const Particles& p, const RowMatrix& raw, const PathValues& w,
                        Eigen::Index i, double* gz, double* gy) {
  if (!std::isfinite(w.u1[i]) || !std::isfinite(p.v.u1[i])) return -kInf;
  tempered_gradient(c, p.v, i, gz);
  tempered_gradient(c, w, i, gy);
  double fwd = 0.0, bwd = 0.0;
  for (std::size_t k = 0; k < c.d; ++k) {
    const auto kk = static_cast<Eigen::Index>(k);
    const double diff = raw(i, kk) - p.z(i, kk);
    const double a = diff + c.tau * c.scale[k] * gz[k];   // y − z + τM∇u_β(z)
    const double bb = -diff + c.tau * c.scale[k] * gy[k];  // z − y + τM∇u_β(y)
    fwd += a * a / c.scale[k];
    bwd += bb * bb / c.scale[k];
  }
  return tempered_energy(c.beta, p.v, i) - tempered_energy(c.beta, w, i) - (bwd - fwd) / (4.0 * c.tau);
}

/// One MALA step of every living particle; returns the mean acceptance probability.
double mala_step(const MoveContext& c, Particles& p, std::size_t& evaluations, std::size_t& non_finite,
                 Execution exec) {
  const std::size_t n = static_cast<std::size_t>(p.z.rows());
  RowMatrix raw(p.z.rows(), p.z.cols()), y(p.z.rows(), p.z.cols());
  propose(c, p, raw, y, exec);
  PathValues w;
  evaluations += c.path.evaluate(y, w);
  non_finite += count_non_finite(w);
  const std::size_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> acc_sum(blocks, 0.0), alive(blocks, 0.0);
  for_each_block(
      n, kBlock,
      [&](std::size_t b, std::size_t e) {
        std::vector<double> gz(c.d), gy(c.d);
        for (std::size_t i = b; i < e; ++i) {
          const auto r = static_cast<Eigen::Index>(i);
          const double log_u = std::log(p.rng[i].uniform_pos());
          if (!std::isfinite(p.v.u1[r]) || p.lw[r] == -kInf) continue;
          const double la = log_accept_ratio(c, p, raw, w, r, gz.data(), gy.data());
          acc_sum[b / kBlock] += la >= 0.0 ? 1.0 : (la > -kInf ? std::exp(la) : 0.0);
          alive[b / kBlock] += 1.0;
          if (!(log_u < la)) continue;
          p.z.row(r) = y.row(r);
          p.v.u0[r] = w.u0[r];
          p.v.u1[r] = w.u1[r];
          p.v.g0.row(r) = w.g0.row(r);
          p.v.g1.row(r) = w.g1.row(r);
        }
      },
      exec);
  double a = 0.0, m = 0.0;
  for (std::size_t k = 0; k < blocks; ++k) a += acc_sum[k], m += alive[k];
  return m > 0.0 ? a / m : 0.0;
}

/// Lee & Whiteley's relative variance of Ẑ from the final weights and ancestors.
double relative_variance(const Particles& p, std::size_t resamplings, std::size_t* distinct) {
  const std::size_t n = static_cast<std::size_t>(p.lw.size());
  const double l = log_sum_exp(p.lw);
  std::vector<double> mass(n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    if (p.lw[static_cast<Eigen::Index>(i)] > -kInf) mass[p.ancestor[i]] += std::exp(p.lw[static_cast<Eigen::Index>(i)] - l);
  double same = 0.0;
  *distinct = 0;
  for (double s : mass) {
    same += s * s;
    *distinct += s > 0.0 ? 1 : 0;
  }
  const double nn = static_cast<double>(n);
  const double factor = std::pow(nn / (nn - 1.0), static_cast<double>(resamplings) + 1.0);
  return std::max(0.0, 1.0 - factor * (1.0 - same));
}

}  // namespace

void AnnealedSmcOptions::validate() const {
  auto bad = [](const std::string& field, const std::string& why) { throw ConfigError("smc." + field + ": " + why); };
  if (rungs < 0) bad("rungs", "must be ≥ 0 (0: adaptive), got " + std::to_string(rungs));
  if (!(cess > 0.0 && cess < 1.0)) bad("cess", "must be in (0, 1), got " + std::to_string(cess));
  if (max_rungs < 1) bad("max_rungs", "must be ≥ 1, got " + std::to_string(max_rungs));
  if (mala_steps < 0) bad("mala_steps", "must be ≥ 0, got " + std::to_string(mala_steps));
  if (!(step_size > 0.0 && std::isfinite(step_size))) bad("step_size", "must be > 0, got " + std::to_string(step_size));
  if (!(target_acceptance > 0.0 && target_acceptance < 1.0))
    bad("target_acceptance", "must be in (0, 1), got " + std::to_string(target_acceptance));
  if (!(resample_threshold >= 0.0 && resample_threshold <= 1.0))
    bad("resample_threshold", "must be in [0, 1], got " + std::to_string(resample_threshold));
}

GaussianReferencePath::GaussianReferencePath(const Target& target, Eigen::VectorXd mean, double sd)
    : target_(target), mean_(std::move(mean)), sd_(sd) {
  if (static_cast<std::size_t>(mean_.size()) != target.dim())
    throw DomainError("GaussianReferencePath: mean has " + std::to_string(mean_.size()) + " entries, target dimension " +
                      std::to_string(target.dim()));
  if (!(sd > 0.0 && std::isfinite(sd))) throw DomainError("GaussianReferencePath: sd must be > 0");
}

RowMatrix GaussianReferencePath::sample_reference(std::size_t n, std::uint64_t seed) const {
  const std::size_t d = dim();
  RowMatrix z(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  for (std::size_t i = 0; i < n; ++i) {
    Rng rng = stream_for(seed, i);
    double* row = z.row(static_cast<Eigen::Index>(i)).data();
    rng.fill_normal(row, d);
    for (std::size_t k = 0; k < d; ++k) row[k] = mean_[static_cast<Eigen::Index>(k)] + sd_ * row[k];
  }
  return z;
}

std::size_t GaussianReferencePath::evaluate(const RowMatrix& z, PathValues& out) const {
  const std::size_t n = static_cast<std::size_t>(z.rows()), d = dim();
  out.u0.resize(z.rows());
  out.u1.resize(z.rows());
  out.g0.resize(z.rows(), z.cols());
  out.g1.resize(z.rows(), z.cols());
  const double log_norm = 0.5 * static_cast<double>(d) * std::log(2.0 * kPi * sd_ * sd_);
  for_each_block(n, kBlock, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) {
      const auto r = static_cast<Eigen::Index>(i);
      double q = 0.0;
      for (std::size_t k = 0; k < d; ++k) {
        const auto kk = static_cast<Eigen::Index>(k);
        const double t = (z(r, kk) - mean_[kk]) / sd_;
        q += t * t;
        out.g0(r, kk) = t / sd_;
      }
      out.u0[r] = 0.5 * q + log_norm;
      const double u = target_.reduced_energy(z.row(r).data(), out.g1.row(r).data());
      out.u1[r] = std::isfinite(u) && out.g1.row(r).allFinite() ? u : kInf;
    }
  });
  return n;
}

AnnealedSmcResult run_annealed_smc(const AnnealingPath& path, std::size_t n, const AnnealedSmcOptions& o,
                                   const std::function<void(const SmcRung&)>& on_rung, Execution exec) {
  o.validate();
  if (n < 2) throw DomainError("annealed SMC needs at least 2 particles, got " + std::to_string(n));
  AnnealedSmcResult res;
  Particles p;
  p.z = path.sample_reference(n, o.seed);
  res.evaluations += path.evaluate(p.z, p.v);
  res.non_finite += count_non_finite(p.v);
  p.lw = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(n));
  p.ancestor.resize(n);
  std::iota(p.ancestor.begin(), p.ancestor.end(), std::size_t{0});
  for (std::size_t i = 0; i < n; ++i) p.rng.push_back(stream_for(o.seed ^ kSmcMoveMix, i));
  {
    Eigen::VectorXd lw0(static_cast<Eigen::Index>(n));
    for (Eigen::Index i = 0; i < lw0.size(); ++i) lw0[i] = delta_log_weight(p.v, i);
    res.initial_ess_fraction = ess_fraction(lw0);
    res.initial_log_z = log_sum_exp(lw0) - std::log(static_cast<double>(n));
  }
  MoveContext c{path, path.periodic_columns(), 0.0, o.step_size, path.dim(), std::vector<double>(path.dim(), 1.0)};
  double log_z_done = 0.0;
  for (int rung = 1; c.beta < 1.0; ++rung) {
    if (o.rungs == 0 && rung > o.max_rungs)
      throw DomainError("annealed SMC: the adaptive schedule reached smc.max_rungs = " + std::to_string(o.max_rungs) +
                        " at beta = " + std::to_string(c.beta) + "; raise it or lower smc.cess");
    const double beta = next_beta(p, c.beta, rung, o);
    for (Eigen::Index i = 0; i < p.lw.size(); ++i) {
      const double dl = delta_log_weight(p.v, i);
      p.lw[i] = dl > -kInf ? p.lw[i] + (beta - c.beta) * dl : -kInf;
    }
    c.beta = beta;
    SmcRung r;
    r.beta = beta;
    r.ess_fraction = ess_fraction(p.lw);
    if (r.ess_fraction == 0.0)
      throw DomainError("annealed SMC: every particle has zero weight at beta = " + std::to_string(beta));
    // Not at β = 1: the final particles stay weighted (resampling there would only add noise and
    // report an ESS of 1 that says nothing about the weights).
    if (beta < 1.0 && r.ess_fraction < o.resample_threshold) {
      log_z_done += log_sum_exp(p.lw) - std::log(static_cast<double>(n));
      resample(p, o.seed, rung);
      r.resampled = true;
      ++res.resamplings;
    }
    if (o.precondition && o.mala_steps > 0) {
      c.scale = particle_scale(p, path);
      r.scale_min = *std::min_element(c.scale.begin(), c.scale.end());
      r.scale_max = *std::max_element(c.scale.begin(), c.scale.end());
    }
    double acc_sum = 0.0;
    for (int m = 0; m < o.mala_steps; ++m) {
      r.step_size = c.tau;
      const double a = mala_step(c, p, res.evaluations, res.non_finite, exec);
      acc_sum += a;
      c.tau = std::clamp(c.tau * std::exp(2.0 * (a - o.target_acceptance)), 1e-12, 1e6);
    }
    r.acceptance = o.mala_steps > 0 ? acc_sum / o.mala_steps : 0.0;
    res.rungs.push_back(r);
    if (on_rung) on_rung(r);
  }
  res.log_z = log_z_done + log_sum_exp(p.lw) - std::log(static_cast<double>(n));
  res.log_z_se = std::sqrt(relative_variance(p, res.resamplings, &res.distinct_ancestors));
  res.log_weights = p.lw.array() + log_z_done;
  res.u1 = p.v.u1;
  res.z = std::move(p.z);
  return res;
}

}  // namespace boltzlab
