#include "control/control_core.hpp"

#include <rte_telemetry.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "control/log.hpp"
#include "control/operator_commands.hpp"
#include "nat/deterministic.hpp"
#include "packet/address_text.hpp"
#include "packet/headers.hpp"

namespace passgate::control {

namespace {

std::uint64_t unix_ms_now() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The project's one IPv4 reader (strict: "010.0.0.1" is refused, not read as
// octal or decimal), so an operator's look-up takes what the file takes.
bool parse_ipv4(const std::string& text, nat::be32& out) {
  const auto a = packet::text::parse_ipv4(text);
  if (a) out = *a;
  return a.has_value();
}

// DPDK 22.11's telemetry writes strings into JSON without escaping them and
// keeps at most RTE_TEL_MAX_STRING_LEN bytes: make them safe, and split long
// ones into parts that passgatectl joins again (a part after the first
// starts with "...").
std::vector<std::string> telemetry_strings(const std::string& text) {
  std::string safe;
  for (char ch : text) safe += ch == '"' ? '\'' : ch == '\\' ? '/' : (ch == '\n' || ch == '\t') ? ' ' : ch;
  std::vector<std::string> parts;
  constexpr std::size_t room = RTE_TEL_MAX_STRING_LEN - 4;
  for (std::size_t at = 0; at < safe.size() || parts.empty();) {
    const std::size_t n = std::min(room, safe.size() - at);
    parts.push_back((at == 0 ? "" : "...") + safe.substr(at, n));
    at += n;
    if (n == 0) break;
  }
  return parts;
}

void add_string_array(rte_tel_data* d, const char* key, const std::vector<std::string>& lines) {
  rte_tel_data* array = rte_tel_data_alloc();
  if (!array) return;
  rte_tel_data_start_array(array, RTE_TEL_STRING_VAL);
  for (const auto& line : lines)
    for (const auto& part : telemetry_strings(line)) rte_tel_data_add_array_string(array, part.c_str());
  rte_tel_data_add_dict_container(d, key, array, 0);
}

void add_string(rte_tel_data* d, const char* key, const std::string& value) {
  rte_tel_data_add_dict_string(d, key, telemetry_strings(value).front().c_str());
}

// The operator's commands; the registry (control/telemetry.hpp) calls them
// with the core that added them.
int cmd_config(ControlCore& core, const char*, rte_tel_data* d) {
  const stats::ConfigState c = core.snapshot(false).config;
  rte_tel_data_start_dict(d);
  add_string(d, "file", c.file);
  add_string(d, "digest", c.digest);
  rte_tel_data_add_dict_u64(d, "generation", c.generation);
  rte_tel_data_add_dict_u64(d, "loaded_unix_s", c.loaded_unix_s);
  rte_tel_data_add_dict_u64(d, "reloads_applied", c.reloads_applied);
  rte_tel_data_add_dict_u64(d, "reloads_rejected", c.reloads_rejected);
  add_string_array(d, "last_error", c.last_error.empty() ? std::vector<std::string>{} : std::vector{c.last_error});
  return 0;
}

// passgatectl health | drain | undrain.
int cmd_health(ControlCore& core, const char* params, rte_tel_data* d) {
  const std::string p = params ? params : "";
  rte_tel_data_start_dict(d);
  if (p == "drain" || p == "undrain") {
    if (!core.set_drained(p == "drain")) {
      add_string(d, "error", "no health: section in the configuration; nothing announces this box");
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the monitor act, so the answer shows it
  } else if (!p.empty()) {
    add_string(d, "error", "expected no parameter, drain or undrain");
    return 0;
  }
  const stats::HealthState h = core.snapshot(false).health;
  if (!h.configured) {
    rte_tel_data_add_dict_string(d, "state", "not configured");
    return 0;
  }
  rte_tel_data_add_dict_string(d, "state", stats::to_string(h.state));
  std::vector<std::string> reasons;
  for (unsigned r = 0; r < stats::health_reason_count; ++r)
    if (h.reasons & (1u << r)) reasons.push_back(stats::to_string(static_cast<stats::HealthReason>(r)));
  add_string_array(d, "reasons", reasons);
  add_string(d, "detail", h.detail);
  rte_tel_data_add_dict_u64(d, "since_unix_ms", h.since_unix_ms);
  rte_tel_data_add_dict_u64(d, "for_s", (unix_ms_now() - std::min(unix_ms_now(), h.since_unix_ms)) / 1000);
  rte_tel_data_add_dict_u64(d, "hold_down_left_ms", h.hold_down_left_ms);
  rte_tel_data_add_dict_u64(d, "transitions", h.transitions);
  add_string(d, "protocols_enabled", h.protocols_enabled);
  rte_tel_data_add_dict_string(d, "daemon", h.daemon_connected ? "connected" : "not connected");
  add_string(d, "daemon_reply", h.daemon_reply);
  rte_tel_data_add_dict_u64(d, "daemon_errors", h.daemon_errors);
  return 0;
}

int cmd_reload(ControlCore& core, const char*, rte_tel_data* d) {
  const dataplane::ReloadOutcome r = core.reload();
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_string(d, "result", r.applied ? "applied" : "rejected");
  rte_tel_data_add_dict_u64(d, "generation", r.applied ? r.generation : core.gateway().generation());
  add_string(d, "summary", r.summary);
  add_string_array(d, "errors", r.problems);
  return 0;
}

int cmd_pools(ControlCore& core, const char*, rte_tel_data* d) {
  const stats::GatewaySnapshot s = core.snapshot(true);
  rte_tel_data_start_dict(d);
  for (const stats::PoolUsage& u : s.pools) {
    rte_tel_data* pool = rte_tel_data_alloc();
    if (!pool) return -1;
    rte_tel_data_start_dict(pool);
    rte_tel_data_add_dict_string(pool, "state", u.retired ? "draining" : "active");
    rte_tel_data_add_dict_u64(pool, "addresses", u.addresses);
    rte_tel_data_add_dict_u64(pool, "addresses_draining", u.addresses_draining);
    rte_tel_data_add_dict_u64(pool, "port_blocks", u.blocks_total);
    rte_tel_data_add_dict_u64(pool, "port_blocks_in_use", u.blocks_in_use);
    rte_tel_data_add_dict_u64(pool, "port_blocks_free", u.blocks_total - u.blocks_in_use);
    rte_tel_data_add_dict_u64(pool, "subscribers", u.subscribers);
    rte_tel_data_add_dict_u64(pool, "exhaustion_events", u.exhaustion_events);
    const std::string key = u.retired ? u.name + " (draining)" : u.name;
    rte_tel_data_add_dict_container(d, telemetry_strings(key).front().substr(0, 60).c_str(), pool, 0);
  }
  return 0;
}

std::string endpoint(nat::be32 a, std::uint16_t port) { return fmt::format("{}:{}", nat::to_string(a), port); }

// The remote endpoint only when the request asked for it (operator_commands.hpp).
std::string session_line(const dataplane::SessionView& s, bool destinations) {
  return control::session_line(SessionText{s.protocol, endpoint(s.inside_address, s.inside_port),
                                           endpoint(s.public_address, s.public_port),
                                           destinations ? endpoint(s.remote_address, s.remote_port) : std::string(),
                                           s.tcp_state, s.idle_s, s.worker},
                               destinations);
}

// Each block as first-last, with its step when several workers share the
// address (every step-th port of the range: RFC 8158 portRangeStepSize).
std::vector<std::string> block_texts(const dataplane::SubscriberView& v) {
  std::vector<std::string> out;
  for (std::uint16_t first : v.block_first_ports) {
    const unsigned last = first + (v.block_size - 1u) * v.port_step;
    out.push_back(v.port_step > 1 ? fmt::format("{}-{} step {}", first, last, v.port_step)
                                  : fmt::format("{}-{}", first, last));
  }
  return out;
}

// /passgate/lookup,ADDRESS:PORT[,destinations] or ADDRESS[,destinations]:
// the lawful-intercept question answered from the live state and the
// policy in force. For a public port: who holds the block covering it (or
// the static or preserved mapping on it), and for a deterministic pool the
// subscriber its mapping names even while that one has no state. For a
// subscriber: its pool, public address and ranges.
int cmd_lookup(ControlCore& core, const char* params, rte_tel_data* d) {
  auto args = split_params(params);
  const bool destinations = take_destinations(args);
  if (args.size() != 1) return -EINVAL;
  const config::GatewayConfig cfg = core.gateway().config();
  rte_tel_data_start_dict(d);
  if (const auto ep = packet::text::parse_endpoint(args[0])) {
    const dataplane::PortLookupView v = core.gateway().lookup_port(ep->address, ep->port, 50);
    add_string(d, "query", endpoint(ep->address, ep->port));
    std::string who, how, pool, mode, range;
    if (v.holder) {
      const auto& h = *v.holder;
      who = nat::to_string(h.subscriber);
      how = "port block";
      pool = h.pool;
      mode = h.deterministic ? "deterministic" : "dynamic";
      range = h.step > 1 ? fmt::format("{}-{} step {} (worker {})", h.first_port, h.last_port, h.step, h.worker)
                         : fmt::format("{}-{}", h.first_port, h.last_port);
    }
    for (const nat::PoolConfig& pc : cfg.nat.pools) {
      if (pc.mode != nat::PoolMode::deterministic) continue;
      const nat::DeterministicMap map(pc);
      if (const auto owner = map.reverse(ep->address, ep->port)) {
        const auto slot = *map.forward(*owner);
        add_string(d, "deterministic_owner", nat::to_string(*owner));
        add_string(d, "deterministic_range", fmt::format("{}-{}", slot.first_port, slot.last_port));
        if (who.empty()) {
          who = nat::to_string(*owner);
          how = "deterministic mapping (no state now)";
          pool = pc.name;
          mode = "deterministic";
          range = fmt::format("{}-{}", slot.first_port, slot.last_port);
        }
      }
    }
    std::vector<std::string> mappings, sessions;
    for (const auto& m : v.mappings) {
      mappings.push_back(fmt::format("{} {} -> {} {} sessions {}", m.protocol, endpoint(m.inside_address, m.inside_port),
                                     endpoint(m.public_address, m.public_port), m.is_static ? "static" : "dynamic",
                                     m.sessions));
      if (who.empty()) {
        who = nat::to_string(m.inside_address);
        how = m.is_static ? "static mapping" : "preserved port";
      }
      for (const auto& sv : m.session_list) sessions.push_back(session_line(sv, destinations));
    }
    add_string(d, "subscriber", who);
    add_string(d, "how", who.empty() ? "nobody holds this port now" : how);
    add_string(d, "pool", pool);
    add_string(d, "mode", mode);
    add_string(d, "range", range);
    add_string_array(d, "mappings", mappings);
    add_string_array(d, "sessions", sessions);
    rte_tel_data_add_dict_string(d, "destinations", destinations ? "shown" : "hidden");
    return 0;
  }
  nat::be32 address;
  if (!parse_ipv4(args[0], address)) return -EINVAL;
  const dataplane::SubscriberView v = core.gateway().subscriber(address, 50);
  add_string(d, "subscriber", nat::to_string(address));
  add_string(d, "public_address", v.public_address.raw ? nat::to_string(v.public_address) : "");
  add_string(d, "pool", v.pool);
  add_string(d, "mode", v.pool.empty() ? "" : v.deterministic ? "deterministic" : "dynamic");
  add_string_array(d, "port_blocks", block_texts(v));
  for (const nat::PoolConfig& pc : cfg.nat.pools) {
    if (pc.mode != nat::PoolMode::deterministic) continue;
    if (const auto slot = nat::DeterministicMap(pc).forward(address)) {
      add_string(d, "deterministic_pool", pc.name);
      add_string(d, "deterministic_public_address", nat::to_string(slot->public_address));
      add_string(d, "deterministic_range", fmt::format("{}-{}", slot->first_port, slot->last_port));
    }
  }
  rte_tel_data_add_dict_u64(d, "sessions", v.sessions.size());
  return 0;
}

// /passgate/subscriber,ADDRESS[,LIMIT][,destinations]: its public address,
// port blocks and sessions (remote endpoints only with `destinations`).
int cmd_subscriber(ControlCore& core, const char* params, rte_tel_data* d) {
  auto args = split_params(params);
  const bool destinations = take_destinations(args);
  nat::be32 address;
  if (args.empty() || !parse_ipv4(args[0], address)) return -EINVAL;
  std::size_t limit = 50;
  if (args.size() > 1) limit = std::strtoul(args[1].c_str(), nullptr, 10);
  const dataplane::SubscriberView v = core.gateway().subscriber(address, std::min<std::size_t>(limit, 100));
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_string(d, "subscriber", nat::to_string(address).c_str());
  rte_tel_data_add_dict_string(d, "public_address", v.public_address.raw ? nat::to_string(v.public_address).c_str() : "");
  rte_tel_data_add_dict_u64(d, "block_size", v.block_size);
  add_string_array(d, "port_blocks", block_texts(v));
  std::vector<std::string> sessions;
  for (const auto& s : v.sessions) sessions.push_back(session_line(s, destinations));
  rte_tel_data_add_dict_u64(d, "sessions_shown", sessions.size());
  rte_tel_data_add_dict_string(d, "destinations", destinations ? "shown" : "hidden");
  add_string_array(d, "sessions", sessions);
  return 0;
}

// /passgate/public,PROTO,ADDRESS,PORT[,destinations]: who holds a public
// address and port now (remote endpoints only with `destinations`).
int cmd_public(ControlCore& core, const char* params, rte_tel_data* d) {
  auto args = split_params(params);
  const bool destinations = take_destinations(args);
  if (args.size() != 3) return -EINVAL;
  std::uint8_t proto;
  if (args[0] == "tcp") proto = packet::ip_proto::tcp;
  else if (args[0] == "udp") proto = packet::ip_proto::udp;
  else if (args[0] == "icmp") proto = packet::ip_proto::icmp;
  else return -EINVAL;
  nat::be32 address;
  if (!parse_ipv4(args[1], address)) return -EINVAL;
  // 0 included: an ICMP query identifier may be 0.
  const auto port = packet::text::parse_uint(args[2]);
  if (!port || *port > 65535) return -EINVAL;
  const auto v = core.gateway().public_port(proto, address, static_cast<std::uint16_t>(*port), 50);
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_string(d, "found", v ? "yes" : "no");
  if (!v) return 0;
  rte_tel_data_add_dict_string(d, "protocol", v->protocol);
  rte_tel_data_add_dict_string(d, "inside", endpoint(v->inside_address, v->inside_port).c_str());
  rte_tel_data_add_dict_string(d, "public", endpoint(v->public_address, v->public_port).c_str());
  rte_tel_data_add_dict_string(d, "kind", v->is_static ? "static" : "dynamic");
  rte_tel_data_add_dict_u64(d, "sessions", v->sessions);
  std::vector<std::string> sessions;
  for (const auto& s : v->session_list) sessions.push_back(session_line(s, destinations));
  add_string_array(d, "session_list", sessions);
  rte_tel_data_add_dict_string(d, "destinations", destinations ? "shown" : "hidden");
  return 0;
}

int cmd_exports(ControlCore& core, const char*, rte_tel_data* d) {
  const stats::GatewaySnapshot s = core.snapshot(false);
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "events", s.exports.events);
  rte_tel_data_add_dict_u64(d, "events_lost_in_rings", s.nat.get(stats::NatCounter::events_lost));
  rte_tel_data_add_dict_u64(d, "ipfix_records", s.exports.ipfix_records);
  rte_tel_data_add_dict_u64(d, "ipfix_messages", s.exports.ipfix_messages);
  rte_tel_data_add_dict_u64(d, "ipfix_errors", s.exports.ipfix_errors);
  rte_tel_data_add_dict_u64(d, "syslog_messages", s.exports.syslog_messages);
  rte_tel_data_add_dict_u64(d, "syslog_errors", s.exports.syslog_errors);
  return 0;
}

// Runtime accounting since the last clear (`clear`: a new baseline first,
// so the answer is the empty start of the next measurement). Per worker a
// flat dict, "<stage>_cycles", "_calls", "_packets": DPDK 22.11 telemetry
// nests containers one level only.
int cmd_runtime(ControlCore& core, const char* params, rte_tel_data* d) {
  const std::vector<std::string> args = split_params(params);
  if (args.size() > 1 || (args.size() == 1 && args[0] != "clear")) return -EINVAL;
  if (args.size() == 1) core.gateway().clear_runtime();
  const stats::RuntimeSnapshot r = core.gateway().runtime(true);
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "tsc_hz", r.tsc_hz);
  rte_tel_data_add_dict_u64(d, "elapsed_cycles", r.elapsed_cycles);
  rte_tel_data_add_dict_u64(d, "workers", r.workers.size());
  for (std::size_t w = 0; w < r.workers.size(); ++w) {
    rte_tel_data* worker = rte_tel_data_alloc();
    if (!worker) return -ENOMEM;
    rte_tel_data_start_dict(worker);
    for (unsigned k = 0; k < stats::stage_count; ++k) {
      const char* stage = stats::stage_name(static_cast<stats::Stage>(k));
      const stats::StageCounter& c = r.workers[w][k];
      rte_tel_data_add_dict_u64(worker, fmt::format("{}_cycles", stage).c_str(), c.cycles);
      rte_tel_data_add_dict_u64(worker, fmt::format("{}_calls", stage).c_str(), c.calls);
      rte_tel_data_add_dict_u64(worker, fmt::format("{}_packets", stage).c_str(), c.packets);
    }
    rte_tel_data_add_dict_container(d, fmt::format("worker{}", w).c_str(), worker, 0);
  }
  return 0;
}

}  // namespace

