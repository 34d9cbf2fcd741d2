#include "boltzlab/estimators/free_energy.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

Eigen::VectorXd weights_or_uniform(const Eigen::VectorXd& log_weights, Eigen::Index n, const std::string& what) {
  if (n == 0) throw DomainError(what + ": no samples");
  if (log_weights.size() == 0) return Eigen::VectorXd::Constant(n, 1.0 / static_cast<double>(n));
  if (log_weights.size() != n) {
    throw DomainError(what + ": " + std::to_string(n) + " samples but " + std::to_string(log_weights.size()) +
                      " log-weights (lengths must match)");
  }
  return normalized_weights(log_weights);
}

/// Fills p, se, F, se(F) from per-bin sums Σw̄ and Σw̄² and the bin membership.
/// se² = Σ_i w̄_i² (1_b − p_b)² = Σ_{i∈b} w̄_i² (1 − 2p_b) + p_b² Σ_i w̄_i².
void finish_bins(const Eigen::VectorXd& sum_w, const Eigen::VectorXd& sum_w2, double total_w2, Eigen::VectorXd& p,
                 Eigen::VectorXd& se, Eigen::VectorXd& f, Eigen::VectorXd& fse) {
  const Eigen::Index nb = sum_w.size();
  p = sum_w;
  se.resize(nb);
  f.resize(nb);
  fse.resize(nb);
  double f_min = kInf;
  for (Eigen::Index b = 0; b < nb; ++b) {
    const double var = sum_w2[b] * (1 - 2 * p[b]) + p[b] * p[b] * total_w2;
    se[b] = std::sqrt(std::max(var, 0.0));
    f[b] = p[b] > 0 ? -std::log(p[b]) : kInf;
    fse[b] = p[b] > 0 ? se[b] / p[b] : kInf;
    f_min = std::min(f_min, f[b]);
  }
  if (std::isfinite(f_min)) f.array() -= f_min;
}

nlohmann::json vector_json(const Eigen::VectorXd& v) {
  nlohmann::json a = nlohmann::json::array();
  for (Eigen::Index i = 0; i < v.size(); ++i) {
    if (std::isfinite(v[i])) a.push_back(v[i]); else a.push_back(nullptr);
  }
  return a;
}

nlohmann::json matrix_json(const RowMatrix& m) {
  nlohmann::json a = nlohmann::json::array();
  for (Eigen::Index r = 0; r < m.rows(); ++r) a.push_back(vector_json(m.row(r).transpose()));
  return a;
}

nlohmann::json axis_json(const HistogramAxis& a) {
  nlohmann::json j{{"name", a.name}, {"lo", a.lo}, {"hi", a.hi}, {"bins", a.bins}, {"periodic", a.periodic}};
  nlohmann::json centers = nlohmann::json::array();
  for (std::size_t b = 0; b < a.bins; ++b) centers.push_back(a.center(b));
  j["centers"] = centers;
  return j;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

}  // namespace

void HistogramAxis::validate() const {
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(hi > lo)) {
    std::ostringstream s;
    s << "histogram axis '" << name << "': range [" << lo << ", " << hi << ") is empty or not finite";
    throw ConfigError(s.str());
  }
  if (bins == 0) throw ConfigError("histogram axis '" + name + "': bins is 0, but must be ≥ 1");
}

long HistogramAxis::bin_of(double v) const {
  if (!std::isfinite(v)) return -1;
  if (periodic) {
    const double period = hi - lo;
    v = lo + std::fmod(v - lo, period);
    if (v < lo) v += period;
  } else if (v < lo || v >= hi) {
    return -1;
  }
  const auto b = static_cast<long>(std::floor((v - lo) / width()));
  return std::clamp<long>(b, 0, static_cast<long>(bins) - 1);
}

FreeEnergy1D free_energy_1d(const Eigen::VectorXd& x, const Eigen::VectorXd& log_weights,
                            const HistogramAxis& axis) {
  axis.validate();
  const Eigen::VectorXd w = weights_or_uniform(log_weights, x.size(), "free energy 1-D");
  FreeEnergy1D f;
  f.axis = axis;
  f.samples = static_cast<std::size_t>(x.size());
  const auto nb = static_cast<Eigen::Index>(axis.bins);
  Eigen::VectorXd sum_w = Eigen::VectorXd::Zero(nb), sum_w2 = Eigen::VectorXd::Zero(nb);
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    if (w[i] == 0) continue;
    const long b = axis.bin_of(x[i]);
    if (b < 0) {
      ++f.outside;
      f.outside_mass += w[i];
      continue;
    }
    sum_w[b] += w[i];
    sum_w2[b] += w[i] * w[i];
  }
  const double total_w2 = w.squaredNorm();
  f.kish_ess = 1 / total_w2;
  finish_bins(sum_w, sum_w2, total_w2, f.probability, f.probability_stderr, f.free_energy, f.free_energy_stderr);
  return f;
}

