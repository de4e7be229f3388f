// GRE version 0 passthrough (RFC 2784/2890) through the engine.
#include <gtest/gtest.h>

#include "nat/engine.hpp"
#include "packet/headers.hpp"
#include "support/checked_engine.hpp"
#include "support/nat_configs.hpp"
#include "support/packet_builder.hpp"

namespace passgate::nat {
namespace {

using namespace passgate::testing;
using stats::NatCounter;

const be32 server = ipv4(203, 0, 113, 80);
const be32 public_addr = ipv4(198, 51, 100, 1);
be32 client(int i) { return be32::from_host(ipv4(100, 64, 0, 40).host() + static_cast<std::uint32_t>(i)); }

class GreV0 : public ::testing::Test {
 protected:
  void make(bool enabled = true) {
    NatConfig c = one_address_config(public_addr);
    c.passthrough.gre.enabled = enabled;
    engine = Engine::create(c, nullptr);
    ASSERT_TRUE(engine);
  }
  void SetUp() override { make(); }
  Result send(Direction d, Bytes& p) {
    const Result r = checked_process(*engine, d, p, now_ms);
    if (r.verdict != Verdict::drop) EXPECT_EQ(checksum_problems(p), "");
    return r;
  }
  std::unique_ptr<Engine> engine;
  std::uint64_t now_ms = 1'000;
};

TEST_F(GreV0, TunnelBothWaysWithKeyAndSequenceUntouched) {
  Bytes out = gre_packet({client(0), server}, 0, true, 0xabcd0001, true);
  const Bytes before = out;
  ASSERT_EQ(send(Direction::outbound, out).verdict, Verdict::to_outside);
  EXPECT_EQ(ip_src(out), public_addr);
  EXPECT_TRUE(std::equal(out.begin() + 20, out.end(), before.begin() + 20)) << "GRE header and payload unchanged";
  Bytes in = gre_packet({server, public_addr}, 0, true, 0xabcd0001);
  ASSERT_EQ(send(Direction::inbound, in).verdict, Verdict::to_inside);
  EXPECT_EQ(ip_dst(in), client(0));
  EXPECT_EQ(engine->counters().get(NatCounter::gre_tunnels_created), 1u);
}

TEST_F(GreV0, SecondSubscriberToTheSameServerOnTheSameAddressRefused) {
  Bytes a = gre_packet({client(0), server}, 0, false, 0);
  ASSERT_EQ(send(Direction::outbound, a).verdict, Verdict::to_outside);
  Bytes b = gre_packet({client(1), server}, 0, false, 0);
  EXPECT_EQ(send(Direction::outbound, b).reason, DropReason::gre_conflict);
  Bytes in = gre_packet({server, public_addr}, 0, false, 0);
  ASSERT_EQ(send(Direction::inbound, in).verdict, Verdict::to_inside);
  EXPECT_EQ(ip_dst(in), client(0)) << "never delivered to the wrong subscriber";
  Bytes other = gre_packet({client(1), ipv4(203, 0, 113, 81)}, 0, false, 0);
  EXPECT_EQ(send(Direction::outbound, other).verdict, Verdict::to_outside) << "another server is fine";
}

TEST_F(GreV0, UnsolicitedInboundDroppedAndIdleTunnelsExpire) {
  Bytes in = gre_packet({server, public_addr}, 0, false, 0);
  EXPECT_EQ(send(Direction::inbound, in).reason, DropReason::gre_no_tunnel);
  Bytes a = gre_packet({client(0), server}, 0, false, 0);
  send(Direction::outbound, a);
  now_ms += 301'000;
  checked_expire(*engine, now_ms, 1u << 20);
  EXPECT_EQ(engine->gre().active_tunnels(), 0u);
  EXPECT_EQ(engine->active_subscribers(), 0u);
  Bytes b = gre_packet({client(1), server}, 0, false, 0);
  EXPECT_EQ(send(Direction::outbound, b).verdict, Verdict::to_outside) << "the server is free again";
}

// Issue 11.9, no monopolies. One subscriber keeps its tunnel to a server
// busy; another behind the same public address is refused (GRE has no
// ports: only one of them can tunnel to that server from that address).
// The holder used to keep the slot for as long as it kept sending. Now,
// once another subscriber has been refused, it keeps it at most
// contended_hold (300 s by default); then the next refused one takes over.
TEST_F(GreV0, GreTunnelSlotIsNotHeldForeverAgainstOthers) {
  Bytes a = gre_packet({client(0), server}, 0, false, 0);
  ASSERT_EQ(send(Direction::outbound, a).verdict, Verdict::to_outside);
  std::uint32_t waited_s = 0;
  bool took_over = false;
  while (!took_over && waited_s < 900) {
    now_ms += 5000;
    waited_s += 5;
    checked_expire(*engine, now_ms, 1u << 20);
    Bytes keep = gre_packet({client(0), server}, 0, false, 0);
    ASSERT_EQ(send(Direction::outbound, keep).verdict, Verdict::to_outside);
    Bytes in = gre_packet({server, public_addr}, 0, false, 0);
    ASSERT_EQ(send(Direction::inbound, in).verdict, Verdict::to_inside);
    EXPECT_EQ(ip_dst(in), client(0));
    Bytes b = gre_packet({client(1), server}, 0, false, 0);
    const Result r = send(Direction::outbound, b);
    took_over = r.verdict == Verdict::to_outside;
    if (!took_over) {
      EXPECT_EQ(r.reason, DropReason::gre_conflict);
    }
  }
  EXPECT_TRUE(took_over) << "the second subscriber never got the slot";
  EXPECT_LE(waited_s, 305u) << "contended_hold after the first refusal";
  EXPECT_EQ(engine->counters().get(NatCounter::gre_tunnels_taken_over), 1u);
  Bytes in = gre_packet({server, public_addr}, 0, false, 0);
  ASSERT_EQ(send(Direction::inbound, in).verdict, Verdict::to_inside);
  EXPECT_EQ(ip_dst(in), client(1));
  Bytes a2 = gre_packet({client(0), server}, 0, false, 0);
  EXPECT_EQ(send(Direction::outbound, a2).reason, DropReason::gre_conflict) << "the old holder now waits in turn";
  EXPECT_EQ(engine->gre().active_tunnels(), 1u);
}

// A holder silent for conflict_idle (15 s by default) gives the slot to the
// next subscriber that asks, without waiting out the 300 s idle timeout.
TEST_F(GreV0, IdleGreTunnelIsTakenOverByTheNextSubscriber) {
  Bytes a = gre_packet({client(0), server}, 0, false, 0);
  ASSERT_EQ(send(Direction::outbound, a).verdict, Verdict::to_outside);
  now_ms += 10'000;
  checked_expire(*engine, now_ms, 1u << 20);
  Bytes b = gre_packet({client(1), server}, 0, false, 0);
  EXPECT_EQ(send(Direction::outbound, b).reason, DropReason::gre_conflict) << "10 s of silence is not idle yet";
  now_ms += 6'000;
  checked_expire(*engine, now_ms, 1u << 20);
  Bytes b2 = gre_packet({client(1), server}, 0, false, 0);
  EXPECT_EQ(send(Direction::outbound, b2).verdict, Verdict::to_outside);
  EXPECT_EQ(engine->counters().get(NatCounter::gre_tunnels_taken_over), 1u);
  Bytes in = gre_packet({server, public_addr}, 0, false, 0);
  ASSERT_EQ(send(Direction::inbound, in).verdict, Verdict::to_inside);
  EXPECT_EQ(ip_dst(in), client(1));
  EXPECT_EQ(engine->gre().active_tunnels(), 1u);
  EXPECT_EQ(engine->active_subscribers(), 1u) << "the old holder had nothing else";
}

// Contention that does not last: a busy holder keeps its tunnel.
TEST_F(GreV0, BusyGreTunnelKeepsItsSlotWithinTheContendedHold) {
  Bytes a = gre_packet({client(0), server}, 0, false, 0);
  ASSERT_EQ(send(Direction::outbound, a).verdict, Verdict::to_outside);
  for (int s = 0; s < 50; ++s) {
    now_ms += 5000;
    checked_expire(*engine, now_ms, 1u << 20);
    Bytes keep = gre_packet({client(0), server}, 0, false, 0);
    ASSERT_EQ(send(Direction::outbound, keep).verdict, Verdict::to_outside);
    Bytes b = gre_packet({client(1), server}, 0, false, 0);
    EXPECT_EQ(send(Direction::outbound, b).reason, DropReason::gre_conflict);
  }
  EXPECT_EQ(engine->counters().get(NatCounter::gre_tunnels_taken_over), 0u);
}

TEST_F(GreV0, DisabledDropsOnlyGreV0) {
  make(false);
  Bytes a = gre_packet({client(0), server}, 0, false, 0);
  EXPECT_EQ(send(Direction::outbound, a).reason, DropReason::gre_disabled);
  Bytes u = udp_packet({client(0), server}, 1000, 53);
  EXPECT_EQ(send(Direction::outbound, u).verdict, Verdict::to_outside);
}

}  // namespace
}  // namespace passgate::nat
