#include "boltzlab/generators/conditional_base.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/generators/circular.hpp"
#include "boltzlab/generators/target_bridge.hpp"

namespace boltzlab::generators {
namespace {

using circular::kPi;
using circular::kTwoPi;

torch::TensorOptions f64() { return torch::TensorOptions().dtype(torch::kDouble); }

torch::Tensor index_tensor(const std::vector<std::int64_t>& v) {
  return torch::tensor(v, torch::TensorOptions().dtype(torch::kLong));
}

Eigen::MatrixXd to_eigen(const torch::Tensor& t) { return to_matrix(t); }  // column-major copy

torch::Tensor from_eigen(const Eigen::MatrixXd& m) { return to_tensor(RowMatrix(m)); }

std::vector<double> values(const torch::Tensor& t) {
  const auto c = t.to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

/// A fitted mixture of K products of von Mises densities over g angles.
struct JointFit {
  Eigen::MatrixXd mu, kappa;  // K × g
  Eigen::VectorXd weight;     // K
  double log_likelihood = -std::numeric_limits<double>::infinity();
};

/// n × K matrix of log w_k + Σ_c log vM(t_ic; μ_kc, κ_kc).
Eigen::MatrixXd joint_log_terms(const Eigen::ArrayXXd& cos_t, const Eigen::ArrayXXd& sin_t, const JointFit& f) {
  // κ cos(t − μ) = κ cos μ · cos t + κ sin μ · sin t: no cosine per point.
  const Eigen::Index n = cos_t.rows(), g = cos_t.cols(), k_count = f.weight.size();
  Eigen::MatrixXd out(n, k_count);
  for (Eigen::Index k = 0; k < k_count; ++k) {
    double c = std::log(f.weight[k]);
    for (Eigen::Index j = 0; j < g; ++j) c -= std::log(kTwoPi) + circular::log_i0(f.kappa(k, j));
    Eigen::ArrayXd s = Eigen::ArrayXd::Constant(n, c);
    for (Eigen::Index j = 0; j < g; ++j)
      s += f.kappa(k, j) * std::cos(f.mu(k, j)) * cos_t.col(j) + f.kappa(k, j) * std::sin(f.mu(k, j)) * sin_t.col(j);
    out.col(k) = s.matrix();
  }
  return out;
}

/// M-step of component k of a joint von Mises mixture from responsibilities r (Σ r = n_k):
/// per angle the weighted circular mean and the ML concentration.
void update_component(JointFit& f, Eigen::Index k, const Eigen::VectorXd& r, double nk, const Eigen::ArrayXXd& sin_t,
                      const Eigen::ArrayXXd& cos_t, Eigen::Index n, double max_kappa) {
  f.weight[k] = nk / static_cast<double>(n);
  for (Eigen::Index j = 0; j < sin_t.cols(); ++j) {
    const double s = (r.array() * sin_t.col(j)).sum(), c = (r.array() * cos_t.col(j)).sum();
    f.mu(k, j) = std::atan2(s, c);
    f.kappa(k, j) = circular::ml_kappa(std::sqrt(s * s + c * c) / nk, max_kappa);
  }
}

/// EM from the given start means (K × g); κ starts at 2, weights equal.
JointFit em_joint(const Eigen::MatrixXd& t, const Eigen::MatrixXd& start, double max_kappa) {
  const Eigen::Index n = t.rows(), g = t.cols(), k_count = start.rows();
  JointFit f;
  f.mu = start;
  f.kappa = Eigen::MatrixXd::Constant(k_count, g, 2.0);
  f.weight = Eigen::VectorXd::Constant(k_count, 1.0 / static_cast<double>(k_count));
  const Eigen::ArrayXXd sin_t = t.array().sin(), cos_t = t.array().cos();
  f.log_likelihood = circular::run_em(
      n, static_cast<std::size_t>(k_count), 500, [&] { return joint_log_terms(cos_t, sin_t, f); },
      [&](std::size_t k, const Eigen::VectorXd& r, double nk) {
        update_component(f, static_cast<Eigen::Index>(k), r, nk, sin_t, cos_t, n, max_kappa);
      },
      [&](std::size_t k) {  // an empty component: keep it harmless
        f.weight[static_cast<Eigen::Index>(k)] = 1e-300;
        f.kappa.row(static_cast<Eigen::Index>(k)).setZero();
      });
  return f;
}

/// Deterministic k-means++ seeding (fixed stream) followed by 20 Lloyd steps in the
/// (cos, sin) embedding: K start means on the torus.
Eigen::MatrixXd kmeans_starts(const Eigen::MatrixXd& t, Eigen::Index k_count, std::uint64_t seed) {
  const Eigen::Index n = t.rows(), g = t.cols();
  Eigen::MatrixXd e(n, 2 * g);
  e << t.array().cos().matrix(), t.array().sin().matrix();
  Rng rng = stream_for(seed, 0);
  Eigen::MatrixXd centers(k_count, 2 * g);
  centers.row(0) = e.row(static_cast<Eigen::Index>(rng.uniform() * static_cast<double>(n)));
  Eigen::VectorXd d2 = (e.rowwise() - centers.row(0)).rowwise().squaredNorm();
  for (Eigen::Index k = 1; k < k_count; ++k) {
    const double target = rng.uniform() * d2.sum();
    double cum = 0.0;
    Eigen::Index pick = n - 1;
    for (Eigen::Index i = 0; i < n; ++i) {
      cum += d2[i];
      if (cum >= target) {
        pick = i;
        break;
      }
    }
    centers.row(k) = e.row(pick);
    d2 = d2.cwiseMin((e.rowwise() - centers.row(k)).rowwise().squaredNorm());
  }
  for (int it = 0; it < 20; ++it) {
    Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(k_count, 2 * g);
    Eigen::VectorXd count = Eigen::VectorXd::Zero(k_count);
    for (Eigen::Index i = 0; i < n; ++i) {
      Eigen::Index best = 0;
      (centers.rowwise() - e.row(i)).rowwise().squaredNorm().minCoeff(&best);
      sum.row(best) += e.row(i);
      count[best] += 1.0;
    }
    for (Eigen::Index k = 0; k < k_count; ++k)
      if (count[k] > 0) centers.row(k) = sum.row(k) / count[k];
  }
  Eigen::MatrixXd mu(k_count, g);
  for (Eigen::Index k = 0; k < k_count; ++k)
    for (Eigen::Index j = 0; j < g; ++j) mu(k, j) = std::atan2(centers(k, g + j), centers(k, j));
  return mu;
}

/// f(y_S) = (1; cos k y_s, sin k y_s for k = 1 … H and s ∈ soft; cos/sin products of the
/// first harmonics of every pair of joint columns): B × F.
torch::Tensor periodic_features(const torch::Tensor& y, const std::vector<std::int64_t>& soft,
                                const std::vector<std::int64_t>& joint, int harmonics) {
  const auto s = y.index_select(1, index_tensor(soft));
  std::vector<torch::Tensor> parts = {torch::ones({y.size(0), 1}, y.options())};
  for (int k = 1; k <= harmonics; ++k) {
    parts.push_back(torch::cos(k * s));
    parts.push_back(torch::sin(k * s));
  }
  for (std::size_t a = 0; a < joint.size(); ++a)
    for (std::size_t b = a + 1; b < joint.size(); ++b) {
      const auto ya = y.select(1, joint[a]), yb = y.select(1, joint[b]);
      const auto ca = torch::cos(ya), sa = torch::sin(ya), cb = torch::cos(yb), sb = torch::sin(yb);
      parts.push_back(torch::stack({ca * cb, ca * sb, sa * cb, sa * sb}, 1));
    }
  return torch::cat(parts, 1);
}

/// Bin index (0 … n−1) of an angle, after wrapping into [−π, π).
std::int64_t angle_bin(double a, int bins) {
  const auto b = static_cast<std::int64_t>(std::floor((circular::wrap(a) + kPi) / kTwoPi * bins));
  return std::clamp<std::int64_t>(b, 0, bins - 1);
}

}  // namespace

ConditionalGaussian::ConditionalGaussian(std::int64_t dim, std::vector<std::int64_t> soft,
                                         std::vector<std::int64_t> joint, std::vector<std::int64_t> hard,
                                         std::vector<bool> hard_periodic, int harmonics, torch::Tensor coef,
                                         torch::Tensor chol, torch::Tensor joint_mu, torch::Tensor joint_kappa,
                                         torch::Tensor joint_weight)
    : dim_(dim), soft_(std::move(soft)), joint_(std::move(joint)), hard_(std::move(hard)),
      hard_periodic_(std::move(hard_periodic)), harmonics_(harmonics) {
  auto fail = [](const std::string& m) { throw DomainError("conditional Gaussian base: " + m); };
  if (dim_ < 1) fail("dim must be >= 1");
  if (harmonics_ < 1) fail("harmonics must be >= 1");
  std::set<std::int64_t> seen;
  for (const auto c : soft_)
    if (c < 0 || c >= dim_ || !seen.insert(c).second) fail("soft column " + std::to_string(c) + " out of range or repeated");
  for (const auto c : hard_)
    if (c < 0 || c >= dim_ || !seen.insert(c).second) fail("hard column " + std::to_string(c) + " out of range or repeated");
  if (static_cast<std::int64_t>(seen.size()) != dim_) fail("soft and hard columns must cover all " + std::to_string(dim_));
  if (soft_.empty() || hard_.empty()) fail("needs at least one soft and one hard column");
  if (hard_periodic_.size() != hard_.size()) fail("hard_periodic must have one entry per hard column");
  std::set<std::int64_t> soft_set(soft_.begin(), soft_.end()), joint_set;
  for (const auto c : joint_)
    if (!soft_set.count(c) || !joint_set.insert(c).second) fail("joint column " + std::to_string(c) + " is not a (distinct) soft column");
  if (joint_.size() == 1) fail("a joint group needs >= 2 columns");
  const auto h = static_cast<std::int64_t>(hard_.size());
  coef_ = coef.to(torch::kDouble).contiguous();
  chol_ = chol.to(torch::kDouble).contiguous();
  if (coef_.dim() == 2) coef_ = coef_.unsqueeze(0);
  if (chol_.dim() == 2) chol_ = chol_.unsqueeze(0);
  const std::int64_t k_count = coef_.size(0);
  if (coef_.dim() != 3 || coef_.size(1) != n_features() || coef_.size(2) != h)
    fail("coef must be K x " + std::to_string(n_features()) + " x " + std::to_string(h));
  if (chol_.dim() != 3 || chol_.size(0) != k_count || chol_.size(1) != h || chol_.size(2) != h)
    fail("chol must be K x h x h with the K of coef");
  if (!torch::isfinite(coef_).all().item<bool>() || !torch::isfinite(chol_).all().item<bool>())
    fail("coef and chol must be finite");
  if (!(chol_.diagonal(0, 1, 2) > 0).all().item<bool>() || !torch::equal(chol_, chol_.tril()))
    fail("chol must be lower triangular with a positive diagonal");
  chol_inv_ = torch::linalg::inv(chol_).tril().contiguous();
  log_det_half_ = chol_.diagonal(0, 1, 2).log().sum(1);
  if (!joint_.empty()) {
    const auto g = static_cast<std::int64_t>(joint_.size());
    joint_mu_ = joint_mu.to(torch::kDouble).contiguous();
    joint_kappa_ = joint_kappa.to(torch::kDouble).contiguous();
    joint_weight_ = joint_weight.to(torch::kDouble).contiguous();
    if (joint_mu_.dim() != 2 || joint_mu_.size(1) != g || joint_mu_.size(0) != k_count ||
        joint_kappa_.sizes() != joint_mu_.sizes() || joint_weight_.dim() != 1 || joint_weight_.size(0) != k_count)
      fail("joint_mu, joint_kappa must be K x g and joint_weight K, with the K of coef");
    if (!torch::isfinite(joint_mu_).all().item<bool>() || !(joint_kappa_ >= 0).all().item<bool>() ||
        !torch::isfinite(joint_kappa_).all().item<bool>() || !(joint_weight_ > 0).all().item<bool>() ||
        std::abs(joint_weight_.sum().item<double>() - 1.0) > 1e-9)
      fail("joint mixture: kappa >= 0, finite means, weights > 0 summing to 1");
    joint_mu_v_ = values(joint_mu_);
    joint_kappa_v_ = values(joint_kappa_);
    joint_weight_v_ = values(joint_weight_);
    log_joint_weight_ = joint_weight_.log();
  } else if (k_count != 1) {
    fail("without a joint group there is one expert (K = 1)");
  }
  soft_index_ = index_tensor(soft_);
  joint_index_ = index_tensor(joint_);
  hard_index_ = index_tensor(hard_);
  std::vector<std::int64_t> hp(hard_periodic_.begin(), hard_periodic_.end());
  hard_periodic_mask_ = torch::tensor(hp, torch::TensorOptions().dtype(torch::kLong)).to(torch::kBool);
}

std::int64_t ConditionalGaussian::n_features() const {
  const auto p = static_cast<std::int64_t>(soft_.size()), g = static_cast<std::int64_t>(joint_.size());
  return 1 + 2 * harmonics_ * p + 2 * g * (g - 1);
}

bool ConditionalGaussian::shared() const {
  for (std::int64_t k = 1; k < components(); ++k)
    if (!torch::equal(coef_[k], coef_[0]) || !torch::equal(chol_[k], chol_[0])) return false;
  return true;
}

double ConditionalGaussian::max_periodic_sd() const {
  double out = 0.0;
  const auto sd = (chol_ * chol_).sum(2).sqrt();  // K × h
  for (std::size_t j = 0; j < hard_.size(); ++j)
    if (hard_periodic_[j]) out = std::max(out, sd.select(1, static_cast<std::int64_t>(j)).max().item<double>());
  return out;
}

torch::Tensor ConditionalGaussian::features(const torch::Tensor& y) const {
  return periodic_features(y, soft_, joint_, harmonics_);
}

torch::Tensor ConditionalGaussian::log_prob_hard(const torch::Tensor& y) const {
  const auto mu = torch::matmul(features(y).unsqueeze(0), coef_);  // K × B × h
  auto r = y.index_select(1, hard_index_).unsqueeze(0) - mu;
  r = torch::where(hard_periodic_mask_, circular::wrap(r), r);
  const auto z = torch::matmul(r, chol_inv_.transpose(1, 2));
  const double h = static_cast<double>(hard_.size());
  return -0.5 * (z * z).sum(2) - log_det_half_.unsqueeze(1) - 0.5 * h * std::log(kTwoPi);
}

namespace {
void require_one_expert(const ConditionalGaussian& g) {
  if (g.components() != 1)
    throw DomainError("conditional Gaussian base: the whitening needs one expert (got " +
                      std::to_string(g.components()) + ")");
}
}  // namespace

torch::Tensor ConditionalGaussian::whiten(const torch::Tensor& y) const {
  require_one_expert(*this);
  auto r = y.index_select(1, hard_index_) - torch::matmul(features(y), coef_[0]);
  r = torch::where(hard_periodic_mask_, circular::wrap(r), r);
  return y.index_copy(1, hard_index_, torch::matmul(r, chol_inv_[0].t()));
}

torch::Tensor ConditionalGaussian::unwhiten(const torch::Tensor& u) const {
  require_one_expert(*this);
  const auto yh = torch::matmul(features(u), coef_[0]) + torch::matmul(u.index_select(1, hard_index_), chol_[0].t());
  return u.index_copy(1, hard_index_, yh);
}

torch::Tensor ConditionalGaussian::log_prob_joint_components(const torch::Tensor& y) const {
  if (joint_.empty()) return torch::zeros({1, y.size(0)}, y.options());
  const auto t = y.index_select(1, joint_index_);  // B × g
  const auto terms = joint_kappa_.unsqueeze(1) * torch::cos(t.unsqueeze(0) - joint_mu_.unsqueeze(1)) -
                     std::log(kTwoPi) - circular::log_i0(joint_kappa_).unsqueeze(1);  // K × B × g
  return terms.sum(2) + log_joint_weight_.unsqueeze(1);
}

torch::Tensor ConditionalGaussian::log_prob(const torch::Tensor& y) const {
  const auto out = torch::logsumexp(log_prob_joint_components(y) + log_prob_hard(y), 0);
  return correction_bins_ > 0 ? out + log_correction(y) : out;
}

torch::Tensor ConditionalGaussian::joint_bin_index(const torch::Tensor& y, int bins) const {
  // From the detached angles: c_b is piecewise constant (zero gradient inside a bin). The same
  // formula as angle_bin, which the draws use.
  auto bin = [&](std::int64_t c) {
    return torch::clamp(torch::floor((circular::wrap(y.select(1, c).detach().to(torch::kDouble)) + kPi) / kTwoPi * bins),
                        0, bins - 1)
        .to(torch::kLong);
  };
  return bin(joint_[0]) * bins + bin(joint_[1]);
}

torch::Tensor ConditionalGaussian::log_correction(const torch::Tensor& y) const {
  if (correction_bins_ == 0) return torch::zeros({y.size(0)}, y.options());
  return log_ratio_.index_select(0, joint_bin_index(y, correction_bins_)).to(y.dtype());
}

torch::Tensor ConditionalGaussian::joint_bin_masses(int bins) const {
  if (joint_.size() != 2) throw DomainError("conditional Gaussian base: a bin correction needs a joint pair");
  if (bins < 2) throw DomainError("conditional Gaussian base: the bin correction needs >= 2 bins per axis");
  constexpr int kIntervals = 128;  // composite Simpson per bin and axis
  const std::int64_t k_count = components();
  const double width = kTwoPi / bins, h = width / kIntervals;
  // mass(k, axis, bin) of the one-dimensional von Mises factors
  std::vector<double> mass(static_cast<std::size_t>(k_count * 2 * bins));
  for (std::int64_t k = 0; k < k_count; ++k)
    for (int a = 0; a < 2; ++a) {
      const double mu = joint_mu_v_[static_cast<std::size_t>(k * 2 + a)], kappa = joint_kappa_v_[static_cast<std::size_t>(k * 2 + a)];
      const double log_norm = -std::log(kTwoPi) - circular::log_i0(kappa);
      for (int b = 0; b < bins; ++b) {
        double sum = 0.0;
        for (int i = 0; i <= kIntervals; ++i) {
          const double t = -kPi + b * width + i * h;
          const double wgt = (i == 0 || i == kIntervals) ? 1.0 : (i % 2 ? 4.0 : 2.0);
          sum += wgt * std::exp(kappa * std::cos(t - mu) + log_norm);
        }
        mass[static_cast<std::size_t>((k * 2 + a) * bins + b)] = sum * h / 3.0;
      }
    }
  auto out = torch::zeros({static_cast<std::int64_t>(bins) * bins}, f64());
  auto* o = out.data_ptr<double>();
  for (std::int64_t k = 0; k < k_count; ++k)
    for (int i = 0; i < bins; ++i)
      for (int j = 0; j < bins; ++j)
        o[i * bins + j] += joint_weight_v_[static_cast<std::size_t>(k)] * mass[static_cast<std::size_t>(k * 2 * bins + i)] *
                           mass[static_cast<std::size_t>((k * 2 + 1) * bins + j)];
  return out;
}

void ConditionalGaussian::set_joint_correction(int bins, const torch::Tensor& target_masses) {
  const auto m = joint_bin_masses(bins);  // checks the pair and n
  const auto p = target_masses.to(torch::kDouble).contiguous().reshape({-1});
  if (p.numel() != m.numel()) throw DomainError("conditional Gaussian base: the bin correction needs n^2 target masses");
  if (!torch::isfinite(p).all().item<bool>() || !(p > 0).all().item<bool>() ||
      std::abs(p.sum().item<double>() - 1.0) > 1e-9)
    throw DomainError("conditional Gaussian base: target bin masses must be finite, > 0 and sum to 1");
  if (!(m > 0).all().item<bool>())
    throw DomainError("conditional Gaussian base: the joint mixture has a bin of zero mass; use fewer bins");
  const double max_ratio = (p / m).max().item<double>();
  if (!(max_ratio <= 10.0 * kMaxJointCorrection))
    throw DomainError("conditional Gaussian base: bin correction ratio " + std::to_string(max_ratio) + " above " +
                      std::to_string(10.0 * kMaxJointCorrection) + " (each draw would need that many mixture draws)");
  correction_bins_ = bins;
  log_ratio_ = (p.log() - m.log()).contiguous();
  log_ratio_v_ = values(log_ratio_);
  log_ratio_max_ = *std::max_element(log_ratio_v_.begin(), log_ratio_v_.end());
}

void ConditionalGaussian::fit_joint_correction(const torch::Tensor& y, int bins, double defensive) {
  if (!(defensive > 0.0 && defensive <= 1.0))
    throw DomainError("conditional Gaussian base: the defensive fraction of the bin correction must be in (0, 1]");
  if (joint_.size() != 2) throw DomainError("conditional Gaussian base: a bin correction needs a joint pair");
  if (y.dim() != 2 || y.size(1) != dim_ || y.size(0) < 1)
    throw DomainError("conditional Gaussian base: bin correction data must be B x " + std::to_string(dim_));
  const auto m = joint_bin_masses(bins);
  const auto freq = torch::bincount(joint_bin_index(y, bins), {}, static_cast<std::int64_t>(bins) * bins).to(torch::kDouble) /
                    static_cast<double>(y.size(0));
  // Ratios are capped at C = kMaxJointCorrection (bins the mixture nearly misses, e.g. a few frames
  // in the φ > 0 basin), because a draw needs max c mixture draws: c_b = min(s r_b, C) with r_b the
  // uncapped ratio and s ≥ 1 the scale that restores Σ c_b m_b = 1. The sum is increasing in s, ≤ 1
  // at s = 1 and C ≥ 1 once every bin is capped (s = C / min r), so bisection finds s.
  const auto r = ((1.0 - defensive) * freq + defensive * m / m.sum()) / m;
  auto mass_at = [&](double scale) { return (torch::clamp_max(scale * r, kMaxJointCorrection) * m).sum().item<double>(); };
  double lo = 1.0, hi = kMaxJointCorrection / r.min().item<double>();
  if (mass_at(lo) < 1.0) {
    for (int it = 0; it < 200 && hi - lo > 1e-15 * hi; ++it) {
      const double mid = 0.5 * (lo + hi);
      (mass_at(mid) < 1.0 ? lo : hi) = mid;
    }
    lo = hi;
  }
  const auto target = torch::clamp_max(lo * r, kMaxJointCorrection) * m;
  set_joint_correction(bins, target / target.sum());
}

std::int64_t ConditionalGaussian::sample_joint(Rng& rng, double* row) const {
  if (joint_.empty()) return 0;
  const auto g = joint_.size();
  for (;;) {
    const double u = rng.uniform();
    double cum = 0.0;
    std::size_t comp = 0;
    for (std::size_t k = 0; k < joint_weight_v_.size(); ++k) {
      comp = k;
      cum += joint_weight_v_[k];
      if (u < cum) break;
    }
    for (std::size_t j = 0; j < g; ++j)
      row[joint_[j]] = circular::sample_von_mises(rng, joint_mu_v_[comp * g + j], joint_kappa_v_[comp * g + j]);
    if (correction_bins_ == 0) return static_cast<std::int64_t>(comp);
    // With a bin correction: accept with probability c_b / max c, else draw again (file comment).
    const auto b = angle_bin(row[joint_[0]], correction_bins_) * correction_bins_ + angle_bin(row[joint_[1]], correction_bins_);
    if (rng.uniform() < std::exp(log_ratio_v_[static_cast<std::size_t>(b)] - log_ratio_max_))
      return static_cast<std::int64_t>(comp);
  }
}

void ConditionalGaussian::fill_hard(torch::Tensor& y, const torch::Tensor& normals,
                                    const std::vector<std::int64_t>& component) const {
  // Row by row in a fixed order (B_kᵀ f + L_k ε, expert k of the row): a GEMM over the rows of
  // one expert would round each row by the BLAS kernel's blocking of that batch, so a draw would
  // depend on which other rows share its batch.
  const auto f = features(y).contiguous();  // B × F
  const auto eps = normals.contiguous();
  const auto coef = coef_.contiguous(), chol = chol_.contiguous();
  const std::int64_t b = y.size(0), nf = f.size(1), h = static_cast<std::int64_t>(hard_.size());
  auto yh = torch::empty({b, h}, y.options());
  const double *pf = f.data_ptr<double>(), *pe = eps.data_ptr<double>();
  const double *pc = coef.data_ptr<double>(), *pl = chol.data_ptr<double>();
  double* out = yh.data_ptr<double>();
  for (std::int64_t i = 0; i < b; ++i) {
    const std::int64_t k = component[static_cast<std::size_t>(i)];
    const double* ck = pc + k * nf * h;
    const double* lk = pl + k * h * h;
    double* row = out + i * h;
    for (std::int64_t c = 0; c < h; ++c) row[c] = 0.0;
    for (std::int64_t j = 0; j < nf; ++j) {
      const double fj = pf[i * nf + j];
      for (std::int64_t c = 0; c < h; ++c) row[c] += fj * ck[j * h + c];
    }
    for (std::int64_t c = 0; c < h; ++c) {
      double s = 0.0;
      for (std::int64_t j = 0; j < h; ++j) s += lk[c * h + j] * pe[i * h + j];
      row[c] += s;
    }
  }
  yh = torch::where(hard_periodic_mask_, circular::wrap(yh), yh);
  y.index_copy_(1, hard_index_, yh);
}

namespace {

[[noreturn]] void fit_fail(const std::string& m) { throw DomainError("conditional Gaussian base: " + m); }

/// The columns of a fit: the hard ones (all but `soft`) and which of them are periodic.
struct FitColumns {
  std::vector<std::int64_t> hard;
  std::vector<bool> hard_periodic;
};

/// Checks the arguments of ConditionalGaussian::fit and splits the columns.
FitColumns check_fit_arguments(const torch::Tensor& y, const torch::Tensor& mask,
                               const std::vector<std::int64_t>& soft, int harmonics, int joint_components,
                               int em_iterations, double shrinkage, double ridge) {
  if (y.dim() != 2 || mask.dim() != 1 || y.size(1) != mask.size(0)) fit_fail("data must be B x m with a mask of length m");
  if (harmonics < 1) fit_fail("harmonics must be >= 1");
  if (joint_components < 1) fit_fail("joint_components must be >= 1");
  if (em_iterations < 1) fit_fail("em_iterations must be >= 1");
  if (!(ridge >= 0.0)) fit_fail("ridge must be >= 0");
  if (!(shrinkage >= 0.0)) fit_fail("shrinkage must be >= 0");
  const std::int64_t m = y.size(1);
  std::set<std::int64_t> soft_set(soft.begin(), soft.end());
  for (const auto c : soft)
    if (c < 0 || c >= m || !mask[c].item<bool>()) fit_fail("soft column " + std::to_string(c) + " is not a periodic column");
  FitColumns out;
  for (std::int64_t c = 0; c < m; ++c)
    if (!soft_set.count(c)) {
      out.hard.push_back(c);
      out.hard_periodic.push_back(mask[c].item<bool>());
    }
  return out;
}

/// The joint columns of yd (n × m, double), wrapped into [−π, π): n × g.
Eigen::MatrixXd joint_angles(const torch::Tensor& yd, const std::vector<std::int64_t>& joint) {
  const std::int64_t n = yd.size(0);
  Eigen::MatrixXd t(n, static_cast<Eigen::Index>(joint.size()));
  const auto yj = yd.index_select(1, index_tensor(joint)).contiguous();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < joint.size(); ++j)
      t(i, static_cast<Eigen::Index>(j)) = circular::wrap(yj.data_ptr<double>()[i * static_cast<std::int64_t>(joint.size()) + j]);
  return t;
}

/// Joint von Mises mixture of the angles t by EM, K ≤ `max_components` by BIC, empty
/// components dropped and the weights renormalized.
JointFit fit_joint_mixture(const Eigen::MatrixXd& t, int max_components) {
  const double g = static_cast<double>(t.cols());
  // The BIC search runs on at most kMaxSearchRows rows (an even stride): EM costs
  // O(rows · K · g) per iteration for each of the ≈ 3K starts; the experts' EM
  // re-estimates the chosen components on all rows.
  constexpr Eigen::Index kMaxSearchRows = 20000;
  Eigen::MatrixXd t_search = t;
  if (t.rows() > kMaxSearchRows) {
    t_search.resize(kMaxSearchRows, t.cols());
    for (Eigen::Index i = 0; i < kMaxSearchRows; ++i)
      t_search.row(i) = t.row(i * (t.rows() - 1) / (kMaxSearchRows - 1));
  }
  const double log_rows = std::log(static_cast<double>(t_search.rows()));
  double best_bic = std::numeric_limits<double>::infinity();
  JointFit joint_fit;
  for (int k = 1; k <= max_components; ++k)
    for (std::uint64_t start = 0; start < (k > 1 ? 3u : 1u); ++start) {
      JointFit f = em_joint(t_search, kmeans_starts(t_search, k, 0x6a6f696e74ULL + start), 1e3);
      const double bic = -2.0 * f.log_likelihood + (k * (2.0 * g + 1.0) - 1.0) * log_rows;
      if (bic < best_bic) {
        best_bic = bic;
        joint_fit = std::move(f);
      }
    }
  std::vector<Eigen::Index> keep;  // drop empty components
  for (Eigen::Index k = 0; k < joint_fit.weight.size(); ++k)
    if (joint_fit.weight[k] > 1e-200) keep.push_back(k);
  JointFit kept;
  kept.mu.resize(static_cast<Eigen::Index>(keep.size()), t.cols());
  kept.kappa.resizeLike(kept.mu);
  kept.weight.resize(static_cast<Eigen::Index>(keep.size()));
  for (std::size_t r = 0; r < keep.size(); ++r) {
    kept.mu.row(static_cast<Eigen::Index>(r)) = joint_fit.mu.row(keep[r]);
    kept.kappa.row(static_cast<Eigen::Index>(r)) = joint_fit.kappa.row(keep[r]);
    kept.weight[static_cast<Eigen::Index>(r)] = joint_fit.weight[keep[r]];
  }
  kept.weight /= kept.weight.sum();
  return kept;
}

/// The regression of a fit: features F = f(y_S) (n × F) and targets H (n × h, the hard
/// columns; periodic ones regressed as wrap(y − c̄) about their circular mean c̄, the cut at
/// c̄ ± π opposite the bulk; c̄ goes back into the intercept when packing), and the pooled fit
/// (B₀, Σ₀, G₀ = FᵀF / n) kept for the experts' shrinkage.
struct Regression {
  std::int64_t dim = 0;
  std::vector<std::int64_t> soft, joint, hard;
  std::vector<bool> hard_periodic;
  int harmonics = 1;
  double ridge = 0.0;
  Eigen::MatrixXd F, H;
  std::vector<double> centre;
  Eigen::MatrixXd gram0, B0, cov0;

