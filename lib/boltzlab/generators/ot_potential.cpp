#include "boltzlab/generators/ot_potential.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab::generators {

namespace {
const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);
}

void OtPotentialOptions::validate() const {
  auto bad = [](const std::string& what) { throw ConfigError("ot_potential: " + what); };
  if (dim < 1) bad("dim is " + std::to_string(dim) + ", but must be >= 1");
  if (width < 1) bad("width is " + std::to_string(width) + ", but must be >= 1");
  if (layers < 2) bad("layers is " + std::to_string(layers) + ", but must be >= 2 (nTh)");
  if (rank == 0 || rank < -1) bad("rank is " + std::to_string(rank) + ", but must be >= 1 (or -1)");
  if (n_particles < 0 || spatial_dim < 0) bad("particle layout must be non-negative");
  if (n_particles > 0 && n_particles * spatial_dim != dim)
    bad("particles " + std::to_string(n_particles) + " x " + std::to_string(spatial_dim) +
        " != dim " + std::to_string(dim));
  if (!(init_scale >= 0.0) || !std::isfinite(init_scale)) bad("init_scale must be >= 0");
  for (std::size_t j = 0; j < periodic.size(); ++j) {
    if (periodic[j] < 0 || periodic[j] >= dim)
      bad("periodic column " + std::to_string(periodic[j]) + " is outside [0, " + std::to_string(dim) + ")");
    if (j > 0 && periodic[j] <= periodic[j - 1]) bad("periodic columns must be sorted and distinct");
  }
  if (!periodic.empty() && n_particles > 0) bad("periodic columns are not supported for particle systems");
  if (pair_basis < 0) bad("pair_basis is " + std::to_string(pair_basis) + ", but must be >= 0");
  if (pair_basis > 0 && n_particles <= 0) bad("pair_basis > 0 needs a particle system");
  if (pair_time_basis < 1) bad("pair_time_basis is " + std::to_string(pair_time_basis) + ", but must be >= 1");
  if (!(pair_range > 0.0) || !std::isfinite(pair_range)) bad("pair_range must be > 0");
  if (!network && pair_basis == 0) bad("network = false needs a pair term (pair_basis > 0)");
  if (pair_channels < 0) bad("pair_channels is " + std::to_string(pair_channels) + ", but must be >= 0");
  if (pair_channels > 0 && pair_basis == 0) bad("pair_channels > 0 needs pair_basis > 0");
}

nlohmann::json OtPotentialOptions::to_json() const {
  return {{"dim", dim},         {"width", width},
          {"layers", layers},   {"rank", rank},
          {"n_particles", n_particles}, {"spatial_dim", spatial_dim},
          {"init_scale", init_scale}, {"periodic", periodic},
          {"network", network}, {"pair_basis", pair_basis},
          {"pair_time_basis", pair_time_basis}, {"pair_range", pair_range},
          {"pair_channels", pair_channels}};
}

OtPotentialOptions OtPotentialOptions::from_json(const nlohmann::json& j) {
  JsonReader r(j, "ot_potential");
  OtPotentialOptions o;
  o.dim = static_cast<int>(r.get_int("dim"));
  o.width = static_cast<int>(r.get_int("width"));
  o.layers = static_cast<int>(r.get_int("layers"));
  o.rank = static_cast<int>(r.get_int("rank", -1));
  o.n_particles = static_cast<int>(r.get_int("n_particles", 0));
  o.spatial_dim = static_cast<int>(r.get_int("spatial_dim", 0));
  o.init_scale = r.get_double("init_scale", 0.1);
  if (r.has("periodic")) {
    const Json& p = r.get_json("periodic");
    if (!p.is_array()) r.fail("periodic", "must be an array of column indices");
    for (const auto& v : p) {
      if (!v.is_number_integer()) r.fail("periodic", "entries must be integers");
      o.periodic.push_back(v.get<int>());
    }
  }
  o.network = r.get_bool("network", true);
  o.pair_basis = static_cast<int>(r.get_int("pair_basis", 0));
  o.pair_time_basis = static_cast<int>(r.get_int("pair_time_basis", 4));
  o.pair_range = r.get_double("pair_range", 4.0);
  o.pair_channels = static_cast<int>(r.get_int("pair_channels", 0));
  r.finish();
  o.validate();
  return o;
}

