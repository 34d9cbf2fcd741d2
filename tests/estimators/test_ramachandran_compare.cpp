// Ramachandran sample-quality metrics (estimators/ramachandran_compare.hpp) against
// values computed by hand, identities (identical inputs, weights = replication,
// disjoint supports) and, for the standard errors, the exact binomial / Markov-chain
// variances. Statistical checks use fixed seeds; tolerances are derived in comments.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <unistd.h>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/rng.hpp"
#include "boltzlab/estimators/ramachandran_compare.hpp"
#include "boltzlab/io/npy.hpp"

using namespace boltzlab;
namespace fs = std::filesystem;

namespace {

constexpr double kPi = 3.14159265358979323846;

/// Centre of bin k of `bins` equal bins over [−π, π).
double centre(Eigen::Index k, Eigen::Index bins) {
  return -kPi + (static_cast<double>(k) + 0.5) * 2 * kPi / static_cast<double>(bins);
}

/// N×2 matrix of (φ, ψ) rows.
RowMatrix frames(const std::vector<std::pair<double, double>>& rows) {
  RowMatrix m(static_cast<Eigen::Index>(rows.size()), 2);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    m(static_cast<Eigen::Index>(i), 0) = rows[i].first;
    m(static_cast<Eigen::Index>(i), 1) = rows[i].second;
  }
  return m;
}

/// n frames, the first `in_a` at the centre of 64-bin A = (10, 20), the rest at B = (40, 50).
RowMatrix two_bins(int n, int in_a) {
  std::vector<std::pair<double, double>> rows;
  for (int i = 0; i < n; ++i)
    rows.emplace_back(i < in_a ? centre(10, 64) : centre(40, 64), i < in_a ? centre(20, 64) : centre(50, 64));
  return frames(rows);
}

RowMatrix uniform_frames(int n, std::uint64_t seed) {
  Rng rng(seed, 0);
  RowMatrix m(n, 2);
  for (int i = 0; i < n; ++i) {
    m(i, 0) = -kPi + 2 * kPi * rng.uniform();
    m(i, 1) = -kPi + 2 * kPi * rng.uniform();
  }
  return m;
}

struct ScratchFile {
  fs::path path;
  explicit ScratchFile(const std::string& name)
      : path(fs::temp_directory_path() / ("boltzlab_rama_" + std::to_string(::getpid()) + "_" + name)) {}
  ~ScratchFile() { fs::remove(path); }
};

}  // namespace

TEST_CASE("ramachandran_compare: identical inputs give KL = TV = 0 and z = 0") {
  const RowMatrix ref = uniform_frames(400, 3);
  const Eigen::VectorXd phi = ref.col(0), psi = ref.col(1);
  const RamachandranComparison c = compare_ramachandran(phi, psi, nullptr, ref);
  CHECK(c.model.forward_kl == 0.0);
  CHECK(c.model.total_variation == 0.0);
  // Equal blocks (400 = 20·20): the batch-means mean is the plain mean, as is the SNIS one.
  CHECK(c.model_phi_positive.mean == doctest::Approx(c.reference_phi_positive.mean).epsilon(1e-14));
  REQUIRE(c.phi_positive_z.ok());
  CHECK(std::abs(*c.phi_positive_z.value) < 1e-12);
  CHECK(c.model_ess == doctest::Approx(400).epsilon(1e-12));
  // A reference whose halves are equal has a zero noise floor.
  RowMatrix doubled(800, 2);
  doubled << ref, ref;
  const RamachandranComparison d = compare_ramachandran(phi, psi, nullptr, doubled);
  CHECK(d.noise_floor.forward_kl == 0.0);
  CHECK(d.noise_floor.total_variation == 0.0);
  CHECK(d.model.forward_kl == 0.0);
}

