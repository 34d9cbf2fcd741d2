#include "boltzlab/app/iw_diag.hpp"
#include "boltzlab/estimators/ramachandran_compare.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "boltzlab/core/error.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/io/npy.hpp"

namespace fs = std::filesystem;

namespace boltzlab {

namespace {

constexpr double kPi = 3.14159265358979323846;
/// frames.npy larger than this many values is not loaded for chain diagnostics.
constexpr std::size_t kMaxFrameValues = 50'000'000;

const char* kWeightKeys[] = {"kish_ess", "ess_fraction", "kish_ess_clipped", "ess_fraction_clipped",
                             "max_weight_share", "psis_khat", "psis_reliable", "psis_diagnosis"};

bool is_interacting_flow(const std::string& flow) {
  std::string f = flow;
  std::transform(f.begin(), f.end(), f.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* key : {"svgd", "blob", "mmd", "stein", "interact", "kde"}) {
    if (f.find(key) != std::string::npos) return true;
  }
  return false;
}

void put_missing(nlohmann::json& s, const std::string& key, const std::string& reason) {
  s[key] = nullptr;
  s[key + "_reason"] = reason;
}

/// Range of column values with positive weight, padded so the maxima fall inside.
std::pair<double, double> data_range(const Eigen::VectorXd& v, const Eigen::VectorXd& lw) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (Eigen::Index i = 0; i < v.size(); ++i) {
    if (lw.size() && !std::isfinite(lw[i])) continue;
    if (!std::isfinite(v[i])) continue;
    lo = std::min(lo, v[i]);
    hi = std::max(hi, v[i]);
  }
  if (!std::isfinite(lo)) throw DomainError("free energy: no finite coordinate values with positive weight");
  const double pad = std::max(1e-9, 1e-6 * (hi - lo));
  if (hi - lo < 1e-12) return {lo - 0.5, hi + 0.5};
  return {lo - pad, hi + pad};
}

void record_plot(nlohmann::json& plots, nlohmann::json& notes, const std::string& name, const PlotResult& r) {
  plots[name] = r.ok ? "ok" : r.note;
  if (!r.ok) notes.push_back(r.note);
}

/// Angles centred on their circular mean and wrapped to (−π, π], so the cut lies
/// opposite the bulk of the distribution (R̂/ESS of raw angles would see the wrap).
Eigen::VectorXd centred_angles(const Eigen::VectorXd& a) {
  double sx = 0, sy = 0;
  for (Eigen::Index i = 0; i < a.size(); ++i) {
    if (std::isfinite(a[i])) {
      sx += std::cos(a[i]);
      sy += std::sin(a[i]);
    }
  }
  const double mean = std::atan2(sy, sx);
  Eigen::VectorXd out(a.size());
  for (Eigen::Index i = 0; i < a.size(); ++i) out[i] = std::remainder(a[i] - mean, 2 * kPi);
  return out;
}

}  // namespace

ChainArray replica_chains(const Eigen::VectorXd& replica, const Eigen::VectorXd& reduced_energies,
                          const RowMatrix* dihedrals, std::vector<std::string>& names,
                          std::vector<std::string>& notes) {
  if (replica.size() != reduced_energies.size()) {
    throw DomainError("replica.npy: " + std::to_string(replica.size()) + " entries but " +
                      std::to_string(reduced_energies.size()) + " reduced energies (lengths must match)");
  }
  if (dihedrals && dihedrals->rows() != replica.size()) {
    throw DomainError("dihedrals.npy: " + std::to_string(dihedrals->rows()) + " rows but " +
                      std::to_string(replica.size()) + " frames in replica.npy");
  }
  std::vector<std::vector<Eigen::Index>> rows;
  for (Eigen::Index i = 0; i < replica.size(); ++i) {
    const double r = replica[i];
    if (!(r >= 0) || r != std::floor(r) || r > 1e6) {
      throw DomainError("replica.npy: entry " + std::to_string(i) + " is not a replica index");
    }
    const auto k = static_cast<std::size_t>(r);
    if (rows.size() <= k) rows.resize(k + 1);
    rows[k].push_back(i);
  }
  rows.erase(std::remove_if(rows.begin(), rows.end(), [](const auto& v) { return v.empty(); }), rows.end());
  std::size_t draws = std::numeric_limits<std::size_t>::max();
  for (const auto& v : rows) draws = std::min(draws, v.size());
  for (const auto& v : rows) {
    if (v.size() != draws) {
      notes.push_back("replicas have different frame counts: each chain truncated to " + std::to_string(draws) + " draws");
      break;
    }
  }
  Eigen::VectorXd phi, psi;
  if (dihedrals) {
    phi = centred_angles(dihedrals->col(0));
    psi = centred_angles(dihedrals->col(1));
  }
  ChainArray c;
  c.chains = rows.size();
  c.draws = draws;
  c.params = dihedrals ? 3 : 1;
  names = dihedrals ? std::vector<std::string>{"u", "phi", "psi"} : std::vector<std::string>{"u"};
  c.data.resize(c.chains * c.draws * c.params);
  for (std::size_t ch = 0; ch < c.chains; ++ch) {
    for (std::size_t t = 0; t < draws; ++t) {
      const Eigen::Index i = rows[ch][t];
      double* out = &c.data[(ch * draws + t) * c.params];
      out[0] = reduced_energies[i];
      if (dihedrals) {
        out[1] = phi[i];
        out[2] = psi[i];
      }
    }
  }
  if (dihedrals) notes.push_back("chain parameters phi/psi are centred on their circular means (wrap opposite the bulk)");
  return c;
}