torch::Tensor log_2cosh(const torch::Tensor& a) {
  const auto abs_a = a.abs();
  return abs_a + torch::log1p(torch::exp(-2.0 * abs_a));
}

OtPotentialImpl::OtPotentialImpl(const OtPotentialOptions& options) : options_(options) {
  options_.validate();
  const int d = options_.dim, m = options_.width, f = options_.n_features();
  const int r = options_.rank > 0 ? options_.rank : std::min(10, d + 1);
  options_.rank = r;
  h_ = 1.0 / (options_.layers - 1);
  const auto p = static_cast<std::int64_t>(options_.periodic.size());
  periodic_index_ = torch::empty({p}, torch::kInt64);
  periodic_mask_ = torch::zeros({1, d}, kF64);
  scatter_ = torch::zeros({p, d}, kF64);
  for (std::int64_t j = 0; j < p; ++j) {
    const int k = options_.periodic[static_cast<std::size_t>(j)];
    periodic_index_[j] = k;
    periodic_mask_[0][k] = 1.0;
    scatter_[j][k] = 1.0;
  }
  if (options_.network) {
    k0_ = register_parameter("K0", torch::zeros({m, f}, kF64));
    b0_ = register_parameter("b0", torch::zeros({m}, kF64));
    for (int i = 1; i < options_.layers; ++i) {
      k_.push_back(register_parameter("K" + std::to_string(i), torch::zeros({m, m}, kF64)));
      bk_.push_back(register_parameter("b" + std::to_string(i) + "_layer", torch::zeros({m}, kF64)));
    }
    w_ = register_parameter("w", torch::zeros({m}, kF64));
    a_ = register_parameter("A", torch::zeros({r, f}, kF64));
    b_ = register_parameter("b", torch::zeros({f}, kF64));
    c_ = register_parameter("c", torch::zeros({1}, kF64));
  }
  if (options_.pair_basis > 0) {
    pair_c_mat_ = register_parameter("pair_C", torch::zeros({options_.pair_basis + 1, options_.pair_time_basis}, kF64));
    pair_c_time_ = register_parameter("pair_c", torch::zeros({options_.pair_time_basis}, kF64));
  }
  if (options_.pair_channels > 0) {
    const int c = options_.pair_channels;
    mb_b_mat_ = register_parameter("mb_B", torch::zeros({c, options_.pair_basis}, kF64));
    mb_bias_ = register_parameter("mb_b", torch::zeros({c}, kF64));
    mb_a_mat_ = register_parameter("mb_A", torch::zeros({c, options_.pair_time_basis}, kF64));
  }
  reset_parameters(0);
}

