// FlowTable (bucketed hash index with overflow counts) and TimerWheel (lazy
// per-second expiry). Collisions are forced by choosing hashes directly: the
// home bucket is hash & mask and the tag is the top 16 bits, so hashes that
// share their low bits all start in one bucket and spill into its neighbours.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "nat/flow_table.hpp"
#include "nat/timer_wheel.hpp"

namespace passgate::nat {
namespace {

// Records the table indexes: index i holds key keys[i]; the hash of a key is
// chosen by the test.
struct Records {
  std::vector<std::uint64_t> keys;
  std::vector<std::uint64_t> hashes;
  mutable unsigned eq_calls = 0;

  std::uint32_t add(std::uint64_t key, std::uint64_t hash) {
    keys.push_back(key);
    hashes.push_back(hash);
    return static_cast<std::uint32_t>(keys.size() - 1);
  }
  auto eq(std::uint64_t key) const {
    return [this, key](std::uint32_t i) {
      ++eq_calls;
      return keys.at(i) == key;
    };
  }
  std::uint32_t find(const FlowTable& t, std::uint32_t i) const { return t.find(hashes[i], eq(keys[i])); }
};

std::size_t bucket_count(const FlowTable& t) { return t.memory_bytes() / sizeof(FlowTable::Bucket); }

// Hash homed at `bucket` with tag bits `tag` (the table forces the low tag bit).
std::uint64_t hash_at(std::uint64_t bucket, std::uint16_t tag, std::uint32_t salt = 0) {
  return (std::uint64_t{tag} << 48) | (std::uint64_t{salt} << 16) | bucket;
}

TEST(FlowTable, SizedForCapacityWithHeadroom) {
  FlowTable t(1000);
  // 1000 entries at 80% load need 125 buckets: rounded up to a power of two.
  EXPECT_EQ(bucket_count(t), 128u);
  EXPECT_EQ(t.memory_bytes(), 128u * 64u);
  EXPECT_EQ(bucket_count(FlowTable(0)), 2u);
  EXPECT_EQ(bucket_count(FlowTable(1)), 2u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(FlowTable, InsertFindErase) {
  FlowTable t(1000);
  Records r;
  std::mt19937_64 rng(42);
  for (int k = 0; k < 1000; ++k) {
    const std::uint64_t h = rng();
    ASSERT_TRUE(t.insert(h, r.add(static_cast<std::uint64_t>(k), h)));
  }
  EXPECT_EQ(t.size(), 1000u);
  for (std::uint32_t i = 0; i < 1000; ++i) EXPECT_EQ(r.find(t, i), i);
  // Missing keys: same hash, different key; and unknown hashes.
  EXPECT_EQ(t.find(r.hashes[5], r.eq(999999)), no_index);
  EXPECT_EQ(t.find(0x1234567890abcdefull, r.eq(5)), no_index);
  for (std::uint32_t i = 0; i < 1000; i += 2) EXPECT_TRUE(t.erase(r.hashes[i], i));
  EXPECT_EQ(t.size(), 500u);
  for (std::uint32_t i = 0; i < 1000; ++i) EXPECT_EQ(r.find(t, i), i % 2 ? i : no_index);
  // Erasing again, or an index that is not there, fails and changes nothing.
  EXPECT_FALSE(t.erase(r.hashes[0], 0));
  EXPECT_FALSE(t.erase(r.hashes[1], 2));
  EXPECT_EQ(t.size(), 500u);
}

TEST(FlowTable, SameTagDifferentKeysAreToldApartByEq) {
  FlowTable t(100);
  Records r;
  // Identical hashes (same bucket, same tag): only eq() separates them.
  for (int k = 0; k < 5; ++k) ASSERT_TRUE(t.insert(hash_at(3, 7), r.add(100 + static_cast<std::uint64_t>(k), hash_at(3, 7))));
  for (std::uint32_t i = 0; i < 5; ++i) EXPECT_EQ(r.find(t, i), i);
  EXPECT_TRUE(t.erase(hash_at(3, 7), 2));
  EXPECT_EQ(r.find(t, 2), no_index);
  for (std::uint32_t i : {0u, 1u, 3u, 4u}) EXPECT_EQ(r.find(t, i), i);
}

TEST(FlowTable, TagNeverZeroSoTopBitsZeroStillFindable) {
  FlowTable t(100);
  Records r;
  const std::uint64_t h = 5;  // top 16 bits zero: the tag becomes 1, not "empty"
  ASSERT_TRUE(t.insert(h, r.add(1, h)));
  EXPECT_EQ(r.find(t, 0), 0u);
  // Nor does inserting a second one overwrite it.
  ASSERT_TRUE(t.insert(h, r.add(2, h)));
  EXPECT_EQ(r.find(t, 0), 0u);
  EXPECT_EQ(r.find(t, 1), 1u);
}

// Everything homed at one bucket: 10 fit, the rest overflow into the next
// buckets, and every entry stays findable.
TEST(FlowTable, ForcedCollisionsOverflowIntoNeighbours) {
  FlowTable t(100);  // 16 buckets
  ASSERT_EQ(bucket_count(t), 16u);
  Records r;
  for (std::uint32_t k = 0; k < 35; ++k) {
    const std::uint64_t h = hash_at(5, static_cast<std::uint16_t>(k * 2), k);  // distinct tags
    ASSERT_TRUE(t.insert(h, r.add(k, h)));
  }
  for (std::uint32_t i = 0; i < 35; ++i) EXPECT_EQ(r.find(t, i), i) << i;
  // A key homed in the next bucket (which is full of overflow) still works.
  const std::uint64_t h6 = hash_at(6, 0x77);
  ASSERT_TRUE(t.insert(h6, r.add(1000, h6)));
  EXPECT_EQ(r.find(t, 35), 35u);
}

// Erasing from the middle of an overflow chain keeps later entries (homed
// earlier but stored further on) findable; reinsertion reuses the hole.
TEST(FlowTable, EraseInTheMiddleOfAnOverflowChain) {
  FlowTable t(100);
  Records r;
  const std::uint16_t tag = 9;  // all the same tag: every slot of the chain is compared
  for (std::uint32_t k = 0; k < 35; ++k) ASSERT_TRUE(t.insert(hash_at(5, tag), r.add(k, hash_at(5, tag))));
  // Entries 0-9 sit in bucket 5, 10-19 in 6, 20-29 in 7, 30-34 in 8.
  for (std::uint32_t i : {0u, 10u, 15u, 19u, 25u}) ASSERT_TRUE(t.erase(r.hashes[i], i));
  const std::set<std::uint32_t> gone = {0, 10, 15, 19, 25};
  for (std::uint32_t i = 0; i < 35; ++i) EXPECT_EQ(r.find(t, i), gone.count(i) ? no_index : i) << i;
  // Re-insert: they land in the holes, and everything is still found.
  for (std::uint32_t i : gone) ASSERT_TRUE(t.insert(r.hashes[i], i));
  for (std::uint32_t i = 0; i < 35; ++i) EXPECT_EQ(r.find(t, i), i) << i;
  EXPECT_EQ(t.size(), 35u);
}

// The overflow counts are undone by erase: once the chain is gone, a lookup
// in its home bucket stops there and compares nothing in the neighbours.
TEST(FlowTable, EraseUndoesOverflowCounts) {
  FlowTable t(100);
  Records r;
  const std::uint16_t tag = 9;
  for (std::uint32_t k = 0; k < 25; ++k) ASSERT_TRUE(t.insert(hash_at(5, tag), r.add(k, hash_at(5, tag))));
  // An entry homed at bucket 7 with the same tag, stored in 7.
  ASSERT_TRUE(t.insert(hash_at(7, tag), r.add(500, hash_at(7, tag))));
  std::vector<std::uint32_t> order(25);
  for (std::uint32_t i = 0; i < 25; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  for (std::uint32_t i : order) ASSERT_TRUE(t.erase(r.hashes[i], i));
  EXPECT_EQ(t.size(), 1u);
  r.eq_calls = 0;
  EXPECT_EQ(t.find(hash_at(5, tag), r.eq(12345)), no_index);
  EXPECT_EQ(r.eq_calls, 0u) << "bucket 5 still claims overflow";
  r.eq_calls = 0;
  EXPECT_EQ(t.find(hash_at(6, tag), r.eq(12345)), no_index);
  EXPECT_EQ(r.eq_calls, 0u) << "bucket 6 still claims overflow";
  EXPECT_EQ(r.find(t, 25), 25u);
  EXPECT_TRUE(t.erase(hash_at(7, tag), 25));
  EXPECT_EQ(t.size(), 0u);
}

TEST(FlowTable, OverflowWrapsAroundTheLastBucket) {
  FlowTable t(100);  // 16 buckets: 15 is the last
  Records r;
  for (std::uint32_t k = 0; k < 25; ++k) ASSERT_TRUE(t.insert(hash_at(15, 3, k), r.add(k, hash_at(15, 3, k))));
  for (std::uint32_t i = 0; i < 25; ++i) EXPECT_EQ(r.find(t, i), i);
  // Buckets 0 and 1 now hold overflow of 15; keys homed at 0 still work.
  const std::uint64_t h0 = hash_at(0, 3, 99);
  ASSERT_TRUE(t.insert(h0, r.add(99, h0)));
  EXPECT_EQ(r.find(t, 25), 25u);
  for (std::uint32_t i = 0; i < 25; i += 3) ASSERT_TRUE(t.erase(r.hashes[i], i));
  for (std::uint32_t i = 0; i < 25; ++i) EXPECT_EQ(r.find(t, i), i % 3 ? i : no_index);
  EXPECT_EQ(r.find(t, 25), 25u);
}

// Every slot can be used; one more insert fails; all stay findable, even
// when they all share one home bucket.
TEST(FlowTable, FillsToCapacity) {
  for (bool one_home : {false, true}) {
    FlowTable t(100);
    const std::size_t slots = bucket_count(t) * FlowTable::slots_per_bucket;
    Records r;
    std::mt19937_64 rng(11);
    for (std::size_t k = 0; k < slots; ++k) {
      const std::uint64_t h = one_home ? hash_at(3, static_cast<std::uint16_t>(rng()), static_cast<std::uint32_t>(k))
                                       : rng();
      ASSERT_TRUE(t.insert(h, r.add(k, h))) << k;
    }
    EXPECT_EQ(t.size(), slots);
    EXPECT_FALSE(t.insert(rng(), 12345));
    EXPECT_EQ(t.size(), slots);
    for (std::uint32_t i = 0; i < slots; ++i) EXPECT_EQ(r.find(t, i), i) << i;
    EXPECT_EQ(t.find(rng(), r.eq(0xffffffff)), no_index);  // terminates on a full table
    // Free one slot anywhere: the next insert, homed anywhere, finds it.
    ASSERT_TRUE(t.erase(r.hashes[slots / 2], static_cast<std::uint32_t>(slots / 2)));
    const std::uint64_t h = hash_at(9, 1);
    ASSERT_TRUE(t.insert(h, r.add(777, h)));
    EXPECT_EQ(r.find(t, static_cast<std::uint32_t>(slots)), slots);
    EXPECT_FALSE(t.insert(h, 0));
    // Empty it completely.
    for (std::uint32_t i = 0; i <= slots; ++i) {
      if (i != slots / 2) {
        ASSERT_TRUE(t.erase(r.hashes[i], i)) << i;
      }
    }
    EXPECT_EQ(t.size(), 0u);
    r.eq_calls = 0;
    for (std::uint32_t i = 0; i < slots; ++i) EXPECT_EQ(r.find(t, i), no_index);
    EXPECT_EQ(r.eq_calls, 0u);
  }
}

// A random mix of inserts and erases against a std::map model.
TEST(FlowTable, RandomOperationsMatchModel) {
  FlowTable t(512);
  Records r;
  std::map<std::uint32_t, bool> live;
  std::mt19937_64 rng(2024);
  const std::size_t buckets = bucket_count(t);
  for (int step = 0; step < 20000; ++step) {
    if (live.size() < 400 && (rng() % 3 != 0 || live.empty())) {
      // Crowd a few home buckets so chains form and interleave.
      const std::uint64_t h = hash_at(rng() % 4 * (buckets / 4), static_cast<std::uint16_t>(rng() % 8),
                                      static_cast<std::uint32_t>(rng()));
      const std::uint32_t i = r.add(rng(), h);
      ASSERT_TRUE(t.insert(h, i));
      live[i] = true;
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      ASSERT_TRUE(t.erase(r.hashes[it->first], it->first));
      live.erase(it);
    }
    if (step % 1000 == 0) {
      for (std::uint32_t i = 0; i < r.keys.size(); ++i) ASSERT_EQ(r.find(t, i), live.count(i) ? i : no_index);
    }
  }
  EXPECT_EQ(t.size(), live.size());
}

// ---------------------------------------------------------------- wheel

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
}  // namespace passgate::nat
