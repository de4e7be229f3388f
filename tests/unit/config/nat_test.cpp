// nat (lib/config/read_nat.cpp, read_pools.cpp, read_static.cpp): sizes,
// timeouts and limits, pools and their overlaps, static mappings.
#include <gtest/gtest.h>

#include <string>

#include "config/gateway_config.hpp"
#include "config_test_support.hpp"
#include "nat/nat_config.hpp"

namespace passgate::config::testing {
namespace {

TEST(GatewayConfig, NatRules) {
  expect_one_error(with(minimal, "nat:\n", "nat:\n  random_seed: 18446744073709551616\n"), 12, 16, Code::not_a_number,
                   "got '18446744073709551616'");
  {
    const LoadResult r = parse(with(minimal, "nat:\n", "nat:\n  random_seed: 18446744073709551615\n"));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    EXPECT_TRUE(r.config->random_seed_given);
    EXPECT_EQ(r.config->nat.random_seed, 18446744073709551615u);
  }
  expect_rows({
      {with(minimal, "nat:\n", "nat:\n  timeouts: {tcp_transitory: 60}\n"), 12, 30, Code::out_of_range,
       "RFC 5382 REQ-5"},
      {with(minimal, "nat:\n", "nat:\n  timeouts: {udp: 700000}\n"), 12, 19, Code::out_of_range,
       "expected an integer from 120 to 604800"},
      {with(minimal, "nat:\n", "nat:\n  fragments: {hold_bytes: 60}\n"), 12, 27, Code::out_of_range, "from 68 to 9216"},
      {with(minimal, "nat:\n", "nat:\n  max_sessions: 0\n"), 12, 17, Code::out_of_range, "from 1 to 1073741824"},
      {with(minimal, "nat:\n", "nat:\n  limits: {new_subscribers_per_second: 0}\n"), 12, 40, Code::out_of_range,
       "from 1 to 16777216"},
      {with(minimal, "nat:\n", "nat:\n  limits: {fragment_flows: 3}\n"), 12, 12, Code::unknown_key,
       "unknown key 'fragment_flows'"},
  });
  {
    const LoadResult r = parse(with(minimal, "nat:\n",
                                    "nat:\n  limits: {new_subscribers_per_second: 500, static_mapping_sessions: 99,\n"
                                    "    limit_event_interval_ms: 250, fragment_flows_per_host: 7, "
                                    "fragments_held_per_host: 3}\n"));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    const nat::AbuseLimits& l = r.config->nat.limits;
    EXPECT_EQ(l.new_subscribers_per_second, 500u);
    EXPECT_EQ(l.static_mapping_sessions, 99u);
    EXPECT_EQ(l.limit_event_interval_ms, 250u);
    EXPECT_EQ(l.fragment_flows_per_host, 7u);
    EXPECT_EQ(l.fragments_held_per_host, 3u);
  }
  expect_rows({
      {with(minimal, "[198.51.100.10-198.51.100.13]", "[198.51.100.10-198.51.100.13]\n      filtering: full-cone"), 16,
       18, Code::bad_choice, "expected endpoint-independent, address-dependent or address-and-port-dependent"},
      {with(minimal, "[198.51.100.10-198.51.100.13]", "[198.51.100.10-198.51.100.13]\n      ports: 2000-1000"), 16, 14,
       Code::bad_range, "expected a port range like 1024-65535"},
      {with(minimal, "[198.51.100.10-198.51.100.13]",
            "[198.51.100.10-198.51.100.13]\n      max_blocks_per_subscriber: 65"),
       16, 34, Code::out_of_range, "from 1 to 64"},
  });
  {
    const LoadResult r =
        parse(with(minimal, "[198.51.100.10-198.51.100.13]",
                   "[198.51.100.10-198.51.100.13]\n      filtering: address-and-port-dependent\n"
                   "      ports: 20000-29999\n      block_size: 1000\n      max_blocks_per_subscriber: 10"));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    EXPECT_EQ(r.config->nat.pools[0].filtering, nat::Filtering::address_and_port_dependent);
    EXPECT_EQ(r.config->nat.pools[0].port_min, 20000);
    EXPECT_EQ(r.config->nat.pools[0].port_max, 29999);
  }
  // 2^23 addresses x 126 blocks is far above the engine's 2^26 blocks; reported
  // once, at `pools`, not again by NatConfig::validate.
  expect_one_error(with(minimal, "198.51.100.10-198.51.100.13", "11.0.0.0/9"), 12, 3, Code::capacity,
                   "at most 67108864 (2^26)");
}

TEST(GatewayConfig, PoolsMayNotOverlap) {
  const std::string second = "    - name: b\n      subscribers: [100.128.0.0/16]\n      public: [198.51.100.20/31]\n";
  EXPECT_TRUE(parse(minimal + second).config.has_value());
  expect_rows({
      {minimal + with(second, "100.128.0.0/16", "100.100.0.0/16"), 17, 21, Code::overlap,
       "subscriber prefix 100.100.0.0/16 overlaps 100.64.0.0/10 of pool 'cgn' (line 13)"},
      {minimal + with(second, "198.51.100.20/31", "198.51.100.12/30"), 18, 16, Code::overlap,
       "public addresses 198.51.100.12-198.51.100.15 overlap 198.51.100.10-198.51.100.13 of pool 'cgn'"},
      {minimal + with(second, "name: b", "name: cgn"), 16, 13, Code::repeated,
       "duplicate pool name 'cgn'; first used on line 13"},
      {with(minimal, "198.51.100.10-198.51.100.13", "198.51.100.1"), 15, 16, Code::overlap,
       "the own address of port 'outside'"},
  });
}

TEST(GatewayConfig, StaticMappings) {
  const std::string statics =
      "  static:\n"
      "    - {protocol: tcp, inside: 100.64.0.20:8080, public: 198.51.100.30:80}\n";
  {
    const LoadResult r = parse(minimal + statics);
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    EXPECT_EQ(r.config->nat.static_mappings.size(), 1u);
  }
  expect_one_error(minimal + with(statics, "198.51.100.30:80", "198.51.100.11:2000"), 17, 57, Code::overlap,
                   "198.51.100.11:2000 lies inside the dynamic range of pool 'cgn' (line 13)");
  // A pool address, but below the pool's dynamic port range: fine.
  EXPECT_TRUE(parse(minimal + with(statics, "198.51.100.30:80", "198.51.100.11:80")).config.has_value());
  expect_rows({
      {minimal + with(statics, "protocol: tcp", "protocol: icmp"), 17, 18, Code::bad_choice,
       "expected tcp or udp, got 'icmp'"},
      {minimal + with(statics, "100.64.0.20:8080", "100.64.0.20:0"), 17, 31, Code::bad_endpoint,
       "port from 1 to 65535"},
      {minimal + statics + "    - {protocol: udp, inside: 100.64.0.20:8080, public: 198.51.100.30:81}\n" +
           "    - {protocol: tcp, inside: 100.64.0.20:8080, public: 198.51.100.30:82}\n",
       19, 31, Code::repeated, "inside 100.64.0.20:8080 is already mapped by the static mapping on line 17"},
      {minimal + with(statics, "public: 198.51.100.30:80", "public: 198.51.100.30:80, via: x"), 17, 75,
       Code::unknown_key, "unknown key 'via' in nat.static[0]; expected one of: protocol, inside, public"},
  });
}


// mode: deterministic (RFC 7422, nat/deterministic.hpp): its defaults, and
// each way the geometry can be wrong, at the key that makes it so.
TEST(GatewayConfig, DeterministicPools) {
  const std::string pub = "[198.51.100.10-198.51.100.13]";
  const std::string det = with(with(minimal, "[100.64.0.0/10]", "[100.64.0.0/22]"), pub, pub + "\n      mode: deterministic");
  {
    const LoadResult r = parse(det);
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    const nat::PoolConfig& p = r.config->nat.pools.at(0);
    EXPECT_EQ(p.mode, nat::PoolMode::deterministic);
    EXPECT_EQ(p.sharing_ratio, 0u) << "derived: ceil(1022 / 4) = 256";
    EXPECT_FALSE(p.log_blocks) << "the mapping event replaces block events by default";
    EXPECT_EQ(p.max_blocks_per_subscriber, 1u);
  }
  {
    const LoadResult r = parse(det + "      sharing_ratio: 300\n      log_blocks: true\n");
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    EXPECT_EQ(r.config->nat.pools.at(0).sharing_ratio, 300u);
    EXPECT_TRUE(r.config->nat.pools.at(0).log_blocks);
  }
  expect_rows({
      {with(minimal, pub, pub + "\n      mode: fixed"), 16, 13, Code::bad_choice,
       "expected dynamic (port blocks on demand) or deterministic (RFC 7422), got 'fixed'"},
      {with(minimal, pub, pub + "\n      sharing_ratio: 8"), 16, 22, Code::conflict,
       "sharing_ratio applies only to a pool with mode: deterministic"},
      {det + "      block_size: 64\n", 17, 19, Code::conflict, "block_size does not apply to a deterministic pool"},
      {det + "      max_blocks_per_subscriber: 2\n", 17, 34, Code::conflict,
       "max_blocks_per_subscriber does not apply to a deterministic pool"},
      {det + "      sharing_ratio: 100\n", 17, 22, Code::conflict, "expected a sharing_ratio of at least 256"},
      {det + "      ports: 1024-1200\n", 17, 14, Code::conflict,
       "are too few for a sharing ratio of 256 subscribers per public address"},
      {with(with(minimal, "[100.64.0.0/10]", "[100.64.0.0/10]"), pub, pub + "\n      mode: deterministic"), 16, 13,
       Code::conflict, "too few for a sharing ratio of 1048576"},
      {"dataplane:\n  workers: [1, 2, 3]\n" + det + "      ports: 1024-1535\n", 19, 14, Code::conflict,
       "2 ports per subscriber (ports 1024-1535 shared by 256 subscribers per public address) cannot be split over "
       "the 3 workers' port combs"},
  });
}

}  // namespace
}  // namespace passgate::config::testing
