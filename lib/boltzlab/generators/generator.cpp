#include "boltzlab/generators/generator.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "boltzlab/core/constants.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/generators/target_bridge.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab::generators {

namespace {
const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);
constexpr double kLog2Pi = 1.8378770664093454835606594728112;

torch::Tensor vector_tensor(const Eigen::VectorXd& v) {
  auto t = torch::empty({v.size()}, kF64);
  std::copy(v.data(), v.data() + v.size(), t.data_ptr<double>());
  return t;
}
}  // namespace

void GeneratorOptions::validate() const {
  potential.validate();
  if (!(time > 0.0) || !std::isfinite(time))
    throw ConfigError("generator: time is " + std::to_string(time) + ", but must be > 0");
  if (steps < 1) throw ConfigError("generator: steps is " + std::to_string(steps) + ", but must be >= 1");
  if (sample_steps < 1)
    throw ConfigError("generator: sample_steps is " + std::to_string(sample_steps) + ", but must be >= 1");
  if (!(noise >= 0.0) || !std::isfinite(noise))
    throw ConfigError("generator: noise is " + std::to_string(noise) + ", but must be finite and >= 0");
  if (free_velocity) {
    if (!potential.periodic.empty())
      throw ConfigError("generator: velocity \"free\" has no periodic form (molecules use the gradient velocity)");
    free_velocity_options().validate();
  } else if (!velocity_hidden.empty() || velocity_bound != 0.0) {
    throw ConfigError("generator: velocity_hidden and velocity_bound need velocity \"free\"");
  }
  if (coupling_flow()) {
    if (noise > 0.0) throw ConfigError("generator: flow \"spline_coupling\" is a deterministic map (set noise to 0)");
    if (free_velocity) throw ConfigError("generator: flow \"spline_coupling\" has no velocity (velocity must be \"gradient\")");
    if (potential.n_particles > 0)
      throw ConfigError("generator: flow \"spline_coupling\" is not equivariant; particle systems use the OT-Flow (flow \"otflow\")");
    coupling_options().validate();
  }
  if (whitened && (potential.n_particles > 0 || free_velocity))
    throw ConfigError("generator: flow_whitening needs a molecular model with the gradient velocity");
}

SplineCouplingOptions GeneratorOptions::coupling_options() const {
  SplineCouplingOptions c = coupling;
  c.dim = potential.dim;
  c.periodic = potential.periodic;
  return c;
}

void read_flow_options(JsonReader& r, GeneratorOptions& o) {
  const std::string flow = r.get_string("flow", o.coupling_flow() ? "spline_coupling" : "otflow");
  if (flow != "otflow" && flow != "spline_coupling")
    r.fail("flow", "is \"" + flow + "\", but must be \"otflow\" or \"spline_coupling\"");
  o.flow = flow == "spline_coupling" ? FlowFamily::spline_coupling : FlowFamily::ot_flow;
  const char* keys[] = {"coupling_layers", "coupling_hidden", "coupling_depth", "spline_bins", "spline_bound",
                        "coupling_condition_soft"};
  if (!o.coupling_flow()) {
    for (const char* k : keys)
      if (r.has(k)) r.fail(k, "needs flow \"spline_coupling\"");
    return;
  }
  o.coupling.layers = static_cast<int>(r.get_int("coupling_layers", o.coupling.layers));
  o.coupling.hidden = static_cast<int>(r.get_int("coupling_hidden", o.coupling.hidden));
  o.coupling.depth = static_cast<int>(r.get_int("coupling_depth", o.coupling.depth));
  o.coupling.bins = static_cast<int>(r.get_int("spline_bins", o.coupling.bins));
  o.coupling.bound = r.get_double("spline_bound", o.coupling.bound);
  o.condition_soft = r.get_bool("coupling_condition_soft", false);
}

