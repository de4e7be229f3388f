// Builds IPv4 packets as bytes for tests, fuzz seeds and benchmarks, and
// checks every checksum of a packet by full recomputation (RFC 1071), so that
// the engine's incremental updates are verified independently.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "packet/byte_order.hpp"

namespace passgate::testing {

using packet::be16;
using packet::be32;
using packet::ipv4;

using Bytes = std::vector<std::uint8_t>;

struct IpFields {
  be32 src{}, dst{};
  std::uint8_t ttl = 64;
  std::uint16_t id = 0x1234;
  bool more_fragments = false;
  std::uint16_t fragment_offset_bytes = 0;
  Bytes options;  // multiple of 4 bytes
};

// Each returns the whole IPv4 packet with correct checksums.
Bytes udp_packet(IpFields ip, std::uint16_t sport, std::uint16_t dport, const Bytes& payload = Bytes(16, 0xab),
                 bool zero_udp_checksum = false);
Bytes tcp_packet(IpFields ip, std::uint16_t sport, std::uint16_t dport, std::uint8_t flags,
                 const Bytes& payload = Bytes(8, 0xcd), std::uint32_t seq = 1000, std::uint32_t ack = 0);
Bytes icmp_echo(IpFields ip, std::uint8_t type, std::uint16_t id, std::uint16_t seq, const Bytes& payload = Bytes(32, 0x5a));
// An ICMP error (type/code) quoting `quoted` (an IPv4 packet); `quote_bytes`
// limits how much of it is quoted (0 = all).
Bytes icmp_error(IpFields ip, std::uint8_t type, std::uint8_t code, const Bytes& quoted, std::size_t quote_bytes = 0);
Bytes esp_packet(IpFields ip, std::uint32_t spi, std::uint32_t seq);
Bytes gre_packet(IpFields ip, std::uint8_t version, bool key, std::uint32_t key_value, bool seq = false);
// One PPTP control message (RFC 2637 section 2), the payload of a TCP
// segment to or from port 1723: `length` bytes, 16-bit fields at their offsets.
Bytes pptp_message(std::uint16_t type, std::uint16_t length, const std::vector<std::pair<unsigned, std::uint16_t>>& fields);

// Splits an IPv4 packet into fragments whose payload is at most `chunk`
// bytes (a multiple of 8), each with a correct header checksum.
std::vector<Bytes> fragment(const Bytes& packet, std::size_t chunk);

// Empty when every checksum is right (IPv4 header; TCP, UDP unless zero, ICMP
// when the packet is not fragmented; for ICMP errors also the embedded IPv4
// header and, where quoted in full, the embedded transport checksum).
std::string checksum_problems(const Bytes& packet);

// Field access on built packets.
be32 ip_src(const Bytes& p);
be32 ip_dst(const Bytes& p);
std::uint16_t l4_sport(const Bytes& p);  // ICMP query: identifier
std::uint16_t l4_dport(const Bytes& p);
unsigned ihl(const Bytes& p);

}  // namespace passgate::testing
