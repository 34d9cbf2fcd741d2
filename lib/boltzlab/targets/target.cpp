#include "boltzlab/targets/target.hpp"

#include <sstream>

#include <atomic>
#include <cmath>
#include <limits>

#include "boltzlab/core/error.hpp"

namespace boltzlab {

bool sanitize_energy(double& u, const double* grad, std::size_t d) {
  bool ok = std::isfinite(u);
  if (ok && grad) {
    for (std::size_t k = 0; k < d; ++k) {
      if (!std::isfinite(grad[k])) {
        ok = false;
        break;
      }
    }
  }
  if (!ok) u = std::numeric_limits<double>::infinity();
  return ok;
}

void throw_bad_parameter(const std::string& target, const std::string& field, double value,
                         const std::string& need) {
  std::ostringstream os;
  os << target << ": " << field << " is " << value << ", but must be " << need;
  throw ConfigError(os.str());
}

void validate_particle_layout(const std::string& target, std::size_t n_particles, std::size_t spatial_dim) {
  if (n_particles < 2) throw_bad_parameter(target, "n_particles", static_cast<double>(n_particles), ">= 2");
  if (spatial_dim < 1 || spatial_dim > 3)
    throw_bad_parameter(target, "spatial_dim", static_cast<double>(spatial_dim), "1, 2 or 3");
}

std::size_t Target::prepare_batch(const RowMatrix& x, Eigen::VectorXd& u, RowMatrix* grad) const {
  const std::size_t n = static_cast<std::size_t>(x.rows());
  const std::size_t d = dim();
  if (static_cast<std::size_t>(x.cols()) != d) {
    throw DomainError(name() + ": configurations have " + std::to_string(x.cols()) +
                      " coordinates, but the target has dimension " + std::to_string(d));
  }
  u.resize(static_cast<Eigen::Index>(n));
  if (grad) grad->resize(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  return n;
}

BatchStats Target::evaluate_batch(const RowMatrix& x, Eigen::VectorXd& u, RowMatrix* grad,
                                  Execution exec) const {
  const std::size_t n = prepare_batch(x, u, grad);
  const std::size_t d = dim();
  std::atomic<std::size_t> bad{0};
  for_each_index(
      n,
      [&](std::size_t i) {
        const auto row = static_cast<Eigen::Index>(i);
        double* g = grad ? grad->row(row).data() : nullptr;
        double e = reduced_energy(x.row(row).data(), g);
        if (!sanitize_energy(e, g, d)) bad.fetch_add(1, std::memory_order_relaxed);
        u[row] = e;
      },
      exec, 16);
  return BatchStats{n, bad.load()};
}

}  // namespace boltzlab
