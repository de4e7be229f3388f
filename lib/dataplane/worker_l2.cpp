// A worker at layer 2 and for its own addresses: ARP (RFC 826) requests and
// replies, its own ARP requests for next hops, ICMP echo to the gateway's
// addresses, and framing and transmitting what leaves. Called from the
// receive stages (worker_receive.cpp) and route() (worker_router.cpp); the
// neighbour cache is neighbour_table.hpp.
#include <rte_arp.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <cstring>

#include "dataplane/worker.hpp"
#include "packet/checksum.hpp"
#include "packet/frame.hpp"
#include "packet/headers.hpp"
#include "packet/parse.hpp"

namespace passgate::dataplane {

using packet::ChecksumDelta;
using packet::Ipv4Header;
using packet::eth_len;
using packet::vlan_len;
using stats::PortDrop;

namespace {

MacAddress mac_of(const rte_ether_addr& a) {
  MacAddress m;
  std::memcpy(m.bytes.data(), a.addr_bytes, 6);
  return m;
}
rte_ether_addr ether_of(const MacAddress& m) {
  rte_ether_addr a;
  std::memcpy(a.addr_bytes, m.bytes.data(), 6);
  return a;
}
be32 load_be32(const void* p) {
  be32 v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

bool Worker::answers_arp_for(Side s, be32 a) const {
  return a == port(s).cfg->address || (s == Side::outside && engine->is_public_address(a));
}

// RFC 826. Answers requests for our addresses (the port's own and, on the
// outside, every public NAT address), learns the sender when we are the
// target, and merges replies into waiting entries.
void Worker::handle_arp(Side s, rte_mbuf* m, unsigned l2, bool learn_only) {
  stats::PortCounters& c = counters_of(s);
  const PortView& pv = port(s);
  if (rte_pktmbuf_data_len(m) < l2 + sizeof(rte_arp_hdr)) {
    drop(s, m, PortDrop::runt);
    return;
  }
  auto* arp = rte_pktmbuf_mtod_offset(m, rte_arp_hdr*, l2);
  if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
      arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) || arp->arp_hlen != 6 || arp->arp_plen != 4) {
    drop(s, m, PortDrop::arp_ignored);
    return;
  }
  const be32 sender = load_be32(&arp->arp_data.arp_sip);
  const be32 target = load_be32(&arp->arp_data.arp_tip);
  const MacAddress sender_mac = mac_of(arp->arp_data.arp_sha);
  const bool for_us = answers_arp_for(s, target);
  const bool on_link = pv.cfg->subnet().contains(sender);
  if (on_link) {
    const auto learned =
        neighbours[index_of(s)]->learn(sender, sender_mac, now_ms, for_us, [&](rte_mbuf* queued, const MacAddress& mac) {
          send_l2(s, queued, mac);
        });
    if (!learn_only && learned == NeighbourTable::Learned::unsolicited_full) c.arp_unsolicited_not_learned++;
    if (arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REPLY) && !learn_only) c.arp_replies_learned++;
  } else if (!learn_only && for_us && arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST)) {
    // Nobody on this link has that address: answering would teach a host
    // elsewhere to send here (RFC 1812 5.3.7's spirit for ARP).
    drop(s, m, PortDrop::arp_off_subnet);
    return;
  }
  if (learn_only) {  // another worker's copy: it answers and counts
    discard(m);
    return;
  }
  if (arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) && for_us) {
    // Turn the request into the reply in place.
    arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
    arp->arp_data.arp_tha = arp->arp_data.arp_sha;
    arp->arp_data.arp_tip = arp->arp_data.arp_sip;
    arp->arp_data.arp_sha = ether_of(pv.mac);
    std::memcpy(&arp->arp_data.arp_sip, &target.raw, 4);
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    eth->dst_addr = eth->src_addr;
    eth->src_addr = ether_of(pv.mac);
    c.arp_requests_answered++;
    transmit(s, m);
    return;
  }
  // The kernel interface learns its peers from the same replies (it never
  // answers ARP itself, kernel_interface.hpp): a reply to the port's address
  // or a gratuitous announcement, after the dataplane learned it.
  if (on_link && pv.exception_id &&
      ((arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REPLY) && target == pv.cfg->address) || sender == target)) {
    to_kernel(s, m, l2, sender);
    return;
  }
  if (!on_link || arp->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REPLY)) c.add(PortDrop::arp_ignored);
  discard(m);
}

