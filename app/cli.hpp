// The command line the three programs (passgate, passgate-sim, passgatectl)
// share: --help and --version, one way to report a usage error, and the
// same exit statuses, so that scripts and operators meet one convention.
// Each program adds its own options; positional arguments (the EAL's after
// "--", passgatectl's command words) collect into one vector.
#pragma once

#include <boost/program_options.hpp>

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace passgate::cli {

// Exit statuses: 0 done, 1 the work failed (configuration, EAL, a refused
// reload), 2 the command line was wrong or the program could not be reached.
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

struct Program {
  std::string name;      // as it prefixes every message: "passgate"
  std::string summary;   // --help's first lines, before the options
  std::string epilogue;  // --help's last lines, after the options (may be empty)
  std::string version_detail;  // after "NAME VERSION" in --version, e.g. " (NAT44, DPDK 22.11)"
};

class CommandLine {
 public:
  explicit CommandLine(Program program);

  // The program's own options, as with options_description::add_options().
  boost::program_options::options_description_easy_init add_options() { return visible_.add_options(); }
  // Every positional argument into `into` (not listed in --help).
  void positionals(const char* name, std::vector<std::string>* into);

  // Parses argv. Returns the exit status when the program ends here: after
  // --help or --version (exit_ok), or after a usage error (exit_usage,
  // reported on stderr with the help).
  std::optional<int> parse(int argc, char** argv);

  [[nodiscard]] bool has(const char* option) const { return values_.count(option) != 0; }

  // "NAME: message" on stderr; returns exit_usage for `return cli.usage_error(...)`.
  int usage_error(const std::string& message) const;
  // "NAME: message" on stderr, nothing else; returns exit_failure.
  int failure(const std::string& message) const;
  // The options and the epilogue, as --help prints them.
  void print_help(std::ostream& out) const;

 private:
  Program program_;
  boost::program_options::options_description visible_;
  boost::program_options::options_description hidden_;
  boost::program_options::positional_options_description positional_;
  boost::program_options::variables_map values_;
};

}  // namespace passgate::cli
