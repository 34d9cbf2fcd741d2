#include "boltzlab/targets/gaussian.hpp"

#include <cmath>

#include "boltzlab/core/error.hpp"
#include "boltzlab/targets/limits.hpp"

namespace boltzlab {

GaussianTarget::GaussianTarget(Eigen::VectorXd mean, Eigen::MatrixXd covariance)
    : mean_(std::move(mean)), covariance_(std::move(covariance)) {
  const auto d = mean_.size();
  if (d == 0) throw ConfigError("gaussian: mean is empty");
  if (covariance_.rows() != d || covariance_.cols() != d) {
    throw ConfigError("gaussian: covariance is " + std::to_string(covariance_.rows()) + "x" +
                      std::to_string(covariance_.cols()) + ", but mean has length " + std::to_string(d));
  }
  if (!covariance_.isApprox(covariance_.transpose(), 1e-12)) {
    throw ConfigError("gaussian: covariance is not symmetric");
  }
  Eigen::LLT<Eigen::MatrixXd> llt(covariance_);
  if (llt.info() != Eigen::Success) throw ConfigError("gaussian: covariance is not positive definite");
  precision_ = llt.solve(Eigen::MatrixXd::Identity(d, d));
  const double log_det = 2.0 * llt.matrixL().toDenseMatrix().diagonal().array().log().sum();
  log_z_ = 0.5 * static_cast<double>(d) * std::log(2.0 * M_PI) + 0.5 * log_det;
  diagonal_ = covariance_.isDiagonal(0.0);
  if (diagonal_) inv_var_ = covariance_.diagonal().cwiseInverse();
}

double GaussianTarget::reduced_energy(const double* x, double* grad) const {
  const auto d = mean_.size();
  Eigen::Map<const Eigen::VectorXd> xv(x, d);
  if (diagonal_) {
    double u = 0.0;
    for (Eigen::Index k = 0; k < d; ++k) {
      const double r = x[k] - mean_[k];
      const double g = r * inv_var_[k];
      u += 0.5 * r * g;
      if (grad) grad[k] = g;
    }
    return u;
  }
  const Eigen::VectorXd r = xv - mean_;
  const Eigen::VectorXd g = precision_ * r;
  if (grad) Eigen::Map<Eigen::VectorXd>(grad, d) = g;
  return 0.5 * r.dot(g);
}

nlohmann::json GaussianTarget::describe() const {
  nlohmann::json j;
  j["name"] = name();
  j["dim"] = dim();
  j["mean"] = std::vector<double>(mean_.data(), mean_.data() + mean_.size());
  j["log_z"] = log_z_;
  return j;
}

std::unique_ptr<Target> make_gaussian(JsonReader& params, const std::filesystem::path&) {
  std::vector<double> mean_list;
  if (params.has("mean") && params.get_json("mean").is_number()) {
    const long long d = params.get_int("dim");
    if (d <= 0) params.fail("dim", "is " + std::to_string(d) + ", but must be > 0");
    if (d > kMaxDenseDimension) {
      params.fail("dim", "is " + std::to_string(d) + ", but must be <= " + std::to_string(kMaxDenseDimension));
    }
    mean_list.assign(static_cast<std::size_t>(d), params.get_double("mean"));
  } else {
    mean_list = params.get_doubles("mean");
  }
  const auto d = static_cast<Eigen::Index>(mean_list.size());
  if (d == 0) params.fail("mean", "must not be empty");
  if (d > kMaxDenseDimension) {
    params.fail("mean", "has " + std::to_string(d) + " entries, but at most " + std::to_string(kMaxDenseDimension) +
                            " are allowed");
  }
  Eigen::VectorXd mean = Eigen::Map<Eigen::VectorXd>(mean_list.data(), d);
  Eigen::MatrixXd cov = Eigen::MatrixXd::Identity(d, d);
  if (params.has("std") && params.has("covariance")) {
    params.fail("std", "give either 'std' or 'covariance', not both");
  }
  if (params.has("std")) {
    std::vector<double> s;
    if (params.get_json("std").is_number()) s.assign(mean_list.size(), params.get_double("std"));
    else s = params.get_doubles("std");
    if (static_cast<Eigen::Index>(s.size()) != d) {
      params.fail("std", "has length " + std::to_string(s.size()) + ", but mean has length " + std::to_string(d));
    }
    for (std::size_t k = 0; k < s.size(); ++k) {
      if (!(s[k] > 0)) params.fail("std", "entry " + std::to_string(k) + " is " + std::to_string(s[k]) + ", but must be > 0");
      cov(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(k)) = s[k] * s[k];
    }
  } else if (params.has("covariance")) {
    const Json& c = params.get_json("covariance");
    if (!c.is_array() || static_cast<Eigen::Index>(c.size()) != d) {
      params.fail("covariance", "must be a " + std::to_string(d) + "x" + std::to_string(d) + " nested array");
    }
    for (Eigen::Index i = 0; i < d; ++i) {
      const Json& row = c[static_cast<std::size_t>(i)];
      if (!row.is_array() || static_cast<Eigen::Index>(row.size()) != d) {
        params.fail("covariance", "row " + std::to_string(i) + " must have " + std::to_string(d) + " numbers");
      }
      for (Eigen::Index j = 0; j < d; ++j) {
        if (!row[static_cast<std::size_t>(j)].is_number()) params.fail("covariance", "entries must be numbers");
        cov(i, j) = row[static_cast<std::size_t>(j)].get<double>();
      }
    }
  }
  try {
    return std::make_unique<GaussianTarget>(std::move(mean), std::move(cov));
  } catch (const ConfigError& e) {
    throw ConfigError(params.context() + ": " + e.what());
  }
}

}  // namespace boltzlab
