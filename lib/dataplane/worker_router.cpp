// A worker's duties as a router around the NAT (RFC 1812): forwarding out
// of a port, and the rare paths of the receive stages and of forward():
//   frame_drop              L2: the drop reason of a frame the port does not take
//                           (packet::classify_frame decides)
//   ip_addresses_acceptable martian sources and broadcast destinations dropped
//                           (5.3.7), our own addresses answered, never routed
//   fits_outside_or_answer  TTL and Don't Fragment size toward the internet,
//                           checked before translation so that the ICMP error
//                           quotes the packet as the subscriber sent it
//   make/send_icmp_error    Time Exceeded, Fragmentation Needed (RFC 1191),
//                           rate-limited per worker (4.3.2.8)
//   forward, route          TTL (5.3.1), MTU, next hop (packet::RouteTable),
//                           Ethernet framing, the neighbour's MAC or ARP queue
//   fragment_and_route      a packet without DF larger than the egress MTU (5.2.6)
// The bytes are written by lib/packet/router.hpp.
#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>

#include "packet/frame.hpp"
#include "dataplane/worker.hpp"
#include "packet/checksum.hpp"
#include "packet/headers.hpp"
#include "packet/parse.hpp"
#include "packet/router.hpp"

namespace passgate::dataplane {

using packet::ChecksumDelta;
using packet::Ipv4Header;
using packet::eth_len;
using packet::vlan_len;
using stats::PortDrop;

namespace {
constexpr std::uint16_t dont_fragment = 0x4000;

// The subnet's directed broadcast address, when the prefix has one.
bool is_subnet_broadcast(const config::PortConfig& pc, be32 a) {
  if (pc.prefix_length >= 31) return false;
  const std::uint32_t host_bits = 0xffffffffu >> pc.prefix_length;
  return a.host() == (pc.address.host() | host_bits);
}
}  // namespace

stats::PortDrop Worker::frame_drop(packet::FrameKind kind) {
  switch (kind) {
    case packet::FrameKind::runt: return PortDrop::runt;
    case packet::FrameKind::vlan_mismatch: return PortDrop::vlan_mismatch;
    case packet::FrameKind::foreign_mac: return PortDrop::foreign_mac;
    case packet::FrameKind::not_ipv4_or_arp:
    case packet::FrameKind::ipv4:
    case packet::FrameKind::arp: break;
  }
  return PortDrop::not_ipv4_or_arp;
}

bool Worker::unusual_addresses_acceptable(Side s, rte_mbuf* m, unsigned l2) {
  const PortView& pv = port(s);
  const bool inside = s == Side::inside;
  const auto* ip = rte_pktmbuf_mtod_offset(m, const Ipv4Header*, l2);
  PortDrop reason;
  if (packet::is_martian_source(ip->src)) {
    reason = PortDrop::martian_source;
  } else if (packet::is_broadcast_or_multicast(ip->dst) || is_subnet_broadcast(*pv.cfg, ip->dst)) {
    reason = PortDrop::broadcast_destination;
  } else if (ip->dst == pv.cfg->address || (inside && ip->dst == port(Side::outside).cfg->address)) {
    // Ours: answered here (echo) or dropped, never routed on, never ARPed for.
    answer_echo(s, m, l2);
    return false;
  } else if (!inside && (ip->src == port(Side::inside).cfg->address || ip->src == pv.cfg->address ||
                         engine->is_public_address(ip->src))) {
    reason = PortDrop::own_address_source;  // spoofed: our addresses never arrive from outside
  } else {
    return true;
  }
  drop(s, m, reason);
  return false;
}

// Inside packets only (the subscriber is the one to tell).
bool Worker::fits_outside_or_answer(rte_mbuf* m, unsigned l2) {
  const auto* ip = rte_pktmbuf_mtod_offset(m, const Ipv4Header*, l2);
  const unsigned total = ip->total_length.host();
  const std::uint16_t mtu = port(Side::outside).cfg->mtu;
  const bool expired = ip->ttl <= 1;
  if (!expired && (total <= mtu || !(ip->flags_fragment.host() & dont_fragment))) [[likely]]
    return true;
  const std::span<const std::uint8_t> packet(rte_pktmbuf_mtod_offset(m, const std::uint8_t*, l2),
                                             std::min<unsigned>(total, rte_pktmbuf_data_len(m) - l2));
  packet::ParsedIpv4 parsed;
  if (packet::parse_ipv4(packet, parsed) != packet::ParseError::ok) return true;  // the engine drops and counts it
  const std::uint8_t type = expired ? packet::icmp_type::time_exceeded : packet::icmp_type::dest_unreachable;
  rte_mbuf* error = make_icmp_error(Side::inside, packet, type,
                                    expired ? packet::icmp_code::ttl_exceeded_in_transit
                                            : packet::icmp_code::fragmentation_needed,
                                    expired ? 0 : mtu);
  drop(Side::outside, m, expired ? PortDrop::ttl_exceeded : PortDrop::mtu_exceeded);
  send_icmp_error(Side::inside, error, type);
  return false;
}

bool Worker::take_icmp_token(Side s) {
  const struct {
    std::uint64_t per_second, burst;
  } rate{cfg.dataplane.icmp_error_rate, cfg.dataplane.icmp_error_burst};
  const std::uint64_t cap = std::uint64_t{rate.burst} * 1000;
  icmp_tokens_milli_ = std::min(cap, icmp_tokens_milli_ + (now_ms - icmp_refilled_ms_) * rate.per_second);
  icmp_refilled_ms_ = now_ms;
  if (rate.per_second == 0 || icmp_tokens_milli_ < 1000) {
    counters_of(s).icmp_errors_rate_limited++;
    return false;
  }
  icmp_tokens_milli_ -= 1000;
  return true;
}

rte_mbuf* Worker::make_icmp_error(Side s, std::span<const std::uint8_t> offending, std::uint8_t type,
                                  std::uint8_t code, std::uint16_t mtu) {
  packet::ParsedIpv4 parsed;
  if (packet::parse_ipv4(offending, parsed) != packet::ParseError::ok) return nullptr;
  if (!packet::may_send_icmp_error(offending) || !take_icmp_token(s)) return nullptr;
  rte_mbuf* e = rte_pktmbuf_alloc(pool);
  const unsigned l2 = eth_len + (port(s).cfg->vlan ? vlan_len : 0);
  auto* data = e ? reinterpret_cast<std::uint8_t*>(
                       rte_pktmbuf_append(e, static_cast<std::uint16_t>(l2 + packet::icmp_error_max_bytes)))
                 : nullptr;
  if (!data) {
    counters_of(s).add(PortDrop::no_mbuf);
    if (e) discard(e);
    return nullptr;
  }
  const std::size_t n = packet::write_icmp_error(offending, port(s).cfg->address, type, code, mtu, ++icmp_ip_id_,
                                                 std::span<std::uint8_t>(data + l2, packet::icmp_error_max_bytes));
  rte_pktmbuf_trim(e, static_cast<std::uint16_t>(packet::icmp_error_max_bytes - n));
  if (n == 0) {
    discard(e);
    return nullptr;
  }
  return e;
}

void Worker::send_icmp_error(Side s, rte_mbuf* error, std::uint8_t type) {
  if (!error) return;
  if (type == packet::icmp_type::time_exceeded)
    counters_of(s).icmp_time_exceeded_sent++;
  else
    counters_of(s).icmp_frag_needed_sent++;
  const unsigned l2 = eth_len + (port(s).cfg->vlan ? vlan_len : 0);
  route(s, error, l2, rte_pktmbuf_data_len(error) - l2);
}

void Worker::unmake_icmp_error(rte_mbuf* error) {
  if (!error) return;
  discard(error);
  const std::uint64_t cap = std::uint64_t{cfg.dataplane.icmp_error_burst} * 1000;
  icmp_tokens_milli_ = std::min(cap, icmp_tokens_milli_ + 1000);  // not sent: give its token back
}

void Worker::fragment_and_route(Side egress, rte_mbuf* m, unsigned l2_in) {
  stats::PortCounters& c = counters_of(egress);
  const std::uint16_t mtu = port(egress).cfg->mtu;
  const auto* ip = rte_pktmbuf_mtod_offset(m, const Ipv4Header*, l2_in);
  const std::span<const std::uint8_t> packet(rte_pktmbuf_mtod_offset(m, const std::uint8_t*, l2_in),
                                             std::min<unsigned>(ip->total_length.host(), rte_pktmbuf_data_len(m) - l2_in));
  const packet::FragmentPlan plan = packet::plan_fragments(packet, mtu);
  if (plan.count == 0) {  // Don't Fragment: hairpinned or a released fragment (no error due, see forward())
    drop(egress, m, PortDrop::mtu_exceeded);
    return;
  }
  const unsigned l2_out = eth_len + (port(egress).cfg->vlan ? vlan_len : 0);
  c.packets_fragmented++;
  for (unsigned i = 0; i < plan.count; ++i) {
    rte_mbuf* f = rte_pktmbuf_alloc(pool);
    auto* data = f ? reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(f, static_cast<std::uint16_t>(l2_out + mtu)))
                   : nullptr;
    if (!data) {  // the rest of the datagram is lost: the receiver's reassembly times out
      c.add(PortDrop::no_mbuf, plan.count - i);
      if (f) discard(f);
      break;
    }
    const std::size_t n = packet::write_fragment(packet, plan, i, std::span<std::uint8_t>(data + l2_out, mtu));
    rte_pktmbuf_trim(f, static_cast<std::uint16_t>(mtu - n));
    c.fragments_sent++;
    route(egress, f, l2_out, static_cast<unsigned>(n));
  }
  discard(m);
}