std::string digest_of(const std::string& text) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return fmt::format("{:016x}", h);
}

ControlCore::ControlCore(std::string path, const config::GatewayConfig& cfg, dataplane::Gateway& gateway)
    : path_(std::move(path)), gateway_(gateway) {
  config_state_.file = path_;
  config_state_.generation = 1;
  note_loaded(read_file(path_));
  (void)cfg;
}

ControlCore::~ControlCore() {
  // The commands added by start() read this core.
  if (telemetry_) telemetry_->withdraw();
}

void ControlCore::note_loaded(const std::string& text) {
  config_state_.digest = digest_of(text);
  config_state_.loaded_unix_s = unix_ms_now() / 1000;
}

bool ControlCore::open_exporters(const config::GatewayConfig& cfg, std::string* error) {
  std::unique_ptr<IpfixExporter> ipfix;
  std::unique_ptr<SyslogExporter> syslog;
  if (cfg.control.ipfix) {
    IpfixConfig x;
    x.collector = cfg.control.ipfix->collector;
    x.observation_domain_id = cfg.control.ipfix->observation_domain;
    x.template_refresh_s = cfg.control.ipfix->template_refresh_s;
    x.log_destination = cfg.control.log_destinations;
    ipfix = IpfixExporter::open(x, error);
    if (!ipfix) return false;
  }
  if (cfg.control.syslog) {
    SyslogConfig x;
    x.server = cfg.control.syslog->server;
    x.facility = cfg.control.syslog->facility;
    x.log_destination = cfg.control.log_destinations;
    syslog = SyslogExporter::open(x, error);
    if (!syslog) return false;
  }
  std::lock_guard<std::mutex> lock(export_mutex_);
  // Keep the totals of the exporters being replaced.
  if (ipfix_) ipfix_->flush(unix_ms_now());
  add_export_stats(retired_exports_);
  ipfix_ = std::move(ipfix);
  syslog_ = std::move(syslog);
  return true;
}

