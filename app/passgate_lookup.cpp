// passgate-lookup: "which subscriber used PUBLIC:PORT at TIME?" without a
// running gateway (README "Answering a lawful request").
//
//   passgate-lookup --config FILE PUBLIC:PORT         deterministic pools: from the configuration
//   passgate-lookup --config FILE SUBSCRIBER          its public address and range
//   passgate-lookup --syslog FILE... --at TIME PUBLIC:PORT   from RFC 5424 NAT event logs
//   passgate-lookup --ipfix DIR --at TIME PUBLIC:PORT        from nfcapd files, read through nfdump
//
// Exit status: 0 a subscriber was named, 1 none could be (the answer says
// why: nobody held it, the logs do not cover the time, only candidates),
// 2 a usage error or unreadable input.
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "config/gateway_config.hpp"
#include "control/log_lookup.hpp"
#include "nat/deterministic.hpp"
#include "packet/address_text.hpp"

namespace po = boost::program_options;
using namespace passgate;

namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

// One JSON object from key/value pairs (values already JSON).
std::string json_object(const std::vector<std::pair<std::string, std::string>>& kv) {
  std::string out = "{";
  for (std::size_t i = 0; i < kv.size(); ++i) out += (i ? ", " : "") + json_string(kv[i].first) + ": " + kv[i].second;
  return out + "}";
}