TEST_CASE("ramachandran_compare: two-bin forward KL by hand, with the epsilon convention") {
  const double eps = 1e-10;
  const double bins = 64.0 * 64.0;
  // Reference 3:1 over bins A, B; model 1:1. p̃ = (p̄ + ε)/(1 + Bε), ratio (p̄ + ε)/(q̄ + ε).
  const RowMatrix ref = two_bins(40, 30);
  const RowMatrix mod = two_bins(40, 20);
  const Eigen::VectorXd phi = mod.col(0), psi = mod.col(1);
  const RamachandranComparison c = compare_ramachandran(phi, psi, nullptr, ref);
  const double exact = ((0.75 + eps) * std::log((0.75 + eps) / (0.5 + eps)) +
                        (0.25 + eps) * std::log((0.25 + eps) / (0.5 + eps))) / (1 + bins * eps);
  CHECK(c.model.forward_kl == doctest::Approx(exact).epsilon(1e-13));
  // ε shifts the textbook value 0.75 log 1.5 + 0.25 log 0.5 by O(Bε) ≈ 4e-7 at most.
  CHECK(c.model.forward_kl == doctest::Approx(0.75 * std::log(1.5) + 0.25 * std::log(0.5)).epsilon(1e-6));
  // TV on 100×100 bins: A and B are still distinct bins there: ½(|¾ − ½| + |¼ − ½|) = ¼.
  CHECK(c.model.total_variation == doctest::Approx(0.25).epsilon(1e-14));
  // Reference halves: first 20 frames all in A, last 20 = 10 in A + 10 in B.
  const double floor_kl = ((1 + eps) * std::log((1 + eps) / (0.5 + eps)) + eps * std::log(eps / (0.5 + eps))) /
                          (1 + bins * eps);
  CHECK(c.noise_floor.forward_kl == doctest::Approx(floor_kl).epsilon(1e-13));
  CHECK(c.noise_floor.total_variation == doctest::Approx(0.5).epsilon(1e-14));

  // A reference bin the model never visits costs log((1 + ε)/ε) ≈ 10 ln 10 = 23.03 nats.
  const RowMatrix only_b = two_bins(40, 0);
  const RamachandranComparison e =
      compare_ramachandran(only_b.col(0), only_b.col(1), nullptr, two_bins(40, 40));
  const double disjoint = ((1 + eps) * std::log((1 + eps) / eps) + eps * std::log(eps / (1 + eps))) / (1 + bins * eps);
  CHECK(e.model.forward_kl == doctest::Approx(disjoint).epsilon(1e-13));
  CHECK(e.model.forward_kl == doctest::Approx(10 * std::log(10.0)).epsilon(1e-6));  // O(Bε) = 4e-7
  CHECK(e.model.total_variation == 1.0);  // disjoint supports
  // Without ε the same KL is infinite.
  RowMatrix a = RowMatrix::Zero(2, 2), b = RowMatrix::Zero(2, 2);
  a(0, 0) = 1;
  b(1, 1) = 3;
  CHECK(std::isinf(histogram_forward_kl(a, b, 0.0)));
  CHECK(histogram_forward_kl(b, b * 7.0, 0.0) == 0.0);  // normalization: scale does not matter
  CHECK(histogram_total_variation(a, b) == 1.0);
}

TEST_CASE("ramachandran_compare: a one-bin shift on the 100x100 grid gives TV = 1/4") {
  // Reference uniform over 4 adjacent φ bins (ψ fixed), model the same shifted by one bin:
  // overlap 3 of 4 bins, TV = ½(¼ + ¼) = ¼.
  std::vector<std::pair<double, double>> r, m;
  for (int k = 0; k < 4; ++k)
    for (int rep = 0; rep < 10; ++rep) {
      r.emplace_back(centre(60 + k, 100), centre(30, 100));
      m.emplace_back(centre(61 + k, 100), centre(30, 100));
    }
  const RowMatrix ref = frames(r), mod = frames(m);
  const RamachandranComparison c = compare_ramachandran(mod.col(0), mod.col(1), nullptr, ref);
  CHECK(c.model.total_variation == doctest::Approx(0.25).epsilon(1e-14));
  // φ bins 60..64 of 100 are φ ∈ [0.63, 0.94]: all in φ ≥ 0.
  CHECK(c.model_phi_positive.mean == 1.0);
  CHECK(c.reference_phi_positive.mean == 1.0);
  CHECK_FALSE(c.phi_positive_z.ok());  // both s.e. 0: z missing with a reason
  CHECK_FALSE(c.phi_positive_z.reason.empty());
}

