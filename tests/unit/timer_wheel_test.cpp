// TimerWheel (lazy per-second expiry): due order, cancellation, budgets,
// clock jumps and a clock that steps back.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "table/timer_wheel.hpp"

namespace passgate::table {
namespace {

struct Visits {
  std::vector<std::uint32_t> order;
  std::map<std::uint32_t, std::uint32_t> next_due;  // returned by on_due; absent = free
  auto handler() {
    return [this](std::uint32_t i) -> std::uint32_t {
      order.push_back(i);
      auto it = next_due.find(i);
      if (it == next_due.end()) return 0;
      const std::uint32_t due = it->second;
      next_due.erase(it);
      return due;
    };
  }
};

TEST(TimerWheel, AdvanceVisitsInDueOrder) {
  TimerWheel w(16, 10);
  w.start_at(100);
  w.schedule(0, 103);
  w.schedule(1, 101);
  w.schedule(2, 105);
  w.schedule(3, 102);
  Visits v;
  EXPECT_EQ(w.advance(100, 100, v.handler()), 0u);  // nothing due yet
  EXPECT_EQ(w.advance(103, 100, v.handler()), 3u);
  EXPECT_EQ(v.order, (std::vector<std::uint32_t>{1, 3, 0}));
  EXPECT_EQ(w.current(), 103u);
  EXPECT_EQ(w.advance(104, 100, v.handler()), 0u);
  EXPECT_EQ(w.advance(105, 100, v.handler()), 1u);
  EXPECT_EQ(v.order.back(), 2u);
  EXPECT_EQ(w.advance(200, 100, v.handler()), 0u);  // each only once
}

TEST(TimerWheel, DueInThePastOrNowGoesToTheNextSecond) {
  TimerWheel w(4, 10);
  w.start_at(50);
  w.schedule(0, 10);
  w.schedule(1, 50);
  Visits v;
  EXPECT_EQ(w.advance(50, 10, v.handler()), 0u);
  EXPECT_EQ(w.advance(51, 10, v.handler()), 2u);
}

TEST(TimerWheel, CancelHeadMiddleTailAndTwice) {
  TimerWheel w(8, 10);
  w.start_at(0);
  for (std::uint32_t i = 0; i < 5; ++i) w.schedule(i, 3);  // one slot: list 4 3 2 1 0
  w.cancel(4);  // head
  w.cancel(2);  // middle
  w.cancel(0);  // tail
  w.cancel(2);  // again: no effect
  w.cancel(7);  // never scheduled: no effect
  Visits v;
  EXPECT_EQ(w.advance(3, 100, v.handler()), 2u);
  std::sort(v.order.begin(), v.order.end());
  EXPECT_EQ(v.order, (std::vector<std::uint32_t>{1, 3}));
  // Cancelled records can be scheduled again.
  w.schedule(2, 5);
  w.schedule(4, 5);
  w.cancel(4);
  EXPECT_EQ(w.advance(5, 100, v.handler()), 1u);
  EXPECT_EQ(v.order.back(), 2u);
}

TEST(TimerWheel, CancelThenRescheduleMovesTheRecord) {
  TimerWheel w(4, 100);
  w.start_at(0);
  w.schedule(1, 50);
  w.cancel(1);
  w.schedule(1, 10);
  Visits v;
  EXPECT_EQ(w.advance(10, 10, v.handler()), 1u);
  EXPECT_EQ(w.advance(60, 10, v.handler()), 0u);
}

TEST(TimerWheel, ReturnedDueTimeRefilesTheRecord) {
  TimerWheel w(4, 20);
  w.start_at(0);
  w.schedule(0, 5);
  Visits v;
  v.next_due[0] = 12;  // the record was refreshed: its real deadline moved
  EXPECT_EQ(w.advance(5, 10, v.handler()), 1u);
  EXPECT_EQ(w.advance(11, 10, v.handler()), 0u);
  EXPECT_EQ(w.advance(12, 10, v.handler()), 1u);
  EXPECT_EQ(v.order, (std::vector<std::uint32_t>{0, 0}));
  // Returning "now" (or the past) while the slot is being drained files it
  // for the next second, not back into the slot being drained.
  w.schedule(1, 13);
  v.next_due[1] = 13;
  EXPECT_EQ(w.advance(13, 10, v.handler()), 1u);
  EXPECT_EQ(w.advance(14, 10, v.handler()), 1u);
  EXPECT_EQ(v.order.size(), 4u);
}

TEST(TimerWheel, BudgetIsRespectedAndWorkResumes) {
  TimerWheel w(32, 10);
  w.start_at(100);
  for (std::uint32_t i = 0; i < 10; ++i) w.schedule(i, 101);
  for (std::uint32_t i = 10; i < 20; ++i) w.schedule(i, 102);
  Visits v;
  EXPECT_EQ(w.advance(102, 3, v.handler()), 3u);
  EXPECT_EQ(w.current(), 100u);  // stopped inside slot 101
  EXPECT_EQ(w.advance(102, 3, v.handler()), 3u);
  EXPECT_EQ(w.advance(102, 3, v.handler()), 3u);
  EXPECT_EQ(w.advance(102, 3, v.handler()), 3u);  // last of 101, two of 102
  std::set<std::uint32_t> first_ten(v.order.begin(), v.order.begin() + 10);
  EXPECT_EQ(first_ten.size(), 10u);
  EXPECT_EQ(*first_ten.rbegin(), 9u);  // slot 101 fully drained before 102
  EXPECT_EQ(w.advance(102, 100, v.handler()), 8u);
  EXPECT_EQ(w.current(), 102u);
  std::set<std::uint32_t> all(v.order.begin(), v.order.end());
  EXPECT_EQ(all.size(), 20u);
  EXPECT_EQ(v.order.size(), 20u);
  EXPECT_EQ(w.advance(102, 0, v.handler()), 0u);
}

TEST(TimerWheel, ZeroBudgetHandlesNothing) {
  TimerWheel w(4, 10);
  w.start_at(0);
  w.schedule(0, 1);
  Visits v;
  EXPECT_EQ(w.advance(5, 0, v.handler()), 0u);
  EXPECT_TRUE(v.order.empty());
  EXPECT_EQ(w.advance(5, 1, v.handler()), 1u);
}

// A due time beyond the horizon is filed at the horizon; the callback hands
// back the real deadline each time until it is reached. Never visited
// before the horizon, never freed early.
TEST(TimerWheel, DueBeyondHorizonIsRefiled) {
  TimerWheel w(4, 10);  // 16 slots
  w.start_at(1000);
  const std::uint32_t deadline = 1000 + 500;
  w.schedule(0, deadline);
  std::uint32_t visits = 0, freed_at = 0;
  for (std::uint32_t now = 1001; now <= 1600 && freed_at == 0; ++now) {
    w.advance(now, 100, [&](std::uint32_t) -> std::uint32_t {
      ++visits;
      if (deadline <= now) {
        freed_at = now;
        return 0;
      }
      return deadline;
    });
    if (visits == 1) {
      EXPECT_GE(now, 1010u) << "visited before the horizon";
    }
  }
  EXPECT_EQ(freed_at, deadline);
  // Re-filed about once per turn of the wheel (14-15 s), not every second.
  EXPECT_LE(visits, 500u / 14u + 2u);
  EXPECT_GE(visits, 500u / 16u);
}

// A clock jump of many turns visits every record once, in one call with
// enough budget, whatever slot it was filed in.
TEST(TimerWheel, BigClockJumpVisitsEverything) {
  TimerWheel w(1000, 60);  // 64 slots
  w.start_at(10);
  std::mt19937 rng(99);
  for (std::uint32_t i = 0; i < 1000; ++i) w.schedule(i, 11 + rng() % 200);  // some beyond the horizon
  Visits v;
  EXPECT_EQ(w.advance(1'000'000, 100000, v.handler()), 1000u);
  std::set<std::uint32_t> seen(v.order.begin(), v.order.end());
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(v.order.size(), 1000u);
  EXPECT_EQ(w.current(), 1'000'000u);
  // The wheel keeps working after the jump.
  w.schedule(5, 1'000'003);
  EXPECT_EQ(w.advance(1'000'002, 10, v.handler()), 0u);
  EXPECT_EQ(w.advance(1'000'003, 10, v.handler()), 1u);
}

// The first advance of a wheel that never had start_at() (current 0) at a
// large "now" behaves as a jump.
TEST(TimerWheel, FirstCallFromZeroIsAJump) {
  TimerWheel w(10, 30);
  for (std::uint32_t i = 0; i < 10; ++i) w.schedule(i, 1 + i * 7);
  Visits v;
  EXPECT_EQ(w.advance(1'700'000'000u, 1000, v.handler()), 10u);
}

// Records that survive a jump (their deadline is still ahead) are re-filed
// and come back at their deadline.
TEST(TimerWheel, RecordsSurvivingAJumpComeBack) {
  TimerWheel w(4, 30);  // 32 slots
  w.start_at(0);
  w.schedule(0, 20);
  std::uint32_t visits_before = 0;
  const std::uint32_t jump_to = 10'000, deadline = 10'015;
  w.advance(jump_to, 100, [&](std::uint32_t) -> std::uint32_t {
    ++visits_before;
    return deadline;
  });
  EXPECT_GE(visits_before, 1u);
  bool freed = false;
  for (std::uint32_t now = jump_to + 1; now <= deadline; ++now)
    w.advance(now, 100, [&](std::uint32_t) -> std::uint32_t {
      if (now < deadline) return deadline;
      freed = true;
      return 0;
    });
  EXPECT_TRUE(freed);
}

// A clock that steps back must not move the wheel back (or lose it).
TEST(TimerWheel, ClockSteppingBackIsIgnored) {
  TimerWheel w(4, 30);
  w.start_at(0);
  Visits v;
  EXPECT_EQ(w.advance(20, 10, v.handler()), 0u);
  EXPECT_EQ(w.advance(19, 10, v.handler()), 0u);  // one second back
  EXPECT_EQ(w.current(), 20u);
  w.schedule(0, 25);
  EXPECT_EQ(w.advance(24, 10, v.handler()), 0u);
  EXPECT_EQ(w.advance(25, 10, v.handler()), 1u);
}

// The smallest wheel (horizon 0) still never re-drains the slot in hand.
TEST(TimerWheel, TinyHorizonDoesNotSpinOnOneRecord) {
  TimerWheel w(2, 0);
  w.start_at(0);
  w.schedule(0, 1);
  unsigned calls = 0;
  w.advance(1, 1000, [&](std::uint32_t) -> std::uint32_t {
    ++calls;
    return 100;  // still alive
  });
  EXPECT_EQ(calls, 1u);
}

}  // namespace
}  // namespace passgate::table
