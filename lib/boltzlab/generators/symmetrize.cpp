#include "boltzlab/generators/symmetrize.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"

namespace boltzlab::generators {

ParticleSymmetry::ParticleSymmetry(int n_particles, int spatial_dim, bool reflections, std::size_t max_size)
    : n_(n_particles), s_(spatial_dim), reflections_(reflections) {
  if (n_ < 1 || s_ < 1)
    throw ConfigError("symmetrization: " + std::to_string(n_) + " particles in " + std::to_string(s_) +
                      " dimensions is not a particle system");
  std::size_t count = reflections ? 2 : 1;
  for (int k = 2; k <= n_; ++k) {
    count *= static_cast<std::size_t>(k);
    if (count > max_size) break;
  }
  if (count > max_size)
    throw ConfigError("symmetrization: the group of " + std::to_string(n_) + " particles has more than " +
                      std::to_string(max_size) + " elements (|G| log-densities per draw); use an equivariant flow");
  std::vector<int> p(static_cast<std::size_t>(n_));
  std::iota(p.begin(), p.end(), 0);
  do permutations_.push_back(p);
  while (std::next_permutation(p.begin(), p.end()));
}

void ParticleSymmetry::apply(std::size_t g, const double* x, double* y) const {
  const std::size_t np = permutations_.size();
  const std::vector<int>& perm = permutations_[g % np];
  const bool reflect = g >= np;
  for (int j = 0; j < n_; ++j) {
    const double* from = x + static_cast<std::ptrdiff_t>(perm[static_cast<std::size_t>(j)]) * s_;
    double* to = y + static_cast<std::ptrdiff_t>(j) * s_;
    for (int a = 0; a < s_; ++a) to[a] = from[a];
    if (reflect) to[0] = -to[0];
  }
}

Eigen::VectorXd symmetrized_log_q(const std::function<Eigen::VectorXd(const RowMatrix&)>& log_q,
                                  const ParticleSymmetry& group, const RowMatrix& x) {
  const Eigen::Index d = static_cast<Eigen::Index>(group.n_particles()) * group.spatial_dim();
  if (x.cols() != d)
    throw ConfigError("symmetrization: configurations have " + std::to_string(x.cols()) + " coordinates, the group acts on " +
                      std::to_string(d));
  const auto G = static_cast<Eigen::Index>(group.size());
  const Eigen::Index block = std::max<Eigen::Index>(1, 200000 / G);
  const double log_g = std::log(static_cast<double>(G));
  Eigen::VectorXd out(x.rows());
  RowMatrix moved;
  for (Eigen::Index r0 = 0; r0 < x.rows(); r0 += block) {
    const Eigen::Index rows = std::min(block, x.rows() - r0);
    moved.resize(rows * G, d);
    for (Eigen::Index i = 0; i < rows; ++i)
      for (Eigen::Index g = 0; g < G; ++g)
        group.apply(static_cast<std::size_t>(g), x.row(r0 + i).data(), moved.row(i * G + g).data());
    const Eigen::VectorXd lq = log_q(moved);
    for (Eigen::Index i = 0; i < rows; ++i) {
      const auto terms = lq.segment(i * G, G);
      const double m = terms.maxCoeff();
      if (!(m > -std::numeric_limits<double>::infinity())) {  // −∞ everywhere (or NaN): no density
        out[r0 + i] = std::isnan(m) ? m : -std::numeric_limits<double>::infinity();
        continue;
      }
      out[r0 + i] = m + std::log((terms.array() - m).exp().sum()) - log_g;
    }
  }
  return out;
}

GeneratedSamples symmetrized_sample(BoltzmannGenerator& model, const ParticleSymmetry& group, std::int64_t n,
                                    std::uint64_t seed) {
  const Eigen::Index d = static_cast<Eigen::Index>(group.n_particles()) * group.spatial_dim();
  if (model.dim() != d)
    throw ConfigError("symmetrization: the model has dimension " + std::to_string(model.dim()) +
                      ", the group acts on " + std::to_string(d));
  GeneratedSamples s = model.sample(n, seed);
  RowMatrix moved(s.x.rows(), s.x.cols());
  for (Eigen::Index i = 0; i < s.x.rows(); ++i) {
    Rng rng = stream_for(seed + 1, static_cast<std::uint64_t>(i));
    const auto g = std::min<std::size_t>(group.size() - 1, static_cast<std::size_t>(rng.uniform() * group.size()));
    group.apply(g, s.x.row(i).data(), moved.row(i).data());
  }
  s.x = std::move(moved);
  s.log_q = symmetrized_log_q([&model](const RowMatrix& y) { return model.log_q(y); }, group, s.x);
  return s;
}

}  // namespace boltzlab::generators
