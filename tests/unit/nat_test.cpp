// NAT engine behaviour, each test named after the RFC requirement it covers.
// Every translated packet is checked by full checksum recomputation
// (checksum_problems), independent of the engine's incremental updates.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "nat/engine.hpp"
#include "nat/reload_plan.hpp"
#include "packet/headers.hpp"
#include "support/checked_engine.hpp"
#include "support/packet_builder.hpp"

namespace passgate::nat {
namespace {

using namespace passgate::testing;
using packet::ip_proto::tcp;
using stats::NatCounter;
namespace flag = packet::tcp_flag;

const be32 sub_a = ipv4(100, 64, 0, 10);
const be32 sub_b = ipv4(100, 64, 0, 11);
const be32 server = ipv4(203, 0, 113, 9);
const be32 server2 = ipv4(203, 0, 113, 77);
const be32 router = ipv4(192, 0, 2, 254);

NatConfig base_config() {
  NatConfig c;
  PoolConfig p;
  p.name = "cgn";
  p.subscribers.push_back({ipv4(100, 64, 0, 0), 10});
  p.public_addresses.push_back({ipv4(198, 51, 100, 1), ipv4(198, 51, 100, 2)});
  p.public_addresses.push_back({ipv4(198, 51, 100, 9), ipv4(198, 51, 100, 9)});  // non-contiguous
  p.port_min = 1024;
  p.port_max = 65535;
  p.block_size = 256;
  p.max_blocks_per_subscriber = 4;
  p.max_sessions_per_subscriber = 2000;
  c.pools.push_back(p);
  c.max_sessions = 1 << 14;
  c.max_subscribers = 1024;
  c.random_seed = 42;
  return c;
}

class Nat : public ::testing::Test {
 protected:
  void make(const NatConfig& c) {
    std::vector<std::string> errors;
    engine = Engine::create(c, &errors);
    ASSERT_TRUE(engine) << (errors.empty() ? "" : errors.front());
  }
  void SetUp() override { make(base_config()); }

  Result out(Bytes& p) { return run(Direction::outbound, p); }
  Result in(Bytes& p) { return run(Direction::inbound, p); }
  Result run(Direction d, Bytes& p) {
    const Result r = checked_process(*engine, d, p, now_ms);
    if (r.verdict == Verdict::to_outside || r.verdict == Verdict::to_inside) {
      EXPECT_EQ(checksum_problems(p), "") << "after translation";
    }
    return r;
  }
  void advance_s(std::uint64_t seconds) {
    now_ms += seconds * 1000;
    checked_expire(*engine, now_ms, 1u << 30);
  }
  // Sends UDP outbound and returns the translated packet.
  Bytes udp_out(be32 src, std::uint16_t sport, be32 dst, std::uint16_t dport) {
    Bytes p = udp_packet({src, dst}, sport, dport);
    const Result r = out(p);
    EXPECT_EQ(r.verdict, Verdict::to_outside) << stats::drop_reason_name(r.reason);
    return p;
  }
  std::uint64_t drops(DropReason r) const { return engine->counters().get(r); }
  std::uint64_t count(NatCounter c) const { return engine->counters().get(c); }

