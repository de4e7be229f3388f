// The engine under abuse (issue 11): each test is named after an attack from
// the internet or from a subscriber, and shows the bound that stops it and the
// counter that shows it. Every step is followed by check_invariants().
#include <gtest/gtest.h>

#include "nat/engine.hpp"
#include "packet/headers.hpp"
#include "support/checked_engine.hpp"
#include "support/packet_builder.hpp"

namespace passgate::nat {
namespace {

using namespace passgate::testing;
using stats::NatCounter;
namespace flag = packet::tcp_flag;

constexpr std::uint8_t tcp = packet::ip_proto::tcp;
constexpr std::uint8_t udp = packet::ip_proto::udp;
const be32 pub = ipv4(198, 51, 100, 1);
const be32 forward_pub = ipv4(198, 51, 100, 200);
const be32 server = ipv4(203, 0, 113, 9);
const be32 web_host = ipv4(100, 64, 9, 9);   // behind the port forward, inside the pool's prefix
const be32 dmz_host = ipv4(10, 9, 9, 9);     // behind a port forward, in no prefix
const be32 sub_a = ipv4(100, 64, 0, 10);
const be32 sub_b = ipv4(100, 64, 0, 11);

be32 spoofed(std::uint32_t i) { return be32::from_host(0x0b000000u + i * 7919u); }  // 11.x.x.x

NatConfig abuse_config() {
  NatConfig c;
  PoolConfig p;
  p.name = "cgn";
  p.subscribers.push_back({ipv4(100, 64, 0, 0), 10});
  p.public_addresses.push_back({pub, ipv4(198, 51, 100, 4)});
  p.block_size = 64;
  p.max_blocks_per_subscriber = 4;
  p.max_sessions_per_subscriber = 100;
  c.pools.push_back(p);
  c.static_mappings.push_back({tcp, web_host, be16::from_host(8080), forward_pub, be16::from_host(80)});
  c.static_mappings.push_back({udp, dmz_host, be16::from_host(53), forward_pub, be16::from_host(53)});
  c.max_sessions = 1000;
  c.max_subscribers = 256;
  c.random_seed = 7;
  c.limits.static_mapping_sessions = 50;
  return c;
}

class Abuse : public ::testing::Test {
 protected:
  void make(const NatConfig& c) {
    std::vector<std::string> errors;
    engine = Engine::create(c, &errors);
    ASSERT_TRUE(engine) << (errors.empty() ? "" : errors.front());
  }
  void SetUp() override { make(abuse_config()); }
  Result out(Bytes& p) { return checked_process(*engine, Direction::outbound, p, now_ms); }
  Result in(Bytes& p) { return checked_process(*engine, Direction::inbound, p, now_ms); }
  void advance_s(std::uint64_t s) {
    now_ms += s * 1000;
    checked_expire(*engine, now_ms, 1u << 30);
  }
  std::uint64_t drops(DropReason r) const { return engine->counters().get(r); }
  std::uint64_t count(NatCounter c) const { return engine->counters().get(c); }
  // A new flow of a subscriber works.
  void opens_flow(be32 sub, std::uint16_t sport) {
    Bytes p = udp_packet({sub, server}, sport, 443);
    const Result r = out(p);
    EXPECT_EQ(r.verdict, Verdict::to_outside) << stats::drop_reason_name(r.reason);
    Bytes s = tcp_packet({sub, server}, sport, 443, flag::syn);
    const Result t = out(s);
    EXPECT_EQ(t.verdict, Verdict::to_outside) << stats::drop_reason_name(t.reason);
  }