// RFC 7422: the mapping of every deterministic pool, in force from now on,
// to the log, IPFIX and syslog (at start and after each applied reload), so
// that the logs prove who held any of its ports at any time.
void ControlCore::log_mappings(const config::GatewayConfig& cfg) {
  const std::uint64_t now = unix_ms_now();
  std::lock_guard<std::mutex> lock(export_mutex_);
  for (std::uint32_t i = 0; i < cfg.nat.pools.size(); ++i) {
    const nat::PoolConfig& pc = cfg.nat.pools[i];
    if (pc.mode != nat::PoolMode::deterministic) continue;
    const nat::DeterministicGeometry g = nat::deterministic_geometry(pc);
    const DeterministicMappingEvent e{now, i, pc.name, pc.port_min, pc.port_max, g.ratio, g.ports_per_subscriber,
                                      nat::describe_mapping(pc)};
    log(Level::notice, "deterministic pool '{}' (RFC 7422): {}", pc.name, e.line);
    if (ipfix_) ipfix_->add_mapping(e);
    if (syslog_) syslog_->add_mapping(e);
    ++exports_.events;
  }
  if (ipfix_) ipfix_->flush(now);
  if (syslog_) syslog_->flush(now);
}

bool ControlCore::start(TelemetryRegistry& telemetry) {
  const config::GatewayConfig cfg = gateway_.config();
  std::string error;
  const bool ok = open_exporters(cfg, &error);
  if (!ok) log(Level::error, "NAT event export: {}", error);
  log_mappings(cfg);
  if (cfg.control.ipfix) log(Level::info, "NAT events to IPFIX collector {}", cfg.control.ipfix->collector);
  if (cfg.control.syslog) log(Level::info, "NAT events to syslog server {}", cfg.control.syslog->server);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    apply_health(cfg);
  }
  telemetry_ = &telemetry;
  using Command = int (*)(ControlCore&, const char*, rte_tel_data*);
  const auto add = [&](const char* name, Command command, const char* help) {
    return telemetry.add(name, help, [this, command](const char* params, rte_tel_data* d) {
      return command(*this, params, d);
    });
  };
  bool registered = true;
  registered &= add("/passgate/config", cmd_config, "Policy in force: file, digest, generation, reloads, last error");
  registered &= add("/passgate/reload", cmd_reload, "Re-read the configuration file; applied only if valid");
  registered &= add("/passgate/pools", cmd_pools, "Per pool: addresses, port blocks in use and free, subscribers");
  registered &= add("/passgate/subscriber", cmd_subscriber,
                    "Params: ADDRESS[,LIMIT][,destinations]. Public address, port blocks, sessions");
  registered &= add("/passgate/public", cmd_public,
                    "Params: tcp|udp|icmp,ADDRESS,PORT[,destinations]. Who holds a public port");
  registered &= add("/passgate/lookup", cmd_lookup,
                    "Params: ADDRESS:PORT or SUBSCRIBER[,destinations]. Who held a public port; a subscriber's ranges");
  registered &= add("/passgate/runtime", cmd_runtime,
                    "Per worker and stage: cycles, calls, packets since the last clear; ',clear' clears first");
  registered &= add("/passgate/health", cmd_health,
                    "Params: [drain|undrain]. Whether the box is announced to its routers, and why not");
  registered &= add("/passgate/exports", cmd_exports, "NAT events handed over and exported (IPFIX, syslog)");
  if (!registered) log(Level::warning, "some /passgate telemetry commands could not be registered");
  return ok;
}

