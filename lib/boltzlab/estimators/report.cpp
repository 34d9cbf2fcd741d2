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

std::string num(const nlohmann::json& v, int precision = 4) {
  if (v.is_null()) return "n/a";
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_integer() || v.is_number_unsigned()) return std::to_string(v.get<long long>());
  if (!v.is_number()) return v.dump();
  std::ostringstream s;
  s << std::setprecision(precision) << v.get<double>();
  return s.str();
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

}  // namespace

void ImportanceReportOptions::validate() const {
  PsisOptions p;
  p.r_eff = r_eff;
  p.validate();
  if (!(clip_fraction >= 0 && clip_fraction < 1)) throw ConfigError("clip_fraction must be in [0, 1)");
  if (!(level > 0 && level < 1)) throw ConfigError("level must be in (0, 1)");
  if (!(kt_kj_mol >= 0) || !std::isfinite(kt_kj_mol)) throw ConfigError("kT must be finite and >= 0");
}

nlohmann::json importance_report(const Eigen::VectorXd& log_weights, std::size_t non_finite_energies,
                                 const ImportanceReportOptions& options) {
  options.validate();
  const WeightDiagnostics d = weight_diagnostics(log_weights, options.clip_fraction);
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

  PsisOptions po;
  po.r_eff = options.r_eff;
  const PsisResult p = pareto_smoothed_importance_sampling(log_weights, po);
  put_quantity(j, "psis_khat", p.khat);
  j["psis_reliable"] = p.reliable;
  j["psis_diagnosis"] = p.diagnosis;
  put_quantity(j, "psis_threshold", std::isfinite(p.threshold) ? Quantity::of(p.threshold)
                                                                : Quantity::missing("undefined for a single sample"));
  put_quantity(j, "psis_min_sample_size", p.min_sample_size);
  j["psis_tail_length"] = p.tail_length;
  put_quantity(j, "psis_sigma", p.khat.ok() ? Quantity::of(p.sigma) : Quantity::missing(p.khat.reason));
  j["psis_kish_ess"] = p.kish_ess;
  j["r_eff"] = options.r_eff;
  j["psis_definition"] = "legacy ArviZ psislw (Vehtari et al. 2024): M = ceil(min(S/5, 3 sqrt(S/r_eff)))";

  nlohmann::json z;
  if (d.samples < 2) {
    z["estimate"] = nullptr;
    z["estimate_reason"] = "needs at least 2 samples";
    z["stderr"] = nullptr;
    z["stderr_reason"] = "needs at least 2 samples";
  } else {
    const LogZEstimate e = estimate_log_z(log_weights, options.level);
    z["estimate"] = e.estimate;
    z["stderr"] = e.standard_error;
    z["ci_low"] = e.ci_low;
    z["ci_high"] = e.ci_high;
    z["level"] = e.level;
    z["method"] = "log-mean-exp of the weights; delta-method stderr sd(w)/(sqrt(S) mean(w))";
    if (options.kt_kj_mol > 0) {
      z["kt_kj_mol"] = options.kt_kj_mol;
      z["free_energy_kj_mol"] = -options.kt_kj_mol * e.estimate;
      z["stderr_kj_mol"] = options.kt_kj_mol * e.standard_error;
    }
    if (options.exact_log_z) {
      z["exact"] = *options.exact_log_z;
      z["z_score"] = (e.estimate - *options.exact_log_z) / e.standard_error;
    }
    if (!p.reliable) {
      z["warning"] = "PSIS k-hat says the weights are unreliable: the stderr is not trustworthy";
    }
  }
  j["log_z"] = z;
  return j;
}