void OtPotentialImpl::reset_parameters(std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  auto uniform = [&](torch::Tensor& p, double bound) {
    p.copy_(torch::rand(p.sizes(), gen, kF64) * (2.0 * bound) - bound);
  };
  if (options_.pair_basis > 0) {  // zero pair term: the initial flow is the network's (or the identity)
    pair_c_mat_.zero_();
    pair_c_time_.zero_();
  }
  if (options_.pair_channels > 0) {
    // Random densities (B ~ U(±1/√K), from a generator of its own so that the network's
    // draws do not change), amplitudes a(t) = 0: the term starts at 0 and its
    // gradient reaches B once a moves, as with w of the ResNet.
    auto gen_mb = at::detail::createCPUGenerator(seed + 0x6d62);
    const double bound = 1.0 / std::sqrt(static_cast<double>(options_.pair_basis));
    mb_b_mat_.copy_(torch::rand(mb_b_mat_.sizes(), gen_mb, kF64) * (2.0 * bound) - bound);
    mb_bias_.zero_();
    mb_a_mat_.zero_();
  }
  if (!options_.network) return;
  // nn.Linear-style uniform(±1/√fan_in) for the ResNet; w = 0, b = c = 0 so that the
  // initial flow is the near-identity map generated by the small quadratic term
  // (gradients reach K_i once w moves away from 0).
  const double s = options_.init_scale;
  const double fan_in = options_.n_features();
  uniform(k0_, 1.0 / std::sqrt(fan_in));
  uniform(b0_, 1.0 / std::sqrt(fan_in));
  for (std::size_t i = 0; i < k_.size(); ++i) {
    uniform(k_[i], 1.0 / std::sqrt(static_cast<double>(options_.width)));
    uniform(bk_[i], 1.0 / std::sqrt(static_cast<double>(options_.width)));
  }
  w_.zero_();
  uniform(a_, s / std::sqrt(fan_in));
  b_.zero_();
  c_.zero_();
}

torch::Tensor OtPotentialImpl::effective_input_weights(const torch::Tensor& w) const {
  if (options_.n_particles <= 0) return w;
  const int d = options_.dim;
  const auto rows = w.size(0);
  auto wx = w.narrow(1, 0, d).reshape({rows, options_.n_particles, options_.spatial_dim});
  // W P: subtract the mean over particles of each spatial column group.
  wx = (wx - wx.mean(1, /*keepdim=*/true)).reshape({rows, d});
  return torch::cat({wx, w.narrow(1, d, 1)}, 1);
}

torch::Tensor OtPotentialImpl::time_column(const torch::Tensor& x, const torch::Tensor& t) const {
  if (options_.pair_basis > 0 || !options_.network)
    throw DomainError("OtPotential: per-row times need a network potential without a pair term");
  if (t.dim() != 1 || t.size(0) != x.size(0))
    throw DomainError("OtPotential: per-row times must be a vector of one time per row of x");
  return t.to(x.options()).unsqueeze(1);
}

torch::Tensor OtPotentialImpl::input(const torch::Tensor& x, const torch::Tensor& time) const {
  if (options_.periodic.empty()) return torch::cat({x, time}, 1);
  // (x_k or cos x_k | sin x_k of the periodic columns | t)
  const auto first = x * (1.0 - periodic_mask_) + torch::cos(x) * periodic_mask_;
  return torch::cat({first, torch::sin(x.index_select(1, periodic_index_)), time}, 1);
}

torch::Tensor OtPotentialImpl::value(const torch::Tensor& x, double t) {
  if (!options_.network) return pair_value(x, t);
  const auto phi = network_value(x, torch::full({x.size(0), 1}, t, x.options()));
  return options_.pair_basis > 0 ? phi + pair_value(x, t) : phi;
}

torch::Tensor OtPotentialImpl::value(const torch::Tensor& x, const torch::Tensor& t) {
  return network_value(x, time_column(x, t));
}

PotentialDerivatives OtPotentialImpl::derivatives(const torch::Tensor& x, const torch::Tensor& t,
                                                  bool with_laplacian) {
  return network_derivatives(x, time_column(x, t), with_laplacian);
}

torch::Tensor OtPotentialImpl::network_value(const torch::Tensor& x, const torch::Tensor& time) {
  const auto s = input(x, time);
  const auto k0 = effective_input_weights(k0_);
  const auto a = effective_input_weights(a_);
  auto u = log_2cosh(torch::addmm(b0_, s, k0.t()));
  for (std::size_t i = 0; i < k_.size(); ++i)
    u = u + h_ * log_2cosh(torch::addmm(bk_[i], u, k_[i].t()));
  const auto as = torch::mm(s, a.t());
  const auto b = effective_input_weights(b_.unsqueeze(0)).squeeze(0);
  return torch::mv(u, w_) + 0.5 * (as * as).sum(1) + torch::mv(s, b) + c_;
}