dataplane::ReloadOutcome ControlCore::reload() {
  std::lock_guard<std::mutex> lock(mutex_);
  dataplane::ReloadOutcome out;
  const std::string text = read_file(path_);
  config::LoadResult loaded = config::load_gateway_config(path_);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) out.problems.push_back(config::to_string(e));
  } else {
    out = gateway_.reload(*loaded.config);
    if (out.applied) {
      std::string error;
      if (!open_exporters(*loaded.config, &error))
        log(Level::error, "reload applied, but NAT event export could not be reopened: {}", error);
      log_mappings(*loaded.config);
      apply_health(*loaded.config);
      if (const auto level = parse_level(loaded.config->control.log_level)) set_min_level(*level);
    }
  }
  if (out.applied) {
    ++config_state_.reloads_applied;
    config_state_.generation = out.generation;
    config_state_.last_error.clear();
    note_loaded(text);
    log(Level::notice, "reload of {} applied: {}", path_, out.summary);
  } else {
    ++config_state_.reloads_rejected;
    config_state_.last_error = out.problems.empty() ? std::string("rejected") : out.problems.front();
    log(Level::error, "reload of {} rejected, the running policy (generation {}) stays:", path_,
        config_state_.generation);
    for (const auto& p : out.problems) log(Level::error, "  {}", p);
  }
  return out;
}