// Routes a translated packet out of `egress`: TTL (RFC 1812 5.3.1), MTU
// (fragmenting when allowed, RFC 1812 5.2.6), then route(). Packets that
// fail here without an ICMP error were checked before translation when an
// error was due (fits_outside_or_answer, the stuck list of the receive stages):
// what remains is hairpinned traffic and released fragments.
void Worker::forward(Side egress, rte_mbuf* m, unsigned l2_in) {
  auto* ip = rte_pktmbuf_mtod_offset(m, Ipv4Header*, l2_in);
  if (ip->ttl <= 1) {
    drop(egress, m, PortDrop::ttl_exceeded);
    return;
  }
  // TTL shares a 16-bit word with the protocol: update the checksum for it.
  const packet::be16 before = packet::load<packet::be16>(&ip->ttl);
  --ip->ttl;
  ip->checksum = ChecksumDelta().add(before, packet::load<packet::be16>(&ip->ttl)).apply(ip->checksum);
  const unsigned total = ip->total_length.host();
  if (total > port(egress).cfg->mtu) [[unlikely]] {
    fragment_and_route(egress, m, l2_in);
    return;
  }
  route(egress, m, l2_in, total);
}

// Next hop, Ethernet framing for the egress port, then the neighbour's MAC
// or the ARP queue.
void Worker::route(Side egress, rte_mbuf* m, unsigned l2_in, unsigned total) {
  const auto* ip = rte_pktmbuf_mtod_offset(m, const Ipv4Header*, l2_in);
  const std::optional<be32> next = routes_[index_of(egress)].next_hop(ip->dst);
  if (!next) {
    drop(egress, m, PortDrop::no_route);
    return;
  }
  const be32 hop = *next;
  // Frame it for the egress port: drop Ethernet padding, fit the header.
  const unsigned l2_out = eth_len + (port(egress).cfg->vlan ? vlan_len : 0);
  if (rte_pktmbuf_data_len(m) > l2_in + total) rte_pktmbuf_trim(m, rte_pktmbuf_data_len(m) - l2_in - total);
  if (l2_out < l2_in) rte_pktmbuf_adj(m, static_cast<std::uint16_t>(l2_in - l2_out));
  else if (l2_out > l2_in && !rte_pktmbuf_prepend(m, static_cast<std::uint16_t>(l2_out - l2_in))) {
    drop(egress, m, PortDrop::no_mbuf);
    return;
  }
  NeighbourTable& table = *neighbours[index_of(egress)];
  if (const MacAddress* mac = table.lookup(hop, now_ms)) {
    send_l2(egress, m, *mac);
    return;
  }
  switch (table.enqueue(hop, m, now_ms)) {
    case NeighbourTable::QueueResult::queued: break;
    case NeighbourTable::QueueResult::queued_send_request: send_arp_request(egress, hop); break;
    case NeighbourTable::QueueResult::full:
    case NeighbourTable::QueueResult::held_full: drop(egress, m, PortDrop::neighbour_queue_full); break;
    case NeighbourTable::QueueResult::table_full: drop(egress, m, PortDrop::neighbour_table_full); break;
  }
}

}  // namespace passgate::dataplane
