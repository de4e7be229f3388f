// The inside port of passgate-gen plays N subscribers with M flows each: it
// writes every flow's packets with a 16-byte stamp after the L4 header
// (magic, trial number, flow number, TSC at transmission) and checks that
// each answer came back translated to the flow's own address and port.
#pragma once

#include "counters.hpp"
#include "flow_model.hpp"
#include "port.hpp"
#include "run_state.hpp"

#include <rte_cycles.h>

#include <algorithm>
#include <vector>

namespace pgen {

struct InsideSide {
  Port* port = nullptr;
  rte_mempool* pool = nullptr;
  const FlowModel* model = nullptr;
  RunState* state = nullptr;
  unsigned frame_len = 60;  // without FCS
  DirectionCounters outbound_tx;  // sent from here
  DirectionCounters inbound_rx;   // answers received here
  std::vector<std::uint64_t> answered_bits;  // warm-up: flows answered
  // Several transmit queues: the queue each subscriber's packets go to.
  // Learned from the answers: they arrive on the receive queue of the DUT
  // worker that owns the subscriber's mapping, and sending on the transmit
  // queue of that number reaches that worker with no handoff (what an RSS
  // NIC programmed with passgate's keys does). Until an answer is seen:
  // subscriber number modulo the queue count.
  std::vector<std::uint8_t> subscriber_queue;
  [[nodiscard]] std::uint16_t queue_of(std::uint64_t f) const {
    const std::uint64_t sub = f % model->subscribers;
    const std::uint8_t q = subscriber_queue[sub];
    return static_cast<std::uint16_t>(q != 0xff ? q : sub % port->tx_queues);
  }

  // Writes flow f's next packet into m (empty, room for 1518 bytes).
  void build(rte_mbuf* m, std::uint64_t f, std::uint16_t trial, Phase phase, std::uint64_t now);

  // Sends up to n packets of flows produced by next_flow(); returns how many
  // the PMD took. A template so that the flow order of each caller (warm-up
  // retries, cycling, never-used flows) costs no call per packet.
  template <typename NextFlow>
  unsigned send(unsigned n, Phase phase, NextFlow&& next_flow) {
    rte_mbuf* mbufs[burst_size];
    n = std::min(n, burst_size);
    if (rte_pktmbuf_alloc_bulk(pool, mbufs, n) != 0) return 0;
    const std::uint64_t now = rte_rdtsc();
    const std::uint16_t trial = state->trial.load(std::memory_order_relaxed);
    if (port->tx_queues == 1) {
      for (unsigned i = 0; i < n; ++i) build(mbufs[i], next_flow(), trial, phase, now);
      const unsigned sent = transmit(port->id, mbufs, n);
      outbound_tx.sent += n;
      outbound_tx.tx_refused += n - sent;
      return n;
    }
    // Several queues: the burst is split by each packet's queue.
    rte_mbuf* per_queue[Port::max_queues][burst_size];
    unsigned counts[Port::max_queues] = {};
    for (unsigned i = 0; i < n; ++i) {
      const std::uint64_t f = next_flow();
      build(mbufs[i], f, trial, phase, now);
      const std::uint16_t q = queue_of(f);
      per_queue[q][counts[q]++] = mbufs[i];
    }
    unsigned sent = 0;
    for (unsigned q = 0; q < port->tx_queues; ++q)
      if (counts[q]) sent += transmit(port->id, per_queue[q], counts[q], static_cast<std::uint16_t>(q));
    outbound_tx.sent += n;
    outbound_tx.tx_refused += n - sent;
    return n;
  }

  // An answer from the outside: it must come back to the flow's own
  // subscriber address and port (or identifier, or SPI).
  void receive_answer(rte_mbuf* m, std::uint64_t now, std::uint16_t trial, bool warmup, std::uint16_t queue);

  [[nodiscard]] std::uint64_t hz() const { return hz_; }
  std::uint64_t hz_ = 0;

  void poll(bool warmup);
};

}  // namespace pgen
