// NAT events for the exporter tests (unit and integration): fixed
// addresses, one timestamp and one builder per kind of event.
#pragma once

#include <cstdint>

#include "nat/event_ring.hpp"
#include "packet/headers.hpp"

namespace passgate::testing::nat_events {

using nat::NatEvent;
using Type = NatEvent::Type;

// 2026-11-21T10:00:00.123Z
inline constexpr std::uint64_t t0 = 1795255200123ull;

inline const packet::be32 inside_a = packet::ipv4(100, 64, 0, 5);
inline const packet::be32 inside_b = packet::ipv4(100, 64, 0, 6);
inline const packet::be32 inside_c = packet::ipv4(100, 64, 0, 7);
inline const packet::be32 public_1 = packet::ipv4(192, 0, 2, 1);
inline const packet::be32 remote = packet::ipv4(198, 51, 100, 7);

inline NatEvent block(Type type, std::uint64_t time, packet::be32 inside, std::uint16_t first, std::uint16_t last,
               std::uint16_t step = 1) {
  NatEvent e{type, time, inside, public_1, first, last, 3};
  e.port_step = step;
  return e;
}

inline NatEvent limit(Type type, std::uint64_t time, packet::be32 inside) { return NatEvent{type, time, inside, public_1, 0, 0, 3}; }

inline NatEvent preserved(Type type, std::uint64_t time, packet::be32 inside, std::uint16_t port, std::uint8_t proto) {
  NatEvent e{type, time, inside, public_1, port, port, 3};
  e.protocol = proto;
  return e;
}

inline NatEvent session(Type type, std::uint64_t time, packet::be32 inside, std::uint16_t inside_port,
                 std::uint16_t public_port) {
  NatEvent e{type, time, inside, public_1, public_port, public_port, 3};
  e.protocol = 6;
  e.inside_port = packet::be16::from_host(inside_port);
  e.remote_address = remote;
  e.remote_port = packet::be16::from_host(443);
  return e;
}

}  // namespace passgate::testing::nat_events
