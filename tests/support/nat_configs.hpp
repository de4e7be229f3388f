// NAT configurations shared by the unit tests.
#pragma once

#include "nat/nat_config.hpp"
#include "packet/byte_order.hpp"

namespace passgate::testing {

// Subscribers in 100.64.0.0/16 all behind ONE public address: the case where
// passthrough protocols without ports are hard.
inline nat::NatConfig one_address_config(packet::be32 public_addr, std::uint32_t max_sessions = 1024) {
  nat::NatConfig c;
  nat::PoolConfig p;
  p.name = "one-address";
  p.subscribers.push_back({packet::ipv4(100, 64, 0, 0), 16});
  p.public_addresses.push_back({public_addr, public_addr});
  c.pools.push_back(p);
  c.max_sessions = max_sessions;
  c.max_subscribers = 64;
  return c;
}

}  // namespace passgate::testing