void ControlCore::add_export_stats(stats::ExportState& to) const {
  if (ipfix_) {
    to.ipfix_records += ipfix_->stats().records_sent;
    to.ipfix_messages += ipfix_->stats().messages_sent;
    to.ipfix_errors += ipfix_->stats().send_errors;
  }
  if (syslog_) {
    to.syslog_messages += syslog_->stats().messages_sent;
    to.syslog_errors += syslog_->stats().send_errors;
  }
}

void ControlCore::pump_events() {
  std::lock_guard<std::mutex> lock(export_mutex_);
  const std::size_t n = gateway_.drain_events([&](const nat::NatEvent& e) {
    if (ipfix_) ipfix_->add(e);
    if (syslog_) syslog_->add(e);
  });
  exports_.events += n;
  const std::uint64_t now = unix_ms_now();
  if (ipfix_) ipfix_->flush(now);
  if (syslog_) syslog_->flush(now);
}

void ControlCore::apply_health(const config::GatewayConfig& cfg) {
  if (cfg.health && health_) {
    health_->configure(*cfg.health);
  } else if (cfg.health) {
    health_ = std::make_unique<HealthMonitor>(*cfg.health, gateway_);
    health_->start();
    log(Level::info, "health: driving BIRD at {} (protocols {}), checks every {} ms, hold-down {} s",
        cfg.health->socket, fmt::join(cfg.health->protocols, ", "), cfg.health->check_ms, cfg.health->hold_down_s);
  } else if (health_) {
    health_.reset();
    log(Level::notice, "health: removed from the configuration; the routing daemon's protocols stay as they are");
  }
}

bool ControlCore::set_drained(bool drained) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!health_) return false;
  health_->set_drained(drained);
  return true;
}

std::uint32_t ControlCore::withdraw_for_stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  return health_ ? health_->withdraw_for_stop() : 0;
}

stats::GatewaySnapshot ControlCore::snapshot(bool with_pools) const {
  stats::GatewaySnapshot s = gateway_.snapshot(with_pools);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    s.config = config_state_;
    if (health_) s.health = health_->state();
  }
  std::lock_guard<std::mutex> lock(export_mutex_);
  s.exports = retired_exports_;
  s.exports.events = exports_.events;
  add_export_stats(s.exports);
  return s;
}

}  // namespace passgate::control
