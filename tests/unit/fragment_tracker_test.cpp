// FragmentTracker on its own (RFC 4787 REQ-14, RFC 5508; issue 11.6 bounds):
// the rewrite of a first fragment reaches its later fragments, in either
// order, and nobody can pin its state. The engine-level twins are in
// nat_test (Rfc4787Req14*) and abuse_test.
#include <gtest/gtest.h>

#include <vector>

#include "nat/fragment_tracker.hpp"
#include "packet/headers.hpp"
#include "support/packet_builder.hpp"

namespace passgate::nat {
namespace {

using testing::Bytes;
using testing::IpFields;
using testing::ip_dst;
using testing::ip_src;

const be32 inside = packet::ipv4(10, 0, 0, 5);
const be32 server = packet::ipv4(198, 51, 100, 7);
const be32 public_address = packet::ipv4(203, 0, 113, 1);

FragmentConfig small_config() {
  FragmentConfig c;
  c.flows = 16;
  c.hold_slots = 4;
  c.hold_bytes = 256;
  c.timeout_ms = 2000;
  c.flows_per_host = 3;
  c.held_per_host = 2;
  return c;
}

struct Fragments {
  std::vector<Bytes> parts;
  std::vector<packet::ParsedIpv4> parsed;
};

// A UDP datagram from `src` split into three fragments, each parsed.
Fragments datagram(be32 src, be32 dst, std::uint16_t id, std::size_t payload = 40) {
  IpFields ip;
  ip.src = src;
  ip.dst = dst;
  ip.id = id;
  Fragments f;
  f.parts = testing::fragment(testing::udp_packet(ip, 4000, 53, Bytes(payload, 0x11)), 16);
  for (const Bytes& b : f.parts) {
    packet::ParsedIpv4 p{};
    EXPECT_EQ(packet::parse_ipv4(b, p), packet::ParseError::ok);
    f.parsed.push_back(p);
  }
  return f;
}

// What the engine does to a first fragment outbound: the source becomes the
// public address (the header checksum is left to the tracker's delta only
// for later fragments; here only the addresses matter).
void translate_first(Bytes& first) {
  auto* h = reinterpret_cast<packet::Ipv4Header*>(first.data());
  h->src = public_address;
}

class FragmentTrackerTest : public ::testing::Test {
 protected:
  stats::NatCounters counters;
  table::FlowHasher hasher{1, 2, 3};
  FragmentTracker tracker{small_config(), hasher, counters};
  static constexpr auto known = [] { return true; };

