#include "boltzlab/app/cli.hpp"

#include <charconv>
#include <cstdio>
#include <exception>
#include <sstream>

namespace boltzlab {
namespace {

void print_error(const std::string& tool, const std::string& message, const char* suffix) {
  std::fprintf(stderr, "%s: error: %s%s\n", tool.c_str(), error_line(tool, message).c_str(), suffix);
}

/// Runs `step`, printing its exception as one error line; returns the exit status.
int guarded(const std::string& tool, const std::function<int()>& step, int status_on_error, const char* suffix) {
  try {
    return step();
  } catch (const CLI::ParseError& e) {  // a tool's own flag check may throw CLI11's errors too
    print_error(tool, e.what(), " (see --help)");
    return kExitUsage;
  } catch (const std::bad_alloc&) {
    print_error(tool, "out of memory", "");
    return status_on_error;
  } catch (const std::exception& e) {
    print_error(tool, e.what(), suffix);
    return status_on_error;
  }
}

}  // namespace

std::string error_line(const std::string& tool, const std::string& message) {
  std::string m = message;
  for (const std::string& prefix : {tool + ": ", std::string("error: ")}) {
    if (m.rfind(prefix, 0) == 0) m.erase(0, prefix.size());
  }
  // Lines joined by "; ", blanks collapsed, empty lines dropped.
  std::string out, line;
  std::istringstream lines(m);
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string word, joined;
    while (words >> word) joined += (joined.empty() ? "" : " ") + word;
    if (!joined.empty()) out += (out.empty() ? "" : "; ") + joined;
  }
  return out;
}

int run_tool(const std::string& tool, CLI::App& app, int argc, char** argv, const ToolSteps& steps) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help
    print_error(tool, e.what(), " (see --help)");
    return kExitUsage;
  }
  if (steps.check) {
    const int status = guarded(tool, [&] { steps.check(); return static_cast<int>(kExitOk); }, kExitUsage,
                               " (see --help)");
    if (status != kExitOk) return status;
  }
  return guarded(tool, steps.run, kExitRunFailed, "");
}

std::uint64_t parse_seed(const std::string& flag, const std::string& text) {
  std::uint64_t value = 0;
  const char* first = text.data();
  const char* last = first + text.size();
  const auto [end, ec] = std::from_chars(first, last, value, 10);
  if (text.empty() || ec != std::errc() || end != last) {
    throw CLI::ValidationError(flag, "'" + text + "' is not a seed: seeds are integers from 0 to 2^64 - 1 = "
                                         "18446744073709551615");
  }
  return value;
}

CLI::Option* add_seed_option(CLI::App& app, std::optional<std::uint64_t>& seed, const std::string& help) {
  return app
      .add_option_function<std::string>(
          "--seed", [&seed](const std::string& text) { seed = parse_seed("--seed", text); }, help)
      ->type_name("UINT64");
}

CLI::Option* add_seed_option(CLI::App& app, std::uint64_t& seed, const std::string& help) {
  return app
      .add_option_function<std::string>(
          "--seed", [&seed](const std::string& text) { seed = parse_seed("--seed", text); }, help)
      ->type_name("UINT64");
}

CLI::Option* add_quiet_flag(CLI::App& app, bool& quiet) {
  return app.add_flag("-q,--quiet", quiet, "no progress lines on stderr (the verdict, warnings and errors stay)");
}

}  // namespace boltzlab
