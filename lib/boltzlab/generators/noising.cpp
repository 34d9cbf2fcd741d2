#include "boltzlab/generators/noising.hpp"

#include <cmath>

#include "boltzlab/core/constants.hpp"
#include "boltzlab/core/error.hpp"

namespace boltzlab::generators {

namespace {

const char* kind_name(NoisingKind k) { return k == NoisingKind::kVariancePreserving ? "vp" : "ve"; }

NoisingKind parse_kind(const std::string& name, const std::string& where) {
  if (name == "vp") return NoisingKind::kVariancePreserving;
  if (name == "ve") return NoisingKind::kVarianceExploding;
  throw ConfigError(where + " is '" + name + "', but must be \"vp\" (Ornstein-Uhlenbeck) or \"ve\" (variance exploding)");
}

bool vp(const NoisingOptions& o) { return o.kind == NoisingKind::kVariancePreserving; }

}  // namespace

void NoisingOptions::validate() const {
  auto positive = [](double v, const char* field) {
    if (!(std::isfinite(v) && v > 0.0)) throw ConfigError(std::string("generator.") + field + " must be finite and > 0");
  };
  positive(beta, "beta");
  positive(sigma_min, "sigma_min");
  positive(time, "time");
  positive(t_min, "t_min");
  if (!(std::isfinite(sigma_max) && sigma_max > sigma_min))
    throw ConfigError("generator.sigma_max must be finite and > generator.sigma_min");
  if (!(t_min < time)) throw ConfigError("generator.t_min must be < generator.time");
}

nlohmann::json NoisingOptions::to_json() const {
  return {{"noising", kind_name(kind)}, {"beta", beta},           {"sigma_min", sigma_min},
          {"sigma_max", sigma_max},     {"time", time},           {"t_min", t_min}};
}

NoisingOptions NoisingOptions::from_json(const nlohmann::json& j) {
  NoisingOptions o;
  o.kind = parse_kind(j.at("noising").get<std::string>(), "noising");
  o.beta = j.at("beta").get<double>();
  o.sigma_min = j.at("sigma_min").get<double>();
  o.sigma_max = j.at("sigma_max").get<double>();
  o.time = j.at("time").get<double>();
  o.t_min = j.at("t_min").get<double>();
  o.validate();
  return o;
}

void NoisingOptions::read(JsonReader& r) {
  if (r.has("noising")) kind = parse_kind(r.get_string("noising"), r.context_of("noising"));
  beta = r.get_double("beta", beta);
  sigma_min = r.get_double("sigma_min", sigma_min);
  sigma_max = r.get_double("sigma_max", sigma_max);
  time = r.get_double("time", time);
  t_min = r.get_double("t_min", t_min);
}

NoisingSde::NoisingSde(const NoisingOptions& options) : options_(options) {
  options_.validate();
  log_ratio_ = std::log(options_.sigma_max / options_.sigma_min);
}

torch::Tensor NoisingSde::mean_scale(const torch::Tensor& s) const {
  return vp(options_) ? torch::exp(-0.5 * options_.beta * s) : torch::ones_like(s);
}

double NoisingSde::mean_scale(double s) const { return vp(options_) ? std::exp(-0.5 * options_.beta * s) : 1.0; }

torch::Tensor NoisingSde::variance(const torch::Tensor& s) const {
  if (vp(options_)) return -torch::expm1(-options_.beta * s);
  const double a = options_.sigma_min * options_.sigma_min;
  return a * torch::expm1(s * (2.0 * log_ratio_ / options_.time));
}

double NoisingSde::variance(double s) const {
  if (vp(options_)) return -std::expm1(-options_.beta * s);
  return options_.sigma_min * options_.sigma_min * std::expm1(s * 2.0 * log_ratio_ / options_.time);
}

torch::Tensor NoisingSde::diffusion_squared(const torch::Tensor& s) const {
  if (vp(options_)) return torch::full_like(s, options_.beta);
  const double rate = 2.0 * log_ratio_ / options_.time;
  return (options_.sigma_min * options_.sigma_min * rate) * torch::exp(s * rate);
}

double NoisingSde::diffusion_squared(double s) const {
  if (vp(options_)) return options_.beta;
  const double rate = 2.0 * log_ratio_ / options_.time;
  return options_.sigma_min * options_.sigma_min * rate * std::exp(s * rate);
}

double NoisingSde::drift_coefficient() const { return vp(options_) ? 0.5 * options_.beta : 0.0; }

torch::Tensor NoisingSde::perturb(const torch::Tensor& y0, const torch::Tensor& s, const torch::Tensor& noise) const {
  return mean_scale(s).unsqueeze(1) * y0 + torch::sqrt(variance(s)).unsqueeze(1) * noise;
}

double NoisingSde::prior_variance() const { return vp(options_) ? 1.0 : variance(options_.time); }

torch::Tensor NoisingSde::prior_log_density(const torch::Tensor& y) const {
  const double var = prior_variance();
  const double d = static_cast<double>(y.size(1));
  return -0.5 * (y * y).sum(1) / var - 0.5 * d * std::log(2.0 * kPi * var);
}

}  // namespace boltzlab::generators
