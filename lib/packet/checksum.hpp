// Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//
// Everything works on raw 16-bit words as they sit in memory: the one's
// complement sum is byte-order independent, so a delta computed from wire
// words can be applied to a wire checksum without swapping.
//
// A translation precomputes a ChecksumDelta (the sum of ~old + new for every
// changed word) once per session and applies it to each packet with one add:
// HC' = ~(~HC + delta)   (RFC 1624 eqn. 3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "packet/byte_order.hpp"

namespace passgate::packet {

constexpr std::uint16_t fold(std::uint64_t sum) {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

// One's complement sum of bytes, as raw (memory-order) 16-bit words. An odd
// trailing byte is padded with zero, as the checksum definition requires.
inline std::uint64_t ones_sum(std::span<const std::uint8_t> bytes, std::uint64_t sum = 0) {
  std::size_t i = 0;
  for (; i + 4 <= bytes.size(); i += 4) {
    std::uint32_t w;
    std::memcpy(&w, bytes.data() + i, 4);
    sum += w;
  }
  for (; i + 2 <= bytes.size(); i += 2) {
    std::uint16_t w;
    std::memcpy(&w, bytes.data() + i, 2);
    sum += w;
  }
  if (i < bytes.size()) {
    std::uint8_t pad[2] = {bytes[i], 0};
    std::uint16_t w;
    std::memcpy(&w, pad, 2);
    sum += w;
  }
  return sum;
}

// The checksum field value for `bytes` (with the field itself zeroed or
// included; a correct packet sums to 0xffff, so this returns 0).
inline be16 internet_checksum(std::span<const std::uint8_t> bytes, std::uint64_t initial = 0) {
  return be16{static_cast<std::uint16_t>(~fold(ones_sum(bytes, initial)))};
}

// Pseudo-header sum for TCP/UDP (RFC 768, RFC 9293).
inline std::uint64_t pseudo_header_sum(be32 src, be32 dst, std::uint8_t proto, std::uint16_t l4_length) {
  std::uint64_t sum = 0;
  sum += src.raw & 0xffffu;
  sum += src.raw >> 16;
  sum += dst.raw & 0xffffu;
  sum += dst.raw >> 16;
  sum += be16::from_host(proto).raw;
  sum += be16::from_host(l4_length).raw;
  return sum;
}

// An accumulated one's complement difference: add(old, new) for each field a
// rewrite changes; apply() then patches any checksum covering those fields.
class ChecksumDelta {
 public:
  constexpr ChecksumDelta() = default;
  constexpr explicit ChecksumDelta(std::uint16_t folded) : sum_(folded) {}

  constexpr ChecksumDelta& add(be16 from, be16 to) {
    sum_ = fold(std::uint64_t{sum_} + static_cast<std::uint16_t>(~from.raw) + to.raw);
    return *this;
  }
  constexpr ChecksumDelta& add(be32 from, be32 to) {
    add(be16{static_cast<std::uint16_t>(from.raw & 0xffffu)}, be16{static_cast<std::uint16_t>(to.raw & 0xffffu)});
    add(be16{static_cast<std::uint16_t>(from.raw >> 16)}, be16{static_cast<std::uint16_t>(to.raw >> 16)});
    return *this;
  }
  constexpr ChecksumDelta& add(ChecksumDelta other) {
    sum_ = fold(std::uint64_t{sum_} + other.sum_);
    return *this;
  }
  // The delta that undoes this one (one's complement negation).
  [[nodiscard]] constexpr ChecksumDelta inverse() const { return ChecksumDelta{static_cast<std::uint16_t>(~sum_)}; }
  [[nodiscard]] constexpr std::uint16_t folded() const { return sum_; }

  // RFC 1624 eqn. 3.
  [[nodiscard]] constexpr be16 apply(be16 checksum) const {
    return be16{static_cast<std::uint16_t>(~fold(std::uint64_t{static_cast<std::uint16_t>(~checksum.raw)} + sum_))};
  }
  // UDP: a zero checksum means "none" and stays zero; a computed zero is sent
  // as 0xffff (RFC 768).
  [[nodiscard]] constexpr be16 apply_udp(be16 checksum) const {
    if (checksum.raw == 0) return checksum;
    be16 out = apply(checksum);
    if (out.raw == 0) out.raw = 0xffff;
    return out;
  }

 private:
  std::uint16_t sum_ = 0;
};

// Write a be16/be32 into a possibly unaligned place in a packet.
template <typename T>
inline T load(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
inline void store(std::uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

}  // namespace passgate::packet