  std::int64_t rows() const { return F.rows(); }
  std::int64_t n_features() const { return F.cols(); }
  std::int64_t n_hard() const { return static_cast<std::int64_t>(hard.size()); }
};

/// Features and targets of the fit (see Regression). \throws DomainError with too few rows.
Regression build_regression(const torch::Tensor& yd, const std::vector<std::int64_t>& soft,
                            const std::vector<std::int64_t>& joint, int harmonics, FitColumns columns, double ridge) {
  Regression p;
  p.dim = yd.size(1);
  p.soft = soft;
  p.joint = joint;
  p.hard = std::move(columns.hard);
  p.hard_periodic = std::move(columns.hard_periodic);
  p.harmonics = harmonics;
  p.ridge = ridge;
  const std::int64_t n = yd.size(0), h = p.n_hard();
  p.F = to_eigen(periodic_features(yd, soft, joint, harmonics));
  const std::int64_t nf = p.F.cols();
  if (n < nf + h + 2)
    fit_fail("needs more than " + std::to_string(nf + h + 1) + " data rows, got " + std::to_string(n));
  std::vector<std::int64_t> hp(p.hard_periodic.begin(), p.hard_periodic.end());
  const auto hard_periodic_mask = torch::tensor(hp, torch::TensorOptions().dtype(torch::kLong)).to(torch::kBool);
  auto target = yd.index_select(1, index_tensor(p.hard));
  const auto centre = torch::where(hard_periodic_mask,
                                   torch::atan2(torch::sin(target).mean(0), torch::cos(target).mean(0)),
                                   torch::zeros({h}, f64()));
  target = torch::where(hard_periodic_mask, circular::wrap(target - centre), target);
  p.H = to_eigen(target);
  p.centre = values(centre);
  return p;
}

/// Weighted least squares and residual covariance of one expert (weights r, Σr = nk; null:
/// the pooled fit, which is then kept in p). Shrinkage of the experts toward the pooled fit
/// (B₀, Σ₀): with responsibilities r (Σ r = n_k) and prior weight ν (in rows),
///   B_k = (Fᵀ diag(r) F + ν G₀ + ridge)⁻¹ (Fᵀ diag(r) H + ν G₀ B₀),   G₀ = FᵀF / n,
///   Σ_k = (Rᵀ diag(r) R + ν Σ₀) / (n_k + ν),
/// the posterior mode under a conjugate prior centred on the pooled fit (regularized
/// discriminant analysis; Friedman, JASA 84, 165, 1989): ν → 0 gives separate experts, ν → ∞
/// the shared form. ν = `shrinkage` × (parameters per expert) keeps sparse experts (a rare
/// basin) well posed.
void m_step(Regression& p, const Eigen::VectorXd* r, double nu, Eigen::MatrixXd& B, Eigen::MatrixXd& L) {
  const Eigen::MatrixXd& F = p.F;
  const Eigen::MatrixXd& H = p.H;
  const std::int64_t n = p.rows(), h = p.n_hard();
  const double nk = r ? r->sum() : static_cast<double>(n);
  Eigen::MatrixXd Fw = r ? Eigen::MatrixXd(F.array().colwise() * r->array()) : F;
  Eigen::MatrixXd gram = Fw.transpose() * F / nk;
  Eigen::MatrixXd rhs = Fw.transpose() * H / nk;
  if (nu > 0.0) {
    gram = (nk * gram + nu * p.gram0) / (nk + nu);
    rhs = (nk * rhs + nu * p.gram0 * p.B0) / (nk + nu);
  }
  gram.diagonal().array() += p.ridge;
  B = gram.ldlt().solve(rhs);
  Eigen::MatrixXd R = H - F * B;
  for (std::int64_t j = 0; j < h; ++j)
    if (p.hard_periodic[static_cast<std::size_t>(j)])
      for (Eigen::Index i = 0; i < R.rows(); ++i) R(i, j) = circular::wrap(R(i, j));
  const Eigen::MatrixXd Rw = r ? Eigen::MatrixXd(R.array().colwise() * r->array()) : R;
  Eigen::MatrixXd cov = Rw.transpose() * R / nk;
  if (nu > 0.0) cov = (nk * cov + nu * p.cov0) / (nk + nu);
  const Eigen::LLT<Eigen::MatrixXd> llt(cov);
  if (llt.info() != Eigen::Success) fit_fail("the residual covariance is not positive definite");
  L = llt.matrixL();
  for (std::int64_t j = 0; j < h; ++j)
    if (p.hard_periodic[static_cast<std::size_t>(j)] && std::sqrt(cov(j, j)) > 0.5)
      fit_fail("hard periodic column " + std::to_string(p.hard[static_cast<std::size_t>(j)]) + " has conditional sd " +
               std::to_string(std::sqrt(cov(j, j))) + " rad > 0.5: make it a soft column");
  if (!r) {  // the pooled fit: kept (centred) for the shrinkage
    p.gram0 = F.transpose() * F / static_cast<double>(n);
    p.B0 = B;
    p.cov0 = cov;
  }
}

/// The block from the experts' B_k (centred targets: c̄ is added to the intercept row) and L_k.
ConditionalGaussian pack_block(const Regression& p, const JointFit& joint_fit, const std::vector<Eigen::MatrixXd>& Bs,
                               const std::vector<Eigen::MatrixXd>& Ls) {
  const auto k_count = static_cast<Eigen::Index>(Bs.size());
  const std::int64_t nf = p.n_features(), h = p.n_hard();
  auto coef = torch::empty({k_count, nf, h}, f64());
  auto chol = torch::empty({k_count, h, h}, f64());
  for (Eigen::Index k = 0; k < k_count; ++k) {
    Eigen::MatrixXd B = Bs[static_cast<std::size_t>(k)];
    for (std::int64_t j = 0; j < h; ++j) B(0, j) += p.centre[static_cast<std::size_t>(j)];
    coef[k].copy_(from_eigen(B));
    chol[k].copy_(from_eigen(Ls[static_cast<std::size_t>(k)]));
  }
  if (p.joint.empty())
    return ConditionalGaussian(p.dim, p.soft, p.joint, p.hard, p.hard_periodic, p.harmonics, coef, chol, {}, {}, {});
  return ConditionalGaussian(p.dim, p.soft, p.joint, p.hard, p.hard_periodic, p.harmonics, coef, chol,
                             from_eigen(joint_fit.mu), from_eigen(joint_fit.kappa),
                             from_eigen(Eigen::MatrixXd(joint_fit.weight)).view({k_count}).clone());
}

/// Responsibilities (n × K) of the components of `block` for the rows of yd, from its joint
/// and hard log densities (the same code as sampling uses), in chunks of rows (the K × rows × h
/// intermediates); `mean_log_likelihood` gets the mean log density per row.
Eigen::MatrixXd block_responsibilities(const ConditionalGaussian& block, const torch::Tensor& yd,
                                       double& mean_log_likelihood) {
  const std::int64_t n = yd.size(0);
  Eigen::MatrixXd lp(n, block.components());
  for (std::int64_t b = 0; b < n; b += 8192) {
    const auto rows = yd.narrow(0, b, std::min<std::int64_t>(8192, n - b));
    lp.middleRows(b, rows.size(0)) =
        to_eigen((block.log_prob_joint_components(rows) + block.log_prob_hard(rows)).t().contiguous());
  }
  const Eigen::VectorXd mx = lp.rowwise().maxCoeff();
  Eigen::MatrixXd resp = (lp.colwise() - mx).array().exp().matrix();
  const Eigen::VectorXd norm = resp.rowwise().sum();
  resp.array().colwise() /= norm.array();
  mean_log_likelihood = (mx.array() + norm.array().log()).mean();
  return resp;
}

/// The experts by EM, from the joint mixture's responsibilities: M-steps of the joint
/// components and the regressions (shrunk with prior weight ν), E-steps with the whole block
/// density; at most `em_iterations` M-steps, stopped when the mean log-likelihood per row
/// gains < 1e-8. Returns the block of the last M-step.
ConditionalGaussian fit_experts(Regression& p, JointFit& joint_fit, const Eigen::MatrixXd& t, const torch::Tensor& yd,
                                int em_iterations, double nu, std::vector<Eigen::MatrixXd>& Bs,
                                std::vector<Eigen::MatrixXd>& Ls) {
  const std::int64_t n = yd.size(0);
  const auto k_count = static_cast<Eigen::Index>(Bs.size());
  Eigen::MatrixXd resp;
  const Eigen::ArrayXXd sin_t = t.array().sin(), cos_t = t.array().cos();
  {
    const Eigen::MatrixXd lp = joint_log_terms(cos_t, sin_t, joint_fit);
    resp = (lp.colwise() - lp.rowwise().maxCoeff()).array().exp().matrix();
    resp.array().colwise() /= resp.rowwise().sum().array();
  }
  double previous = -std::numeric_limits<double>::infinity();
  for (int it = 0; it < em_iterations; ++it) {
    for (Eigen::Index k = 0; k < k_count; ++k) {  // M-step
      const Eigen::VectorXd r = resp.col(k);
      const double nk = r.sum();
      if (!(nk > 0.0)) fit_fail("expert " + std::to_string(k) + " has no data: use fewer components");
      update_component(joint_fit, k, r, nk, sin_t, cos_t, n, 1e3);
      m_step(p, &r, nu, Bs[static_cast<std::size_t>(k)], Ls[static_cast<std::size_t>(k)]);
    }
    joint_fit.weight /= joint_fit.weight.sum();
    if (it + 1 == em_iterations) break;  // the result is the last M-step: no E-step after it
    double ll = 0.0;
    resp = block_responsibilities(pack_block(p, joint_fit, Bs, Ls), yd, ll);
    if (ll - previous < 1e-8) break;
    previous = ll;
  }
  return pack_block(p, joint_fit, Bs, Ls);
}

}  // namespace

ConditionalGaussian ConditionalGaussian::fit(const torch::Tensor& y, const torch::Tensor& torsion_mask,
                                             const std::vector<std::int64_t>& soft,
                                             const std::vector<std::int64_t>& joint, int harmonics,
                                             int joint_components, bool experts, int em_iterations, double shrinkage,
                                             double ridge) {
  const auto mask = torsion_mask.to(torch::kBool).contiguous();
  FitColumns columns =
      check_fit_arguments(y, mask, soft, harmonics, joint_components, em_iterations, shrinkage, ridge);
  const auto yd = y.to(torch::kDouble).detach().contiguous();
  // 1. Joint mixture by EM, K by BIC.
  JointFit joint_fit;
  Eigen::MatrixXd t;
  if (!joint.empty()) {
    t = joint_angles(yd, joint);
    joint_fit = fit_joint_mixture(t, joint_components);
  }
  const Eigen::Index k_count = joint.empty() ? 1 : joint_fit.weight.size();
  // 2. Features and targets; 3. the pooled fit (every expert starts from it).
  Regression p = build_regression(yd, soft, joint, harmonics, std::move(columns), ridge);
  std::vector<Eigen::MatrixXd> Bs(static_cast<std::size_t>(k_count)), Ls(static_cast<std::size_t>(k_count));
  {
    Eigen::MatrixXd B, L;
    m_step(p, nullptr, 0.0, B, L);
    std::fill(Bs.begin(), Bs.end(), B);
    std::fill(Ls.begin(), Ls.end(), L);
    if (!experts || k_count == 1) return pack_block(p, joint_fit, Bs, Ls);
  }
  // 4. Experts by EM, from the joint mixture's responsibilities.
  const double nu = shrinkage * static_cast<double>(p.n_features() * p.n_hard() + p.n_hard() * (p.n_hard() + 1) / 2);
  return fit_experts(p, joint_fit, t, yd, em_iterations, nu, Bs, Ls);
}

Json ConditionalGaussian::to_json() const {
  auto rows = [](const torch::Tensor& t) {
    Json out = Json::array();
    for (std::int64_t i = 0; i < t.size(0); ++i) out.push_back(values(t[i]));
    return out;
  };
  Json coef = Json::array(), chol = Json::array();
  for (std::int64_t k = 0; k < components(); ++k) {
    coef.push_back(rows(coef_[k]));
    chol.push_back(rows(chol_[k]));
  }
  Json j{{"dim", dim_},   {"soft", soft_}, {"joint", joint_}, {"hard", hard_}, {"hard_periodic", hard_periodic_},
         {"harmonics", harmonics_}, {"coef", coef}, {"chol", chol}};
  if (!joint_.empty()) {
    j["joint_mu"] = rows(joint_mu_);
    j["joint_kappa"] = rows(joint_kappa_);
    j["joint_weight"] = values(joint_weight_);
  }
  if (correction_bins_ > 0)  // the target bin masses p_b; the ratios are recomputed on reading
    j["joint_correction"] = {{"bins", correction_bins_},
                             {"target_masses", values(torch::exp(log_ratio_) * joint_bin_masses(correction_bins_))}};
  return j;
}

ConditionalGaussian ConditionalGaussian::from_json(const Json& object, const std::string& context) {
  JsonReader r(object, context);
  auto ints = [&](const char* key) {
    const Json& v = r.get_json(key);
    std::vector<std::int64_t> out;
    if (!v.is_array()) r.fail(key, "must be an array of integers");
    for (const auto& e : v) {
      if (!e.is_number_integer()) r.fail(key, "must be an array of integers");
      out.push_back(e.get<std::int64_t>());
    }
    return out;
  };
  auto parse_matrix = [&](const Json& v, const char* key) {
    if (!v.is_array() || v.empty()) r.fail(key, "must be a non-empty array of rows");
    std::vector<double> flat;
    const std::size_t cols = v[0].is_array() ? v[0].size() : 0;
    for (const auto& row : v) {
      if (!row.is_array() || row.size() != cols) r.fail(key, "rows must be arrays of one length");
      for (const auto& e : row) {
        if (!e.is_number()) r.fail(key, "entries must be numbers");
        flat.push_back(e.get<double>());
      }
    }
    return torch::tensor(flat, f64()).view({static_cast<std::int64_t>(v.size()), static_cast<std::int64_t>(cols)});
  };
  auto matrix = [&](const char* key) { return parse_matrix(r.get_json(key), key); };
  const auto dim = r.get_int("dim");
  const auto soft = ints("soft"), joint = ints("joint"), hard = ints("hard");
  const Json& hp = r.get_json("hard_periodic");
  std::vector<bool> hard_periodic;
  if (!hp.is_array()) r.fail("hard_periodic", "must be an array of true/false");
  for (const auto& e : hp) {
    if (!e.is_boolean()) r.fail("hard_periodic", "must be an array of true/false");
    hard_periodic.push_back(e.get<bool>());
  }
  const int harmonics = static_cast<int>(r.get_int("harmonics"));
  // coef and chol: K blocks of rows.
  auto blocks = [&](const char* key) {
    const Json& v = r.get_json(key);
    if (!v.is_array() || v.empty()) r.fail(key, "must be a non-empty array of matrices");
    std::vector<torch::Tensor> out;
    for (const auto& block : v) out.push_back(parse_matrix(block, key));
    for (const auto& b : out)
      if (b.sizes() != out[0].sizes()) r.fail(key, "matrices must have one shape");
    return torch::stack(out);
  };
  const auto coef = blocks("coef"), chol = blocks("chol");
  torch::Tensor jmu, jkappa, jweight;
  if (!joint.empty()) {
    jmu = matrix("joint_mu");
    jkappa = matrix("joint_kappa");
    jweight = torch::tensor(r.get_doubles("joint_weight"), f64());
  }
  int correction_bins = 0;
  std::vector<double> target_masses;
  if (r.has("joint_correction")) {
    JsonReader c(r.get_json("joint_correction"), context + ".joint_correction");
    correction_bins = static_cast<int>(c.get_int("bins"));
    target_masses = c.get_doubles("target_masses");
    c.finish();
  }
  r.finish();
  try {
    ConditionalGaussian out(dim, soft, joint, hard, hard_periodic, harmonics, coef, chol, jmu, jkappa, jweight);
    if (correction_bins != 0) out.set_joint_correction(correction_bins, torch::tensor(target_masses, f64()));
    return out;
  } catch (const DomainError& e) {
    throw ConfigError(context + ": " + e.what());
  }
}

}  // namespace boltzlab::generators
