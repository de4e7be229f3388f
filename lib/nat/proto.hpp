// The protocols the engine keeps sessions for, as dense indices: shared by
// the engine (sessions, mappings) and the port blocks, which count the
// ports in use per protocol.
#pragma once

#include <cstdint>

#include "stats/nat_counters.hpp"

namespace passgate::nat {

enum class Proto : std::uint8_t { tcp = 0, udp = 1, icmp = 2 };
static_assert(static_cast<unsigned>(Proto::icmp) == static_cast<unsigned>(stats::ProtoIndex::icmp),
              "per-protocol counters are indexed by Proto");
inline constexpr unsigned proto_count = 3;
const char* to_string(Proto p);

}  // namespace passgate::nat
