// The DPDK gateway: ports, buffer pool and worker lcores around the NAT
// engine. This is the only part of passgate (with lib/control) that includes
// DPDK; the translation itself is lib/nat over plain bytes.
//
// Data flow per worker (one lcore, its own NAT engine, neighbour tables and
// counters; nothing shared with other workers):
//   rx burst -> Ethernet/802.1Q -> ARP (answer, learn) | IPv4 to us (echo) |
//   NAT burst (inside port: outbound, outside port: inbound) -> TTL, MTU ->
//   next hop (on-link, route, gateway) -> neighbour MAC or ARP queue ->
//   tx buffer -> tx burst.
// The main lcore runs the control loop: it sleeps, watches for the stop
// signal and reads counters; it never polls ports.
#pragma once

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "config/gateway_config.hpp"
#include "stats/nat_counters.hpp"
#include "stats/snapshot.hpp"
#include "stats/port_counters.hpp"

struct rte_mempool;

namespace passgate::dataplane {

struct Worker;

// EAL arguments passgate adds for a configuration: a --vdev for every vdev
// port, an allow-list entry for every PCI port, and the lcore list when the
// operator gave none.
std::vector<std::string> eal_arguments(const config::GatewayConfig& cfg, const std::vector<std::string>& extra);

class Gateway {
 public:
  // After rte_eal_init(). nullptr with a message on failure.
  static std::unique_ptr<Gateway> create(const config::GatewayConfig& cfg, std::string* error);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Launches the workers and returns at once.
  bool start(std::string* error);
  // Asks the workers to stop, waits for them, stops the ports and returns
  // every buffer the gateway still holds to the pool.
  void stop();

  using Snapshot = stats::GatewaySnapshot;
  // Counters are read while workers write them: each value is a plain
  // aligned 64-bit load, so it is never torn, only possibly a moment old.
  [[nodiscard]] Snapshot snapshot() const;
  void print(std::FILE* out) const;

  [[nodiscard]] const config::GatewayConfig& config() const { return cfg_; }

 private:
  explicit Gateway(const config::GatewayConfig& cfg);
  bool setup_ports(std::string* error);

  config::GatewayConfig cfg_;
  rte_mempool* pool_ = nullptr;
  std::vector<std::uint16_t> port_ids_;
  std::vector<bool> port_started_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> stop_{false};
  bool running_ = false;
};

}  // namespace passgate::dataplane
