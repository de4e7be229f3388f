// passgate-gen's two DPDK ports: set-up, transmission, and RFC 826 on our
// side of each link (answer requests for our address, learn the DUT's MAC
// from its replies and requests, ask for it at start).
#pragma once

#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <array>
#include <cstdint>
#include <string>

namespace pgen {

struct Port {
  std::string device;
  std::uint16_t id = 0;
  rte_ether_addr mac{};
  rte_ether_addr peer_mac{};
  bool peer_known = false;
  std::uint32_t ip = 0, peer_ip = 0;  // ours and the DUT's next hop on this link
  std::uint64_t arp_answered = 0, arp_sent = 0;
  // Queues: with a multi-worker DUT each of its workers transmits on a queue
  // of its own (our receive queue of the same number), and each of its
  // receive queues (our transmit queues) is read by one worker.
  static constexpr unsigned max_queues = 16;
  unsigned rx_queues = 1, tx_queues = 1;
  std::array<std::uint64_t, max_queues> rx_per_queue{};  // whole run, ours and foreign
};

// A vdev (net_...) goes to the EAL as --vdev, anything else as -a.
inline bool is_vdev(const std::string& device) { return device.rfind("net_", 0) == 0; }

bool setup_port(Port& port, rte_mempool* pool, std::string& error);

// Sends what fits; what the PMD refuses is freed and counted, never retried
// (a retry would shift the offered load in time).
inline unsigned transmit(std::uint16_t port, rte_mbuf** mbufs, unsigned n, std::uint16_t queue = 0) {
  const unsigned sent = rte_eth_tx_burst(port, queue, mbufs, static_cast<std::uint16_t>(n));
  if (sent < n) rte_pktmbuf_free_bulk(mbufs + sent, n - sent);
  return sent;
}

void send_arp_request(Port& port, rte_mempool* pool);
// Returns true when the frame was ARP (consumed: answered or freed).
bool handle_arp(Port& port, rte_mbuf* m);

}  // namespace pgen
