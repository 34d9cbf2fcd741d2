#include "boltzlab/generators/bridge_sampler.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "boltzlab/core/constants.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/progress.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/core/timing.hpp"
#include "boltzlab/generators/generator.hpp"

namespace boltzlab::generators {

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

/// K × n × d standard normals, row i from stream (seed ^ kBridgeSeedMix, first_index + i).
torch::Tensor bridge_noise(int steps, std::int64_t n, int d, std::uint64_t seed, std::int64_t first_index) {
  auto noise = torch::empty({steps, n, d}, kF64);
  double* p = noise.data_ptr<double>();
  for (std::int64_t i = 0; i < n; ++i) {
    Rng rng = stream_for(seed ^ kBridgeSeedMix, static_cast<std::uint64_t>(first_index + i));
    for (int k = 0; k < steps; ++k) {
      double* row = p + (static_cast<std::int64_t>(k) * n + i) * d;
      for (int j = 0; j < d; ++j) row[j] = rng.normal();
    }
  }
  return noise;
}

/// I(x_i, ρ) = mean over the other rows j of exp(−|x_i − x_j|²/(2ℓ²)) (B).
torch::Tensor repulsion(const torch::Tensor& x, double length) {
  const std::int64_t n = x.size(0);
  if (n < 2) return torch::zeros({n}, kF64);
  const auto sq = (x * x).sum(1);
  const auto d2 = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * torch::mm(x, x.t())).clamp_min(0.0);
  const auto k = torch::exp(-d2 / (2.0 * length * length));
  return (k.sum(1) - 1.0) / static_cast<double>(n - 1);  // the diagonal term exp(0) = 1 left out
}

}  // namespace

void BridgeOptions::read(JsonReader& r, int dim) {
  potential.dim = dim;
  potential.width = static_cast<int>(r.get_int("width", potential.width));
  potential.layers = static_cast<int>(r.get_int("layers", potential.layers));
  sigma = r.get_double("sigma", sigma);
  time = r.get_double("time", time);
  steps = static_cast<int>(r.get_int("steps", steps));
  alpha_interaction = r.get_double("alpha_interaction", alpha_interaction);
  interaction_length = r.get_double("interaction_length", interaction_length);
}

void BridgeOptions::validate() const {
  potential.validate();
  if (potential.n_particles > 0 || !potential.periodic.empty())
    throw ConfigError("generator.bridge: particle systems and periodic coordinates are not supported");
  if (!(sigma > 0.0) || !std::isfinite(sigma)) throw ConfigError("generator.bridge.sigma must be finite and > 0");
  if (!(time > 0.0) || !std::isfinite(time)) throw ConfigError("generator.bridge.time must be finite and > 0");
  if (steps < 1) throw ConfigError("generator.bridge.steps must be ≥ 1");
  if (!(alpha_interaction >= 0.0) || !std::isfinite(alpha_interaction))
    throw ConfigError("generator.bridge.alpha_interaction must be finite and ≥ 0");
  if (!(interaction_length > 0.0) || !std::isfinite(interaction_length))
    throw ConfigError("generator.bridge.interaction_length must be finite and > 0");
}

nlohmann::json BridgeOptions::to_json() const {
  return {{"potential", potential.to_json()},       {"sigma", sigma},
          {"time", time},                           {"steps", steps},
          {"alpha_interaction", alpha_interaction}, {"interaction_length", interaction_length}};
}

BridgeOptions BridgeOptions::from_json(const nlohmann::json& j) {
  BridgeOptions o;
  o.potential = OtPotentialOptions::from_json(j.at("potential"));
  o.sigma = j.at("sigma").get<double>();
  o.time = j.at("time").get<double>();
  o.steps = j.at("steps").get<int>();
  o.alpha_interaction = j.at("alpha_interaction").get<double>();
  o.interaction_length = j.at("interaction_length").get<double>();
  o.validate();
  return o;
}

