// A received burst, stage by stage. Three ways in, picked once per run in
// choose_receive() (forward mode and the number of workers do not change
// without a restart), each a template on the port's side:
//
//   receive_wire<S, Steered>   from the port:   l2 -> arp -> l3 (+ steering) -> nat -> free drops
//   receive_handed<S>          from a worker:   (arp copies, learned) -> nat -> free drops
//   receive_forward<S>         forward mode:    l2 -> arp -> address checks -> route, no NAT
//
//   l2_stage    rx counters, one buffer per frame, packet::classify_frame
//               (VLAN, MAC, ethertype, runts) -> the ARP and IPv4 stacks
//   arp_stage   answers and learns (worker_l2.cpp), hands replies to the
//               port's address to its kernel interface; with several workers
//               the others learn from a copy (never handed to the kernel)
//   l3_stage    address checks (martians, broadcasts, ours: echo, the rest
//               to the port's kernel interface if it has one,
//               worker_exception.cpp), the wrong
//               side (subscriber addresses only from the inside, the inside
//               subnet never back through the NAT), toward the outside the
//               TTL and MTU before translation (the ICMP error quotes the
//               packet as the subscriber sent it), then the owner's worker
//   nat_stage   Engine::process_burst for the direction of S, the stuck
//               list's errors, each verdict routed (worker_router.cpp),
//               hairpinned to another worker, or dropped
//
// ARP frames of a burst are handled before its IPv4 packets: a packet whose
// next hop answers ARP later in the same burst goes out at once instead of
// waiting in the neighbour queue.
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <algorithm>

#include "dataplane/burst.hpp"
#include "dataplane/worker.hpp"
#include "packet/frame.hpp"
#include "packet/headers.hpp"
#include "packet/router.hpp"

