// BlockAllocator on its own (RFC 6888 REQ-2..4, REQ-13/14): each worker's
// comb of the port range, the geometry of blocks, allocation until an
// address is full, the subscriber's block list, the engine's draws deciding
// every choice, a reload's growth, and the invariant check. The engine-level
// twins are in nat_test (Rfc6888Req*, Rfc6056*, Reload*), ike_test and the
// multiworker test.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "nat/block_allocator.hpp"

namespace passgate::nat {
namespace {

const be32 first_address = packet::ipv4(203, 0, 113, 1);
const be32 second_address = packet::ipv4(203, 0, 113, 2);

PoolConfig pool(std::uint16_t port_min, std::uint16_t port_max, std::uint16_t block_size) {
  PoolConfig pc;
  pc.name = "test";
  pc.port_min = port_min;
  pc.port_max = port_max;
  pc.block_size = block_size;
  return pc;
}

// Like the NIC's RSS (lib/steering), the residue of a worker differs from
// one public address to the next; across workers it is a permutation.
std::function<std::uint16_t(be32)> residue_of(unsigned worker, unsigned workers) {
  return [=](be32 a) { return static_cast<std::uint16_t>((worker + a.host()) % workers); };
}

// A draw that always returns `value`, counting its calls.
struct FixedDraw {
  std::uint64_t value = 0;
  int* calls;
  std::uint64_t operator()() const {
    ++*calls;
    return value;
  }
};

struct CombCase {
  unsigned workers;
  std::uint16_t port_min, port_max, block_size;
  std::uint32_t uncovered;  // ports of the range in no block: the tail of a comb shorter than a block
};

class BlockAllocatorCombs : public ::testing::TestWithParam<CombCase> {};

// Each port of the range belongs to exactly one worker's comb (the NIC
// delivers replies to that worker), the workers' blocks never share a port,
// and block_of_port finds the block of each of its ports and no other port.
TEST_P(BlockAllocatorCombs, DisjointAndCoverEveryPortOfTheRange) {
  const CombCase c = GetParam();
  const PoolConfig pc = pool(c.port_min, c.port_max, c.block_size);
  std::vector<std::unique_ptr<BlockAllocator>> workers;
  std::vector<int> block_owner(65536, -1);
  for (unsigned w = 0; w < c.workers; ++w) {
    workers.push_back(std::make_unique<BlockAllocator>(1, 1, static_cast<std::uint16_t>(c.workers),
                                                       residue_of(w, c.workers)));
    BlockAllocator& blocks = *workers.back();
    const std::uint32_t a = blocks.add_address(0, first_address, pc);
    const BlockAllocator::PublicAddress& addr = blocks.address(a);
    std::vector<std::uint32_t> expected(65536, no_index);
    for (std::uint32_t b = addr.first_block; b < addr.first_block + addr.blocks; ++b)
      for (std::uint32_t k = 0; k < c.block_size; ++k) {
        const std::uint16_t port = blocks.port(b, k).host();
        ASSERT_GE(port, c.port_min);
        ASSERT_LE(port, c.port_max);
        ASSERT_EQ(block_owner[port], -1) << "port " << port << " in two blocks";
        block_owner[port] = static_cast<int>(w);
        expected[port] = b;
      }
    for (std::uint32_t port = 0; port < 65536; ++port)
      ASSERT_EQ(blocks.block_of_port(addr, static_cast<std::uint16_t>(port), c.block_size), expected[port])
          << "worker " << w << " port " << port;
  }
  std::uint32_t uncovered = 0;
  for (std::uint32_t port = c.port_min; port <= c.port_max; ++port) {
    int combs = 0;
    for (const auto& blocks : workers) combs += blocks->owns_port(blocks->address(0), static_cast<std::uint16_t>(port));
    EXPECT_EQ(combs, 1) << "port " << port;
    uncovered += block_owner[port] == -1;
  }
  EXPECT_EQ(uncovered, c.uncovered);
}

INSTANTIATE_TEST_SUITE_P(Workers, BlockAllocatorCombs,
                         ::testing::Values(CombCase{1, 1024, 65535, 512, 0}, CombCase{2, 1024, 65535, 512, 0},
                                           CombCase{4, 1024, 65535, 256, 0}, CombCase{4, 1024, 65535, 512, 4 * 256},
                                           CombCase{4, 1025, 65535, 64, 63}, CombCase{2, 1025, 1100, 8, 12}),
                         [](const ::testing::TestParamInfo<CombCase>& info) {
                           const CombCase& c = info.param;
                           return "w" + std::to_string(c.workers) + "_" + std::to_string(c.port_min) + "_" +
                                  std::to_string(c.port_max) + "_b" + std::to_string(c.block_size);
                         });

TEST(BlockAllocator, OneWorkerCuts1024To65535Into126BlocksOf512) {
  BlockAllocator blocks(1, 1, 1, {});
  const PoolConfig pc = pool(1024, 65535, 512);
  const BlockAllocator::Comb comb = blocks.comb_of(pc, first_address);
  EXPECT_EQ(comb.base, 1024);
  EXPECT_EQ(comb.blocks, 126u);
  const BlockAllocator::PublicAddress& a = blocks.address(blocks.add_address(0, first_address, pc));
  EXPECT_EQ(a.blocks, 126u);
  EXPECT_EQ(a.free_blocks, 126u);
  EXPECT_EQ(blocks.block_count(), 126u);
  EXPECT_EQ(blocks.block(125).first_port, 65024);
  EXPECT_EQ(blocks.last_port(125, 512), 65535);
  EXPECT_EQ(blocks.block_of_port(a, 1023, 512), no_index);
  EXPECT_EQ(blocks.block_of_port(a, 1024, 512), 0u);
  EXPECT_EQ(blocks.block_of_port(a, 65535, 512), 125u);
}

// The engine's model of its subscribers, as check_invariants needs it.
struct Subscribers {
  std::vector<std::uint16_t> count;
  std::vector<std::uint32_t> address;
  std::string check(const BlockAllocator& blocks, const std::vector<BlockAllocator::PortCounts>& held) const {
    return blocks.check_invariants(held, [&](std::uint32_t sub, BlockAllocator::Owner& o) -> std::string {
      if (sub >= count.size()) return "not live";
      o = BlockAllocator::Owner{address[sub], count[sub]};
      return {};
    });
  }
};

TEST(BlockAllocator, AllocatesUntilTheAddressIsFullThenReleases) {
  BlockAllocator blocks(4, 2, 1, {});
  const std::uint32_t a = blocks.add_address(0, first_address, pool(1024, 2047, 128));
  ASSERT_EQ(blocks.address(a).blocks, 8u);
  Subscribers subs{std::vector<std::uint16_t>(4, 0), std::vector<std::uint32_t>(4, a)};
  const std::vector<BlockAllocator::PortCounts> held(blocks.block_count(), {0, 0, 0});
  std::mt19937_64 rng(42);
  int draws = 0;
  const auto draw = [&] {
    ++draws;
    return rng();
  };
  std::vector<bool> taken(8, false);
  for (std::uint32_t n = 0; n < 8; ++n) {
    const std::uint32_t sub = n / 2;
    const std::uint32_t b = blocks.allocate(sub, a, subs.count[sub], draw);
    ASSERT_LT(b, 8u);
    EXPECT_FALSE(taken[b]);
    taken[b] = true;
    EXPECT_EQ(blocks.block(b).subscriber, sub);
    EXPECT_EQ(blocks.address(a).free_blocks, 7 - n);
    EXPECT_EQ(blocks.blocks_in_use(), n + 1);
    EXPECT_EQ(subs.check(blocks, held), "");
  }
  EXPECT_EQ(draws, 8);
  // Full: nothing to choose, so nothing drawn (the engine's later draws keep their order).
  std::uint16_t more = 0;
  EXPECT_EQ(blocks.allocate(3, a, more, draw), no_index);
  EXPECT_EQ(more, 0);
  EXPECT_EQ(draws, 8);

  for (std::uint32_t sub = 0; sub < 4; ++sub)
    while (subs.count[sub] > 0) {
      const std::uint32_t b = blocks.blocks_of(sub, subs.count[sub]).front();
      blocks.release(b, subs.count[sub]);
      EXPECT_EQ(blocks.block(b).subscriber, no_index);
      EXPECT_EQ(subs.check(blocks, held), "");
    }
  EXPECT_EQ(blocks.address(a).free_blocks, 8u);
  EXPECT_EQ(blocks.blocks_in_use(), 0u);
  EXPECT_NE(blocks.allocate(0, a, subs.count[0], draw), no_index);
}

// The draw picks the first block tried; taken ones are skipped in order,
// wrapping around the address.
TEST(BlockAllocator, TheDrawPicksTheFirstBlockTriedThenTheNextFree) {
  BlockAllocator blocks(1, 8, 1, {});
  const std::uint32_t a = blocks.add_address(0, first_address, pool(1024, 2047, 128));
  std::uint16_t n = 0;
  int calls = 0;
  EXPECT_EQ(blocks.allocate(0, a, n, FixedDraw{5, &calls}), 5u);
  EXPECT_EQ(blocks.allocate(0, a, n, FixedDraw{5, &calls}), 6u);
  EXPECT_EQ(blocks.allocate(0, a, n, FixedDraw{13, &calls}), 7u);  // 13 % 8 = 5, taken, and 6
  EXPECT_EQ(blocks.allocate(0, a, n, FixedDraw{7, &calls}), 0u);   // wraps
  EXPECT_EQ(calls, 4);
}

TEST(BlockAllocator, BlockWithRoomStartsAtTheDrawnBlockAndDrawsOnlyWhenThereAreBlocks) {
  BlockAllocator blocks(2, 4, 1, {});
  const std::uint32_t a = blocks.add_address(0, first_address, pool(1024, 2047, 4));
  int calls = 0;
  std::uint16_t n = 0;
  EXPECT_EQ(blocks.block_with_room(0, n, Proto::udp, 4, FixedDraw{0, &calls}), no_index);
  EXPECT_EQ(calls, 0);
  for (std::uint64_t k = 0; k < 3; ++k) blocks.allocate(0, a, n, FixedDraw{k, &calls});
  const auto list = blocks.blocks_of(0, n);
  ASSERT_EQ(list.size(), 3u);
  for (int k = 0; k < 4; ++k) blocks.count_port(list[1], Proto::udp);  // full for UDP only
  calls = 0;
  EXPECT_EQ(blocks.block_with_room(0, n, Proto::udp, 4, FixedDraw{1, &calls}), list[2]);
  EXPECT_EQ(blocks.block_with_room(0, n, Proto::tcp, 4, FixedDraw{1, &calls}), list[1]);
  EXPECT_EQ(blocks.block_with_room(0, n, Proto::udp, 4, FixedDraw{4, &calls}), list[2]);  // 4 % 3 = 1
  EXPECT_EQ(calls, 3);
}

TEST(BlockAllocator, UncountTellsWhenTheBlockHasNoPortLeftInUse) {
  BlockAllocator blocks(1, 1, 1, {});
  const std::uint32_t a = blocks.add_address(0, first_address, pool(1024, 2047, 128));
  std::uint16_t n = 0;
  int calls = 0;
  const std::uint32_t b = blocks.allocate(0, a, n, FixedDraw{0, &calls});
  blocks.count_port(b, Proto::tcp);
  blocks.count_port(b, Proto::icmp);
  EXPECT_FALSE(blocks.uncount_port(b, Proto::tcp));
  EXPECT_TRUE(blocks.uncount_port(b, Proto::icmp));
}

// A release swaps the last entry of the list into the released one's place.
TEST(BlockAllocator, ReleaseSwapsTheLastBlockIntoTheGap) {
  BlockAllocator blocks(2, 4, 1, {});
  const std::uint32_t a = blocks.add_address(0, first_address, pool(1024, 2047, 128));
  std::uint16_t n = 0;
  int calls = 0;
  for (int k = 0; k < 4; ++k) blocks.allocate(1, a, n, FixedDraw{0, &calls});
  const auto list = [&] {
    const auto s = blocks.blocks_of(1, n);
    return std::vector<std::uint32_t>(s.begin(), s.end());
  };
  EXPECT_EQ(list(), (std::vector<std::uint32_t>{0, 1, 2, 3}));
  blocks.release(1, n);
  EXPECT_EQ(list(), (std::vector<std::uint32_t>{0, 3, 2}));
  blocks.release(0, n);
  EXPECT_EQ(list(), (std::vector<std::uint32_t>{2, 3}));
  blocks.release(3, n);
  EXPECT_EQ(list(), (std::vector<std::uint32_t>{2}));
  blocks.release(2, n);
  EXPECT_EQ(n, 0);
}

// Random allocations, ports and releases over two addresses (the second
// added by a reload's growth), with the model the engine would keep; the
// check passes after each step.
struct RandomRun {
  std::vector<std::uint32_t> chosen;  // the blocks chosen, in order
  int releases = 0;
};
RandomRun random_run(std::uint64_t seed) {
  BlockAllocator blocks(8, 4, 2, residue_of(1, 2));
  const PoolConfig pc = pool(1024, 4095, 64);
  Subscribers subs{std::vector<std::uint16_t>(8, 0), std::vector<std::uint32_t>(8, 0)};
  blocks.add_address(0, first_address, pc);
  BlockAllocator::Growth g = blocks.grow();
  const std::uint32_t second = blocks.add_address(g, 1, second_address, pc);
  blocks.finish(g);
  EXPECT_TRUE(blocks.fits(g));
  blocks.adopt(g);
  for (std::uint32_t sub = 4; sub < 8; ++sub) subs.address[sub] = second;

  std::vector<BlockAllocator::PortCounts> held(blocks.block_count(), {0, 0, 0});
  std::mt19937_64 engine_rng(seed), ops(7);
  const auto draw = [&] { return engine_rng(); };
  RandomRun run;
  std::vector<std::uint32_t>& chosen = run.chosen;
  for (int step = 0; step < 2000; ++step) {
    const auto sub = static_cast<std::uint32_t>(ops() % 8);
    const auto proto = static_cast<Proto>(ops() % proto_count);
    const auto list = blocks.blocks_of(sub, subs.count[sub]);
    switch (ops() % 3) {
      case 0:
        if (subs.count[sub] < 4) {
          const std::uint32_t b = blocks.allocate(sub, subs.address[sub], subs.count[sub], draw);
          if (b != no_index) chosen.push_back(b);
        }
        break;
      case 1:
        if (const std::uint32_t b = blocks.block_with_room(sub, subs.count[sub], proto, 64, draw); b != no_index) {
          blocks.count_port(b, proto);
          ++held[b][static_cast<unsigned>(proto)];
          chosen.push_back(b);
        }
        break;
      default:
        for (const std::uint32_t b : list)
          if (held[b][static_cast<unsigned>(proto)] > 0) {
            --held[b][static_cast<unsigned>(proto)];
            if (blocks.uncount_port(b, proto)) {
              blocks.release(b, subs.count[sub]);
              ++run.releases;
            }
            break;
          }
        break;
    }
    const std::string why = subs.check(blocks, held);
    EXPECT_EQ(why, "") << "step " << step;
    if (!why.empty()) break;
  }
  return run;
}

TEST(BlockAllocator, CheckInvariantsHoldsAfterRandomOperations) {
  const RandomRun run = random_run(1);
  EXPECT_GT(run.chosen.size(), 100u);
  EXPECT_GT(run.releases, 10);
}

TEST(BlockAllocator, TheSameDrawsGiveTheSameChoices) {
  EXPECT_EQ(random_run(3).chosen, random_run(3).chosen);
  EXPECT_NE(random_run(3).chosen, random_run(4).chosen);
}

// A reload's records are those the address would have had at start.
TEST(BlockAllocator, GrowthBuildsTheRecordsOfAnAddressAtStart) {
  const PoolConfig pc = pool(1024, 65535, 256);
  BlockAllocator at_start(1, 1, 4, residue_of(2, 4));
  at_start.add_address(0, first_address, pc);
  at_start.add_address(0, second_address, pc);
  BlockAllocator reloaded(1, 1, 4, residue_of(2, 4));
  reloaded.add_address(0, first_address, pc);
  BlockAllocator::Growth g = reloaded.grow();
  EXPECT_EQ(reloaded.add_address(g, 0, second_address, pc), 1u);
  reloaded.finish(g);
  EXPECT_EQ(reloaded.address_count(), 1u);  // nothing visible before adopt
  ASSERT_TRUE(reloaded.fits(g));
  EXPECT_GT(reloaded.adopt(g), 0u);
  ASSERT_EQ(reloaded.block_count(), at_start.block_count());
  for (std::uint32_t i = 0; i < 2; ++i) {
    EXPECT_EQ(reloaded.address(i).addr, at_start.address(i).addr);
    EXPECT_EQ(reloaded.address(i).first_block, at_start.address(i).first_block);
    EXPECT_EQ(reloaded.address(i).base_port, at_start.address(i).base_port);
    EXPECT_EQ(reloaded.address(i).blocks, at_start.address(i).blocks);
  }
  for (std::uint32_t b = 0; b < at_start.block_count(); ++b) {
    EXPECT_EQ(reloaded.block(b).first_port, at_start.block(b).first_port);
    EXPECT_EQ(reloaded.block(b).address, at_start.block(b).address);
  }
  // A growth made before another adopt no longer fits.
  BlockAllocator::Growth stale = reloaded.grow();
  BlockAllocator::Growth other = reloaded.grow();
  reloaded.add_address(other, 0, packet::ipv4(203, 0, 113, 3), pc);
  reloaded.add_address(stale, 0, packet::ipv4(203, 0, 113, 4), pc);
  reloaded.finish(other);
  reloaded.finish(stale);
  reloaded.adopt(other);
  EXPECT_FALSE(reloaded.fits(stale));
}

struct Corruption {
  const char* name;
  const char* message;  // part of check_invariants' answer
};

class BlockAllocatorCheck : public ::testing::TestWithParam<Corruption> {};

// Each kind of disagreement between the blocks and the engine's view of
// them is named; one comes from the allocator's own counts (a port
// uncounted twice).
TEST_P(BlockAllocatorCheck, FailsAfterADeliberateCorruption) {
  const std::string kind = GetParam().name;
  BlockAllocator blocks(3, 2, 1, {});
  const std::uint32_t a = blocks.add_address(0, first_address, pool(1024, 2047, 128));
  blocks.add_address(0, second_address, pool(1024, 2047, 128));
  Subscribers subs{std::vector<std::uint16_t>(3, 0), std::vector<std::uint32_t>(3, a)};
  std::vector<BlockAllocator::PortCounts> held(blocks.block_count(), {0, 0, 0});
  int calls = 0;
  const std::uint32_t b = blocks.allocate(1, a, subs.count[1], FixedDraw{2, &calls});
  blocks.count_port(b, Proto::udp);
  ++held[b][1];
  ASSERT_EQ(subs.check(blocks, held), "");

  if (kind == "double uncount") {
    blocks.uncount_port(b, Proto::tcp);
  } else if (kind == "held in a free block") {
    ++held[5][0];
  } else if (kind == "owner on another address") {
    subs.address[1] = 1;
  } else if (kind == "owner's count too low") {
    subs.count[1] = 0;
  } else if (kind == "owner not live") {
    subs.count.resize(1);
  }
  EXPECT_NE(subs.check(blocks, held).find(GetParam().message), std::string::npos) << subs.check(blocks, held);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, BlockAllocatorCheck,
    ::testing::Values(Corruption{"double uncount", "block 2 counts 65535 tcp ports in use, 0 mappings hold one"},
                      Corruption{"held in a free block", "free block 5 has mappings"},
                      Corruption{"owner on another address", "block 2 is on another address than its subscriber's"},
                      Corruption{"owner's count too low", "block 2 is missing from its subscriber's block list"},
                      Corruption{"owner not live", "not live"}),
    [](const ::testing::TestParamInfo<Corruption>& info) {
      std::string n = info.param.name;
      for (char& ch : n)
        if (ch == ' ' || ch == '\'') ch = '_';
      return n;
    });

}  // namespace
}  // namespace passgate::nat