  std::unique_ptr<Engine> engine;
  std::uint64_t now_ms = 1'000'000;
};

TEST_F(Nat, Rfc4787Req1EndpointIndependentMappingUdp) {
  const Bytes a = udp_out(sub_a, 4000, server, 53);
  const Bytes b = udp_out(sub_a, 4000, server2, 5353);
  EXPECT_EQ(ip_src(a), ip_src(b));
  EXPECT_EQ(l4_sport(a), l4_sport(b));
  EXPECT_NE(ip_src(a), sub_a);
  EXPECT_EQ(engine->active_sessions(), 2u);
  EXPECT_EQ(engine->active_mappings(), 1u);
}

TEST_F(Nat, Rfc5382Req1EndpointIndependentMappingTcp) {
  Bytes s1 = tcp_packet({sub_a, server}, 40000, 443, flag::syn);
  Bytes s2 = tcp_packet({sub_a, server2}, 40000, 80, flag::syn);
  ASSERT_EQ(out(s1).verdict, Verdict::to_outside);
  ASSERT_EQ(out(s2).verdict, Verdict::to_outside);
  EXPECT_EQ(l4_sport(s1), l4_sport(s2));
  EXPECT_EQ(ip_src(s1), ip_src(s2));
}

TEST_F(Nat, Rfc4787Req3NoPortOverloadingAcrossSubscribers) {
  std::set<std::pair<std::uint32_t, std::uint16_t>> seen;
  for (int s = 0; s < 50; ++s)
    for (int port = 0; port < 20; ++port) {
      const Bytes p = udp_out(ipv4(100, 64, 1, static_cast<std::uint8_t>(s)), static_cast<std::uint16_t>(5000 + port),
                              server, 53);
      EXPECT_TRUE(seen.insert({ip_src(p).raw, l4_sport(p)}).second) << "public endpoint reused";
    }
}

TEST_F(Nat, Rfc6888Req2PairedPoolingEveryProtocolOneAddress) {
  for (int s = 0; s < 40; ++s) {
    const be32 sub = ipv4(100, 64, 2, static_cast<std::uint8_t>(s));
    const Bytes u = udp_out(sub, 1000, server, 53);
    Bytes t = tcp_packet({sub, server2}, 2000, 443, flag::syn);
    ASSERT_EQ(out(t).verdict, Verdict::to_outside);
    Bytes i = icmp_echo({sub, server}, packet::icmp_type::echo_request, 7, 1);
    ASSERT_EQ(out(i).verdict, Verdict::to_outside);
    EXPECT_EQ(ip_src(u), ip_src(t));
    EXPECT_EQ(ip_src(u), ip_src(i));
    EXPECT_EQ(engine->subscriber_public_address(sub), ip_src(u));
  }
}

TEST_F(Nat, Rfc6888Req3NonContiguousPoolUsesEveryRange) {
  std::set<std::uint32_t> addresses;
  for (int s = 0; s < 64; ++s)
    addresses.insert(ip_src(udp_out(ipv4(100, 64, 3, static_cast<std::uint8_t>(s)), 1000, server, 53)).host());
  EXPECT_TRUE(addresses.count(ipv4(198, 51, 100, 9).host()));
  EXPECT_TRUE(addresses.count(ipv4(198, 51, 100, 1).host()));
  for (std::uint32_t a : addresses)
    EXPECT_TRUE(a == ipv4(198, 51, 100, 1).host() || a == ipv4(198, 51, 100, 2).host() ||
                a == ipv4(198, 51, 100, 9).host());
}

TEST_F(Nat, Rfc4787Req8EndpointIndependentFilteringAdmitsAnyRemote) {
  const Bytes o = udp_out(sub_a, 4000, server, 53);
  Bytes from_other = udp_packet({server2, ip_src(o)}, 9999, l4_sport(o));
  const Result r = in(from_other);
  ASSERT_EQ(r.verdict, Verdict::to_inside) << stats::drop_reason_name(r.reason);
  EXPECT_EQ(ip_dst(from_other), sub_a);
  EXPECT_EQ(l4_dport(from_other), 4000);
  EXPECT_EQ(count(NatCounter::sessions_created_inbound), 1u);
}

TEST_F(Nat, Rfc4787Req8AddressDependentFiltering) {
  NatConfig c = base_config();
  c.pools[0].filtering = Filtering::address_dependent;
  make(c);
  const Bytes o = udp_out(sub_a, 4000, server, 53);
  Bytes same_addr_other_port = udp_packet({server, ip_src(o)}, 1234, l4_sport(o));
  EXPECT_EQ(in(same_addr_other_port).verdict, Verdict::to_inside);
  Bytes other_addr = udp_packet({server2, ip_src(o)}, 53, l4_sport(o));
  const std::uint32_t sessions = engine->active_sessions();
  EXPECT_EQ(in(other_addr).reason, DropReason::filtered);
  EXPECT_EQ(engine->active_sessions(), sessions) << "a refused packet must not create a session";
}

TEST_F(Nat, Rfc4787Req8AddressAndPortDependentFiltering) {
  NatConfig c = base_config();
  c.pools[0].filtering = Filtering::address_and_port_dependent;
  make(c);
  const Bytes o = udp_out(sub_a, 4000, server, 53);
  Bytes exact = udp_packet({server, ip_src(o)}, 53, l4_sport(o));
  EXPECT_EQ(in(exact).verdict, Verdict::to_inside);
  Bytes other_port = udp_packet({server, ip_src(o)}, 54, l4_sport(o));
  EXPECT_EQ(in(other_port).reason, DropReason::filtered);
  EXPECT_EQ(drops(DropReason::filtered), 1u);
}

TEST_F(Nat, Rfc4787Req5UdpTimeoutDefaultFiveMinutesRefreshedOutbound) {
  udp_out(sub_a, 4000, server, 53);
  advance_s(299);
  EXPECT_EQ(engine->active_sessions(), 1u);
  udp_out(sub_a, 4000, server, 53);  // REQ-6: outbound refreshes
  advance_s(299);
  EXPECT_EQ(engine->active_sessions(), 1u);
  advance_s(2);
  EXPECT_EQ(engine->active_sessions(), 0u);
  EXPECT_EQ(count(NatCounter::sessions_expired), 1u);
}

TEST_F(Nat, Rfc4787Req5InboundFilteredPacketsDoNotRefresh) {
  NatConfig c = base_config();
  c.pools[0].filtering = Filtering::address_and_port_dependent;
  make(c);
  const Bytes o = udp_out(sub_a, 4000, server, 53);
  for (int i = 0; i < 5; ++i) {
    advance_s(100);
    Bytes refused = udp_packet({server2, ip_src(o)}, 53, l4_sport(o));
    EXPECT_EQ(in(refused).verdict, Verdict::drop);
  }
  EXPECT_EQ(engine->active_sessions(), 0u);
}

TEST_F(Nat, Rfc5382Req5TcpEstablishedAndTransitoryTimeouts) {
  Bytes syn = tcp_packet({sub_a, server}, 40000, 443, flag::syn);
  ASSERT_EQ(out(syn).verdict, Verdict::to_outside);
  const be32 pub = ip_src(syn);
  const std::uint16_t pport = l4_sport(syn);
  // Before the handshake completes the session is transitory (4 min).
  Bytes synack = tcp_packet({server, pub}, 443, pport, flag::syn | flag::ack);
  ASSERT_EQ(in(synack).verdict, Verdict::to_inside);
  const Session* s = engine->find_session_in(Proto::tcp, sub_a, be16::from_host(40000), server, be16::from_host(443));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->tcp_state, TcpState::established);
  advance_s(7439);
  EXPECT_EQ(engine->active_sessions(), 1u) << "established TCP lasts at least 2 h 4 min";
  advance_s(2);
  EXPECT_EQ(engine->active_sessions(), 0u);
}

TEST_F(Nat, Rfc5382Req5UnansweredSynIsTransitory) {
  Bytes syn = tcp_packet({sub_a, server}, 40001, 443, flag::syn);
  ASSERT_EQ(out(syn).verdict, Verdict::to_outside);
  advance_s(239);
  EXPECT_EQ(engine->active_sessions(), 1u);
  advance_s(2);
  EXPECT_EQ(engine->active_sessions(), 0u);
}

TEST_F(Nat, Rfc7857RstMovesToTransitoryInsteadOfDeleting) {
  Bytes syn = tcp_packet({sub_a, server}, 40000, 443, flag::syn);
  out(syn);
  Bytes synack = tcp_packet({server, ip_src(syn)}, 443, l4_sport(syn), flag::syn | flag::ack);
  in(synack);
  advance_s(1000);
  Bytes rst = tcp_packet({server, ip_src(syn)}, 443, l4_sport(syn), flag::rst);
  ASSERT_EQ(in(rst).verdict, Verdict::to_inside);
  EXPECT_EQ(engine->active_sessions(), 1u) << "RST must not delete at once";
  EXPECT_EQ(count(NatCounter::tcp_resets), 1u);
  // The RST did not refresh: the transitory timeout runs from the last
  // non-RST packet, 1000 s ago, so the session goes at the next expiry.
  advance_s(1);
  EXPECT_EQ(engine->active_sessions(), 0u);
}

TEST_F(Nat, Rfc7857FinBothWaysIsTransitory) {
  Bytes syn = tcp_packet({sub_a, server}, 40000, 443, flag::syn);
  out(syn);
  Bytes synack = tcp_packet({server, ip_src(syn)}, 443, l4_sport(syn), flag::syn | flag::ack);
  in(synack);
  Bytes fin_out = tcp_packet({sub_a, server}, 40000, 443, flag::fin | flag::ack);
  out(fin_out);
  Bytes fin_in = tcp_packet({server, ip_src(syn)}, 443, l4_sport(syn), flag::fin | flag::ack);
  in(fin_in);
  const Session* s = engine->find_session_in(Proto::tcp, sub_a, be16::from_host(40000), server, be16::from_host(443));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->tcp_state, TcpState::fin_both);
  advance_s(241);
  EXPECT_EQ(engine->active_sessions(), 0u);
}

TEST_F(Nat, Rfc5382Req2SimultaneousOpen) {
  Bytes syn = tcp_packet({sub_a, server}, 40000, 5000, flag::syn);
  out(syn);
  Bytes peer_syn = tcp_packet({server, ip_src(syn)}, 5000, l4_sport(syn), flag::syn);
  ASSERT_EQ(in(peer_syn).verdict, Verdict::to_inside);
  const Session* s = engine->find_session_in(Proto::tcp, sub_a, be16::from_host(40000), server, be16::from_host(5000));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->tcp_state, TcpState::established);
}

TEST_F(Nat, Rfc6146TcpWithoutSessionMustStartWithSyn) {
  Bytes ack = tcp_packet({sub_a, server}, 40000, 443, flag::ack);
  EXPECT_EQ(out(ack).reason, DropReason::tcp_not_syn);
  EXPECT_EQ(engine->active_sessions(), 0u);
}

TEST_F(Nat, Rfc5508IcmpEchoIdentifierMappingPerSubscriber) {
  Bytes a = icmp_echo({sub_a, server}, packet::icmp_type::echo_request, 77, 1);
  Bytes b = icmp_echo({sub_b, server}, packet::icmp_type::echo_request, 77, 1);
  ASSERT_EQ(out(a).verdict, Verdict::to_outside);
  ASSERT_EQ(out(b).verdict, Verdict::to_outside);
  EXPECT_FALSE(ip_src(a) == ip_src(b) && l4_sport(a) == l4_sport(b));
  Bytes reply = icmp_echo({server, ip_src(b)}, packet::icmp_type::echo_reply, l4_sport(b), 1);
  ASSERT_EQ(in(reply).verdict, Verdict::to_inside);
  EXPECT_EQ(ip_dst(reply), sub_b);
  EXPECT_EQ(l4_sport(reply), 77);
}

TEST_F(Nat, Rfc5508IcmpQueryTimeoutSixtySeconds) {
  Bytes a = icmp_echo({sub_a, server}, packet::icmp_type::echo_request, 1, 1);
  out(a);
  advance_s(59);
  EXPECT_EQ(engine->active_sessions(), 1u);
  advance_s(2);
  EXPECT_EQ(engine->active_sessions(), 0u);
}

TEST_F(Nat, Rfc5508InboundEchoRequestWithoutSessionDropped) {
  const Bytes o = udp_out(sub_a, 4000, server, 53);
  Bytes ping = icmp_echo({server, ip_src(o)}, packet::icmp_type::echo_request, 5, 1);
  EXPECT_EQ(in(ping).reason, DropReason::icmp_query_inbound_no_session);
}