nlohmann::json chains_report(const ChainArray& chains, const std::vector<std::string>& parameter_names,
                             bool interacting) {
  chains.validate();
  nlohmann::json j;
  j["chains"] = chains.chains;
  j["draws"] = chains.draws;
  j["params"] = chains.params;
  std::vector<std::string> names = parameter_names;
  for (std::size_t p = names.size(); p < chains.params; ++p) names.push_back("x" + std::to_string(p));
  names.resize(chains.params);
  j["parameter_names"] = names;
  const char* keys[] = {"rhat", "ess_bulk", "ess_tail", "ess_mean", "iat"};
  std::vector<std::vector<Quantity>> columns(5);
  // Parameters are independent: diagnose them in parallel, collect in order.
  std::vector<ChainDiagnostics> diag(chains.params);
  for_each_index(chains.params, [&](std::size_t p) { diag[p] = chain_diagnostics(chains.parameter(p)); });
  for (const ChainDiagnostics& d : diag) {
    columns[0].push_back(d.rhat);
    columns[1].push_back(d.ess_bulk);
    columns[2].push_back(d.ess_tail);
    columns[3].push_back(d.ess_mean);
    columns[4].push_back(d.iat);
  }
  for (int k = 0; k < 5; ++k) {
    nlohmann::json values = nlohmann::json::array(), reasons = nlohmann::json::array();
    bool any_missing = false;
    for (const Quantity& q : columns[static_cast<std::size_t>(k)]) {
      if (q.ok() && std::isfinite(*q.value)) {
        values.push_back(*q.value);
        reasons.push_back(nullptr);
      } else {
        values.push_back(nullptr);
        reasons.push_back(q.ok() ? "value is not finite" : q.reason);
        any_missing = true;
      }
    }
    j[keys[k]] = values;
    if (any_missing) j[std::string(keys[k]) + "_reason"] = reasons;
  }
  // Summaries: worst R̂ (max) and smallest ESS.
  std::optional<double> rhat_max;
  bool rhat_all = true;
  for (const Quantity& q : columns[0]) {
    if (q.ok()) rhat_max = rhat_max ? std::max(*rhat_max, *q.value) : *q.value;
    else rhat_all = false;
  }
  put_quantity(j, "rhat_max", rhat_max && rhat_all ? Quantity::of(*rhat_max)
                                                   : Quantity::missing(columns[0].empty() || columns[0][0].ok()
                                                                           ? "not available for every parameter"
                                                                           : columns[0][0].reason));
  const Quantity bulk_min = min_quantity(columns[1]), tail_min = min_quantity(columns[2]);
  put_quantity(j, "ess_bulk_min", bulk_min);
  put_quantity(j, "ess_tail_min", tail_min);
  // Vehtari et al. (2021, §4.4): use the draws only if R̂ < 1.01 and bulk- and
  // tail-ESS > 400 (100 per chain for their default of four chains).
  const double need = 400.0;
  nlohmann::json notes = nlohmann::json::array();
  if (rhat_max && rhat_all && bulk_min.ok() && tail_min.ok()) {
    const bool ok = *rhat_max < 1.01 && *bulk_min.value > need && *tail_min.value > need;
    j["converged"] = ok;
    std::ostringstream v;
    v << (ok ? "converged" : "not converged") << ": max R̂ = " << std::setprecision(4) << *rhat_max
      << " (needs < 1.01), min bulk-ESS = " << std::setprecision(4) << *bulk_min.value
      << ", min tail-ESS = " << *tail_min.value << " (need > 400)";
    j["verdict"] = v.str();
  } else {
    j["converged"] = nullptr;
    j["converged_reason"] = rhat_max && rhat_all ? "ESS not available" : "R̂ not available (needs ≥ 2 chains, ≥ 4 draws)";
    j["verdict"] = "convergence cannot be assessed: " + j["converged_reason"].get<std::string>();
  }
  j["independent_chains"] = !interacting;
  if (interacting) notes.push_back(interacting_particles_note());
  j["notes"] = notes;
  j["definitions"] = "rank-normalized split R-hat (max of bulk and folded), bulk/tail ESS with Geyer initial "
                     "positive + monotone sequences (Vehtari et al. 2021; ArviZ definitions)";
  return j;
}

