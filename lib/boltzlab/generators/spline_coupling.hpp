#pragma once
/// \file spline_coupling.hpp
/// Coupling flows with monotone rational-quadratic splines: the discrete-time family beside the
/// OT-Flow CNF (generator.hpp, `"flow": "spline_coupling"`), with an exact log-determinant.
///
/// Rational-quadratic spline (Durkan, Bekasov, Murray & Papamakarios, "Neural spline flows",
/// NeurIPS 2019, §3.1, after Gregory & Delbourgo 1982): on [lo, hi], K bins with knots
/// (x_k, y_k), k = 0 … K, and positive derivatives δ_k at the knots. In bin k, with
/// ξ = (x − x_k)/w_k ∈ [0, 1], w_k = x_{k+1} − x_k, h_k = y_{k+1} − y_k, s_k = h_k/w_k,
///
///   g(x)  = y_k + h_k [s_k ξ² + δ_k ξ(1−ξ)] / [s_k + (δ_{k+1} + δ_k − 2 s_k) ξ(1−ξ)],
///   g'(x) = s_k² [δ_{k+1} ξ² + 2 s_k ξ(1−ξ) + δ_k (1−ξ)²] / [s_k + (δ_{k+1} + δ_k − 2 s_k) ξ(1−ξ)]²,
///
/// and the inverse is the root in [0, 1] of the quadratic a ξ² + b ξ + c = 0,
///   a = h_k (s_k − δ_k) + (y − y_k) β,  b = h_k δ_k − (y − y_k) β,  c = −s_k (y − y_k),
///   β = δ_{k+1} + δ_k − 2 s_k,   ξ = 2c / (−b − √(b² − 4ac))   (the stable form of their eq. 29).
/// Bin widths and heights are a softmax of the network's outputs (each at least 10⁻³ of the
/// interval), derivatives 10⁻³ + softplus(·). Two boundary conditions:
///   - real columns: the interval is [−B, B] (B = `bound`), δ_0 = δ_K = 1 and the map is the
///     identity outside (linear tails), so the spline is a C¹ bijection of ℝ;
///   - periodic columns (torsions): the interval is [−π, π] with δ_0 = δ_K, so the map is a C¹
///     diffeomorphism of the circle that fixes the point −π ≡ π (circular splines: Rezende,
///     Papamakarios, Racanière, Albergo, Kanwar, Shanahan & Cranmer, "Normalizing flows on tori and
///     spheres", ICML 2020, §3). A circle density is reached from any other by such a map (its
///     CDF composed with the other's inverse CDF), so the fixed point costs no expressiveness.
///
/// Coupling layers (Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR
/// 2017): layer l transforms the columns T_l by splines whose parameters an MLP computes from the
/// other columns C_l; the Jacobian is triangular, so log|det| is the sum of the transformed
/// columns' log g'. The network sees real columns as they are and periodic ones as (cos, sin),
/// so the map is 2π-periodic in every periodic column. Columns are split in layer pairs: pair 0
/// alternates even and odd columns, pair p ≥ 1 takes the halves of a permutation drawn from
/// Rng stream (kCouplingMaskSeed, p) (Fisher–Yates): each pair transforms every column once.
/// Columns listed in `condition_only` take no part in the split: they are in every layer's C_l.
/// The split is a function of (dim, condition_only, layer) only and is saved with the model as buffers.
///
/// Initialization: hidden layers uniform ±1/√fan_in from the model's seed, output layers zero,
/// so a fresh flow is exactly the identity (uniform bins, unit derivatives).
///
/// All tensors are float64 (log q and importance weights need it; see generator.hpp).
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace boltzlab::generators {

/// Stream of the column permutations of layer pairs p ≥ 1 (file comment).
inline constexpr std::uint64_t kCouplingMaskSeed = 0x5C0F1E5D2A11B4C3ULL;

/// Architecture of a spline coupling flow.
struct SplineCouplingOptions {
  int dim = 2;                ///< d (set from the target)
  std::vector<int> periodic;  ///< columns with period 2π (sorted, distinct; set from the target)
  int layers = 8;             ///< coupling layers (even: each pair transforms every column once)
  int hidden = 128;           ///< width of the conditioner MLP's hidden layers
  int depth = 2;              ///< hidden layers of the conditioner MLP
  int bins = 8;               ///< K: spline bins
  double bound = 5.0;         ///< B: the real columns' spline interval [−B, B] (flow space)
  /// Columns no layer transforms; every layer's conditioner sees them (sorted, distinct, fewer
  /// than dim). A molecule's soft torsions, so that the flow reshapes the hard coordinates'
  /// law given them and leaves the base's soft marginal as it is.
  std::vector<int> condition_only;

  /// \throws ConfigError naming the generator key ("generator.coupling_layers is 0, …").
  void validate() const;
  /// The architecture keys (dim and periodic columns come from the model's potential options).
  nlohmann::json to_json() const;
  /// Reads the keys of to_json() into a copy of `base` (which carries dim and periodic).
  static SplineCouplingOptions from_json(const nlohmann::json& j, const SplineCouplingOptions& base);
};

/// One elementwise spline evaluation.
struct SplineValues {
  torch::Tensor y;        ///< the transformed values (shape of x)
  torch::Tensor log_det;  ///< log |∂y/∂x| elementwise (shape of x)
};

/// The rational-quadratic spline of the file comment, elementwise over x (any shape S) with
/// unnormalized parameters `raw_w`, `raw_h` (S×K) and `raw_d` (S×(K−1) for real columns, S×K for
/// circular ones). Real columns: interval [−bound, bound], identity outside; circular: x is
/// first wrapped into [−π, π). With `inverse`, returns g⁻¹(x) and log |∂g⁻¹/∂x|.
/// Differentiable in x and the parameters.
SplineValues rational_quadratic_spline(const torch::Tensor& x, const torch::Tensor& raw_w, const torch::Tensor& raw_h,
                                       const torch::Tensor& raw_d, double bound, bool circular, bool inverse);

/// A map with its log-determinant, for rows of a batch.
struct CouplingValues {
  torch::Tensor y;        ///< B×d
  torch::Tensor log_det;  ///< B: log |det ∂y/∂z| (forward) or log |det ∂z/∂y| (inverse)
};

class SplineCouplingFlowImpl : public torch::nn::Module {
 public:
  /// A fresh flow (the identity map; hidden layers from `seed`). \throws ConfigError (validate).
  SplineCouplingFlowImpl(const SplineCouplingOptions& options, std::uint64_t seed);
  const SplineCouplingOptions& options() const { return options_; }

  /// z → y = F(z) with log |det ∂F/∂z|. Periodic columns of the output lie in [−π, π].
  CouplingValues forward(const torch::Tensor& z);
  /// y → z = F⁻¹(y) with log |det ∂F⁻¹/∂y|; periodic columns of y may be any representative.
  CouplingValues inverse(const torch::Tensor& y);
  /// The number of trainable scalars.
  std::int64_t parameter_count();

 private:
  struct Layer {
    torch::Tensor transformed_real, transformed_periodic;  ///< int64 column lists of T_l
    torch::Tensor condition_real, condition_periodic;      ///< int64 column lists of C_l
    torch::nn::Sequential net{nullptr};
  };
  /// Runs layer l forward or inverse on y.
  torch::Tensor apply_layer(Layer& layer, const torch::Tensor& y, bool inverse, torch::Tensor& log_det);

  SplineCouplingOptions options_;
  std::vector<Layer> layers_;
};
TORCH_MODULE(SplineCouplingFlow);

}  // namespace boltzlab::generators
