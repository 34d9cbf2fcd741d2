#include "boltzlab/targets/gaussian_mixture.hpp"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <Eigen/Cholesky>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/npy.hpp"

namespace boltzlab {

GaussianMixtureTarget::GaussianMixtureTarget(std::vector<double> weights,
                                             std::vector<Eigen::VectorXd> means,
                                             std::vector<Eigen::MatrixXd> covariances)
    : weights_(std::move(weights)), means_(std::move(means)), covariances_(std::move(covariances)) {
  const std::size_t k_count = means_.size();
  if (k_count == 0) throw ConfigError("gaussian_mixture: no components");
  if (weights_.size() != k_count || covariances_.size() != k_count) {
    throw ConfigError("gaussian_mixture: " + std::to_string(k_count) + " means, but " +
                      std::to_string(weights_.size()) + " weights and " +
                      std::to_string(covariances_.size()) + " covariances");
  }
  dim_ = static_cast<std::size_t>(means_[0].size());
  if (dim_ == 0) throw ConfigError("gaussian_mixture: means are empty");
  const auto d = static_cast<Eigen::Index>(dim_);
  double weight_sum = 0.0;
  for (std::size_t k = 0; k < k_count; ++k) {
    const std::string where = "gaussian_mixture: component " + std::to_string(k);
    if (!(weights_[k] > 0) || !std::isfinite(weights_[k])) {
      throw ConfigError(where + ": weight is " + std::to_string(weights_[k]) + ", but must be > 0");
    }
    weight_sum += weights_[k];
    if (means_[k].size() != d) {
      throw ConfigError(where + ": mean has length " + std::to_string(means_[k].size()) + ", expected " +
                        std::to_string(dim_));
    }
    const Eigen::MatrixXd& cov = covariances_[k];
    if (cov.rows() != d || cov.cols() != d) {
      throw ConfigError(where + ": covariance is " + std::to_string(cov.rows()) + "x" +
                        std::to_string(cov.cols()) + ", expected " + std::to_string(dim_) + "x" +
                        std::to_string(dim_));
    }
    if (!cov.isApprox(cov.transpose(), 1e-12)) throw ConfigError(where + ": covariance is not symmetric");
    Eigen::LLT<Eigen::MatrixXd> llt(cov);
    if (llt.info() != Eigen::Success) throw ConfigError(where + ": covariance is not positive definite");
    const double log_det = 2.0 * llt.matrixL().toDenseMatrix().diagonal().array().log().sum();
    log_coef_.push_back(std::log(weights_[k]) - 0.5 * static_cast<double>(dim_) * std::log(2.0 * M_PI) -
                        0.5 * log_det);
    for (Eigen::Index i = 0; i < d; ++i) flat_means_.push_back(means_[k][i]);
    const bool diag = cov.isDiagonal(0.0);
    diagonal_.push_back(diag ? 1 : 0);
    for (Eigen::Index i = 0; i < d; ++i) flat_inv_var_.push_back(diag ? 1.0 / cov(i, i) : 0.0);
    if (!diag) {
      const Eigen::MatrixXd precision = llt.solve(Eigen::MatrixXd::Identity(d, d));
      for (Eigen::Index i = 0; i < d; ++i)
        for (Eigen::Index j = 0; j < d; ++j) flat_precision_.push_back(0.5 * (precision(i, j) + precision(j, i)));
    } else {
      flat_precision_.insert(flat_precision_.end(), dim_ * dim_, 0.0);
    }
  }
  log_z_ = std::log(weight_sum);
}

double GaussianMixtureTarget::reduced_energy(const double* x, double* grad) const {
  const std::size_t d = dim_;
  const std::size_t k_count = weights_.size();
  // Online log-sum-exp: m = running max of l_k, s = Σ exp(l_k − m), and grad
  // accumulates Σ exp(l_k − m) Σ_k⁻¹ r_k; both are rescaled when m increases.
  double m = -std::numeric_limits<double>::infinity();
  double s = 0.0;
  if (grad) std::fill(grad, grad + d, 0.0);
  for (std::size_t k = 0; k < k_count; ++k) {
    const double* mu = flat_means_.data() + k * d;
    double q = 0.0;  // r_kᵀ Σ_k⁻¹ r_k
    if (diagonal_[k]) {
      const double* iv = flat_inv_var_.data() + k * d;
      for (std::size_t i = 0; i < d; ++i) {
        const double r = x[i] - mu[i];
        q += r * r * iv[i];
      }
    } else {
      const double* p = flat_precision_.data() + k * d * d;
      for (std::size_t i = 0; i < d; ++i) {
        double pr = 0.0;
        for (std::size_t j = 0; j < d; ++j) pr += p[i * d + j] * (x[j] - mu[j]);
        q += (x[i] - mu[i]) * pr;
      }
    }
    const double l = log_coef_[k] - 0.5 * q;
    if (l == -std::numeric_limits<double>::infinity()) continue;  // exp(l) = 0 exactly
    if (l > m) {
      const double f = std::exp(m - l);
      s *= f;
      if (grad)
        for (std::size_t i = 0; i < d; ++i) grad[i] *= f;
      m = l;
    }
    const double w = std::exp(l - m);  // NaN when x is NaN: propagates to u
    s += w;
    if (grad) {
      if (diagonal_[k]) {
        const double* iv = flat_inv_var_.data() + k * d;
        for (std::size_t i = 0; i < d; ++i) grad[i] += w * (x[i] - mu[i]) * iv[i];
      } else {
        const double* p = flat_precision_.data() + k * d * d;
        for (std::size_t i = 0; i < d; ++i) {
          double pr = 0.0;
          for (std::size_t j = 0; j < d; ++j) pr += p[i * d + j] * (x[j] - mu[j]);
          grad[i] += w * pr;
        }
      }
    }
  }
  if (!(s > 0)) {
    // Every component underflowed to exactly zero density (|x| ~ 1e154 or more),
    // or x is NaN: u is +inf (or NaN), which evaluate_batch counts.
    if (grad) std::fill(grad, grad + d, std::numeric_limits<double>::quiet_NaN());
    return std::isnan(s) ? s : std::numeric_limits<double>::infinity();
  }
  if (grad)
    for (std::size_t i = 0; i < d; ++i) grad[i] /= s;
  return -(m + std::log(s));
}

nlohmann::json GaussianMixtureTarget::describe() const {
  return {{"name", name()}, {"dim", dim_}, {"components", weights_.size()}, {"log_z", log_z_}};
}

namespace {

/// Reads a K×d table: text (whitespace-separated rows, '#' comments) or .npy.
std::vector<Eigen::VectorXd> read_means_file(JsonReader& params, const std::filesystem::path& path) {
  std::vector<Eigen::VectorXd> means;
  if (path.extension() == ".npy") {
    RowMatrix m;
    try {
      m = read_npy_matrix(path);
    } catch (const Error& e) {
      params.fail("means_file", e.what());
    }
    for (Eigen::Index i = 0; i < m.rows(); ++i) means.emplace_back(m.row(i).transpose());
    return means;
  }
  std::ifstream in(path);
  if (!in) params.fail("means_file", "cannot read '" + path.string() + "'");
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream ls(line);
    std::vector<double> row;
    std::string token;
    while (ls >> token) {
      char* end = nullptr;
      const double v = std::strtod(token.c_str(), &end);
      if (end == token.c_str() || *end != '\0' || !std::isfinite(v)) {
        params.fail("means_file", path.string() + ":" + std::to_string(line_no) + ": '" + token +
                                      "' is not a finite number");
      }
      row.push_back(v);
    }
    if (row.empty()) continue;
    if (!means.empty() && static_cast<Eigen::Index>(row.size()) != means[0].size()) {
      params.fail("means_file", path.string() + ":" + std::to_string(line_no) + ": has " +
                                    std::to_string(row.size()) + " numbers, earlier rows have " +
                                    std::to_string(means[0].size()));
    }
    means.emplace_back(Eigen::Map<Eigen::VectorXd>(row.data(), static_cast<Eigen::Index>(row.size())));
  }
  if (means.empty()) params.fail("means_file", "'" + path.string() + "' holds no means");
  return means;
}

/// A nested array of numbers as a matrix; fails naming `key` on a bad shape.
Eigen::MatrixXd read_matrix(JsonReader& params, const std::string& key, const Json& j, std::size_t rows,
                            std::size_t cols, const std::string& what) {
  if (!j.is_array() || j.size() != rows) {
    params.fail(key, what + " must be a " + std::to_string(rows) + "x" + std::to_string(cols) + " nested array");
  }
  Eigen::MatrixXd m(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
  for (std::size_t i = 0; i < rows; ++i) {
    if (!j[i].is_array() || j[i].size() != cols) {
      params.fail(key, what + " row " + std::to_string(i) + " must have " + std::to_string(cols) + " numbers");
    }
    for (std::size_t c = 0; c < cols; ++c) {
      if (!j[i][c].is_number()) params.fail(key, what + " entries must be numbers, found " + j[i][c].dump());
      m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(c)) = j[i][c].get<double>();
    }
  }
  return m;
}

/// "means" (K×d nested array) or "means_file" (exactly one of them).
std::vector<Eigen::VectorXd> read_means(JsonReader& params, const std::filesystem::path& dir) {
  if (params.has("means") == params.has("means_file")) {
    params.fail("means", "give exactly one of 'means' and 'means_file'");
  }
  if (params.has("means_file")) return read_means_file(params, dir / params.get_string("means_file"));
  std::vector<Eigen::VectorXd> means;
  const Json& j = params.get_json("means");
  if (!j.is_array() || j.empty() || !j[0].is_array()) params.fail("means", "must be a nested array (K×d)");
  const Eigen::MatrixXd m = read_matrix(params, "means", j, j.size(), j[0].size(), "means");
  for (Eigen::Index i = 0; i < m.rows(); ++i) means.emplace_back(m.row(i).transpose());
  return means;
}

/// "weights" (K numbers > 0), default equal weights 1/K.
std::vector<double> read_weights(JsonReader& params, std::size_t k_count) {
  std::vector<double> weights(k_count, 1.0 / static_cast<double>(k_count));
  if (!params.has("weights")) return weights;
  weights = params.get_doubles("weights");
  if (weights.size() != k_count) {
    params.fail("weights", "has " + std::to_string(weights.size()) + " entries, but there are " +
                               std::to_string(k_count) + " means");
  }
  for (std::size_t k = 0; k < k_count; ++k) {
    if (!(weights[k] > 0) || !std::isfinite(weights[k])) {
      params.fail("weights", "entry " + std::to_string(k) + " is " + std::to_string(weights[k]) + ", but must be > 0");
    }
  }
  return weights;
}

/// diag(s²) from standard deviations s (d of them, each > 0); fails naming "std".
Eigen::MatrixXd diagonal_covariance(JsonReader& params, const std::vector<double>& s, std::size_t d,
                                    const std::string& what) {
  if (s.size() != d) {
    params.fail("std", what + " has " + std::to_string(s.size()) + " entries, but the dimension is " + std::to_string(d));
  }
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(d), static_cast<Eigen::Index>(d));
  for (std::size_t i = 0; i < d; ++i) {
    if (!(s[i] > 0) || !std::isfinite(s[i])) {
      params.fail("std", what + " entry " + std::to_string(i) + " is " + std::to_string(s[i]) + ", but must be > 0");
    }
    c(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(i)) = s[i] * s[i];
  }
  return c;
}

