// Several workers, fragments from outside (issue 17.4). Only a datagram's
// first fragment carries the ports that name the worker holding its
// session; later fragments carry addresses, protocol and IP identifier
// only. So every inbound fragment goes first to one rendezvous worker, the
// port-less owner of its destination address (where a NIC's RSS puts
// fragments anyway: it hashes them by address), and that worker remembers
// here, from the first fragment, which worker the datagram belongs to, and
// sends each later fragment there. Later fragments that overtake their first
// wait in the rendezvous worker (lib/dataplane/worker_fragments.cpp).
//
// A fixed table, sized at start, keyed by (source, destination, protocol,
// identifier) through a seeded hash so that no sender can aim at another
// datagram's slot; entries expire with the fragment timeout. Full: the entry
// closest to expiry in the probe window gives way (the caller counts it:
// fragment_owners_evicted), so a flood of
// first fragments costs the flooder's own later fragments, and others' only
// by chance.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "packet/byte_order.hpp"

namespace passgate::steering {

using packet::be32;

struct FragmentKey {
  be32 src, dst;
  std::uint16_t id = 0;
  std::uint8_t proto = 0;
  friend bool operator==(const FragmentKey&, const FragmentKey&) = default;
};

// `ip` from its IPv4 header; nullopt unless it is a fragment (MF set or a
// non-zero offset) with a whole header.
struct FragmentInfo {
  FragmentKey key;
  bool first = false;  // offset 0: carries the transport header
};
inline std::optional<FragmentInfo> fragment_info(std::span<const std::uint8_t> ip) {
  if (ip.size() < 20) return std::nullopt;
  const std::uint16_t flags_offset = static_cast<std::uint16_t>((ip[6] << 8) | ip[7]);
  if ((flags_offset & 0x3fff) == 0) return std::nullopt;  // neither MF nor an offset
  FragmentInfo f;
  __builtin_memcpy(&f.key.src.raw, &ip[12], 4);
  __builtin_memcpy(&f.key.dst.raw, &ip[16], 4);
  f.key.id = static_cast<std::uint16_t>((ip[4] << 8) | ip[5]);
  f.key.proto = ip[9];
  f.first = (flags_offset & 0x1fff) == 0;
  return f;
}

class FragmentOwners {
 public:
  // `capacity`: rounded up to a power of two.
  FragmentOwners(std::uint32_t capacity, std::uint64_t seed);

  // The first fragment's owner, until `expires_ms`. True when a live entry
  // of another datagram had to give way.
  bool remember(const FragmentKey& k, unsigned owner, std::uint64_t now_ms, std::uint64_t expires_ms);
  [[nodiscard]] std::optional<unsigned> find(const FragmentKey& k, std::uint64_t now_ms) const;
  [[nodiscard]] std::uint32_t capacity() const { return static_cast<std::uint32_t>(slots_.size()); }

  static constexpr unsigned probe_window = 8;

 private:
  struct Slot {
    FragmentKey key;
    std::uint64_t expires_ms = 0;  // 0: empty
    unsigned owner = 0;
  };
  [[nodiscard]] std::uint32_t home(const FragmentKey& k) const;
  std::vector<Slot> slots_;
  std::uint32_t mask_ = 0;
  std::uint64_t seed_;
};

}  // namespace passgate::steering
