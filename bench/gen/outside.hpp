// The outside port of passgate-gen plays the internet: it receives the
// translated packets, counts them, and answers each one in place to the
// public address and port the DUT chose: addresses and ports swapped, TCP
// SYN answered by SYN|ACK (so the DUT sees the handshake it needs to call a
// session established), ICMP echo by echo reply, ESP with the server's SPI.
// Checksums are patched per RFC 1624, and the stamp gets a fresh TSC so the
// return path has its own latency.
#pragma once

#include "counters.hpp"
#include "flow_model.hpp"
#include "port.hpp"
#include "run_state.hpp"

namespace pgen {

struct OutsideSide {
  Port* port = nullptr;
  rte_mempool* pool = nullptr;
  const FlowModel* model = nullptr;
  RunState* state = nullptr;
  bool reply = true;
  std::uint64_t hz = 1;
  DirectionCounters outbound_rx;  // received here: sent, refused are the inside's
  DirectionCounters inbound_tx;   // answers sent from here
  PublicAddresses publics;
  DirectionCounters snapshot_out, snapshot_in;  // two-lcore handover

  // Turns an arriving translated packet into the server's answer in place.
  // Returns false when it is not one of ours.
  bool answer(rte_mbuf* m, std::uint64_t now, std::uint16_t trial);

  // Every receive queue; an answer leaves on the queue of the same number
  // (modulo ours): the DUT's worker that sent the packet owns its mapping,
  // so its answer goes back to that worker's receive queue, as an RSS NIC
  // programmed with passgate's comb keys would deliver it.
  void poll() {
    for (unsigned q = 0; q < port->rx_queues; ++q) poll_queue(static_cast<std::uint16_t>(q));
  }
  void poll_queue(std::uint16_t queue);

  // Two-lcore mode: serve snapshot requests from the main lcore.
  void serve_snapshot();
};

// The outside's loop when it has an lcore of its own (arg: OutsideSide*).
int outside_lcore_main(void* arg);

}  // namespace pgen
