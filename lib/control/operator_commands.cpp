#include "control/operator_commands.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace passgate::control {

bool reveals_destinations(const std::string& command) {
  return command == "subscriber" || command == "public" || command == "lookup";
}

CtlRequest ctl_request(const std::vector<std::string>& words, bool destinations) {
  CtlRequest r;
  if (words.empty()) {
    r.error = "a command is needed";
    r.problem = CtlRequest::Problem::no_command;
    return r;
  }
  const std::string& command = words[0];
  const std::size_t args = words.size() - 1;
  if (destinations && !reveals_destinations(command)) {
    r.error = fmt::format("--destinations applies to subscriber, public and lookup only, not to '{}'", command);
    r.problem = CtlRequest::Problem::destinations_not_applicable;
    return r;
  }
  const auto usage = [&](const char* text) {
    r.error = fmt::format("usage: passgatectl {}", text);
    r.problem = CtlRequest::Problem::usage;
    return r;
  };
  const std::string tail = destinations ? ",destinations" : "";
  static constexpr std::pair<const char*, const char*> plain[] = {
      {"stats", "/passgate/nat"},        {"drops", "/passgate/nat_drops"},     {"ports", "/passgate/ports"},
      {"pools", "/passgate/pools"},      {"passthrough", "/passgate/passthrough"}, {"exports", "/passgate/exports"},
      {"steering", "/passgate/steering"}, {"config", "/passgate/config"},       {"version", "/passgate/config"},
      {"reload", "/passgate/reload"},     {"health", "/passgate/health"},       {"drain", "/passgate/health,drain"},
      {"undrain", "/passgate/health,undrain"},
  };
  for (const auto& [name, path] : plain)
    if (command == name) {
      if (args != 0) return usage(name);
      r.path = path;
      return r;
    }
  if (command == "subscriber") {
    if (args < 1 || args > 2) return usage("[--destinations] subscriber ADDRESS [LIMIT]");
    r.path = "/passgate/subscriber," + words[1] + (args > 1 ? "," + words[2] : "") + tail;
    return r;
  }
  if (command == "lookup") {
    if (args != 1) return usage("[--destinations] lookup PUBLIC-ADDRESS:PORT | SUBSCRIBER-ADDRESS");
    r.path = "/passgate/lookup," + words[1] + tail;
    return r;
  }
  if (command == "public") {
    if (args != 3) return usage("[--destinations] public tcp|udp|icmp ADDRESS PORT");
    r.path = fmt::format("/passgate/public,{},{},{}{}", words[1], words[2], words[3], tail);
    return r;
  }
  r.error = fmt::format("unknown command '{}'", command);
  r.problem = CtlRequest::Problem::unknown_command;
  return r;
}

std::vector<std::string> split_params(const char* params) {
  std::vector<std::string> out;
  if (!params) return out;
  std::string cur;
  for (const char* p = params; *p; ++p) {
    if (*p == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (*p != ' ') {
      cur += *p;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

bool take_destinations(std::vector<std::string>& params) {
  const auto it = std::find(params.begin(), params.end(), "destinations");
  if (it == params.end()) return false;
  params.erase(it);
  return true;
}

std::string session_line(const SessionText& s, bool destinations) {
  return fmt::format("{} {} -> {}{} {} idle {}s worker {}", s.protocol, s.inside, s.public_endpoint,
                     destinations ? " remote " + s.remote : std::string(), s.state, s.idle_s, s.worker);
}

}  // namespace passgate::control