void read_velocity_options(JsonReader& r, GeneratorOptions& o) {
  const std::string velocity = r.get_string("velocity", o.free_velocity ? "free" : "gradient");
  if (velocity != "gradient" && velocity != "free")
    r.fail("velocity", "is \"" + velocity + "\", but must be \"gradient\" or \"free\"");
  o.free_velocity = velocity == "free";
  if (r.has("velocity_hidden")) {
    const Json& h = r.get_json("velocity_hidden");
    if (!h.is_array()) r.fail("velocity_hidden", "must be an array of layer widths");
    o.velocity_hidden.clear();
    for (const auto& w : h) {
      if (!w.is_number_integer()) r.fail("velocity_hidden", "entries must be integers");
      o.velocity_hidden.push_back(w.get<int>());
    }
  }
  o.velocity_bound = r.get_double("velocity_bound", o.velocity_bound);
}

FreeVelocityOptions GeneratorOptions::free_velocity_options() const {
  FreeVelocityOptions o;
  o.dim = potential.dim;
  o.hidden = velocity_hidden.empty() ? std::vector<int>{potential.width, potential.width} : velocity_hidden;
  o.bound = velocity_bound;
  o.n_particles = potential.n_particles;
  o.spatial_dim = potential.spatial_dim;
  return o;
}

nlohmann::json GeneratorOptions::to_json() const {
  nlohmann::json j = {{"potential", potential.to_json()}, {"time", time}, {"steps", steps},
                      {"sample_steps", sample_steps}};
  if (noise > 0.0) j["noise"] = noise;  // absent: the deterministic flow (files of older versions)
  if (coupling_flow()) {               // absent: the CNF (files of older versions)
    j["flow"] = "spline_coupling";
    j["coupling"] = coupling.to_json();
  }
  if (whitened) j["whitened"] = true;  // absent: the flow acts on the flow space itself
  if (free_velocity) {  // absent: the gradient velocity
    j["velocity"] = "free";
    j["velocity_hidden"] = velocity_hidden;
    j["velocity_bound"] = velocity_bound;
  }
  return j;
}

GeneratorOptions GeneratorOptions::from_json(const nlohmann::json& j) {
  JsonReader r(j, "generator model");
  GeneratorOptions o;
  o.potential = OtPotentialOptions::from_json(r.get_json("potential"));
  o.time = r.get_double("time");
  o.steps = static_cast<int>(r.get_int("steps"));
  o.sample_steps = static_cast<int>(r.get_int("sample_steps"));
  o.noise = r.get_double("noise", 0.0);
  o.whitened = r.get_bool("whitened", false);
  read_velocity_options(r, o);
  const std::string flow = r.get_string("flow", "otflow");
  if (flow != "otflow" && flow != "spline_coupling") r.fail("flow", "is \"" + flow + "\", not a known flow");
  if (flow == "spline_coupling") {
    o.flow = FlowFamily::spline_coupling;
    o.coupling = SplineCouplingOptions::from_json(r.get_json("coupling"), o.coupling_options());
  }
  r.finish();
  o.validate();
  return o;
}

BoltzmannGenerator::BoltzmannGenerator(const GeneratorOptions& options, std::uint64_t seed)
    : options_(options), phi_(options.potential) {
  options_.validate();
  options_.potential = phi_->options();  // rank resolved
  phi_->reset_parameters(seed);
  if (options_.free_velocity) velocity_ = std::make_shared<FreeVelocity>(options_.free_velocity_options(), seed);
  if (options_.coupling_flow()) coupling_ = SplineCouplingFlow(options_.coupling_options(), seed);
  set_standardization(Eigen::VectorXd::Zero(dim()), Eigen::VectorXd::Ones(dim()));
  flow_periodic_mask_ = torch::zeros({dim()}, torch::TensorOptions().dtype(torch::kBool));
  for (const int c : options_.potential.periodic) flow_periodic_mask_[c] = true;
}

void BoltzmannGenerator::set_integration_steps(int steps, int sample_steps) {
  GeneratorOptions o = options_;
  o.steps = steps;
  o.sample_steps = sample_steps;
  o.validate();
  options_ = o;
}

int BoltzmannGenerator::degrees_of_freedom() const {
  const auto& p = options_.potential;
  return p.n_particles > 0 ? (p.n_particles - 1) * p.spatial_dim : p.dim;
}

