#pragma once
/// \file console.hpp
/// What every tool prints at its end: the verdict, a few lines in the words of its summary.json
/// (README "Command-line conventions"):
///
///   bg-sample: wrote runs/gmm40
///     samples        100000
///     ESS (Kish)     0.0079 of S (791 draws); top-clipped 0.0080
///     PSIS k̂         unreliable: k̂ = 1.07 ≥ 1: the weight distribution has no finite mean; ...
///     log Z          -3.214 ± 0.15  (exact 0, z-score -21)
///   bg-sample: warning: no training data: trained by reverse KL only (mode-seeking)
///
/// The rows go to stdout, the warnings ("TOOL: warning: ...") to stderr, like progress lines
/// and errors. The k̂ verdict is the importance report's own (psis_diagnosis, psis_reliable:
/// reliable when k̂ ≤ min(1 − 1/log10 S, 0.7), estimators/importance.hpp), never re-derived here.
/// Also here: ElapsedTicker, a progress line for a long step that has no step count.
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace boltzlab {

/// The closing lines of a tool.
struct ConsoleVerdict {
  std::string tool;      ///< "bg-sample", ...: the prefix of the first line and of warnings
  std::string headline;  ///< what was done, e.g. "wrote runs/gmm40"
  std::vector<std::pair<std::string, std::string>> rows;  ///< label, text
  std::vector<std::string> warnings;                      ///< each printed "TOOL: warning: TEXT"

  void add(const std::string& label, const std::string& text) { rows.emplace_back(label, text); }
  void warn(const std::string& text) { warnings.push_back(text); }
  /// "TOOL: HEADLINE" and one indented "label  text" line per row.
  std::string format() const;
  /// One "TOOL: warning: TEXT" line per warning.
  std::string format_warnings() const;
  /// format() on stdout (flushed), then format_warnings() on stderr.
  void print() const;
};

/// A number as the verdict prints it: `digits` significant digits ("0.00791", "-3.214", "1e+05"),
/// "n/a" for a non-number (JSON null).
std::string verdict_number(const nlohmann::json& value, int digits = 3);

/// Rows "ESS (Kish)", "PSIS k̂", "log Z" (and warnings: non-finite energies, log_z.warning) of
/// an importance report's JSON (ImportanceReport::to_json: kish_ess, ess_fraction,
/// kish_ess_clipped, ess_fraction_clipped, clipped, psis_diagnosis, log_z {...},
/// non_finite_energies, zero_weight, samples). A report with only a "note" (no finite weight)
/// gives that note as the ESS row and a warning.
void add_importance_rows(ConsoleVerdict& verdict, const nlohmann::json& importance);

/// Rows "R̂ max", "ESS bulk/tail min" and the chains' verdict of ChainsReport::to_json.
void add_chains_rows(ConsoleVerdict& verdict, const nlohmann::json& chains);

/// The verdict of a run from its summary.json (the keys of RunOutputs and each tool's own:
/// "importance" of bg-sample (and "nll" of its --evaluate mode), "weights" and "chains" of iw-diag,
/// "statistics" and "counts" of wgf-relax, md-reference and replica-exchange) with `headline`; summary["warnings"] (strings)
/// and non-finite counts become warnings.
ConsoleVerdict run_verdict(const std::string& tool, const nlohmann::json& summary, const std::string& headline);

/// Prints "LABEL: S s elapsed" on `stream` (stderr) every `interval` seconds from a background thread
/// until destroyed, then "LABEL: done in S s" unless an exception is unwinding (nothing at all
/// when `enabled` is false): progress for a long step with no step count (e.g. the EM fit of a
/// conditional base).
class ElapsedTicker {
 public:
  ElapsedTicker(std::string label, bool enabled, double interval_seconds = 10.0, std::FILE* stream = stderr);
  ~ElapsedTicker();
  ElapsedTicker(const ElapsedTicker&) = delete;
  ElapsedTicker& operator=(const ElapsedTicker&) = delete;

 private:
  void tick();
  std::string label_;
  bool enabled_;
  double interval_;
  std::FILE* stream_;
  double start_;
  int unwinding_;  ///< std::uncaught_exceptions() at construction
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace boltzlab
