// The ARP neighbour cache (lib/dataplane/neighbour_table.hpp), without EAL:
// packets are opaque handles here, never touched.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "dataplane/neighbour_table.hpp"
#include "packet/byte_order.hpp"

namespace passgate::dataplane {
namespace {

using packet::ipv4;

rte_mbuf* fake(std::uintptr_t n) { return reinterpret_cast<rte_mbuf*>(n * 64); }
MacAddress mac(std::uint8_t last) { return MacAddress{{0x02, 0, 0, 0, 0, last}}; }

config::NeighbourConfig small() {
  config::NeighbourConfig c;
  c.reachable_seconds = 10;
  c.retry_ms = 100;
  c.max_retries = 3;
  c.queue_packets = 4;
  c.table_size = 8;
  return c;
}

TEST(NeighbourTable, UnresolvedQueuesBoundedThenFlushesInOrderOnReply) {
  NeighbourTable t(small());
  const be32 hop = ipv4(198, 51, 100, 254);
  EXPECT_EQ(t.lookup(hop, 0), nullptr);
  EXPECT_EQ(t.enqueue(hop, fake(1), 0), NeighbourTable::QueueResult::queued_send_request);
  for (int i = 2; i <= 4; ++i) EXPECT_EQ(t.enqueue(hop, fake(i), 0), NeighbourTable::QueueResult::queued);
  EXPECT_EQ(t.enqueue(hop, fake(5), 0), NeighbourTable::QueueResult::full) << "queue_packets bounds it";
  std::vector<rte_mbuf*> flushed;
  t.learn(hop, mac(0xfe), 50, /*create=*/false, [&](rte_mbuf* m, const MacAddress& a) {
    EXPECT_EQ(a, mac(0xfe));
    flushed.push_back(m);
  });
  EXPECT_EQ(flushed, (std::vector<rte_mbuf*>{fake(1), fake(2), fake(3), fake(4)}));
  ASSERT_NE(t.lookup(hop, 60), nullptr);
  EXPECT_EQ(*t.lookup(hop, 60), mac(0xfe));
}

TEST(NeighbourTable, Rfc826LearnOnlyMergesUnlessWeAreTheTarget) {
  NeighbourTable t(small());
  int calls = 0;
  t.learn(ipv4(10, 0, 0, 5), mac(5), 0, false, [&](rte_mbuf*, const MacAddress&) { ++calls; });
  EXPECT_EQ(t.lookup(ipv4(10, 0, 0, 5), 0), nullptr) << "a stray reply creates nothing";
  t.learn(ipv4(10, 0, 0, 5), mac(5), 0, true, [&](rte_mbuf*, const MacAddress&) { ++calls; });
  EXPECT_NE(t.lookup(ipv4(10, 0, 0, 5), 0), nullptr);
  EXPECT_EQ(calls, 0);
}

TEST(NeighbourTable, OneHostAskingFromManyAddressesFillsOnlyTheUnsolicitedShare) {
  NeighbourTable t(small());  // 8 entries, 25 % = 2 for neighbours that asked
  const auto none = [](rte_mbuf*, const MacAddress&) {};
  using L = NeighbourTable::Learned;
  EXPECT_EQ(t.learn(ipv4(10, 0, 0, 10), mac(9), 0, true, none), L::created);
  EXPECT_EQ(t.learn(ipv4(10, 0, 0, 11), mac(9), 0, true, none), L::created);
  for (std::uint8_t a = 12; a < 40; ++a)
    EXPECT_EQ(t.learn(ipv4(10, 0, 0, a), mac(9), 0, true, none), L::unsolicited_full);
  EXPECT_EQ(t.size(), 2u);
  // Every next hop traffic needs still finds room.
  for (std::uint8_t a = 100; a < 106; ++a)
    EXPECT_EQ(t.enqueue(ipv4(10, 0, 0, a), fake(a), 0), NeighbourTable::QueueResult::queued_send_request);
  // An entry traffic uses stops counting as unsolicited.
  ASSERT_NE(t.lookup(ipv4(10, 0, 0, 10), 0), nullptr);
  EXPECT_EQ(t.unsolicited(), 1u);
  for (std::uint8_t a = 100; a < 106; ++a) t.learn(ipv4(10, 0, 0, a), mac(a), 0, false, none);  // fakes never freed
}

TEST(NeighbourTable, PacketsWaitingForArpAreBoundedPerPortAcrossNeighbours) {
  config::NeighbourConfig c = small();
  c.held_packets = 5;  // fewer than table_size x queue: what the mbuf budget counts
  NeighbourTable t(c);
  using Q = NeighbourTable::QueueResult;
  for (int i = 1; i <= 4; ++i) EXPECT_NE(t.enqueue(ipv4(10, 0, 0, 20), fake(i), 0), Q::held_full);
  EXPECT_EQ(t.enqueue(ipv4(10, 0, 0, 21), fake(5), 0), Q::queued_send_request);
  EXPECT_EQ(t.enqueue(ipv4(10, 0, 0, 22), fake(6), 0), Q::held_full);
  EXPECT_EQ(t.held(), 5u);
  std::vector<rte_mbuf*> flushed;
  const auto collect = [&](rte_mbuf* m, const MacAddress&) { flushed.push_back(m); };
  t.learn(ipv4(10, 0, 0, 20), mac(20), 0, false, collect);
  EXPECT_EQ(t.held(), 1u);
  EXPECT_EQ(t.enqueue(ipv4(10, 0, 0, 22), fake(7), 0), Q::queued_send_request) << "room again";
  std::vector<rte_mbuf*> dropped;
  for (std::uint64_t now = 0; now < 10'000; now += 100) t.tick(now, [](be32) {}, [&](rte_mbuf* m) { dropped.push_back(m); });
  EXPECT_EQ(t.held(), 0u) << "failed neighbours give their packets back";
  EXPECT_EQ(flushed.size() + dropped.size(), 6u);
}

TEST(NeighbourTable, RetriesThenFailsAndDropsQueuedPackets) {
  NeighbourTable t(small());
  const be32 hop = ipv4(10, 0, 0, 9);
  t.enqueue(hop, fake(1), 0);  // the caller sends request 1 now
  t.enqueue(hop, fake(2), 0);
  int requests = 0;
  std::vector<rte_mbuf*> dropped;
  for (std::uint64_t now = 0; now <= 1000; now += 10)
    t.tick(now, [&](be32 a) { EXPECT_EQ(a, hop); ++requests; }, [&](rte_mbuf* m) { dropped.push_back(m); });
  EXPECT_EQ(requests, 2) << "max_retries 3 = the first request plus two retries";
  EXPECT_EQ(dropped, (std::vector<rte_mbuf*>{fake(1), fake(2)}));
  EXPECT_EQ(t.size(), 0u);
}

TEST(NeighbourTable, StaleEntryIsProbedWhileStillUsedThenRemoved) {
  NeighbourTable t(small());
  const be32 hop = ipv4(10, 0, 0, 7);
  t.learn(hop, mac(7), 0, true, [](rte_mbuf*, const MacAddress&) {});
  int requests = 0;
  auto no_drop = [](rte_mbuf*) { FAIL() << "nothing was queued"; };
  t.tick(10'000, [&](be32) { ++requests; }, no_drop);
  EXPECT_EQ(requests, 1) << "re-probed after reachable_seconds";
  EXPECT_NE(t.lookup(hop, 10'000), nullptr) << "traffic keeps flowing while probing";
  t.learn(hop, mac(7), 10'050, false, [](rte_mbuf*, const MacAddress&) {});
  t.tick(10'200, [&](be32) { ++requests; }, no_drop);
  EXPECT_EQ(requests, 1) << "the answer made it reachable again";
  for (std::uint64_t now = 20'100; now <= 21'000; now += 50) t.tick(now, [&](be32) { ++requests; }, no_drop);
  EXPECT_EQ(t.lookup(hop, 21'000), nullptr) << "an unanswered probe removes it";
}

TEST(NeighbourTable, StaticEntriesNeverExpireNorChange) {
  NeighbourTable t(small());
  const be32 hop = ipv4(10, 0, 0, 1);
  t.add_static(hop, mac(1));
  t.learn(hop, mac(99), 0, true, [](rte_mbuf*, const MacAddress&) {});
  for (std::uint64_t now = 0; now < 100'000; now += 5'000) t.tick(now, [](be32) { FAIL(); }, [](rte_mbuf*) {});
  ASSERT_NE(t.lookup(hop, 100'000), nullptr);
  EXPECT_EQ(*t.lookup(hop, 100'000), mac(1));
}

TEST(NeighbourTable, FullTableRefusesAndCountsOnTheCaller) {
  config::NeighbourConfig c = small();
  c.unsolicited_percent = 100;
  NeighbourTable t(c);
  for (int i = 0; i < 8; ++i) t.learn(ipv4(10, 0, 1, static_cast<std::uint8_t>(i)), mac(1), 0, true, [](rte_mbuf*, const MacAddress&) {});
  EXPECT_EQ(t.enqueue(ipv4(10, 0, 2, 1), fake(1), 0), NeighbourTable::QueueResult::table_full);
}

// Entries removed from the middle of probe chains must leave every other
// entry findable, with its own queue (backward-shift deletion).
TEST(NeighbourTable, RandomChurnKeepsEveryEntryFindable) {
  config::NeighbourConfig c = small();
  c.table_size = 64;
  c.max_retries = 1;
  NeighbourTable t(c);
  std::mt19937 rng(3);
  std::map<std::uint32_t, std::uintptr_t> pending;  // address -> its queued handle
  std::uint64_t now = 0;
  std::uintptr_t next = 1;
  for (int round = 0; round < 2000; ++round) {
    now += 7;
    const be32 a = be32::from_host(0x0a000000u + rng() % 96);
    if (rng() % 3 == 0 || pending.count(a.host())) {
      t.learn(a, mac(2), now, false, [&](rte_mbuf* m, const MacAddress&) {
        ASSERT_EQ(m, fake(pending.at(a.host())));
        pending.erase(a.host());
      });
    } else if (t.lookup(a, now) == nullptr && t.size() < 64) {
      if (t.enqueue(a, fake(next), now) == NeighbourTable::QueueResult::queued_send_request) pending[a.host()] = next++;
    }
    t.tick(now, [](be32) {}, [&](rte_mbuf* m) {
      for (auto it = pending.begin(); it != pending.end(); ++it)
        if (fake(it->second) == m) {
          pending.erase(it);
          return;
        }
      FAIL() << "dropped a packet nobody queued";
    });
  }
  // Drain what is left so nothing is freed through DPDK at destruction.
  for (auto [addr, handle] : std::map<std::uint32_t, std::uintptr_t>(pending))
    t.learn(be32::from_host(addr), mac(3), now, false, [&](rte_mbuf* m, const MacAddress&) { EXPECT_EQ(m, fake(handle)); });
}

}  // namespace
}  // namespace passgate::dataplane
