// Several workers, fragments from outside (issue 17.4): every fragment of an
// inbound datagram reaches its rendezvous worker first (the destination's
// port-less owner, lib/steering/dispatch.hpp), which learns from the first
// fragment which worker holds the datagram's session and sends every
// fragment there, later ones included. The owner's engine then translates
// them as with one worker (nat/fragment_tracker.hpp), holding those that
// overtake the first. Later fragments that reach the rendezvous before
// their first wait here, at most max_waiting_fragments per worker for
// nat.timeouts.fragment_ms; beyond either they are dropped and counted
// (fragment_wait_full, fragment_unmatched).
#include <rte_mbuf.h>

#include "dataplane/burst.hpp"
#include "dataplane/worker.hpp"

namespace passgate::dataplane {

using stats::PortDrop;

void Worker::deliver_inbound(Burst& b, rte_mbuf* m, unsigned l2, unsigned owner) {
  // Fragments that waited join the burst of their first fragment, which may
  // be full: then they go round through this worker's own ring and come
  // back at its next loop turn.
  if (owner == index && b.nat_count < Burst::capacity) {
    push_nat<Side::outside>(b, m, l2);
    return;
  }
  m->packet_type = handed_ipv4;
  hand_to(owner, Side::outside, m, l2);
}

void Worker::rendezvous_fragment(Burst& b, rte_mbuf* m, unsigned l2, const steering::FragmentInfo& f) {
  if (!fragment_owners_)
    fragment_owners_.emplace(cfg.nat.fragment_flows, cfg.nat.random_seed ^ (0x51a7u + index));
  const std::uint64_t timeout = policy->nat.timeouts.fragment_ms;
  if (f.first) {
    const std::span<const std::uint8_t> bytes(rte_pktmbuf_mtod_offset(m, const std::uint8_t*, l2),
                                              rte_pktmbuf_data_len(m) - l2);
    const unsigned owner = steering::owner_inbound_by_transport(*rules, bytes, index);
    if (fragment_owners_->remember(f.key, owner, now_ms, now_ms + timeout))
      counters_of(Side::outside).fragment_owners_evicted++;
    deliver_inbound(b, m, l2, owner);
    // Those that overtook it follow, in the order they came.
    unsigned kept = 0;
    for (unsigned i = 0; i < waiting_fragment_count_; ++i) {
      WaitingFragment& w = waiting_fragments_[i];
      if (w.key == f.key) deliver_inbound(b, w.m, w.l2, owner);
      else waiting_fragments_[kept++] = w;
    }
    waiting_fragment_count_ = kept;
    return;
  }
  if (const auto owner = fragment_owners_->find(f.key, now_ms)) {
    deliver_inbound(b, m, l2, *owner);
    return;
  }
  if (waiting_fragment_count_ == max_waiting_fragments) {
    drop(Side::outside, m, PortDrop::fragment_wait_full);
    return;
  }
  waiting_fragments_[waiting_fragment_count_++] = {m, static_cast<std::uint8_t>(l2), f.key, now_ms + timeout};
}

// From timers() every millisecond, and with all = true when the worker stops.
void Worker::expire_waiting_fragments(bool all) {
  unsigned kept = 0;
  for (unsigned i = 0; i < waiting_fragment_count_; ++i) {
    WaitingFragment& w = waiting_fragments_[i];
    if (all || w.expires_ms <= now_ms) drop(Side::outside, w.m, PortDrop::fragment_unmatched);
    else waiting_fragments_[kept++] = w;
  }
  waiting_fragment_count_ = kept;
}

}  // namespace passgate::dataplane
