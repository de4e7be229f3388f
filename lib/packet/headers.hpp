// Wire layouts of the headers passgate reads and rewrites. Packed, so they may
// sit at any alignment inside a frame (the IPv4 header follows a 14-byte
// Ethernet header). Sizes are fixed by the RFCs and checked at compile time.
#pragma once

#include <cstdint>

#include "packet/byte_order.hpp"

namespace passgate::packet {

namespace ip_proto {
inline constexpr std::uint8_t icmp = 1;
inline constexpr std::uint8_t tcp = 6;
inline constexpr std::uint8_t udp = 17;
inline constexpr std::uint8_t gre = 47;
inline constexpr std::uint8_t esp = 50;
}  // namespace ip_proto

// RFC 791.
struct [[gnu::packed]] Ipv4Header {
  std::uint8_t version_ihl;
  std::uint8_t tos;
  be16 total_length;
  be16 identification;
  be16 flags_fragment;  // 3 flag bits, 13-bit offset in 8-byte units
  std::uint8_t ttl;
  std::uint8_t protocol;
  be16 checksum;
  be32 src;
  be32 dst;

  [[nodiscard]] unsigned version() const { return version_ihl >> 4; }
  [[nodiscard]] unsigned header_bytes() const { return (version_ihl & 0x0fu) * 4u; }
  [[nodiscard]] bool more_fragments() const { return (flags_fragment.host() & 0x2000u) != 0; }
  [[nodiscard]] unsigned fragment_offset_bytes() const { return (flags_fragment.host() & 0x1fffu) * 8u; }
  [[nodiscard]] bool is_fragment() const { return (flags_fragment.host() & 0x3fffu) != 0; }
};
static_assert(sizeof(Ipv4Header) == 20);

// RFC 768.
struct [[gnu::packed]] UdpHeader {
  be16 src_port;
  be16 dst_port;
  be16 length;
  be16 checksum;  // 0 = no checksum (IPv4 only)
};
static_assert(sizeof(UdpHeader) == 8);

// RFC 9293.
struct [[gnu::packed]] TcpHeader {
  be16 src_port;
  be16 dst_port;
  be32 seq;
  be32 ack;
  std::uint8_t data_offset;  // upper 4 bits, in 32-bit words
  std::uint8_t flags;
  be16 window;
  be16 checksum;
  be16 urgent;

  [[nodiscard]] unsigned header_bytes() const { return (data_offset >> 4) * 4u; }
};
static_assert(sizeof(TcpHeader) == 20);

namespace tcp_flag {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t ack = 0x10;
}  // namespace tcp_flag

// RFC 792: the first 8 bytes of every ICMP message. For queries (echo,
// timestamp) rest_hi is the identifier and rest_lo the sequence number.
struct [[gnu::packed]] IcmpHeader {
  std::uint8_t type;
  std::uint8_t code;
  be16 checksum;
  be16 rest_hi;
  be16 rest_lo;
};
static_assert(sizeof(IcmpHeader) == 8);

namespace icmp_type {
inline constexpr std::uint8_t echo_reply = 0;
inline constexpr std::uint8_t dest_unreachable = 3;
inline constexpr std::uint8_t source_quench = 4;
inline constexpr std::uint8_t redirect = 5;
inline constexpr std::uint8_t echo_request = 8;
inline constexpr std::uint8_t time_exceeded = 11;
inline constexpr std::uint8_t parameter_problem = 12;
inline constexpr std::uint8_t timestamp = 13;
inline constexpr std::uint8_t timestamp_reply = 14;
}  // namespace icmp_type

// RFC 4303.
struct [[gnu::packed]] EspHeader {
  be32 spi;
  be32 sequence;
};
static_assert(sizeof(EspHeader) == 8);

// RFC 2784 / RFC 2890 (version 0) and RFC 2637 enhanced GRE (version 1). The
// optional fields that follow depend on the flag bits and are parsed by offset.
struct [[gnu::packed]] GreHeader {
  std::uint8_t flags;     // C R K S s Recur
  std::uint8_t flags_ver; // A flags version(3)
  be16 protocol;

  [[nodiscard]] bool checksum_present() const { return (flags & 0x80u) != 0; }
  [[nodiscard]] bool routing_present() const { return (flags & 0x40u) != 0; }
  [[nodiscard]] bool key_present() const { return (flags & 0x20u) != 0; }
  [[nodiscard]] bool sequence_present() const { return (flags & 0x10u) != 0; }
  [[nodiscard]] bool ack_present() const { return (flags_ver & 0x80u) != 0; }
  [[nodiscard]] unsigned version() const { return flags_ver & 0x07u; }
};
static_assert(sizeof(GreHeader) == 4);

inline constexpr std::uint16_t gre_protocol_ppp = 0x880b;

}  // namespace passgate::packet