FreeEnergy2D free_energy_2d(const Eigen::VectorXd& x, const Eigen::VectorXd& y, const Eigen::VectorXd& log_weights,
                            const HistogramAxis& x_axis, const HistogramAxis& y_axis) {
  x_axis.validate();
  y_axis.validate();
  if (x.size() != y.size()) {
    throw DomainError("free energy 2-D: " + std::to_string(x.size()) + " x values but " + std::to_string(y.size()) +
                      " y values");
  }
  const Eigen::VectorXd w = weights_or_uniform(log_weights, x.size(), "free energy 2-D");
  FreeEnergy2D f;
  f.x_axis = x_axis;
  f.y_axis = y_axis;
  f.samples = static_cast<std::size_t>(x.size());
  const auto nx = static_cast<Eigen::Index>(x_axis.bins), ny = static_cast<Eigen::Index>(y_axis.bins);
  Eigen::VectorXd sum_w = Eigen::VectorXd::Zero(nx * ny), sum_w2 = Eigen::VectorXd::Zero(nx * ny);
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    if (w[i] == 0) continue;
    const long bx = x_axis.bin_of(x[i]), by = y_axis.bin_of(y[i]);
    if (bx < 0 || by < 0) {
      ++f.outside;
      f.outside_mass += w[i];
      continue;
    }
    sum_w[bx * ny + by] += w[i];
    sum_w2[bx * ny + by] += w[i] * w[i];
  }
  const double total_w2 = w.squaredNorm();
  f.kish_ess = 1 / total_w2;
  Eigen::VectorXd p, se, fe, fse;
  finish_bins(sum_w, sum_w2, total_w2, p, se, fe, fse);
  f.probability = Eigen::Map<const RowMatrix>(p.data(), nx, ny);
  f.probability_stderr = Eigen::Map<const RowMatrix>(se.data(), nx, ny);
  f.free_energy = Eigen::Map<const RowMatrix>(fe.data(), nx, ny);
  f.free_energy_stderr = Eigen::Map<const RowMatrix>(fse.data(), nx, ny);
  return f;
}

bool Region::contains(const double* row) const {
  for (const Condition& c : conditions) {
    const double v = row[c.column];
    bool ok;
    if (c.less) ok = c.inclusive ? v <= c.value : v < c.value;
    else ok = c.inclusive ? v >= c.value : v > c.value;
    if (!ok) return false;
  }
  return true;
}

Region parse_region(const std::string& text, const std::vector<std::string>& names) {
  Region r;
  r.spec = text;
  std::string body = text;
  const auto colon = text.find(':');
  if (colon != std::string::npos) {
    r.label = trim(text.substr(0, colon));
    body = text.substr(colon + 1);
  }
  if (r.label.empty()) r.label = trim(body);
  std::stringstream parts(body);
  std::string term;
  while (std::getline(parts, term, '&')) {
    term = trim(term);
    const auto op = term.find_first_of("<>");
    if (term.empty() || op == std::string::npos) {
      throw ConfigError("region '" + text + "': condition '" + term + "' needs an operator (<, <=, >, >=), e.g. phi<0");
    }
    Region::Condition c;
    c.less = term[op] == '<';
    std::size_t value_start = op + 1;
    if (value_start < term.size() && term[value_start] == '=') {
      c.inclusive = true;
      ++value_start;
    }
    const std::string name = trim(term.substr(0, op));
    const std::string number = trim(term.substr(value_start));
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      std::string best;
      std::size_t best_d = std::numeric_limits<std::size_t>::max();
      for (const auto& n : names) {
        const std::size_t d = edit_distance(name, n);
        if (d < best_d) { best_d = d; best = n; }
      }
      std::string msg = "region '" + text + "': unknown coordinate '" + name + "'";
      if (!best.empty() && best_d <= 2) msg += " (did you mean '" + best + "'?)";
      msg += "; known:";
      for (std::size_t i = 0; i < names.size() && i < 8; ++i) msg += " " + names[i];
      if (names.size() > 8) msg += " ...";
      throw ConfigError(msg);
    }
    c.column = static_cast<std::size_t>(it - names.begin());
    try {
      std::size_t used = 0;
      c.value = std::stod(number, &used);
      if (used != number.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw ConfigError("region '" + text + "': '" + number + "' is not a number");
    }
    r.conditions.push_back(c);
  }
  if (r.conditions.empty()) throw ConfigError("region '" + text + "': no conditions");
  return r;
}

