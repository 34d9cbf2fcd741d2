#pragma once
/// \file mcmc.hpp
/// Convergence diagnostics for Markov chains: rank-normalized split R̂, bulk-ESS,
/// tail-ESS, ESS of the mean and the integrated autocorrelation time, following
/// Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization,
/// folding, and localization: an improved R̂ for assessing convergence of MCMC",
/// Bayesian Analysis 16(2):667 — and matching ArviZ's definitions
/// (arviz/stats/diagnostics.py: `_rhat_rank`, `_ess_bulk`, `_ess_tail`, `_ess_mean`,
/// `_ess`, `_z_scale`, `_split_chains`; arviz/stats/stats_utils.py: `autocov`,
/// `quantile` = R type 7).
///
/// Draws of one scalar quantity are a chains × draws matrix (row c = chain c, in
/// draw order). The ESS/R̂ formulas assume independent chains: draws of
/// interacting particles (SVGD, blob-KL, MMD flows) violate that — see
/// interacting_particles_note().
///
/// A diagnostic that cannot be computed (one chain for R̂, fewer than 4 draws,
/// non-finite draws, zero variance) is a Quantity without value and with the reason.
#include <cstddef>
#include <string>
#include <vector>

#include "boltzlab/core/ensemble.hpp"
#include "boltzlab/estimators/importance.hpp"

namespace boltzlab {

/// Biased autocovariance ĉ_t = (1/n) Σ_{i<n−t} (x_i − x̄)(x_{i+t} − x̄), t = 0..n−1,
/// by zero-padded FFT (radix 2, padded to ≥ 2n so the circular correlation equals
/// the linear one). O(n log n).
std::vector<double> autocovariance(const double* x, std::size_t n);

/// The same by the direct O(n²) sum (serial reference for tests).
std::vector<double> autocovariance_direct(const double* x, std::size_t n);

/// Rank-normalized split R̂ (Vehtari et al. 2021, §4.2): split each chain in two
/// halves (dropping the middle draw when odd), z-transform pooled average ranks
/// z = Φ⁻¹((r − 3/8)/(S + 1/4)), R̂ = √((B/W + n − 1)/n) with B = n·var(chain means)
/// and W = mean within-chain variance (both ddof 1); the result is the maximum of
/// R̂ on z and on the z-transform of the folded draws |x − median(x)|.
/// Needs ≥ 2 chains and ≥ 4 draws.
Quantity rhat_rank(const RowMatrix& draws);

/// Bulk effective sample size: ESS (Geyer, see ess_split) of the rank-normalized
/// split chains (Vehtari et al. 2021, §4.3). Needs ≥ 4 draws.
Quantity ess_bulk(const RowMatrix& draws);

/// Tail effective sample size: min of the split-chain ESS of the indicators
/// I(x ≤ q_prob) and I(x ≤ q_{1−prob}), q the pooled type-7 quantiles
/// (Vehtari et al. 2021, §4.3; prob = 0.05 there). Needs ≥ 4 draws.
Quantity ess_tail(const RowMatrix& draws, double prob = 0.05);

/// ESS for the mean: Geyer ESS of the (not rank-normalized) split chains.
Quantity ess_mean(const RowMatrix& draws);

/// Integrated autocorrelation time τ = S/ESS_mean in draws (S = total draws of the
/// split chains): the number of draws per effectively independent draw.
Quantity integrated_autocorrelation_time(const RowMatrix& draws);

/// Multi-chain ESS of a chains × n matrix without splitting (ArviZ `_ess`):
/// autocovariances ĉ_t per chain; W' = mean ĉ_0 · n/(n−1);
/// var⁺ = W'(n−1)/n + var(chain means, ddof 1) (second term for ≥ 2 chains);
/// ρ̂_t = 1 − (W' − mean_chains ĉ_t)/var⁺; Geyer's initial positive sequence (sum pairs
/// ρ̂_{2m}+ρ̂_{2m+1} while positive) and initial monotone sequence; τ̂ = −1 + 2Σ_{t≤T} ρ̂_t
/// + ρ̂_{T+1}, floored at 1/log10(S); ESS = S/τ̂ with S = chains·n.
/// Returns S when all draws are equal (to within 1e-15).
Quantity ess_geyer(const RowMatrix& draws);

/// Split each chain into halves (first ⌊n/2⌋ and last ⌊n/2⌋ draws): 2·chains rows.
RowMatrix split_chains(const RowMatrix& draws);

/// Pooled rank normalization z = Φ⁻¹((r − 3/8)/(S + 1/4)), r average ranks (ties get
/// the mean rank) over all entries (Blom 1958 offsets).
RowMatrix rank_normalize(const RowMatrix& draws);

/// Φ⁻¹(p) of the standard normal distribution to full double precision: Acklam's
/// rational approximation refined by two Halley steps (uses std::erfc).
double standard_normal_quantile(double p);

/// Type-7 (R default, NumPy "linear") quantile of all entries.
double quantile_type7(const RowMatrix& draws, double prob);

/// Diagnostics of one scalar quantity.
struct ChainDiagnostics {
  Quantity rhat;      ///< rank-normalized split R̂
  Quantity ess_bulk;  ///< bulk-ESS
  Quantity ess_tail;  ///< tail-ESS
  Quantity ess_mean;  ///< ESS of the mean
  Quantity iat;       ///< integrated autocorrelation time (draws)
};

/// All of the above for one chains × draws matrix.
ChainDiagnostics chain_diagnostics(const RowMatrix& draws);

/// A chains × draws × params array in C order (params fastest), e.g. from an .npy.
struct ChainArray {
  std::size_t chains = 0, draws = 0, params = 0;
  std::vector<double> data;  ///< size chains·draws·params
  /// The chains × draws matrix of parameter p. \throws DomainError if p ≥ params.
  RowMatrix parameter(std::size_t p) const;
  /// \throws DomainError if the data size does not match the shape or a dimension is 0.
  void validate() const;
};

/// Note to show when draws come from interacting particles: the chains are not
/// independent, so R̂ and ESS (which assume independent chains) are only indicative.
std::string interacting_particles_note();

}  // namespace boltzlab