void BoltzmannGenerator::set_standardization(const Eigen::VectorXd& shift, const Eigen::VectorXd& scale) {
  if (shift.size() != dim() || scale.size() != dim())
    throw DomainError("generator: standardization has size " + std::to_string(shift.size()) + "/" +
                      std::to_string(scale.size()) + ", expected " + std::to_string(dim()));
  for (Eigen::Index k = 0; k < scale.size(); ++k)
    if (!(scale[k] > 0.0) || !std::isfinite(scale[k]) || !std::isfinite(shift[k]))
      throw DomainError("generator: standardization scale[" + std::to_string(k) + "] = " +
                        std::to_string(scale[k]) + " (must be finite and > 0)");
  if (options_.potential.n_particles > 0) {
    if (shift.cwiseAbs().maxCoeff() != 0.0 || scale.maxCoeff() != scale.minCoeff())
      throw DomainError("generator: particle systems need shift 0 and an isotropic scale");
  }
  for (const auto c : periodic_columns_)
    if (shift[c] != 0.0 || scale[c] != 1.0)
      throw DomainError("generator: periodic column " + std::to_string(c) +
                        " needs the identity standardization (shift 0, scale 1)");
  shift_ = shift;
  scale_ = scale;
  shift_t_ = vector_tensor(shift_);
  scale_t_ = vector_tensor(scale_);
}

void BoltzmannGenerator::standardize_from_data(const RowMatrix& data) {
  if (data.rows() < 2 || data.cols() != dim())
    throw DomainError("generator: standardization needs >= 2 rows of dimension " + std::to_string(dim()));
  const double n = static_cast<double>(data.rows());
  if (options_.potential.n_particles > 0) {
    // Centred coordinates: rms over all coordinates of (x − centre of mass).
    RowMatrix c = data;
    const int np = options_.potential.n_particles, sd = options_.potential.spatial_dim;
    double sq = 0.0;
    for (Eigen::Index i = 0; i < c.rows(); ++i) {
      remove_center_of_mass(c.row(i).data(), np, sd);
      sq += c.row(i).squaredNorm();
    }
    const double rms = std::sqrt(sq / (n * degrees_of_freedom()));
    set_standardization(Eigen::VectorXd::Zero(dim()), Eigen::VectorXd::Constant(dim(), rms));
    return;
  }
  Eigen::VectorXd mean = data.colwise().mean().transpose();
  Eigen::VectorXd sd(dim());
  for (int k = 0; k < dim(); ++k) {
    const double var = (data.col(k).array() - mean[k]).square().sum() / (n - 1.0);
    sd[k] = var > 0.0 ? std::sqrt(var) : 1.0;
  }
  for (const auto c : periodic_columns_) {  // angles stay angles
    mean[c] = 0.0;
    sd[c] = 1.0;
  }
  set_standardization(mean, sd);
}

double BoltzmannGenerator::log_scale_sum() const {
  if (options_.potential.n_particles > 0) return degrees_of_freedom() * std::log(scale_[0]);
  return scale_.array().log().sum();
}

torch::Tensor BoltzmannGenerator::to_flow_space(const torch::Tensor& x) const {
  return (x - shift_t_) / scale_t_;
}

torch::Tensor BoltzmannGenerator::from_flow_space(const torch::Tensor& y) const {
  return y * scale_t_ + shift_t_;
}

torch::Tensor BoltzmannGenerator::flow_coordinates(const RowMatrix& data) const {
  if (data.cols() != dim())
    throw DomainError("generator: data have " + std::to_string(data.cols()) + " columns, the model " +
                      std::to_string(dim()));
  torch::NoGradGuard no_grad;
  return to_flow_space(to_tensor(data));
}

void BoltzmannGenerator::fit_gaussian_mixture_base(const RowMatrix& data, const GaussianMixtureBaseOptions& options) {
  const auto y = flow_coordinates(data);
  if (!options_.potential.periodic.empty())
    throw DomainError("generator: a Gaussian-mixture base needs a potential without periodic columns");
  const auto mask = torch::zeros({dim()}, torch::TensorOptions().dtype(torch::kBool));
  set_base(BaseDensity::fit_mixture(y, mask, 1, options.components, 1e3, options.defensive));
}