/// "std": one number, d numbers (shared), or K rows of d numbers.
std::vector<Eigen::MatrixXd> read_std(JsonReader& params, std::size_t k_count, std::size_t d) {
  const Json& j = params.get_json("std");
  using Covariances = std::vector<Eigen::MatrixXd>;
  if (j.is_number()) {
    return Covariances(k_count, diagonal_covariance(params, std::vector<double>(d, j.get<double>()), d, "std"));
  }
  if (!(j.is_array() && !j.empty() && j[0].is_array())) {
    return Covariances(k_count, diagonal_covariance(params, params.get_doubles("std"), d, "std"));
  }
  if (j.size() != k_count) {
    params.fail("std", "has " + std::to_string(j.size()) + " rows, but there are " + std::to_string(k_count) + " means");
  }
  std::vector<Eigen::MatrixXd> covs;
  for (std::size_t k = 0; k < k_count; ++k) {
    std::vector<double> s;
    for (const auto& e : j[k]) {
      if (!e.is_number()) params.fail("std", "entries must be numbers, found " + e.dump());
      s.push_back(e.get<double>());
    }
    covs.push_back(diagonal_covariance(params, s, d, "row " + std::to_string(k)));
  }
  return covs;
}

/// "covariances" (K d×d matrices) or "std" (not both); default identity.
std::vector<Eigen::MatrixXd> read_covariances(JsonReader& params, std::size_t k_count, std::size_t d) {
  if (params.has("std") && params.has("covariances")) {
    params.fail("std", "give either 'std' or 'covariances', not both");
  }
  if (params.has("std")) return read_std(params, k_count, d);
  if (!params.has("covariances")) {
    const auto dd = static_cast<Eigen::Index>(d);
    return std::vector<Eigen::MatrixXd>(k_count, Eigen::MatrixXd::Identity(dd, dd));
  }
  const Json& j = params.get_json("covariances");
  if (!j.is_array() || j.size() != k_count) {
    params.fail("covariances", "must hold " + std::to_string(k_count) + " matrices, one per mean");
  }
  std::vector<Eigen::MatrixXd> covs;
  for (std::size_t k = 0; k < k_count; ++k) {
    covs.push_back(read_matrix(params, "covariances", j[k], d, d, "matrix " + std::to_string(k)));
  }
  return covs;
}

}  // namespace

std::unique_ptr<Target> make_gaussian_mixture(JsonReader& params, const std::filesystem::path& dir) {
  // Optional keys tested with has() below: known for "did you mean" suggestions.
  for (const char* key : {"means", "means_file", "weights", "std", "covariances"}) params.ignore(key);
  std::vector<Eigen::VectorXd> means = read_means(params, dir);
  const std::size_t k_count = means.size();
  const std::size_t d = static_cast<std::size_t>(means[0].size());
  if (d == 0) params.fail("means", "components have dimension 0");
  std::vector<double> weights = read_weights(params, k_count);
  std::vector<Eigen::MatrixXd> covs = read_covariances(params, k_count, d);
  try {
    return std::make_unique<GaussianMixtureTarget>(std::move(weights), std::move(means), std::move(covs));
  } catch (const ConfigError& e) {
    throw ConfigError(params.context() + ": " + e.what());
  }
}

}  // namespace boltzlab