  std::unique_ptr<Engine> engine;
  std::uint64_t now_ms = 5'000'000;
};

// ---------------------------------------------------------------- 11.1
TEST_F(Abuse, SpoofedSynFloodAtPortForwardExhaustsOnlyThatHostsQuota) {
  for (std::uint32_t i = 0; i < 1200; ++i) {
    Bytes syn = tcp_packet({spoofed(i), forward_pub}, static_cast<std::uint16_t>(1024 + i), 80, flag::syn);
    in(syn);
  }
  EXPECT_EQ(engine->active_sessions(), 100u) << "the host's max_sessions_per_subscriber, not the worker's table";
  EXPECT_EQ(drops(DropReason::subscriber_session_limit), 1100u);
  EXPECT_EQ(drops(DropReason::session_table_full), 0u);
  opens_flow(sub_a, 5000);
  opens_flow(sub_b, 5000);
}

TEST_F(Abuse, SpoofedFloodAtPortForwardToHostOutsideEveryPrefixIsBoundedPerMapping) {
  for (std::uint32_t i = 0; i < 1200; ++i) {
    Bytes q = udp_packet({spoofed(i), forward_pub}, static_cast<std::uint16_t>(1024 + i), 53);
    in(q);
  }
  EXPECT_EQ(engine->active_sessions(), 50u) << "limits.static_mapping_sessions";
  EXPECT_EQ(drops(DropReason::static_mapping_session_limit), 1150u);
  opens_flow(sub_a, 5000);
}

TEST_F(Abuse, SpoofedFloodAtEndpointIndependentMappingExhaustsOnlyItsSubscriber) {
  Bytes first = udp_packet({sub_a, server}, 4000, 3478);
  ASSERT_EQ(out(first).verdict, Verdict::to_outside);
  const be32 mapped = ip_src(first);
  const std::uint16_t port = l4_sport(first);
  for (std::uint32_t i = 0; i < 1200; ++i) {
    Bytes q = udp_packet({spoofed(i), mapped}, 999, port);
    in(q);
  }
  EXPECT_EQ(engine->active_sessions(), 100u);
  EXPECT_EQ(drops(DropReason::session_table_full), 0u);
  opens_flow(sub_b, 5000);
}

TEST_F(Abuse, PortForwardSessionsReleaseTheHostWhenTheyExpire) {
  Bytes syn = tcp_packet({server, forward_pub}, 1111, 80, flag::syn);
  ASSERT_EQ(in(syn).verdict, Verdict::to_inside);
  EXPECT_EQ(engine->active_subscribers(), 1u) << "the forward's host counts as a subscriber while it has sessions";
  Bytes reply = tcp_packet({web_host, server}, 8080, 1111, flag::syn | flag::ack);
  ASSERT_EQ(out(reply).verdict, Verdict::to_outside);
  EXPECT_EQ(ip_src(reply), forward_pub);
  advance_s(7441);
  EXPECT_EQ(engine->active_sessions(), 0u);
  EXPECT_EQ(engine->active_subscribers(), 0u);
  EXPECT_EQ(engine->active_mappings(), 2u) << "static mappings stay";
}

// ---------------------------------------------------------------- 11.3
TEST_F(Abuse, RemovedStaticMappingAcceptsNoNewInboundSession) {
  Bytes syn = tcp_packet({server, forward_pub}, 1111, 80, flag::syn);
  ASSERT_EQ(in(syn).verdict, Verdict::to_inside);
  NatConfig next = abuse_config();
  next.static_mappings.erase(next.static_mappings.begin());
  ASSERT_TRUE(Engine::reconfigure_problems(abuse_config(), next).empty());
  EXPECT_EQ(checked_reconfigure(*engine, next).static_draining, 1u);
  Bytes again = tcp_packet({server, forward_pub}, 1111, 80, flag::ack);
  EXPECT_EQ(in(again).verdict, Verdict::to_inside) << "the existing session drains";
  Bytes other = tcp_packet({ipv4(203, 0, 113, 10), forward_pub}, 2222, 80, flag::syn);
  EXPECT_EQ(in(other).reason, DropReason::static_mapping_draining);
}

TEST_F(Abuse, SubscriberWhosePrefixWasRemovedGetsNothingNew) {
  Bytes p = udp_packet({sub_a, server}, 4000, 53);
  ASSERT_EQ(out(p).verdict, Verdict::to_outside);
  const be32 mapped = ip_src(p);
  const std::uint16_t port = l4_sport(p);
  NatConfig next = abuse_config();
  next.pools[0].subscribers = {{ipv4(100, 65, 0, 0), 16}};
  ASSERT_TRUE(Engine::reconfigure_problems(abuse_config(), next).empty());
  checked_reconfigure(*engine, next);
  Bytes same = udp_packet({sub_a, server}, 4000, 53);
  EXPECT_EQ(out(same).verdict, Verdict::to_outside) << "existing sessions drain";
  Bytes fresh = udp_packet({sub_a, server}, 4001, 53);
  EXPECT_EQ(out(fresh).reason, DropReason::subscriber_draining);
  Bytes other_remote = udp_packet({ipv4(203, 0, 113, 99), mapped}, 53, port);
  EXPECT_EQ(in(other_remote).reason, DropReason::subscriber_draining);
}

// ---------------------------------------------------------------- 11.5
TEST_F(Abuse, SpoofedIcmpErrorFromInsideAboutAnotherSubscribersSessionIsDropped) {
  Bytes victim = tcp_packet({sub_b, server}, 40000, 443, flag::syn);
  ASSERT_EQ(out(victim).verdict, Verdict::to_outside);
  Bytes answer = tcp_packet({server, ip_src(victim)}, 443, l4_sport(victim), flag::syn | flag::ack);
  ASSERT_EQ(in(answer).verdict, Verdict::to_inside);
  // sub_a forges "port unreachable" about sub_b's connection.
  Bytes forged = icmp_error({sub_a, server}, 3, 3, answer);
  EXPECT_EQ(out(forged).reason, DropReason::icmp_error_not_sender);
  // sub_b may report about its own.
  Bytes genuine = icmp_error({sub_b, server}, 3, 3, answer);
  EXPECT_EQ(out(genuine).verdict, Verdict::to_outside);
}

TEST_F(Abuse, HostCyclingThroughItsPrefixIsBoundedByTheNewSubscriberRate) {
  NatConfig c = abuse_config();
  c.limits.new_subscribers_per_second = 20;
  make(c);
  unsigned ok = 0;
  for (std::uint32_t i = 0; i < 200; ++i) {
    Bytes p = udp_packet({be32::from_host(ipv4(100, 64, 50, 0).host() + i), server}, 4000, 53);
    if (out(p).verdict == Verdict::to_outside) ++ok;
  }
  EXPECT_EQ(ok, 20u);
  EXPECT_EQ(drops(DropReason::subscriber_rate_limited), 180u);
  now_ms += 500;  // half a second refills half the bucket
  for (std::uint32_t i = 200; i < 230; ++i) {
    Bytes p = udp_packet({be32::from_host(ipv4(100, 64, 50, 0).host() + i), server}, 4000, 53);
    if (out(p).verdict == Verdict::to_outside) ++ok;
  }
  EXPECT_EQ(ok, 30u);
  // Existing subscribers are not affected.
  Bytes known = udp_packet({ipv4(100, 64, 50, 0), server}, 4001, 53);
  EXPECT_EQ(out(known).verdict, Verdict::to_outside);
}

// ---------------------------------------------------------------- 11.8
TEST_F(Abuse, SpoofedFinDoesNotShortenAnEstablishedSession) {
  Bytes syn = tcp_packet({sub_a, server}, 40000, 443, flag::syn);
  ASSERT_EQ(out(syn).verdict, Verdict::to_outside);
  Bytes synack = tcp_packet({server, ip_src(syn)}, 443, l4_sport(syn), flag::syn | flag::ack);
  ASSERT_EQ(in(synack).verdict, Verdict::to_inside);
  Bytes fin = tcp_packet({server, ip_src(syn)}, 443, l4_sport(syn), flag::fin | flag::ack);
  ASSERT_EQ(in(fin).verdict, Verdict::to_inside);
  advance_s(3600);
  EXPECT_EQ(engine->active_sessions(), 1u) << "one FIN keeps the established timeout (RFC 6146 3.5.2)";
  advance_s(7440 - 3600 + 1);
  EXPECT_EQ(engine->active_sessions(), 0u);
}

TEST_F(Abuse, HalfClosedConnectionKeepsReceivingForHours) {
  Bytes syn = tcp_packet({sub_a, server}, 40000, 443, flag::syn);
  ASSERT_EQ(out(syn).verdict, Verdict::to_outside);
  Bytes synack = tcp_packet({server, ip_src(syn)}, 443, l4_sport(syn), flag::syn | flag::ack);
  ASSERT_EQ(in(synack).verdict, Verdict::to_inside);
  Bytes shut = tcp_packet({sub_a, server}, 40000, 443, flag::fin | flag::ack);
  ASSERT_EQ(out(shut).verdict, Verdict::to_outside);
  for (int hour = 0; hour < 3; ++hour) {
    advance_s(3000);
    Bytes data = tcp_packet({server, ip_src(syn)}, 443, l4_sport(syn), flag::ack);
    ASSERT_EQ(in(data).verdict, Verdict::to_inside) << "hour " << hour;
  }
  Bytes fin_back = tcp_packet({server, ip_src(syn)}, 443, l4_sport(syn), flag::fin | flag::ack);
  ASSERT_EQ(in(fin_back).verdict, Verdict::to_inside);
  advance_s(241);
  EXPECT_EQ(engine->active_sessions(), 0u) << "FINs both ways: transitory";
}


// ---------------------------------------------------------------- 11.6
// A first fragment (MF set) of a UDP datagram with IP id `id`.
Bytes first_fragment(be32 src, be32 dst, std::uint16_t id, std::uint16_t sport = 1000, std::uint16_t dport = 53) {
  IpFields f{src, dst};
  f.id = id;
  Bytes whole = udp_packet(f, sport, dport, Bytes(600, 3));
  return fragment(whole, 296)[0];
}

TEST_F(Abuse, RefreshedFragmentFlowDoesNotStallTheExpiryOfOthers) {
  NatConfig c = abuse_config();
  c.fragment_flows = 4;
  c.limits.fragment_flows_per_host = 4;
  make(c);
  // Flow 1 first, then three more; flow 1 is refreshed (its first fragment
  // again) every second, so it stays at the head of the expiry order.
  Bytes f1 = first_fragment(sub_a, server, 1);
  ASSERT_EQ(out(f1).verdict, Verdict::to_outside);
  for (std::uint16_t id = 2; id <= 4; ++id) {
    Bytes f = first_fragment(sub_a, server, id);
    ASSERT_EQ(out(f).verdict, Verdict::to_outside);
  }
  Bytes full = first_fragment(sub_a, server, 5);
  EXPECT_EQ(out(full).reason, DropReason::fragment_table_full);
  for (int t = 0; t < 3; ++t) {
    now_ms += 1000;
    checked_expire(*engine, now_ms);
    Bytes again = first_fragment(sub_a, server, 1);
    ASSERT_EQ(out(again).verdict, Verdict::to_outside);
  }
  // Flows 2..4 expired two seconds after they were made.
  Bytes next = first_fragment(sub_a, server, 6);
  EXPECT_EQ(out(next).verdict, Verdict::to_outside) << stats::drop_reason_name(out(next).reason);
}

TEST_F(Abuse, FragmentFloodFromOneHostIsBoundedPerHost) {
  NatConfig c = abuse_config();
  c.fragment_flows = 64;
  c.limits.fragment_flows_per_host = 8;
  make(c);
  unsigned passed = 0;
  for (std::uint16_t id = 1; id <= 40; ++id) {
    Bytes f = first_fragment(sub_a, server, id);
    if (out(f).verdict == Verdict::to_outside) ++passed;
  }
  EXPECT_EQ(passed, 8u);
  EXPECT_EQ(drops(DropReason::fragment_host_limit), 32u);
  Bytes other = first_fragment(sub_b, server, 1);
  EXPECT_EQ(out(other).verdict, Verdict::to_outside) << "another subscriber still has room";
}

TEST_F(Abuse, SpoofedLaterFragmentsAreHeldOnlyForKnownDestinationsAndBoundedPerAddress) {
  NatConfig c = abuse_config();
  c.fragment_hold_slots = 32;
  c.limits.fragments_held_per_host = 4;
  make(c);
  Bytes o = udp_packet({sub_a, server}, 1000, 53);
  ASSERT_EQ(out(o).verdict, Verdict::to_outside);
  const be32 mapped = ip_src(o);
  auto later = [&](be32 src, be32 dst, std::uint16_t id) {
    IpFields f{src, dst};
    f.id = id;
    f.fragment_offset_bytes = 400;
    return udp_packet(f, 1, 2, Bytes(100, 1));
  };
  Bytes stray = later(server, ipv4(192, 0, 2, 77), 1);
  EXPECT_EQ(in(stray).reason, DropReason::fragment_unknown_host);
  unsigned held = 0;
  for (std::uint16_t id = 1; id <= 20; ++id) {
    Bytes f = later(spoofed(id), mapped, id);
    if (in(f).verdict == Verdict::held) ++held;
  }
  EXPECT_EQ(held, 4u);
  EXPECT_EQ(drops(DropReason::fragment_host_limit), 16u);
  Bytes from_unknown = later(ipv4(100, 64, 77, 77), server, 9);
  EXPECT_EQ(out(from_unknown).reason, DropReason::fragment_unknown_host);
  now_ms += 2500;
  checked_expire(*engine, now_ms);
  Bytes after = later(spoofed(99), mapped, 99);
  EXPECT_EQ(in(after).verdict, Verdict::held) << "the timeout gives the slots back";
}


// ---------------------------------------------------------------- 11.4
std::vector<NatEvent> drain(Engine& e) {
  std::vector<NatEvent> out;
  NatEvent ev;
  while (e.events().pop(ev)) out.push_back(ev);
  return out;
}

TEST_F(Abuse, SubscriberAtItsLimitCannotFloodTheLogs) {
  NatConfig c = abuse_config();
  c.pools[0].max_sessions_per_subscriber = 10;
  make(c);
  for (std::uint16_t i = 0; i < 10; ++i) {
    Bytes p = udp_packet({sub_a, server}, static_cast<std::uint16_t>(2000 + i), 53);
    ASSERT_EQ(out(p).verdict, Verdict::to_outside);
  }
  drain(*engine);
  for (std::uint16_t i = 0; i < 500; ++i) {  // 500 refused flows within one second
    Bytes p = udp_packet({sub_a, server}, static_cast<std::uint16_t>(3000 + i), 53);
    EXPECT_EQ(out(p).reason, DropReason::subscriber_session_limit);
  }
  std::vector<NatEvent> events = drain(*engine);
  ASSERT_EQ(events.size(), 1u) << "one limit event per subscriber, type and interval";
  EXPECT_EQ(events[0].type, NatEvent::Type::session_limit);
  EXPECT_EQ(events[0].suppressed, 0u);
  EXPECT_EQ(count(NatCounter::limit_events_suppressed), 499u);
  now_ms += 1000;
  Bytes p = udp_packet({sub_a, server}, 4000, 53);
  EXPECT_EQ(out(p).reason, DropReason::subscriber_session_limit);
  events = drain(*engine);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].suppressed, 499u) << "the next event carries what was suppressed";
}

