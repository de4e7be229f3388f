// Counters of one port as seen by one worker: traffic in and out, and every
// reason a frame is dropped before or after the NAT engine. Plain integers
// written by the owning worker only; the control core sums the workers.
#pragma once

#include <array>
#include <cstdint>

#include "stats/load_relaxed.hpp"

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
  X(arp_off_subnet, "ARP request from a sender outside the port's subnet") \
  X(exception_rate_limited, "for the kernel interface, over ports[].exception rate") \
  X(exception_not_allowed, "for the kernel interface, from a source outside ports[].exception.allow") \
  X(exception_kernel_full, "the kernel interface did not take it") \
  X(exception_rejected, "from the kernel interface: not ARP or IPv4 from the port's own address and MAC") \
  X(fragment_unmatched, "several workers: a later fragment from outside whose first fragment did not come within nat.timeouts.fragment_ms") \
  X(fragment_wait_full, "several workers: a later fragment from outside overtook its first and the worker's waiting room was full")

#define PASSGATE_ENUM_ENTRY(name, text) name,
enum class PortDrop : std::uint8_t { PASSGATE_PORT_DROPS(PASSGATE_ENUM_ENTRY) count_ };
#undef PASSGATE_ENUM_ENTRY
inline constexpr unsigned port_drop_count = static_cast<unsigned>(PortDrop::count_);

const char* port_drop_name(PortDrop d);
const char* port_drop_help(PortDrop d);

// Every per-port counter but the drops and handoffs, in export order:
// X(field, metric, help). The field is also the telemetry key; Prometheus
// exports passgate_port_<metric>_total. The stop report (Gateway::print)
// keeps its own sentence per port, which the end-to-end scripts parse.
#define PASSGATE_PORT_COUNTERS(X)                                                                               \
  X(rx_packets, receive_packets, "Frames received on the port.")                                               \
  X(rx_bytes, receive_bytes, "Bytes received on the port.")                                                    \
  X(tx_packets, transmit_packets, "Frames sent on the port.")                                                  \
  X(tx_bytes, transmit_bytes, "Bytes sent on the port.")                                                       \
  X(arp_requests_answered, arp_requests_answered, "ARP requests for our addresses answered.")                  \
  X(arp_requests_sent, arp_requests_sent, "ARP requests sent to resolve next hops.")                           \
  X(arp_replies_learned, arp_replies_learned, "ARP replies learned into the neighbour cache.")                 \
  X(icmp_echo_answered, icmp_echo_answered, "ICMP echo requests to the gateway's own address answered.")       \
  X(icmp_time_exceeded_sent, icmp_time_exceeded_sent, "ICMP Time Exceeded sent from the port (RFC 1812 5.3.1).") \
  X(icmp_frag_needed_sent, icmp_frag_needed_sent,                                                              \
    "ICMP Fragmentation Needed sent from the port (RFC 1191), for Don't Fragment packets too large.")          \
  X(icmp_errors_rate_limited, icmp_errors_rate_limited,                                                        \
    "ICMP errors not sent: the per-worker rate limit (dataplane.icmp_errors) held them back.")                 \
  X(packets_fragmented, packets_fragmented, "Packets fragmented to fit the port's MTU (RFC 1812 5.2.6).")      \
  X(fragments_sent, fragments_sent, "Fragments sent on the port after fragmenting.")                           \
  X(arp_unsolicited_not_learned, arp_unsolicited_not_learned,                                                  \
    "ARP requests for us whose sender was not cached: the unsolicited share of the neighbour table was full.")  \
  X(exception_to_kernel, exception_to_kernel,                                                                   \
    "Packets for the port's own address, and ARP replies, handed to its kernel interface (ports[].exception).") \
  X(exception_from_kernel, exception_from_kernel, "Frames from the port's kernel interface sent on the port.") \
  X(fragment_owners_evicted, fragment_owners_evicted,                                                           \
    "Several workers: a fragmented datagram's owner forgotten before it expired, its table full (steering/fragment_owners.hpp).")

struct alignas(64) PortCounters {
#define PASSGATE_PORT_FIELD(field, metric, help) std::uint64_t field = 0;
  PASSGATE_PORT_COUNTERS(PASSGATE_PORT_FIELD)
#undef PASSGATE_PORT_FIELD
  // Packets received here that another worker owns, and packets this worker
  // got from others (lib/steering/dispatch.hpp): zero when RSS steers all.
  // Exported per direction, not as two counters of their own.
  std::uint64_t handoff_out = 0, handoff_in = 0;
  std::array<std::uint64_t, port_drop_count> drop{};

  void add(PortDrop d, std::uint64_t n = 1) { drop[static_cast<unsigned>(d)] += n; }
  [[nodiscard]] std::uint64_t get(PortDrop d) const { return drop[static_cast<unsigned>(d)]; }
  PortCounters& operator+=(const PortCounters& o) {
    return accumulate(o, [](const std::uint64_t& v) { return v; });
  }
  // The same, from the counters of a running worker.
  PortCounters& add_live(const PortCounters& o) { return accumulate(o, load_relaxed); }

 private:
  template <class Load>
  PortCounters& accumulate(const PortCounters& o, Load load) {
#define PASSGATE_PORT_SUM(field, metric, help) field += load(o.field);
    PASSGATE_PORT_COUNTERS(PASSGATE_PORT_SUM)
#undef PASSGATE_PORT_SUM
    handoff_out += load(o.handoff_out);
    handoff_in += load(o.handoff_in);
    for (unsigned i = 0; i < drop.size(); ++i) drop[i] += load(o.drop[i]);
    return *this;
  }
};

// The counters of PASSGATE_PORT_COUNTERS as a table, for exporters.
struct PortCounterInfo {
  const char* name;    // the field
  const char* metric;  // Prometheus: passgate_port_<metric>_total
  const char* help;
  std::uint64_t PortCounters::*field;
};
inline constexpr PortCounterInfo port_counters_info[] = {
#define PASSGATE_PORT_INFO(field, metric, help) {#field, #metric, help, &PortCounters::field},
    PASSGATE_PORT_COUNTERS(PASSGATE_PORT_INFO)
#undef PASSGATE_PORT_INFO
};

}  // namespace passgate::stats
