// NatConfig::validate: every problem is reported, at once, in words an
// operator can act on; the engine refuses to start on any of them.
#include <gtest/gtest.h>

#include <algorithm>

#include "nat/engine.hpp"
#include "packet/headers.hpp"

namespace passgate::nat {
namespace {

using packet::ipv4;

NatConfig good() {
  NatConfig c;
  PoolConfig p;
  p.name = "a";
  p.subscribers.push_back({ipv4(100, 64, 0, 0), 16});
  p.public_addresses.push_back({ipv4(198, 51, 100, 0), ipv4(198, 51, 100, 7)});
  c.pools.push_back(p);
  c.max_sessions = 1024;
  c.max_subscribers = 64;
  return c;
}

bool mentions(const std::vector<std::string>& errors, const std::string& text) {
  return std::any_of(errors.begin(), errors.end(), [&](const std::string& e) { return e.find(text) != std::string::npos; });
}

TEST(NatConfig, DefaultsAreTheRfcValues) {
  const Timeouts t;
  EXPECT_EQ(t.udp, 300u);               // RFC 4787 REQ-5
  EXPECT_EQ(t.tcp_established, 7440u);  // RFC 5382 REQ-5
  EXPECT_EQ(t.tcp_transitory, 240u);
  EXPECT_EQ(t.icmp, 60u);               // RFC 5508
  EXPECT_EQ(t.port_reuse_hold, 120u);   // RFC 6888 REQ-8
  EXPECT_EQ(PoolConfig{}.filtering, Filtering::endpoint_independent);  // RFC 6888 REQ-7
  EXPECT_TRUE(good().validate().empty());
}

TEST(NatConfig, TimeoutsBelowRfcMinimumsRejected) {
  NatConfig c = good();
  c.timeouts.udp = 60;
  c.timeouts.tcp_established = 3600;
  c.timeouts.tcp_transitory = 30;
  c.timeouts.icmp = 10;
  const auto errors = c.validate();
  EXPECT_TRUE(mentions(errors, "timeouts.udp 60 s is below RFC 4787"));
  EXPECT_TRUE(mentions(errors, "timeouts.tcp_established 3600 s"));
  EXPECT_TRUE(mentions(errors, "timeouts.tcp_transitory 30 s"));
  EXPECT_TRUE(mentions(errors, "timeouts.icmp 10 s"));
  EXPECT_EQ(Engine::create(c, nullptr), nullptr);
}

TEST(NatConfig, EveryErrorReportedAtOnce) {
  NatConfig c = good();
  c.pools[0].block_size = 0;
  c.pools[0].max_blocks_per_subscriber = 0;
  c.pools[0].port_min = 2000;
  c.pools[0].port_max = 1000;
  c.max_sessions = 0;
  const auto errors = c.validate();
  EXPECT_GE(errors.size(), 4u);
  EXPECT_TRUE(mentions(errors, "port range 2000-1000"));
  EXPECT_TRUE(mentions(errors, "max_blocks_per_subscriber 0"));
  EXPECT_TRUE(mentions(errors, "max_sessions"));
}

TEST(NatConfig, Rfc6888OverlappingPoolsRejected) {
  NatConfig c = good();
  PoolConfig b = c.pools[0];
  b.name = "b";
  b.subscribers = {{ipv4(100, 64, 128, 0), 24}};  // inside a's /16
  b.public_addresses = {{ipv4(198, 51, 100, 4), ipv4(198, 51, 100, 20)}};
  c.pools.push_back(b);
  const auto errors = c.validate();
  EXPECT_TRUE(mentions(errors, "pool 'b': public range 198.51.100.4-198.51.100.20 overlaps pool 'a'"));
  EXPECT_TRUE(mentions(errors, "pool 'b': subscriber prefix 100.64.128.0/24 overlaps pool 'a'"));
}

TEST(NatConfig, ImpossibleSizesRejected) {
  NatConfig c = good();
  c.pools[0].block_size = 4096;
  c.pools[0].port_min = 60000;
  c.pools[0].port_max = 61000;
  EXPECT_TRUE(mentions(c.validate(), "block_size 4096 does not fit the 1001 ports"));
  c = good();
  c.pools[0].public_addresses = {{ipv4(198, 51, 100, 9), ipv4(198, 51, 100, 1)}};
  EXPECT_TRUE(mentions(c.validate(), "ends before it starts"));
  c = good();
  c.pools.clear();
  EXPECT_TRUE(mentions(c.validate(), "at least one pool"));
}

TEST(NatConfig, StaticMappingConflictsRejected) {
  NatConfig c = good();
  const StaticMapping s{packet::ip_proto::tcp, ipv4(100, 64, 1, 1), be16::from_host(22), ipv4(192, 0, 2, 1),
                        be16::from_host(2222)};
  c.static_mappings = {s, s};
  const auto errors = c.validate();
  EXPECT_TRUE(mentions(errors, "same public address and port as static mapping 0"));
  EXPECT_TRUE(mentions(errors, "same inside address and port as static mapping 0"));
  c.static_mappings = {s};
  c.static_mappings[0].protocol = packet::ip_proto::icmp;
  EXPECT_TRUE(mentions(c.validate(), "protocol must be tcp or udp"));
}

// problems() is validate() with a group per line: lib/config leaves out,
// by the group and not by the words, what it has already reported.
TEST(NatConfig, ProblemsCarryTheirGroupInValidatesOrder) {
  NatConfig c = good();
  c.pools.clear();
  c.timeouts.udp = 60;
  c.passthrough.esp.max_sas = 0;
  c.static_mappings = {StaticMapping{packet::ip_proto::icmp, ipv4(100, 64, 1, 1), be16::from_host(22),
                                     ipv4(192, 0, 2, 1), be16::from_host(2222)}};
  const std::vector<NatProblem> problems = c.problems();
  const std::vector<std::string> texts = c.validate();
  ASSERT_EQ(problems.size(), texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(problems[i].text, texts[i]);
  ASSERT_EQ(problems.size(), 4u);
  EXPECT_EQ(problems[0].code, NatProblem::Code::no_pool);
  EXPECT_EQ(problems[1].code, NatProblem::Code::timeout);
  EXPECT_EQ(problems[2].code, NatProblem::Code::passthrough);
  EXPECT_EQ(problems[3].code, NatProblem::Code::static_mapping);

  c = good();
  c.pools[0].block_size = 1;
  c.pools[0].public_addresses = {{ipv4(11, 0, 0, 0), ipv4(11, 15, 255, 255)}};  // 2^20 x 64512 blocks
  const std::vector<NatProblem> blocks = c.problems();
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].code, NatProblem::Code::too_many_blocks);
  c.pools[0].subscribers.clear();
  EXPECT_EQ(c.problems()[0].code, NatProblem::Code::pool);
}

}  // namespace
}  // namespace passgate::nat