std::string format_report(const nlohmann::json& s) {
  std::ostringstream o;
  if (s.contains("input")) o << "iw-diag: " << s["input"].get<std::string>() << "\n";
  if (s.contains("weights") && s["weights"].is_object()) {
    const auto& w = s["weights"];
    o << "\nImportance weights (" << num(w["samples"]) << " samples";
    if (w.value("zero_weight", 0) > 0) o << ", " << num(w["zero_weight"]) << " with zero weight";
    if (w.value("non_finite_energies", 0) > 0) o << ", " << num(w["non_finite_energies"]) << " non-finite energies";
    o << ")\n";
    o << "  " << pad("Kish ESS", 24) << num(w["kish_ess"], 6) << "  (" << num(w["ess_fraction"]) << " of S)\n";
    if (w.value("clipped", 0) > 0) {
      o << "  " << pad("Kish ESS, top clipped", 24) << num(w["kish_ess_clipped"], 6) << "  (" << num(w["ess_fraction_clipped"])
        << " of S; largest " << num(w["clipped"]) << " log-weights clipped)\n";
    } else {
      o << "  " << pad("Kish ESS, top clipped", 24) << "same (fewer than 1/" << num(w["clip_fraction"])
        << " samples: nothing clipped)\n";
    }
    o << "  " << pad("largest weight share", 24) << num(w["max_weight_share"]) << "\n";
    o << "  " << pad("PSIS k̂", 24) << num(w["psis_khat"]) << "  (threshold " << num(w["psis_threshold"], 3)
      << ", tail M = " << num(w["psis_tail_length"]) << ")\n";
    if (w.contains("psis_khat_reason")) o << "  " << pad("", 24) << w["psis_khat_reason"].get<std::string>() << "\n";
    o << "  " << pad("PSIS verdict", 24) << w.value("psis_diagnosis", std::string()) << "\n";
    if (w["psis_min_sample_size"].is_number()) {
      o << "  " << pad("min sample size", 24) << num(w["psis_min_sample_size"]) << "\n";
    }
    const auto& z = w["log_z"];
    o << "  " << pad("log Z", 24);
    if (z["estimate"].is_null()) {
      o << "n/a (" << z.value("estimate_reason", std::string()) << ")\n";
    } else {
      o << num(z["estimate"], 8) << " ± " << num(z["stderr"], 3) << "  (" << num(z["level"], 3) << " CI "
        << num(z["ci_low"], 8) << " … " << num(z["ci_high"], 8) << ")\n";
      if (z.contains("free_energy_kj_mol")) {
        o << "  " << pad("F = −kT log Z", 24) << num(z["free_energy_kj_mol"], 8) << " ± " << num(z["stderr_kj_mol"], 3)
          << " kJ/mol\n";
      }
      if (z.contains("exact")) {
        o << "  " << pad("exact log Z", 24) << num(z["exact"], 8) << "  (z-score " << num(z["z_score"], 3) << ")\n";
      }
    }
  } else if (s.contains("weights_reason")) {
    o << "\nImportance weights: n/a (" << s["weights_reason"].get<std::string>() << ")\n";
  }
  if (s.contains("chains") && s["chains"].is_object()) {
    const auto& c = s["chains"];
    o << "\nChains (" << num(c["chains"]) << " chains × " << num(c["draws"]) << " draws × " << num(c["params"])
      << " parameters)\n";
    o << "  " << pad("parameter", 14) << pad("R̂", 10) << pad("bulk-ESS", 12) << pad("tail-ESS", 12)
      << pad("ESS(mean)", 12) << "τ\n";
    const std::size_t params = c["params"].get<std::size_t>();
    const std::size_t shown = std::min<std::size_t>(params, 20);
    for (std::size_t p = 0; p < shown; ++p) {
      o << "  " << pad(c["parameter_names"][p].get<std::string>(), 14) << pad(num(c["rhat"][p]), 10)
        << pad(num(c["ess_bulk"][p], 5), 12) << pad(num(c["ess_tail"][p], 5), 12) << pad(num(c["ess_mean"][p], 5), 12)
        << num(c["iat"][p], 4) << "\n";
    }
    if (shown < params) o << "  … " << params - shown << " more parameters in summary.json\n";
    if (c.contains("rhat_reason") && c["rhat"][0].is_null()) {
      o << "  R̂: " << c["rhat_reason"][0].get<std::string>() << "\n";
    }
    o << "  " << c.value("verdict", std::string()) << "\n";
    for (const auto& n : c["notes"]) o << "  note: " << n.get<std::string>() << "\n";
  } else if (s.contains("chains_reason")) {
    o << "\nChains: n/a (" << s["chains_reason"].get<std::string>() << ")\n";
  }
  if (s.contains("free_energy_difference")) {
    const auto& d = s["free_energy_difference"];
    o << "\nFree-energy difference F(" << d["region_a"].get<std::string>() << ") − F("
      << d["region_b"].get<std::string>() << ")\n  ";
    if (d["delta_f_kt"].is_null()) {
      o << "n/a (" << d.value("delta_f_kt_reason", std::string()) << ")\n";
    } else {
      o << num(d["delta_f_kt"], 6) << " ± " << num(d["stderr_kt"], 3) << " kT";
      if (d.contains("delta_f_kj_mol")) o << "  = " << num(d["delta_f_kj_mol"], 6) << " ± " << num(d["stderr_kj_mol"], 3) << " kJ/mol";
      o << "  (populations " << num(d["population_a"]) << " / " << num(d["population_b"]) << ")\n";
    }
  }
  if (s.contains("ramachandran_vs_reference") && s["ramachandran_vs_reference"].contains("forward_kl")) {
    const auto& r = s["ramachandran_vs_reference"];
    const auto& pm = r["phi_positive"]["model"];
    const auto& pr = r["phi_positive"]["reference"];
    o << "\nRamachandran vs reference " << r.value("reference", std::string()) << " (" << num(r["reference_frames"])
      << " frames; noise floor: first vs second half)\n";
    o << "  " << pad("forward KL, 64² bins", 24) << num(r["forward_kl"]["model"]) << "  (noise floor "
      << num(r["forward_kl"]["noise_floor"]) << ")\n";
    o << "  " << pad("TV, 100² bins", 24) << num(r["total_variation"]["model"]) << "  (noise floor "
      << num(r["total_variation"]["noise_floor"]) << ")\n";
    o << "  " << pad("φ ≥ 0 population", 24) << num(pm["mean"]) << " ± " << num(pm["standard_error"], 2)
      << "  (reference " << num(pr["mean"]) << " ± " << num(pr["standard_error"], 2) << ", z " << num(r["phi_positive"]["z"], 3)
      << ")\n";
  }
  if (s.contains("plots") && s["plots"].is_object() && !s["plots"].empty()) {
    o << "\nPlots:";
    for (const auto& [name, status] : s["plots"].items()) {
      if (status == "ok") o << " " << name;
    }
    o << "\n";
  }
  if (s.contains("notes")) {
    for (const auto& n : s["notes"]) o << "note: " << n.get<std::string>() << "\n";
  }
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
