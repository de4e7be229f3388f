// One worker lcore's state and loop. See gateway.hpp for the data flow.
#pragma once

#include <rte_ether.h>
#include <rte_mbuf.h>

#include <atomic>
#include <memory>
#include <vector>

#include "config/gateway_config.hpp"
#include "dataplane/neighbour_table.hpp"
#include "nat/engine.hpp"
#include "stats/port_counters.hpp"

namespace passgate::dataplane {

// A port as the worker sees it: its configuration, DPDK id and MAC, and
// the addresses it answers ARP for.
struct PortView {
  const config::PortConfig* cfg;
  std::uint16_t id;
  MacAddress mac;
  bool inside;
  std::vector<nat::AddressRange> arp_addresses;  // own address + (outside) public pool and static addresses
  std::vector<nat::Ipv4Prefix> subscriber_prefixes;  // of every pool
  [[nodiscard]] bool is_subscriber(be32 a) const {
    for (const auto& p : subscriber_prefixes)
      if (p.contains(a)) return true;
    return false;
  }
  [[nodiscard]] bool answers_arp_for(be32 a) const {
    for (const auto& r : arp_addresses)
      if (a.host() >= r.first.host() && a.host() <= r.last.host()) return true;
    return false;
  }
};

struct TxBuffer {
  static constexpr unsigned capacity = 64;
  rte_mbuf* mbufs[capacity];
  unsigned count = 0;
};

struct Worker {
  Worker(const config::GatewayConfig& cfg, std::vector<PortView> ports, rte_mempool* pool, std::uint16_t queue,
         std::unique_ptr<nat::Engine> engine);

  // The lcore's main function; returns when *stop becomes true.
  void run(const std::atomic<bool>* stop);
  // Frees every mbuf still held (tx buffers, neighbour queues). Call after run().
  void release_buffers();

  const config::GatewayConfig& cfg;
  std::vector<PortView> ports;  // index 0 inside, 1 outside
  rte_mempool* pool;
  std::uint16_t queue;
  std::unique_ptr<nat::Engine> engine;
  std::vector<std::unique_ptr<NeighbourTable>> neighbours;  // per port
  std::vector<stats::PortCounters> counters;                // per port
  std::vector<TxBuffer> tx;                                 // per port
  unsigned lcore = 0;
  std::uint64_t now_ms = 0;

 private:
  void receive(unsigned port, rte_mbuf** mbufs, unsigned n);
  void handle_arp(unsigned port, rte_mbuf* m, unsigned l2_len);
  void answer_echo(unsigned port, rte_mbuf* m, unsigned l2_len);
  void forward(unsigned egress, rte_mbuf* m, unsigned l2_len);
  void send_l2(unsigned egress, rte_mbuf* m, const MacAddress& dst);
  void send_arp_request(unsigned port, be32 target);
  void transmit(unsigned port, rte_mbuf* m);
  void flush(unsigned port);
  void timers();
  void release_fragments();
  [[nodiscard]] bool next_hop(unsigned egress, be32 dst, be32& hop) const;
};

}  // namespace passgate::dataplane
