// What a worker answers itself at layer 2 and for its own addresses: ARP
// (RFC 826) requests and replies, its own ARP requests for next hops, and
// ICMP echo to the gateway's addresses. Called from receive() and route()
// (worker.cpp); the neighbour cache is neighbour_table.hpp.
#include <rte_arp.h>
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

// RFC 826. Answers requests for our addresses (the port's own and, on the
// outside, every public NAT address), learns the sender when we are the
// target, and merges replies into waiting entries.
void Worker::handle_arp(unsigned port, rte_mbuf* m, unsigned l2, bool learn_only) {
  stats::PortCounters& c = counters[port];
  const PortView& pv = ports[port];
  if (rte_pktmbuf_data_len(m) < l2 + sizeof(rte_arp_hdr)) {
    c.add(PortDrop::runt);
    rte_pktmbuf_free(m);
    return;
  }
  auto* arp = rte_pktmbuf_mtod_offset(m, rte_arp_hdr*, l2);
  if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
      arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) || arp->arp_hlen != 6 || arp->arp_plen != 4) {
    c.add(PortDrop::arp_ignored);
    rte_pktmbuf_free(m);
    return;
  }
  const be32 sender = load_be32(&arp->arp_data.arp_sip);
  const be32 target = load_be32(&arp->arp_data.arp_tip);
  const MacAddress sender_mac = mac_of(arp->arp_data.arp_sha);
  const bool for_us = answers_arp_for(port, target);
  const bool on_link = pv.cfg->subnet().contains(sender);
  if (on_link) {
    const auto learned =
        neighbours[port]->learn(sender, sender_mac, now_ms, for_us, [&](rte_mbuf* queued, const MacAddress& mac) {
          send_l2(port, queued, mac);
        });
    if (!learn_only && learned == NeighbourTable::Learned::unsolicited_full) c.arp_unsolicited_not_learned++;
    if (arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REPLY) && !learn_only) c.arp_replies_learned++;
  } else if (!learn_only && for_us && arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST)) {
    // Nobody on this link has that address: answering would teach a host
    // elsewhere to send here (RFC 1812 5.3.7's spirit for ARP).
    c.add(PortDrop::arp_off_subnet);
    rte_pktmbuf_free(m);
    return;
  }
  if (learn_only) {  // another worker's copy: it answers and counts
    rte_pktmbuf_free(m);
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
    transmit(port, m);
    return;
  }
  if (!on_link || arp->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REPLY)) c.add(PortDrop::arp_ignored);
  rte_pktmbuf_free(m);
}

// ICMP echo to the gateway's own address on this port: answered in place
// (RFC 1122 3.2.2.6). Anything else addressed to us is dropped and counted.
void Worker::answer_echo(unsigned port, rte_mbuf* m, unsigned l2) {
  stats::PortCounters& c = counters[port];
  std::uint8_t* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
  const unsigned len = rte_pktmbuf_data_len(m);
  packet::ParsedIpv4 p;
  const auto err = packet::parse_ipv4(std::span<const std::uint8_t>(frame + l2, len - l2), p);
  if (err != packet::ParseError::ok || p.kind != packet::L4Kind::icmp_query ||
      p.icmp_type != packet::icmp_type::echo_request || p.fragmented) {
    c.add(PortDrop::not_for_us);
    rte_pktmbuf_free(m);
    return;
  }
  auto* ip = reinterpret_cast<Ipv4Header*>(frame + l2);
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
  eth->src_addr = ether_of(ports[port].mac);
  c.icmp_echo_answered++;
  transmit(port, m);
}

void Worker::send_arp_request(unsigned port, be32 target) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (!m) {
    counters[port].add(PortDrop::no_mbuf);
    return;
  }
  const std::uint16_t vlan = ports[port].cfg->vlan;
  const unsigned l2 = eth_len + (vlan ? vlan_len : 0);
  auto* frame = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(m, static_cast<std::uint16_t>(l2 + sizeof(rte_arp_hdr))));
  if (!frame) {
    counters[port].add(PortDrop::no_mbuf);
    rte_pktmbuf_free(m);
    return;
  }
  std::memset(frame, 0xff, 6);
  std::memcpy(frame + 6, ports[port].mac.bytes.data(), 6);
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
  arp->arp_data.arp_sha = ether_of(ports[port].mac);
  std::memcpy(&arp->arp_data.arp_sip, &ports[port].cfg->address.raw, 4);
  std::memset(&arp->arp_data.arp_tha, 0, 6);
  std::memcpy(&arp->arp_data.arp_tip, &target.raw, 4);
  counters[port].arp_requests_sent++;
  transmit(port, m);
}

}  // namespace passgate::dataplane