// nfdump 1.7's "-o json" prints one flat object per record, not one JSON
// document: read it line by line.
bool read_nfdump(const std::string& dir, control::LogIndex& index, std::string* error) {
  const std::string command = fmt::format("TZ=UTC nfdump -q -R '{}' -o json 2>&1", dir);
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) {
    *error = "cannot run nfdump";
    return false;
  }
  std::vector<std::pair<std::string, std::string>> record;
  char buf[4096];
  std::string last;
  while (std::fgets(buf, sizeof buf, p)) {
    std::string line(buf);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    last = line;
    const std::size_t a = line.find_first_not_of(" \t");
    if (a == std::string::npos) continue;
    line = line.substr(a);
    if (line[0] == '{') {
      record.clear();
    } else if (line[0] == '}') {
      index.add_nfdump_record(record);
    } else if (const std::size_t sep = line.find("\" : "); sep != std::string::npos && line[0] == '"') {
      std::string value = line.substr(sep + 4);
      if (!value.empty() && value.back() == ',') value.pop_back();
      if (value.size() >= 2 && value.front() == '"') value = value.substr(1, value.size() - 2);
      record.emplace_back(line.substr(1, sep - 1), value);
    }
  }
  const int status = ::pclose(p);
  if (status != 0) {
    *error = fmt::format("nfdump -R {} failed: {}", dir, last);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_file, ipfix_dir, at;
  std::vector<std::string> syslog_files, words;
  cli::CommandLine cli({"passgate-lookup",
                        "passgate-lookup: which subscriber held a public address and port, without a running gateway\n\n"
                        "Usage: passgate-lookup --config FILE PUBLIC:PORT|SUBSCRIBER\n"
                        "       passgate-lookup (--syslog FILE... | --ipfix DIR) --at TIME PUBLIC:PORT",
                        "TIME is UTC: 2026-12-02T14:02:11Z (fractions of a second allowed) or @UNIXSECONDS.\n"
                        "Exit status: 0 a subscriber named, 1 none could be (the answer says why), 2 usage or input "
                        "errors.",
                        ""});
  cli.add_options()("config", po::value(&config_file), "passgate's YAML: answers for deterministic pools (RFC 7422)")(
      "syslog", po::value(&syslog_files)->multitoken(),
      "NAT event log files in RFC 5424 form (rsyslog: template RSYSLOG_SyslogProtocol23Format)")(
      "ipfix", po::value(&ipfix_dir), "a directory of nfcapd files (read with nfdump)")(
      "at", po::value(&at), "the time of the question, UTC (for --syslog and --ipfix)")(
      "json", "one JSON object instead of text");
  cli.positionals("words", &words);
  if (const auto status = cli.parse(argc, argv)) return *status;
  if (words.size() != 1) return cli.usage_error("expected one PUBLIC:PORT or SUBSCRIBER address");
  const bool json = cli.has("json");
  const int sources = (config_file.empty() ? 0 : 1) + (syslog_files.empty() ? 0 : 1) + (ipfix_dir.empty() ? 0 : 1);
  if (sources != 1) return cli.usage_error("give exactly one of --config, --syslog or --ipfix");
  const auto endpoint = packet::text::parse_endpoint(words[0]);
  const auto subscriber = endpoint ? std::nullopt : packet::text::parse_ipv4(words[0]);
  if (!endpoint && !subscriber) return cli.usage_error(fmt::format("'{}' is neither ADDRESS:PORT nor ADDRESS", words[0]));

  if (!config_file.empty()) {
    const config::LoadResult loaded = config::load_gateway_config(config_file);
    if (!loaded.config) {
      for (const auto& e : loaded.errors) std::cerr << config::to_string(e) << "\n";
      return cli::exit_usage;
    }
    const auto& pools = loaded.config->nat.pools;
    if (subscriber) {
      for (const nat::PoolConfig& pc : pools) {
        if (pc.mode != nat::PoolMode::deterministic) continue;
        if (const auto slot = nat::DeterministicMap(pc).forward(*subscriber)) {
          if (json)
            fmt::print("{}\n", json_object({{"subscriber", json_string(nat::to_string(*subscriber))},
                                            {"pool", json_string(pc.name)},
                                            {"public_address", json_string(nat::to_string(slot->public_address))},
                                            {"first_port", std::to_string(slot->first_port)},
                                            {"last_port", std::to_string(slot->last_port)}}));
          else
            fmt::print("subscriber {}: public address {} ports {}-{} (deterministic pool {}, RFC 7422)\n",
                       nat::to_string(*subscriber), nat::to_string(slot->public_address), slot->first_port,
                       slot->last_port, pc.name);
          return cli::exit_ok;
        }
      }
      fmt::print("{}\n", json ? json_object({{"subscriber", json_string(nat::to_string(*subscriber))},
                                              {"answer", json_string("in no deterministic pool")}})
                              : fmt::format("subscriber {}: in no deterministic pool of {} (a dynamic pool's ports "
                                            "are in the logs: --syslog or --ipfix)",
                                            nat::to_string(*subscriber), config_file));
      return cli::exit_failure;
    }
    const control::ConfigAnswer a = control::lookup_in_config(pools, endpoint->address, endpoint->port);
    std::string text;
    if (a.subscriber)
      text = fmt::format("{}:{}: subscriber {} (deterministic pool {}, range {}-{}, RFC 7422; at any time this "
                         "configuration was in force)",
                         nat::to_string(endpoint->address), endpoint->port, nat::to_string(*a.subscriber), a.pool,
                         a.range_first, a.range_last);
    else if (a.address_in_dynamic_pool)
      text = fmt::format("{}:{}: the address is in dynamic pool {}: the configuration cannot tell, read the logs "
                         "(--syslog or --ipfix with --at)",
                         nat::to_string(endpoint->address), endpoint->port, a.pool);
    else if (!a.pool.empty())
      text = fmt::format("{}:{}: in deterministic pool {}, but no subscriber's range holds the port", 
                         nat::to_string(endpoint->address), endpoint->port, a.pool);
    else
      text = fmt::format("{}:{}: the address is in no pool of {}", nat::to_string(endpoint->address), endpoint->port,
                         config_file);
    if (json)
      fmt::print("{}\n", json_object({{"query", json_string(words[0])},
                                      {"subscriber", json_string(a.subscriber ? nat::to_string(*a.subscriber) : "")},
                                      {"pool", json_string(a.pool)},
                                      {"first_port", std::to_string(a.range_first)},
                                      {"last_port", std::to_string(a.range_last)},
                                      {"answer", json_string(text)}}));
    else
      fmt::print("{}\n", text);
    return a.subscriber ? cli::exit_ok : cli::exit_failure;
  }

  if (!endpoint) return cli.usage_error("the logs answer for PUBLIC:PORT; a subscriber's range is in --config");
  if (at.empty()) return cli.usage_error("--at TIME is required with --syslog and --ipfix");
  const auto at_ms = control::parse_utc_time(at);
  if (!at_ms) return cli.usage_error(fmt::format("--at '{}': expected UTC like 2026-12-02T14:02:11Z or @SECONDS", at));
  control::LogIndex index;
  if (!ipfix_dir.empty()) {
    std::string error;
    if (!read_nfdump(ipfix_dir, index, &error)) {
      cli.failure(error);
      return cli::exit_usage;
    }
  }
  for (const std::string& file : syslog_files) {
    std::ifstream in(file);
    if (!in) return cli.usage_error(fmt::format("cannot read {}", file));
    for (std::string line; std::getline(in, line);) index.add_syslog_line(line);
  }
  index.finish();
  const control::LogIndex::Answer a = index.lookup(endpoint->address, endpoint->port, *at_ms);
  using Kind = control::LogIndex::Answer::Kind;
  const char* kinds[] = {"held", "deterministic", "candidates", "nobody", "not_covered"};
  std::string who;
  if (a.kind == Kind::held) who = nat::to_string(a.holders.front().subscriber);
  if (a.kind == Kind::deterministic) who = nat::to_string(*a.deterministic_subscriber);
  if (json) {
    std::string holders = "[";
    for (std::size_t i = 0; i < a.holders.size(); ++i) {
      const auto& b = a.holders[i];
      holders += (i ? ", " : "") +
                 json_object({{"subscriber", json_string(nat::to_string(b.subscriber))},
                              {"public_address", json_string(nat::to_string(b.public_address))},
                              {"first_port", b.ports_known ? std::to_string(b.first) : "null"},
                              {"last_port", b.ports_known ? std::to_string(b.last) : "null"},
                              {"step", std::to_string(b.step)},
                              {"from", b.from_known ? json_string(control::format_utc_time(b.from_ms)) : "null"},
                              {"until", b.to_known ? json_string(control::format_utc_time(b.to_ms)) : "null"}});
    }
    holders += "]";
    fmt::print("{}\n", json_object({{"query", json_string(words[0])},
                                    {"at", json_string(control::format_utc_time(*at_ms))},
                                    {"result", json_string(kinds[static_cast<int>(a.kind)])},
                                    {"subscriber", json_string(who)},
                                    {"holders", holders},
                                    {"logs_from", json_string(index.empty() ? "" : control::format_utc_time(index.first_ms()))},
                                    {"logs_to", json_string(index.empty() ? "" : control::format_utc_time(index.last_ms()))},
                                    {"answer", json_string(a.text)}}));
  } else {
    fmt::print("{}\n", a.text);
  }
  return who.empty() ? cli::exit_failure : cli::exit_ok;
}
