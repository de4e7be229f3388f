// What a router writes itself (RFC 1812): ICMP errors about a packet it
// cannot forward, and fragments of a packet too large for the next link.
// Pure byte work, no DPDK: the dataplane gives buffers, these fill them.
//
// ICMP errors (RFC 792, RFC 1812 4.3.2): Time Exceeded when the TTL runs out
// (5.3.1), Destination Unreachable / Fragmentation Needed with the next-hop
// MTU (RFC 1191 section 4) for a Don't Fragment packet larger than the
// egress MTU. The error quotes the offending packet's IP header and as much
// of its data as keeps the error within 576 bytes (RFC 1812 4.3.2.3). Never
// about an ICMP error, a fragment other than the first, a packet to a
// broadcast or multicast address, or from an address that names no single
// host (RFC 1812 4.3.2.7): may_send_icmp_error() says so.
//
// Fragmentation (RFC 791 section 3.2, RFC 1812 5.2.6): every fragment but
// the last carries a multiple of 8 data bytes; the first keeps every option,
// the others only those whose copied flag is set; a packet that already is
// a fragment is split again with its offsets and last More Fragments flag
// kept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "packet/byte_order.hpp"

namespace passgate::packet {

// The largest ICMP error a router sends (RFC 1812 4.3.2.3).
inline constexpr std::size_t icmp_error_max_bytes = 576;

// Sources that name no single host (RFC 1812 5.3.7): 0.0.0.0/8, 127.0.0.0/8,
// 224.0.0.0/4 (multicast), 240.0.0.0/4 and the limited broadcast.
[[nodiscard]] bool is_martian_source(be32 a);
// Destinations a router never translates nor answers per host: multicast,
// 240.0.0.0/4 and the limited broadcast (a subnet's own broadcast address
// is the caller's to check: it knows the subnet).
[[nodiscard]] bool is_broadcast_or_multicast(be32 a);

// Whether RFC 1812 4.3.2.7 allows an ICMP error about `packet` (a whole IPv4
// packet or its first bytes, header already validated by the caller).
[[nodiscard]] bool may_send_icmp_error(std::span<const std::uint8_t> packet);

// Writes an IPv4 packet from `source` to the offending packet's source
// carrying ICMP `type`/`code` (rest word: the next-hop MTU for
// Fragmentation Needed, zero otherwise) and quoting `offending` (up to
// icmp_error_max_bytes in all). Returns its length, 0 when `out` is smaller
// than 28 bytes plus the offending IP header.
std::size_t write_icmp_error(std::span<const std::uint8_t> offending, be32 source, std::uint8_t type,
                             std::uint8_t code, std::uint16_t next_hop_mtu, std::uint16_t ip_id,
                             std::span<std::uint8_t> out);

namespace icmp_code {
inline constexpr std::uint8_t ttl_exceeded_in_transit = 0;     // type 11
inline constexpr std::uint8_t fragmentation_needed = 4;        // type 3
}  // namespace icmp_code

// How `packet` splits to fit `mtu`: fragment count and the data bytes each
// non-last fragment carries. count == 0: it cannot be split (Don't Fragment
// set, or the MTU leaves fewer than 8 data bytes beside the header).
struct FragmentPlan {
  unsigned count = 0;
  std::size_t first_header = 0, later_header = 0;  // with options
  std::size_t first_data = 0, later_data = 0;      // per non-last fragment, multiples of 8
};
[[nodiscard]] FragmentPlan plan_fragments(std::span<const std::uint8_t> packet, std::uint16_t mtu);

// Writes fragment `index` of `plan` into `out` (at least mtu bytes) and
// returns its length; header checksum computed.
std::size_t write_fragment(std::span<const std::uint8_t> packet, const FragmentPlan& plan, unsigned index,
                           std::span<std::uint8_t> out);

}  // namespace passgate::packet
