// Network byte order as types: a be16/be32 holds wire bytes and never mixes
// with a host integer by accident. Conversions are explicit (host()/from_host).
#pragma once

#include <bit>
#include <cstdint>

namespace passgate::packet {

constexpr std::uint16_t byteswap16(std::uint16_t v) { return static_cast<std::uint16_t>((v << 8) | (v >> 8)); }
constexpr std::uint32_t byteswap32(std::uint32_t v) {
  return (v << 24) | ((v << 8) & 0x00ff0000u) | ((v >> 8) & 0x0000ff00u) | (v >> 24);
}

static_assert(std::endian::native == std::endian::little, "passgate targets little-endian hosts (x86-64)");

struct be16 {
  std::uint16_t raw;  // exactly the two bytes on the wire
  static constexpr be16 from_host(std::uint16_t v) { return be16{byteswap16(v)}; }
  [[nodiscard]] constexpr std::uint16_t host() const { return byteswap16(raw); }
  friend constexpr bool operator==(be16, be16) = default;
};

struct be32 {
  std::uint32_t raw;
  static constexpr be32 from_host(std::uint32_t v) { return be32{byteswap32(v)}; }
  [[nodiscard]] constexpr std::uint32_t host() const { return byteswap32(raw); }
  friend constexpr bool operator==(be32, be32) = default;
};

static_assert(sizeof(be16) == 2 && sizeof(be32) == 4);

// Dotted-quad literal for tests and configuration: ipv4(192, 0, 2, 1).
constexpr be32 ipv4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return be32::from_host((std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d);
}

}  // namespace passgate::packet