TEST_F(Abuse, AbusersCannotPushOtherSubscribersBlockRecordsOutOfTheRing) {
  NatConfig c = abuse_config();
  c.event_ring_size = 16;
  c.pools[0].max_sessions_per_subscriber = 1;
  c.limits.limit_event_interval_ms = 0;  // even with no rate limit at all
  make(c);
  // Four abusers at their limit flood limit events into a ring the control
  // core has not drained yet.
  for (std::uint32_t h = 0; h < 4; ++h) {
    const be32 abuser = be32::from_host(ipv4(100, 64, 20, 0).host() + h);
    for (std::uint16_t i = 0; i < 100; ++i) {
      Bytes p = udp_packet({abuser, server}, static_cast<std::uint16_t>(2000 + i), 53);
      out(p);
    }
  }
  EXPECT_GT(count(NatCounter::low_priority_events_lost), 0u);
  // Another subscriber's block record still has room.
  Bytes fresh = udp_packet({sub_b, server}, 5000, 53);
  ASSERT_EQ(out(fresh).verdict, Verdict::to_outside);
  unsigned blocks = 0, limits = 0;
  for (const NatEvent& ev : drain(*engine)) {
    if (ev.type == NatEvent::Type::block_allocated) ++blocks;
    if (ev.type == NatEvent::Type::session_limit) ++limits;
  }
  EXPECT_EQ(blocks, 5u) << "every block record, the four abusers' and sub_b's";
  EXPECT_EQ(limits, 12u - 1u) << "limit events fill the ring only to three quarters (12 of 16, the first block record included)";
  EXPECT_EQ(count(NatCounter::events_lost), 0u);
}