void IwDiagOptions::validate() const {
  ImportanceReportOptions o;
  o.r_eff = r_eff;
  o.clip_fraction = clip_fraction;
  o.level = level;
  try {
    o.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(std::string("iw-diag: --") + e.what());
  }
  if (!regions.empty() && regions.size() != 2) {
    throw ConfigError("iw-diag: --region must be given exactly twice (regions A and B), got " +
                      std::to_string(regions.size()));
  }
  if (fes_columns.size() != 2 || fes_columns[0] == fes_columns[1]) {
    throw ConfigError("iw-diag: --fes-columns needs two different column indices");
  }
  if (bins > 10000) throw ConfigError("iw-diag: --bins is " + std::to_string(bins) + ", at most 10000");
  if (max_chain_params == 0) throw ConfigError("iw-diag: max_chain_params must be ≥ 1");
}

ChainArray read_chains_npy(const fs::path& path) {
  NpyArray a = read_npy(path);
  ChainArray c;
  if (a.shape.size() == 2) {
    c.chains = a.shape[0];
    c.draws = a.shape[1];
    c.params = 1;
  } else if (a.shape.size() == 3) {
    c.chains = a.shape[0];
    c.draws = a.shape[1];
    c.params = a.shape[2];
  } else {
    throw DomainError(path.string() + ": chains must be (chains, draws) or (chains, draws, params), got shape " +
                      shape_string(a.shape));
  }
  if (a.size() == 0) throw DomainError(path.string() + ": empty chains array, shape " + shape_string(a.shape));
  c.data = std::move(a.data);
  c.validate();
  return c;
}