torch::Tensor OtPotentialImpl::resnet_laplacian(torch::Tensor jac, const std::vector<torch::Tensor>& tanh_a,
                                                const std::vector<torch::Tensor>& z_above) const {
  // J stored transposed, B×d×m, so that K_i J is one (B·d)×m by m×m product.
  const auto batch = jac.size(0), d = jac.size(1), m = jac.size(2);
  const std::size_t n_res = tanh_a.size() - 1;
  torch::Tensor lap = torch::zeros({batch}, jac.options());
  for (std::size_t i = 1; i <= n_res; ++i) {
    const auto kj = torch::mm(jac.reshape({batch * d, m}), k_[i - 1].t()).reshape({batch, d, m});
    const auto sq = (kj * kj).sum(1);  // B×m: ‖(K_i J_{i−1})_j‖²
    lap = lap + h_ * ((1.0 - tanh_a[i] * tanh_a[i]) * z_above[i] * sq).sum(1);
    if (i < n_res) jac = jac + h_ * tanh_a[i].unsqueeze(1) * kj;
  }
  return lap;
}

PotentialDerivatives OtPotentialImpl::derivatives(const torch::Tensor& x, double t,
                                                  bool with_laplacian) {
  if (!options_.network) {
    PotentialDerivatives out;
    out.grad_x = torch::zeros_like(x);
    out.dt = torch::zeros({x.size(0)}, x.options());
    if (with_laplacian) out.laplacian = torch::zeros({x.size(0)}, x.options());
    add_pair_derivatives(x, t, with_laplacian, out);
    return out;
  }
  PotentialDerivatives out = network_derivatives(x, torch::full({x.size(0), 1}, t, x.options()), with_laplacian);
  if (options_.pair_basis > 0) add_pair_derivatives(x, t, with_laplacian, out);
  return out;
}

PotentialDerivatives OtPotentialImpl::network_derivatives(const torch::Tensor& x, const torch::Tensor& time,
                                                          bool with_laplacian) {
  const int d = options_.dim;
  const auto s = input(x, time);
  const auto k0 = effective_input_weights(k0_);
  const auto a = effective_input_weights(a_);
  const std::size_t n_res = k_.size();

  // Forward pass: pre-activations a_i and tanh(a_i).
  std::vector<torch::Tensor> tanh_a(n_res + 1);
  const auto a0 = torch::addmm(b0_, s, k0.t());
  tanh_a[0] = torch::tanh(a0);
  auto u = log_2cosh(a0);
  for (std::size_t i = 0; i < n_res; ++i) {
    const auto ai = torch::addmm(bk_[i], u, k_[i].t());
    tanh_a[i + 1] = torch::tanh(ai);
    if (i + 1 < n_res) u = u + h_ * log_2cosh(ai);
  }

  // Backward sweep: z_above[i] = ∂Φ/∂u_i (row vectors), z_{i} = z_{i+1} + h (tanh a_i ⊙ z_{i+1}) K_i.
  std::vector<torch::Tensor> z_above(n_res + 1);
  auto z = w_.unsqueeze(0).expand({x.size(0), options_.width});
  for (std::size_t i = n_res; i >= 1; --i) {
    z_above[i] = z;
    z = z + h_ * torch::mm(tanh_a[i] * z, k_[i - 1]);
  }
  z_above[0] = z;
  // ∇_s Φ = (tanh a₀ ⊙ z₁) K₀ + s AᵀA + b.
  const auto b = effective_input_weights(b_.unsqueeze(0)).squeeze(0);
  const auto grad_s = torch::mm(tanh_a[0] * z, k0) + torch::mm(torch::mm(s, a.t()), a) + b;

  PotentialDerivatives out;
  out.dt = grad_s.select(1, options_.n_features() - 1);
  if (!options_.periodic.empty()) {
    periodic_derivatives(x, grad_s, tanh_a, z_above, k0, a, with_laplacian, out);
    return out;
  }
  out.grad_x = grad_s.narrow(1, 0, d);
  if (!with_laplacian) return out;

  // Laplacian: opening layer, then the ResNet layers with the Jacobian J (B×m×d).
  const auto k0x = k0.narrow(1, 0, d);
  auto lap = torch::mv((1.0 - tanh_a[0] * tanh_a[0]) * z_above[0], (k0x * k0x).sum(1));
  if (n_res > 0) lap = lap + resnet_laplacian(tanh_a[0].unsqueeze(1) * k0x.t().unsqueeze(0), tanh_a, z_above);
  const auto ax = a.narrow(1, 0, d);
  out.laplacian = lap + (ax * ax).sum();
  return out;
}

