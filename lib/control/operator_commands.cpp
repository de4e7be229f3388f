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
      {"undrain", "/passgate/health,undrain"}, {"runtime", "/passgate/runtime"},
  };
  if (command == "runtime" && args == 1) {
    if (words[1] != "clear") return usage("runtime [clear]");
    r.path = "/passgate/runtime,clear";
    return r;
  }
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

std::string runtime_table(const stats::RuntimeSnapshot& s) {
  const double hz = static_cast<double>(s.tsc_hz);
  std::string out = fmt::format("time {:.3f} s, cycle counter {:.3f} GHz, {} worker(s), {:.1f} clocks/packet (all stages but idle)\n",
                                hz > 0 ? static_cast<double>(s.elapsed_cycles) / hz : 0.0, hz / 1e9, s.workers.size(),
                                stats::busy_clocks_per_packet(s));
  for (std::size_t w = 0; w < s.workers.size(); ++w) {
    const auto& stages = s.workers[w];
    std::uint64_t total = 0;
    for (const stats::StageCounter& c : stages) total += c.cycles;
    const std::uint64_t idle = stages[static_cast<unsigned>(stats::Stage::idle)].cycles;
    out += fmt::format("worker {}: {:.1f} clocks/packet, busy {:.1f} % of {} cycles\n", w,
                       stats::busy_clocks_per_packet(stages),
                       total ? 100.0 * static_cast<double>(total - idle) / static_cast<double>(total) : 0.0, total);
    out += fmt::format("  {:<12} {:>14} {:>16} {:>14} {:>13} {:>9}\n", "stage", "calls", "packets", "clocks/packet",
                       "packets/call", "% cycles");
    for (unsigned k = 0; k < stats::stage_count; ++k) {
      const stats::StageCounter& c = stages[k];
      if (c.calls == 0 && c.cycles == 0) continue;
      const stats::StageFigures f = stats::figures(c);
      // Stages that carry no packets (idle, timers, control, loop): clocks per call.
      const std::string clocks = c.packets ? fmt::format("{:.1f}", f.clocks_per_packet)
                                           : (c.calls ? fmt::format("{:.1f}/call", f.clocks_per_packet) : "-");
      out += fmt::format("  {:<12} {:>14} {:>16} {:>14} {:>13.2f} {:>9.1f}\n", stats::stage_name(static_cast<stats::Stage>(k)),
                         c.calls, c.packets, clocks, f.packets_per_call,
                         total ? 100.0 * static_cast<double>(c.cycles) / static_cast<double>(total) : 0.0);
    }
  }
  return out;
}

}  // namespace passgate::control
