#include <gtest/gtest.h>
#include "nat/engine.hpp"
#include "support/packet_builder.hpp"
using namespace passgate;
using namespace passgate::testing;
TEST(Smoke, Udp) {
  nat::NatConfig c;
  nat::PoolConfig p; p.name="p"; p.subscribers.push_back({ipv4(100,64,0,0),10});
  p.public_addresses.push_back({ipv4(198,51,100,1), ipv4(198,51,100,4)});
  c.pools.push_back(p); c.max_sessions=1024; c.max_subscribers=64;
  std::vector<std::string> errs;
  auto e = nat::Engine::create(c, &errs);
  ASSERT_TRUE(e) << (errs.empty() ? "" : errs[0]);
  auto pkt = udp_packet({ipv4(100,64,0,5), ipv4(203,0,113,9)}, 5000, 53);
  auto r = e->process(nat::Direction::outbound, pkt, 1000);
  EXPECT_EQ(r.verdict, nat::Verdict::to_outside) << stats::drop_reason_name(r.reason);
  EXPECT_EQ(checksum_problems(pkt), "");
  auto reply = udp_packet({ipv4(203,0,113,9), ip_src(pkt)}, 53, l4_sport(pkt));
  r = e->process(nat::Direction::inbound, reply, 2000);
  EXPECT_EQ(r.verdict, nat::Verdict::to_inside) << stats::drop_reason_name(r.reason);
  EXPECT_EQ(ip_dst(reply), ipv4(100,64,0,5));
  EXPECT_EQ(l4_dport(reply), 5000);
  EXPECT_EQ(checksum_problems(reply), "");
}
