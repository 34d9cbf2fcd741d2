#include "boltzlab/flows/mmd.hpp"

#include <cmath>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/npy.hpp"

namespace boltzlab {

void MmdOptions::validate() const {
  if (target_samples.rows() < 2) {
    throw ConfigError("mmd: target_samples" + (samples_source.empty() ? std::string() : " '" + samples_source + "'") +
                      " has " + std::to_string(target_samples.rows()) +
                      " samples, but the MMD flow needs at least 2 samples of the target");
  }
  if (!target_samples.allFinite()) {
    throw ConfigError("mmd: target_samples '" + samples_source + "' contains non-finite values");
  }
  if (!(bandwidth >= 0) || !std::isfinite(bandwidth)) {
    throw ConfigError("mmd: bandwidth is " + std::to_string(bandwidth) + ", but must be > 0 or \"median\"");
  }
  if (!(noise_level >= 0) || !std::isfinite(noise_level)) {
    throw ConfigError("mmd: noise_level is " + std::to_string(noise_level) + ", but must be >= 0");
  }
  if (!(noise_decay >= 0) || !std::isfinite(noise_decay)) {
    throw ConfigError("mmd: noise_decay is " + std::to_string(noise_decay) + ", but must be >= 0");
  }
}

MmdFlow::MmdFlow(MmdOptions options, InteractingOptions common)
    : InteractingFlow(std::move(common)), options_(std::move(options)) {
  options_.validate();
  shift_ = row_mean(options_.target_samples);
  centred_samples_ = options_.target_samples.rowwise() - shift_;
  if (options_.bandwidth > 0) {
    bandwidth_ = options_.bandwidth;
  } else {
    const double h2 = median_heuristic_bandwidth2(centred_samples_);
    if (!(h2 > 0)) throw ConfigError("mmd: target_samples '" + options_.samples_source +
                                     "' are all identical: the median bandwidth is 0; give \"bandwidth\"");
    bandwidth_ = std::sqrt(h2);
  }
  const Eigen::Index d = centred_samples_.cols();
  sample_weights_.resize(centred_samples_.rows(), d + 1);
  sample_weights_.leftCols(d) = centred_samples_;
  sample_weights_.col(d).setOnes();
  RowMatrix ones = RowMatrix::Ones(centred_samples_.rows(), 1), sums;
  gaussian_kernel_sums(centred_samples_, centred_samples_, ones, 0.5 / (bandwidth_ * bandwidth_), sums);
  double total = 0.0;
  for (Eigen::Index m = 0; m < sums.rows(); ++m) total += sums(m, 0);
  const double count = static_cast<double>(centred_samples_.rows());
  sample_self_ = total / (count * count);
}

void MmdFlow::extra_monitors(const RowMatrix& x, const FlowOptions& options,
                             std::map<std::string, std::vector<double>>& monitors) {
  const RowMatrix xc = x.rowwise() - shift_;
  const RowMatrix ones = RowMatrix::Ones(x.rows(), 1);
  // This rank's rows of both sums; every rank adds all rows in index order.
  const std::size_t count = static_cast<std::size_t>(x.rows());
  const RowRange mine = my_rows(count);
  RowMatrix own, cross;
  const double c = 0.5 / (bandwidth_ * bandwidth_);
  gaussian_kernel_sums(xc, xc, ones, c, own, options.exec, mine);
  gaussian_kernel_sums(xc, centred_samples_, sample_weights_.rightCols(1), c, cross, options.exec, mine);
  RowMatrix both(own.rows(), 2);
  both << own, cross;
  both = gather_rows(std::move(both), count);
  double own_total = 0.0, cross_total = 0.0;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    own_total += both(i, 0);
    cross_total += both(i, 1);
  }
  const double n = static_cast<double>(x.rows()), m = static_cast<double>(centred_samples_.rows());
  monitors["mmd2"].push_back(own_total / (n * n) + sample_self_ - 2.0 * cross_total / (n * m));
}