// ---------------------------------------------------------------- 11.10
// Address-dependent filtering answers from an index, not by walking the
// mapping's sessions for every unsolicited packet (a flood at a mapping with
// thousands of sessions would otherwise cost thousands of loads a packet).
TEST_F(Abuse, AddressDependentFilteringAdmitsOnlyKnownRemotesFromItsIndex) {
  NatConfig c = abuse_config();
  c.pools[0].filtering = Filtering::address_dependent;
  make(c);
  Bytes first = udp_packet({sub_a, server}, 4000, 3478);
  ASSERT_EQ(out(first).verdict, Verdict::to_outside);
  const be32 mapped = ip_src(first);
  const std::uint16_t port = l4_sport(first);
  for (std::uint8_t k = 1; k <= 50; ++k) {  // many sessions on the one mapping
    Bytes p = udp_packet({sub_a, ipv4(203, 0, 113, k)}, 4000, 3478);
    ASSERT_EQ(out(p).verdict, Verdict::to_outside);
  }
  Bytes same_host_other_port = udp_packet({server, mapped}, 9999, port);
  EXPECT_EQ(in(same_host_other_port).verdict, Verdict::to_inside) << "RFC 4787 REQ-8: the address is enough";
  for (std::uint32_t i = 0; i < 500; ++i) {
    Bytes q = udp_packet({spoofed(i), mapped}, 999, port);
    EXPECT_EQ(in(q).reason, DropReason::filtered);
  }
  advance_s(301);  // every session expires; so do the index entries
  EXPECT_EQ(engine->active_sessions(), 0u);
  Bytes late = udp_packet({server, mapped}, 9999, port);
  EXPECT_NE(in(late).verdict, Verdict::to_inside);
}


