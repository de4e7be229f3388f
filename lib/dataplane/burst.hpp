// The stacks of one received burst, as the stages of worker_receive.cpp pass
// it along (YANET's X_entry / X_handle shape): each stage runs over the whole
// stack the stage before filled, so a reader follows one burst from the wire
// to the NAT engine in order. Lives on the worker's stack for one burst.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

#include "nat/engine.hpp"

namespace passgate::dataplane {

struct Burst {
  static constexpr unsigned capacity = nat::Engine::max_burst;
  struct Held {
    rte_mbuf* m;
    std::uint8_t l2;  // Ethernet and 802.1Q bytes before the payload
  };
  // After layer 2: IPv4 packets and ARP frames for this port.
  Held ip[capacity];
  unsigned ip_count = 0;
  Held arp[capacity];
  unsigned arp_count = 0;
  // For the engine: the packets in the order given to process_burst.
  nat::PacketRef refs[capacity];
  Held nat[capacity];
  unsigned nat_count = 0;
  // Inbound packets that cannot go on (TTL, or Don't Fragment and too large
  // for the inside): the ICMP error, prepared from the packet as it arrived,
  // is sent only if the engine would deliver it (RFC 1812 4.3.2: toward a
  // host reaching a port forward or a mapping, not a port scan).
  struct Stuck {
    std::uint8_t index;  // into nat[]
    std::uint8_t type;   // ICMP type of the error
    rte_mbuf* error;     // nullptr when none may be sent
  };
  Stuck stuck[capacity];
  unsigned stuck_count = 0;
};

}  // namespace passgate::dataplane