// RFC 5508 section 3.2 / RFC 5382 REQ-9: an inbound error quoting our
// translated packet is translated back, outer and embedded, and does not
// refresh the session (RFC 7857 2.3, RFC 4787 REQ-12).
TEST_F(Nat, Rfc5508InboundIcmpErrorTranslatedBackUdp) {
  const Bytes o = udp_out(sub_a, 4000, server, 53);
  Bytes err = icmp_error({router, ip_src(o)}, packet::icmp_type::time_exceeded, 0, o);
  advance_s(200);
  ASSERT_EQ(in(err).verdict, Verdict::to_inside);
  EXPECT_EQ(ip_dst(err), sub_a);
  // Embedded packet: source restored to the subscriber's own address and port.
  const Bytes inner(err.begin() + 28, err.end());
  EXPECT_EQ(ip_src(inner), sub_a);
  EXPECT_EQ(l4_sport(inner), 4000);
  EXPECT_EQ(ip_dst(inner), server);
  EXPECT_EQ(count(NatCounter::icmp_errors_translated), 1u);
  advance_s(101);
  EXPECT_EQ(engine->active_sessions(), 0u) << "an ICMP error must not refresh the session";
}

TEST_F(Nat, Rfc5508InboundIcmpErrorTcpQuotedPartially) {
  Bytes syn = tcp_packet({sub_a, server}, 40000, 443, flag::syn);
  out(syn);
  // Only the IPv4 header plus 8 bytes of TCP quoted (RFC 792 minimum): the
  // TCP checksum is not in the quote and must be left alone.
  Bytes err = icmp_error({router, ip_src(syn)}, packet::icmp_type::dest_unreachable, 1, syn, 28);
  ASSERT_EQ(in(err).verdict, Verdict::to_inside);
  const Bytes inner(err.begin() + 28, err.end());
  EXPECT_EQ(ip_src(inner), sub_a);
  EXPECT_EQ(l4_sport(inner), 40000);
}

TEST_F(Nat, Rfc5508InboundIcmpErrorAboutEcho) {
  Bytes ping = icmp_echo({sub_a, server}, packet::icmp_type::echo_request, 300, 1);
  out(ping);
  Bytes err = icmp_error({router, ip_src(ping)}, packet::icmp_type::dest_unreachable, 1, ping);
  ASSERT_EQ(in(err).verdict, Verdict::to_inside);
  const Bytes inner(err.begin() + 28, err.end());
  EXPECT_EQ(ip_src(inner), sub_a);
  EXPECT_EQ(l4_sport(inner), 300);
}

TEST_F(Nat, Rfc5508InboundIcmpErrorWithoutSessionDropped) {
  const Bytes o = udp_out(sub_a, 4000, server, 53);
  Bytes forged = o;
  forged[ihl(forged)] ^= 0x01;  // another source port: no such session
  forged = udp_packet({ip_src(o), server}, static_cast<std::uint16_t>(l4_sport(o) ^ 1), 53);
  Bytes err = icmp_error({router, ip_src(o)}, packet::icmp_type::dest_unreachable, 3, forged);
  EXPECT_EQ(in(err).reason, DropReason::icmp_error_no_session);
  EXPECT_EQ(engine->active_sessions(), 1u);
}

TEST_F(Nat, Rfc5508OutboundIcmpErrorTranslated) {
  const Bytes o = udp_out(sub_a, 4000, server, 53);
  Bytes reply = udp_packet({server, ip_src(o)}, 53, l4_sport(o));
  ASSERT_EQ(in(reply).verdict, Verdict::to_inside);
  // The subscriber answers with port unreachable quoting what it received.
  Bytes err = icmp_error({sub_a, server}, packet::icmp_type::dest_unreachable, 3, reply);
  ASSERT_EQ(out(err).verdict, Verdict::to_outside);
  EXPECT_EQ(ip_src(err), ip_src(o));
  const Bytes inner(err.begin() + 28, err.end());
  EXPECT_EQ(ip_dst(inner), ip_src(o));
  EXPECT_EQ(l4_dport(inner), l4_sport(o));
}

TEST_F(Nat, Rfc4787Req9HairpinningUsesExternalAddresses) {
  const Bytes b_out = udp_out(sub_b, 6000, server, 53);  // B's mapping
  Bytes a_to_b = udp_packet({sub_a, ip_src(b_out)}, 5000, l4_sport(b_out));
  const Result r = out(a_to_b);
  ASSERT_EQ(r.verdict, Verdict::to_inside) << stats::drop_reason_name(r.reason);
  EXPECT_EQ(ip_dst(a_to_b), sub_b);
  EXPECT_EQ(l4_dport(a_to_b), 6000);
  const Mapping* ma = engine->find_mapping(Proto::udp, sub_a, be16::from_host(5000));
  ASSERT_NE(ma, nullptr);
  EXPECT_EQ(ip_src(a_to_b), ma->out_addr) << "B must see A's public address";
  EXPECT_EQ(l4_sport(a_to_b), ma->out_port.host());
  EXPECT_EQ(count(NatCounter::hairpinned), 1u);
  // And B's answer goes back the same way.
  Bytes b_to_a = udp_packet({sub_b, ma->out_addr}, 6000, ma->out_port.host());
  ASSERT_EQ(out(b_to_a).verdict, Verdict::to_inside);
  EXPECT_EQ(ip_dst(b_to_a), sub_a);
  EXPECT_EQ(l4_dport(b_to_a), 5000);
  EXPECT_EQ(ip_src(b_to_a), ip_src(b_out));
}

TEST_F(Nat, Rfc5382Req8HairpinningTcp) {
  Bytes b_syn = tcp_packet({sub_b, server}, 6000, 443, flag::syn);
  out(b_syn);
  // B listens through its mapping; EIF lets A's SYN in.
  Bytes a_syn = tcp_packet({sub_a, ip_src(b_syn)}, 5000, l4_sport(b_syn), flag::syn);
  ASSERT_EQ(out(a_syn).verdict, Verdict::to_inside);
  EXPECT_EQ(ip_dst(a_syn), sub_b);
}

TEST_F(Nat, StaticMappingReachableFromOutsideAndUsedOutbound) {
  NatConfig c = base_config();
  c.static_mappings.push_back({tcp, ipv4(100, 64, 9, 9), be16::from_host(8080), ipv4(198, 51, 100, 200),
                               be16::from_host(80)});
  make(c);
  Bytes syn = tcp_packet({server, ipv4(198, 51, 100, 200)}, 33333, 80, flag::syn);
  ASSERT_EQ(in(syn).verdict, Verdict::to_inside);
  EXPECT_EQ(ip_dst(syn), ipv4(100, 64, 9, 9));
  EXPECT_EQ(l4_dport(syn), 8080);
  Bytes synack = tcp_packet({ipv4(100, 64, 9, 9), server}, 8080, 33333, flag::syn | flag::ack);
  ASSERT_EQ(out(synack).verdict, Verdict::to_outside);
  EXPECT_EQ(ip_src(synack), ipv4(198, 51, 100, 200));
  EXPECT_EQ(l4_sport(synack), 80);
  advance_s(8000);
  EXPECT_EQ(engine->active_mappings(), 1u) << "static mappings never expire";
}

TEST_F(Nat, StaticMappingInsideDynamicRangeIsAConfigError) {
  NatConfig c = base_config();
  c.static_mappings.push_back({tcp, ipv4(100, 64, 9, 9), be16::from_host(8080), ipv4(198, 51, 100, 1),
                               be16::from_host(2000)});
  std::vector<std::string> errors;
  EXPECT_EQ(Engine::create(c, &errors), nullptr);
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors[0].find("dynamic port range"), std::string::npos);
}

