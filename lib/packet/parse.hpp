// Bounds-checked parsing of an IPv4 packet into a flat summary (ParsedIpv4).
//
// Theory of operation: parse_ipv4() is given the bytes from the IPv4 header to
// the end of the received buffer. It checks every length before it reads, in
// this order: IPv4 header (version, IHL, total length against the buffer,
// header checksum: RFC 1812 section 5.2.2), the addresses a router never
// forwards (RFC 1812 section 5.3.7), the option list (RFC 791), then the
// transport header that the first fragment must carry in full with lengths
// consistent with the IP payload (UDP length, TCP data offset), then for ICMP
// errors the embedded IPv4 header and the first 8 bytes of its transport
// header (RFC 792, RFC 5508), and last, for a fragment, its length and offset
// (RFC 791, RFC 1858). Anything malformed is rejected with a ParseError naming
// why, and the engine drops it (DropReason::malformed) without translating
// or forwarding it; nothing past min(buffer, total length) is ever read.
// Ethernet padding after the IPv4 datagram is allowed and ignored.
#pragma once

#include <cstdint>
#include <span>

#include "packet/checksum.hpp"
#include "packet/headers.hpp"

namespace passgate::packet {

// X-macro so names, counters and the enum never drift apart.
#define PASSGATE_PARSE_ERRORS(X)                                                  \
  X(empty, "empty packet")                                                        \
  X(not_ipv4, "IP version is not 4")                                              \
  X(truncated_ip_header, "buffer shorter than the IPv4 header")                   \
  X(bad_ihl, "IHL below 5 or beyond the buffer")                                  \
  X(bad_total_length, "total length below the header or beyond the buffer")     \
  X(bad_ip_checksum, "IPv4 header checksum does not verify")                     \
  X(martian_source, "source a router never forwards: 0/8, 127/8, 224/4 multicast, 240/4 and broadcast (RFC 1812 5.3.7)") \
  X(martian_destination, "destination 0/8 or 127/8, never forwarded (RFC 1812 5.3.7)")                \
  X(bad_ip_options, "IPv4 option malformed: length below 2, past the header, or pointer below its minimum (RFC 791)") \
  X(source_route, "loose or strict source route option, dropped by default (RFC 7126 4.3, 4.4)")   \
  X(bad_fragment_length, "fragment without data, or with MF set and data not a multiple of 8 bytes (RFC 791)") \
  X(oversized_fragment, "fragment offset plus length beyond the 65535-byte datagram (ping of death)") \
  X(tcp_fragment_overlap, "TCP fragment at offset 8 that would rewrite the header on reassembly (RFC 1858 3.2)") \
  X(tiny_fragment, "first fragment does not hold the whole transport header")    \
  X(truncated_l4, "transport header truncated")                                   \
  X(bad_udp_length, "UDP length below 8 or beyond the IP payload (RFC 768)")     \
  X(bad_tcp_offset, "TCP data offset below 5 or beyond the packet")               \
  X(bad_icmp_checksum, "ICMP checksum does not verify")                           \
  X(truncated_icmp_inner, "ICMP error too short for the embedded header")        \
  X(bad_icmp_inner, "ICMP error embeds a malformed or non-translatable packet")  \
  X(bad_gre, "GRE header malformed or truncated")

enum class ParseError : std::uint8_t {
  ok = 0,
#define PASSGATE_X(name, text) name,
  PASSGATE_PARSE_ERRORS(PASSGATE_X)
#undef PASSGATE_X
      count_
};
inline constexpr unsigned parse_error_count = static_cast<unsigned>(ParseError::count_);

const char* parse_error_name(ParseError e);
const char* parse_error_text(ParseError e);

enum class L4Kind : std::uint8_t {
  tcp,
  udp,
  icmp_query,     // echo / timestamp: identifier-based
  icmp_error,     // carries an embedded packet
  icmp_other,     // router advertisement and the like: not translatable
  esp,
  gre,
  other,          // protocol passgate does not translate
  later_fragment  // non-first fragment: no transport header
};

// The embedded packet of an ICMP error: the header of a packet that we (or
// the peer) sent, as quoted back. Offsets are from the outer IPv4 header.
struct IcmpInner {
  std::uint16_t ip_offset;     // embedded IPv4 header
  std::uint8_t ihl_bytes;
  std::uint8_t proto;
  std::uint16_t l4_offset;     // embedded transport header
  std::uint16_t l4_available;  // bytes of it present (>= 8)
  be32 src, dst;
  be16 src_port, dst_port;     // ICMP query: identifier in both
  L4Kind kind;                 // tcp, udp or icmp_query
};

struct ParsedIpv4 {
  std::uint16_t total_length;
  std::uint8_t ihl_bytes;
  std::uint8_t proto;
  be32 src, dst;
  be16 ip_id;
  bool fragmented;        // MF set or offset != 0
  bool first_fragment;    // offset == 0 (also true for unfragmented packets)
  L4Kind kind;
  // Transport summary (valid unless kind == later_fragment/other):
  be16 src_port, dst_port;  // ICMP query: identifier in both
  std::uint8_t tcp_flags;
  std::uint8_t icmp_type, icmp_code;
  be32 esp_spi;
  // GRE: version and, where present, the offset of the 32-bit key field.
  std::uint8_t gre_version;
  std::uint16_t gre_key_offset;  // 0 = no key
  IcmpInner inner;               // valid when kind == icmp_error
};

struct ParseOptions {
  bool verify_ip_checksum = true;   // off when the NIC already verified it
  bool verify_icmp_checksum = true; // RFC 5508: checksums validated
};

ParseError parse_ipv4(std::span<const std::uint8_t> bytes, ParsedIpv4& out, ParseOptions options = {});

inline bool is_icmp_error_type(std::uint8_t type) {
  return type == icmp_type::dest_unreachable || type == icmp_type::source_quench || type == icmp_type::redirect ||
         type == icmp_type::time_exceeded || type == icmp_type::parameter_problem;
}
inline bool is_icmp_query_type(std::uint8_t type) {
  return type == icmp_type::echo_request || type == icmp_type::echo_reply || type == icmp_type::timestamp ||
         type == icmp_type::timestamp_reply;
}
inline bool is_icmp_query_request(std::uint8_t type) {
  return type == icmp_type::echo_request || type == icmp_type::timestamp;
}

}  // namespace passgate::packet
