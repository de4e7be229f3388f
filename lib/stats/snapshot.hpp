// Everything the control side reads from the gateway at one moment: per-port
// and NAT counters summed over the workers, and the gauges. Plain values, so
// exporters (Prometheus, telemetry, the stop report) need no DPDK.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "stats/health.hpp"
#include "stats/nat_counters.hpp"
#include "stats/port_counters.hpp"
#include "stats/runtime.hpp"

namespace passgate::stats {

// One NAT pool: its gauges, summed over workers.
struct PoolUsage {
  std::string name;
  bool retired = false;                  // removed by a reload, draining
  std::uint32_t addresses = 0;           // public addresses handing out new blocks
  std::uint32_t addresses_draining = 0;  // removed by a reload, blocks still in use
  std::uint32_t blocks_total = 0;        // on all its addresses, draining included
  std::uint32_t blocks_in_use = 0;
  std::uint32_t subscribers = 0;
  std::uint64_t exhaustion_events = 0;   // pool or a subscriber's ports exhausted
};

// The policy in force and how reloads went.
struct ConfigState {
  std::string file;
  std::string digest;               // of the file's bytes (FNV-1a 64, hex)
  std::uint64_t generation = 0;     // 1 at start, +1 per applied reload
  std::uint64_t loaded_unix_s = 0;
  std::uint64_t reloads_applied = 0, reloads_rejected = 0;
  std::string last_error;           // of the last rejected reload
};

// NAT event export (IPFIX, syslog) counters.
struct ExportState {
  std::uint64_t events = 0, lost_in_rings = 0;
  std::uint64_t ipfix_records = 0, ipfix_messages = 0, ipfix_errors = 0;
  std::uint64_t syslog_messages = 0, syslog_errors = 0;
};

// One worker's VPN passthrough state (by server since issue 17.3).
struct WorkerPassthrough {
  std::uint64_t esp_sas = 0, pptp_calls = 0, gre_tunnels = 0;
};

struct GatewaySnapshot {
  std::vector<std::string> port_names;
  std::vector<PortCounters> ports;  // summed over workers, in configuration order
  NatCounters nat;                  // summed over workers
  std::uint64_t sessions = 0, mappings = 0, subscribers = 0, blocks = 0;
  std::uint64_t esp_sas = 0, esp_learners = 0, esp_held = 0, pptp_calls = 0, gre_tunnels = 0;
  unsigned mbufs_total = 0, mbufs_free = 0;
  unsigned workers = 0;
  std::vector<std::string> steering_modes;  // per port: rss, handoff or single
  std::vector<std::uint64_t> worker_handoff_out, worker_handoff_in;  // per worker
  std::vector<WorkerPassthrough> worker_passthrough;                 // per worker
  std::vector<PoolUsage> pools;     // only when asked for (needs a round trip to every worker)
  ConfigState config;
  ExportState exports;
  RuntimeSnapshot runtime;          // since start, never cleared (counters for Prometheus)
  HealthState health;  // configured = false without a health: section
};

}  // namespace passgate::stats