void BoltzmannGenerator::set_base(const BaseDensity& base) {
  const auto& mask = base.torsion_mask();
  if (mask.dim() != 1 || mask.size(0) != dim())
    throw DomainError("generator: base density has " + std::to_string(mask.numel()) + " columns, the model " +
                      std::to_string(dim()));
  if (options_.potential.n_particles > 0)
    throw DomainError("generator: a torus base is not available for particle systems");
  std::vector<std::int64_t> cols;
  for (std::int64_t c = 0; c < mask.size(0); ++c)
    if (mask[c].item<bool>()) cols.push_back(c);
  std::vector<std::int64_t> phi_periodic(options_.potential.periodic.begin(), options_.potential.periodic.end());
  std::sort(phi_periodic.begin(), phi_periodic.end());
  if (options_.whitened && !whitening_) throw DomainError("generator: a whitened flow needs set_whitening before set_base");
  std::vector<std::int64_t> flow_cols = cols;  // the torsions the flow sees as periodic
  if (whitening_) {
    const auto& hard = whitening_->hard();
    flow_cols.erase(std::remove_if(flow_cols.begin(), flow_cols.end(),
                                   [&](std::int64_t c) { return std::find(hard.begin(), hard.end(), c) != hard.end(); }),
                    flow_cols.end());
  }
  if (phi_periodic != flow_cols)
    throw DomainError("generator: the base's periodic columns (" + std::to_string(flow_cols.size()) +
                      (whitening_ ? " outside the whitened block" : "") +
                      ") differ from the potential's periodic columns (" + std::to_string(phi_periodic.size()) +
                      "): a torus base needs a potential periodic in exactly those columns");
  for (const auto c : cols)
    if (shift_[c] != 0.0 || scale_[c] != 1.0)
      throw DomainError("generator: periodic column " + std::to_string(c) +
                        " needs the identity standardization (shift 0, scale 1)");
  base_.emplace(base);
  periodic_columns_ = std::move(cols);
  periodic_mask_ = mask.to(torch::kBool).clone();
}

void BoltzmannGenerator::set_whitening(const ConditionalGaussian& whitening) {
  if (!options_.whitened) throw DomainError("generator: a whitening needs options with \"whitened\"");
  if (whitening.dim() != dim())
    throw DomainError("generator: the whitening has " + std::to_string(whitening.dim()) + " columns, the model " +
                      std::to_string(dim()));
  if (whitening.components() != 1)
    throw DomainError("generator: the whitening needs one expert (got " + std::to_string(whitening.components()) + ")");
  std::vector<std::int64_t> soft = whitening.soft();
  std::sort(soft.begin(), soft.end());
  std::vector<std::int64_t> phi_periodic(options_.potential.periodic.begin(), options_.potential.periodic.end());
  std::sort(phi_periodic.begin(), phi_periodic.end());
  if (soft != phi_periodic)
    throw DomainError("generator: the whitening's soft torsions (" + std::to_string(soft.size()) +
                      ") are not the potential's periodic columns (" + std::to_string(phi_periodic.size()) + ")");
  whitening_.emplace(whitening);
}

torch::Tensor BoltzmannGenerator::into_flow(const torch::Tensor& y) const {
  return whitening_ ? whitening_->whiten(y) : y;
}

torch::Tensor BoltzmannGenerator::out_of_flow(const torch::Tensor& u) const {
  return whitening_ ? whitening_->unwhiten(u) : u;
}

torch::Tensor BoltzmannGenerator::base_sample(std::int64_t n, std::uint64_t seed,
                                              std::int64_t first_index) const {
  if (base_) return base_->sample(n, seed, first_index);
  const int d = dim();
  auto z = torch::empty({n, d}, kF64);
  double* p = z.data_ptr<double>();
  const auto& po = options_.potential;
  for (std::int64_t i = 0; i < n; ++i) {
    Rng rng = stream_for(seed, static_cast<std::uint64_t>(first_index + i));
    for (int k = 0; k < d; ++k) p[i * d + k] = rng.normal();
    if (po.n_particles > 0) remove_center_of_mass(p + i * d, po.n_particles, po.spatial_dim);
  }
  return z;
}

torch::Tensor BoltzmannGenerator::base_log_density(const torch::Tensor& z) const {
  if (base_) return base_->log_prob(z);
  // On the centre-of-mass-free subspace |z| is the norm in orthonormal coordinates.
  return -0.5 * (z * z).sum(1) - 0.5 * degrees_of_freedom() * kLog2Pi;
}