// Found by fuzz_ops (tests/fuzz/regressions/ops-held-mapping-freed-twice-after-reload):
// a mapping reused during its port hold leaves a stale held-ring entry; a
// reload shortening port_reuse_hold gave the new hold the same deadline, and
// both entries freed the mapping (its slot twice in the free list).
TEST_F(Abuse, ReloadShorteningThePortHoldCannotFreeAMappingTwice) {
  Bytes echo = icmp_echo({sub_a, server}, 8, 1, 1);
  ASSERT_EQ(out(echo).verdict, Verdict::to_outside);
  advance_s(90);  // the session expired at 60 s; the mapping is held until 180 s
  Bytes again = icmp_echo({sub_a, server}, 8, 1, 2);
  ASSERT_EQ(out(again).verdict, Verdict::to_outside);
  NatConfig shorter = abuse_config();
  shorter.timeouts.port_reuse_hold = 30;
  ASSERT_TRUE(Engine::reconfigure_problems(abuse_config(), shorter).empty());
  checked_reconfigure(*engine, shorter);
  advance_s(110);  // expires at 150 s, held until 150 + 30 = 180 s, the stale entry's deadline too
  EXPECT_EQ(engine->active_mappings(), 2u) << "only the two static mappings remain";
}

}  // namespace
}  // namespace passgate::nat
