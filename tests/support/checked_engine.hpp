// Engine steps for unit tests: each one is followed by
// Engine::check_invariants() (issue 11.2), so a test that leaves a free list
// with a duplicate, a count that drifted or a dangling handle fails at the
// step that did it, whatever the test itself asserts.
#pragma once

#include <gtest/gtest.h>

#include <span>

#include "nat/engine.hpp"

namespace passgate::testing {

inline nat::Result checked_process(nat::Engine& e, nat::Direction d, std::span<std::uint8_t> packet,
                                   std::uint64_t now_ms) {
  const nat::Result r = e.process(d, packet, now_ms);
  EXPECT_EQ(e.check_invariants(), "") << "after an " << (d == nat::Direction::outbound ? "outbound" : "inbound")
                                      << " packet";
  return r;
}

inline void checked_burst(nat::Engine& e, nat::Direction d, std::span<nat::PacketRef> packets, std::uint64_t now_ms) {
  e.process_burst(d, packets, now_ms);
  EXPECT_EQ(e.check_invariants(), "") << "after a burst";
}

inline void checked_expire(nat::Engine& e, std::uint64_t now_ms, unsigned budget = 1024) {
  e.expire(now_ms, budget);
  EXPECT_EQ(e.check_invariants(), "") << "after expiry";
}

inline nat::ReconfigureResult checked_reconfigure(nat::Engine& e, const nat::NatConfig& next) {
  const nat::ReconfigureResult r = e.reconfigure(next);
  EXPECT_EQ(e.check_invariants(), "") << "after a reload";
  return r;
}

}  // namespace passgate::testing
