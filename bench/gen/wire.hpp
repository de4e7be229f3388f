// Byte order, IPv4 text and Internet checksums for passgate-gen. The
// generator keeps its own implementation on purpose: checking the DUT's
// checksums with the DUT's code would prove nothing.
#pragma once

#include <arpa/inet.h>

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace pgen {

// Host-order IPv4 addresses throughout; converted when written to a header.
inline std::optional<std::uint32_t> parse_ipv4(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}
inline std::string ipv4_text(std::uint32_t host_order) {
  return fmt::format("{}.{}.{}.{}", host_order >> 24, (host_order >> 16) & 0xff, (host_order >> 8) & 0xff,
                     host_order & 0xff);
}

inline void store_be16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
inline void store_be32(std::uint8_t* p, std::uint32_t v) {
  store_be16(p, static_cast<std::uint16_t>(v >> 16));
  store_be16(p + 2, static_cast<std::uint16_t>(v));
}
inline std::uint16_t load_be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
inline std::uint32_t load_be32(const std::uint8_t* p) {
  return (std::uint32_t{load_be16(p)} << 16) | load_be16(p + 2);
}

// RFC 1071 one's complement sum over big-endian 16-bit words.
inline std::uint32_t ones_sum(const std::uint8_t* p, std::size_t len, std::uint32_t sum = 0) {
  for (; len >= 2; p += 2, len -= 2) sum += load_be16(p);
  if (len) sum += static_cast<std::uint32_t>(p[0] << 8);
  return sum;
}
inline std::uint16_t fold_complement(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}
inline std::uint32_t pseudo_header_sum(std::uint32_t src, std::uint32_t dst, std::uint8_t proto,
                                       std::uint16_t length) {
  return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + length;
}
// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for every changed 16-bit word.
inline void checksum_replace(std::uint8_t* checksum_field, const std::uint8_t* old_bytes,
                             const std::uint8_t* new_bytes, std::size_t len, bool udp) {
  std::uint32_t sum = static_cast<std::uint16_t>(~load_be16(checksum_field));
  for (std::size_t i = 0; i + 1 < len; i += 2) {
    sum += static_cast<std::uint16_t>(~load_be16(old_bytes + i));
    sum += load_be16(new_bytes + i);
  }
  std::uint16_t result = fold_complement(sum);
  if (udp && result == 0) result = 0xffff;  // RFC 768: 0 means "no checksum"
  store_be16(checksum_field, result);
}

}  // namespace pgen
