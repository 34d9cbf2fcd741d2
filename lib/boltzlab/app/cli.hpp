#pragma once
/// \file cli.hpp
/// The command-line convention shared by the tools' main() (README "Command-line conventions"):
///
///  - exit status 0: the run succeeded; 1: the run failed after the command line was accepted
///    (a bad potential file, an I/O or numerical failure); 2: usage — the command line was
///    refused (unknown flag, missing required flag, a value of the wrong type or range, flags
///    that exclude each other). `--help` prints the help and exits 0.
///  - every error is one line "TOOL: error: MESSAGE" on stderr, printed once, here.
///  - `-q`/`--quiet`: no progress lines; `--seed`: an integer in [0, 2^64).
///
/// A tool builds its CLI::App, then calls run_tool() with two steps: `check` (flag checks that
/// need no file; a ConfigError there is a usage error) and `run`.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

namespace boltzlab {

/// Exit statuses of every tool.
enum ExitStatus : int {
  kExitOk = 0,         ///< the run succeeded
  kExitRunFailed = 1,  ///< the run failed after the command line was accepted
  kExitUsage = 2,      ///< the command line was refused
};

/// The two steps of a tool after parsing.
struct ToolSteps {
  /// Checks of the flag values alone (no file read); an exception here is a usage error.
  std::function<void()> check;
  /// The run; returns the exit status (kExitOk, or kExitRunFailed after printing why).
  std::function<int()> run;
};

/// Parses argv with `app` and runs `steps`. --help: the help on stdout, exit 0. A parse error
/// (CLI::ParseError) or an exception of `check`: "TOOL: error: MESSAGE (see --help)", exit 2. An
/// exception of `run`: "TOOL: error: MESSAGE", exit 1. Messages are made one line (error_line).
int run_tool(const std::string& tool, CLI::App& app, int argc, char** argv, const ToolSteps& steps);

/// `message` as the MESSAGE of "TOOL: error: MESSAGE": a leading "TOOL: " and "error: " are
/// dropped (library messages may name the tool already), line breaks become "; ", and runs of
/// blanks one blank.
std::string error_line(const std::string& tool, const std::string& message);

/// A seed given as text: a decimal integer in [0, 2^64 − 1], nothing else (no sign, no
/// blanks, no exponent). \throws CLI::ValidationError "FLAG: 'TEXT' is not ...".
std::uint64_t parse_seed(const std::string& flag, const std::string& text);

/// Adds `--seed` parsed by parse_seed into `seed` (set only when given).
CLI::Option* add_seed_option(CLI::App& app, std::optional<std::uint64_t>& seed, const std::string& help);
/// Adds `--seed` parsed by parse_seed into `seed` (keeps its default when not given).
CLI::Option* add_seed_option(CLI::App& app, std::uint64_t& seed, const std::string& help);

/// Adds `-q,--quiet` ("no progress lines") setting `quiet`.
CLI::Option* add_quiet_flag(CLI::App& app, bool& quiet);

}  // namespace boltzlab
