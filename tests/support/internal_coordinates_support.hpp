#pragma once
// Shared fixtures of the internal-coordinate and molecular-space tests: the alanine
// dipeptide PDB structure, perturbed and rotated copies, autograd Jacobians.
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>

#include "support/torch_doctest.hpp"  // torch first: its CHECK macro must not shadow doctest's

#include "boltzlab/core/error.hpp"
#include "boltzlab/molecules/internal_coordinates.hpp"

namespace boltzlab::test {


inline constexpr double kPi = 3.14159265358979323846;

// Coordinates (Å) of data/alanine_dipeptide/alanine_dipeptide.pdb, the
// project's reference ACE-ALA-NME structure, in its atom order.
inline const double kAlanineXyz[66] = {
    15.908, 11.969, 16.089,  // 0 H1 ACE
    15.377, 12.899, 15.886,  // 1 CH3 ACE
    14.471, 12.94,  16.49,   // 2 H2 ACE
    15.112, 12.945, 14.83,   // 3 H3 ACE
    16.244, 14.114, 16.225,  // 4 C ACE
    17.382, 13.964, 16.665,  // 5 O ACE
    15.699, 15.314, 16.018,  // 6 N ALA
    14.759, 15.386, 15.655,  // 7 H ALA
    16.418, 16.541, 16.3,    // 8 CA ALA
    16.683, 16.572, 17.357,  // 9 HA ALA
    17.696, 16.63,  15.473,  // 10 CB ALA
    17.446, 16.609, 14.413,  // 11 HB1 ALA
    18.215, 17.56,  15.705,  // 12 HB2 ALA
    18.343, 15.785, 15.711,  // 13 HB3 ALA
    15.568, 17.761, 15.975,  // 14 C ALA
    14.428, 17.628, 15.534,  // 15 O ALA
    16.126, 18.953, 16.194,  // 16 N NME
    17.066, 19.012, 16.558,  // 17 H NME
    15.42,  20.19,  15.926,  // 18 C NME
    14.425, 19.965, 15.54,   // 19 H1 NME
    15.33,  20.766, 16.847,  // 20 H2 NME
    15.972, 20.771, 15.187,  // 21 H3 NME
};

/// The hand-written alanine dipeptide Z-matrix (tests/data/zmatrix_alanine_dipeptide.json, a
/// user-supplied Z-matrix file): anchors N(6), CA(8), C(14); φ = (4, 6, 8, 14), ψ = (6, 8, 14, 16).
inline molecules::InternalCoordinates alanine_ic() {
  return molecules::InternalCoordinates::from_json_file(std::string(BOLTZLAB_TEST_DATA) + "/zmatrix_alanine_dipeptide.json");
}

/// (φ, ψ) of alanine dipeptide internal coordinates of `ic`: B × 2.
inline torch::Tensor alanine_phi_psi(const molecules::InternalCoordinates& ic, const torch::Tensor& internal) {
  return molecules::torsion_columns(ic, internal, {ic.find_torsion(4, 6, 8, 14), ic.find_torsion(6, 8, 14, 16)});
}

inline torch::TensorOptions f64() { return torch::TensorOptions().dtype(torch::kDouble); }

inline torch::Tensor alanine_pdb() { return torch::from_blob(const_cast<double*>(kAlanineXyz), {1, 66}, f64()).clone(); }

/// Rotation R = Rz(α) Ry(β) Rz(γ) (ZYZ Euler angles) from 0-d tensors, differentiable.
inline torch::Tensor euler_zyz(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& g) {
  auto rz = [](const torch::Tensor& t) {
    auto c = torch::cos(t), s = torch::sin(t), o = torch::zeros_like(t), l = torch::ones_like(t);
    return torch::stack({torch::stack({c, -s, o}), torch::stack({s, c, o}), torch::stack({o, o, l})});
  };
  auto ry = [](const torch::Tensor& t) {
    auto c = torch::cos(t), s = torch::sin(t), o = torch::zeros_like(t), l = torch::ones_like(t);
    return torch::stack({torch::stack({c, o, s}), torch::stack({o, l, o}), torch::stack({-s, o, c})});
  };
  return torch::matmul(rz(a), torch::matmul(ry(b), rz(g)));
}

/// B perturbed copies of the PDB structure (Gaussian noise `sigma` Å per coordinate),
/// each rigidly rotated and translated, so nothing is in the anchor frame by accident.
inline torch::Tensor perturbed_alanine(std::int64_t batch, double sigma, std::uint64_t seed) {
  torch::manual_seed(seed);
  auto x = alanine_pdb().repeat({batch, 1}) + sigma * torch::randn({batch, 66}, f64());
  std::vector<torch::Tensor> out;
  for (std::int64_t b = 0; b < batch; ++b) {
    auto angles = torch::rand({3}, f64()) * 2.0 * kPi;
    auto r = euler_zyz(angles[0], angles[1] * 0.5, angles[2]);
    auto xyz = x[b].view({22, 3});
    out.push_back((torch::matmul(xyz, r.t()) + torch::randn({3}, f64()) * 5.0).reshape({66}));
  }
  return torch::stack(out);
}

/// Dense Jacobian ∂f/∂p (m × d) of f: ℝ^d → ℝ^m by one reverse pass per output.
inline torch::Tensor autograd_jacobian(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                const torch::Tensor& p) {
  auto x = p.detach().clone().requires_grad_(true);
  auto y = f(x);
  std::vector<torch::Tensor> rows;
  for (std::int64_t i = 0; i < y.size(0); ++i) {
    rows.push_back(torch::autograd::grad({y[i]}, {x}, {}, /*retain_graph=*/true)[0]);
  }
  return torch::stack(rows);
}

inline double logabsdet(const torch::Tensor& m) { return std::get<1>(torch::linalg::slogdet(m)).item<double>(); }

inline double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

/// Angle differences modulo 2π, in [−π, π).
inline torch::Tensor circular_difference(const torch::Tensor& a, const torch::Tensor& b) {
  auto d = a - b;
  return d - 2.0 * kPi * torch::floor((d + kPi) / (2.0 * kPi));
}

template <class Fn>
inline void check_config_error(Fn&& fn, const std::string& fragment) {
  try {
    fn();
    FAIL("expected ConfigError containing '" << fragment << "'");
  } catch (const ConfigError& e) {
    INFO("message: " << e.what());
    CHECK(std::string(e.what()).find(fragment) != std::string::npos);
  }
}

}  // namespace boltzlab::test