torch::Tensor BoltzmannGenerator::noise_sample(int steps, std::int64_t n, std::uint64_t seed,
                                               std::int64_t first_index) const {
  const int d = dim();
  auto noise = torch::empty({steps, n, d}, kF64);
  double* p = noise.data_ptr<double>();
  const auto& po = options_.potential;
  for (std::int64_t i = 0; i < n; ++i) {
    Rng rng = stream_for(seed ^ kNoiseSeedMix, static_cast<std::uint64_t>(first_index + i));
    for (int k = 0; k < steps; ++k) {
      double* row = p + (static_cast<std::int64_t>(k) * n + i) * d;
      for (int j = 0; j < d; ++j) row[j] = rng.normal();
      if (po.n_particles > 0) remove_center_of_mass(row, po.n_particles, po.spatial_dim);
    }
  }
  return noise;
}

torch::Tensor BoltzmannGenerator::coupling_transport(const torch::Tensor& z, const torch::Tensor& y,
                                                     bool with_costs) const {
  if (!with_costs) return torch::zeros({z.size(0)}, z.options());
  auto dy = y - z;
  if (base_) dy = torch::where(flow_periodic_mask_, dy - (2.0 * kPi) * torch::round(dy / (2.0 * kPi)), dy);
  return (dy * dy).sum(1) / (2.0 * options_.time);
}

void BoltzmannGenerator::check_coupling_base() const {
  if (periodic_columns_.empty() && !options_.potential.periodic.empty())
    throw DomainError("generator: a spline coupling flow with periodic columns needs a torus base (set_base)");
}

FlowBatch BoltzmannGenerator::coupling_forward(const torch::Tensor& z, bool with_costs) {
  check_coupling_base();
  const auto u = into_flow(z);
  const CouplingValues c = coupling_->forward(u);
  FlowBatch out;
  out.x = from_flow_space(out_of_flow(c.y));
  out.log_q = base_log_density(z) - c.log_det - log_scale_sum();
  out.transport = coupling_transport(u, c.y, with_costs);
  out.hjb = torch::zeros({z.size(0)}, z.options());
  return out;
}

FlowBatch BoltzmannGenerator::coupling_reverse(const torch::Tensor& x, bool with_costs) {
  check_coupling_base();
  const auto u = into_flow(to_flow_space(x));
  const CouplingValues c = coupling_->inverse(u);
  FlowBatch out;
  out.x = x;
  out.log_q = base_log_density(out_of_flow(c.y)) + c.log_det - log_scale_sum();
  out.transport = coupling_transport(c.y, u, with_costs);
  out.hjb = torch::zeros({x.size(0)}, x.options());
  return out;
}

FlowBatch BoltzmannGenerator::forward(const torch::Tensor& z, int steps, bool with_costs, const torch::Tensor& noise) {
  if (coupling_) return coupling_forward(z, with_costs);
  CnfExtras extras;
  extras.sigma = options_.noise;
  extras.noise = noise;
  const CnfState s = velocity_ ? integrate(*velocity_, z, 0.0, options_.time, steps, with_costs, extras)
                               : integrate(*phi_, into_flow(z), 0.0, options_.time, steps, with_costs, extras);
  FlowBatch out;
  out.x = from_flow_space(out_of_flow(s.x));
  out.log_q = base_log_density(z) - s.log_det - log_scale_sum();
  out.transport = s.transport;
  out.hjb = s.hjb;
  return out;
}

FlowBatch BoltzmannGenerator::reverse(const torch::Tensor& x, int steps, bool with_costs, const torch::Tensor& noise) {
  if (coupling_) return coupling_reverse(x, with_costs);
  auto y = to_flow_space(x);
  const auto& po = options_.potential;
  if (po.n_particles > 0) {
    // Data may carry a centre of mass: project it out (densities live on the subspace).
    y = y - y.reshape({y.size(0), po.n_particles, po.spatial_dim})
                .mean(1, true)
                .expand({y.size(0), po.n_particles, po.spatial_dim})
                .reshape({y.size(0), dim()});
  }
  CnfExtras extras;
  extras.sigma = options_.noise;
  extras.noise = noise;
  const CnfState s = velocity_ ? integrate(*velocity_, y, options_.time, 0.0, steps, with_costs, extras)
                               : integrate(*phi_, into_flow(y), options_.time, 0.0, steps, with_costs, extras);
  FlowBatch out;
  out.x = x;
  out.log_q = base_log_density(out_of_flow(s.x)) + s.log_det - log_scale_sum();
  out.transport = s.transport;
  out.hjb = s.hjb;
  return out;
}