FreeEnergyDifference free_energy_difference(const RowMatrix& coords, const Eigen::VectorXd& log_weights,
                                            const Region& a, const Region& b) {
  const Eigen::VectorXd w = weights_or_uniform(log_weights, coords.rows(), "free-energy difference");
  std::size_t max_col = 0;
  for (const Region* r : {&a, &b}) {
    for (const auto& c : r->conditions) max_col = std::max(max_col, c.column);
  }
  if (static_cast<Eigen::Index>(max_col) >= coords.cols()) {
    throw DomainError("free-energy difference: regions use column " + std::to_string(max_col) + " but there are " +
                      std::to_string(coords.cols()) + " coordinates");
  }
  FreeEnergyDifference d;
  d.label_a = a.label;
  d.label_b = b.label;
  std::vector<char> in_a(static_cast<std::size_t>(coords.rows())), in_b(static_cast<std::size_t>(coords.rows()));
  for (Eigen::Index i = 0; i < coords.rows(); ++i) {
    const RowMatrix row = coords.row(i);
    in_a[static_cast<std::size_t>(i)] = a.contains(row.data());
    in_b[static_cast<std::size_t>(i)] = b.contains(row.data());
    if (w[i] == 0) continue;
    if (in_a[static_cast<std::size_t>(i)]) { d.population_a += w[i]; ++d.count_a; }
    if (in_b[static_cast<std::size_t>(i)]) { d.population_b += w[i]; ++d.count_b; }
  }
  if (d.population_a <= 0 || d.population_b <= 0) {
    const std::string which = d.population_a <= 0 ? a.label : b.label;
    d.delta_f = Quantity::missing("region '" + which + "' holds no sample with positive weight");
    d.stderr_kt = d.delta_f;
    return d;
  }
  d.delta_f = Quantity::of(-std::log(d.population_a / d.population_b));
  double var = 0;
  for (Eigen::Index i = 0; i < coords.rows(); ++i) {
    if (w[i] == 0) continue;
    const double g = (in_a[static_cast<std::size_t>(i)] ? 1 / d.population_a : 0.0) -
                     (in_b[static_cast<std::size_t>(i)] ? 1 / d.population_b : 0.0);
    var += w[i] * w[i] * g * g;
  }
  d.stderr_kt = Quantity::of(std::sqrt(var));
  return d;
}

nlohmann::json to_json(const FreeEnergy1D& f) {
  return {{"axis", axis_json(f.axis)},
          {"probability", vector_json(f.probability)},
          {"probability_stderr", vector_json(f.probability_stderr)},
          {"free_energy_kt", vector_json(f.free_energy)},
          {"free_energy_stderr_kt", vector_json(f.free_energy_stderr)},
          {"samples", f.samples},
          {"outside", f.outside},
          {"outside_mass", f.outside_mass},
          {"kish_ess", f.kish_ess},
          {"note", "F = -log p - min(-log p) in kT; null marks empty bins"}};
}

nlohmann::json to_json(const FreeEnergy2D& f) {
  return {{"x_axis", axis_json(f.x_axis)},
          {"y_axis", axis_json(f.y_axis)},
          {"free_energy_kt", matrix_json(f.free_energy)},
          {"free_energy_stderr_kt", matrix_json(f.free_energy_stderr)},
          {"samples", f.samples},
          {"outside", f.outside},
          {"outside_mass", f.outside_mass},
          {"kish_ess", f.kish_ess},
          {"note", "matrix rows: x bins, columns: y bins; F = -log p - min(-log p) in kT; null marks empty bins"}};
}

nlohmann::json to_json(const FreeEnergyDifference& d, double kt_kj_mol) {
  nlohmann::json j{{"region_a", d.label_a}, {"region_b", d.label_b},   {"population_a", d.population_a},
                   {"population_b", d.population_b}, {"count_a", d.count_a}, {"count_b", d.count_b}};
  put_quantity(j, "delta_f_kt", d.delta_f);
  put_quantity(j, "stderr_kt", d.stderr_kt);
  if (kt_kj_mol > 0) {
    put_quantity(j, "delta_f_kj_mol", d.delta_f.ok() ? Quantity::of(*d.delta_f.value * kt_kj_mol) : d.delta_f);
    put_quantity(j, "stderr_kj_mol", d.stderr_kt.ok() ? Quantity::of(*d.stderr_kt.value * kt_kj_mol) : d.stderr_kt);
  }
  return j;
}

}  // namespace boltzlab
