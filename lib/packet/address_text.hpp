// The one reader of addresses written as text, for the whole project:
// configuration files, operator commands and collector endpoints all accept
// exactly the same spellings.
//
// Strict on purpose. Decimal digits only (no sign, no 0x, no spaces), and an
// IPv4 octet with a leading zero is refused: inet_aton() and sscanf-style
// readers would take "010" as octal 8 or as decimal 10, so the same text
// would name different hosts to different tools. Nothing here allocates
// except to_string, and nothing throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "packet/address.hpp"
#include "packet/byte_order.hpp"

namespace passgate::packet {

namespace text {

[[nodiscard]] constexpr bool is_hex_digit(char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

// Decimal digits only, at most a 64-bit value.
[[nodiscard]] std::optional<std::uint64_t> parse_uint(std::string_view s);
// Dotted quad, each octet 0-255 without a leading zero.
[[nodiscard]] std::optional<be32> parse_ipv4(std::string_view s);
// "a.b.c.d/len", len 0-32; host bits are the caller's to check.
[[nodiscard]] std::optional<Ipv4Prefix> parse_prefix(std::string_view s);
// "02:00:00:00:00:0a": six pairs of hex digits (either case) split by ':'.
[[nodiscard]] std::optional<MacAddress> parse_mac(std::string_view s);
// 1 to 65535; port 0 names no service.
[[nodiscard]] std::optional<std::uint16_t> parse_port(std::string_view s);
// "a.b.c.d:port" (IPv4 only: no names, no brackets).
[[nodiscard]] std::optional<Ipv4Endpoint> parse_endpoint(std::string_view s);

}  // namespace text

std::string to_string(be32 address);             // 192.0.2.1
std::string to_string(const Ipv4Prefix& p);      // its network: 192.0.2.0/24 for 192.0.2.1/24
std::string to_string(const AddressRange& r);    // 192.0.2.1-192.0.2.9, or one address
std::string to_string(const Ipv4Endpoint& e);    // 192.0.2.1:4739
std::string to_string(const MacAddress& mac);    // 02:00:00:00:00:0a

}  // namespace passgate::packet
