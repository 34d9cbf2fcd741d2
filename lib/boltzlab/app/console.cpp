#include "boltzlab/app/console.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <iostream>
#include <sstream>

#include "boltzlab/core/timing.hpp"

namespace boltzlab {
namespace {

using Json = nlohmann::json;

/// The value at `key` of an object, or null.
const Json& at(const Json& object, const char* key) {
  static const Json kNull;
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

/// Columns a UTF-8 label takes on a terminal: code points, less the combining diacritics
/// U+0300–U+036F (the hat of "k̂", "R̂"), which share the column of the letter before them.
std::size_t display_width(const std::string& text) {
  std::size_t width = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation byte
    const bool combining = (byte == 0xCC || (byte == 0xCD && i + 1 < text.size() &&
                                             static_cast<unsigned char>(text[i + 1]) < 0xB0));
    if (!combining) ++width;
  }
  return width;
}

bool positive(const Json& v) { return v.is_number() && v.get<double>() > 0; }

std::string count_of(const Json& v) { return v.is_number() ? verdict_number(v, 12) : "?"; }

/// "log Z" row: estimate ± stderr (CI), exact and z-score when known.
std::string log_z_text(const Json& z) {
  if (!at(z, "estimate").is_number()) {
    const Json& reason = at(z, "estimate_reason");
    return "n/a" + (reason.is_string() ? " (" + reason.get<std::string>() + ")" : std::string());
  }
  std::string text = verdict_number(at(z, "estimate"), 5) + " ± " + verdict_number(at(z, "stderr"), 2);
  if (at(z, "ci_low").is_number() && at(z, "ci_high").is_number()) {
    text += "  (" + verdict_number(at(z, "level"), 2) + " CI " + verdict_number(at(z, "ci_low"), 5) + " … " +
            verdict_number(at(z, "ci_high"), 5) + ")";
  }
  if (at(z, "exact").is_number()) {
    text += "; exact " + verdict_number(at(z, "exact"), 5) + ", z-score " + verdict_number(at(z, "z_score"), 3);
  }
  return text;
}

/// Rows of wgf-relax: flow, acceptance and step size (when the flow reports them), ⟨u⟩.
void add_relax_rows(ConsoleVerdict& v, const Json& s) {
  const Json& st = at(s, "statistics");
  const Json& counts = at(s, "counts");
  const Json& name = at(st, "flow").is_string() ? at(st, "flow") : at(at(s, "options"), "flow");
  std::string flow = name.is_string() ? name.get<std::string>() : "flow";
  if (at(at(s, "potential"), "name").is_string()) flow += " on " + at(at(s, "potential"), "name").get<std::string>();
  v.add("flow", flow + ": " + count_of(at(counts, "particles")) + " particles × " + count_of(at(counts, "dim")) +
                    ", " + count_of(at(counts, "steps_done")) + " steps in " +
                    verdict_number(at(at(s, "timings"), "flow"), 3) + " s");
  if (at(st, "acceptance_rate").is_number()) v.add("acceptance", verdict_number(at(st, "acceptance_rate"), 3));
  if (positive(at(st, "step_size"))) v.add("step size", verdict_number(at(st, "step_size"), 4));
  const Json& energy = at(s, "energy");
  const Json& healthy = at(counts, "healthy_particles");
  if (healthy.is_number() && at(counts, "particles").is_number() &&
      healthy.get<double>() < at(counts, "particles").get<double>()) {
    // Diverged particles (non-finite, exploded) are left out of the mean, and the row says so.
    const Json& mean = at(st, "mean_energy_healthy");
    const double n = at(counts, "particles").get<double>(), h = healthy.get<double>();
    v.add("⟨u⟩", (mean.is_number() ? verdict_number(mean, 6) : std::string("n/a")) + " over " + count_of(healthy) +
                     " of " + count_of(at(counts, "particles")) + " particles (" + count_of(Json(static_cast<long long>(n - h))) +
                     " diverged, excluded)");
  } else if (at(energy, "mean").is_number()) {
    v.add("⟨u⟩", verdict_number(at(energy, "mean"), 6) + " (sd " + verdict_number(at(energy, "std"), 3) + ")");
  }
  if (positive(at(counts, "stuck_particles"))) v.add("stuck", count_of(at(counts, "stuck_particles")) + " particles");
  // Rejected MALA proposals on a wall may evaluate to +inf: counted, not a failure of the run
  // (diverged particles get their own warning line from the run itself).
  if (positive(at(counts, "non_finite_evaluations")))
    v.add("non-finite", count_of(at(counts, "non_finite_evaluations")) + " energy evaluations (counts)");
  if (at(s, "interacting").is_boolean() && at(s, "interacting").get<bool>())
    v.add("particles", "interacting: per-particle error bars are not independent");
}

/// Rows of md-reference and replica-exchange: frames, MD time, mixing.
void add_md_rows(ConsoleVerdict& v, const std::string& tool, const Json& s) {
  const Json& counts = at(s, "counts");
  const Json& st = at(s, "statistics");
  if (tool == "replica-exchange") {
    v.add("frames", count_of(at(counts, "frames")) + " at T₀, " + count_of(at(counts, "temperatures")) +
                        " temperatures, " + count_of(at(counts, "exchanges")) + " exchanges in " +
                        verdict_number(at(at(s, "timings"), "replica_exchange"), 3) + " s");
    v.add("round trips", count_of(at(st, "round_trips")));
    const Json& acc = at(st, "neighbor_acceptance");
    if (acc.is_array() && !acc.empty()) {
      double lowest = 1.0;
      for (const auto& a : acc)
        if (a.is_number()) lowest = std::min(lowest, a.get<double>());
      v.add("swap acceptance", "lowest neighbour pair " + verdict_number(Json(lowest), 3));
    }
  } else {
    v.add("frames", count_of(at(counts, "frames")) + " from " + count_of(at(counts, "replicas")) + " replica(s), " +
                        verdict_number(at(at(s, "timings"), "md"), 3) + " s of MD");
    if (at(st, "mean_potential_energy_kJ_per_mol").is_number())
      v.add("⟨E⟩", verdict_number(at(st, "mean_potential_energy_kJ_per_mol"), 6) + " kJ/mol");
  }
}

}  // namespace

std::string verdict_number(const Json& value, int digits) {
  if (!value.is_number()) return "n/a";
  if (value.is_number_integer() && digits >= 12) return value.dump();
  std::ostringstream o;
  o.precision(digits);
  o << value.get<double>();
  return o.str();
}

std::string ConsoleVerdict::format() const {
  std::size_t width = 0;
  for (const auto& [label, text] : rows) width = std::max(width, display_width(label));
  std::ostringstream o;
  o << tool << ": " << headline << "\n";
  for (const auto& [label, text] : rows)
    o << "  " << label << std::string(width + 2 - display_width(label), ' ') << text << "\n";
  return o.str();
}

std::string ConsoleVerdict::format_warnings() const {
  std::string out;
  for (const auto& w : warnings) out += tool + ": warning: " + w + "\n";
  return out;
}

void ConsoleVerdict::print() const {
  std::cout << format() << std::flush;
  std::cerr << format_warnings() << std::flush;
}

void add_importance_rows(ConsoleVerdict& v, const Json& imp) {
  if (!at(imp, "psis_diagnosis").is_string()) {  // no finite weight: the report is only a note
    const Json& note = at(imp, "note");
    v.add("ESS (Kish)", verdict_number(at(imp, "ess_fraction")) + " of S" +
                            (note.is_string() ? " (" + note.get<std::string>() + ")" : std::string()));
    v.warn("no usable importance weights: ESS, k̂ and log Z cannot be estimated");
    return;
  }
  std::string ess = verdict_number(at(imp, "ess_fraction")) + " of S = " + count_of(at(imp, "samples")) + " (" +
                    verdict_number(at(imp, "kish_ess")) + " draws)";
  if (positive(at(imp, "clipped"))) {
    ess += "; top " + count_of(at(imp, "clipped")) + " clipped: " + verdict_number(at(imp, "ess_fraction_clipped"));
  }
  v.add("ESS (Kish)", ess);
  v.add("PSIS k̂", at(imp, "psis_diagnosis").get<std::string>());
  v.add("log Z", log_z_text(at(imp, "log_z")));
  if (positive(at(imp, "zero_weight")))
    v.add("zero weight", count_of(at(imp, "zero_weight")) + " of " + count_of(at(imp, "samples")) + " samples");
  if (positive(at(imp, "non_finite_energies")))
    v.warn(count_of(at(imp, "non_finite_energies")) + " of " + count_of(at(imp, "samples")) +
           " samples have a non-finite energy (weight 0)");
  const Json& zw = at(at(imp, "log_z"), "warning");
  if (zw.is_string()) v.warn(zw.get<std::string>());
}

void add_chains_rows(ConsoleVerdict& v, const Json& chains) {
  v.add("R̂ max", verdict_number(at(chains, "rhat_max"), 4));
  v.add("ESS bulk/tail", "min " + verdict_number(at(chains, "ess_bulk_min"), 4) + " / " +
                             verdict_number(at(chains, "ess_tail_min"), 4));
  if (at(chains, "verdict").is_string()) v.add("chains", at(chains, "verdict").get<std::string>());
}

ConsoleVerdict run_verdict(const std::string& tool, const Json& s, const std::string& headline) {
  ConsoleVerdict v;
  v.tool = tool;
  v.headline = headline;
  if (tool == "wgf-relax") add_relax_rows(v, s);
  if (tool == "md-reference" || tool == "replica-exchange") add_md_rows(v, tool, s);
  if (at(s, "mode") == "evaluate") {  // bg-sample --evaluate: the held-out likelihood
    v.add("configurations", count_of(at(s, "count")));
    v.add("NLL", verdict_number(at(s, "nll"), 6) + " ± " + verdict_number(at(s, "nll_se"), 2) + " (mean −log q)");
    if (positive(at(s, "non_finite_log_q")))
      v.warn(count_of(at(s, "non_finite_log_q")) + " configurations have a non-finite log q (outside the NLL)");
  }
  if (at(s, "samples").is_number() && at(s, "importance").is_object()) v.add("samples", count_of(at(s, "samples")));
  if (at(s, "importance").is_object()) add_importance_rows(v, at(s, "importance"));
  if (at(s, "weights").is_object()) add_importance_rows(v, at(s, "weights"));
  if (at(s, "chains").is_object()) add_chains_rows(v, at(s, "chains"));
  const Json& counts = at(s, "counts");
  if (tool != "wgf-relax" && positive(at(counts, "non_finite_evaluations")))
    v.warn(count_of(at(counts, "non_finite_evaluations")) + " energy evaluations were not finite");
  // The run's own warnings (e.g. no training data) first, then those read off its numbers.
  std::vector<std::string> own;
  for (const auto& w : at(s, "warnings"))
    if (w.is_string()) own.push_back(w.get<std::string>());
  v.warnings.insert(v.warnings.begin(), own.begin(), own.end());
  return v;
}

ElapsedTicker::ElapsedTicker(std::string label, bool enabled, double interval_seconds, std::FILE* stream)
    : label_(std::move(label)),
      enabled_(enabled),
      interval_(interval_seconds),
      stream_(stream),
      start_(wall_seconds()),
      unwinding_(std::uncaught_exceptions()) {
  if (enabled_) thread_ = std::thread([this] { tick(); });
}

void ElapsedTicker::tick() {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto period = std::chrono::duration<double>(interval_);
  while (!wake_.wait_for(lock, period, [this] { return stop_; })) {
    std::fprintf(stream_, "%s: %.0f s elapsed\n", label_.c_str(), wall_seconds() - start_);
  }
}

ElapsedTicker::~ElapsedTicker() {
  if (!enabled_) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  if (std::uncaught_exceptions() == unwinding_) std::fprintf(stream_, "%s: done in %.1f s\n", label_.c_str(), wall_seconds() - start_);
}

}  // namespace boltzlab