FlowPath BoltzmannGenerator::forward_path(const torch::Tensor& z, int steps, bool with_costs, double decay) {
  if (options_.stochastic()) throw DomainError("generator: a path of states needs the deterministic flow (noise 0)");
  if (coupling_) throw DomainError("generator: a spline coupling flow is a single map, with no path of states");
  if (whitening_) throw DomainError("generator: a path of states needs a flow without flow_whitening");
  FlowPath path;
  CnfExtras extras;
  extras.transport_decay = decay;
  std::vector<torch::Tensor> log_det;
  extras.path_x = &path.y;
  extras.path_log_det = &log_det;
  const CnfState s = velocity_ ? integrate(*velocity_, z, 0.0, options_.time, steps, with_costs, extras)
                               : integrate(*phi_, z, 0.0, options_.time, steps, with_costs, extras);
  const auto log_base = base_log_density(z) - log_scale_sum();
  for (std::size_t k = 0; k < path.y.size(); ++k) {
    path.t.push_back(options_.time * static_cast<double>(k) / steps);
    path.x.push_back(from_flow_space(path.y[k]));
    path.log_q.push_back(log_base - log_det[k]);
  }
  path.end.x = path.x.back();
  path.end.log_q = path.log_q.back();
  path.end.transport = s.transport;
  path.end.hjb = s.hjb;
  return path;
}

std::vector<torch::Tensor> BoltzmannGenerator::parameters() {
  if (coupling_) return coupling_->parameters();
  return velocity_ ? velocity_->parameters() : phi_->parameters();
}

torch::Tensor BoltzmannGenerator::terminal_potential(const torch::Tensor& x) {
  if (velocity_) throw DomainError("generator: a free velocity has no potential (no terminal condition)");
  if (coupling_) throw DomainError("generator: a spline coupling flow has no potential (no terminal condition)");
  return phi_->value(into_flow(to_flow_space(x)), options_.time);
}

GeneratedSamples BoltzmannGenerator::sample(std::int64_t n, std::uint64_t seed, std::int64_t chunk) {
  GeneratedSamples out;
  out.x.resize(n, dim());
  out.log_q.resize(n);
  const std::int64_t chunks = (n + chunk - 1) / chunk;
  // Chunks as oneTBB tasks (grad mode is thread-local: each task disables it).
  for_each_index(static_cast<std::size_t>(chunks), [&](std::size_t c) {
    torch::NoGradGuard no_grad;
    const std::int64_t b = static_cast<std::int64_t>(c) * chunk;
    const std::int64_t m = std::min(chunk, n - b);
    const auto z = base_sample(m, seed, b);
    const auto noise = options_.stochastic() ? noise_sample(options_.sample_steps, m, seed, b) : torch::Tensor();
    const FlowBatch f = forward(z, options_.sample_steps, false, noise);
    torch::Tensor x = f.x;
    if (base_)  // wrap the periodic columns into [−π, π) (exact: see the file comment)
      x = torch::where(periodic_mask_, x - (2.0 * kPi) * torch::floor((x + kPi) / (2.0 * kPi)), x);
    out.x.middleRows(b, m) = to_matrix(x.contiguous());
    out.log_q.segment(b, m) = to_vector(f.log_q);
  });
  return out;
}