void BridgeTrainOptions::validate() const {
  if (iterations < 0) throw ConfigError("generator.iterations must be ≥ 0");
  if (batch_size < 2) throw ConfigError("generator.batch_size must be ≥ 2");
  if (!(learning_rate > 0.0) || !std::isfinite(learning_rate))
    throw ConfigError("generator.learning_rate must be finite and > 0");
  if (!(lr_final_ratio > 0.0) || lr_final_ratio > 1.0) throw ConfigError("generator.lr_final_ratio must be in (0, 1]");
  energy_cut.validate();
}

nlohmann::json BridgeTrainOptions::to_json() const {
  return {{"iterations", iterations},       {"batch_size", batch_size},       {"learning_rate", learning_rate},
          {"lr_final_ratio", lr_final_ratio}, {"clip_grad_norm", clip_grad_norm}, {"seed", seed},
          {"energy_cut", {{"high", energy_cut.high}, {"max", energy_cut.max}}}};
}

nlohmann::json BridgeHistory::to_json() const {
  return {{"loss", loss},
          {"batch_ess", batch_ess},
          {"energy_evaluations", energy_evaluations},
          {"non_finite_energies", non_finite},
          {"skipped_steps", skipped},
          {"iterations_done", iterations_done},
          {"wall_seconds", wall_seconds}};
}

BridgeSampler::BridgeSampler(const BridgeOptions& options, std::uint64_t seed) : options_(options), phi_(options.potential) {
  options_.validate();
  phi_->reset_parameters(seed);
}

torch::Tensor BridgeSampler::control(const torch::Tensor& x, double t) {
  return -phi_->derivatives(x, t, false).grad_x;
}

torch::Tensor BridgeSampler::reference_log_density(const torch::Tensor& x) const {
  const double var = options_.sigma * options_.sigma * options_.time;
  return -0.5 * (x * x).sum(1) / var - 0.5 * static_cast<double>(dim()) * std::log(2.0 * kPi * var);
}

BridgePaths BridgeSampler::simulate(std::int64_t n, std::uint64_t seed, std::int64_t first_index,
                                    bool with_interaction) {
  const int steps = options_.steps;
  const double h = options_.time / steps, sigma = options_.sigma, sqrt_h = std::sqrt(h);
  const torch::Tensor noise = bridge_noise(steps, n, dim(), seed, first_index);
  const bool interact = with_interaction && options_.alpha_interaction > 0.0;
  BridgePaths p;
  p.x = torch::zeros({n, dim()}, kF64);
  p.running = torch::zeros({n}, kF64);
  p.girsanov = torch::zeros({n}, kF64);
  p.interaction = torch::zeros({n}, kF64);
  for (int k = 0; k < steps; ++k) {
    const auto v = control(p.x, k * h);
    const auto xi = noise[k];
    p.running = p.running + 0.5 * h * (v * v).sum(1);
    p.girsanov = p.girsanov + sqrt_h * (v * xi).sum(1);
    if (interact && k > 0)  // at k = 0 every row sits at the origin: a constant
      p.interaction = p.interaction + options_.alpha_interaction * h * repulsion(p.x, options_.interaction_length);
    p.x = p.x + sigma * h * v + sigma * sqrt_h * xi;
  }
  return p;
}