TEST_F(Nat, Rfc6888Req13PortsComeFromBlocksOfTheConfiguredSize) {
  std::set<unsigned> blocks;
  for (int i = 0; i < 300; ++i) {
    const Bytes p = udp_out(sub_a, static_cast<std::uint16_t>(10000 + i), server, 53);
    blocks.insert((l4_sport(p) - 1024u) / 256u);
  }
  // 300 ports need two blocks of 256, and no more.
  EXPECT_EQ(blocks.size(), 2u);
  EXPECT_EQ(engine->blocks_in_use(), 2u);
  EXPECT_EQ(count(NatCounter::blocks_allocated), 2u);
  NatEvent e{};
  int allocated_events = 0;
  while (engine->events().pop(e))
    if (e.type == NatEvent::Type::block_allocated) {
      ++allocated_events;
      EXPECT_EQ(e.subscriber, sub_a);
      EXPECT_EQ(e.port_last - e.port_first, 255);
      EXPECT_EQ((e.port_first - 1024) % 256, 0);
    }
  EXPECT_EQ(allocated_events, 2);
}

TEST_F(Nat, Rfc6056PortsUnpredictableButDeterministicForASeed) {
  std::vector<std::uint16_t> first;
  for (int i = 0; i < 16; ++i) first.push_back(l4_sport(udp_out(sub_a, static_cast<std::uint16_t>(7000 + i), server, 53)));
  int sequential = 0;
  for (std::size_t i = 1; i < first.size(); ++i) sequential += first[i] == first[i - 1] + 1;
  EXPECT_LT(sequential, 4) << "ports look sequential";
  make(base_config());  // same seed: same choices (RFC 4787 REQ-11)
  for (int i = 0; i < 16; ++i)
    EXPECT_EQ(l4_sport(udp_out(sub_a, static_cast<std::uint16_t>(7000 + i), server, 53)), first[i]);
  NatConfig other = base_config();
  other.random_seed = 7;
  make(other);
  int same = 0;
  for (int i = 0; i < 16; ++i) same += l4_sport(udp_out(sub_a, static_cast<std::uint16_t>(7000 + i), server, 53)) == first[i];
  EXPECT_LT(same, 4);
}

TEST_F(Nat, Rfc6888Req4PortLimitDropsNewFlowsNeverEvicts) {
  NatConfig c = base_config();
  c.pools[0].block_size = 64;
  c.pools[0].max_blocks_per_subscriber = 2;
  make(c);
  std::vector<Bytes> first;
  for (int i = 0; i < 128; ++i) first.push_back(udp_out(sub_a, static_cast<std::uint16_t>(20000 + i), server, 53));
  Bytes extra = udp_packet({sub_a, server}, 30000, 53);
  EXPECT_EQ(out(extra).reason, DropReason::ports_exhausted);
  EXPECT_EQ(drops(DropReason::ports_exhausted), 1u);
  // Every existing mapping still works, both ways.
  for (int i = 0; i < 128; ++i) {
    Bytes again = udp_packet({sub_a, server}, static_cast<std::uint16_t>(20000 + i), 53);
    ASSERT_EQ(out(again).verdict, Verdict::to_outside);
    EXPECT_EQ(l4_sport(again), l4_sport(first[i]));
  }
  // Another subscriber is not affected.
  udp_out(sub_b, 20000, server, 53);
  bool logged = false;
  NatEvent e{};
  while (engine->events().pop(e)) logged |= e.type == NatEvent::Type::ports_exhausted && e.subscriber == sub_a;
  EXPECT_TRUE(logged) << "RFC 6888 REQ-11: exhaustion is logged";
}

TEST_F(Nat, Rfc6888Req5SessionLimitPerSubscriber) {
  NatConfig c = base_config();
  c.pools[0].max_sessions_per_subscriber = 10;
  make(c);
  for (int i = 0; i < 10; ++i) udp_out(sub_a, 4000, ipv4(203, 0, 113, static_cast<std::uint8_t>(i)), 53);
  Bytes eleventh = udp_packet({sub_a, ipv4(203, 0, 113, 200)}, 4000, 53);
  EXPECT_EQ(out(eleventh).reason, DropReason::subscriber_session_limit);
  udp_out(sub_b, 4000, server, 53);
}

TEST_F(Nat, Rfc6888Req11SessionTableFullDropsWithoutEviction) {
  NatConfig c = base_config();
  c.max_sessions = 32;
  make(c);
  for (int i = 0; i < 32; ++i) udp_out(ipv4(100, 64, 4, static_cast<std::uint8_t>(i)), 1000, server, 53);
  Bytes more = udp_packet({sub_a, server}, 1000, 53);
  EXPECT_EQ(out(more).reason, DropReason::session_table_full);
  EXPECT_EQ(engine->active_sessions(), 32u);
}

TEST_F(Nat, Rfc6888Req8PortHeldBeforeReuseAndBlocksReturned) {
  const Bytes o = udp_out(sub_a, 4000, server, 53);
  advance_s(301);
  EXPECT_EQ(engine->active_sessions(), 0u);
  EXPECT_EQ(engine->active_mappings(), 1u) << "port held after the last session";
  // The same inside endpoint within the hold gets its port back.
  const Bytes again = udp_out(sub_a, 4000, server2, 53);
  EXPECT_EQ(l4_sport(again), l4_sport(o));
  advance_s(301 + 121);
  EXPECT_EQ(engine->active_mappings(), 0u);
  EXPECT_EQ(engine->blocks_in_use(), 0u);
  EXPECT_EQ(engine->active_subscribers(), 0u);
  EXPECT_EQ(count(NatCounter::blocks_released), 1u);
}

TEST_F(Nat, InboundToUnknownMappingDropped) {
  Bytes p = udp_packet({server, ipv4(198, 51, 100, 1)}, 53, 4000);
  EXPECT_EQ(in(p).reason, DropReason::no_mapping);
  EXPECT_EQ(engine->active_sessions(), 0u);
}

TEST_F(Nat, SourceOutsideEveryPoolDropped) {
  Bytes p = udp_packet({ipv4(10, 0, 0, 1), server}, 1000, 53);
  EXPECT_EQ(out(p).reason, DropReason::no_pool);
  EXPECT_EQ(drops(DropReason::no_pool), 1u);
}

TEST_F(Nat, MalformedCountedWithItsReason) {
  Bytes p = udp_packet({sub_a, server}, 1000, 53);
  p[10] ^= 0xff;  // header checksum
  EXPECT_EQ(out(p).reason, DropReason::malformed);
  EXPECT_EQ(engine->counters().get(packet::ParseError::bad_ip_checksum), 1u);
  Bytes empty;
  EXPECT_EQ(out(empty).reason, DropReason::malformed);
}

TEST_F(Nat, UnsupportedProtocolsCountedUntilPassthroughHandlesThem) {
  IpFields f{sub_a, server};
  Bytes sctp = udp_packet(f, 1, 2);
  sctp[9] = 132;  // SCTP
  sctp[10] = sctp[11] = 0;
  const auto sum = packet::internet_checksum(std::span<const std::uint8_t>(sctp.data(), 20));
  std::memcpy(&sctp[10], &sum.raw, 2);
  EXPECT_EQ(out(sctp).reason, DropReason::unsupported_protocol);
  EXPECT_EQ(drops(DropReason::unsupported_protocol), 1u);
}

TEST_F(Nat, UdpZeroChecksumStaysZero) {
  Bytes p = udp_packet({sub_a, server}, 1000, 53, Bytes(20, 1), /*zero_udp_checksum=*/true);
  ASSERT_EQ(out(p).verdict, Verdict::to_outside);
  EXPECT_EQ(p[ihl(p) + 6], 0);
  EXPECT_EQ(p[ihl(p) + 7], 0);
}

TEST_F(Nat, IpOptionsPreserved) {
  IpFields f{sub_a, server};
  f.options = {0x01, 0x01, 0x01, 0x00};  // NOPs and end of list
  Bytes p = udp_packet(f, 1000, 53);
  ASSERT_EQ(out(p).verdict, Verdict::to_outside);
  EXPECT_EQ(ihl(p), 24u);
  EXPECT_NE(ip_src(p), sub_a);
}

