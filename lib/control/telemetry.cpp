#include "control/telemetry.hpp"

#include <rte_telemetry.h>

#include <mutex>
#include <set>
#include <string>

namespace passgate::control {

namespace {

// Every registry's commands pass through dispatch(): DPDK names the command
// it calls, and the active registry (one at a time) finds its handler. The
// mutex is held while a handler runs, so withdraw() returns only once none
// is running.
std::mutex registry_mutex;
TelemetryRegistry* active_registry = nullptr;
// DPDK keeps commands for the life of the process: each name is registered
// with it once, whichever registry adds it.
std::set<std::string> registered_with_dpdk;

int nat(const stats::GatewaySnapshot& s, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "sessions", s.sessions);
  rte_tel_data_add_dict_u64(d, "mappings", s.mappings);
  rte_tel_data_add_dict_u64(d, "subscribers", s.subscribers);
  rte_tel_data_add_dict_u64(d, "port_blocks", s.blocks);
  for (unsigned k = 0; k < stats::nat_counter_count; ++k)
    rte_tel_data_add_dict_u64(d, stats::nat_counter_name(static_cast<stats::NatCounter>(k)), s.nat.counter[k]);
  return 0;
}

int nat_drops(const stats::GatewaySnapshot& s, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  for (unsigned k = 1; k < stats::drop_reason_count; ++k)
    rte_tel_data_add_dict_u64(d, stats::drop_reason_name(static_cast<stats::DropReason>(k)), s.nat.drop[k]);
  for (unsigned k = 1; k < packet::parse_error_count; ++k) {
    char name[64];
    snprintf(name, sizeof name, "malformed_%s", packet::parse_error_name(static_cast<packet::ParseError>(k)));
    rte_tel_data_add_dict_u64(d, name, s.nat.parse_error[k]);
  }
  return 0;
}

int ports(const stats::GatewaySnapshot& s, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  for (std::size_t p = 0; p < s.ports.size(); ++p) {
    rte_tel_data* port = rte_tel_data_alloc();
    if (!port) return -1;
    const stats::PortCounters& c = s.ports[p];
    rte_tel_data_start_dict(port);
    for (const stats::PortCounterInfo& m : stats::port_counters_info) rte_tel_data_add_dict_u64(port, m.name, c.*m.field);
    for (unsigned k = 0; k < stats::port_drop_count; ++k) {
      char name[64];
      snprintf(name, sizeof name, "drop_%s", stats::port_drop_name(static_cast<stats::PortDrop>(k)));
      rte_tel_data_add_dict_u64(port, name, c.drop[k]);
    }
    rte_tel_data_add_dict_container(d, s.port_names[p].c_str(), port, 0);
  }
  return 0;
}

int protocols(const stats::GatewaySnapshot& s, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  for (unsigned p = 0; p < stats::proto_index_count; ++p) {
    const stats::ProtoCounters& c = s.nat.proto[p];
    rte_tel_data* proto = rte_tel_data_alloc();
    if (!proto) return -1;
    rte_tel_data_start_dict(proto);
    rte_tel_data_add_dict_u64(proto, "sessions", c.sessions_created - c.sessions_expired);
    rte_tel_data_add_dict_u64(proto, "sessions_created", c.sessions_created);
    rte_tel_data_add_dict_u64(proto, "sessions_expired", c.sessions_expired);
    rte_tel_data_add_dict_u64(proto, "translated_outbound", c.translated_outbound);
    rte_tel_data_add_dict_u64(proto, "translated_inbound", c.translated_inbound);
    for (unsigned k = 1; k < stats::drop_reason_count; ++k)
      if (c.drop[k]) {
        char name[64];
        snprintf(name, sizeof name, "drop_%s", stats::drop_reason_name(static_cast<stats::DropReason>(k)));
        rte_tel_data_add_dict_u64(proto, name, c.drop[k]);
      }
    rte_tel_data_add_dict_container(d, stats::proto_index_name(p), proto, 0);
  }
  return 0;
}

int steering(const stats::GatewaySnapshot& s, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "workers", s.workers);
  for (std::size_t p = 0; p < s.steering_modes.size() && p < s.port_names.size(); ++p) {
    char key[64];
    snprintf(key, sizeof key, "mode_%s", s.port_names[p].c_str());
    rte_tel_data_add_dict_string(d, key, s.steering_modes[p].c_str());
    snprintf(key, sizeof key, "handoff_out_%s", s.port_names[p].c_str());
    rte_tel_data_add_dict_u64(d, key, s.ports[p].handoff_out);
  }
  for (std::size_t w = 0; w < s.worker_handoff_out.size(); ++w) {
    char key[64];
    snprintf(key, sizeof key, "worker%zu_handoff_out", w);
    rte_tel_data_add_dict_u64(d, key, s.worker_handoff_out[w]);
    snprintf(key, sizeof key, "worker%zu_handoff_in", w);
    rte_tel_data_add_dict_u64(d, key, s.worker_handoff_in[w]);
  }
  return 0;
}