void OtPotentialImpl::periodic_derivatives(const torch::Tensor& x, const torch::Tensor& grad_s,
                                           const std::vector<torch::Tensor>& tanh_a,
                                           const std::vector<torch::Tensor>& z_above, const torch::Tensor& k0,
                                           const torch::Tensor& a, bool with_laplacian,
                                           PotentialDerivatives& out) const {
  const int d = options_.dim;
  const auto p = periodic_index_.size(0);
  const auto sin_x = torch::sin(x), cos_x = torch::cos(x);
  const auto cos_p = cos_x.index_select(1, periodic_index_);  // B×p
  const auto sin_p = sin_x.index_select(1, periodic_index_);  // B×p
  // G column k: e_k (non-periodic) or −sin x_k e_k + cos x_k e_{d+j}. coef1 = diagonal
  // coefficient on the first d features, coef2 = coefficient on the sine features.
  const auto coef1 = (1.0 - periodic_mask_) - periodic_mask_ * sin_x;  // B×d
  const auto g_first = grad_s.narrow(1, 0, d);
  const auto g_sin = grad_s.narrow(1, d, p);
  // ∇ₓΦ = Gᵀ ∇_sΦ̂: coef1 ⊙ ∂Φ̂/∂f_{1..d} + (cos x_p ⊙ ∂Φ̂/∂s_p) scattered to the periodic columns.
  out.grad_x = coef1 * g_first + torch::mm(cos_p * g_sin, scatter_);
  if (!with_laplacian) return;

  // Per-sample effective input columns W G for W = K₀ (m rows) and A (r rows): B×rows×d.
  auto effective = [&](const torch::Tensor& w) {
    const auto wx = w.narrow(1, 0, d).unsqueeze(0) * coef1.unsqueeze(1);
    const auto ws = w.narrow(1, d, p).unsqueeze(0) * cos_p.unsqueeze(1);  // B×rows×p
    return wx + torch::matmul(ws, scatter_);
  };
  const auto k0g = effective(k0);  // B×m×d
  // Opening layer: Σ_j σ''(a₀ⱼ) z₁ⱼ ‖(K₀G)ⱼ‖².
  auto lap = ((1.0 - tanh_a[0] * tanh_a[0]) * z_above[0] * (k0g * k0g).sum(2)).sum(1);
  const std::size_t n_res = tanh_a.size() - 1;
  if (n_res > 0) lap = lap + resnet_laplacian(tanh_a[0].unsqueeze(1) * k0g.transpose(1, 2), tanh_a, z_above);
  const auto ag = effective(a);  // B×r×d: the quadratic term's ‖A G‖²_F
  // Curvature of the feature map: ∂²(cos, sin)/∂x_k² = −(cos, sin).
  const auto curvature = (periodic_mask_ * cos_x * g_first).sum(1) + (sin_p * g_sin).sum(1);
  out.laplacian = lap + (ag * ag).sum({1, 2}) - curvature;
}