Eigen::VectorXd BoltzmannGenerator::log_q(const RowMatrix& x, std::int64_t chunk) {
  if (options_.stochastic())
    throw DomainError("generator: a stochastic flow (noise " + std::to_string(options_.noise) +
                      ") has no closed-form log q(x) of given points; its samples carry path weights");
  if (x.cols() != dim())
    throw DomainError("generator: configurations have " + std::to_string(x.cols()) +
                      " columns, the model has dim " + std::to_string(dim()));
  Eigen::VectorXd out(x.rows());
  const std::int64_t n = x.rows();
  const std::int64_t chunks = (n + chunk - 1) / chunk;
  for_each_index(static_cast<std::size_t>(chunks), [&](std::size_t c) {
    torch::NoGradGuard no_grad;
    const std::int64_t b = static_cast<std::int64_t>(c) * chunk;
    const std::int64_t m = std::min(chunk, n - b);
    const FlowBatch f = reverse(to_tensor(x.middleRows(b, m)), options_.sample_steps, false);
    out.segment(b, m) = to_vector(f.log_q);
  });
  return out;
}

void BoltzmannGenerator::write(torch::serialize::OutputArchive& archive) const {
  archive.write("format_version", c10::IValue(static_cast<int64_t>(kModelFormatVersion)));
  archive.write("options", c10::IValue(options_.to_json().dump()));
  archive.write("shift", shift_t_);
  archive.write("scale", scale_t_);
  archive.write("base", c10::IValue(base_ ? base_->to_json().dump() : std::string("null")));
  if (whitening_) archive.write("whitening", c10::IValue(whitening_->to_json().dump()));
  torch::serialize::OutputArchive params;
  phi_->save(params);
  archive.write("potential", params);
  if (velocity_) {
    torch::serialize::OutputArchive v;
    velocity_->write(v);
    archive.write("velocity", v);
  }
  if (coupling_) {
    torch::serialize::OutputArchive c;
    coupling_->save(c);
    archive.write("coupling", c);
  }
}

BoltzmannGenerator BoltzmannGenerator::read(torch::serialize::InputArchive& archive,
                                            const std::string& where) {
  c10::IValue version;
  if (!archive.try_read("format_version", version) || !version.isInt())
    throw IoError(where + ": not a boltzlab generator model (no format_version)");
  if (version.toInt() < 1 || version.toInt() > kModelFormatVersion)
    throw ConfigError(where + ": model format_version " + std::to_string(version.toInt()) +
                      " is not supported (expected 1 to " + std::to_string(kModelFormatVersion) + ")");
  c10::IValue options;
  archive.read("options", options);
  const GeneratorOptions opts = GeneratorOptions::from_json(nlohmann::json::parse(options.toStringRef()));
  BoltzmannGenerator g(opts, 0);
  torch::Tensor shift, scale;
  archive.read("shift", shift);
  archive.read("scale", scale);
  torch::serialize::InputArchive params;
  archive.read("potential", params);
  g.phi_->load(params);
  if (g.velocity_) {
    torch::serialize::InputArchive v;
    if (!archive.try_read("velocity", v)) throw IoError(where + ": a free-velocity model without its velocity");
    g.velocity_->read(v);
  }
  if (g.coupling_) {
    torch::serialize::InputArchive c;
    if (!archive.try_read("coupling", c)) throw IoError(where + ": a spline coupling model without its layers");
    g.coupling_->load(c);
  }
  g.set_standardization(to_vector(shift), to_vector(scale));
  if (opts.whitened) {
    c10::IValue w;
    if (!archive.try_read("whitening", w) || !w.isString()) throw IoError(where + ": a whitened model without its whitening");
    try {
      g.set_whitening(ConditionalGaussian::from_json(nlohmann::json::parse(w.toStringRef()), where + ": whitening"));
    } catch (const DomainError& e) {
      throw ConfigError(where + ": whitening: " + e.what());
    }
  }
  if (version.toInt() >= 2) {  // version 1: standard normal base
    c10::IValue base;
    archive.read("base", base);
    const auto j = nlohmann::json::parse(base.toStringRef());
    if (!j.is_null()) {
      try {
        g.set_base(BaseDensity::from_json(j, where + ": base"));
      } catch (const DomainError& e) {
        throw ConfigError(where + ": base: " + e.what());
      }
    }
  }
  return g;
}

void BoltzmannGenerator::save(const std::filesystem::path& path, const nlohmann::json& metadata,
                              const std::optional<PotentialIdentity>& potential) const {
  save_model_archive(path, [this](torch::serialize::OutputArchive& a) { write(a); }, metadata, potential);
}

