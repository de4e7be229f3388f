// Several workers: a packet received by one worker that another owns (lib/
// steering decides) goes to the owner's ring, gathered per destination during
// a burst and enqueued at its end; the owner takes it in receive_handed
// (worker_receive.cpp). ARP reaches one worker (RSS does not hash it) while
// every worker keeps its own neighbour table, so the others learn from a copy.
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane/worker.hpp"

namespace passgate::dataplane {

using stats::PortDrop;


void Worker::hand_to(unsigned worker, Side s, rte_mbuf* m, unsigned l2) {
  m->port = port(s).id;
  m->l2_len = static_cast<std::uint8_t>(l2);
  HandoffBuffer& b = handoff[worker];
  b.mbufs[b.count++] = m;
  counters_of(s).handoff_out++;
  if (b.count == HandoffBuffer::capacity) flush_handoffs();
}

unsigned Worker::flush_handoffs() {
  unsigned total = 0;
  for (unsigned w = 0; w < handoff.size(); ++w) {
    HandoffBuffer& b = handoff[w];
    if (b.count == 0) continue;
    total += b.count;
    const unsigned sent = rte_ring_enqueue_burst(rings[w], reinterpret_cast<void* const*>(b.mbufs), b.count, nullptr);
    for (unsigned i = sent; i < b.count; ++i) {
      for (Side s : sides)
        if (port(s).id == b.mbufs[i]->port) counters_of(s).add(PortDrop::handoff_ring_full);
      discard(b.mbufs[i]);
    }
    b.count = 0;
  }
  return total;
}

unsigned Worker::receive_handoffs() {
  rte_mbuf* in[nat::Engine::max_burst];
  const unsigned n = rte_ring_sc_dequeue_burst(rings[index], reinterpret_cast<void**>(in), nat::Engine::max_burst, nullptr);
  if (n == 0) return 0;
  // Keep each port's packets in their order.
  rte_mbuf* mine[2][nat::Engine::max_burst];
  unsigned count[2] = {0, 0};
  const std::uint16_t inside_id = port(Side::inside).id, outside_id = port(Side::outside).id;
  for (unsigned i = 0; i < n; ++i) {
    if (in[i]->port == inside_id) mine[0][count[0]++] = in[i];
    else if (in[i]->port == outside_id) mine[1][count[1]++] = in[i];
  }
  if (count[0]) receive_handed<Side::inside>(mine[0], count[0]);
  if (count[1]) receive_handed<Side::outside>(mine[1], count[1]);
  return n;
}

void Worker::copy_arp_to_others(Side s, rte_mbuf* m, unsigned l2) {
  for (unsigned w = 0; w < handoff.size(); ++w) {
    if (w == index) continue;
    rte_mbuf* copy = rte_pktmbuf_copy(m, pool, 0, UINT32_MAX);
    if (!copy) {
      counters_of(s).add(PortDrop::no_mbuf);
      continue;
    }
    copy->packet_type = handed_arp_copy;
    hand_to(w, s, copy, l2);
    counters_of(s).handoff_out--;  // copies are not packets handed over
  }
}

}  // namespace passgate::dataplane
