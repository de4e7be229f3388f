// Address values shared by configuration, the NAT engine and the dataplane:
// an IPv4 prefix, an inclusive address range, an endpoint, a MAC address,
// and the address blocks that never name one unicast host. Their text forms
// are in packet/address_text.hpp.
#pragma once

#include <array>
#include <cstdint>

#include "packet/byte_order.hpp"

namespace passgate::packet {

struct Ipv4Prefix {
  be32 address;
  std::uint8_t length = 32;
  [[nodiscard]] std::uint32_t mask() const { return length == 0 ? 0 : ~std::uint32_t{0} << (32 - length); }
  [[nodiscard]] bool contains(be32 a) const { return ((a.host() ^ address.host()) & mask()) == 0; }
  [[nodiscard]] std::uint32_t network() const { return address.host() & mask(); }  // host order
  [[nodiscard]] std::uint32_t broadcast() const { return network() | ~mask(); }    // host order
  friend bool operator==(const Ipv4Prefix&, const Ipv4Prefix&) = default;
};

struct AddressRange {  // inclusive
  be32 first, last;
  [[nodiscard]] std::uint32_t size() const { return last.host() - first.host() + 1; }
  friend bool operator==(const AddressRange&, const AddressRange&) = default;
};

struct Ipv4Endpoint {
  be32 address;
  std::uint16_t port = 0;  // host order
  friend bool operator==(const Ipv4Endpoint&, const Ipv4Endpoint&) = default;
};

struct MacAddress {
  std::array<std::uint8_t, 6> bytes{};
  friend bool operator==(const MacAddress&, const MacAddress&) = default;
};

// Blocks that never hold a unicast host address (RFC 1812 5.3.7): a router
// drops packets from them, and configuration refuses them where a host is
// meant. `what` is how configuration errors name them.
struct ReservedBlock {
  std::uint32_t first, last;  // host order, inclusive
  const char* what;
};
inline constexpr ReservedBlock reserved_blocks[] = {
    {0x00000000u, 0x00ffffffu, "0.0.0.0/8 ('this network', RFC 1122)"},
    {0x7f000000u, 0x7fffffffu, "127.0.0.0/8 (loopback, RFC 1122)"},
    {0xe0000000u, 0xefffffffu, "224.0.0.0/4 (multicast, RFC 5771)"},
    {0xf0000000u, 0xffffffffu, "240.0.0.0/4 (reserved, RFC 1112, and the broadcast address)"},
};

// The first reserved block that [first, last] (host order) touches, or nullptr.
constexpr const ReservedBlock* reserved_in(std::uint32_t first, std::uint32_t last) {
  for (const ReservedBlock& r : reserved_blocks)
    if (first <= r.last && r.first <= last) return &r;
  return nullptr;
}

// The packet path's form of the same test, by first octet (two compares
// instead of a walk over the table). address_text_test checks every octet
// against the table (a static_assert did, but with -fsanitize=undefined GCC
// no longer evaluates the table walk as a constant expression).
constexpr bool is_reserved_address(be32 a) {
  const unsigned first = a.host() >> 24;
  return first == 0 || first == 127 || first >= 224;
}

}  // namespace passgate::packet