namespace {

/// Pair geometry of a batch of particle configurations over the unordered pairs i < j
/// (P = n(n−1)/2 of them, in a fixed order): differences x_i − x_j (B×P×D), distances
/// r_ij (B×P) and the pair index tensors (P each).
struct PairGeometry {
  torch::Tensor diff, r, first, second;
};

PairGeometry pair_geometry(const torch::Tensor& x, int n, int dim) {
  PairGeometry g;
  const auto idx = torch::triu_indices(n, n, 1);
  g.first = idx[0];
  g.second = idx[1];
  const auto pos = x.reshape({x.size(0), n, dim});
  g.diff = pos.index_select(1, g.first) - pos.index_select(1, g.second);
  g.r = torch::sqrt((g.diff * g.diff).sum(2));
  return g;
}

/// Per-particle sums of per-pair values v (B×P×…): out_i = Σ_{pairs (i, j)} v + sign·Σ_{pairs (j, i)} v.
torch::Tensor scatter_to_particles(const torch::Tensor& v, const torch::Tensor& first, const torch::Tensor& second,
                                   int n, double sign) {
  auto sizes = v.sizes().vec();
  sizes[1] = n;
  return torch::zeros(sizes, v.options()).index_add(1, first, v).index_add(1, second, sign * v);
}

/// (t^0, …, t^{L−1}) and its derivative.
std::pair<torch::Tensor, torch::Tensor> time_powers(int count, double t) {
  auto p = torch::empty({count}, kF64), dp = torch::empty({count}, kF64);
  for (int l = 0; l < count; ++l) {
    p[l] = std::pow(t, l);
    dp[l] = l == 0 ? 0.0 : l * std::pow(t, l - 1);
  }
  return {p, dp};
}

}  // namespace

std::array<torch::Tensor, 3> OtPotentialImpl::pair_basis_functions(const torch::Tensor& r, bool derivatives) const {
  const int k = options_.pair_basis;
  const double range = options_.pair_range;
  const double s = k > 1 ? range / (k - 1) : range;
  const double inv_s2 = 1.0 / (s * s);
  const auto mu = torch::linspace(0.0, k > 1 ? range : 0.0, k, kF64);  // K centres
  const auto rr = r.unsqueeze(-1);
  // ψ_k = g(r − μ) + g(r + μ): with a = r ∓ μ, g = exp(−a²/2s²), g' = −a g/s², g'' = (a²/s² − 1) g/s².
  const auto am = rr - mu, ap = rr + mu;
  const auto gm = torch::exp(-0.5 * inv_s2 * am * am), gp = torch::exp(-0.5 * inv_s2 * ap * ap);
  std::array<torch::Tensor, 3> out;
  out[0] = torch::cat({rr * rr, gm + gp}, -1);
  if (!derivatives) return out;
  out[1] = torch::cat({2.0 * rr, -inv_s2 * (am * gm + ap * gp)}, -1);
  out[2] = torch::cat({torch::full_like(rr, 2.0),
                       inv_s2 * ((inv_s2 * am * am - 1.0) * gm + (inv_s2 * ap * ap - 1.0) * gp)},
                      -1);
  return out;
}

torch::Tensor OtPotentialImpl::pair_value(const torch::Tensor& x, double t) const {
  const int n = options_.n_particles;
  const auto g = pair_geometry(x, n, options_.spatial_dim);
  const auto [tau, dtau] = time_powers(options_.pair_time_basis, t);
  const auto psi = pair_basis_functions(g.r, false)[0];  // B×P×(K+1)
  auto phi = torch::matmul(psi, torch::mv(pair_c_mat_, tau)).sum(1) + torch::dot(pair_c_time_, tau);
  if (options_.pair_channels > 0) {
    const auto rho = channel_densities(psi, g.first, g.second);
    phi = phi + torch::matmul(log_2cosh(rho), torch::mv(mb_a_mat_, tau)).sum(1);
  }
  return phi;
}

torch::Tensor OtPotentialImpl::channel_densities(const torch::Tensor& psi, const torch::Tensor& first,
                                                 const torch::Tensor& second) const {
  const auto phi_c = torch::matmul(psi.narrow(-1, 1, options_.pair_basis), mb_b_mat_.t());  // B×P×C
  return scatter_to_particles(phi_c, first, second, options_.n_particles, 1.0) + mb_bias_;
}

