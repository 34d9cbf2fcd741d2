#include "boltzlab/flows/blob.hpp"

#include <cmath>

#include "boltzlab/core/error.hpp"

namespace boltzlab {

void BlobOptions::validate() const {
  if (!(epsilon >= 0) || !std::isfinite(epsilon)) {
    throw ConfigError("blob: epsilon is " + std::to_string(epsilon) + ", but must be > 0 or \"median\"");
  }
}

BlobFlow::BlobFlow(BlobOptions options, InteractingOptions common)
    : InteractingFlow(std::move(common)), options_(options) {
  options_.validate();
}

double BlobFlow::diffusion_velocity(const RowMatrix& x, double fixed_epsilon, RowMatrix& velocity, Execution exec,
                                    PairDistances* pairs) {
  PairDistances local;
  PairDistances& kept = pairs ? *pairs : local;
  const std::size_t n = static_cast<std::size_t>(x.rows());
  const Eigen::Index d = x.cols();
  const RowMatrix xc = x.rowwise() - row_mean(x);
  const double eps2 = kernel_width2(xc, fixed_epsilon, exec, &kept);
  const double c = 0.5 / eps2;
  if (!kept.empty()) to_gaussian_kernel(kept, c, exec);  // the exp once per pair, for both passes
  // Each pass computes this rank's rows (all of them on one process); every rank gets
  // all rows of the density (pass 2 weighs by every a_j) and of the velocity.
  const RowRange mine = my_rows(n);
  // Pass 1: ρ_i ∝ Σ_k φ_ik (φ_ii = 1 included, so a_i ≤ 1 is finite).
  RowMatrix ones = RowMatrix::Ones(static_cast<Eigen::Index>(n), 1), density;
  self_kernel_sums(xc, kept, ones, c, density, exec, mine);
  const Eigen::VectorXd a = gather_rows(std::move(density), n).col(0).cwiseInverse();
  // Pass 2: Σ_j φ_ij [x_j, a_j x_j, a_j].
  RowMatrix weights(static_cast<Eigen::Index>(n), 2 * d + 1), sums;
  weights.leftCols(d) = xc;
  weights.middleCols(d, d) = a.asDiagonal() * xc;
  weights.col(2 * d) = a;
  self_kernel_sums(xc, kept, weights, c, sums, exec, mine);
  RowMatrix velocity_mine(sums.rows(), d);
  for (Eigen::Index r = 0; r < velocity_mine.rows(); ++r) {
    const Eigen::Index i = static_cast<Eigen::Index>(mine.begin) + r;
    velocity_mine.row(r) =
        (xc.row(i) * (1.0 + sums(r, 2 * d)) - a[i] * sums.row(r).head(d) - sums.row(r).segment(d, d)) / eps2;
  }
  velocity = gather_rows(std::move(velocity_mine), n);
  return std::sqrt(eps2);
}

void BlobFlow::update(const RowMatrix& x, const RowMatrix& grad_u, double beta, std::size_t, double step_size,
                      const FlowOptions& options, RowMatrix& delta) {
  epsilon_ = diffusion_velocity(x, options_.epsilon, delta, options.exec, &pairs_);
  delta = step_size * (delta - beta * grad_u);
}

void BlobFlow::add_statistics(nlohmann::json& statistics) const {
  statistics["epsilon_rule"] = options_.epsilon > 0 ? "fixed" : "median: eps^2 = 0.5*median(D^2)/log(N+1)";
}

std::unique_ptr<Flow> make_blob(JsonReader& params) {
  BlobOptions o;
  o.epsilon = read_bandwidth(params, "epsilon");
  InteractingOptions common = InteractingOptions::read(params);
  return std::make_unique<BlobFlow>(o, std::move(common));
}

}  // namespace boltzlab