void save_model_archive(const std::filesystem::path& path,
                        const std::function<void(torch::serialize::OutputArchive&)>& fill,
                        const nlohmann::json& metadata, const std::optional<PotentialIdentity>& potential) {
  try {
    torch::serialize::OutputArchive archive;
    fill(archive);
    archive.write("metadata", c10::IValue(metadata.dump()));
    const auto tmp = path.string() + ".tmp";
    archive.save_to(tmp);
    std::filesystem::rename(tmp, path);
  } catch (const c10::Error& e) {
    throw IoError(path.string() + ": cannot write model (" + e.what_without_backtrace() + ")");
  } catch (const std::filesystem::filesystem_error& e) {
    throw IoError(path.string() + ": cannot write model (" + e.what() + ")");
  }
  sign_model_file(path, potential);
}

bool model_archive_has(const std::filesystem::path& path, const char* version_key) {
  const std::string bytes = read_model_bytes(path);
  verify_model_bytes(path, bytes);
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size());
    c10::IValue v;
    return archive.try_read(version_key, v);
  } catch (const c10::Error&) {
    return false;  // not an archive: the flow loader reports it
  }
}

std::string read_archive_string(torch::serialize::InputArchive& archive, const char* key) {
  c10::IValue v;
  if (!archive.try_read(key, v) || !v.isString()) throw ConfigError(std::string("missing '") + key + "'");
  return v.toStringRef();
}

nlohmann::json load_model_archive(const std::filesystem::path& path, const char* version_key, int version,
                                  const std::string& what,
                                  const std::function<void(torch::serialize::InputArchive&)>& read) {
  const std::string bytes = read_model_bytes(path);
  verify_model_bytes(path, bytes);
  const std::string where = path.string();
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size());
    c10::IValue stored;
    if (!archive.try_read(version_key, stored) || !stored.isInt()) throw IoError(where + ": not a boltzlab " + what);
    if (stored.toInt() != version)
      throw ConfigError(where + ": " + what + " format_version " + std::to_string(stored.toInt()) +
                        " is not supported (expected " + std::to_string(version) + ")");
    read(archive);
    return nlohmann::json::parse(read_archive_string(archive, "metadata"));
  } catch (const Error& e) {
    if (std::string(e.what()).rfind(where, 0) == 0) throw;
    throw ConfigError(where + ": malformed " + what + " (" + e.what() + ")");
  } catch (const c10::Error& e) {
    throw IoError(where + ": malformed " + what + " (" + std::string(e.what_without_backtrace()) + ")");
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(where + ": malformed " + what + " (" + e.what() + ")");
  }
}

namespace {

/// The archive's "metadata" record (an empty object when absent).
nlohmann::json read_metadata(torch::serialize::InputArchive& archive) {
  c10::IValue meta;
  if (!archive.try_read("metadata", meta)) return nlohmann::json::object();
  if (!meta.isString()) throw ConfigError("metadata: not a string");
  return nlohmann::json::parse(meta.toStringRef());
}

}  // namespace

BoltzmannGenerator BoltzmannGenerator::load(const std::filesystem::path& path, nlohmann::json* metadata,
                                            ModelFileRecord* record) {
  // Checked before parsing: LibTorch's zip reader does not compare CRCs, so a flipped byte in
  // a tensor would otherwise load as a different model.
  const std::string bytes = read_model_bytes(path);
  const ModelFileRecord verified = verify_model_bytes(path, bytes);
  if (record) *record = verified;
  const std::string where = path.string();
  try {
    torch::serialize::InputArchive archive;
    try {
      archive.load_from(bytes.data(), bytes.size());
    } catch (const c10::Error& e) {
      throw IoError(where + ": not a readable model archive (" + e.what_without_backtrace() + ")");
    }
    BoltzmannGenerator g = read(archive, where);
    if (metadata) *metadata = read_metadata(archive);
    return g;
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw IoError(where + ": malformed model (" + std::string(e.what_without_backtrace()) + ")");
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(where + ": malformed model (" + e.what() + ")");
  } catch (const std::exception& e) {
    throw IoError(where + ": malformed model (" + e.what() + ")");
  }
}

}  // namespace boltzlab::generators