BridgeHistory BridgeSampler::train(const Target& target, const BridgeTrainOptions& options) {
  options.validate();
  if (static_cast<int>(target.dim()) != dim()) throw DomainError("bridge training: target of the wrong dimension");
  auto params = phi_->parameters();
  torch::optim::Adam adam(params, torch::optim::AdamOptions(options.learning_rate));
  BridgeHistory h;
  EnergyCounters counters;
  const double start = wall_seconds();
  Progress progress("bridge training", static_cast<std::size_t>(options.iterations), options.progress);
  for (int it = 0; it < options.iterations; ++it) {
    const double frac = static_cast<double>(it) / options.iterations;
    const double lr = options.learning_rate *
                      (options.lr_final_ratio + (1.0 - options.lr_final_ratio) * 0.5 * (1.0 + std::cos(kPi * frac)));
    for (auto& group : adam.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    adam.zero_grad();
    const BridgePaths p = simulate(options.batch_size, options.seed,
                                   static_cast<std::int64_t>(it) * options.batch_size, true);
    const auto u = target_energy(p.x, target, options.energy_cut, &counters);
    const auto log_n = reference_log_density(p.x);
    const auto loss = (p.running + p.interaction + u + log_n).mean();
    const double value = loss.item<double>();
    bool ok = std::isfinite(value);
    if (ok) {
      loss.backward();
      const double bound = options.clip_grad_norm > 0.0 ? options.clip_grad_norm : 1e300;
      ok = std::isfinite(torch::nn::utils::clip_grad_norm_(params, bound));
    }
    if (ok) adam.step();
    else ++h.skipped;
    // The batch's exact log-weights (with the cut energy: an indicator only).
    const auto lw = (-(u + log_n + p.running + p.girsanov)).detach();
    const auto w = torch::exp(lw - lw.max());
    h.batch_ess.push_back((w.sum() * w.sum() / (w * w).sum()).item<double>() / options.batch_size);
    h.loss.push_back(value);
    h.iterations_done = it + 1;
    progress.update(static_cast<std::size_t>(it + 1));
  }
  progress.finish();
  h.energy_evaluations = counters.evaluations.load();
  h.non_finite = counters.non_finite.load();
  h.wall_seconds = wall_seconds() - start;
  return h;
}

BridgeDraws BridgeSampler::sample(std::int64_t n, std::uint64_t seed, std::int64_t chunk) {
  if (n < 0 || chunk < 1) throw DomainError("bridge sampler: n must be ≥ 0 and chunk ≥ 1");
  BridgeDraws out;
  out.x.resize(n, dim());
  out.log_path.resize(n);
  const std::int64_t chunks = (n + chunk - 1) / chunk;
  for_each_index(static_cast<std::size_t>(chunks), [&](std::size_t c) {
    torch::NoGradGuard no_grad;
    const std::int64_t first = static_cast<std::int64_t>(c) * chunk, m = std::min(chunk, n - first);
    const BridgePaths p = simulate(m, seed, first, false);
    const auto lp = (-(reference_log_density(p.x) + p.running + p.girsanov)).contiguous();
    const auto x = p.x.contiguous();
    std::copy(x.data_ptr<double>(), x.data_ptr<double>() + m * dim(), out.x.data() + first * dim());
    std::copy(lp.data_ptr<double>(), lp.data_ptr<double>() + m, out.log_path.data() + first);
  });
  return out;
}

void BridgeSampler::save(const std::filesystem::path& path, const nlohmann::json& metadata,
                         const std::optional<PotentialIdentity>& potential) const {
  save_model_archive(
      path,
      [this](torch::serialize::OutputArchive& archive) {
        archive.write("bridge_format_version", c10::IValue(static_cast<int64_t>(kBridgeModelFormatVersion)));
        archive.write("options", c10::IValue(options_.to_json().dump()));
        torch::serialize::OutputArchive params;
        phi_->save(params);
        archive.write("potential", params);
      },
      metadata, potential);
}

bool BridgeSampler::is_bridge_model(const std::filesystem::path& path) {
  return model_archive_has(path, "bridge_format_version");
}

BridgeSampler BridgeSampler::load(const std::filesystem::path& path, nlohmann::json* metadata) {
  std::optional<BridgeSampler> b;
  const nlohmann::json meta = load_model_archive(
      path, "bridge_format_version", kBridgeModelFormatVersion, "bridge sampler",
      [&b](torch::serialize::InputArchive& archive) {
        b.emplace(BridgeOptions::from_json(nlohmann::json::parse(read_archive_string(archive, "options"))), 0);
        torch::serialize::InputArchive params;
        archive.read("potential", params);
        b->phi_->load(params);
      });
  if (metadata) *metadata = meta;
  return std::move(*b);
}

}  // namespace boltzlab::generators