IwDiagInput load_run_directory(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError(dir.string() + ": not a directory (--run expects a run directory)");
  IwDiagInput in;
  in.description = "run directory " + dir.string();
  auto has = [&](const char* name) { return fs::exists(dir / name, ec); };
  if (has("summary.json")) in.run_summary = read_json_file(dir / "summary.json");
  if (has("log_weights.npy")) in.log_weights = read_npy_vector(dir / "log_weights.npy");
  if (has("log_q.npy")) in.log_q = read_npy_vector(dir / "log_q.npy");
  if (has("reduced_energies.npy")) in.reduced_energies = read_npy_vector(dir / "reduced_energies.npy");
  if (has("samples.npy")) in.samples = read_npy_matrix(dir / "samples.npy");
  if (has("dihedrals.npy")) in.dihedrals = read_npy_matrix(dir / "dihedrals.npy", 2);
  if (has("chains.npy")) {
    in.chains = read_chains_npy(dir / "chains.npy");
    in.chains_source = "chains.npy";
  } else if (has("frames.npy")) {
    NpyArray f = read_npy(dir / "frames.npy");
    if (f.shape.size() != 3) {
      throw DomainError((dir / "frames.npy").string() + ": expected (frames, particles, dim), got shape " +
                        shape_string(f.shape));
    }
    if (f.size() > kMaxFrameValues) {
      in.notes.push_back("frames.npy has " + std::to_string(f.size()) + " values: too large, chain diagnostics skipped");
    } else if (f.size() > 0) {
      ChainArray c;
      c.chains = f.shape[1];
      c.draws = f.shape[0];
      c.params = f.shape[2];
      c.data.resize(f.size());
      for (std::size_t t = 0; t < c.draws; ++t) {
        for (std::size_t i = 0; i < c.chains; ++i) {
          for (std::size_t k = 0; k < c.params; ++k) {
            c.data[(i * c.draws + t) * c.params + k] = f.data[(t * c.chains + i) * c.params + k];
          }
        }
      }
      in.chains = std::move(c);
      in.chains_source = "frames.npy (particles as chains, frames as draws)";
    }
  }
  const nlohmann::json& s = in.run_summary;
  if (s.is_object()) {
    // The target description sits under potential.target (run_outputs) or target (md-reference).
    const nlohmann::json* target = nullptr;
    if (s.contains("potential") && s["potential"].is_object()) {
      const auto& p = s["potential"];
      if (p.contains("log_z") && p["log_z"].is_number()) in.exact_log_z = p["log_z"].get<double>();
      if (p.contains("target") && p["target"].is_object()) target = &p["target"];
    }
    if (!target && s.contains("target") && s["target"].is_object()) target = &s["target"];
    if (target) {
      for (const char* key : {"kT_kJ_per_mol", "kt_kj_mol"}) {
        if (target->contains(key) && (*target)[key].is_number()) {
          in.kt_kj_mol = (*target)[key].get<double>();
          break;
        }
      }
      if (!in.exact_log_z && target->contains("log_z") && (*target)["log_z"].is_number()) {
        in.exact_log_z = (*target)["log_z"].get<double>();
      }
    }
    if (s.contains("options") && s["options"].is_object() && s["options"].contains("flow") &&
        s["options"]["flow"].is_string()) {
      const std::string flow = s["options"]["flow"].get<std::string>();
      in.interacting = is_interacting_flow(flow);
      if (in.interacting) in.notes.push_back("flow '" + flow + "' moves interacting particles");
    }
  }
  if (!in.chains && has("replica.npy") && in.reduced_energies) {
    in.chains = replica_chains(read_npy_vector(dir / "replica.npy"), *in.reduced_energies,
                               in.dihedrals ? &*in.dihedrals : nullptr, in.chain_names, in.notes);
    in.chains_source = "replica.npy (replicas as chains, frames in file order as draws)";
  }
  if (!in.log_weights && !in.log_q && !in.reduced_energies && !in.samples && !in.chains && !in.dihedrals) {
    throw IoError(dir.string() + ": nothing to analyse (no log_weights.npy, log_q.npy + reduced_energies.npy, "
                                 "samples.npy, dihedrals.npy, chains.npy or frames.npy)");
  }
  if (!in.log_weights && in.log_q && !in.reduced_energies) {
    throw IoError(dir.string() + ": log_q.npy without reduced_energies.npy: cannot form importance weights");
  }
  return in;
}