void MmdFlow::prepare(const Target& target, const Ensemble& ensemble, const FlowOptions& options) {
  if (static_cast<std::size_t>(options_.target_samples.cols()) != target.dim()) {
    throw ConfigError("mmd: target_samples '" + options_.samples_source + "' have dimension " +
                      std::to_string(options_.target_samples.cols()) + ", but target '" + target.name() +
                      "' has dimension " + std::to_string(target.dim()));
  }
  streams_.clear();
  for (std::size_t i = 0; i < ensemble.size(); ++i) streams_.push_back(stream_for(options.seed, i));
}

void MmdFlow::update(const RowMatrix& x, const RowMatrix&, double beta, std::size_t step, double step_size,
                     const FlowOptions& options, RowMatrix& delta) {
  const Eigen::Index n = x.rows(), d = x.cols();
  const RowMatrix xc = x.rowwise() - shift_;
  // This rank's particles (all of them on one process): their evaluation points, sums
  // and updates; every rank then gets all rows of Δ. A particle's stream is drawn only
  // by the rank that owns it (the blocks are fixed by N), as on one process.
  const RowRange mine = my_rows(static_cast<std::size_t>(n));
  const auto rows = static_cast<Eigen::Index>(mine.size()), first = static_cast<Eigen::Index>(mine.begin);
  // Evaluation points z_i = X_i + β_n U_i (particle i's own stream: thread-count independent).
  RowMatrix z = xc.middleRows(first, rows);
  const double noise = options_.noise_level * std::pow(static_cast<double>(step) + 1.0, -options_.noise_decay);
  if (noise > 0) {
    for_each_index(
        mine.size(),
        [&](std::size_t r) {
          for (Eigen::Index k = 0; k < d; ++k)
            z(static_cast<Eigen::Index>(r), k) += noise * streams_[mine.begin + r].normal();
        },
        options.exec, 64);
  }
  RowMatrix own_weights(n, d + 1), own, target;
  own_weights.leftCols(d) = xc;
  own_weights.col(d).setOnes();
  const double h2 = bandwidth_ * bandwidth_, c = 0.5 / h2;
  gaussian_kernel_sums(z, xc, own_weights, c, own, options.exec);
  gaussian_kernel_sums(z, centred_samples_, sample_weights_, c, target, options.exec);
  const double inv_n = 1.0 / static_cast<double>(n), inv_m = beta / static_cast<double>(centred_samples_.rows());
  RowMatrix delta_mine(rows, d);
  for (Eigen::Index i = 0; i < rows; ++i) {
    // −∇f(z_i) = (1/h²)[(1/N)(z Σk − Σ k X) − (β/M)(z Σk − Σ k Y)]
    delta_mine.row(i) = (step_size / h2) * (inv_n * (z.row(i) * own(i, d) - own.row(i).head(d)) -
                                            inv_m * (z.row(i) * target(i, d) - target.row(i).head(d)));
  }
  delta = gather_rows(std::move(delta_mine), static_cast<std::size_t>(n));
}

void MmdFlow::add_statistics(nlohmann::json& statistics) const {
  statistics["target_samples"] = options_.samples_source;
  statistics["target_sample_count"] = options_.target_samples.rows();
  statistics["noise_level"] = options_.noise_level;
  statistics["noise_decay"] = options_.noise_decay;
}

std::unique_ptr<Flow> make_mmd(JsonReader& params) {
  MmdOptions o;
  if (!params.has("target_samples")) {
    params.fail("target_samples", "missing: the MMD flow needs samples of the target, e.g. "
                                  "{\"target_samples\": \"reference.npy\"} with shape (M, d)");
  }
  o.samples_source = params.get_string("target_samples");
  o.target_samples = read_npy_matrix(o.samples_source);
  o.bandwidth = read_bandwidth(params, "bandwidth");
  o.noise_level = params.get_double("noise_level", o.noise_level);
  if (!(o.noise_level >= 0)) params.fail("noise_level", "is " + std::to_string(o.noise_level) + ", but must be >= 0");
  o.noise_decay = params.get_double("noise_decay", o.noise_decay);
  if (!(o.noise_decay >= 0)) params.fail("noise_decay", "is " + std::to_string(o.noise_decay) + ", but must be >= 0");
  InteractingOptions common = InteractingOptions::read(params);
  return std::make_unique<MmdFlow>(std::move(o), std::move(common));
}

}  // namespace boltzlab