  void first_fragment(Fragments& f, std::uint64_t now) {
    ASSERT_EQ(tracker.admit(Direction::outbound, f.parsed[0], now), DropReason::none);
    translate_first(f.parts[0]);
    tracker.remember(Direction::outbound, f.parts[0].data(), f.parsed[0], Verdict::to_outside, now);
  }
};

TEST_F(FragmentTrackerTest, LaterFragmentsGetTheFirstFragmentsRewriteInOrder) {
  Fragments f = datagram(inside, server, 7);
  ASSERT_GE(f.parts.size(), 3u);
  first_fragment(f, 1000);
  for (std::size_t k = 1; k < f.parts.size(); ++k) {
    const Result r = tracker.later(Direction::outbound, f.parts[k].data(), f.parsed[k], 1001, known);
    EXPECT_EQ(r.verdict, Verdict::to_outside);
    EXPECT_EQ(ip_src(f.parts[k]), public_address);
    EXPECT_EQ(ip_dst(f.parts[k]), server);
    EXPECT_EQ(testing::checksum_problems(f.parts[k]), "");
  }
  EXPECT_EQ(counters.get(stats::NatCounter::fragments_translated), f.parts.size() - 1);
  EXPECT_EQ(tracker.check_invariants(), "");
}

TEST_F(FragmentTrackerTest, OvertakingFragmentsAreHeldThenReleasedRewritten) {
  Fragments f = datagram(inside, server, 8);
  const Result held = tracker.later(Direction::outbound, f.parts[2].data(), f.parsed[2], 1000, known);
  EXPECT_EQ(held.verdict, Verdict::held);
  EXPECT_FALSE(tracker.has_released());
  first_fragment(f, 1001);
  ASSERT_TRUE(tracker.has_released());
  std::vector<Bytes> out;
  tracker.drain_released([&](std::span<std::uint8_t> bytes, Verdict v) {
    EXPECT_EQ(v, Verdict::to_outside);
    out.emplace_back(bytes.begin(), bytes.end());
  });
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(ip_src(out[0]), public_address);
  EXPECT_EQ(testing::checksum_problems(out[0]), "");
  EXPECT_FALSE(tracker.has_released());
  EXPECT_EQ(counters.get(stats::NatCounter::fragments_held), 1u);
  EXPECT_EQ(counters.get(stats::NatCounter::fragments_released), 1u);
  EXPECT_EQ(tracker.check_invariants(), "");
}

TEST_F(FragmentTrackerTest, HoldsOnlyWhatFitsAndOnlyForKnownHosts) {
  Fragments small = datagram(inside, server, 9);
  IpFields ip;
  ip.src = inside;
  ip.dst = server;
  ip.id = 10;
  Bytes later = testing::fragment(testing::udp_packet(ip, 1, 2, Bytes(800, 0)), 400)[1];  // 420 bytes > 256
  packet::ParsedIpv4 p{};
  ASSERT_EQ(packet::parse_ipv4(later, p), packet::ParseError::ok);
  EXPECT_EQ(tracker.later(Direction::outbound, later.data(), p, 1000, known).reason, DropReason::fragment_too_large);
  const auto unknown = [] { return false; };
  EXPECT_EQ(tracker.later(Direction::outbound, small.parts[1].data(), small.parsed[1], 1000, unknown).reason,
            DropReason::fragment_unknown_host);
  EXPECT_EQ(tracker.check_invariants(), "");
}

TEST_F(FragmentTrackerTest, PerHostLimitsKeepOneHostFromTakingEverything) {
  // Flows: three datagrams of one host fill its share, a fourth is refused,
  // another host still gets in.
  for (std::uint16_t id = 1; id <= 3; ++id) {
    Fragments f = datagram(inside, server, id);
    first_fragment(f, 1000);
  }
  Fragments fourth = datagram(inside, server, 4);
  EXPECT_EQ(tracker.admit(Direction::outbound, fourth.parsed[0], 1000), DropReason::fragment_host_limit);
  Fragments other = datagram(packet::ipv4(10, 0, 0, 6), server, 4);
  EXPECT_EQ(tracker.admit(Direction::outbound, other.parsed[0], 1000), DropReason::none);
  // Held: two per host, the hold slots (four) stay for others.
  for (std::uint16_t id = 20; id < 22; ++id) {
    Fragments f = datagram(inside, server, id);
    EXPECT_EQ(tracker.later(Direction::outbound, f.parts[2].data(), f.parsed[2], 1000, known).verdict, Verdict::held);
  }
  Fragments third = datagram(inside, server, 22);
  EXPECT_EQ(tracker.later(Direction::outbound, third.parts[2].data(), third.parsed[2], 1000, known).reason,
            DropReason::fragment_host_limit);
  // Inbound, the limit is per public destination.
  Fragments in = datagram(server, public_address, 30);
  EXPECT_EQ(tracker.later(Direction::inbound, in.parts[2].data(), in.parsed[2], 1000, known).verdict, Verdict::held);
  EXPECT_EQ(tracker.check_invariants(), "");
}

TEST_F(FragmentTrackerTest, HeldFragmentsAndFlowsTimeOut) {
  Fragments f = datagram(inside, server, 40);
  ASSERT_EQ(tracker.later(Direction::outbound, f.parts[2].data(), f.parsed[2], 1000, known).verdict, Verdict::held);
  tracker.expire(2999);
  EXPECT_EQ(counters.get(DropReason::fragment_timeout), 0u);
  tracker.expire(3000);
  EXPECT_EQ(counters.get(DropReason::fragment_timeout), 1u);
  // A flow expires with its timeout: its later fragments are then held, not
  // rewritten.
  Fragments g = datagram(inside, server, 41);
  first_fragment(g, 5000);
  tracker.expire(7000);
  EXPECT_EQ(tracker.later(Direction::outbound, g.parts[1].data(), g.parsed[1], 7000, known).verdict, Verdict::held);
  EXPECT_EQ(tracker.check_invariants(), "");
}

// The unit twin of Abuse.RefreshedFragmentFlowDoesNotStallTheExpiryOfOthers:
// a first fragment repeated later moves its flow's deadline; the flows
// filed after it still expire on time.
TEST_F(FragmentTrackerTest, ARefreshedFlowDoesNotStallTheExpiryOfOthers) {
  Fragments a = datagram(packet::ipv4(10, 0, 0, 1), server, 50);
  Fragments b = datagram(packet::ipv4(10, 0, 0, 2), server, 51);
  first_fragment(a, 1000);
  first_fragment(b, 1500);
  first_fragment(a, 2900);  // refreshed: now lives until 4900
  tracker.expire(3600);     // b (until 3500) must be gone although a is ahead of it in the FIFO
  const auto unknown = [] { return false; };
  EXPECT_EQ(tracker.later(Direction::outbound, b.parts[1].data(), b.parsed[1], 3600, unknown).reason,
            DropReason::fragment_unknown_host);
  EXPECT_EQ(tracker.later(Direction::outbound, a.parts[1].data(), a.parsed[1], 3600, unknown).verdict,
            Verdict::to_outside);
  EXPECT_EQ(tracker.check_invariants(), "");
}

// A reload changes the timeout and the per-host limits (Engine::apply
// passes them on); without it a reload would not change fragment limits.
TEST_F(FragmentTrackerTest, UpdateConfigChangesLimitsAndTimeout) {
  FragmentConfig c = small_config();
  c.flows_per_host = 1;
  c.timeout_ms = 100;
  tracker.update_config(c);
  Fragments f = datagram(inside, server, 60);
  first_fragment(f, 1000);
  Fragments g = datagram(inside, server, 61);
  EXPECT_EQ(tracker.admit(Direction::outbound, g.parsed[0], 1000), DropReason::fragment_host_limit);
  tracker.expire(1100);
  EXPECT_EQ(tracker.admit(Direction::outbound, g.parsed[0], 1100), DropReason::none);
  EXPECT_EQ(tracker.check_invariants(), "");
}

}  // namespace
}  // namespace passgate::nat