nlohmann::json iw_diagnose(const IwDiagInput& in, const IwDiagOptions& options, const RunDirectory* out) {
  options.validate();
  nlohmann::json s = nlohmann::json::object();
  nlohmann::json notes = nlohmann::json::array();
  for (const auto& n : in.notes) notes.push_back(n);
  nlohmann::json plots = nlohmann::json::object();
  s["tool"] = "iw-diag";
  s["input"] = in.description;
  if (in.run_summary.is_object()) {
    const nlohmann::json& rs = in.run_summary;
    std::string potential;
    if (rs.contains("potential") && rs["potential"].is_object()) {
      const auto& p = rs["potential"];
      potential = p.contains("name") && p["name"].is_string() ? p["name"].get<std::string>()
                                                              : (p.contains("path") && p["path"].is_string() ? p["path"].get<std::string>() : "");
    } else if (rs.contains("potential") && rs["potential"].is_string()) {
      potential = rs["potential"].get<std::string>();
    }
    const std::string tool = rs.contains("tool") && rs["tool"].is_string() ? rs["tool"].get<std::string>() : "";
    s["source_run"] = {{"tool", tool}, {"potential", potential}};
  }

  // ---- importance weights
  std::optional<Eigen::VectorXd> lw;
  std::size_t non_finite = 0;
  if (in.log_weights) {
    validate_log_weights(*in.log_weights, "log-weights");
    lw = *in.log_weights;
    if (in.reduced_energies && in.reduced_energies->size() != lw->size()) {
      throw DomainError("iw-diag: " + std::to_string(lw->size()) + " log-weights but " +
                        std::to_string(in.reduced_energies->size()) + " reduced energies (lengths must match)");
    }
    if (in.reduced_energies) {
      for (Eigen::Index i = 0; i < in.reduced_energies->size(); ++i) non_finite += !std::isfinite((*in.reduced_energies)[i]);
    }
  } else if (in.reduced_energies && in.log_q) {
    lw = log_importance_weights(*in.reduced_energies, *in.log_q, &non_finite);
    validate_log_weights(*lw, "log-weights (−u − log q)");
  }
  const std::size_t n_samples = lw ? static_cast<std::size_t>(lw->size()) : 0;
  for (const auto* m : {in.samples ? &*in.samples : nullptr, in.dihedrals ? &*in.dihedrals : nullptr}) {
    if (m && lw && static_cast<std::size_t>(m->rows()) != n_samples) {
      throw DomainError("iw-diag: " + std::to_string(m->rows()) + " samples but " + std::to_string(n_samples) +
                        " log-weights (lengths must match)");
    }
  }
  if (lw) {
    ImportanceReportOptions ro;
    ro.r_eff = options.r_eff;
    ro.clip_fraction = options.clip_fraction;
    ro.level = options.level;
    ro.kt_kj_mol = in.kt_kj_mol;
    ro.exact_log_z = in.exact_log_z;
    nlohmann::json w = importance_report(*lw, non_finite, ro);
    for (const char* key : kWeightKeys) {
      s[key] = w[key];
      if (w.contains(std::string(key) + "_reason")) s[std::string(key) + "_reason"] = w[std::string(key) + "_reason"];
    }
    s["log_z"] = {{"estimate", w["log_z"]["estimate"]}, {"stderr", w["log_z"]["stderr"]}};
    for (const char* key : {"estimate_reason", "stderr_reason", "ci_low", "ci_high", "level", "free_energy_kj_mol",
                            "stderr_kj_mol", "exact", "z_score"}) {
      if (w["log_z"].contains(key)) s["log_z"][key] = w["log_z"][key];
    }
    s["weights"] = w;
    if (out) {
      PsisOptions po;
      po.r_eff = options.r_eff;
      const PsisResult p = pareto_smoothed_importance_sampling(*lw, po);
      out->write_array("psis_log_weights.npy", p.smoothed_log_weights);
      if (options.plots) {
        record_plot(plots, notes, "weight_distribution.png",
                    plot_weight_distribution(*lw, p, out->path("weight_distribution.png")));
        record_plot(plots, notes, "ess_curve.png", plot_ess_curve(kish_ess_curve(*lw), out->path("ess_curve.png")));
      }
    }
  } else {
    const std::string why = in.reduced_energies
                                ? "no proposal log-densities (log_q.npy) or log_weights.npy: the samples carry no "
                                  "importance weights (MCMC/particle samples are equally weighted)"
                                : "no importance weights given (--log-weights, --run with log_q.npy or "
                                  "log_weights.npy, or --samples/--log-q/--potential)";
    for (const char* key : kWeightKeys) put_missing(s, key, why);
    s["log_z"] = {{"estimate", nullptr}, {"estimate_reason", why}, {"stderr", nullptr}, {"stderr_reason", why}};
    s["weights_reason"] = why;
  }

  // ---- chains
  if (in.chains) {
    ChainArray c = *in.chains;
    c.validate();
    std::vector<std::string> names = in.chain_names;
    if (c.params > options.max_chain_params) {
      notes.push_back("chains have " + std::to_string(c.params) + " parameters: diagnosing the first " +
                      std::to_string(options.max_chain_params));
      ChainArray cut;
      cut.chains = c.chains;
      cut.draws = c.draws;
      cut.params = options.max_chain_params;
      cut.data.resize(cut.chains * cut.draws * cut.params);
      for (std::size_t r = 0; r < c.chains * c.draws; ++r) {
        for (std::size_t k = 0; k < cut.params; ++k) cut.data[r * cut.params + k] = c.data[r * c.params + k];
      }
      c = std::move(cut);
    }
    nlohmann::json cr = chains_report(c, names, in.interacting);
    cr["source"] = in.chains_source;
    for (const char* key : {"rhat", "ess_bulk", "ess_tail"}) {
      s[key] = cr[key];
      if (cr.contains(std::string(key) + "_reason")) s[std::string(key) + "_reason"] = cr[std::string(key) + "_reason"];
    }
    s["chains"] = cr;
  } else {
    const std::string why = "no chains given (--chains, or chains.npy / frames.npy in the run directory)";
    s["chains_reason"] = why;
    for (const char* key : {"rhat", "ess_bulk", "ess_tail"}) put_missing(s, key, why);
  }

  // ---- free energies
  const Eigen::VectorXd fes_lw = lw ? *lw : Eigen::VectorXd();
  const RowMatrix* coords = nullptr;
  std::vector<std::string> names;
  if (in.dihedrals) {
    const RowMatrix& d = *in.dihedrals;
    coords = &d;
    names = {"phi", "psi"};
    const std::size_t bins = options.bins ? options.bins : 64;
    const HistogramAxis ax{"phi", -kPi, kPi, bins, true}, ay{"psi", -kPi, kPi, bins, true};
    const FreeEnergy2D f = free_energy_2d(d.col(0), d.col(1), fes_lw, ax, ay);
    s["free_energy"] = to_json(f);
    s["free_energy"]["kind"] = lw ? "Ramachandran, reweighted to the target" : "Ramachandran, unweighted samples";
    if (out) {
      out->write_array("free_energy.npy", f.free_energy);
      out->write_array("free_energy_stderr.npy", f.free_energy_stderr);
      if (options.plots) {
        record_plot(plots, notes, "ramachandran_free_energy.png",
                    plot_free_energy_2d(f, lw ? "Ramachandran free energy (reweighted), kT" : "Ramachandran free energy, kT",
                                        out->path("ramachandran_free_energy.png")));
      }
    }
  } else if (in.samples && in.samples->rows() > 0) {
    const RowMatrix& x = *in.samples;
    coords = &x;
    for (Eigen::Index k = 0; k < x.cols(); ++k) names.push_back("x" + std::to_string(k));
    const std::size_t bins = options.bins ? options.bins : 50;
    if (x.cols() >= 2) {
      const auto cx = static_cast<Eigen::Index>(options.fes_columns[0]), cy = static_cast<Eigen::Index>(options.fes_columns[1]);
      if (cx >= x.cols() || cy >= x.cols()) {
        throw DomainError("iw-diag: --fes-columns " + std::to_string(cx) + "," + std::to_string(cy) + " out of range for " +
                          std::to_string(x.cols()) + "-dimensional samples");
      }
      const auto rx = data_range(x.col(cx), fes_lw), ry = data_range(x.col(cy), fes_lw);
      const HistogramAxis ax{names[static_cast<std::size_t>(cx)], rx.first, rx.second, bins, false};
      const HistogramAxis ay{names[static_cast<std::size_t>(cy)], ry.first, ry.second, bins, false};
      const FreeEnergy2D f = free_energy_2d(x.col(cx), x.col(cy), fes_lw, ax, ay);
      s["free_energy"] = to_json(f);
      s["free_energy"]["kind"] = lw ? "2-D marginal, reweighted to the target" : "2-D marginal, unweighted samples";
      if (out) {
        out->write_array("free_energy.npy", f.free_energy);
        out->write_array("free_energy_stderr.npy", f.free_energy_stderr);
        if (options.plots) {
          record_plot(plots, notes, "free_energy.png",
                      plot_free_energy_2d(f, std::string(lw ? "reweighted " : "") + "free energy of (" + ax.name + ", " +
                                                 ay.name + "), kT",
                                          out->path("free_energy.png")));
        }
      }
    } else {
      const auto r = data_range(x.col(0), fes_lw);
      const HistogramAxis ax{"x0", r.first, r.second, bins, false};
      const FreeEnergy1D f = free_energy_1d(x.col(0), fes_lw, ax);
      s["free_energy"] = to_json(f);
      if (out) {
        out->write_array("free_energy.npy", f.free_energy);
        out->write_array("free_energy_stderr.npy", f.free_energy_stderr);
        if (options.plots) {
          record_plot(plots, notes, "free_energy.png",
                      plot_free_energy_1d(f, std::string(lw ? "reweighted " : "") + "free energy, kT", out->path("free_energy.png")));
        }
      }
    }
  }

  // ---- comparison with reference MD dihedrals
  if (in.reference_dihedrals) {
    if (!in.dihedrals)
      throw DomainError("iw-diag: --reference needs dihedrals (dihedrals.npy of a molecular run, or --samples "
                        "with a molecular --potential)");
    nlohmann::json r = {{"reference", in.reference_source}};
    r.update(compare_ramachandran(in.dihedrals->col(0), in.dihedrals->col(1), lw ? &*lw : nullptr,
                                  *in.reference_dihedrals)
                 .to_json());
    s["ramachandran_vs_reference"] = r;
  }

  // ---- region free-energy difference
  std::vector<std::string> regions = options.regions;
  if (regions.empty() && in.dihedrals) regions = {"phi<0", "phi>=0"};
  if (!regions.empty()) {
    if (!coords) throw DomainError("iw-diag: --region needs samples or dihedrals to evaluate the regions on");
    const Region a = parse_region(regions[0], names), b = parse_region(regions[1], names);
    s["free_energy_difference"] = to_json(free_energy_difference(*coords, fes_lw, a, b), in.kt_kj_mol);
  }

  s["plots"] = plots;
  s["notes"] = notes;
  if (out) out->write_summary(s);
  return s;
}

}  // namespace boltzlab
