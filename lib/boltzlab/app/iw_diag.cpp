#include "boltzlab/app/iw_diag.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "boltzlab/app/molecular_outputs.hpp"
#include "boltzlab/core/constants.hpp"
#include "boltzlab/core/error.hpp"
#include "boltzlab/estimators/ramachandran_compare.hpp"
#include "boltzlab/io/config.hpp"
#include "boltzlab/io/npy.hpp"

namespace fs = std::filesystem;

namespace boltzlab {

namespace {

/// frames.npy larger than this many values is not loaded for chain diagnostics.
constexpr std::size_t kMaxFrameValues = 50'000'000;

/// Contract keys of the importance-weight section mirrored at the top of summary.json.
const char* kWeightKeys[] = {"kish_ess", "ess_fraction", "kish_ess_clipped", "ess_fraction_clipped",
                             "max_weight_share", "psis_khat", "psis_reliable", "psis_diagnosis"};
/// Contract keys of the chains section mirrored at the top of summary.json.
const char* kChainKeys[] = {"rhat", "ess_bulk", "ess_tail"};

/// Guess for run directories written before summary.json carried "interacting":
/// the particle flows whose particles interact have one of these in their name.
bool guess_interacting_from_flow_name(const std::string& flow) {
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

/// Copies `keys` (and their "_reason" where present) from a section to the top level.
template <std::size_t N>
void mirror_keys(nlohmann::json& s, const nlohmann::json& section, const char* const (&keys)[N]) {
  for (const char* key : keys) {
    s[key] = section[key];
    const std::string reason = std::string(key) + "_reason";
    if (section.contains(reason)) s[reason] = section[reason];
  }
}

/// Range of column values with positive weight, padded so the maxima fall inside;
/// none (with `why` set) when there is no finite value or the range overflows (the
/// samples of an exploded run).
std::optional<std::pair<double, double>> data_range(const Eigen::VectorXd& v, const Eigen::VectorXd& lw,
                                                    const std::string& name, std::string& why) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (Eigen::Index i = 0; i < v.size(); ++i) {
    if (lw.size() && !std::isfinite(lw[i])) continue;
    if (!std::isfinite(v[i])) continue;
    lo = std::min(lo, v[i]);
    hi = std::max(hi, v[i]);
  }
  if (!std::isfinite(lo)) {
    why = "no finite values of " + name + " with positive weight";
    return std::nullopt;
  }
  const double pad = std::max(1e-9, 1e-6 * (hi - lo));
  if (!std::isfinite(hi - lo) || !std::isfinite(lo - pad) || !std::isfinite(hi + pad)) {
    why = "the values of " + name + " span [" + format_number(lo) + ", " + format_number(hi) +
          "], beyond the double range (exploded samples)";
    return std::nullopt;
  }
  if (hi - lo < 1e-12) return std::make_pair(lo - 0.5, hi + 0.5);
  return std::make_pair(lo - pad, hi + pad);
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

namespace {

/// frames.npy (frames × particles × dim) as chains: particle i is chain i, frame t
/// its draw t, coordinates the parameters.
ChainArray frames_as_chains(const NpyArray& f) {
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
  return c;
}

/// chains.npy, else frames.npy (skipped with a note when too large).
void load_chains(const fs::path& dir, IwDiagInput& in) {
  std::error_code ec;
  if (fs::exists(dir / "chains.npy", ec)) {
    in.chains = read_chains_npy(dir / "chains.npy");
    in.chains_source = "chains.npy";
    return;
  }
  if (!fs::exists(dir / "frames.npy", ec)) return;
  NpyArray f = read_npy(dir / "frames.npy");
  if (f.shape.size() != 3) {
    throw DomainError((dir / "frames.npy").string() + ": expected (frames, particles, dim), got shape " +
                      shape_string(f.shape));
  }
  if (f.size() > kMaxFrameValues) {
    in.notes.push_back("frames.npy has " + std::to_string(f.size()) + " values: too large, chain diagnostics skipped");
  } else if (f.size() > 0) {
    in.chains = frames_as_chains(f);
    in.chains_source = "frames.npy (particles as chains, frames as draws)";
  }
}

/// The string at `key` of object `j`, or "" when absent or not a string.
std::string string_or_empty(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

SourceRun source_run_of(const nlohmann::json& s) {
  SourceRun r;
  if (s.contains("potential") && s["potential"].is_object()) {
    const auto& p = s["potential"];
    r.potential = p.contains("name") && p["name"].is_string() ? p["name"].get<std::string>() : string_or_empty(p, "path");
  } else {
    r.potential = string_or_empty(s, "potential");
  }
  r.tool = string_or_empty(s, "tool");
  return r;
}

/// kT and the exact log Z: under potential (log_z) and potential.target
/// (run_outputs), or under target (md-reference).
void read_target(const nlohmann::json& s, IwDiagInput& in) {
  const nlohmann::json* target = nullptr;
  if (s.contains("potential") && s["potential"].is_object()) {
    const auto& p = s["potential"];
    if (p.contains("log_z") && p["log_z"].is_number()) in.exact_log_z = p["log_z"].get<double>();
    if (p.contains("target") && p["target"].is_object()) target = &p["target"];
  }
  if (!target && s.contains("target") && s["target"].is_object()) target = &s["target"];
  if (!target) return;
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

/// Whether the run's particles interact: the top-level "interacting" flag, else (runs
/// written before it existed) a guess from options.flow, remembered so that the
/// report can say so.
void read_interacting(const nlohmann::json& s, const fs::path& file, IwDiagInput& in) {
  const std::string flow = s.contains("options") && s["options"].is_object() ? string_or_empty(s["options"], "flow") : "";
  if (s.contains("interacting")) {
    if (!s["interacting"].is_boolean()) {
      throw DomainError(file.string() + ": \"interacting\" is " + s["interacting"].dump() + ", but must be true or false");
    }
    in.interacting = s["interacting"].get<bool>();
  } else if (!flow.empty()) {
    in.interacting = guess_interacting_from_flow_name(flow);
    in.interacting_inferred_from_flow = flow;
  }
  if (in.interacting) {
    in.notes.push_back(flow.empty() ? std::string("the run's particles interact") : "flow '" + flow + "' moves interacting particles");
  }
}

}  // namespace

IwDiagInput load_run_directory(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError(dir.string() + ": not a directory (--run expects a run directory)");
  IwDiagInput in;
  in.description = "run directory " + dir.string();
  in.sources.push_back(dir);
  auto has = [&](const char* name) { return fs::exists(dir / name, ec); };
  nlohmann::json summary;
  if (has("summary.json")) summary = read_json_file(dir / "summary.json");
  if (has("log_weights.npy")) in.log_weights = read_npy_vector(dir / "log_weights.npy");
  if (has("log_q.npy")) in.log_q = read_npy_vector(dir / "log_q.npy");
  if (has("reduced_energies.npy")) in.reduced_energies = read_npy_vector(dir / "reduced_energies.npy");
  if (has("samples.npy")) in.samples = read_npy_matrix(dir / "samples.npy");
  if (has("dihedrals.npy")) in.dihedrals = read_npy_matrix(dir / "dihedrals.npy", 2);
  load_chains(dir, in);
  if (summary.is_object()) {
    in.source_run = source_run_of(summary);
    read_target(summary, in);
    read_interacting(summary, dir / "summary.json", in);
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

InferenceData importance_inference_data(const IwDiagInput& input) {
  if (!input.samples) throw ConfigError("--netcdf: " + input.description + " has no samples to write");
  const RowMatrix& x = *input.samples;
  InferenceData data;
  data.chains = 1;
  data.draws = static_cast<std::size_t>(x.rows());
  data.posterior = {{"x", {static_cast<std::size_t>(x.cols())}, {x.data(), x.data() + x.size()}}};
  auto add = [&](const char* name, const Eigen::VectorXd& v) {
    data.sample_stats.push_back({name, {}, {v.data(), v.data() + v.size()}});
  };
  // The order of inference_data_from_run: log_weight, log_q, reduced_energy, lp.
  if (input.log_weights) {
    add("log_weight", *input.log_weights);
  } else if (input.log_q && input.reduced_energies && input.log_q->size() == input.reduced_energies->size()) {
    add("log_weight", Eigen::VectorXd(-*input.reduced_energies - *input.log_q));
  }
  if (input.log_q) add("log_q", *input.log_q);
  if (input.reduced_energies) {
    add("reduced_energy", *input.reduced_energies);
    add("lp", Eigen::VectorXd(-*input.reduced_energies));
  }
  if (input.source_run && !input.source_run->tool.empty()) data.attributes["tool"] = input.source_run->tool;
  if (input.source_run && !input.source_run->potential.empty()) data.attributes["potential"] = input.source_run->potential;
  data.attributes["input"] = input.description;
  data.validate();
  return data;
}

InferenceData run_directory_inference_data(const fs::path& dir) {
  return importance_inference_data(load_run_directory(dir));
}

nlohmann::json FreeEnergySection::to_json() const {
  nlohmann::json j = std::visit([](const auto& f) { return boltzlab::to_json(f); }, result);
  if (!kind.empty()) j["kind"] = kind;
  return j;
}

nlohmann::json IwDiagReport::to_json() const {
  nlohmann::json s = nlohmann::json::object();
  s["tool"] = "iw-diag";
  s["input"] = input;
  if (source_run) s["source_run"] = {{"tool", source_run->tool}, {"potential", source_run->potential}};
  if (weights) {
    const nlohmann::json w = weights->to_json();
    mirror_keys(s, w, kWeightKeys);
    s["log_z"] = {{"estimate", w["log_z"]["estimate"]}, {"stderr", w["log_z"]["stderr"]}};
    for (const char* key : {"estimate_reason", "stderr_reason", "ci_low", "ci_high", "level", "free_energy_kj_mol",
                            "stderr_kj_mol", "exact", "z_score"}) {
      if (w["log_z"].contains(key)) s["log_z"][key] = w["log_z"][key];
    }
    s["weights"] = w;
  } else {
    for (const char* key : kWeightKeys) put_missing(s, key, weights_reason);
    s["log_z"] = {{"estimate", nullptr}, {"estimate_reason", weights_reason}, {"stderr", nullptr},
                  {"stderr_reason", weights_reason}};
    s["weights_reason"] = weights_reason;
  }
  if (chains) {
    const nlohmann::json c = chains->to_json();
    mirror_keys(s, c, kChainKeys);
    s["chains"] = c;
  } else {
    s["chains_reason"] = chains_reason;
    for (const char* key : kChainKeys) put_missing(s, key, chains_reason);
  }
  if (weight_counts) s["weight_counts"] = weight_counts->to_json();
  if (free_energy) {
    s["free_energy"] = free_energy->to_json();
  } else if (!free_energy_reason.empty()) {
    put_missing(s, "free_energy", free_energy_reason);
  }
  if (ramachandran) {
    nlohmann::json r = {{"reference", reference_source}};
    r.update(ramachandran->to_json());
    s["ramachandran_vs_reference"] = r;
  }
  if (free_energy_difference) {
    s["free_energy_difference"] = boltzlab::to_json(*free_energy_difference, kt_kj_mol);
  } else if (!free_energy_difference_reason.empty()) {
    put_missing(s, "free_energy_difference", free_energy_difference_reason);
  }
  s["plots"] = nlohmann::json(plots);
  s["notes"] = notes;
  return s;
}

std::string format_report(const IwDiagReport& r) {
  std::ostringstream o;
  o << "iw-diag: " << r.input << "\n";
  if (r.weights) {
    o << format_importance_report(*r.weights);
  } else {
    o << "\nImportance weights: n/a (" << r.weights_reason << ")\n";
  }
  if (!r.free_energy && !r.free_energy_reason.empty()) {
    o << "\nFree-energy surface: not computed (" << r.free_energy_reason << ")\n";
  }
  if (r.chains) {
    o << format_chains_report(*r.chains);
  } else {
    o << "\nChains: n/a (" << r.chains_reason << ")\n";
  }
  if (r.free_energy_difference) o << format_free_energy_difference(*r.free_energy_difference, r.kt_kj_mol);
  if (!r.free_energy_difference && !r.free_energy_difference_reason.empty()) {
    o << "\nFree-energy difference: not computed (" << r.free_energy_difference_reason << ")\n";
  }
  if (r.ramachandran) o << format_ramachandran_comparison(*r.ramachandran, r.reference_source);
  if (!r.plots.empty()) {
    o << "\nPlots:";
    for (const auto& [name, status] : r.plots) {
      if (status == "ok") o << " " << name;
    }
    o << "\n";
  }
  for (const auto& n : r.notes) o << "note: " << n << "\n";
  return o.str();
}

namespace {

/// Log-weights of the input and the count of non-finite energies.
struct InputWeights {
  std::optional<Eigen::VectorXd> log_weights;  ///< usable log-weights (none: not given, or unusable)
  std::size_t non_finite = 0;
  std::optional<LogWeightCounts> unusable;     ///< counts, set when weights were given but are unusable
  std::string problem;                         ///< why they are unusable
};

/// The log-weights (given, or −u − log q), checked against the lengths of the
/// energies, samples and dihedrals. NaN/+inf or all −inf log-weights are returned as
/// `unusable` with their counts. \throws DomainError naming a length mismatch, an
/// empty array or a non-finite log q.
InputWeights input_weights(const IwDiagInput& in) {
  InputWeights w;
  std::optional<Eigen::VectorXd> raw;
  std::string what = "log-weights";
  if (in.log_weights) {
    raw = *in.log_weights;
    if (raw->size() == 0) throw DomainError("log-weights: empty array (no samples)");
    if (in.reduced_energies && in.reduced_energies->size() != raw->size()) {
      throw DomainError("iw-diag: " + std::to_string(raw->size()) + " log-weights but " +
                        std::to_string(in.reduced_energies->size()) + " reduced energies (lengths must match)");
    }
    if (in.reduced_energies) {
      for (Eigen::Index i = 0; i < in.reduced_energies->size(); ++i) w.non_finite += !std::isfinite((*in.reduced_energies)[i]);
    }
  } else if (in.reduced_energies && in.log_q) {
    raw = log_importance_weights(*in.reduced_energies, *in.log_q, &w.non_finite);
    what = "log-weights (−u − log q)";
  }
  const std::size_t n_samples = raw ? static_cast<std::size_t>(raw->size()) : 0;
  if (raw) {
    const LogWeightCounts counts = count_log_weights(*raw);
    w.problem = counts.problem();
    if (w.problem.empty()) {
      w.log_weights = std::move(raw);
    } else {
      w.unusable = counts;
      w.problem = what + ": " + w.problem;
    }
  }
  for (const auto* m : {in.samples ? &*in.samples : nullptr, in.dihedrals ? &*in.dihedrals : nullptr}) {
    if (m && n_samples > 0 && static_cast<std::size_t>(m->rows()) != n_samples) {
      throw DomainError("iw-diag: " + std::to_string(m->rows()) + " samples but " + std::to_string(n_samples) +
                        " log-weights (lengths must match)");
    }
  }
  if (w.unusable && !in.samples && !in.dihedrals && !in.chains) {
    throw DomainError(w.problem + "; nothing else to analyse");
  }
  return w;
}

void record_plot(IwDiagReport& report, const std::string& name, const PlotResult& r) {
  report.plots[name] = r.ok ? "ok" : r.note;
  if (!r.ok) report.notes.push_back(r.note);
}

/// The importance-weight section; writes psis_log_weights.npy and the weight plots.
void weights_section(const IwDiagInput& in, const InputWeights& w, const IwDiagOptions& options,
                     const RunDirectory* out, IwDiagReport& report) {
  if (w.unusable) {
    report.weights_reason = w.problem;
    report.weight_counts = w.unusable;
    return;
  }
  if (!w.log_weights) {
    report.weights_reason = in.reduced_energies
                                ? "no proposal log-densities (log_q.npy) or log_weights.npy: the samples carry no "
                                  "importance weights (MCMC/particle samples are equally weighted)"
                                : "no importance weights given (--log-weights, --run with log_q.npy or "
                                  "log_weights.npy, or --samples/--log-q/--potential)";
    return;
  }
  const Eigen::VectorXd& lw = *w.log_weights;
  ImportanceReportOptions ro;
  ro.r_eff = options.r_eff;
  ro.clip_fraction = options.clip_fraction;
  ro.level = options.level;
  ro.kt_kj_mol = in.kt_kj_mol;
  ro.exact_log_z = in.exact_log_z;
  report.weights = importance_report(lw, w.non_finite, ro);
  if (!out) return;
  const PsisResult& p = report.weights->psis;
  out->write_array("psis_log_weights.npy", p.smoothed_log_weights);
  if (options.plots) {
    record_plot(report, "weight_distribution.png", plot_weight_distribution(lw, p, out->path("weight_distribution.png")));
    record_plot(report, "ess_curve.png", plot_ess_curve(kish_ess_curve(lw), out->path("ess_curve.png")));
  }
}

/// The first `params` parameters of `c`.
ChainArray first_parameters(const ChainArray& c, std::size_t params) {
  ChainArray cut;
  cut.chains = c.chains;
  cut.draws = c.draws;
  cut.params = params;
  cut.data.resize(cut.chains * cut.draws * cut.params);
  for (std::size_t r = 0; r < c.chains * c.draws; ++r) {
    for (std::size_t k = 0; k < cut.params; ++k) cut.data[r * cut.params + k] = c.data[r * c.params + k];
  }
  return cut;
}

/// The chains section (at most options.max_chain_params parameters).
void chains_section(const IwDiagInput& in, const IwDiagOptions& options, IwDiagReport& report) {
  if (!in.chains) {
    report.chains_reason = "no chains given (--chains, or chains.npy / frames.npy in the run directory)";
    return;
  }
  ChainArray c = *in.chains;
  c.validate();
  if (c.params > options.max_chain_params) {
    report.notes.push_back("chains have " + std::to_string(c.params) + " parameters: diagnosing the first " +
                           std::to_string(options.max_chain_params));
    c = first_parameters(c, options.max_chain_params);
  }
  report.chains = chains_report(c, in.chain_names, in.interacting);
  report.chains->source = in.chains_source;
  if (!in.interacting_inferred_from_flow.empty()) {
    report.chains->notes.push_back(std::string("interacting = ") + (in.interacting ? "true" : "false") +
                                   " was inferred from the flow name '" + in.interacting_inferred_from_flow +
                                   "': the run's summary.json has no \"interacting\" flag (written before it existed)");
  }
}

/// Writes free_energy.npy and free_energy_stderr.npy of `f` and, with plots on, the
/// plot `png` drawn by `plot(path)`.
template <class Surface, class Plot>
void write_free_energy(const Surface& f, const std::string& png, const IwDiagOptions& options,
                       const RunDirectory* out, IwDiagReport& report, Plot plot) {
  if (!out) return;
  out->write_array("free_energy.npy", f.free_energy);
  out->write_array("free_energy_stderr.npy", f.free_energy_stderr);
  if (options.plots) record_plot(report, png, plot(out->path(png)));
}

/// Coordinates the regions of a free-energy difference are evaluated on.
struct RegionCoordinates {
  const RowMatrix* coords = nullptr;
  std::vector<std::string> names;
};

/// Bins per axis of a 2-D free-energy map: --bins, else histogram_bins_per_axis() of the
/// effective sample size (the Kish ESS of the weights, else the number of samples), so
/// that a map of 512 samples is not cut into 50² mostly empty bins.
std::size_t map_bins(std::size_t given, Eigen::Index samples, const Eigen::VectorXd& lw) {
  if (given) return given;
  return histogram_bins_per_axis(lw.size() > 0 ? kish_ess(lw) : static_cast<double>(samples));
}

/// The reweighted Ramachandran surface of the dihedrals (periodic φ/ψ axes); its plot is
/// the Ramachandran figure of every tool (app/molecular_outputs.hpp), with the reference
/// beside it when one is given.
void ramachandran_surface(const IwDiagInput& in, const RowMatrix& d, const Eigen::VectorXd& lw,
                          const IwDiagOptions& options, const RunDirectory* out, IwDiagReport& report) {
  const bool weighted = lw.size() > 0;
  const std::size_t bins = map_bins(options.bins, d.rows(), lw);
  const HistogramAxis ax{"phi", -kPi, kPi, bins, true}, ay{"psi", -kPi, kPi, bins, true};
  const FreeEnergy2D f = free_energy_2d(d.col(0), d.col(1), lw, ax, ay);
  report.free_energy = FreeEnergySection{f, weighted ? "Ramachandran, reweighted to the target"
                                                     : "Ramachandran, unweighted samples"};
  write_free_energy(f, "ramachandran_free_energy.png", options, out, report, [&](const fs::path& png) {
    const Eigen::VectorXd phi = d.col(0), psi = d.col(1);
    try {
      return plot_ramachandran(ramachandran_figure(phi, psi, weighted ? &lw : nullptr,
                                                   in.reference_dihedrals ? &*in.reference_dihedrals : nullptr,
                                                   in.reference_source,
                                                   weighted ? "Ramachandran (reweighted)" : "Ramachandran"),
                               png);
    } catch (const DomainError& e) {  // a plot never fails the diagnosis
      return PlotResult{false, png.filename().string() + " skipped: " + e.what()};
    }
  });
}

/// The reweighted surface of two sample columns (options.fes_columns), or the
/// profile of one-dimensional samples.
void samples_surface(const RowMatrix& x, const std::vector<std::string>& names, const Eigen::VectorXd& lw,
                     const IwDiagOptions& options, const RunDirectory* out, IwDiagReport& report) {
  const bool weighted = lw.size() > 0;
  const std::string prefix = weighted ? "reweighted " : "";
  if (x.cols() < 2) {
    const std::size_t bins = options.bins ? options.bins : 50;
    const auto r = data_range(x.col(0), lw, "x0", report.free_energy_reason);
    if (!r) return;
    const HistogramAxis ax{"x0", r->first, r->second, bins, false};
    const FreeEnergy1D f = free_energy_1d(x.col(0), lw, ax);
    report.free_energy = FreeEnergySection{f, ""};
    write_free_energy(f, "free_energy.png", options, out, report, [&](const fs::path& png) {
      return plot_free_energy_1d(f, prefix + "free energy, kT", png);
    });
    return;
  }
  const auto cx = static_cast<Eigen::Index>(options.fes_columns[0]), cy = static_cast<Eigen::Index>(options.fes_columns[1]);
  if (cx >= x.cols() || cy >= x.cols()) {
    throw DomainError("iw-diag: --fes-columns " + std::to_string(cx) + "," + std::to_string(cy) + " out of range for " +
                      std::to_string(x.cols()) + "-dimensional samples");
  }
  const std::size_t bins = map_bins(options.bins, x.rows(), lw);
  const auto rx = data_range(x.col(cx), lw, names[static_cast<std::size_t>(cx)], report.free_energy_reason);
  const auto ry = data_range(x.col(cy), lw, names[static_cast<std::size_t>(cy)], report.free_energy_reason);
  if (!rx || !ry) return;
  const HistogramAxis ax{names[static_cast<std::size_t>(cx)], rx->first, rx->second, bins, false};
  const HistogramAxis ay{names[static_cast<std::size_t>(cy)], ry->first, ry->second, bins, false};
  const FreeEnergy2D f = free_energy_2d(x.col(cx), x.col(cy), lw, ax, ay);
  report.free_energy = FreeEnergySection{f, weighted ? "2-D marginal, reweighted to the target"
                                                     : "2-D marginal, unweighted samples"};
  write_free_energy(f, "free_energy.png", options, out, report, [&](const fs::path& png) {
    return plot_free_energy_2d(f, prefix + "free energy of (" + ax.name + ", " + ay.name + "), kT", png);
  });
}

/// Why the importance weights must not be used to reweight ("" when they may be, or
/// when there are none): unusable weights, or PSIS k̂ ≥ 1.
std::string reweighting_veto(const InputWeights& w, const IwDiagReport& report) {
  if (w.unusable) return "the importance weights are unusable: " + w.problem;
  if (!report.weights || !report.weights->psis.khat.finite()) return "";
  const double khat = *report.weights->psis.khat.value;
  if (khat < 1) return "";
  std::ostringstream why;
  why.precision(3);
  why << "PSIS k̂ = " << khat << " ≥ 1: the importance weights have no finite mean, so a reweighted estimate is "
      << "dominated by a few draws and does not converge (Vehtari et al. 2024); improve the proposal";
  return why.str();
}

/// The free-energy section: Ramachandran surface of the dihedrals, else the surface
/// of the samples; skipped with the reason when reweighting is vetoed. Returns the
/// coordinates for region free-energy differences.
RegionCoordinates free_energy_section(const IwDiagInput& in, const Eigen::VectorXd& lw, const std::string& veto,
                                      const IwDiagOptions& options, const RunDirectory* out, IwDiagReport& report) {
  RegionCoordinates rc;
  const bool coordinates = in.dihedrals || (in.samples && in.samples->rows() > 0);
  if (coordinates && !veto.empty()) {
    report.free_energy_reason = veto;
    return rc;
  }
  if (in.dihedrals) {
    rc.coords = &*in.dihedrals;
    rc.names = {"phi", "psi"};
    ramachandran_surface(in, *in.dihedrals, lw, options, out, report);
  } else if (in.samples && in.samples->rows() > 0) {
    const RowMatrix& x = *in.samples;
    rc.coords = &x;
    for (Eigen::Index k = 0; k < x.cols(); ++k) rc.names.push_back("x" + std::to_string(k));
    samples_surface(x, rc.names, lw, options, out, report);
  }
  return rc;
}

/// The comparison of the (weighted) dihedrals with the reference run's dihedrals
/// (skipped with a note when the weights are unusable).
void reference_section(const IwDiagInput& in, const InputWeights& w, IwDiagReport& report) {
  if (!in.reference_dihedrals) return;
  if (!in.dihedrals)
    throw DomainError("iw-diag: --reference needs dihedrals (dihedrals.npy of a molecular run, or --samples "
                      "with a molecular --potential)");
  if (w.unusable) {
    report.notes.push_back("Ramachandran comparison with the reference skipped: the importance weights are unusable");
    return;
  }
  report.reference_source = in.reference_source;
  report.ramachandran = compare_ramachandran(in.dihedrals->col(0), in.dihedrals->col(1),
                                             w.log_weights ? &*w.log_weights : nullptr, *in.reference_dihedrals);
}

/// ΔF between the regions of options.regions (default for dihedrals: φ < 0 vs φ ≥ 0);
/// skipped with the reason when reweighting is vetoed.
void region_section(const IwDiagInput& in, const IwDiagOptions& options, const RegionCoordinates& rc,
                    const Eigen::VectorXd& lw, const std::string& veto, IwDiagReport& report) {
  std::vector<std::string> regions = options.regions;
  if (regions.empty() && in.dihedrals) regions = {"phi<0", "phi>=0"};
  if (regions.empty()) return;
  if (!veto.empty() && (in.dihedrals || in.samples)) {
    report.free_energy_difference_reason = veto;
    return;
  }
  if (!rc.coords) throw DomainError("iw-diag: --region needs samples or dihedrals to evaluate the regions on");
  const Region a = parse_region(regions[0], rc.names), b = parse_region(regions[1], rc.names);
  report.free_energy_difference = free_energy_difference(*rc.coords, lw, a, b);
  report.kt_kj_mol = in.kt_kj_mol;
}

}  // namespace

IwDiagReport iw_diagnose(const IwDiagInput& in, const IwDiagOptions& options, const RunDirectory* out) {
  options.validate();
  if (out) {  // never write over what is read (iw-diag --run D --out D)
    std::vector<fs::path> sources = in.sources;
    sources.emplace_back(in.chains_source);
    sources.emplace_back(in.reference_source);
    out->refuse_inputs(sources);
  }
  IwDiagReport report;
  report.input = in.description;
  report.source_run = in.source_run;
  report.notes = in.notes;
  const InputWeights w = input_weights(in);
  weights_section(in, w, options, out, report);
  chains_section(in, options, report);
  const Eigen::VectorXd lw = w.log_weights ? *w.log_weights : Eigen::VectorXd();
  const std::string veto = reweighting_veto(w, report);
  const RegionCoordinates rc = free_energy_section(in, lw, veto, options, out, report);
  reference_section(in, w, report);
  region_section(in, options, rc, lw, veto, report);
  if (out) out->write_summary(report.to_json());
  return report;
}

}  // namespace boltzlab
