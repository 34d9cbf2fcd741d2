#include "boltzlab/generators/fused_otflow.hpp"

#include <cmath>
#include <string>

#include <Eigen/Dense>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"

namespace boltzlab::generators {

namespace {

using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vec = Eigen::VectorXd;
using RowVec = Eigen::RowVectorXd;

/// Parameters of Φ (nTh = 2) as Eigen arrays.
struct Params {
  Mat k0, k1, a;      // m×(d+1), m×m, r×(d+1)
  RowVec b0, b1, w, b;  // m, m, m, d+1
};

Mat to_mat(const torch::Tensor& t) {
  const auto c = t.detach().contiguous();
  return Eigen::Map<const Mat>(c.data_ptr<double>(), c.size(0), c.size(1));
}
RowVec to_vec(const torch::Tensor& t) {
  const auto c = t.detach().contiguous();
  return Eigen::Map<const RowVec>(c.data_ptr<double>(), c.numel());
}

/// Forward activations of one rate evaluation at the batch S = [X, t].
struct Cache {
  Mat s, t0, u0, t1, d0, d1, z0, g, sa;
  std::vector<Mat> q, mk;  // per x-coordinate k: Q_k = τ₀ ⊙ K₀[:,k]ᵀ, M_k = Q_k K₁ᵀ
  Mat sq;                  // Σ_k M_k ⊙ M_k
  Vec lap;
};

/// ∇ₛΦ (rows of g) and ΔₓΦ (lap) at S, keeping what the adjoint needs.
void forward(const Params& p, int d, const Mat& x, double t, Cache& c) {
  const Eigen::Index n = x.rows(), m = p.k0.rows();
  c.s.resize(n, d + 1);
  c.s.leftCols(d) = x;
  c.s.col(d).setConstant(t);
  Mat a0 = c.s * p.k0.transpose();
  a0.rowwise() += p.b0;
  // With e = exp(−2|a|): tanh a = sgn(a)(1 − e)/(1 + e), log 2cosh a = |a| + log1p(e),
  // 1 − tanh² a = 4e/(1 + e)²: one exp per activation.
  c.t0.resize(n, m);
  c.u0.resize(n, m);
  c.d0.resize(n, m);
  for (Eigen::Index i = 0; i < a0.size(); ++i) {
    const double v = a0.data()[i], av = std::abs(v), e = std::exp(-2.0 * av), inv = 1.0 / (1.0 + e);
    const double th = (1.0 - e) * inv;
    c.t0.data()[i] = v < 0.0 ? -th : th;
    c.u0.data()[i] = av + std::log1p(e);
    c.d0.data()[i] = 4.0 * e * inv * inv;
  }
  Mat a1 = c.u0 * p.k1.transpose();
  a1.rowwise() += p.b1;
  c.t1.resize(n, m);
  c.d1.resize(n, m);
  for (Eigen::Index i = 0; i < a1.size(); ++i) {
    const double v = a1.data()[i], e = std::exp(-2.0 * std::abs(v)), inv = 1.0 / (1.0 + e);
    const double th = (1.0 - e) * inv;
    c.t1.data()[i] = v < 0.0 ? -th : th;
    c.d1.data()[i] = 4.0 * e * inv * inv;
  }
  // z₀ = w + K₁ᵀ(τ₁ ⊙ w) (rows)
  c.z0 = (c.t1.array().rowwise() * p.w.array()).matrix() * p.k1;
  c.z0.rowwise() += p.w;
  // ∇ₛΦ = (τ₀ ⊙ z₀) K₀ + (s Aᵀ) A + b
  c.sa = c.s * p.a.transpose();
  c.g = (c.t0.array() * c.z0.array()).matrix() * p.k0 + c.sa * p.a;
  c.g.rowwise() += p.b;
  // ΔₓΦ
  const Vec n0 = p.k0.leftCols(d).rowwise().squaredNorm();
  c.lap = (c.d0.array() * c.z0.array()).matrix() * n0;
  c.q.resize(d);
  c.mk.resize(d);
  c.sq.setZero(n, m);
  for (int k = 0; k < d; ++k) {
    c.q[k] = (c.t0.array().rowwise() * p.k0.col(k).transpose().array()).matrix();
    c.mk[k] = c.q[k] * p.k1.transpose();
    c.sq.array() += c.mk[k].array().square();
  }
  c.lap += (c.d1.array() * c.sq.array()).matrix() * p.w.transpose();
  c.lap.array() += p.a.leftCols(d).squaredNorm();
}

/// Vector–Jacobian product: given ḡ = ∂J/∂(∇ₛΦ) (n×(d+1)) and l̄ = ∂J/∂(ΔₓΦ) (n),
/// accumulates ∂J/∂θ into gr and returns s̄ = ∂J/∂s (n×(d+1)). Each line is the
/// reverse of a forward line (notation of fused_otflow.hpp; X̄ := ∂J/∂X).
Mat vjp(const Params& p, int d, const Cache& c, const Mat& gbar, const Vec& lbar, Params& gr) {
  const double lsum = lbar.sum();
  // lap ∋ ‖Aₓ‖²_F:  Āₓ += 2 (Σ l̄) Aₓ
  gr.a.leftCols(d) += 2.0 * lsum * p.a.leftCols(d);
  // lap ∋ Σᵢ D₁ᵢ wᵢ sqᵢ:  w̄ += Σ_b l̄ D₁⊙sq,  D̄₁ = l̄ (w⊙sq),  s̄q = l̄ (D₁⊙w)
  gr.w += lbar.transpose() * (c.d1.array() * c.sq.array()).matrix();
  Mat d1bar = (c.sq.array().rowwise() * p.w.array()).colwise() * lbar.array();
  Mat sqbar = (c.d1.array().rowwise() * p.w.array()).colwise() * lbar.array();
  Mat t0bar = Mat::Zero(c.t0.rows(), c.t0.cols());
  for (int k = 0; k < d; ++k) {
    // sq ∋ M_k²: M̄_k = 2 s̄q ⊙ M_k;  M_k = Q_k K₁ᵀ: K̄₁ += M̄_kᵀ Q_k, Q̄_k = M̄_k K₁
    const Mat mbar = 2.0 * (sqbar.array() * c.mk[k].array()).matrix();
    gr.k1.noalias() += mbar.transpose() * c.q[k];
    const Mat qbar = mbar * p.k1;
    // Q_k = τ₀ ⊙ K₀[:,k]ᵀ:  τ̄₀ += Q̄_k ⊙ K₀[:,k]ᵀ,  K̄₀[:,k] += Σ_b Q̄_k ⊙ τ₀
    t0bar.array() += qbar.array().rowwise() * p.k0.col(k).transpose().array();
    gr.k0.col(k) += (qbar.array() * c.t0.array()).colwise().sum().transpose().matrix();
  }
  // lap ∋ Σⱼ D₀ⱼ z₀ⱼ n₀ⱼ, n₀ⱼ = ‖K₀ⱼ,ₓ‖²
  const Vec n0 = p.k0.leftCols(d).rowwise().squaredNorm();
  Mat d0bar = (c.z0.array().rowwise() * n0.transpose().array()).colwise() * lbar.array();
  Mat z0bar = (c.d0.array().rowwise() * n0.transpose().array()).colwise() * lbar.array();
  const RowVec n0bar = lbar.transpose() * (c.d0.array() * c.z0.array()).matrix();
  gr.k0.leftCols(d) += 2.0 * (p.k0.leftCols(d).array().colwise() * n0bar.transpose().array()).matrix();
  // g = P K₀ + (S Aᵀ) A + b with P = τ₀ ⊙ z₀
  gr.b += gbar.colwise().sum();
  const Mat pm = (c.t0.array() * c.z0.array()).matrix();
  gr.k0.noalias() += pm.transpose() * gbar;
  const Mat pbar = gbar * p.k0.transpose();
  gr.a.noalias() += c.sa.transpose() * gbar;
  const Mat sabar = gbar * p.a.transpose();
  gr.a.noalias() += sabar.transpose() * c.s;
  Mat sbar = sabar * p.a;
  t0bar.array() += pbar.array() * c.z0.array();
  z0bar.array() += pbar.array() * c.t0.array();
  // z₀ = w + V K₁ with V = τ₁ ⊙ w:  w̄ += Σ z̄₀,  K̄₁ += Vᵀ z̄₀,  V̄ = z̄₀ K₁ᵀ
  gr.w += z0bar.colwise().sum();
  const Mat v = (c.t1.array().rowwise() * p.w.array()).matrix();
  gr.k1.noalias() += v.transpose() * z0bar;
  const Mat vbar = z0bar * p.k1.transpose();
  Mat t1bar = (vbar.array().rowwise() * p.w.array()).matrix();
  gr.w += (vbar.array() * c.t1.array()).colwise().sum().matrix();
  // Dᵢ = 1 − τᵢ²:  τ̄ᵢ −= 2 τᵢ ⊙ D̄ᵢ
  t1bar.array() -= 2.0 * c.t1.array() * d1bar.array();
  t0bar.array() -= 2.0 * c.t0.array() * d0bar.array();
  // τ₁ = tanh a₁:  ā₁ = τ̄₁ ⊙ D₁;  a₁ = u₀ K₁ᵀ + b₁:  b̄₁ += Σ ā₁, K̄₁ += ā₁ᵀ u₀, ū₀ = ā₁ K₁
  const Mat a1bar = (t1bar.array() * c.d1.array()).matrix();
  gr.b1 += a1bar.colwise().sum();
  gr.k1.noalias() += a1bar.transpose() * c.u0;
  const Mat u0bar = a1bar * p.k1;
  // u₀ = σ(a₀), σ' = tanh;  τ₀ = tanh a₀:  ā₀ = ū₀ ⊙ τ₀ + τ̄₀ ⊙ D₀
  const Mat a0bar = (u0bar.array() * c.t0.array() + t0bar.array() * c.d0.array()).matrix();
  // a₀ = s K₀ᵀ + b₀:  b̄₀ += Σ ā₀,  K̄₀ += ā₀ᵀ s,  s̄ += ā₀ K₀
  gr.b0 += a0bar.colwise().sum();
  gr.k0.noalias() += a0bar.transpose() * c.s;
  sbar.noalias() += a0bar * p.k0;
  return sbar;
}

Params zeros_like(const Params& p) {
  Params z;
  z.k0 = Mat::Zero(p.k0.rows(), p.k0.cols());
  z.k1 = Mat::Zero(p.k1.rows(), p.k1.cols());
  z.a = Mat::Zero(p.a.rows(), p.a.cols());
  z.b0 = RowVec::Zero(p.b0.size());
  z.b1 = RowVec::Zero(p.b1.size());
  z.w = RowVec::Zero(p.w.size());
  z.b = RowVec::Zero(p.b.size());
  return z;
}

struct ChunkResult {
  double neg_log_q = 0.0, transport = 0.0, hjb = 0.0;  // sums over the chunk's rows
  Params grad;
};

constexpr double kRk4Weight[4] = {1.0, 2.0, 2.0, 1.0};
constexpr double kRk4Node[4] = {0.0, 0.5, 0.5, 1.0};

/// Forward RK4 (target → base) and the discrete adjoint for rows of one chunk.
/// `inv_total` = 1/B of the whole batch (the loss is a mean over the batch).
ChunkResult run_chunk(const Params& p, int d, const Mat& x_data, const FusedOtFlowOptions& o,
                      double inv_total) {
  const Eigen::Index n = x_data.rows();
  const double dt = -o.t_end / o.steps, adt = std::abs(dt);
  std::vector<Cache> caches(4 * o.steps);  // per-stage activations for the adjoint
  Mat x = x_data;
  Vec ell = Vec::Zero(n), cost_l = Vec::Zero(n), cost_r = Vec::Zero(n);
  // Forward: x' = x + dt/6 Σ wⱼ kⱼ, stage inputs Xⱼ = x + cⱼ dt kⱼ₋₁.
  for (int k = 0; k < o.steps; ++k) {
    const double t = o.t_end + k * dt;
    Mat incr = Mat::Zero(n, d);
    Mat vel;  // previous stage's dx = −∇ₓΦ
    for (int j = 0; j < 4; ++j) {
      Cache& c = caches[4 * k + j];
      forward(p, d, j == 0 ? x : Mat(x + (kRk4Node[j] * dt) * vel), t + kRk4Node[j] * dt, c);
      vel = -c.g.leftCols(d);
      incr += kRk4Weight[j] * vel;
      const Vec half_sq = 0.5 * c.g.leftCols(d).rowwise().squaredNorm();
      ell -= (dt / 6.0 * kRk4Weight[j]) * c.lap;
      cost_l += (adt / 6.0 * kRk4Weight[j]) * half_sq;
      cost_r += (adt / 6.0 * kRk4Weight[j]) * (c.g.col(d) - half_sq).cwiseAbs();
    }
    x += (dt / 6.0) * incr;
  }
  ChunkResult r;
  // −log ρ₀(x(0)) and its gradient, the adjoint's starting value (standard normal: x).
  Mat base_grad;
  Vec base_nll;
  if (o.base_neg_log_density) {
    base_nll = o.base_neg_log_density(x, base_grad);
  } else {
    base_nll = (0.5 * x.rowwise().squaredNorm()).array() + 0.5 * d * std::log(2.0 * M_PI);
    base_grad = x;
  }
  r.neg_log_q = (base_nll - ell).sum();
  r.transport = cost_l.sum();
  r.hjb = cost_r.sum();
  r.grad = zeros_like(p);

  // Adjoint: J = (1/B) Σ [−log ρ₀(x(0)) − ℓ + α_L L + α_R R].
  Mat xbar = inv_total * base_grad;
  const double ellbar = -inv_total, lbar_cost = o.alpha_transport * inv_total,
               rbar_cost = o.alpha_hjb * inv_total;
  for (int k = o.steps - 1; k >= 0; --k) {
    Mat velbar[4];  // ∂J/∂kⱼ (dx rates)
    for (int j = 0; j < 4; ++j) velbar[j] = (dt / 6.0 * kRk4Weight[j]) * xbar;
    Mat xbar_new = xbar;
    for (int j = 3; j >= 0; --j) {
      const Cache& c = caches[4 * k + j];
      const double wl = dt / 6.0 * kRk4Weight[j] * ellbar;       // ∂J/∂(dℓ/dt) = −∂J/∂Δ
      const double wL = adt / 6.0 * kRk4Weight[j] * lbar_cost;   // ∂J/∂(½|∇ₓΦ|²)
      const double wR = adt / 6.0 * kRk4Weight[j] * rbar_cost;   // ∂J/∂|∂ₜΦ − ½|∇ₓΦ|²|
      // Rates: dx = −∇ₓΦ, dℓ = −Δ, dL = ½|∇ₓΦ|², dR = |∂ₜΦ − ½|∇ₓΦ|²|, so
      //   ḡₓ = −k̄ⱼ + wL ∇ₓΦ − wR sgn(∂ₜΦ − ½|∇ₓΦ|²) ∇ₓΦ,  ḡₜ = wR sgn(·),  l̄ = −wl.
      Mat gbar(n, d + 1);
      const auto gx = c.g.leftCols(d);
      const Vec half_sq = 0.5 * gx.rowwise().squaredNorm();
      const Vec sgn = (c.g.col(d) - half_sq).unaryExpr([](double v) {
        return static_cast<double>((v > 0.0) - (v < 0.0));
      });
      const Vec coef = (wL - wR * sgn.array()).matrix();
      gbar.leftCols(d) = -velbar[j] + (gx.array().colwise() * coef.array()).matrix();
      gbar.col(d) = wR * sgn;
      const Vec lbar = Vec::Constant(n, -wl);
      const Mat sbar = vjp(p, d, c, gbar, lbar, r.grad);
      const auto xjbar = sbar.leftCols(d);
      xbar_new += xjbar;
      if (j > 0) velbar[j - 1] += (kRk4Node[j] * dt) * xjbar;
    }
    xbar = std::move(xbar_new);
  }
  return r;
}

}  // namespace

void FusedOtFlowOptions::validate() const {
  if (steps < 1) throw ConfigError("fused_otflow: steps is " + std::to_string(steps) + ", but must be >= 1");
  if (chunk_size < 1)
    throw ConfigError("fused_otflow: chunk_size is " + std::to_string(chunk_size) + ", but must be >= 1");
  if (!(t_end > 0.0)) throw ConfigError("fused_otflow: t_end must be > 0");
  if (!(alpha_transport >= 0.0) || !(alpha_hjb >= 0.0))
    throw ConfigError("fused_otflow: alpha_transport and alpha_hjb must be >= 0");
}

bool fused_otflow_supports(const OtPotentialOptions& o) {
  return o.layers == 2 && o.n_particles == 0 && o.periodic.empty();
}

FusedOtFlowResult fused_otflow_loss(OtPotentialImpl& phi, const RowMatrix& x,
                                    const FusedOtFlowOptions& options) {
  options.validate();
  const auto& po = phi.options();
  if (!fused_otflow_supports(po))
    throw ConfigError("fused_otflow: only layers = 2 without particles is supported (layers = " +
                      std::to_string(po.layers) + ", n_particles = " + std::to_string(po.n_particles) + ")");
  const int d = po.dim;
  if (x.cols() != d || x.rows() < 1)
    throw DomainError("fused_otflow: data have " + std::to_string(x.cols()) + " columns, expected " +
                      std::to_string(d));
  auto named = phi.named_parameters();
  Params p;
  p.k0 = to_mat(named["K0"]);
  p.k1 = to_mat(named["K1"]);
  p.a = to_mat(named["A"]);
  p.b0 = to_vec(named["b0"]);
  p.b1 = to_vec(named["b1_layer"]);
  p.w = to_vec(named["w"]);
  p.b = to_vec(named["b"]);

  const Eigen::Index n = x.rows();
  const Eigen::Index cs = options.chunk_size;
  const std::size_t n_chunks = static_cast<std::size_t>((n + cs - 1) / cs);
  std::vector<ChunkResult> parts(n_chunks);
  const double inv_total = 1.0 / static_cast<double>(n);
  for_each_index(n_chunks, [&](std::size_t i) {
    const Eigen::Index begin = static_cast<Eigen::Index>(i) * cs;
    const Eigen::Index rows = std::min(cs, n - begin);
    const Mat xc = x.middleRows(begin, rows);
    parts[i] = run_chunk(p, d, xc, options, inv_total);
  }, Execution::kParallel, 1);

  // Fixed-order reduction over chunks.
  Params g = zeros_like(p);
  FusedOtFlowResult out;
  for (const auto& part : parts) {
    g.k0 += part.grad.k0; g.k1 += part.grad.k1; g.a += part.grad.a;
    g.b0 += part.grad.b0; g.b1 += part.grad.b1; g.w += part.grad.w; g.b += part.grad.b;
    out.neg_log_q += part.neg_log_q; out.transport += part.transport; out.hjb += part.hjb;
  }
  out.neg_log_q *= inv_total;
  out.transport *= inv_total;
  out.hjb *= inv_total;
  out.loss = out.neg_log_q + options.alpha_transport * out.transport + options.alpha_hjb * out.hjb;

  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto mat_tensor = [&](const Mat& m) {
    return torch::from_blob(const_cast<double*>(m.data()), {m.rows(), m.cols()}, f64).clone();
  };
  auto vec_tensor = [&](const RowVec& v) {
    return torch::from_blob(const_cast<double*>(v.data()), {v.size()}, f64).clone();
  };
  for (const auto& item : named) {
    const std::string& key = item.key();
    if (key == "K0") out.grads.push_back(mat_tensor(g.k0));
    else if (key == "K1") out.grads.push_back(mat_tensor(g.k1));
    else if (key == "A") out.grads.push_back(mat_tensor(g.a));
    else if (key == "b0") out.grads.push_back(vec_tensor(g.b0));
    else if (key == "b1_layer") out.grads.push_back(vec_tensor(g.b1));
    else if (key == "w") out.grads.push_back(vec_tensor(g.w));
    else if (key == "b") out.grads.push_back(vec_tensor(g.b));
    else out.grads.push_back(torch::zeros_like(item.value()));  // c: ∂J/∂c = 0
  }
  return out;
}

FusedOtFlowResult fused_otflow_backward(OtPotentialImpl& phi, const RowMatrix& x,
                                        const FusedOtFlowOptions& options) {
  FusedOtFlowResult r = fused_otflow_loss(phi, x, options);
  auto params = phi.parameters();
  torch::NoGradGuard ng;
  for (std::size_t i = 0; i < params.size(); ++i) {
    auto& grad = params[i].mutable_grad();
    if (grad.defined()) grad.add_(r.grads[i]);
    else grad = r.grads[i].clone();
  }
  return r;
}

}  // namespace boltzlab::generators
