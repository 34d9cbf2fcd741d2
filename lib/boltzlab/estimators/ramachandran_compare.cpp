#include "boltzlab/estimators/ramachandran_compare.hpp"

#include <cmath>
#include <limits>
#include <sstream>

#include "boltzlab/core/constants.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/io/npy.hpp"
#include "boltzlab/molecules/dihedrals.hpp"

namespace boltzlab {
namespace {

/// Σ h after checking that h is a valid, non-empty histogram.
double checked_total(const RowMatrix& h, const char* who, const char* which) {
  double total = 0.0;
  for (Eigen::Index k = 0; k < h.size(); ++k) {
    const double v = h.data()[k];
    if (!std::isfinite(v) || v < 0)
      throw DomainError(std::string(who) + ": " + which + " histogram has a negative or non-finite bin");
    total += v;
  }
  if (!(total > 0)) throw DomainError(std::string(who) + ": " + which + " histogram is empty");
  return total;
}

void check_shapes(const RowMatrix& p, const RowMatrix& q, const char* who) {
  if (p.rows() != q.rows() || p.cols() != q.cols())
    throw DomainError(std::string(who) + ": histograms of different shapes (" + std::to_string(p.rows()) + "x" +
                      std::to_string(p.cols()) + " vs " + std::to_string(q.rows()) + "x" +
                      std::to_string(q.cols()) + ")");
}

RamachandranDistances distances(const Eigen::VectorXd& ref_phi, const Eigen::VectorXd& ref_psi,
                                const Eigen::VectorXd& phi, const Eigen::VectorXd& psi,
                                const Eigen::VectorXd* log_weights, const RamachandranCompareOptions& o) {
  RamachandranDistances d;
  const RamachandranHistogram ref_kl = ramachandran_histogram(ref_phi, ref_psi, nullptr, o.kl_bins);
  const RamachandranHistogram mod_kl = ramachandran_histogram(phi, psi, log_weights, o.kl_bins);
  d.forward_kl = histogram_forward_kl(ref_kl.weights, mod_kl.weights, o.kl_epsilon);
  const RamachandranHistogram ref_tv = ramachandran_histogram(ref_phi, ref_psi, nullptr, o.tv_bins);
  const RamachandranHistogram mod_tv = ramachandran_histogram(phi, psi, log_weights, o.tv_bins);
  d.total_variation = histogram_total_variation(ref_tv.weights, mod_tv.weights);
  return d;
}

}  // namespace

void RamachandranCompareOptions::validate() const {
  if (kl_bins < 1) throw ConfigError("ramachandran comparison: kl_bins is " + std::to_string(kl_bins) + ", but must be >= 1");
  if (tv_bins < 1) throw ConfigError("ramachandran comparison: tv_bins is " + std::to_string(tv_bins) + ", but must be >= 1");
  if (!std::isfinite(kl_epsilon) || kl_epsilon < 0)
    throw ConfigError("ramachandran comparison: kl_epsilon must be finite and >= 0");
  if (reference_blocks < 2)
    throw ConfigError("ramachandran comparison: reference_blocks is " + std::to_string(reference_blocks) +
                      ", but must be >= 2");
}

double histogram_forward_kl(const RowMatrix& p, const RowMatrix& q, double epsilon) {
  check_shapes(p, q, "histogram_forward_kl");
  if (!std::isfinite(epsilon) || epsilon < 0) throw DomainError("histogram_forward_kl: epsilon must be finite and >= 0");
  const double sp = checked_total(p, "histogram_forward_kl", "reference");
  const double sq = checked_total(q, "histogram_forward_kl", "model");
  const double bins = static_cast<double>(p.size());
  // p̃_i = (p_i/Σp + ε)/(1 + Bε), q̃_i likewise: Σ_i p̃_i log(p̃_i/q̃_i); the common
  // normalization 1 + Bε cancels inside the log.
  const double norm = 1.0 + bins * epsilon;
  double kl = 0.0;
  for (Eigen::Index k = 0; k < p.size(); ++k) {
    const double a = p.data()[k] / sp + epsilon;
    if (a == 0.0) continue;  // 0·log 0 = 0 (only with ε = 0)
    const double b = q.data()[k] / sq + epsilon;
    if (b == 0.0) return std::numeric_limits<double>::infinity();
    kl += (a / norm) * std::log(a / b);
  }
  // Rounding can leave −1e-17 for identical histograms; KL ≥ 0.
  return std::max(kl, 0.0);
}

double histogram_total_variation(const RowMatrix& p, const RowMatrix& q) {
  check_shapes(p, q, "histogram_total_variation");
  const double sp = checked_total(p, "histogram_total_variation", "reference");
  const double sq = checked_total(q, "histogram_total_variation", "model");
  double tv = 0.0;
  for (Eigen::Index k = 0; k < p.size(); ++k) tv += std::abs(p.data()[k] / sp - q.data()[k] / sq);
  return 0.5 * tv;
}

BatchMeansEstimate batch_means(const Eigen::VectorXd& values, std::size_t blocks) {
  const auto n = static_cast<std::size_t>(values.size());
  if (blocks < 2) throw DomainError("batch_means: blocks is " + std::to_string(blocks) + ", but must be >= 2");
  if (n < blocks)
    throw DomainError("batch_means: " + std::to_string(n) + " values for " + std::to_string(blocks) + " blocks");
  BatchMeansEstimate e;
  e.blocks = blocks;
  e.block_size = n / blocks;
  e.dropped = n - blocks * e.block_size;
  Eigen::VectorXd means(static_cast<Eigen::Index>(blocks));
  for (std::size_t k = 0; k < blocks; ++k) {
    double s = 0.0;
    for (std::size_t i = k * e.block_size; i < (k + 1) * e.block_size; ++i) {
      const double v = values[static_cast<Eigen::Index>(i)];
      if (!std::isfinite(v)) throw DomainError("batch_means: value " + std::to_string(i) + " is not finite");
      s += v;
    }
    means[static_cast<Eigen::Index>(k)] = s / static_cast<double>(e.block_size);
  }
  e.mean = means.mean();
  const double b = static_cast<double>(blocks);
  e.standard_error = std::sqrt((means.array() - e.mean).square().sum() / (b * (b - 1.0)));
  return e;
}

RamachandranComparison compare_ramachandran(const Eigen::VectorXd& phi, const Eigen::VectorXd& psi,
                                            const Eigen::VectorXd* log_weights, const RowMatrix& reference,
                                            const RamachandranCompareOptions& options) {
  options.validate();
  if (phi.size() != psi.size() || (log_weights && log_weights->size() != phi.size()))
    throw DomainError("compare_ramachandran: phi, psi and log_weights have different lengths");
  if (reference.cols() != 2)
    throw DomainError("compare_ramachandran: reference has " + std::to_string(reference.cols()) +
                      " columns, but must be N x 2 (phi, psi)");
  const auto n_ref = static_cast<std::size_t>(reference.rows());
  if (n_ref < 2 * options.reference_blocks)
    throw DomainError("compare_ramachandran: " + std::to_string(n_ref) + " reference frames, but at least " +
                      std::to_string(2 * options.reference_blocks) + " are needed (2 x reference_blocks)");
  if (!reference.allFinite()) throw DomainError("compare_ramachandran: reference has non-finite angles");

  RamachandranComparison c;
  c.options = options;
  c.model_samples = static_cast<std::size_t>(phi.size());
  c.reference_frames = n_ref;
  c.reference_half = n_ref / 2;

  // Model rows used: finite φ and ψ and finite log w (as in ramachandran_histogram).
  const Eigen::Index n = phi.size();
  Eigen::VectorXd lw_used(n), indicator(n);
  bool any = false;
  for (Eigen::Index i = 0; i < n; ++i) {
    const double lw = log_weights ? (*log_weights)[i] : 0.0;
    if (log_weights && std::isnan(lw)) throw DomainError("compare_ramachandran: log-weight " + std::to_string(i) + " is NaN");
    if (!std::isfinite(phi[i]) || !std::isfinite(psi[i])) {
      ++c.model_skipped;
      lw_used[i] = -std::numeric_limits<double>::infinity();
    } else if (!std::isfinite(lw)) {
      if (lw > 0) throw DomainError("compare_ramachandran: log-weight " + std::to_string(i) + " is +inf");
      ++c.model_zero_weight;
      lw_used[i] = -std::numeric_limits<double>::infinity();
    } else {
      lw_used[i] = lw;
      any = true;
    }
    indicator[i] = std::isfinite(phi[i]) && phi[i] >= 0 ? 1.0 : 0.0;
  }
  if (!any) throw DomainError("compare_ramachandran: no model sample with finite angles and finite log-weight");

  const Eigen::VectorXd ref_phi = reference.col(0), ref_psi = reference.col(1);
  c.model = distances(ref_phi, ref_psi, phi, psi, &lw_used, options);
  const auto h = static_cast<Eigen::Index>(c.reference_half);
  const auto rest = static_cast<Eigen::Index>(n_ref) - h;
  const Eigen::VectorXd first_phi = ref_phi.head(h), first_psi = ref_psi.head(h);
  const Eigen::VectorXd second_phi = ref_phi.tail(rest), second_psi = ref_psi.tail(rest);
  c.noise_floor = distances(first_phi, first_psi, second_phi, second_psi, nullptr, options);

  c.model_phi_positive = snis_estimate(lw_used, indicator);
  // All used rows on one side: the estimate is exactly 0 or 1 with s.e. 0 (the sums
  // above leave rounding noise of 1e-16, which would give a meaningless z-score).
  bool all_pos = true, all_neg = true;
  for (Eigen::Index i = 0; i < n; ++i)
    if (std::isfinite(lw_used[i])) (indicator[i] > 0 ? all_neg : all_pos) = false;
  if (all_pos || all_neg) {
    c.model_phi_positive.mean = all_pos ? 1.0 : 0.0;
    c.model_phi_positive.standard_error = 0.0;
  }
  c.model_ess = c.model_phi_positive.ess;
  Eigen::VectorXd ref_indicator(static_cast<Eigen::Index>(n_ref));
  for (Eigen::Index i = 0; i < ref_indicator.size(); ++i) ref_indicator[i] = ref_phi[i] >= 0 ? 1.0 : 0.0;
  c.reference_phi_positive = batch_means(ref_indicator, options.reference_blocks);
  const double se = std::hypot(c.model_phi_positive.standard_error, c.reference_phi_positive.standard_error);
  if (se > 0) {
    c.phi_positive_z = Quantity::of((c.model_phi_positive.mean - c.reference_phi_positive.mean) / se);
  } else {
    c.phi_positive_z = Quantity::missing("both standard errors are 0 (no spread in either phi >= 0 indicator)");
  }
  return c;
}

nlohmann::json RamachandranComparison::to_json() const {
  auto kl_q = [](double v) {
    return std::isfinite(v) ? Quantity::of(v) : Quantity::missing("infinite: a reference bin is empty in the model (epsilon = 0)");
  };
  nlohmann::json kl = {{"bins", options.kl_bins},
                       {"epsilon", options.kl_epsilon},
                       {"direction", "KL(reference || model), nats"},
                       {"convention",
                        "p_i = (h_i/sum(h) + eps) / sum_j (h_j/sum(h) + eps), same for the model; "
                        "sum_i p_i log(p_i/q_i) over [-pi, pi)^2"}};
  put_quantity(kl, "model", kl_q(model.forward_kl));
  put_quantity(kl, "noise_floor", kl_q(noise_floor.forward_kl));
  nlohmann::json tv = {{"bins", options.tv_bins},
                       {"definition", "0.5 * sum |p - q| of normalized histograms over [-pi, pi)^2"},
                       {"model", model.total_variation},
                       {"noise_floor", noise_floor.total_variation}};
  nlohmann::json pop = {
      {"definition", "phi >= 0 (C7ax/alpha_L)"},
      {"model", {{"mean", model_phi_positive.mean},
                 {"standard_error", model_phi_positive.standard_error},
                 {"method", "self-normalized importance sampling, delta-method s.e."}}},
      {"reference", {{"mean", reference_phi_positive.mean},
                     {"standard_error", reference_phi_positive.standard_error},
                     {"method", "batch means over contiguous blocks"},
                     {"blocks", reference_phi_positive.blocks},
                     {"block_size", reference_phi_positive.block_size},
                     {"frames_dropped", reference_phi_positive.dropped}}}};
  put_quantity(pop, "z", phi_positive_z);
  pop["z_definition"] = "(model - reference) / sqrt(se_model^2 + se_reference^2)";
  return {{"forward_kl", kl},
          {"total_variation", tv},
          {"phi_positive", pop},
          {"noise_floor_definition",
           "the same metrics between the first floor(N/2) and the remaining reference frames "
           "(KL(first || second)); each half has half the frames, so this floor is above the one of "
           "the full reference"},
          {"model_samples", model_samples},
          {"model_skipped_non_finite_angles", model_skipped},
          {"model_zero_weight", model_zero_weight},
          {"model_kish_ess", model_ess},
          {"reference_frames", reference_frames}};
}

RowMatrix read_reference_dihedrals(const std::filesystem::path& path, const std::string& what,
                                   std::size_t min_blocks) {
  RowMatrix r;
  try {
    r = read_npy_matrix(path, 2);
  } catch (const IoError& e) {
    throw ConfigError(what + ": " + e.what());
  }
  if (static_cast<std::size_t>(r.rows()) < 2 * min_blocks)
    throw ConfigError(what + ": " + path.string() + ": " + std::to_string(r.rows()) +
                      " frames, but at least " + std::to_string(2 * min_blocks) + " are needed");
  for (Eigen::Index i = 0; i < r.rows(); ++i)
    for (Eigen::Index k = 0; k < 2; ++k) {
      const double a = r(i, k);
      if (!std::isfinite(a) || std::abs(a) > kPi + 1e-6) {
        std::ostringstream s;
        s << what << ": " << path.string() << ": row " << i << " column " << k << " is " << a
          << ", but angles must be finite radians in [-pi, pi]";
        throw ConfigError(s.str());
      }
    }
  return r;
}

nlohmann::json RamachandranReferenceReport::to_json() const {
  nlohmann::json out = {{"reference", reference}};
  if (!note.empty()) out["note"] = note;
  if (comparison) {
    out.update(comparison->to_json());
    out["dihedrals"] = dihedrals;
  }
  return out;
}

RamachandranReferenceReport ramachandran_vs_reference(const Topology& topology, const RowMatrix& samples,
                                                      const Eigen::VectorXd* log_weights, const RowMatrix& reference,
                                                      const std::string& reference_name,
                                                      const RamachandranCompareOptions& options) {
  RamachandranReferenceReport out;
  out.reference = reference_name;
  const auto rama = ramachandran_dihedrals(topology);
  if (!rama) {
    out.note = "no backbone phi/psi pair in the topology: no comparison";
    return out;
  }
  const Eigen::VectorXd phi = dihedral_series(samples, rama->first);
  const Eigen::VectorXd psi = dihedral_series(samples, rama->second);
  bool usable = false;
  for (Eigen::Index i = 0; i < phi.size() && !usable; ++i)
    usable = std::isfinite(phi[i]) && std::isfinite(psi[i]) && (!log_weights || std::isfinite((*log_weights)[i]));
  if (!usable) {
    out.note = "no sample with finite angles and finite log-weight: no comparison";
    return out;
  }
  out.comparison = compare_ramachandran(phi, psi, log_weights, reference, options);
  out.dihedrals = {rama->first.name, rama->second.name};
  return out;
}

}  // namespace boltzlab
