// passgatectl: the operator's CLI for a running passgate, over DPDK's
// telemetry socket (the same one dpdk-telemetry.py uses). Readable output
// for people; --json prints the gateway's answer as it came, for scripts.
//
//   passgatectl [--file-prefix P | --socket PATH] [--json] [--destinations] COMMAND [ARGS]
//
// Sessions are listed without their remote address and port unless
// --destinations asks for them (RFC 6888 REQ-12's spirit; see
// lib/control/operator_commands.hpp): the gateway itself leaves them out.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "control/operator_commands.hpp"

namespace po = boost::program_options;

namespace {

constexpr const char* commands_help = R"(Commands:
  stats                       NAT sessions, counters that are not zero, ports
  drops                       NAT drops and malformed packets by reason
  ports                       per port: traffic, ARP, drops by reason
  pools                       per pool: addresses, port blocks in use and free, subscribers
  subscriber ADDRESS [LIMIT]  a subscriber's public address, port blocks and sessions
  public PROTO ADDRESS PORT   who holds a public address and port (PROTO: tcp, udp, icmp)
                              (both list sessions without their remote endpoint;
                              --destinations shows it)
  lookup ADDRESS:PORT         who holds a public address and port now: the port block's
                              subscriber (any pool), a deterministic pool's owner, a static
                              or preserved mapping, and the sessions on it
  lookup SUBSCRIBER           a subscriber's pool, public address and port ranges
                              (past times: passgate-lookup reads the logs)
  passthrough                 ESP SAs, PPTP calls, GRE tunnels
  exports                     NAT events handed over and exported (IPFIX, syslog)
  steering                    workers, how each port is steered (rss, handoff, single), handoffs
  config                      the policy in force: file, digest, generation, reloads
  reload                      re-read the configuration file; applied only if valid
  runtime                     per worker and stage of its loop: calls, packets, clocks per
                              packet, packets per call (like VPP's show runtime), since the
                              last clear
  runtime clear               clear them (a baseline in the gateway; counters go on)
  health                      whether the box is announced to its routers (health:), and why not
  drain / undrain             withdraw the box's announcements for maintenance, and restore them
                              (after the hold-down)
)";

// One request and its answer on a fresh connection (SOCK_SEQPACKET: one
// message each way, after the greeting the server sends first).
class TelemetryClient {
 public:
  bool connect_to(const std::string& path, std::string* error) {
    fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
    if (fd_ < 0) {
      *error = fmt::format("socket: {}", std::strerror(errno));
      return false;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
      *error = fmt::format("socket path too long: {}", path);
      return false;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      *error = fmt::format("cannot connect to {}: {} (is passgate running, and with this --file-prefix?)", path,
                           std::strerror(errno));
      return false;
    }
    std::string greeting;
    if (!receive(greeting, error)) return false;
    try {
      const YAML::Node info = YAML::Load(greeting);
      if (info["max_output_len"]) max_output_ = info["max_output_len"].as<std::size_t>();
    } catch (const std::exception&) {
    }
    return true;
  }
  bool request(const std::string& command, std::string& answer, std::string* error) {
    if (::send(fd_, command.data(), command.size(), 0) < 0) {
      *error = fmt::format("send: {}", std::strerror(errno));
      return false;
    }
    return receive(answer, error);
  }
  ~TelemetryClient() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  bool receive(std::string& out, std::string* error) {
    std::vector<char> buffer(max_output_ + 1);
    const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
    if (n <= 0) {
      *error = n == 0 ? std::string("passgate closed the connection") : fmt::format("recv: {}", std::strerror(errno));
      return false;
    }
    out.assign(buffer.data(), static_cast<std::size_t>(n));
    return true;
  }
  int fd_ = -1;
  std::size_t max_output_ = 16384;
};

std::string text(const YAML::Node& n, const char* key) {
  return n[key] && n[key].IsScalar() ? n[key].as<std::string>() : std::string();
}
std::uint64_t number(const YAML::Node& n, const char* key) {
  return n[key] && n[key].IsScalar() ? n[key].as<std::uint64_t>() : 0;
}
// String arrays from the gateway: parts of a long line start with "...".
std::vector<std::string> lines(const YAML::Node& n, const char* key) {
  std::vector<std::string> out;
  if (!n[key] || !n[key].IsSequence()) return out;
  for (const auto& item : n[key]) {
    const std::string s = item.as<std::string>();
    if (s.rfind("...", 0) == 0 && !out.empty()) out.back() += s.substr(3);
    else out.push_back(s);
  }
  return out;
}

void print_nonzero(const YAML::Node& dict, const std::string& indent) {
  for (const auto& kv : dict)
    if (kv.second.IsScalar() && kv.second.as<std::string>() != "0")
      fmt::print("{}{:<36} {}\n", indent, kv.first.as<std::string>(), kv.second.as<std::string>());
}

// /passgate/runtime: per worker, "<stage>_cycles", "_calls", "_packets".
passgate::stats::RuntimeSnapshot runtime_of(const YAML::Node& v) {
  namespace stats = passgate::stats;
  stats::RuntimeSnapshot r;
  r.tsc_hz = number(v, "tsc_hz");
  r.elapsed_cycles = number(v, "elapsed_cycles");
  for (std::uint64_t w = 0; w < number(v, "workers"); ++w) {
    const YAML::Node n = v[fmt::format("worker{}", w)];
    auto& stages = r.workers.emplace_back();
    if (!n) continue;
    for (unsigned k = 0; k < stats::stage_count; ++k) {
      const std::string stage = stats::stage_name(static_cast<stats::Stage>(k));
      stages[k].cycles = number(n, (stage + "_cycles").c_str());
      stages[k].calls = number(n, (stage + "_calls").c_str());
      stages[k].packets = number(n, (stage + "_packets").c_str());
    }
  }
  return r;
}

int show(const std::string& command, const YAML::Node& v) {
  if (command == "runtime") {
    fmt::print("{}", passgate::control::runtime_table(runtime_of(v)));
    return 0;
  }
  if (command == "stats") {
    fmt::print("sessions {}  mappings {}  subscribers {}  port blocks {}\n", number(v, "sessions"),
               number(v, "mappings"), number(v, "subscribers"), number(v, "port_blocks"));
    print_nonzero(v, "  ");
    return 0;
  }
  if (command == "steering") {
    for (const auto& kv : v) fmt::print("{:<36} {}\n", kv.first.as<std::string>(), kv.second.as<std::string>());
    return 0;
  }
  if (command == "drops" || command == "passthrough" || command == "exports") {
    print_nonzero(v, "");
    if (command == "drops" && v.size() > 0) fmt::print("(reasons not listed are 0)\n");
    return 0;
  }
  if (command == "ports") {
    for (const auto& port : v) {
      const YAML::Node p = port.second;
      fmt::print("{}: rx {} packets {} bytes, tx {} packets {} bytes\n", port.first.as<std::string>(),
                 number(p, "rx_packets"), number(p, "rx_bytes"), number(p, "tx_packets"), number(p, "tx_bytes"));
      for (const auto& kv : p) {
        const std::string k = kv.first.as<std::string>();
        if (k.rfind("rx_", 0) == 0 || k.rfind("tx_", 0) == 0) continue;
        if (kv.second.as<std::string>() != "0") fmt::print("  {:<34} {}\n", k, kv.second.as<std::string>());
      }
    }
    return 0;
  }
  if (command == "pools") {
    fmt::print("{:<20} {:>9} {:>9} {:>12} {:>10} {:>10} {:>12} {:>11}\n", "pool", "state", "addresses", "draining",
               "blocks", "in use", "subscribers", "exhausted");
    for (const auto& pool : v) {
      const YAML::Node p = pool.second;
      fmt::print("{:<20} {:>9} {:>9} {:>12} {:>10} {:>10} {:>12} {:>11}\n", pool.first.as<std::string>(),
                 text(p, "state"), number(p, "addresses"), number(p, "addresses_draining"), number(p, "port_blocks"),
                 number(p, "port_blocks_in_use"), number(p, "subscribers"), number(p, "exhaustion_events"));
    }
    return 0;
  }
  if (command == "subscriber") {
    const std::string pub = text(v, "public_address");
    if (pub.empty()) {
      fmt::print("subscriber {}: no NAT state\n", text(v, "subscriber"));
      return 0;
    }
    fmt::print("subscriber {} -> public address {}\n", text(v, "subscriber"), pub);
    const auto blocks = lines(v, "port_blocks");
    fmt::print("port blocks ({} ports each): {}\n", number(v, "block_size"), blocks.empty() ? "none" : "");
    for (const auto& b : blocks) fmt::print("  {}\n", b);
    const auto sessions = lines(v, "sessions");
    fmt::print("sessions shown: {}\n", sessions.size());
    for (const auto& s : sessions) fmt::print("  {}\n", s);
    if (!sessions.empty() && text(v, "destinations") != "shown")
      fmt::print("(remote endpoints not shown; --destinations shows them)\n");
    return 0;
  }
  if (command == "public") {
    if (text(v, "found") != "yes") {
      fmt::print("no mapping holds that public address and port now\n");
      return 1;
    }
    fmt::print("{} {} mapping: inside {} <-> public {}, {} session(s)\n", text(v, "kind"), text(v, "protocol"),
               text(v, "inside"), text(v, "public"), number(v, "sessions"));
    const auto sessions = lines(v, "session_list");
    for (const auto& s : sessions) fmt::print("  {}\n", s);
    if (!sessions.empty() && text(v, "destinations") != "shown")
      fmt::print("(remote endpoints not shown; --destinations shows them)\n");
    return 0;
  }
  if (command == "lookup") {
    if (!text(v, "query").empty()) {
      const std::string who = text(v, "subscriber");
      if (who.empty()) {
        fmt::print("{}: nobody holds this port now\n", text(v, "query"));
        return 1;
      }
      fmt::print("{} -> subscriber {} ({}, pool {} {}, range {})\n", text(v, "query"), who, text(v, "how"),
                 text(v, "pool"), text(v, "mode"), text(v, "range"));
      if (!text(v, "deterministic_owner").empty() && text(v, "deterministic_owner") != who)
        fmt::print("  note: the deterministic mapping names {} (range {})\n", text(v, "deterministic_owner"),
                   text(v, "deterministic_range"));
      for (const auto& m : lines(v, "mappings")) fmt::print("  mapping {}\n", m);
      const auto sessions = lines(v, "sessions");
      for (const auto& s : sessions) fmt::print("  {}\n", s);
      if (!sessions.empty() && text(v, "destinations") != "shown")
        fmt::print("(remote endpoints not shown; --destinations shows them)\n");
      return 0;
    }
    const std::string pool = text(v, "pool");
    fmt::print("subscriber {}: {}\n", text(v, "subscriber"),
               pool.empty() ? "no NAT state now"
                            : fmt::format("pool {} ({}), public address {}", pool, text(v, "mode"),
                                          text(v, "public_address")));
    if (!text(v, "deterministic_pool").empty())
      fmt::print("  deterministic mapping (pool {}): {} ports {}\n", text(v, "deterministic_pool"),
                 text(v, "deterministic_public_address"), text(v, "deterministic_range"));
    for (const auto& b : lines(v, "port_blocks")) fmt::print("  port block {}\n", b);
    fmt::print("  sessions: {}\n", number(v, "sessions"));
    return 0;
  }
  if (command == "config") {
    fmt::print("file {}\ndigest {}\ngeneration {}\nloaded at {} (unix seconds)\nreloads applied {}, rejected {}\n",
               text(v, "file"), text(v, "digest"), number(v, "generation"), number(v, "loaded_unix_s"),
               number(v, "reloads_applied"), number(v, "reloads_rejected"));
    for (const auto& e : lines(v, "last_error")) fmt::print("last rejected reload: {}\n", e);
    return 0;
  }
  if (command == "health" || command == "drain" || command == "undrain") {
    if (!text(v, "error").empty()) {
      std::cerr << "passgatectl: " << text(v, "error") << "\n";
      return 1;
    }
    const std::vector<std::string> reasons = lines(v, "reasons");
    std::string why;
    for (const auto& r : reasons) why += (why.empty() ? "" : ", ") + r;
    fmt::print("{}{}\n", text(v, "state"), why.empty() ? "" : " (" + why + ")");
    if (text(v, "state") == "not configured") return 0;
    if (!text(v, "detail").empty()) fmt::print("  {}\n", text(v, "detail"));
    fmt::print("  for {} s, {} transitions", number(v, "for_s"), number(v, "transitions"));
    if (text(v, "state") == "holding") fmt::print(", announcing in {} ms", number(v, "hold_down_left_ms"));
    fmt::print("\n  daemon {}: {}\n  enabled: {}\n", text(v, "daemon"), text(v, "daemon_reply"),
               text(v, "protocols_enabled").empty() ? "none" : text(v, "protocols_enabled"));
    if (number(v, "daemon_errors")) fmt::print("  daemon errors {}\n", number(v, "daemon_errors"));
    return 0;
  }
  if (command == "reload") {
    if (text(v, "result") == "applied") {
      fmt::print("reload applied: {}\n", text(v, "summary"));
      return 0;
    }
    fmt::print("reload rejected; the running policy (generation {}) stays:\n", number(v, "generation"));
    for (const auto& e : lines(v, "errors")) fmt::print("  {}\n", e);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string prefix = "rte", socket_path;
  std::vector<std::string> words;
  passgate::cli::CommandLine cli({"passgatectl",
                                  "passgatectl: operate a running passgate over DPDK's telemetry socket\n\n"
                                  "Usage: passgatectl [options] COMMAND [ARGS]",
                                  commands_help, ""});
  cli.add_options()("file-prefix", po::value(&prefix)->default_value("rte"), "passgate's DPDK --file-prefix")(
      "socket", po::value(&socket_path), "telemetry socket path (default /var/run/dpdk/PREFIX/dpdk_telemetry.v2)")(
      "json", "print the gateway's JSON answer unchanged")(
      "destinations", "subscriber and public: show each session's remote address and port (off by default: "
                      "subscribers' destinations are private, RFC 6888 REQ-12)");
  cli.positionals("words", &words);
  if (const auto status = cli.parse(argc, argv)) return *status;
  // No command: the help, as a usage error.
  if (words.empty()) {
    cli.print_help(std::cout);
    return passgate::cli::exit_usage;
  }
  const std::string& command = words[0];
  const passgate::control::CtlRequest built = passgate::control::ctl_request(words, cli.has("destinations"));
  if (built.path.empty()) {
    const int status = cli.usage_error(built.error);
    if (built.problem == passgate::control::CtlRequest::Problem::unknown_command) std::cerr << "\n" << commands_help;
    return status;
  }
  const std::string& request = built.path;
  if (socket_path.empty()) socket_path = fmt::format("/var/run/dpdk/{}/dpdk_telemetry.v2", prefix);

  TelemetryClient client;
  std::string error, answer;
  // Unreachable or unreadable gateway: 2, like a usage error, so that 1 keeps
  // meaning "a reload was refused".
  if (!client.connect_to(socket_path, &error) || !client.request(request, answer, &error))
    return cli.usage_error(error);
  YAML::Node root;
  try {
    root = YAML::Load(answer);
  } catch (const std::exception& e) {
    return cli.usage_error(fmt::format("unreadable answer from passgate: {}", e.what()));
  }
  const YAML::Node value = root[request.substr(0, request.find(','))];
  if (!value || value.IsNull()) {
    return cli.usage_error(fmt::format(
        "passgate refused '{}' (an older passgate, or bad arguments: addresses are dotted IPv4, PROTO tcp, udp or icmp)",
        request));
  }
  const bool json = cli.has("json");
  if (json) {
    std::cout << answer << "\n";
    // The exit status still tells scripts whether a reload was applied.
    return command == "reload" && value["result"] && value["result"].as<std::string>() != "applied" ? 1 : 0;
  }
  return show(command == "version" ? "config" : command, value);
}
