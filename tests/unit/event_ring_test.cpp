// The event ring between a worker and the control core, and the gate that
// rate-limits limit events (RFC 6888 REQ-12: block records always have room).
#include <gtest/gtest.h>

#include <cstdint>
#include <thread>

#include "nat/event_ring.hpp"

namespace passgate::nat {
namespace {

NatEvent event_number(std::uint32_t n) {
  NatEvent e{NatEvent::Type::block_allocated, n, be32{n}, be32{0}, 0, 0, 0};
  return e;
}

TEST(EventRing, PopsInOrderAcrossTheWrap) {
  EventRing ring(8);
  std::uint32_t pushed = 0, popped = 0;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(ring.push(event_number(pushed++)));
    EXPECT_EQ(ring.size(), 6u);
    NatEvent e{};
    for (int i = 0; i < 6; ++i) {
      ASSERT_TRUE(ring.pop(e));
      EXPECT_EQ(e.time_ms, popped++);
    }
    EXPECT_FALSE(ring.pop(e));
    EXPECT_EQ(ring.size(), 0u);
  }
}

TEST(EventRing, PushFailsWhenFullAndSucceedsAfterAPop) {
  EventRing ring(4);
  for (std::uint32_t i = 0; i < 4; ++i) ASSERT_TRUE(ring.push(event_number(i)));
  EXPECT_FALSE(ring.push(event_number(4)));
  NatEvent e{};
  ASSERT_TRUE(ring.pop(e));
  EXPECT_EQ(e.time_ms, 0u);
  EXPECT_TRUE(ring.push(event_number(5)));
  EXPECT_EQ(ring.size(), 4u);
}

TEST(EventRing, LowPriorityStopsAtThreeQuartersWhileBlockRecordsStillFit) {
  EventRing ring(16);
  unsigned low = 0;
  while (ring.push_low_priority(event_number(low))) ++low;
  EXPECT_EQ(low, 12u);
  for (std::uint32_t i = 0; i < 4; ++i) EXPECT_TRUE(ring.push(event_number(100 + i)));
  EXPECT_FALSE(ring.push(event_number(200)));
}

// One producer and one consumer thread, as between a worker and the
// control core: nothing lost, nothing reordered, nothing duplicated.
TEST(EventRing, OneProducerOneConsumerKeepOrder) {
  constexpr std::uint32_t total = 100'000;
  EventRing ring(64);
  std::thread producer([&] {
    for (std::uint32_t i = 0; i < total;)
      if (ring.push(event_number(i))) ++i;
  });
  std::uint32_t expected = 0;
  bool in_order = true;
  NatEvent e{};
  while (expected < total)
    if (ring.pop(e)) in_order = in_order && e.time_ms == expected++;
  producer.join();
  EXPECT_TRUE(in_order);
  EXPECT_FALSE(ring.pop(e));
}

TEST(LimitEventGate, OneEventPerIntervalAndTheNextCarriesTheSuppressedCount) {
  LimitEventGate gate;
  const auto k = LimitEventGate::kind_of(NatEvent::Type::session_limit);
  ASSERT_TRUE(gate.admits(k, 0, 1000));
  gate.sent(k, 0);  // time 0 is a real reading: it still closes the gate
  EXPECT_FALSE(gate.admits(k, 10, 1000));
  EXPECT_FALSE(gate.admits(k, 999, 1000));
  EXPECT_EQ(gate.suppressed(k), 2u);
  // Another kind has its own window.
  EXPECT_TRUE(gate.admits(LimitEventGate::kind_of(NatEvent::Type::ports_exhausted), 20, 1000));
  ASSERT_TRUE(gate.admits(k, 1001, 1000));
  EXPECT_EQ(gate.suppressed(k), 2u);
  gate.sent(k, 1001);
  EXPECT_EQ(gate.suppressed(k), 0u);
  EXPECT_FALSE(gate.admits(k, 1500, 1000));
}

TEST(LimitEventGate, AnEventLostToAFullRingLeavesTheGateOpen) {
  LimitEventGate gate;
  const auto k = LimitEventGate::kind_of(NatEvent::Type::pool_exhausted);
  ASSERT_TRUE(gate.admits(k, 5, 1000));  // admitted, but never sent()
  EXPECT_TRUE(gate.admits(k, 6, 1000));
  EXPECT_EQ(gate.suppressed(k), 0u);
}

}  // namespace
}  // namespace passgate::nat
