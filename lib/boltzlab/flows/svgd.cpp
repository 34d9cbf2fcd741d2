#include "boltzlab/flows/svgd.hpp"

#include <cmath>

#include "boltzlab/core/error.hpp"

namespace boltzlab {

void SvgdOptions::validate() const {
  if (!(bandwidth >= 0) || !std::isfinite(bandwidth)) {
    throw ConfigError("svgd: bandwidth is " + std::to_string(bandwidth) + ", but must be > 0 or \"median\"");
  }
  if (!(alpha >= 0 && alpha < 1)) throw ConfigError("svgd: alpha is " + std::to_string(alpha) + ", but must be in [0, 1)");
  if (!(fudge > 0)) throw ConfigError("svgd: fudge is " + std::to_string(fudge) + ", but must be > 0");
}

SvgdFlow::SvgdFlow(SvgdOptions options, InteractingOptions common)
    : InteractingFlow(std::move(common)), options_(options) {
  options_.validate();
}

double SvgdFlow::stein_direction(const RowMatrix& x, const RowMatrix& scores, double fixed_bandwidth,
                                 RowMatrix& phi, Execution exec, PairDistances* pairs) {
  PairDistances local;
  PairDistances& kept = pairs ? *pairs : local;
  const std::size_t n = static_cast<std::size_t>(x.rows());
  const Eigen::Index d = x.cols();
  // Kernels are translation invariant: work on centred positions (no cancellation).
  const RowMatrix xc = x.rowwise() - row_mean(x);
  // All particles at one point: any h gives φ = mean score (kernel_width2 gives 1).
  const double h2 = kernel_width2(xc, fixed_bandwidth, exec, &kept);
  RowMatrix weights(static_cast<Eigen::Index>(n), d + 1);
  weights.leftCols(d) = scores - xc / h2;
  weights.col(d).setOnes();
  // This rank's rows of φ (all of them on one process), then every rank gets all rows.
  const RowRange mine = my_rows(n);
  RowMatrix sums;
  if (!kept.empty()) to_gaussian_kernel(kept, 0.5 / h2, exec);  // the exp once per pair
  self_kernel_sums(xc, kept, weights, 0.5 / h2, sums, exec, mine);
  const double inv_n = 1.0 / static_cast<double>(n);
  RowMatrix phi_mine(sums.rows(), d);
  for (Eigen::Index r = 0; r < phi_mine.rows(); ++r) {
    const Eigen::Index i = static_cast<Eigen::Index>(mine.begin) + r;
    phi_mine.row(r) = inv_n * (sums.row(r).head(d) + xc.row(i) * (sums(r, d) / h2));
  }
  phi = gather_rows(std::move(phi_mine), n);
  return std::sqrt(h2);
}

void SvgdFlow::update(const RowMatrix& x, const RowMatrix& grad_u, double beta, std::size_t step, double step_size,
                      const FlowOptions& options, RowMatrix& delta) {
  const RowMatrix scores = -beta * grad_u;
  bandwidth_ = stein_direction(x, scores, options_.bandwidth, delta, options.exec, &pairs_);
  if (!options_.adaptive) {
    delta *= step_size;
    return;
  }
  if (step == 0 || history_.rows() != delta.rows() || history_.cols() != delta.cols()) {
    history_ = delta.array().square().matrix();
  } else {
    history_ = options_.alpha * history_.array() + (1.0 - options_.alpha) * delta.array().square();
  }
  delta = (step_size * delta.array() / (options_.fudge + history_.array().sqrt())).matrix();
}

void SvgdFlow::add_statistics(nlohmann::json& statistics) const {
  statistics["bandwidth_rule"] = options_.bandwidth > 0 ? "fixed" : "median: h^2 = 0.5*median(D^2)/log(N+1)";
  statistics["step_rule"] = options_.adaptive ? "rmsprop" : "plain";
}

std::unique_ptr<Flow> make_svgd(JsonReader& params) {
  SvgdOptions o;
  o.bandwidth = read_bandwidth(params, "bandwidth");
  o.adaptive = params.get_bool("adaptive", o.adaptive);
  o.alpha = params.get_double("alpha", o.alpha);
  if (!(o.alpha >= 0 && o.alpha < 1)) params.fail("alpha", "is " + std::to_string(o.alpha) + ", but must be in [0, 1)");
  o.fudge = params.get_double("fudge", o.fudge);
  if (!(o.fudge > 0)) params.fail("fudge", "is " + std::to_string(o.fudge) + ", but must be > 0");
  InteractingOptions common = InteractingOptions::read(params);
  return std::make_unique<SvgdFlow>(o, std::move(common));
}

}  // namespace boltzlab