namespace passgate::dataplane {

using packet::Ipv4Header;
using stats::PortDrop;


void Worker::choose_receive() {
  if (cfg.dataplane.forward_only) {  // the I/O ceiling: route, never translate
    wire_[0] = &Worker::receive_forward<Side::inside>;
    wire_[1] = &Worker::receive_forward<Side::outside>;
  } else if (rules) {
    wire_[0] = &Worker::receive_wire<Side::inside, true>;
    wire_[1] = &Worker::receive_wire<Side::outside, true>;
  } else {
    wire_[0] = &Worker::receive_wire<Side::inside, false>;
    wire_[1] = &Worker::receive_wire<Side::outside, false>;
  }
}

// Stage boundaries (stats/runtime.hpp) after the stacks are filled and after
// the verdicts are routed; the engine adds its own in between. A stage
// that got no packet takes no boundary.
template <Side S, bool Steered>
void Worker::receive_wire(rte_mbuf** mbufs, unsigned n) {
  Burst b;
  l2_stage<S>(b, mbufs, n);
  arp_stage<S>(b);
  l3_stage<S, Steered>(b);
  runtime.lap(stats::Stage::classify, n);
  nat_stage<S>(b);
  free_discarded();
  if (b.nat_count) runtime.lap(stats::Stage::route, b.nat_count);
}

template <Side S>
void Worker::receive_forward(rte_mbuf** mbufs, unsigned n) {
  Burst b;
  l2_stage<S>(b, mbufs, n);
  arp_stage<S>(b);
  runtime.lap(stats::Stage::classify, n);
  for (unsigned i = 0; i < b.ip_count; ++i) {
    const auto [m, l2] = b.ip[i];
    if (ip_addresses_acceptable<S>(m, l2)) forward(other_side(S), m, l2);
  }
  free_discarded();
  if (b.ip_count) runtime.lap(stats::Stage::route, b.ip_count);
}

template <Side S>
void Worker::receive_handed(rte_mbuf** mbufs, unsigned n) {
  Burst b;
  for (unsigned i = 0; i < n; ++i) {
    rte_mbuf* m = mbufs[i];
    if (m->packet_type == handed_arp_copy) {
      handle_arp(S, m, m->l2_len, true);
      continue;
    }
    counters_of(S).handoff_in++;
    if constexpr (S == Side::outside) {
      // A fragment handed here for its rendezvous (from a worker that read
      // it off a queue without RSS, or hairpinned), not by it.
      const std::span<const std::uint8_t> bytes(rte_pktmbuf_mtod_offset(m, const std::uint8_t*, m->l2_len),
                                                rte_pktmbuf_data_len(m) - m->l2_len);
      if (const auto f = steering::fragment_info(bytes)) [[unlikely]]
        if (rules->rss->worker_of_outside_portless(f->key.dst) == index) {
          rendezvous_fragment(b, m, m->l2_len, *f);
          continue;
        }
    }
    push_nat<S>(b, m, m->l2_len);
  }
  runtime.lap(stats::Stage::handoff, n);  // the ring's dequeue and sorting with it
  nat_stage<S>(b);
  free_discarded();
  if (b.nat_count) runtime.lap(stats::Stage::route, b.nat_count);
}

template <Side S>
void Worker::l2_stage(Burst& b, rte_mbuf** mbufs, unsigned n) {
  stats::PortCounters& c = counters_of(S);
  const packet::FramePort& fp = frame_ports_[index_of(S)];
  for (unsigned i = 0; i < n; ++i) {
    rte_mbuf* m = mbufs[i];
    c.rx_packets++;
    c.rx_bytes += rte_pktmbuf_pkt_len(m);
    if (m->nb_segs > 1 && rte_pktmbuf_linearize(m) != 0) {
      drop(S, m, PortDrop::multi_segment);
      continue;
    }
    // A PMD may strip the tag into the mbuf (af_packet does, as the kernel
    // hands it over in auxiliary data); otherwise it is inline.
    const std::uint16_t stripped = (m->ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED) ? (m->vlan_tci & 0x0fff) : 0;
    const packet::FrameInfo info = packet::classify_frame(
        std::span<const std::uint8_t>(rte_pktmbuf_mtod(m, const std::uint8_t*), rte_pktmbuf_data_len(m)), stripped, fp);
    if (info.kind == packet::FrameKind::ipv4) [[likely]]
      b.ip[b.ip_count++] = {m, info.l2_len};
    else if (info.kind == packet::FrameKind::arp)
      b.arp[b.arp_count++] = {m, info.l2_len};
    else
      drop(S, m, frame_drop(info.kind));
  }
}

template <Side S>
void Worker::arp_stage(Burst& b) {
  for (unsigned i = 0; i < b.arp_count; ++i) {
    const auto [m, l2] = b.arp[i];
    if (rules) copy_arp_to_others(S, m, l2);
    handle_arp(S, m, l2);
  }
}

template <Side S, bool Steered>
void Worker::l3_stage(Burst& b) {
  const config::PortConfig& pc = *port(S).cfg;
  for (unsigned i = 0; i < b.ip_count; ++i) {
    const auto [m, l2] = b.ip[i];
    if (!ip_addresses_acceptable<S>(m, l2)) continue;  // answered or dropped there
    const auto* ip = rte_pktmbuf_mtod_offset(m, const Ipv4Header*, l2);
    // Subscriber addresses only ever come from the inside (anti-spoofing),
    // and the inside subnet is never routed back through the NAT.
    bool wrong_side;
    if constexpr (S == Side::inside) wrong_side = pc.subnet().contains(ip->dst);
    else wrong_side = policy->subscribers.contains(ip->src);
    if (wrong_side) [[unlikely]] {
      drop(S, m, PortDrop::wrong_side);
      continue;
    }
    // TTL and MTU toward the internet are known before translation, and the
    // ICMP error must quote the packet as the subscriber sent it.
    if constexpr (S == Side::inside)
      if (!fits_outside_or_answer(m, l2)) continue;
    if constexpr (Steered) {
      const std::span<const std::uint8_t> bytes(rte_pktmbuf_mtod_offset(m, const std::uint8_t*, l2),
                                                rte_pktmbuf_data_len(m) - l2);
      const unsigned owner = S == Side::inside
                                 ? steering::owner_outbound(*rules, bytes, index, &policy->static_endpoints)
                                 : steering::owner_inbound(*rules, bytes, index);
      if constexpr (S == Side::outside)
        if (owner == index)
          if (const auto f = steering::fragment_info(bytes)) [[unlikely]] {
            rendezvous_fragment(b, m, l2, *f);  // worker_fragments.cpp
            continue;
          }
      if (owner != index) {
        m->packet_type = handed_ipv4;
        hand_to(owner, S, m, l2);
        continue;
      }
    }
    push_nat<S>(b, m, l2);
  }
}

template <Side S>
void Worker::push_nat(Burst& b, rte_mbuf* m, unsigned l2) {
  const std::span<std::uint8_t> bytes(rte_pktmbuf_mtod_offset(m, std::uint8_t*, l2), rte_pktmbuf_data_len(m) - l2);
  if constexpr (S == Side::outside) {
    const auto* ip = reinterpret_cast<const Ipv4Header*>(bytes.data());
    const unsigned total = ip->total_length.host();
    const std::uint16_t mtu = port(Side::inside).cfg->mtu;
    const bool ttl = ip->ttl <= 1;
    if (ttl || (total > mtu && (ip->flags_fragment.host() & 0x4000))) [[unlikely]] {
      const std::span<const std::uint8_t> packet(bytes.data(), std::min<std::size_t>(total, bytes.size()));
      const std::uint8_t type = ttl ? packet::icmp_type::time_exceeded : packet::icmp_type::dest_unreachable;
      b.stuck[b.stuck_count++] = {
          static_cast<std::uint8_t>(b.nat_count), type,
          make_icmp_error(S, packet, type,
                          ttl ? packet::icmp_code::ttl_exceeded_in_transit : packet::icmp_code::fragmentation_needed,
                          ttl ? 0 : mtu)};
    }
  }
  b.refs[b.nat_count] = {bytes, {}};
  b.nat[b.nat_count++] = {m, static_cast<std::uint8_t>(l2)};
}

template <Side S>
void Worker::nat_stage(Burst& b) {
  if (b.nat_count == 0) return;
  engine->process_burst(S == Side::inside ? nat::Direction::outbound : nat::Direction::inbound,
                        std::span<nat::PacketRef>(b.refs, b.nat_count), now_ms);
  for (unsigned k = 0; k < b.stuck_count; ++k) {
    const Burst::Stuck& s = b.stuck[k];
    if (b.refs[s.index].result.verdict != nat::Verdict::to_inside) {
      unmake_icmp_error(s.error);
      continue;
    }
    drop(Side::inside, b.nat[s.index].m,
         s.type == packet::icmp_type::time_exceeded ? PortDrop::ttl_exceeded : PortDrop::mtu_exceeded);
    b.nat[s.index].m = nullptr;
    send_icmp_error(S, s.error, s.type);
  }
  for (unsigned i = 0; i < b.nat_count; ++i) {
    const auto [m, l2] = b.nat[i];
    if (!m) continue;  // answered above
    switch (b.refs[i].result.verdict) {
      case nat::Verdict::to_outside: forward(Side::outside, m, l2); break;
      case nat::Verdict::to_inside: forward(Side::inside, m, l2); break;
      case nat::Verdict::held: discard(m); break;  // the engine kept a copy
      case nat::Verdict::to_outside_hairpin: {
        // Source translated; the destination's mapping is another worker's:
        // it arrives there as an inbound packet on the outside port.
        const unsigned owner = steering::owner_inbound(*rules, b.refs[i].bytes, index);
        if (owner == index) {
          drop(S, m, PortDrop::nat);
        } else {
          m->packet_type = handed_ipv4;
          hand_to(owner, Side::outside, m, l2);
        }
        break;
      }
      case nat::Verdict::drop: drop(S, m, PortDrop::nat); break;
    }
  }
  if (engine->has_released()) release_fragments();
}

// Called from worker_fragments.cpp.
template void Worker::push_nat<Side::outside>(Burst&, rte_mbuf*, unsigned);
// Called from worker_handoff.cpp.
template void Worker::receive_handed<Side::inside>(rte_mbuf**, unsigned);
template void Worker::receive_handed<Side::outside>(rte_mbuf**, unsigned);

}  // namespace passgate::dataplane