TEST_F(Nat, Rfc4787Req14FragmentsInOrder) {
  Bytes whole = udp_packet({sub_a, server}, 1000, 53, Bytes(1000, 7));
  std::vector<Bytes> frags = fragment(whole, 400);
  ASSERT_EQ(frags.size(), 3u);
  for (Bytes& f : frags) ASSERT_EQ(out(f).verdict, Verdict::to_outside);
  const be32 pub = ip_src(frags[0]);
  for (const Bytes& f : frags) EXPECT_EQ(ip_src(f), pub);
  EXPECT_EQ(count(NatCounter::fragments_translated), 2u);
  // Reassembled, the datagram's UDP checksum is right.
  Bytes joined(frags[0].begin(), frags[0].begin() + 20);
  for (const Bytes& f : frags) joined.insert(joined.end(), f.begin() + 20, f.end());
  joined[2] = static_cast<std::uint8_t>(joined.size() >> 8);
  joined[3] = static_cast<std::uint8_t>(joined.size());
  joined[6] = joined[7] = 0;
  joined[10] = joined[11] = 0;
  const auto sum = packet::internet_checksum(std::span<const std::uint8_t>(joined.data(), 20));
  std::memcpy(&joined[10], &sum.raw, 2);
  EXPECT_EQ(checksum_problems(joined), "");
}

TEST_F(Nat, Rfc4787Req14FragmentsOutOfOrderHeldThenReleased) {
  const Bytes o = udp_out(sub_a, 1000, server, 53);
  Bytes whole = udp_packet({server, ip_src(o)}, 53, l4_sport(o), Bytes(1000, 9));
  std::vector<Bytes> frags = fragment(whole, 400);
  EXPECT_EQ(in(frags[2]).verdict, Verdict::held);
  EXPECT_EQ(in(frags[1]).verdict, Verdict::held);
  EXPECT_EQ(count(NatCounter::fragments_held), 2u);
  EXPECT_FALSE(engine->has_released());
  ASSERT_EQ(in(frags[0]).verdict, Verdict::to_inside);
  std::vector<Bytes> released;
  engine->drain_released([&](std::span<std::uint8_t> bytes, Verdict v) {
    EXPECT_EQ(v, Verdict::to_inside);
    released.emplace_back(bytes.begin(), bytes.end());
  });
  ASSERT_EQ(released.size(), 2u);
  for (const Bytes& r : released) {
    EXPECT_EQ(ip_dst(r), sub_a);
    EXPECT_EQ(checksum_problems(r), "");
  }
  EXPECT_EQ(count(NatCounter::fragments_released), 2u);
}

TEST_F(Nat, Rfc4787Req14FragmentHoldIsBoundedAndTimesOut) {
  NatConfig c = base_config();
  c.fragment_hold_slots = 2;
  make(c);
  const Bytes o = udp_out(sub_a, 1000, server, 53);
  for (std::uint16_t id = 1; id <= 3; ++id) {
    IpFields f{server, ip_src(o)};
    f.id = id;
    f.fragment_offset_bytes = 400;
    Bytes later = udp_packet(f, 53, l4_sport(o), Bytes(100, 1));
    const Result r = in(later);
    if (id <= 2) EXPECT_EQ(r.verdict, Verdict::held);
    else EXPECT_EQ(r.reason, DropReason::fragment_hold_full);
  }
  now_ms += 2500;
  checked_expire(*engine, now_ms);
  EXPECT_EQ(drops(DropReason::fragment_timeout), 2u);
  IpFields f{server, ip_src(o)};
  f.id = 4;
  f.fragment_offset_bytes = 400;
  Bytes later = udp_packet(f, 53, l4_sport(o), Bytes(100, 1));
  EXPECT_EQ(in(later).verdict, Verdict::held) << "slots free again after the timeout";
}

TEST_F(Nat, Rfc4787Req14TinyFirstFragmentRejected) {
  IpFields f{sub_a, server};
  f.more_fragments = true;
  Bytes p = udp_packet(f, 1000, 53, Bytes(0));
  p.resize(24);
  p[2] = 0;
  p[3] = 24;
  p[10] = p[11] = 0;
  const auto sum = packet::internet_checksum(std::span<const std::uint8_t>(p.data(), 20));
  std::memcpy(&p[10], &sum.raw, 2);
  EXPECT_EQ(out(p).reason, DropReason::malformed);
  EXPECT_EQ(engine->counters().get(packet::ParseError::tiny_fragment), 1u);
}

TEST_F(Nat, BurstWithRepeatedNewFlowCreatesOneSession) {
  std::vector<Bytes> pkts(8, udp_packet({sub_a, server}, 1000, 53));
  std::vector<PacketRef> refs;
  for (Bytes& p : pkts) refs.push_back({p, {}});
  checked_burst(*engine, Direction::outbound, refs, now_ms);
  for (std::size_t i = 0; i < refs.size(); ++i) {
    EXPECT_EQ(refs[i].result.verdict, Verdict::to_outside);
    EXPECT_EQ(checksum_problems(pkts[i]), "");
    EXPECT_EQ(l4_sport(pkts[i]), l4_sport(pkts[0]));
  }
  EXPECT_EQ(engine->active_sessions(), 1u);
}

TEST_F(Nat, ManySessionsExpireWithoutLeaks) {
  for (int s = 0; s < 100; ++s)
    for (int port = 0; port < 30; ++port)
      udp_out(ipv4(100, 64, 5, static_cast<std::uint8_t>(s)), static_cast<std::uint16_t>(1000 + port),
              ipv4(203, 0, 113, static_cast<std::uint8_t>(port)), 53);
  EXPECT_EQ(engine->active_sessions(), 3000u);
  advance_s(301);
  advance_s(121);
  EXPECT_EQ(engine->active_sessions(), 0u);
  EXPECT_EQ(engine->active_mappings(), 0u);
  EXPECT_EQ(engine->active_subscribers(), 0u);
  EXPECT_EQ(engine->blocks_in_use(), 0u);
  EXPECT_EQ(count(NatCounter::sessions_created), count(NatCounter::sessions_expired));
}

// ---------------------------------------------------------------- reloads
// A reload swaps the policy under running sessions: nothing established is
// cut, removed pools, addresses and static mappings drain (README "Reload").

// A reply to a translated outbound UDP packet.
Bytes reply_to(const Bytes& translated) {
  return udp_packet({ip_dst(translated), ip_src(translated)}, l4_dport(translated), l4_sport(translated));
}

TEST_F(Nat, ReloadKeepsSessionsAndAppliesNewTimeouts) {
  const Bytes o = udp_out(sub_a, 4000, server, 53);
  NatConfig next = base_config();
  next.timeouts.udp = 150;
  ASSERT_TRUE(Engine::reconfigure_problems(base_config(), next).empty());
  checked_reconfigure(*engine, next);
  EXPECT_EQ(count(NatCounter::reloads_applied), 1u);
  Bytes r = reply_to(o);
  ASSERT_EQ(in(r).verdict, Verdict::to_inside) << "established session survives the reload";
  EXPECT_EQ(ip_dst(r), sub_a);
  // New sessions get the new timeout at once; existing ones at their next
  // timer check (a reload never walks every session: that would stall).
  udp_out(sub_b, 4000, server, 53);
  advance_s(151);
  EXPECT_EQ(engine->find_session_in(Proto::udp, sub_b, be16::from_host(4000), server, be16::from_host(53)), nullptr);
  EXPECT_NE(engine->find_session_in(Proto::udp, sub_a, be16::from_host(4000), server, be16::from_host(53)), nullptr);
  advance_s(150);
  EXPECT_EQ(engine->active_sessions(), 0u);
}

