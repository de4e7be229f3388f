// table::PrefixSet against the plain answer (any prefix holds the address).
#include <gtest/gtest.h>

#include <random>
#include <utility>
#include <vector>

#include "table/prefix_set.hpp"

namespace passgate::table {
namespace {

using packet::be32;
using packet::ipv4;

TEST(PrefixSet, EmptyHoldsNothing) {
  PrefixSet s;
  s.build();
  EXPECT_FALSE(s.contains(ipv4(0, 0, 0, 0)));
  EXPECT_FALSE(s.contains(ipv4(100, 64, 0, 1)));
  EXPECT_FALSE(s.contains(ipv4(255, 255, 255, 255)));
}

TEST(PrefixSet, EdgesOfEachPrefix) {
  PrefixSet s;
  s.add(ipv4(100, 64, 0, 0), 24);
  s.add(ipv4(10, 0, 0, 7), 32);
  s.add(ipv4(192, 168, 3, 99), 22);  // host bits given: the prefix is 192.168.0.0/22
  s.build();
  EXPECT_EQ(s.intervals(), 3u);
  EXPECT_TRUE(s.contains(ipv4(100, 64, 0, 0)));
  EXPECT_TRUE(s.contains(ipv4(100, 64, 0, 255)));
  EXPECT_FALSE(s.contains(ipv4(100, 63, 255, 255)));
  EXPECT_FALSE(s.contains(ipv4(100, 64, 1, 0)));
  EXPECT_TRUE(s.contains(ipv4(10, 0, 0, 7)));
  EXPECT_FALSE(s.contains(ipv4(10, 0, 0, 6)));
  EXPECT_FALSE(s.contains(ipv4(10, 0, 0, 8)));
  EXPECT_TRUE(s.contains(ipv4(192, 168, 0, 0)));
  EXPECT_TRUE(s.contains(ipv4(192, 168, 3, 255)));
  EXPECT_FALSE(s.contains(ipv4(192, 168, 4, 0)));
  EXPECT_FALSE(s.contains(ipv4(50, 0, 0, 0))) << "between two intervals";
}

TEST(PrefixSet, OverlappingAndAdjacentPrefixesMerge) {
  PrefixSet s;
  s.add(ipv4(100, 64, 0, 0), 10);
  s.add(ipv4(100, 65, 0, 0), 16);   // inside the /10
  s.add(ipv4(100, 128, 0, 0), 16);  // right after the /10
  s.add(ipv4(100, 130, 0, 0), 16);  // a gap before it
  s.build();
  EXPECT_EQ(s.intervals(), 2u);
  EXPECT_TRUE(s.contains(ipv4(100, 127, 255, 255)));
  EXPECT_TRUE(s.contains(ipv4(100, 128, 255, 255)));
  EXPECT_FALSE(s.contains(ipv4(100, 129, 0, 0)));
  EXPECT_TRUE(s.contains(ipv4(100, 130, 0, 1)));
}

TEST(PrefixSet, WholeSpaceAndTheTopAddress) {
  PrefixSet all;
  all.add(ipv4(0, 0, 0, 0), 0);
  all.build();
  EXPECT_TRUE(all.contains(ipv4(0, 0, 0, 0)));
  EXPECT_TRUE(all.contains(ipv4(255, 255, 255, 255)));
  PrefixSet top;
  top.add(ipv4(255, 255, 255, 255), 32);
  top.add(ipv4(0, 0, 0, 0), 32);
  top.build();
  EXPECT_EQ(top.intervals(), 2u);
  EXPECT_TRUE(top.contains(ipv4(255, 255, 255, 255)));
  EXPECT_TRUE(top.contains(ipv4(0, 0, 0, 0)));
  EXPECT_FALSE(top.contains(ipv4(0, 0, 0, 1)));
}

TEST(PrefixSet, SameAnswersAsALinearScan) {
  std::mt19937 rng(13);
  for (int round = 0; round < 50; ++round) {
    std::vector<std::pair<std::uint32_t, std::uint8_t>> prefixes;
    PrefixSet s;
    const int n = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      // Clustered in 100.64/10 so that they overlap and touch.
      const std::uint32_t a = 0x64400000u | (rng() & 0x003fffffu);
      const auto len = static_cast<std::uint8_t>(12 + rng() % 21);
      prefixes.emplace_back(a, len);
      s.add(be32::from_host(a), len);
    }
    s.build();
    for (int probe = 0; probe < 2000; ++probe) {
      const std::uint32_t a = 0x64300000u + (rng() & 0x00ffffffu);
      bool expected = false;
      for (const auto& [p, len] : prefixes) expected |= ((a ^ p) >> (32 - len)) == 0;
      ASSERT_EQ(s.contains(be32::from_host(a)), expected) << std::hex << a;
    }
  }
}

}  // namespace
}  // namespace passgate::table