void OtPotentialImpl::add_pair_derivatives(const torch::Tensor& x, double t, bool with_laplacian,
                                           PotentialDerivatives& der) const {
  const int n = options_.n_particles, dim = options_.spatial_dim;
  const auto g = pair_geometry(x, n, dim);
  const auto [tau, dtau] = time_powers(options_.pair_time_basis, t);
  const auto basis = pair_basis_functions(g.r, true);
  const auto w = torch::mv(pair_c_mat_, tau), dw = torch::mv(pair_c_mat_, dtau);
  auto f1_over_r = torch::matmul(basis[1], w) / g.r;  // B×P: f'(r)/r of the pair term
  der.dt = der.dt + torch::matmul(basis[0], dw).sum(1) + torch::dot(pair_c_time_, dtau);
  if (with_laplacian)  // each unordered pair contributes f'' + (D − 1) f'/r through x_i and through x_j
    der.laplacian = der.laplacian + 2.0 * (torch::matmul(basis[2], w) + (dim - 1.0) * f1_over_r).sum(1);
  if (options_.pair_channels > 0) {
    // Many-body channels Σ_i Σ_c a_c(t) F(ρ_ic), ρ_ic = b_c + Σ_{j≠i} φ_c(r_ij) (file comment).
    const auto b_t = mb_b_mat_.t();
    const auto bump = [&](int order) { return torch::matmul(basis[order].narrow(-1, 1, options_.pair_basis), b_t); };
    const auto phi1 = bump(1);                        // B×P×C: φ_c'(r)
    const auto rho = channel_densities(basis[0], g.first, g.second);  // B×n×C
    const auto fp = torch::tanh(rho);                 // F'(ρ)
    const auto a = torch::mv(mb_a_mat_, tau), da = torch::mv(mb_a_mat_, dtau);
    der.dt = der.dt + torch::matmul(log_2cosh(rho), da).sum(1);
    // ∇: pair (i, j) acts like a pair term with f'(r) = Σ_c a_c (F'(ρ_ic) + F'(ρ_jc)) φ_c'(r).
    const auto fp_sum = fp.index_select(1, g.first) + fp.index_select(1, g.second);  // B×P×C
    f1_over_r = f1_over_r + torch::matmul(fp_sum * phi1, a) / g.r;
    if (with_laplacian) {
      // ΔΦ = Σ_i Σ_c a_c [F''(ρ_ic) |∇ρ_ic|² + F'(ρ_ic) Δρ_ic], with
      // |∇ρ_ic|² = |Σ_j φ_c'(r_ij) n_ij|² + Σ_j φ_c'(r_ij)², Δρ_ic = Σ_j 2 (φ_c'' + (D − 1) φ_c'/r).
      const auto unit = g.diff / g.r.unsqueeze(2);  // B×P×D
      const auto grad_rho = scatter_to_particles(phi1.unsqueeze(3) * unit.unsqueeze(2), g.first, g.second, n, -1.0);
      const auto sq = (grad_rho * grad_rho).sum(3) + scatter_to_particles(phi1 * phi1, g.first, g.second, n, 1.0);
      const auto lap_rho = scatter_to_particles(2.0 * (bump(2) + (dim - 1.0) * phi1 / g.r.unsqueeze(2)), g.first,
                                                g.second, n, 1.0);
      der.laplacian = der.laplacian + torch::matmul((1.0 - fp * fp) * sq + fp * lap_rho, a).sum(1);
    }
  }
  // Pair (i, j) pushes x_i by f'/r (x_i − x_j) and x_j by the opposite.
  const auto force = f1_over_r.unsqueeze(2) * g.diff;  // B×P×D
  der.grad_x = der.grad_x + scatter_to_particles(force, g.first, g.second, n, -1.0).reshape({x.size(0), n * dim});
}

}  // namespace boltzlab::generators
