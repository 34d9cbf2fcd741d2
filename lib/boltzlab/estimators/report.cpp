#include "boltzlab/estimators/report.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

#include "boltzlab/core/error.hpp"
#include "boltzlab/core/parallel.hpp"

namespace boltzlab {

namespace {

std::string number_text(double v, int precision = 4) {
  std::ostringstream s;
  s << std::setprecision(precision) << v;
  return s.str();
}

std::string count_text(std::size_t n) { return std::to_string(static_cast<long long>(n)); }

/// The number as summary.json shows it: "n/a" where JSON has null.
std::string quantity_text(const Quantity& q, int precision = 4) {
  return q.finite() ? number_text(*q.value, precision) : "n/a";
}

std::string pad(const std::string& s, std::size_t width) {
  // Count UTF-8 code points, not bytes, so "R̂" and "k̂" align.
  // Combining diacritics U+0300–U+036F (UTF-8 lead bytes 0xCC, 0xCD) take no column.
  std::size_t cps = 0;
  for (unsigned char c : s) cps += (c & 0xC0) != 0x80 && c != 0xCC && c != 0xCD;
  return cps >= width ? s + " " : s + std::string(width - cps, ' ');
}

Quantity min_quantity(const std::vector<Quantity>& qs) {
  std::optional<double> best;
  for (const auto& q : qs) {
    if (!q.ok()) return Quantity::missing("not available for every parameter");
    best = best ? std::min(*best, *q.value) : *q.value;
  }
  return best ? Quantity::of(*best) : Quantity::missing("no parameters");
}

/// Worst R̂ over the parameters; missing unless every parameter has one (the reason
/// of the first parameter when it has none).
Quantity max_rhat(const std::vector<ChainDiagnostics>& diagnostics) {
  std::optional<double> rhat_max;
  bool rhat_all = true;
  for (const ChainDiagnostics& d : diagnostics) {
    if (d.rhat.ok()) rhat_max = rhat_max ? std::max(*rhat_max, *d.rhat.value) : *d.rhat.value;
    else rhat_all = false;
  }
  if (rhat_max && rhat_all) return Quantity::of(*rhat_max);
  return Quantity::missing(diagnostics.empty() || diagnostics[0].rhat.ok() ? "not available for every parameter"
                                                                           : diagnostics[0].rhat.reason);
}

/// Vehtari et al. (2021, §4.4): use the draws only if R̂ < 1.01 and bulk- and
/// tail-ESS > 400 (100 per chain for their default of four chains).
void assess_convergence(ChainsReport& r) {
  const double need = 400.0;
  if (r.rhat_max.ok() && r.ess_bulk_min.ok() && r.ess_tail_min.ok()) {
    const bool ok = *r.rhat_max.value < 1.01 && *r.ess_bulk_min.value > need && *r.ess_tail_min.value > need;
    r.converged = ok;
    std::ostringstream v;
    v << (ok ? "converged" : "not converged") << ": max R̂ = " << std::setprecision(4) << *r.rhat_max.value
      << " (needs < 1.01), min bulk-ESS = " << std::setprecision(4) << *r.ess_bulk_min.value
      << ", min tail-ESS = " << *r.ess_tail_min.value << " (need > 400)";
    r.verdict = v.str();
  } else {
    r.converged_reason =
        r.rhat_max.ok() ? "ESS not available" : "R̂ not available (needs ≥ 2 chains, ≥ 4 draws)";
    r.verdict = "convergence cannot be assessed: " + r.converged_reason;
  }
}

/// One per-parameter column of the chains section: values (null where missing or
/// not finite) and, when any is missing, "<key>_reason" with one entry per parameter.
void put_column(nlohmann::json& j, const std::string& key, const std::vector<ChainDiagnostics>& diagnostics,
                Quantity ChainDiagnostics::*member) {
  nlohmann::json values = nlohmann::json::array(), reasons = nlohmann::json::array();
  bool any_missing = false;
  for (const ChainDiagnostics& d : diagnostics) {
    const Quantity& q = d.*member;
    if (q.finite()) {
      values.push_back(*q.value);
      reasons.push_back(nullptr);
    } else {
      values.push_back(nullptr);
      reasons.push_back(q.missing_reason());
      any_missing = true;
    }
  }
  j[key] = values;
  if (any_missing) j[key + "_reason"] = reasons;
}

}  // namespace

void ImportanceReportOptions::validate() const {
  PsisOptions p;
  p.r_eff = r_eff;
  p.validate();
  if (!(clip_fraction >= 0 && clip_fraction < 1)) throw ConfigError("clip_fraction must be in [0, 1)");
  if (!(level > 0 && level < 1)) throw ConfigError("level must be in (0, 1)");
  if (!(kt_kj_mol >= 0) || !std::isfinite(kt_kj_mol)) throw ConfigError("kT must be finite and >= 0");
}

std::optional<double> LogZReport::free_energy_kj_mol() const {
  if (!estimate || !(kt_kj_mol > 0)) return std::nullopt;
  return -kt_kj_mol * estimate->estimate;
}

std::optional<double> LogZReport::stderr_kj_mol() const {
  if (!estimate || !(kt_kj_mol > 0)) return std::nullopt;
  return kt_kj_mol * estimate->standard_error;
}

std::optional<double> LogZReport::z_score() const {
  if (!estimate || !exact) return std::nullopt;
  return (estimate->estimate - *exact) / estimate->standard_error;
}

nlohmann::json LogZReport::to_json() const {
  nlohmann::json z;
  if (!estimate) {
    z["estimate"] = nullptr;
    z["estimate_reason"] = missing_reason;
    z["stderr"] = nullptr;
    z["stderr_reason"] = missing_reason;
    return z;
  }
  const LogZEstimate& e = *estimate;
  z["estimate"] = e.estimate;
  z["stderr"] = e.standard_error;
  z["ci_low"] = e.ci_low;
  z["ci_high"] = e.ci_high;
  z["level"] = e.level;
  z["method"] = "log-mean-exp of the weights; delta-method stderr sd(w)/(sqrt(S) mean(w))";
  if (kt_kj_mol > 0) {
    z["kt_kj_mol"] = kt_kj_mol;
    z["free_energy_kj_mol"] = *free_energy_kj_mol();
    z["stderr_kj_mol"] = *stderr_kj_mol();
  }
  if (exact) {
    z["exact"] = *exact;
    z["z_score"] = *z_score();
  }
  if (!psis_reliable) z["warning"] = "PSIS k-hat says the weights are unreliable: the stderr is not trustworthy";
  return z;
}

nlohmann::json ImportanceReport::to_json() const {
  const WeightDiagnostics& d = weights;
  nlohmann::json j;
  j["samples"] = d.samples;
  j["zero_weight"] = d.zero_weight;
  j["non_finite_energies"] = non_finite_energies;
  j["kish_ess"] = d.kish_ess;
  j["ess_fraction"] = d.ess_fraction;
  j["kish_ess_clipped"] = d.kish_ess_clipped;
  j["ess_fraction_clipped"] = d.ess_fraction_clipped;
  j["clipped"] = d.clipped;
  j["clip_fraction"] = d.clip_fraction;
  j["max_weight_share"] = d.max_weight_share;
  j["log_weight"] = {{"max", d.log_weight_max}, {"mean", d.log_weight_mean}, {"sd", d.log_weight_sd}};
  const PsisResult& p = psis;
  put_quantity(j, "psis_khat", p.khat);
  j["psis_reliable"] = p.reliable;
  j["psis_diagnosis"] = p.diagnosis;
  put_quantity(j, "psis_threshold", std::isfinite(p.threshold) ? Quantity::of(p.threshold)
                                                                : Quantity::missing("undefined for a single sample"));
  put_quantity(j, "psis_min_sample_size", p.min_sample_size);
  j["psis_tail_length"] = p.tail_length;
  put_quantity(j, "psis_sigma", p.khat.ok() ? Quantity::of(p.sigma) : Quantity::missing(p.khat.reason));
  j["psis_kish_ess"] = p.kish_ess;
  j["r_eff"] = r_eff;
  j["psis_definition"] = "legacy ArviZ psislw (Vehtari et al. 2024): M = ceil(min(S/5, 3 sqrt(S/r_eff)))";
  j["log_z"] = log_z.to_json();
  return j;
}

ImportanceReport importance_report(const Eigen::VectorXd& log_weights, std::size_t non_finite_energies,
                                   const ImportanceReportOptions& options) {
  options.validate();
  ImportanceReport r;
  r.weights = weight_diagnostics(log_weights, options.clip_fraction);
  r.non_finite_energies = non_finite_energies;
  PsisOptions po;
  po.r_eff = options.r_eff;
  r.psis = pareto_smoothed_importance_sampling(log_weights, po);
  r.r_eff = options.r_eff;
  r.log_z.kt_kj_mol = options.kt_kj_mol;
  r.log_z.exact = options.exact_log_z;
  r.log_z.psis_reliable = r.psis.reliable;
  if (r.weights.samples < 2) {
    r.log_z.missing_reason = "needs at least 2 samples";
  } else {
    r.log_z.estimate = estimate_log_z(log_weights, options.level);
  }
  return r;
}

nlohmann::json ChainsReport::to_json() const {
  nlohmann::json j;
  j["chains"] = chains;
  j["draws"] = draws;
  j["params"] = params;
  j["parameter_names"] = parameter_names;
  put_column(j, "rhat", diagnostics, &ChainDiagnostics::rhat);
  put_column(j, "ess_bulk", diagnostics, &ChainDiagnostics::ess_bulk);
  put_column(j, "ess_tail", diagnostics, &ChainDiagnostics::ess_tail);
  put_column(j, "ess_mean", diagnostics, &ChainDiagnostics::ess_mean);
  put_column(j, "iat", diagnostics, &ChainDiagnostics::iat);
  put_quantity(j, "rhat_max", rhat_max);
  put_quantity(j, "ess_bulk_min", ess_bulk_min);
  put_quantity(j, "ess_tail_min", ess_tail_min);
  if (converged) {
    j["converged"] = *converged;
  } else {
    j["converged"] = nullptr;
    j["converged_reason"] = converged_reason;
  }
  j["verdict"] = verdict;
  j["independent_chains"] = independent_chains;
  j["notes"] = notes;
  j["definitions"] = "rank-normalized split R-hat (max of bulk and folded), bulk/tail ESS with Geyer initial "
                     "positive + monotone sequences (Vehtari et al. 2021; ArviZ definitions)";
  if (source) j["source"] = *source;
  return j;
}

ChainsReport chains_report(const ChainArray& chains, const std::vector<std::string>& parameter_names,
                           bool interacting) {
  chains.validate();
  ChainsReport r;
  r.chains = chains.chains;
  r.draws = chains.draws;
  r.params = chains.params;
  r.parameter_names = parameter_names;
  for (std::size_t p = r.parameter_names.size(); p < chains.params; ++p) r.parameter_names.push_back("x" + std::to_string(p));
  r.parameter_names.resize(chains.params);
  // Parameters are independent: diagnose them in parallel, collect in order.
  r.diagnostics.resize(chains.params);
  for_each_index(chains.params, [&](std::size_t p) { r.diagnostics[p] = chain_diagnostics(chains.parameter(p)); });
  std::vector<Quantity> bulk, tail;
  for (const ChainDiagnostics& d : r.diagnostics) {
    bulk.push_back(d.ess_bulk);
    tail.push_back(d.ess_tail);
  }
  r.rhat_max = max_rhat(r.diagnostics);
  r.ess_bulk_min = min_quantity(bulk);
  r.ess_tail_min = min_quantity(tail);
  assess_convergence(r);
  r.independent_chains = !interacting;
  if (interacting) r.notes.push_back(interacting_particles_note());
  return r;
}

std::string format_importance_report(const ImportanceReport& r) {
  const WeightDiagnostics& w = r.weights;
  const PsisResult& p = r.psis;
  std::ostringstream o;
  o << "\nImportance weights (" << count_text(w.samples) << " samples";
  if (w.zero_weight > 0) o << ", " << count_text(w.zero_weight) << " with zero weight";
  if (r.non_finite_energies > 0) o << ", " << count_text(r.non_finite_energies) << " non-finite energies";
  o << ")\n";
  o << "  " << pad("Kish ESS", 24) << number_text(w.kish_ess, 6) << "  (" << number_text(w.ess_fraction) << " of S)\n";
  if (w.clipped > 0) {
    o << "  " << pad("Kish ESS, top clipped", 24) << number_text(w.kish_ess_clipped, 6) << "  ("
      << number_text(w.ess_fraction_clipped) << " of S; largest " << count_text(w.clipped) << " log-weights clipped)\n";
  } else {
    o << "  " << pad("Kish ESS, top clipped", 24) << "same (fewer than 1/" << number_text(w.clip_fraction)
      << " samples: nothing clipped)\n";
  }
  o << "  " << pad("largest weight share", 24) << number_text(w.max_weight_share) << "\n";
  const Quantity threshold = std::isfinite(p.threshold) ? Quantity::of(p.threshold) : Quantity::missing("");
  o << "  " << pad("PSIS k̂", 24) << quantity_text(p.khat) << "  (threshold " << quantity_text(threshold, 3)
    << ", tail M = " << count_text(p.tail_length) << ")\n";
  if (!p.khat.finite()) o << "  " << pad("", 24) << p.khat.missing_reason() << "\n";
  o << "  " << pad("PSIS verdict", 24) << p.diagnosis << "\n";
  if (p.min_sample_size.finite()) o << "  " << pad("min sample size", 24) << quantity_text(p.min_sample_size) << "\n";
  const LogZReport& z = r.log_z;
  o << "  " << pad("log Z", 24);
  if (!z.estimate) {
    o << "n/a (" << z.missing_reason << ")\n";
    return o.str();
  }
  const LogZEstimate& e = *z.estimate;
  o << number_text(e.estimate, 8) << " ± " << number_text(e.standard_error, 3) << "  (" << number_text(e.level, 3)
    << " CI " << number_text(e.ci_low, 8) << " … " << number_text(e.ci_high, 8) << ")\n";
  if (const auto f = z.free_energy_kj_mol()) {
    o << "  " << pad("F = −kT log Z", 24) << number_text(*f, 8) << " ± " << number_text(*z.stderr_kj_mol(), 3)
      << " kJ/mol\n";
  }
  if (z.exact) {
    o << "  " << pad("exact log Z", 24) << number_text(*z.exact, 8) << "  (z-score " << number_text(*z.z_score(), 3)
      << ")\n";
  }
  return o.str();
}

std::string format_chains_report(const ChainsReport& c) {
  std::ostringstream o;
  o << "\nChains (" << count_text(c.chains) << " chains × " << count_text(c.draws) << " draws × "
    << count_text(c.params) << " parameters)\n";
  o << "  " << pad("parameter", 14) << pad("R̂", 10) << pad("bulk-ESS", 12) << pad("tail-ESS", 12)
    << pad("ESS(mean)", 12) << "τ\n";
  const std::size_t shown = std::min<std::size_t>(c.params, 20);
  for (std::size_t p = 0; p < shown; ++p) {
    const ChainDiagnostics& d = c.diagnostics[p];
    o << "  " << pad(c.parameter_names[p], 14) << pad(quantity_text(d.rhat), 10)
      << pad(quantity_text(d.ess_bulk, 5), 12) << pad(quantity_text(d.ess_tail, 5), 12)
      << pad(quantity_text(d.ess_mean, 5), 12) << quantity_text(d.iat, 4) << "\n";
  }
  if (shown < c.params) o << "  … " << c.params - shown << " more parameters in summary.json\n";
  if (!c.diagnostics.empty() && !c.diagnostics[0].rhat.finite()) {
    o << "  R̂: " << c.diagnostics[0].rhat.missing_reason() << "\n";
  }
  o << "  " << c.verdict << "\n";
  for (const auto& n : c.notes) o << "  note: " << n << "\n";
  return o.str();
}

std::string format_free_energy_difference(const FreeEnergyDifference& d, double kt_kj_mol) {
  std::ostringstream o;
  o << "\nFree-energy difference F(" << d.label_a << ") − F(" << d.label_b << ")\n  ";
  if (!d.delta_f.finite()) {
    o << "n/a (" << d.delta_f.missing_reason() << ")\n";
    return o.str();
  }
  o << quantity_text(d.delta_f, 6) << " ± " << quantity_text(d.stderr_kt, 3) << " kT";
  if (kt_kj_mol > 0) {
    const Quantity f = Quantity::of(*d.delta_f.value * kt_kj_mol);
    const Quantity se = d.stderr_kt.ok() ? Quantity::of(*d.stderr_kt.value * kt_kj_mol) : d.stderr_kt;
    o << "  = " << quantity_text(f, 6) << " ± " << quantity_text(se, 3) << " kJ/mol";
  }
  o << "  (populations " << number_text(d.population_a) << " / " << number_text(d.population_b) << ")\n";
  return o.str();
}

std::string format_ramachandran_comparison(const RamachandranComparison& c, const std::string& reference) {
  auto kl = [](double v) { return std::isfinite(v) ? number_text(v) : std::string("n/a"); };
  const SnisEstimate& pm = c.model_phi_positive;
  const BatchMeansEstimate& pr = c.reference_phi_positive;
  std::ostringstream o;
  o << "\nRamachandran vs reference " << reference << " (" << count_text(c.reference_frames)
    << " frames; noise floor: first vs second half)\n";
  o << "  " << pad("forward KL, 64² bins", 24) << kl(c.model.forward_kl) << "  (noise floor "
    << kl(c.noise_floor.forward_kl) << ")\n";
  o << "  " << pad("TV, 100² bins", 24) << number_text(c.model.total_variation) << "  (noise floor "
    << number_text(c.noise_floor.total_variation) << ")\n";
  o << "  " << pad("φ ≥ 0 population", 24) << number_text(pm.mean) << " ± " << number_text(pm.standard_error, 2)
    << "  (reference " << number_text(pr.mean) << " ± " << number_text(pr.standard_error, 2) << ", z "
    << quantity_text(c.phi_positive_z, 3) << ")\n";
  return o.str();
}

PlotResult plot_weight_distribution(const Eigen::VectorXd& log_weights, const PsisResult& psis,
                                    const std::filesystem::path& png) {
  const Eigen::VectorXd w = normalized_weights(log_weights);
  const double lw_max = log_weights.maxCoeff();
  // Left: histogram of log10 w̄ over the finite weights.
  std::vector<double> l10;
  for (Eigen::Index i = 0; i < w.size(); ++i) {
    if (w[i] > 0) l10.push_back(std::log10(w[i]));
  }
  const double lo = *std::min_element(l10.begin(), l10.end()), hi = *std::max_element(l10.begin(), l10.end());
  const int bins = 60;
  const double width = hi > lo ? (hi - lo) / bins : 1.0;
  std::vector<double> centers(bins), counts(bins, 0.0);
  for (int b = 0; b < bins; ++b) centers[static_cast<std::size_t>(b)] = lo + (b + 0.5) * width;
  for (double v : l10) counts[static_cast<std::size_t>(std::clamp(static_cast<int>((v - lo) / width), 0, bins - 1))] += 1;
  // Right: empirical survival of weights relative to the max, top 20% (≥ the tail).
  std::vector<double> rel;
  for (Eigen::Index i = 0; i < log_weights.size(); ++i) {
    if (std::isfinite(log_weights[i])) rel.push_back(std::exp(log_weights[i] - lw_max));
  }
  std::sort(rel.begin(), rel.end(), std::greater<>());
  const double n = static_cast<double>(log_weights.size());
  const std::size_t top = std::max<std::size_t>(std::min(rel.size(), std::max<std::size_t>(psis.tail_length * 3, 50)), 1);
  std::vector<double> sx, sy;
  for (std::size_t r = 0; r < top && r < rel.size(); ++r) {
    if (rel[r] <= 0) break;
    sx.push_back(rel[r]);
    sy.push_back(static_cast<double>(r + 1) / n);
  }
  std::ostringstream s;
  s << gnuplot_datablock("hist", {centers, counts}) << gnuplot_datablock("surv", {sx, sy});
  bool fitted = psis.khat.ok() && psis.sigma > 0 && psis.tail_length > 0;
  if (fitted) {
    const double k = *psis.khat.value, sigma = psis.sigma, u = std::exp(psis.log_cutoff);
    const double m_over_s = static_cast<double>(psis.tail_length) / n;
    std::vector<double> fx, fy;
    const double w_top = sx.empty() ? 1.0 : sx.front();
    for (int i = 0; i <= 100; ++i) {
      const double wv = u + (w_top - u) * std::pow(i / 100.0, 2.0);
      double surv;
      if (std::abs(k) < 1e-12) surv = std::exp(-(wv - u) / sigma);
      else {
        const double base = 1 + k * (wv - u) / sigma;
        surv = base > 0 ? std::pow(base, -1 / k) : 0.0;
      }
      if (wv > 0 && surv > 0) {
        fx.push_back(wv);
        fy.push_back(m_over_s * surv);
      }
    }
    s << gnuplot_datablock("fit", {fx, fy});
    fitted = !fx.empty();
  }
  s << "set multiplot layout 1,2 title 'Importance weights (S = " << log_weights.size() << ")'\n";
  s << "set title 'distribution of log10 normalized weight'\nset xlabel 'log10 w'\nset ylabel 'count'\n"
       "set style fill solid 0.6\nset grid\nunset key\n";
  s << "plot $hist using 1:2:(" << width << ") with boxes lc rgb '#4477aa'\n";
  s << "set title 'largest weights: survival and Pareto tail fit'\nset logscale xy\n"
       "set xlabel 'w / max w'\nset ylabel 'P(W >= w)'\nset key bottom left\nset style fill empty\n";
  std::string khat_text = psis.khat.ok() ? std::to_string(*psis.khat.value).substr(0, 5) : std::string("n/a");
  s << "plot $surv using 1:2 with points pt 7 ps 0.5 lc rgb '#222222' title 'empirical'";
  if (fitted) {
    s << ", $fit using 1:2 with lines lw 2 lc rgb '#cc3311' title 'generalized Pareto, k = " << khat_text << "'";
  }
  s << "\nunset multiplot\n";
  return run_gnuplot(s.str(), png, 1200, 500);
}

PlotResult plot_ess_curve(const std::vector<std::pair<std::size_t, double>>& curve, const std::filesystem::path& png) {
  std::vector<double> n, e;
  for (const auto& [size, ess] : curve) {
    n.push_back(static_cast<double>(size));
    e.push_back(ess);
  }
  std::ostringstream s;
  s << gnuplot_datablock("ess", {n, e});
  s << "set title 'Kish ESS of the first n samples'\nset logscale xy\nset xlabel 'n'\nset ylabel 'ESS'\n"
       "set grid\nset key top left\n";
  s << "plot $ess using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#4477aa' title 'Kish ESS', "
       "$ess using 1:1 with lines dt 2 lc rgb '#888888' title 'ESS = n'\n";
  return run_gnuplot(s.str(), png);
}

PlotResult plot_free_energy_2d(const FreeEnergy2D& f, const std::string& title, const std::filesystem::path& png) {
  std::vector<double> xs, ys, fs;
  for (std::size_t i = 0; i < f.x_axis.bins; ++i) {
    for (std::size_t j = 0; j < f.y_axis.bins; ++j) {
      xs.push_back(f.x_axis.center(i));
      ys.push_back(f.y_axis.center(j));
      fs.push_back(f.free_energy(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)));
    }
  }
  std::ostringstream s;
  s << gnuplot_datablock("fes", {xs, ys, fs});
  s << "set title '" << title << "'\nset xlabel '" << f.x_axis.name << "'\nset ylabel '" << f.y_axis.name << "'\n"
    << "set xrange [" << f.x_axis.lo << ":" << f.x_axis.hi << "]\nset yrange [" << f.y_axis.lo << ":" << f.y_axis.hi
    << "]\nset cblabel 'F / kT'\nset palette rgb 33,13,10\nset size ratio -1\nunset key\n"
    << "plot $fes using 1:2:3 with image\n";
  return run_gnuplot(s.str(), png, 700, 600);
}

PlotResult plot_free_energy_1d(const FreeEnergy1D& f, const std::string& title, const std::filesystem::path& png) {
  std::vector<double> xs, fs, es;
  for (std::size_t b = 0; b < f.axis.bins; ++b) {
    if (!std::isfinite(f.free_energy[static_cast<Eigen::Index>(b)])) continue;
    xs.push_back(f.axis.center(b));
    fs.push_back(f.free_energy[static_cast<Eigen::Index>(b)]);
    es.push_back(f.free_energy_stderr[static_cast<Eigen::Index>(b)]);
  }
  std::ostringstream s;
  s << gnuplot_datablock("fe", {xs, fs, es});
  s << "set title '" << title << "'\nset xlabel '" << f.axis.name << "'\nset ylabel 'F / kT'\nset grid\nunset key\n"
    << "plot $fe using 1:2:3 with yerrorlines lw 2 pt 7 ps 0.5 lc rgb '#4477aa'\n";
  return run_gnuplot(s.str(), png);
}

}  // namespace boltzlab
