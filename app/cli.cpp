#include "cli.hpp"

#include <iostream>

namespace po = boost::program_options;

#ifndef PASSGATE_VERSION
#error "PASSGATE_VERSION comes from meson (the project's version)"
#endif

namespace passgate::cli {

CommandLine::CommandLine(Program program)
    : program_(std::move(program)), visible_(program_.summary + "\n\nOptions") {
  visible_.add_options()("help,h", "print this help and exit")("version,V", "print the version and exit");
}

void CommandLine::positionals(const char* name, std::vector<std::string>* into) {
  hidden_.add_options()(name, po::value(into));
  positional_.add(name, -1);
}

std::optional<int> CommandLine::parse(int argc, char** argv) {
  po::options_description all;
  all.add(visible_).add(hidden_);
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional_).run(), values_);
    po::notify(values_);
  } catch (const po::error& e) {
    std::cerr << program_.name << ": " << e.what() << "\n\n";
    print_help(std::cerr);
    return exit_usage;
  }
  if (has("help")) {
    print_help(std::cout);
    return exit_ok;
  }
  if (has("version")) {
    std::cout << program_.name << " " << PASSGATE_VERSION << program_.version_detail << "\n";
    return exit_ok;
  }
  return std::nullopt;
}

int CommandLine::usage_error(const std::string& message) const {
  std::cerr << program_.name << ": " << message << "\n";
  return exit_usage;
}

int CommandLine::failure(const std::string& message) const {
  std::cerr << program_.name << ": " << message << "\n";
  return exit_failure;
}

void CommandLine::print_help(std::ostream& out) const {
  out << visible_ << "\n";
  if (!program_.epilogue.empty()) out << program_.epilogue;
}

}  // namespace passgate::cli