TEST_F(Nat, ReloadRemovedAddressDrainsThenSubscriberMoves) {
  NatConfig one = base_config();
  one.pools[0].public_addresses = {{ipv4(198, 51, 100, 1), ipv4(198, 51, 100, 1)}};
  make(one);
  const Bytes o = udp_out(sub_a, 4000, server, 53);
  ASSERT_EQ(ip_src(o), ipv4(198, 51, 100, 1));
  NatConfig moved = one;
  moved.pools[0].public_addresses = {{ipv4(198, 51, 100, 2), ipv4(198, 51, 100, 2)}};
  ASSERT_TRUE(Engine::reconfigure_problems(one, moved).empty());
  const ReconfigureResult rr = checked_reconfigure(*engine, moved);
  EXPECT_EQ(rr.addresses_added, 1u);
  EXPECT_EQ(rr.addresses_retired, 1u);

  Bytes r = reply_to(o);
  EXPECT_EQ(in(r).verdict, Verdict::to_inside) << "the removed address still carries its sessions";
  EXPECT_TRUE(engine->is_public_address(ipv4(198, 51, 100, 1))) << "ARP keeps answering while it drains";
  // Paired pooling holds: the draining subscriber keeps its address and block.
  EXPECT_EQ(ip_src(udp_out(sub_a, 4001, server2, 53)), ipv4(198, 51, 100, 1));
  EXPECT_EQ(ip_src(udp_out(sub_b, 4000, server, 53)), ipv4(198, 51, 100, 2)) << "new subscribers use the new address";
  auto usage = engine->pool_usage();
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].addresses, 1u);
  EXPECT_EQ(usage[0].addresses_draining, 1u);
  EXPECT_EQ(usage[0].subscribers, 2u);
  EXPECT_EQ(usage[0].blocks_in_use, 2u);

  advance_s(301);
  advance_s(121);
  usage = engine->pool_usage();
  EXPECT_EQ(usage[0].addresses_draining, 0u) << "drained once its sessions and held ports are gone";
  EXPECT_EQ(ip_src(udp_out(sub_a, 4000, server, 53)), ipv4(198, 51, 100, 2));
}

TEST_F(Nat, ReloadDrainingSubscriberGetsNoNewBlock) {
  NatConfig one = base_config();
  one.pools[0].public_addresses = {{ipv4(198, 51, 100, 1), ipv4(198, 51, 100, 1)}};
  one.pools[0].block_size = 64;
  make(one);
  for (std::uint16_t port = 0; port < 64; ++port) udp_out(sub_a, static_cast<std::uint16_t>(2000 + port), server, 53);
  NatConfig moved = one;
  moved.pools[0].public_addresses = {{ipv4(198, 51, 100, 2), ipv4(198, 51, 100, 2)}};
  checked_reconfigure(*engine, moved);
  Bytes p = udp_packet({sub_a, server}, 3000, 53);
  EXPECT_EQ(out(p).verdict, Verdict::drop);
  EXPECT_EQ(drops(DropReason::subscriber_draining), 1u);
}

TEST_F(Nat, ReloadRemovedPoolServesOnlyExistingState) {
  const Bytes o = udp_out(sub_a, 4000, server, 53);
  NatConfig next = base_config();
  next.pools[0].name = "other";
  next.pools[0].subscribers = {{ipv4(100, 65, 0, 0), 16}};
  next.pools[0].public_addresses = {{ipv4(198, 51, 100, 50), ipv4(198, 51, 100, 50)}};
  ASSERT_TRUE(Engine::reconfigure_problems(base_config(), next).empty());
  const ReconfigureResult rr = checked_reconfigure(*engine, next);
  EXPECT_EQ(rr.pools_added, 1u);
  EXPECT_EQ(rr.pools_retired, 1u);
  Bytes r = reply_to(o);
  EXPECT_EQ(in(r).verdict, Verdict::to_inside);
  Bytes fresh = udp_packet({sub_b, server}, 4000, 53);
  EXPECT_EQ(out(fresh).verdict, Verdict::drop) << "sub_b is in no pool any more";
  EXPECT_EQ(drops(DropReason::no_pool), 1u);
  EXPECT_EQ(ip_src(udp_out(ipv4(100, 65, 0, 1), 4000, server, 53)), ipv4(198, 51, 100, 50));
  EXPECT_EQ(engine->pool_usage().size(), 2u) << "the removed pool is reported while it drains";
  advance_s(301);
  advance_s(121);
  EXPECT_EQ(engine->pool_usage().size(), 1u);
}

TEST_F(Nat, ReloadStaticMappingsAddedAtOnceRemovedDrain) {
  const be32 host = ipv4(100, 64, 9, 9), pub = ipv4(198, 51, 100, 200);
  NatConfig with = base_config();
  with.static_mappings.push_back({tcp, host, be16::from_host(8080), pub, be16::from_host(80)});
  // Added by a reload: reachable at once.
  ASSERT_TRUE(Engine::reconfigure_problems(base_config(), with).empty());
  EXPECT_EQ(checked_reconfigure(*engine, with).static_added, 1u);
  Bytes syn = tcp_packet({server, pub}, 33333, 80, flag::syn);
  ASSERT_EQ(in(syn).verdict, Verdict::to_inside);
  EXPECT_TRUE(engine->is_public_address(pub));
  // Removed by a reload while a session uses it: the session keeps working.
  const ReconfigureResult rr = checked_reconfigure(*engine, base_config());
  EXPECT_EQ(rr.static_draining, 1u);
  Bytes synack = tcp_packet({host, server}, 8080, 33333, flag::syn | flag::ack);
  ASSERT_EQ(out(synack).verdict, Verdict::to_outside);
  EXPECT_EQ(ip_src(synack), pub);
  advance_s(7441);
  EXPECT_EQ(engine->active_mappings(), 0u) << "freed with its last session";
  Bytes late = tcp_packet({server2, pub}, 1111, 80, flag::syn);
  EXPECT_EQ(in(late).verdict, Verdict::drop);
  EXPECT_FALSE(engine->is_public_address(pub));
}

TEST_F(Nat, ReloadRefusesWhatARunningEngineCannotChange) {
  NatConfig next = base_config();
  next.max_sessions *= 2;
  next.pools[0].block_size = 512;
  next.pools[0].max_blocks_per_subscriber = 8;
  NatConfig second = base_config();
  second.pools[0].public_addresses = {{ipv4(198, 51, 100, 1), ipv4(198, 51, 100, 1)}};
  PoolConfig extra = base_config().pools[0];
  extra.name = "extra";
  extra.subscribers = {{ipv4(10, 0, 0, 0), 16}};
  extra.public_addresses = {{ipv4(198, 51, 100, 9), ipv4(198, 51, 100, 9)}};
  second.pools.push_back(extra);
  const auto problems = Engine::reconfigure_problems(base_config(), next);
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_NE(problems[0].find("max_sessions"), std::string::npos);
  EXPECT_NE(problems[1].find("max_blocks_per_subscriber"), std::string::npos);
  EXPECT_NE(problems[2].find("pool 'cgn'"), std::string::npos);
  const auto moved = Engine::reconfigure_problems(base_config(), second);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_NE(moved[0].find("belong to pool 'cgn'"), std::string::npos) << moved[0];
}

