// Counters of one port as seen by one worker: traffic in and out, and every
// reason a frame is dropped before or after the NAT engine. Plain integers
// written by the owning worker only; the control core sums the workers.
#pragma once

#include <array>
#include <cstdint>

namespace passgate::stats {

#define PASSGATE_PORT_DROPS(X)                                                         \
  X(not_ipv4_or_arp, "ethertype is neither IPv4 nor ARP")                             \
  X(vlan_mismatch, "802.1Q tag missing, unexpected, or for another VLAN")            \
  X(runt, "frame shorter than its headers")                                           \
  X(multi_segment, "frame in several buffers that could not be joined")              \
  X(arp_ignored, "ARP that is not for us and not a reply we wait for")               \
  X(not_for_us, "IPv4 to the gateway's own address that is not an echo request")    \
  X(ttl_exceeded, "TTL would reach zero when forwarded")                              \
  X(no_route, "no on-link match, route or gateway for the destination")               \
  X(wrong_side, "packet arrived on a port whose role does not fit its addresses")    \
  X(mtu_exceeded, "larger than the egress MTU with Don't Fragment set")               \
  X(neighbour_queue_full, "next hop unresolved and its queue (or the port's neighbour.held) is full")                \
  X(neighbour_failed, "next hop did not answer ARP")                                  \
  X(neighbour_table_full, "no room for another neighbour entry")                      \
  X(nat, "dropped by the NAT engine (see the NAT drop reasons)")                      \
  X(no_mbuf, "buffer pool empty")                                                     \
  X(tx_full, "transmit queue full")                                                   \
  X(handoff_ring_full, "another worker owns the packet and its handoff ring is full")  \
  X(foreign_mac, "frame for another MAC address, or broadcast/multicast that is not ARP") \
  X(broadcast_destination, "IPv4 to a broadcast or multicast address: never translated") \
  X(martian_source, "source in 0/8, 127/8, 224/4, 240/4 or broadcast (RFC 1812 5.3.7)") \
  X(own_address_source, "from outside with the gateway's own or a pool address as source") \
  X(arp_off_subnet, "ARP request from a sender outside the port's subnet")

#define PASSGATE_ENUM_ENTRY(name, text) name,
enum class PortDrop : std::uint8_t { PASSGATE_PORT_DROPS(PASSGATE_ENUM_ENTRY) count_ };
#undef PASSGATE_ENUM_ENTRY
inline constexpr unsigned port_drop_count = static_cast<unsigned>(PortDrop::count_);

const char* port_drop_name(PortDrop d);
const char* port_drop_help(PortDrop d);

struct alignas(64) PortCounters {
  std::uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
  std::uint64_t arp_requests_answered = 0, arp_requests_sent = 0, arp_replies_learned = 0;
  std::uint64_t icmp_echo_answered = 0;
  // ICMP errors the gateway sent from this port (RFC 1812 4.3.2), and those
  // the rate limit (dataplane.icmp_errors) held back.
  std::uint64_t icmp_time_exceeded_sent = 0, icmp_frag_needed_sent = 0, icmp_errors_rate_limited = 0;
  // Packets fragmented to fit this port's MTU, and the fragments sent.
  std::uint64_t packets_fragmented = 0, fragments_sent = 0;
  // ARP requests for us whose sender was not cached: the unsolicited share
  // of the neighbour table was full (dataplane.neighbour.unsolicited_percent).
  std::uint64_t arp_unsolicited_not_learned = 0;
  // Packets received here that another worker owns, and packets this worker
  // got from others (lib/steering/dispatch.hpp): zero when RSS steers all.
  std::uint64_t handoff_out = 0, handoff_in = 0;
  std::array<std::uint64_t, port_drop_count> drop{};

  void add(PortDrop d, std::uint64_t n = 1) { drop[static_cast<unsigned>(d)] += n; }
  [[nodiscard]] std::uint64_t get(PortDrop d) const { return drop[static_cast<unsigned>(d)]; }
  PortCounters& operator+=(const PortCounters& o) {
    rx_packets += o.rx_packets;
    rx_bytes += o.rx_bytes;
    tx_packets += o.tx_packets;
    tx_bytes += o.tx_bytes;
    arp_requests_answered += o.arp_requests_answered;
    arp_requests_sent += o.arp_requests_sent;
    arp_replies_learned += o.arp_replies_learned;
    icmp_echo_answered += o.icmp_echo_answered;
    icmp_time_exceeded_sent += o.icmp_time_exceeded_sent;
    icmp_frag_needed_sent += o.icmp_frag_needed_sent;
    icmp_errors_rate_limited += o.icmp_errors_rate_limited;
    packets_fragmented += o.packets_fragmented;
    fragments_sent += o.fragments_sent;
    arp_unsolicited_not_learned += o.arp_unsolicited_not_learned;
    handoff_out += o.handoff_out;
    handoff_in += o.handoff_in;
    for (unsigned i = 0; i < drop.size(); ++i) drop[i] += o.drop[i];
    return *this;
  }
};

}  // namespace passgate::stats