int passthrough(const stats::GatewaySnapshot& s, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "esp_security_associations", s.esp_sas);
  rte_tel_data_add_dict_u64(d, "esp_learners", s.esp_learners);
  rte_tel_data_add_dict_u64(d, "esp_held_packets", s.esp_held);
  rte_tel_data_add_dict_u64(d, "pptp_calls", s.pptp_calls);
  rte_tel_data_add_dict_u64(d, "gre_tunnels", s.gre_tunnels);
  // Per worker: VPN state lives on its server's worker (issue 17.3).
  for (std::size_t w = 0; w < s.worker_passthrough.size(); ++w) {
    char key[64];
    snprintf(key, sizeof key, "worker%zu_esp_security_associations", w);
    rte_tel_data_add_dict_u64(d, key, s.worker_passthrough[w].esp_sas);
    snprintf(key, sizeof key, "worker%zu_pptp_calls", w);
    rte_tel_data_add_dict_u64(d, key, s.worker_passthrough[w].pptp_calls);
    snprintf(key, sizeof key, "worker%zu_gre_tunnels", w);
    rte_tel_data_add_dict_u64(d, key, s.worker_passthrough[w].gre_tunnels);
  }
  return 0;
}

int mempool(const stats::GatewaySnapshot& s, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "size", s.mbufs_total);
  rte_tel_data_add_dict_u64(d, "free", s.mbufs_free);
  rte_tel_data_add_dict_u64(d, "workers", s.workers);
  return 0;
}

}  // namespace

int TelemetryRegistry::dispatch(const char* command, const char* params, rte_tel_data* d) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  if (!active_registry) return -1;
  const auto it = active_registry->handlers_.find(command);
  return it == active_registry->handlers_.end() ? -1 : it->second(params, d);
}

TelemetryRegistry::TelemetryRegistry() {
  std::lock_guard<std::mutex> lock(registry_mutex);
  active_registry = this;
}

TelemetryRegistry::~TelemetryRegistry() {
  std::lock_guard<std::mutex> lock(registry_mutex);
  if (active_registry == this) active_registry = nullptr;
}

bool TelemetryRegistry::add(const std::string& command, const char* help, Handler handler) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  handlers_[command] = std::move(handler);
  if (registered_with_dpdk.count(command)) return true;
  if (rte_telemetry_register_cmd(command.c_str(), dispatch, help) != 0) return false;
  registered_with_dpdk.insert(command);
  return true;
}

void TelemetryRegistry::withdraw() {
  std::lock_guard<std::mutex> lock(registry_mutex);
  handlers_.clear();
}

bool add_snapshot_commands(TelemetryRegistry& registry, SnapshotSource source) {
  using Command = int (*)(const stats::GatewaySnapshot&, rte_tel_data*);
  struct Entry {
    const char* name;
    Command command;
    const char* help;
  };
  static constexpr Entry entries[] = {
      {"/passgate/nat", nat, "NAT counters and gauges, summed over workers"},
      {"/passgate/nat_drops", nat_drops, "NAT drops by reason, malformed by parse error"},
      {"/passgate/ports", ports, "Per port: traffic, ARP, echo, drops by reason"},
      {"/passgate/steering", steering,
       "Workers, steering mode per port (rss, handoff, single), handoffs per worker"},
      {"/passgate/protocols", protocols, "Per protocol: sessions, translations per direction, drops by reason"},
      {"/passgate/passthrough", passthrough, "ESP SAs and learners, PPTP calls, GRE tunnels"},
      {"/passgate/mempool", mempool, "Packet buffer pool size and free buffers"},
  };
  bool ok = true;
  for (const Entry& e : entries)
    ok &= registry.add(e.name, e.help,
                       [source, command = e.command](const char*, rte_tel_data* d) { return command(source(), d); });
  return ok;
}

}  // namespace passgate::control