// Issue 11.3: an address a reload removed still carries port blocks (it
// drains); a second reload that puts it in another pool passes every check
// of the two policies, so the engine itself must say what still drains.
TEST_F(Nat, AddressMovedBetweenPoolsWhileDrainingIsRefused) {
  NatConfig one = base_config();
  one.pools[0].public_addresses = {{ipv4(198, 51, 100, 1), ipv4(198, 51, 100, 1)}};
  make(one);
  ASSERT_EQ(ip_src(udp_out(sub_a, 4000, server, 53)), ipv4(198, 51, 100, 1));
  NatConfig removed = one;  // .1 leaves pool cgn and drains
  removed.pools[0].public_addresses = {{ipv4(198, 51, 100, 2), ipv4(198, 51, 100, 2)}};
  ASSERT_TRUE(Engine::reconfigure_problems(one, removed, engine->draining_addresses()).empty());
  engine->reconfigure(removed);

  NatConfig moved = removed;  // and joins pool other while it drains
  PoolConfig other = removed.pools[0];
  other.name = "other";
  other.subscribers = {{ipv4(10, 0, 0, 0), 16}};
  other.public_addresses = {{ipv4(198, 51, 100, 1), ipv4(198, 51, 100, 1)}};
  moved.pools.push_back(other);
  const std::vector<DrainingAddress> draining = engine->draining_addresses(moved);
  ASSERT_EQ(draining.size(), 1u);
  EXPECT_EQ(draining[0].address, ipv4(198, 51, 100, 1));
  EXPECT_EQ(draining[0].pool, "cgn");
  EXPECT_EQ(draining[0].blocks_in_use, 1u);
  const auto problems = Engine::reconfigure_problems(removed, moved, draining);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("pool 'other': public address 198.51.100.1 still drains in pool 'cgn' (1 port block in use)"),
            std::string::npos)
      << problems[0];

  NatConfig back = removed;  // back into its own pool: allowed
  back.pools[0].public_addresses.push_back({ipv4(198, 51, 100, 1), ipv4(198, 51, 100, 1)});
  EXPECT_TRUE(Engine::reconfigure_problems(removed, back, draining).empty());

  advance_s(301);  // the session expires
  advance_s(121);  // and its port's hold: the block is released
  EXPECT_TRUE(engine->draining_addresses().empty());
  ASSERT_TRUE(Engine::reconfigure_problems(removed, moved, engine->draining_addresses()).empty()) << "once drained";
  engine->reconfigure(moved);
  EXPECT_EQ(ip_src(udp_out(ipv4(10, 0, 0, 1), 4000, server, 53)), ipv4(198, 51, 100, 1));
  EXPECT_EQ(engine->check_invariants(), "");
}

// A /16 pool: 65,536 public addresses, 1M port blocks.
NatConfig with_slash16(NatConfig c) {
  PoolConfig wide;
  wide.name = "wide";
  wide.subscribers = {{ipv4(10, 0, 0, 0), 8}};
  wide.public_addresses = {{ipv4(198, 18, 0, 0), ipv4(198, 18, 255, 255)}};
  wide.block_size = 4096;
  c.pools.push_back(wide);
  return c;
}

// Issue 11.3: the worker's part of a reload is O(what changed): counted in
// records and pointers written (timing belongs to bench/reload_bench.cpp).
TEST_F(Nat, ReloadWorkOnWorkerIsProportionalToChange) {
  const NatConfig big = with_slash16(base_config());
  make(big);
  udp_out(sub_a, 4000, server, 53);
  const auto apply = [&](const NatConfig& next) {
    const std::unique_ptr<ReloadPlan> plan = engine->plan_reload(next);
    const ReconfigureResult r = engine->apply(*plan);
    EXPECT_TRUE(r.applied);
    EXPECT_EQ(engine->check_invariants(), "");
    return r;
  };

  NatConfig timeouts = big;  // nothing structural
  timeouts.timeouts.udp = 200;
  EXPECT_LE(apply(timeouts).worker_operations, 4u) << "one operation a pool";

  NatConfig one_static = timeouts;
  one_static.static_mappings.push_back({tcp, sub_b, be16::from_host(8080), ipv4(198, 51, 100, 1), be16::from_host(80)});
  const ReconfigureResult added = apply(one_static);
  EXPECT_EQ(added.static_added, 1u);
  EXPECT_LE(added.worker_operations, 8u) << "the /16 pool is not walked";
  EXPECT_TRUE(engine->is_public_address(ipv4(198, 51, 100, 1)));

  NatConfig one_less = one_static;  // one address of the /16 removed
  one_less.pools[1].public_addresses = {{ipv4(198, 18, 0, 0), ipv4(198, 18, 255, 254)}};
  const ReconfigureResult retired = apply(one_less);
  EXPECT_EQ(retired.addresses_retired, 1u);
  EXPECT_LE(retired.worker_operations, 8u) << "the pool's new address list is swapped in, built by the plan";
  EXPECT_FALSE(engine->is_public_address(ipv4(198, 18, 255, 255))) << "removed and carrying nothing";
  EXPECT_TRUE(engine->is_public_address(ipv4(198, 18, 255, 254)));

  NatConfig second = one_less;  // another /16 pool: 65,536 addresses and 1M blocks built by the plan
  PoolConfig more = second.pools[1];
  more.name = "more";
  more.subscribers = {{ipv4(172, 16, 0, 0), 12}};
  more.public_addresses = {{ipv4(198, 19, 0, 0), ipv4(198, 19, 255, 255)}};
  second.pools.push_back(more);
  const ReconfigureResult grown = apply(second);
  EXPECT_EQ(grown.addresses_added, 65536u);
  // One pointer per new segment (1M blocks / 4,096, 65,536 addresses /
  // 1,024) plus the records that fill the arrays' last segments (at most a
  // segment each), against 1.1M records built by the plan.
  EXPECT_LE(grown.worker_operations, 256u + 64u + 4096u + 1024u + 8u) << "segments are linked in, records are not copied";
  EXPECT_TRUE(engine->is_public_address(ipv4(198, 19, 7, 7)));
  EXPECT_EQ(ip_src(udp_out(ipv4(172, 16, 0, 9), 4000, server, 53)).host() >> 16, ipv4(198, 19, 0, 0).host() >> 16);

  // Removing a /16 pool: its 65,536 addresses drain under one pool flag.
  const ReconfigureResult removed = apply(one_less);
  EXPECT_EQ(removed.pools_retired, 1u);
  EXPECT_EQ(removed.addresses_retired, 65536u);
  EXPECT_LE(removed.worker_operations, 8u);
  const be32 idle = engine->subscriber_public_address(ipv4(172, 16, 0, 9)) == ipv4(198, 19, 7, 7) ? ipv4(198, 19, 7, 8)
                                                                                               : ipv4(198, 19, 7, 7);
  EXPECT_FALSE(engine->is_public_address(idle));
  const be32 carrying = engine->subscriber_public_address(ipv4(172, 16, 0, 9));
  ASSERT_EQ(carrying.host() >> 16, ipv4(198, 19, 0, 0).host() >> 16);
  EXPECT_TRUE(engine->is_public_address(carrying)) << "the address still carrying a block drains";
}

// A removed pool keeps the list of its addresses; when it comes back with
// fewer, those it no longer lists drain and the others are live again.
TEST_F(Nat, ReloadRemovedPoolComesBackWithFewerAddresses) {
  const Bytes o = udp_out(sub_a, 4000, server, 53);
  const be32 used = ip_src(o);
  NatConfig gone = base_config();
  gone.pools[0].name = "other";
  gone.pools[0].subscribers = {{ipv4(10, 0, 0, 0), 8}};
  gone.pools[0].public_addresses = {{ipv4(198, 51, 100, 50), ipv4(198, 51, 100, 50)}};
  engine->reconfigure(gone);
  EXPECT_TRUE(engine->is_public_address(used)) << "drains with its pool";
  EXPECT_EQ(engine->draining_addresses().size(), 1u);
  EXPECT_EQ(engine->draining_addresses(gone).size(), 0u) << "only what the next policy lists matters to a reload";
  NatConfig back = base_config();  // cgn again, without the address in use
  back.pools[0].public_addresses.clear();
  for (const std::uint8_t last : {1, 2, 9})
    if (be32 a = ipv4(198, 51, 100, last); a != used) back.pools[0].public_addresses.push_back({a, a});
  ASSERT_TRUE(Engine::reconfigure_problems(gone, back, engine->draining_addresses(back)).empty());
  const ReconfigureResult r = engine->reconfigure(back);
  EXPECT_EQ(r.addresses_added, 0u) << "the pool's records are reused";
  EXPECT_EQ(r.pools_retired, 1u);
  EXPECT_EQ(r.addresses_retired, 2u) << "the one cgn no longer lists, and pool other's";
  EXPECT_TRUE(engine->is_public_address(used)) << "still draining";
  EXPECT_FALSE(engine->is_public_address(ipv4(198, 51, 100, 50))) << "removed with pool other, never used";
  for (std::uint8_t s = 0; s < 100; ++s)
    EXPECT_NE(ip_src(udp_out(ipv4(100, 64, 5, s), 4000, server, 53)), used) << "no new subscriber on it";
  Bytes reply = reply_to(o);
  EXPECT_EQ(in(reply).verdict, Verdict::to_inside);
  auto usage = engine->pool_usage();
  ASSERT_EQ(usage.size(), 1u) << "pool other, removed, held nothing";
  EXPECT_EQ(usage[0].name, "cgn");
  EXPECT_EQ(usage[0].addresses, 2u);
  EXPECT_EQ(usage[0].addresses_draining, 1u);
  EXPECT_EQ(engine->check_invariants(), "");
}