TEST_CASE("ramachandran_compare: integer weights equal replicated unweighted samples") {
  // w_i = k_i ∈ {1, 2, 3}, log w shifted by an arbitrary constant (the weights are
  // self-normalized): every histogram, hence KL, TV and the φ ≥ 0 mean, equals the one
  // of the sample with row i repeated k_i times.
  const RowMatrix ref = uniform_frames(600, 11);
  const RowMatrix mod = uniform_frames(300, 12);
  Rng rng(13, 0);
  Eigen::VectorXd lw(mod.rows());
  std::vector<std::pair<double, double>> replicated;
  for (Eigen::Index i = 0; i < mod.rows(); ++i) {
    const int k = 1 + static_cast<int>(3 * rng.uniform());
    lw[i] = std::log(static_cast<double>(k)) + 7.5;
    for (int j = 0; j < k; ++j) replicated.emplace_back(mod(i, 0), mod(i, 1));
  }
  const RowMatrix rep = frames(replicated);
  const Eigen::VectorXd phi = mod.col(0), psi = mod.col(1);
  const RamachandranComparison w = compare_ramachandran(phi, psi, &lw, ref);
  const RamachandranComparison u = compare_ramachandran(rep.col(0), rep.col(1), nullptr, ref);
  CHECK(w.model.forward_kl == doctest::Approx(u.model.forward_kl).epsilon(1e-12));
  CHECK(w.model.total_variation == doctest::Approx(u.model.total_variation).epsilon(1e-12));
  CHECK(w.model_phi_positive.mean == doctest::Approx(u.model_phi_positive.mean).epsilon(1e-12));
  CHECK(w.model.forward_kl > 0.1);  // the samples differ: not a trivially equal pair
  // The noise floor depends on the reference only.
  CHECK(w.noise_floor.forward_kl == u.noise_floor.forward_kl);
  CHECK(w.noise_floor.total_variation == u.noise_floor.total_variation);
  // Rows with log w = −inf or a non-finite angle are left out and counted.
  Eigen::VectorXd lw2(mod.rows() + 2);
  lw2 << lw, -std::numeric_limits<double>::infinity(), 0.0;
  Eigen::VectorXd phi2(mod.rows() + 2), psi2(mod.rows() + 2);
  phi2 << phi, 1.0, std::numeric_limits<double>::quiet_NaN();
  psi2 << psi, 1.0, 1.0;
  const RamachandranComparison x = compare_ramachandran(phi2, psi2, &lw2, ref);
  CHECK(x.model_zero_weight == 1);
  CHECK(x.model_skipped == 1);
  CHECK(x.model.forward_kl == doctest::Approx(w.model.forward_kl).epsilon(1e-12));
  CHECK(x.model_phi_positive.mean == doctest::Approx(w.model_phi_positive.mean).epsilon(1e-12));
}

TEST_CASE("ramachandran_compare: phi >= 0 of reweighted samples agrees with the reference") {
  // Target: P(φ ≥ 0) = 0.3, φ uniform within each half. Proposal: φ uniform on [−π, π),
  // weights π/q = 0.6 (φ ≥ 0) and 1.4 (φ < 0). Reference: iid target draws. The SNIS mean
  // is within 4 of its s.e. of 0.3 and |z| < 4 (false-failure probability ≈ 6e-5 each).
  Rng rng(21, 0);
  const int n = 4000;
  Eigen::VectorXd phi(n), psi(n), lw(n);
  for (int i = 0; i < n; ++i) {
    phi[i] = -kPi + 2 * kPi * rng.uniform();
    psi[i] = -kPi + 2 * kPi * rng.uniform();
    lw[i] = std::log(phi[i] >= 0 ? 0.6 : 1.4);
  }
  RowMatrix ref(n, 2);
  for (int i = 0; i < n; ++i) {
    const bool pos = rng.uniform() < 0.3;
    ref(i, 0) = pos ? kPi * rng.uniform() : -kPi * rng.uniform_pos();
    ref(i, 1) = -kPi + 2 * kPi * rng.uniform();
  }
  const RamachandranComparison c = compare_ramachandran(phi, psi, &lw, ref);
  CHECK(std::abs(c.model_phi_positive.mean - 0.3) < 4 * c.model_phi_positive.standard_error);
  REQUIRE(c.phi_positive_z.ok());
  CHECK(std::abs(*c.phi_positive_z.value) < 4);
  // The reference s.e. estimates √(0.3·0.7/4000) = 7.2e-3; with 20 blocks its relative
  // sd is ≈ 1/√38 = 0.16, so 4 sd: within a factor 1 ± 0.65.
  CHECK(c.reference_phi_positive.standard_error == doctest::Approx(std::sqrt(0.21 / n)).epsilon(0.65));
  const nlohmann::json j = c.to_json();
  CHECK(j["forward_kl"]["model"].get<double>() == c.model.forward_kl);
  CHECK(j["total_variation"]["noise_floor"].get<double>() == c.noise_floor.total_variation);
  CHECK(j["phi_positive"]["z"].get<double>() == *c.phi_positive_z.value);
  CHECK(j["phi_positive"]["reference"]["blocks"].get<int>() == 20);
}

