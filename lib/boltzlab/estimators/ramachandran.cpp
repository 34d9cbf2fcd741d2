#include "boltzlab/estimators/ramachandran.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "boltzlab/core/constants.hpp"
#include "boltzlab/core/error.hpp"

namespace boltzlab {
namespace {

std::size_t angle_bin(double angle, Eigen::Index bins) {
  // [−π, π) split into `bins` bins; atan2 returns (−π, π], so π wraps to −π.
  double a = angle;
  if (a >= kPi) a -= 2 * kPi;
  if (a < -kPi) a += 2 * kPi;
  auto b = static_cast<long long>(std::floor((a + kPi) / (2 * kPi) * static_cast<double>(bins)));
  return static_cast<std::size_t>(std::clamp<long long>(b, 0, static_cast<long long>(bins) - 1));
}

}  // namespace

RamachandranHistogram ramachandran_histogram(const Eigen::VectorXd& phi, const Eigen::VectorXd& psi,
                                             const Eigen::VectorXd* log_weights, Eigen::Index bins) {
  if (phi.size() != psi.size() || (log_weights && log_weights->size() != phi.size())) {
    throw DomainError("ramachandran_histogram: phi, psi and log_weights have different lengths");
  }
  if (bins < 1) throw DomainError("ramachandran_histogram: bins is " + std::to_string(bins) + ", but must be >= 1");
  RamachandranHistogram h;
  h.weights = RowMatrix::Zero(bins, bins);
  h.weighted = log_weights != nullptr;
  // Weights exp(log w − max log w) for numerical range; non-finite log w count as 0.
  double max_lw = -std::numeric_limits<double>::infinity();
  if (log_weights) {
    for (Eigen::Index i = 0; i < log_weights->size(); ++i)
      if (std::isfinite((*log_weights)[i])) max_lw = std::max(max_lw, (*log_weights)[i]);
  }
  double sum_w = 0.0, sum_w2 = 0.0;
  for (Eigen::Index i = 0; i < phi.size(); ++i) {
    if (!std::isfinite(phi[i]) || !std::isfinite(psi[i])) {
      ++h.skipped_frames;
      continue;
    }
    double w = 1.0;
    if (log_weights) {
      const double lw = (*log_weights)[i];
      if (!std::isfinite(lw)) {
        ++h.zero_weight_frames;
        continue;
      }
      w = std::exp(lw - max_lw);
    }
    h.weights(static_cast<Eigen::Index>(angle_bin(phi[i], bins)), static_cast<Eigen::Index>(angle_bin(psi[i], bins))) += w;
    sum_w += w;
    sum_w2 += w * w;
    // Basins (radians): φ > 0 is C7ax/αL; for φ < 0, αR is −2.2 ≤ ψ < 0.5 (−126°..29°),
    // the rest (ψ ≥ 0.5 or ψ < −2.2) is C7eq/β.
    if (phi[i] >= 0) h.phi_positive += w;
    else if (psi[i] >= -2.2 && psi[i] < 0.5) h.alpha_r += w;
    else h.beta_c7eq += w;
  }
  h.total_weight = sum_w;
  h.effective_sample_size = sum_w2 > 0 ? sum_w * sum_w / sum_w2 : 0.0;
  if (sum_w > 0) {
    h.phi_positive /= sum_w;
    h.alpha_r /= sum_w;
    h.beta_c7eq /= sum_w;
  }
  // F = −log p per bin (kT), p = bin weight / total; +inf for empty bins.
  h.free_energy = RowMatrix::Constant(bins, bins, std::numeric_limits<double>::infinity());
  if (sum_w > 0) {
    for (Eigen::Index a = 0; a < bins; ++a)
      for (Eigen::Index b = 0; b < bins; ++b)
        if (h.weights(a, b) > 0) h.free_energy(a, b) = -std::log(h.weights(a, b) / sum_w);
  }
  return h;
}

}  // namespace boltzlab
