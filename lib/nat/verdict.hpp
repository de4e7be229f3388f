// What the engine decides for each packet, shared by the engine and the
// trackers it delegates to (fragments, passthrough glue).
#pragma once

#include <cstdint>

#include "stats/nat_counters.hpp"

namespace passgate::nat {

using stats::DropReason;

enum class Direction : std::uint8_t { outbound, inbound };  // inside->outside, outside->inside
// to_outside_hairpin: the source is translated and the destination is a
// public address whose mapping another worker owns; the dataplane hands the
// packet to that worker as an inbound packet (RFC 4787 REQ-9 across workers).
enum class Verdict : std::uint8_t { to_outside, to_inside, drop, held, to_outside_hairpin };

struct Result {
  Verdict verdict = Verdict::drop;
  DropReason reason = DropReason::none;
};

}  // namespace passgate::nat
