// Everything the control side reads from the gateway at one moment: per-port
// and NAT counters summed over the workers, and the gauges. Plain values, so
// exporters (Prometheus, telemetry, the stop report) need no DPDK.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "stats/nat_counters.hpp"
#include "stats/port_counters.hpp"

namespace passgate::stats {

struct GatewaySnapshot {
  std::vector<std::string> port_names;
  std::vector<PortCounters> ports;  // summed over workers, in configuration order
  NatCounters nat;                  // summed over workers
  std::uint64_t sessions = 0, mappings = 0, subscribers = 0, blocks = 0;
  std::uint64_t esp_sas = 0, esp_learners = 0, esp_held = 0, pptp_calls = 0, gre_tunnels = 0;
  unsigned mbufs_total = 0, mbufs_free = 0;
  unsigned workers = 0;
};

}  // namespace passgate::stats