TEST_CASE("batch_means: iid Bernoulli data reproduce the binomial variance") {
  // For iid data se² is unbiased for p(1−p)/n_used (n_used = B·b). Averaged over R = 400
  // replicates of n = 2000, B = 20: each se²/(p(1−p)/n) ~ χ²_19/19 (approximately: the
  // block means are sums of 100 Bernoullis) with relative sd √(2/19) = 0.32, so the mean
  // ratio has sd 0.32/√400 = 0.016; tolerance 4 sd = 0.065.
  const double p = 0.2;
  const int n = 2000, reps = 400;
  Rng rng(5, 0);
  double ratio = 0.0;
  Eigen::VectorXd x(n);
  for (int r = 0; r < reps; ++r) {
    for (int i = 0; i < n; ++i) x[i] = rng.uniform() < p ? 1.0 : 0.0;
    const BatchMeansEstimate e = batch_means(x, 20);
    CHECK(e.block_size == 100);
    CHECK(e.dropped == 0);
    ratio += e.standard_error * e.standard_error / (p * (1 - p) / n);
  }
  ratio /= reps;
  CHECK(ratio == doctest::Approx(1.0).epsilon(0.065));
}

TEST_CASE("batch_means: a correlated two-state chain gets the inflated variance") {
  // Two-state Markov chain that keeps its state with probability s = 0.95: stationary
  // P(1) = ½, indicator autocorrelation ρ^t with ρ = 2s − 1 = 0.9, so
  //   Var(mean) ≈ (¼/n)·(1 + ρ)/(1 − ρ) = 19·(¼/n)
  // (a naive iid s.e. would be √19 = 4.4 times too small). Blocks of b = 1000 ≫ τ = 19
  // leave a bias of ≈ 2ρ/((1−ρ)²·b)/((1+ρ)/(1−ρ)) ≈ 1 %. R = 100 replicates: the mean
  // ratio has sd ≈ 0.32/√100 = 0.032; tolerance 4 sd + bias ≈ 0.14.
  const int n = 20000, reps = 100;
  const double rho = 0.9;
  const double exact = 0.25 / n * (1 + rho) / (1 - rho);
  Rng rng(8, 0);
  Eigen::VectorXd x(n);
  double ratio = 0.0;
  for (int r = 0; r < reps; ++r) {
    double state = rng.uniform() < 0.5 ? 1.0 : 0.0;  // start in the stationary law
    for (int i = 0; i < n; ++i) {
      if (i > 0 && rng.uniform() >= 0.95) state = 1.0 - state;
      x[i] = state;
    }
    const BatchMeansEstimate e = batch_means(x, 20);
    ratio += e.standard_error * e.standard_error / exact;
  }
  ratio /= reps;
  CHECK(ratio == doctest::Approx(1.0).epsilon(0.14));
  // Left-over values are dropped from the end and counted.
  const BatchMeansEstimate e = batch_means(Eigen::VectorXd::LinSpaced(45, 0, 44), 4);
  CHECK(e.block_size == 11);
  CHECK(e.dropped == 1);
  CHECK(e.mean == doctest::Approx(21.5).epsilon(1e-15));  // mean of 0..43
}

TEST_CASE("ramachandran_compare: bad input gives one clear error") {
  const RowMatrix ref = uniform_frames(100, 1);
  const Eigen::VectorXd phi = ref.col(0), psi = ref.col(1);
  CHECK_THROWS_AS(compare_ramachandran(phi, psi.head(10), nullptr, ref), DomainError);
  CHECK_THROWS_AS(compare_ramachandran(phi, psi, nullptr, ref.topRows(39)), DomainError);  // < 2·20 frames
  RowMatrix three(100, 3);
  three.setZero();
  CHECK_THROWS_AS(compare_ramachandran(phi, psi, nullptr, three), DomainError);
  Eigen::VectorXd dead = Eigen::VectorXd::Constant(100, -std::numeric_limits<double>::infinity());
  CHECK_THROWS_AS(compare_ramachandran(phi, psi, &dead, ref), DomainError);
  RamachandranCompareOptions o;
  o.reference_blocks = 1;
  CHECK_THROWS_AS(compare_ramachandran(phi, psi, nullptr, ref, o), ConfigError);
  CHECK_THROWS_AS(batch_means(phi.head(3), 4), DomainError);

  const std::string field = "p.json: generator.reference_dihedrals";
  auto message = [&](const fs::path& p) {
    try {
      read_reference_dihedrals(p, field);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  ScratchFile missing("missing.npy");
  std::string m = message(missing.path);
  CHECK(m.find(field) == 0);
  CHECK(m.find("missing.npy") != std::string::npos);
  ScratchFile wide("wide.npy");
  write_npy(wide.path, three);
  m = message(wide.path);
  CHECK(m.find(field) == 0);
  CHECK(m.find("wide.npy") != std::string::npos);
  ScratchFile degrees("degrees.npy");
  write_npy(degrees.path, RowMatrix(ref * (180.0 / kPi)));
  m = message(degrees.path);
  CHECK(m.find(field) == 0);
  CHECK(m.find("radians") != std::string::npos);
  ScratchFile good("good.npy");
  write_npy(good.path, ref);
  CHECK(read_reference_dihedrals(good.path, field).rows() == 100);
}
