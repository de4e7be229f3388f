// How many packet buffers (mbufs) a configuration can hold at once, so that
// the pool is sized for it (dataplane.mbufs, conf/README.md "Buffers").
//
// Theory of operation: every mbuf taken from the pool sits in one of a few
// places until it is freed, and each place has a fixed capacity set by the
// configuration:
//   - the receive and transmit descriptors of every queue of every port;
//   - the handoff rings between workers (one per worker, several workers);
//   - the packets a worker gathers for other workers' rings during a burst;
//   - the ARP queues of every neighbour table (per port, per worker),
//     bounded in all by neighbour.held;
//   - the transmit buffers of every worker (per port);
//   - per port with a kernel interface (ports[].exception), its queues (one
//     pair per worker; net_tap fills each receive queue with buffers at
//     setup) and each worker's buffer of packets for the kernel;
//   - the mempool cache of every lcore that takes or frees buffers (the
//     workers and the main lcore), which DPDK lets grow to 1.5 times its size;
//   - what a worker has in hand: one receive burst and the packets made from
//     it (ARP requests, ICMP errors, fragments) before they reach a buffer.
// The NAT engine holds fragments and ESP packets as bytes in its own memory,
// never as mbufs. When the pool has at least the sum, a full ring or queue
// can never empty it: receive always finds buffers for its descriptors.
// Plain arithmetic, no DPDK (lib/dataplane checks its constants against it).
#pragma once

#include <cstdint>
#include <string>

#include "config/gateway_config.hpp"

namespace passgate::config {

// Slots of each worker's handoff ring (rte_ring, one slot always empty).
inline constexpr std::uint32_t handoff_ring_slots = 16384;
// Mbufs one worker gathers per port before a transmit burst, and per other
// worker before a ring enqueue (dataplane::TxBuffer, dataplane::HandoffBuffer).
inline constexpr std::uint32_t tx_buffer_mbufs = 64;
inline constexpr std::uint32_t handoff_buffer_mbufs = 64;
// Later fragments from outside one worker keeps while their first fragment
// has not reached it (several workers: dataplane/worker_fragments.cpp).
inline constexpr std::uint32_t waiting_fragment_mbufs = 32;
// Packets made from one received burst before they reach a transmit buffer:
// at most one packet's fragments (9000-byte MTU down to 576: 17 fragments,
// each a header and a data mbuf) or one ICMP error or ARP request each.
inline constexpr std::uint32_t generated_reserve_mbufs = 64;
// A kernel interface's queue pair per worker: control traffic is a few
// hundred packets a second, so small rings do. The transmit side is counted
// too although net_tap frees what it writes at once: another device
// (virtio_user, a ring port) may hold them.
inline constexpr std::uint32_t exception_descriptors = 64;
// Packets one worker gathers for a kernel interface before its transmit burst.
inline constexpr std::uint32_t exception_buffer_mbufs = 32;

struct MbufBudget {
  unsigned workers = 1;
  std::uint64_t rx_descriptors = 0;    // sum over ports of rx_queues x rx_descriptors
  std::uint64_t tx_descriptors = 0;    // sum over ports of tx_queues x tx_descriptors
  std::uint64_t handoff_rings = 0;     // workers x (handoff_ring_slots - 1), several workers only
  // workers x (workers x handoff_buffer_mbufs + waiting_fragment_mbufs), several workers only
  std::uint64_t handoff_buffers = 0;
  std::uint64_t neighbour_queues = 0;  // workers x ports x min(table_size x queue, held)
  std::uint64_t tx_buffers = 0;        // workers x ports x tx_buffer_mbufs
  std::uint64_t lcore_caches = 0;      // (workers + 1) x mbuf_cache x 3 / 2
  std::uint64_t in_flight = 0;         // workers x (burst + generated_reserve_mbufs)
  // Ports with ports[].exception x workers x (2 x exception_descriptors + exception_buffer_mbufs).
  std::uint64_t exception = 0;

  [[nodiscard]] std::uint64_t total() const {
    return rx_descriptors + tx_descriptors + handoff_rings + handoff_buffers + neighbour_queues + tx_buffers +
           lcore_caches + in_flight + exception;
  }
  // "rx descriptors 2048 + tx descriptors 2048 + ... = 21744", for messages.
  [[nodiscard]] std::string explain() const;
};

// What `cfg` can hold at once with `workers` worker lcores. The descriptor
// counts are the configured ones; the gateway passes a copy with the counts
// the drivers actually set up.
MbufBudget mbuf_budget(const GatewayConfig& cfg, unsigned workers);

// The fewest workers the configuration runs: the length of dataplane.workers,
// else 1 (EAL's lcore list, known only at start-up, may give more; the
// gateway checks again with the real count).
unsigned workers_at_least(const GatewayConfig& cfg);

}  // namespace passgate::config