// A plan is made while the worker keeps forwarding (the control core reads
// only what reloads change); it fits that engine state and no other.
TEST_F(Nat, ReloadPlanMadeWhileForwardingFitsOnlyItsEngineState) {
  NatConfig next = base_config();
  next.pools[0].public_addresses.push_back({ipv4(198, 51, 100, 20), ipv4(198, 51, 100, 20)});
  const std::unique_ptr<ReloadPlan> plan = engine->plan_reload(next);
  const std::unique_ptr<ReloadPlan> twin = engine->plan_reload(next);
  for (std::uint8_t s = 0; s < 50; ++s) udp_out(ipv4(100, 64, 3, s), 4000, server, 53);  // meanwhile
  const ReconfigureResult r = engine->apply(*plan);
  EXPECT_TRUE(r.applied);
  EXPECT_EQ(r.addresses_added, 1u);
  EXPECT_EQ(engine->check_invariants(), "");
  EXPECT_FALSE(engine->apply(*twin).applied) << "made for the state before the first was applied";
  std::unique_ptr<Engine> other = Engine::create(base_config(), nullptr);
  EXPECT_FALSE(other->apply(*engine->plan_reload(next)).applied) << "made for another engine";
  EXPECT_EQ(count(NatCounter::reloads_applied), 1u);
  std::set<std::uint32_t> seen;
  for (std::uint8_t s = 0; s < 200; ++s) seen.insert(ip_src(udp_out(ipv4(100, 64, 4, s), 4000, server, 53)).raw);
  EXPECT_TRUE(seen.contains(ipv4(198, 51, 100, 20).raw)) << "the added address serves new subscribers";
}

// Issue 11.10: membership is one lookup (PublicSet), and what counts is
// decided by live state: a removed address until it drains, a static
// mapping's address while a static mapping (draining included) uses it.
TEST_F(Nat, PublicAddressMembershipFollowsDrainAndStaticMappings) {
  const be32 pub = ipv4(198, 51, 100, 200);
  NatConfig with = base_config();
  with.static_mappings.push_back({tcp, sub_b, be16::from_host(8080), pub, be16::from_host(80)});
  with.static_mappings.push_back({tcp, sub_b, be16::from_host(8443), pub, be16::from_host(443)});
  make(with);
  EXPECT_TRUE(engine->is_public_address(ipv4(198, 51, 100, 9)));
  EXPECT_FALSE(engine->is_public_address(ipv4(198, 51, 100, 3))) << "between the pool's ranges";
  EXPECT_TRUE(engine->is_public_address(pub));
  NatConfig one = with;
  one.static_mappings.pop_back();
  engine->reconfigure(one);
  EXPECT_TRUE(engine->is_public_address(pub)) << "one static mapping still uses it";
  NatConfig none = base_config();
  engine->reconfigure(none);
  EXPECT_FALSE(engine->is_public_address(pub));
  engine->reconfigure(with);
  EXPECT_TRUE(engine->is_public_address(pub)) << "back";
  EXPECT_EQ(engine->check_invariants(), "");
}

TEST_F(Nat, SessionEventsOnlyWhenAsked) {
  udp_out(sub_a, 4000, server, 53);
  NatEvent e;
  std::vector<NatEvent::Type> types;
  while (engine->events().pop(e)) types.push_back(e.type);
  EXPECT_EQ(types, std::vector<NatEvent::Type>{NatEvent::Type::block_allocated});
  NatConfig logged = base_config();
  logged.log_sessions = true;
  make(logged);
  const Bytes o = udp_out(sub_a, 4000, server, 53);
  advance_s(301);
  std::vector<NatEvent> events;
  while (engine->events().pop(e)) events.push_back(e);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].type, NatEvent::Type::session_created);
  EXPECT_EQ(events[1].subscriber, sub_a);
  EXPECT_EQ(events[1].inside_port.host(), 4000);
  EXPECT_EQ(events[1].public_address, ip_src(o));
  EXPECT_EQ(events[1].port_first, l4_sport(o));
  EXPECT_EQ(events[1].remote_address, server);
  EXPECT_EQ(events[1].protocol, packet::ip_proto::udp);
  EXPECT_EQ(events[2].type, NatEvent::Type::session_deleted);
}

TEST_F(Nat, CountersPerProtocol) {
  const Bytes o = udp_out(sub_a, 4000, server, 53);
  Bytes r = reply_to(o);
  ASSERT_EQ(in(r).verdict, Verdict::to_inside);
  Bytes ack = tcp_packet({sub_a, server}, 5000, 80, flag::ack);  // no session, not a SYN
  EXPECT_EQ(out(ack).verdict, Verdict::drop);
  const stats::NatCounters& c = engine->counters();
  const auto& udp = c.proto[static_cast<unsigned>(stats::ProtoIndex::udp)];
  const auto& tcp_c = c.proto[static_cast<unsigned>(stats::ProtoIndex::tcp)];
  EXPECT_EQ(udp.sessions_created, 1u);
  EXPECT_EQ(udp.translated_outbound, 1u);
  EXPECT_EQ(udp.translated_inbound, 1u);
  EXPECT_EQ(tcp_c.sessions_created, 0u);
  EXPECT_EQ(tcp_c.drop[static_cast<unsigned>(DropReason::tcp_not_syn)], 1u);
  EXPECT_EQ(udp.drop[static_cast<unsigned>(DropReason::tcp_not_syn)], 0u);
  advance_s(301);
  EXPECT_EQ(udp.sessions_expired, 1u);
}

TEST_F(Nat, SubscriberSessionsFoundThroughItsBlocksPreservedPortsAndStatics) {
  NatConfig c = base_config();
  c.static_mappings.push_back({tcp, sub_a, be16::from_host(8080), ipv4(198, 51, 100, 200), be16::from_host(80)});
  make(c);
  udp_out(sub_a, 4000, server, 53);
  udp_out(sub_a, 4000, server2, 53);   // same mapping, second session
  udp_out(sub_a, 500, server, 500);    // IKE: port 500 preserved, outside the blocks
  Bytes syn = tcp_packet({sub_a, server}, 5000, 443, flag::syn);
  ASSERT_EQ(out(syn).verdict, Verdict::to_outside);
  Bytes ping = icmp_echo({sub_a, server}, packet::icmp_type::echo_request, 77, 1);
  ASSERT_EQ(out(ping).verdict, Verdict::to_outside);
  Bytes fwd = tcp_packet({server, ipv4(198, 51, 100, 200)}, 33333, 80, flag::syn);
  ASSERT_EQ(in(fwd).verdict, Verdict::to_inside);
  udp_out(sub_b, 4000, server, 53);    // someone else's

  const std::vector<Session> all = engine->subscriber_sessions(sub_a, 100);
  EXPECT_EQ(all.size(), 6u);
  std::multiset<std::uint16_t> inside_ports;
  for (const Session& s : all) {
    EXPECT_EQ(s.in_addr, sub_a);
    inside_ports.insert(s.in_port.host());
  }
  EXPECT_EQ(inside_ports, (std::multiset<std::uint16_t>{4000, 4000, 500, 5000, 77, 8080}));
  EXPECT_EQ(engine->subscriber_sessions(sub_a, 2).size(), 2u) << "the limit holds";
  const Mapping* m = engine->find_mapping(Proto::udp, sub_a, be16::from_host(4000));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(engine->mapping_sessions(*m, 10).size(), 2u);
}

}  // namespace
}  // namespace passgate::nat