// ICMP echo to the gateway's own address on this port: answered in place
// (RFC 1122 3.2.2.6), so ping never depends on the kernel. Anything else
// addressed to the port goes to its kernel interface when it has one (BGP,
// BFD, SSH, ICMP errors for the kernel's connections: the kernel checks it
// as any host would), else it is dropped and counted. From the inside to the
// outside port's address it is always dropped: subscribers never reach the
// box's control plane.
void Worker::answer_echo(Side s, rte_mbuf* m, unsigned l2) {
  stats::PortCounters& c = counters_of(s);
  std::uint8_t* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
  const unsigned len = rte_pktmbuf_data_len(m);
  auto* ip = reinterpret_cast<Ipv4Header*>(frame + l2);
  packet::ParsedIpv4 p;
  const auto err = packet::parse_ipv4(std::span<const std::uint8_t>(frame + l2, len - l2), p);
  if (err != packet::ParseError::ok || p.kind != packet::L4Kind::icmp_query ||
      p.icmp_type != packet::icmp_type::echo_request || p.fragmented) {
    if (port(s).exception_id && ip->dst == port(s).cfg->address) to_kernel(s, m, l2, ip->src);
    else drop(s, m, PortDrop::not_for_us);
    return;
  }
  const be32 requester = ip->src;
  ip->src = ip->dst;
  ip->dst = requester;
  ip->ttl = 64;
  ip->checksum = packet::be16{0};
  ip->checksum = packet::internet_checksum(std::span<const std::uint8_t>(frame + l2, ip->header_bytes()));
  auto* icmp = reinterpret_cast<packet::IcmpHeader*>(frame + l2 + ip->header_bytes());
  icmp->checksum = ChecksumDelta()
                       .add(packet::be16{static_cast<std::uint16_t>(icmp->type)}, packet::be16{0})
                       .apply(icmp->checksum);
  icmp->type = packet::icmp_type::echo_reply;
  if (rte_pktmbuf_data_len(m) > l2 + p.total_length) rte_pktmbuf_trim(m, rte_pktmbuf_data_len(m) - l2 - p.total_length);
  auto* eth = reinterpret_cast<rte_ether_hdr*>(frame);
  eth->dst_addr = eth->src_addr;
  eth->src_addr = ether_of(port(s).mac);
  c.icmp_echo_answered++;
  transmit(s, m);
}

void Worker::send_arp_request(Side s, be32 target) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (!m) {
    counters_of(s).add(PortDrop::no_mbuf);
    return;
  }
  const PortView& pv = port(s);
  const std::uint16_t vlan = pv.cfg->vlan;
  const unsigned l2 = eth_len + (vlan ? vlan_len : 0);
  auto* frame = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(m, static_cast<std::uint16_t>(l2 + sizeof(rte_arp_hdr))));
  if (!frame) {
    drop(s, m, PortDrop::no_mbuf);
    return;
  }
  std::memset(frame, 0xff, 6);
  std::memcpy(frame + 6, pv.mac.bytes.data(), 6);
  if (vlan) {
    frame[12] = 0x81, frame[13] = 0x00;
    frame[14] = static_cast<std::uint8_t>(vlan >> 8), frame[15] = static_cast<std::uint8_t>(vlan);
  }
  frame[l2 - 2] = 0x08, frame[l2 - 1] = 0x06;
  auto* arp = reinterpret_cast<rte_arp_hdr*>(frame + l2);
  arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
  arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
  arp->arp_hlen = 6;
  arp->arp_plen = 4;
  arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
  arp->arp_data.arp_sha = ether_of(pv.mac);
  std::memcpy(&arp->arp_data.arp_sip, &pv.cfg->address.raw, 4);
  std::memset(&arp->arp_data.arp_tha, 0, 6);
  std::memcpy(&arp->arp_data.arp_tip, &target.raw, 4);
  counters_of(s).arp_requests_sent++;
  transmit(s, m);
}

// Writes the Ethernet (and 802.1Q) header of a frame whose L2 room is
// already the egress size, and queues it for transmission.
void Worker::send_l2(Side egress, rte_mbuf* m, const MacAddress& dst) {
  auto* eth = rte_pktmbuf_mtod(m, std::uint8_t*);
  std::memcpy(eth, dst.bytes.data(), 6);
  std::memcpy(eth + 6, port(egress).mac.bytes.data(), 6);
  const std::uint16_t vlan = port(egress).cfg->vlan;
  if (vlan) {
    eth[12] = 0x81, eth[13] = 0x00;
    eth[14] = static_cast<std::uint8_t>(vlan >> 8), eth[15] = static_cast<std::uint8_t>(vlan);
    eth[16] = 0x08, eth[17] = 0x00;
  } else {
    eth[12] = 0x08, eth[13] = 0x00;
  }
  transmit(egress, m);
}

void Worker::transmit(Side s, rte_mbuf* m) {
  TxBuffer& b = tx[index_of(s)];
  if (b.count == TxBuffer::capacity) flush(s);
  b.mbufs[b.count++] = m;
}

unsigned Worker::flush(Side s) {
  TxBuffer& b = tx[index_of(s)];
  if (b.count == 0) return 0;
  const unsigned count = b.count;
  std::uint64_t bytes = 0;
  for (unsigned i = 0; i < b.count; ++i) bytes += rte_pktmbuf_pkt_len(b.mbufs[i]);
  const std::uint16_t sent = rte_eth_tx_burst(port(s).id, queue, b.mbufs, static_cast<std::uint16_t>(b.count));
  for (unsigned i = sent; i < b.count; ++i) {
    bytes -= rte_pktmbuf_pkt_len(b.mbufs[i]);
    discard(b.mbufs[i]);
  }
  stats::PortCounters& c = counters_of(s);
  c.tx_packets += sent;
  c.tx_bytes += bytes;
  if (sent < b.count) c.add(PortDrop::tx_full, b.count - sent);
  b.count = 0;
  return count;
}

}  // namespace passgate::dataplane
