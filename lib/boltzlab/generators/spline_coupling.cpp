#include "boltzlab/generators/spline_coupling.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "boltzlab/core/constants.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/io/config.hpp"

namespace boltzlab::generators {

namespace {

const auto kI64 = torch::TensorOptions().dtype(torch::kInt64);
constexpr double kMinBin = 1e-3;    // smallest bin width / height, as a fraction of the interval
constexpr double kMinSlope = 1e-3;  // smallest knot derivative
static_assert(kMinBin * 256 < 1.0, "the most bins validate() allows must leave room for the softmax share");

// softplus(kSlopeShift) = 1 − kMinSlope: a zero network output gives unit derivatives.
const double kSlopeShift = std::log(std::expm1(1.0 - kMinSlope));

/// Knot positions lo = c_0 < … < c_K = hi from unnormalized bin sizes (S×K → S×(K+1)).
torch::Tensor knots(const torch::Tensor& raw, double lo, double hi) {
  const auto k = raw.size(-1);
  const auto frac = kMinBin + (1.0 - kMinBin * static_cast<double>(k)) * torch::softmax(raw, -1);
  // Interior knots c_1 … c_{K−1} from the cumulative sums; the end points exactly lo and hi
  // (the sum may round the last one away from hi).
  const auto interior = lo + (hi - lo) * torch::cumsum(frac, -1).narrow(-1, 0, k - 1);
  auto sizes = raw.sizes().vec();
  sizes.back() = 1;
  return torch::cat({torch::full(sizes, lo, raw.options()), interior, torch::full(sizes, hi, raw.options())}, -1);
}

torch::Tensor wrap_angle(const torch::Tensor& x) { return x - kTwoPi * torch::floor((x + kPi) / kTwoPi); }

/// Columns as an int64 tensor.
torch::Tensor index_tensor(const std::vector<std::int64_t>& v) {
  auto t = torch::empty({static_cast<std::int64_t>(v.size())}, kI64);
  std::copy(v.begin(), v.end(), t.data_ptr<std::int64_t>());
  return t;
}

/// Uniform ±1/√fan_in weights and biases of a linear layer from stream `index` of `seed`.
void init_linear(torch::nn::Linear& layer, std::uint64_t seed, std::uint64_t index, bool zero) {
  torch::NoGradGuard no_grad;
  if (zero) {
    layer->weight.zero_();
    layer->bias.zero_();
    return;
  }
  Rng rng = stream_for(seed, index);
  const double a = 1.0 / std::sqrt(static_cast<double>(layer->weight.size(1)));
  for (auto* t : {&layer->weight, &layer->bias}) {
    auto* p = t->data_ptr<double>();
    for (std::int64_t i = 0; i < t->numel(); ++i) p[i] = a * (2.0 * rng.uniform() - 1.0);
  }
}

}  // namespace

void SplineCouplingOptions::validate() const {
  const auto fail = [](const std::string& key, const std::string& msg) {
    throw ConfigError("generator." + key + " " + msg);
  };
  if (dim < 1) fail("coupling dim", "is " + std::to_string(dim) + ", but must be >= 1");
  if (layers < 1 || layers > 64) fail("coupling_layers", "is " + std::to_string(layers) + ", but must be in 1 ... 64");
  if (hidden < 1 || hidden > 8192) fail("coupling_hidden", "is " + std::to_string(hidden) + ", but must be in 1 ... 8192");
  if (depth < 1 || depth > 16) fail("coupling_depth", "is " + std::to_string(depth) + ", but must be in 1 ... 16");
  if (bins < 2 || bins > 256) fail("spline_bins", "is " + std::to_string(bins) + ", but must be in 2 ... 256");
  if (!(bound > 0.0) || !std::isfinite(bound))
    fail("spline_bound", "is " + std::to_string(bound) + ", but must be finite and > 0");
  for (std::size_t k = 0; k < periodic.size(); ++k)
    if (periodic[k] < 0 || periodic[k] >= dim || (k > 0 && periodic[k] <= periodic[k - 1]))
      fail("coupling periodic columns", "must be sorted, distinct and in [0, dim)");
  for (std::size_t k = 0; k < condition_only.size(); ++k)
    if (condition_only[k] < 0 || condition_only[k] >= dim || (k > 0 && condition_only[k] <= condition_only[k - 1]))
      fail("coupling condition-only columns", "must be sorted, distinct and in [0, dim)");
  if (static_cast<int>(condition_only.size()) >= dim)
    fail("coupling condition-only columns", "leave no column to transform");
}

nlohmann::json SplineCouplingOptions::to_json() const {
  nlohmann::json j = {{"layers", layers}, {"hidden", hidden}, {"depth", depth}, {"bins", bins}, {"bound", bound}};
  if (!condition_only.empty()) j["condition_only"] = condition_only;  // absent: every column is transformed
  return j;
}

SplineCouplingOptions SplineCouplingOptions::from_json(const nlohmann::json& j, const SplineCouplingOptions& base) {
  JsonReader r(j, "generator model: coupling");
  SplineCouplingOptions o = base;
  o.layers = static_cast<int>(r.get_int("layers"));
  o.hidden = static_cast<int>(r.get_int("hidden"));
  o.depth = static_cast<int>(r.get_int("depth"));
  o.bins = static_cast<int>(r.get_int("bins"));
  o.bound = r.get_double("bound");
  o.condition_only.clear();
  if (r.has("condition_only")) {
    const nlohmann::json& c = r.get_json("condition_only");
    if (!c.is_array()) r.fail("condition_only", "must be an array of column indices");
    for (const auto& v : c) {
      if (!v.is_number_integer()) r.fail("condition_only", "must be an array of column indices");
      o.condition_only.push_back(v.get<int>());
    }
  }
  r.finish();
  o.validate();
  return o;
}

SplineValues rational_quadratic_spline(const torch::Tensor& x_in, const torch::Tensor& raw_w,
                                       const torch::Tensor& raw_h, const torch::Tensor& raw_d, double bound,
                                       bool circular, bool inverse) {
  const double lo = circular ? -kPi : -bound, hi = circular ? kPi : bound;
  const auto bins = raw_w.size(-1);
  const auto x_all = circular ? wrap_angle(x_in) : x_in;
  const auto inside = circular ? torch::ones_like(x_all, torch::kBool) : (x_all >= lo) & (x_all <= hi);
  const auto x = torch::clamp(x_all, lo, hi).unsqueeze(-1);  // S×1, safe inside the interval

  const auto cx = knots(raw_w, lo, hi), cy = knots(raw_h, lo, hi);  // S×(K+1)
  auto slopes = kMinSlope + torch::nn::functional::softplus(raw_d + kSlopeShift);
  auto sizes = slopes.sizes().vec();
  sizes.back() = 1;
  slopes = circular ? torch::cat({slopes, slopes.narrow(-1, 0, 1)}, -1)
                    : torch::cat({torch::ones(sizes, slopes.options()), slopes, torch::ones(sizes, slopes.options())}, -1);

  // Bin index k with c_k ≤ x < c_{k+1}: the number of interior knots ≤ x.
  const auto& search = inverse ? cy : cx;
  const auto interior = search.narrow(-1, 1, bins - 1).detach().contiguous();
  const auto k = torch::searchsorted(interior, x.detach().contiguous(), /*out_int32=*/false, /*right=*/true);
  const auto k1 = k + 1;
  const auto x_k = cx.gather(-1, k), w_k = cx.gather(-1, k1) - x_k;
  const auto y_k = cy.gather(-1, k), h_k = cy.gather(-1, k1) - y_k;
  const auto d_k = slopes.gather(-1, k), d_k1 = slopes.gather(-1, k1);
  const auto s_k = h_k / w_k;
  const auto beta = d_k1 + d_k - 2.0 * s_k;

  torch::Tensor xi, y;
  if (!inverse) {
    xi = ((x - x_k) / w_k).clamp(0.0, 1.0);
  } else {
    const auto dy = x - y_k;  // x holds the spline's output value here
    const auto a = h_k * (s_k - d_k) + dy * beta;
    const auto b = h_k * d_k - dy * beta;
    const auto c = -s_k * dy;
    const auto disc = torch::clamp_min(b * b - 4.0 * a * c, 0.0);
    xi = (2.0 * c / (-b - torch::sqrt(disc))).clamp(0.0, 1.0);
  }
  const auto om = xi * (1.0 - xi);
  const auto denom = s_k + beta * om;
  const auto deriv_num = s_k * s_k * (d_k1 * xi * xi + 2.0 * s_k * om + d_k * (1.0 - xi) * (1.0 - xi));
  const auto log_g = torch::log(deriv_num) - 2.0 * torch::log(denom);  // log g'(x) at the forward input
  if (!inverse) {
    y = y_k + h_k * (s_k * xi * xi + d_k * om) / denom;
  } else {
    y = x_k + xi * w_k;
  }
  SplineValues out;
  out.y = torch::where(inside, y.squeeze(-1), x_all);
  out.log_det = torch::where(inside, (inverse ? -log_g : log_g).squeeze(-1), torch::zeros_like(x_all));
  return out;
}

SplineCouplingFlowImpl::SplineCouplingFlowImpl(const SplineCouplingOptions& options, std::uint64_t seed)
    : options_(options) {
  options_.validate();
  const int d = options_.dim;
  std::vector<bool> is_periodic(static_cast<std::size_t>(d), false);
  for (const int c : options_.periodic) is_periodic[static_cast<std::size_t>(c)] = true;
  const std::int64_t bins = options_.bins;
  std::vector<bool> is_fixed(static_cast<std::size_t>(d), false);
  for (const int c : options_.condition_only) is_fixed[static_cast<std::size_t>(c)] = true;
  std::vector<std::int64_t> free_columns;
  for (std::int64_t c = 0; c < d; ++c)
    if (!is_fixed[static_cast<std::size_t>(c)]) free_columns.push_back(c);
  std::vector<std::int64_t> order;
  std::uint64_t stream = 0;
  for (int l = 0; l < options_.layers; ++l) {
    const int pair = l / 2;
    order = free_columns;
    if (pair == 0) {  // even columns, then odd ones
      std::stable_partition(order.begin(), order.end(), [](std::int64_t c) { return c % 2 == 0; });
    } else {
      Rng rng = stream_for(kCouplingMaskSeed, static_cast<std::uint64_t>(pair));
      for (std::size_t i = order.size(); i > 1; --i)
        std::swap(order[i - 1], order[static_cast<std::size_t>(rng() % i)]);
    }
    const std::size_t half = (order.size() + 1) / 2;
    std::vector<std::int64_t> first(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(half));
    std::vector<std::int64_t> second(order.begin() + static_cast<std::ptrdiff_t>(half), order.end());
    auto& transformed = l % 2 == 0 ? first : second;
    auto& condition = l % 2 == 0 ? second : first;
    for (const int c : options_.condition_only) condition.push_back(c);
    std::sort(transformed.begin(), transformed.end());
    std::sort(condition.begin(), condition.end());
    std::vector<std::int64_t> t_real, t_per, c_real, c_per;
    for (const auto c : transformed) (is_periodic[static_cast<std::size_t>(c)] ? t_per : t_real).push_back(c);
    for (const auto c : condition) (is_periodic[static_cast<std::size_t>(c)] ? c_per : c_real).push_back(c);

    Layer layer;
    const std::string tag = std::to_string(l);
    layer.transformed_real = register_buffer("t_real_" + tag, index_tensor(t_real));
    layer.transformed_periodic = register_buffer("t_periodic_" + tag, index_tensor(t_per));
    layer.condition_real = register_buffer("c_real_" + tag, index_tensor(c_real));
    layer.condition_periodic = register_buffer("c_periodic_" + tag, index_tensor(c_per));
    const std::int64_t inputs = std::max<std::int64_t>(1, static_cast<std::int64_t>(c_real.size() + 2 * c_per.size()));
    const std::int64_t outputs = static_cast<std::int64_t>(t_real.size()) * (3 * bins - 1) +
                                 static_cast<std::int64_t>(t_per.size()) * (3 * bins);
    layer.net = torch::nn::Sequential();
    std::int64_t width = inputs;
    for (int h = 0; h < options_.depth; ++h) {
      torch::nn::Linear lin(torch::nn::LinearOptions(width, options_.hidden));
      lin->to(torch::kFloat64);
      init_linear(lin, seed, stream++, false);
      layer.net->push_back(lin);
      layer.net->push_back(torch::nn::SiLU());
      width = options_.hidden;
    }
    torch::nn::Linear out(torch::nn::LinearOptions(width, outputs));
    out->to(torch::kFloat64);
    init_linear(out, seed, stream++, true);
    layer.net->push_back(out);
    layer.net = register_module("layer_" + tag, layer.net);
    layers_.push_back(std::move(layer));
  }
}

torch::Tensor SplineCouplingFlowImpl::apply_layer(Layer& layer, const torch::Tensor& y, bool inverse,
                                                  torch::Tensor& log_det) {
  const auto b = y.size(0);
  std::vector<torch::Tensor> features;
  if (layer.condition_real.numel() > 0) features.push_back(y.index_select(1, layer.condition_real));
  if (layer.condition_periodic.numel() > 0) {
    const auto a = y.index_select(1, layer.condition_periodic);
    features.push_back(torch::cos(a));
    features.push_back(torch::sin(a));
  }
  const auto input = features.empty() ? torch::zeros({b, 1}, y.options()) : torch::cat(features, 1);
  const auto params = layer.net->forward(input);
  const std::int64_t bins = options_.bins;
  const std::int64_t n_real = layer.transformed_real.numel(), n_per = layer.transformed_periodic.numel();
  auto out = y;
  if (n_real > 0) {
    const auto p = params.narrow(1, 0, n_real * (3 * bins - 1)).reshape({b, n_real, 3 * bins - 1});
    const auto s = rational_quadratic_spline(y.index_select(1, layer.transformed_real), p.narrow(2, 0, bins),
                                             p.narrow(2, bins, bins), p.narrow(2, 2 * bins, bins - 1), options_.bound,
                                             false, inverse);
    out = out.index_copy(1, layer.transformed_real, s.y);
    log_det = log_det + s.log_det.sum(1);
  }
  if (n_per > 0) {
    const auto p = params.narrow(1, n_real * (3 * bins - 1), n_per * 3 * bins).reshape({b, n_per, 3 * bins});
    const auto s = rational_quadratic_spline(y.index_select(1, layer.transformed_periodic), p.narrow(2, 0, bins),
                                             p.narrow(2, bins, bins), p.narrow(2, 2 * bins, bins), options_.bound,
                                             true, inverse);
    out = out.index_copy(1, layer.transformed_periodic, s.y);
    log_det = log_det + s.log_det.sum(1);
  }
  return out;
}

CouplingValues SplineCouplingFlowImpl::forward(const torch::Tensor& z) {
  CouplingValues r;
  r.log_det = torch::zeros({z.size(0)}, z.options());
  r.y = z;
  for (auto& layer : layers_) r.y = apply_layer(layer, r.y, false, r.log_det);
  return r;
}

CouplingValues SplineCouplingFlowImpl::inverse(const torch::Tensor& y) {
  CouplingValues r;
  r.log_det = torch::zeros({y.size(0)}, y.options());
  r.y = y;
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) r.y = apply_layer(*it, r.y, true, r.log_det);
  return r;
}

std::int64_t SplineCouplingFlowImpl::parameter_count() {
  std::int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

}  // namespace boltzlab::generators
