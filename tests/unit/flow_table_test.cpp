// FlowTable (bucketed hash index with overflow counts). Collisions are forced
// by choosing hashes directly: the home bucket is hash & mask and the tag is the top 16 bits, so hashes that
// share their low bits all start in one bucket and spill into its neighbours.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "table/flow_table.hpp"

namespace passgate::table {
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

}  // namespace
}  // namespace passgate::table
