// Deterministic NAT (RFC 7422, lib/nat/deterministic.hpp): the mapping
// against the RFC's own example, an exhaustive round trip over a /22, and
// the engine keeping each subscriber's sessions, preserved ports and VPN
// state on its address and inside its range, with one worker and several.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "nat/deterministic.hpp"
#include "nat/engine.hpp"
#include "support/checked_engine.hpp"
#include "support/packet_builder.hpp"

namespace passgate::nat {
namespace {

using namespace passgate::testing;

PoolConfig deterministic_pool(std::vector<Ipv4Prefix> subscribers, std::vector<AddressRange> publics,
                              std::uint32_t ratio = 0, std::uint16_t port_min = 1024, std::uint16_t port_max = 65535) {
  PoolConfig p;
  p.name = "det";
  p.mode = PoolMode::deterministic;
  p.subscribers = std::move(subscribers);
  p.public_addresses = std::move(publics);
  p.sharing_ratio = ratio;
  p.port_min = port_min;
  p.port_max = port_max;
  p.log_blocks = false;
  return p;
}

// RFC 7422 section 2.3: inside 198.51.100.0/28, outside 192.0.2.1, a
// compression ratio of 14 plus a dynamic pool factor of 2 (1:16), so 4032
// ports per inside address; .1 has 1024-5055 ... .14 has 53440-57471 and
// 57472-65535 is the dynamic pool (here: unused). Its reverse example:
// 192.0.2.1 port 2001 is subscriber 1.
TEST(Deterministic, Rfc7422Section23Example) {
  const PoolConfig pc =
      deterministic_pool({{ipv4(198, 51, 100, 0), 28}}, {{ipv4(192, 0, 2, 1), ipv4(192, 0, 2, 1)}}, 16);
  EXPECT_EQ(deterministic_problem(pc), "");
  const DeterministicMap map(pc);
  EXPECT_EQ(map.geometry().subscribers, 14u);
  EXPECT_EQ(map.geometry().ratio, 16u);
  EXPECT_EQ(map.geometry().ports_per_subscriber, 4032u);
  const std::map<int, std::pair<int, int>> table = {
      {1, {1024, 5055}},    {2, {5056, 9087}},    {3, {9088, 13119}},   {4, {13120, 17151}},  {5, {17152, 21183}},
      {6, {21184, 25215}},  {7, {25216, 29247}},  {8, {29248, 33279}},  {9, {33280, 37311}},  {10, {37312, 41343}},
      {11, {41344, 45375}}, {12, {45376, 49407}}, {13, {49408, 53439}}, {14, {53440, 57471}}};
  for (const auto& [host, ports] : table) {
    const auto slot = map.forward(ipv4(198, 51, 100, static_cast<std::uint8_t>(host)));
    ASSERT_TRUE(slot) << host;
    EXPECT_EQ(slot->public_address, ipv4(192, 0, 2, 1));
    EXPECT_EQ(slot->first_port, ports.first) << host;
    EXPECT_EQ(slot->last_port, ports.second) << host;
  }
  EXPECT_EQ(map.reverse(ipv4(192, 0, 2, 1), 2001), ipv4(198, 51, 100, 1));
  EXPECT_FALSE(map.reverse(ipv4(192, 0, 2, 1), 58204)) << "the RFC's dynamic pool: no deterministic owner";
  EXPECT_FALSE(map.reverse(ipv4(192, 0, 2, 1), 1023)) << "below the range";
  EXPECT_FALSE(map.reverse(ipv4(192, 0, 2, 2), 2001)) << "not a public address of the pool";
  EXPECT_FALSE(map.forward(ipv4(198, 51, 100, 0))) << "network address";
  EXPECT_FALSE(map.forward(ipv4(198, 51, 100, 15))) << "broadcast address";
  EXPECT_FALSE(map.forward(ipv4(198, 51, 100, 16))) << "outside the prefix";
}

// Every subscriber of a /22 (1022 hosts) over 16 public addresses: the
// ratio is ceil(1022 / 16) = 64, 1008 ports each. Forward then reverse, on
// every port of the range, gives the same subscriber; no two share a port.
TEST(Deterministic, ExhaustiveRoundTripOverASlash22) {
  const PoolConfig pc =
      deterministic_pool({{ipv4(100, 64, 0, 0), 22}}, {{ipv4(198, 51, 100, 10), ipv4(198, 51, 100, 25)}});
  const DeterministicMap map(pc);
  ASSERT_EQ(map.geometry().subscribers, 1022u);
  ASSERT_EQ(map.geometry().ratio, 64u);
  ASSERT_EQ(map.geometry().ports_per_subscriber, 1008u);
  std::set<std::pair<std::uint32_t, std::uint16_t>> taken;
  for (std::uint32_t h = ipv4(100, 64, 0, 1).host(); h <= ipv4(100, 64, 3, 254).host(); ++h) {
    const be32 sub = be32::from_host(h);
    const auto slot = map.forward(sub);
    ASSERT_TRUE(slot) << to_string(sub);
    ASSERT_EQ(slot->last_port - slot->first_port + 1, 1008);
    ASSERT_LE(slot->last_port, 65535);
    for (std::uint32_t port = slot->first_port; port <= slot->last_port; ++port) {
      ASSERT_TRUE(taken.insert({slot->public_address.raw, static_cast<std::uint16_t>(port)}).second)
          << to_string(sub) << " shares " << to_string(slot->public_address) << ":" << port;
      ASSERT_EQ(map.reverse(slot->public_address, static_cast<std::uint16_t>(port)), sub) << port;
    }
  }
  EXPECT_EQ(taken.size(), 1022u * 1008u);
  // And the reverse names nobody for ports no subscriber holds.
  std::size_t owned = 0;
  for (std::uint32_t a = 10; a <= 25; ++a)
    for (std::uint32_t port = 0; port <= 65535; ++port)
      if (const auto sub = map.reverse(ipv4(198, 51, 100, static_cast<std::uint8_t>(a)), static_cast<std::uint16_t>(port))) {
        ++owned;
        const auto back = map.forward(*sub);
        ASSERT_TRUE(back);
        EXPECT_EQ(back->public_address, ipv4(198, 51, 100, static_cast<std::uint8_t>(a)));
      }
  EXPECT_EQ(owned, taken.size());
}

// Several prefixes and non-contiguous public ranges: indexes run over them
// in configuration order; a /31 and a /32 keep both their addresses.
TEST(Deterministic, SeveralPrefixesAndRangesInConfigurationOrder) {
  const PoolConfig pc = deterministic_pool(
      {{ipv4(10, 0, 0, 0), 29}, {ipv4(10, 1, 0, 0), 31}, {ipv4(10, 2, 0, 7), 32}},
      {{ipv4(192, 0, 2, 1), ipv4(192, 0, 2, 1)}, {ipv4(192, 0, 2, 9), ipv4(192, 0, 2, 10)}}, 3, 2000, 2899);
  const DeterministicMap map(pc);
  EXPECT_EQ(map.geometry().subscribers, 6u + 2u + 1u);
  EXPECT_EQ(map.geometry().ports_per_subscriber, 300u);
  const auto at = [&](be32 a) { return *map.forward(a); };
  EXPECT_EQ(at(ipv4(10, 0, 0, 1)).public_address, ipv4(192, 0, 2, 1));
  EXPECT_EQ(at(ipv4(10, 0, 0, 3)).first_port, 2600);
  EXPECT_EQ(at(ipv4(10, 0, 0, 4)).public_address, ipv4(192, 0, 2, 9));
  EXPECT_EQ(at(ipv4(10, 0, 0, 4)).first_port, 2000);
  EXPECT_EQ(at(ipv4(10, 1, 0, 0)).public_address, ipv4(192, 0, 2, 10));  // index 6
  EXPECT_EQ(at(ipv4(10, 2, 0, 7)).public_address, ipv4(192, 0, 2, 10));  // index 8
  EXPECT_EQ(at(ipv4(10, 2, 0, 7)).last_port, 2899);
  EXPECT_EQ(map.reverse(ipv4(192, 0, 2, 10), 2899), ipv4(10, 2, 0, 7));
  EXPECT_EQ(map.reverse(ipv4(192, 0, 2, 9), 2000), ipv4(10, 0, 0, 4));
}

TEST(Deterministic, ProblemsWithTheGeometryAreExplained) {
  PoolConfig pc = deterministic_pool({{ipv4(100, 64, 0, 0), 22}}, {{ipv4(198, 51, 100, 10), ipv4(198, 51, 100, 13)}}, 100);
  EXPECT_NE(deterministic_problem(pc).find("sharing_ratio 100 gives 4 public addresses room for 400 subscribers"),
            std::string::npos)
      << deterministic_problem(pc);
  pc = deterministic_pool({{ipv4(100, 64, 0, 0), 22}}, {{ipv4(198, 51, 100, 10), ipv4(198, 51, 100, 10)}}, 0, 1024,
                          1535);
  EXPECT_NE(deterministic_problem(pc).find("too few for a sharing ratio of 1022"), std::string::npos)
      << deterministic_problem(pc);
  NatConfig c;
  c.pools.push_back(pc);
  const auto problems = c.validate();
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems.front().find("pool 'det'"), std::string::npos);
}

TEST(Deterministic, TheMappingLineReadsBackAsTheSameMapping) {
  const PoolConfig pc = deterministic_pool({{ipv4(100, 64, 0, 0), 22}, {ipv4(100, 65, 0, 0), 24}},
                                           {{ipv4(198, 51, 100, 10), ipv4(198, 51, 100, 25)}, {ipv4(203, 0, 113, 5), ipv4(203, 0, 113, 5)}});
  const std::string line = describe_mapping(pc);
  EXPECT_EQ(line,
            "algorithm=rfc7422 pool=det subscribers=100.64.0.0/22,100.65.0.0/24 "
            "public=198.51.100.10-198.51.100.25,203.0.113.5 ports=1024-65535 ratio=76 ports_per_subscriber=848");
  std::string error;
  const auto back = parse_mapping("NAT-DET-MAP " + line + " in force", &error);
  ASSERT_TRUE(back) << error;
  EXPECT_TRUE(same_geometry(pc, *back));
  EXPECT_FALSE(parse_mapping("algorithm=rfc7422 pool=x subscribers=1.2.3.0/24", &error));
  EXPECT_FALSE(parse_mapping(line + " ports_per_subscriber=9", &error)) << "a P that does not follow";
}

// ---- through the engine ----

NatConfig engine_config(bool log_blocks = false) {
  NatConfig c;
  PoolConfig p = deterministic_pool({{ipv4(100, 64, 0, 0), 22}}, {{ipv4(198, 51, 100, 10), ipv4(198, 51, 100, 25)}});
  p.log_blocks = log_blocks;
  c.pools.push_back(p);
  c.max_sessions = 1 << 14;
  c.max_subscribers = 2048;
  c.random_seed = 7;
  c.limits.new_subscribers_per_second = 1u << 20;
  return c;
}

const be32 server = ipv4(203, 0, 113, 9);

struct Translated {
  be32 address;
  std::uint16_t port;
};

Translated send_udp(Engine& e, be32 sub, std::uint16_t sport, std::uint16_t dport = 53) {
  Bytes p = udp_packet({sub, server}, sport, dport);
  const Result r = checked_process(e, Direction::outbound, p, 1000);
  EXPECT_EQ(r.verdict, Verdict::to_outside) << stats::drop_reason_name(r.reason);
  return {ip_src(p), l4_sport(p)};
}

// Sessions of every subscriber use its address and ports of its range; the
// ports are still unpredictable (RFC 6056), not the range's first ones.
TEST(DeterministicEngine, SessionsStayOnTheSubscribersAddressAndRange) {
  std::vector<std::string> errors;
  auto e = Engine::create(engine_config(), &errors);
  ASSERT_TRUE(e) << errors.front();
  const DeterministicMap map(engine_config().pools[0]);
  std::set<std::uint16_t> offsets;
  for (std::uint32_t h = ipv4(100, 64, 0, 1).host(); h <= ipv4(100, 64, 0, 200).host(); h += 7) {
    const be32 sub = be32::from_host(h);
    const auto slot = *map.forward(sub);
    for (std::uint16_t k = 0; k < 20; ++k) {
      const Translated t = send_udp(*e, sub, static_cast<std::uint16_t>(40000 + k));
      EXPECT_EQ(t.address, slot.public_address);
      EXPECT_GE(t.port, slot.first_port);
      EXPECT_LE(t.port, slot.last_port);
      offsets.insert(static_cast<std::uint16_t>(t.port - slot.first_port));
    }
    EXPECT_EQ(e->subscriber_public_address(sub), slot.public_address);
  }
  EXPECT_GT(offsets.size(), 200u) << "ports chosen at random inside the range";
  EXPECT_EQ(e->counters().get(stats::NatCounter::blocks_allocated), 29u);
  // No block events by default (the mapping event says it all) ...
  NatEvent ev;
  EXPECT_FALSE(e->events().pop(ev));
  // ... unless the pool asks for them.
  auto logged = Engine::create(engine_config(true), &errors);
  send_udp(*logged, ipv4(100, 64, 0, 9), 1234);
  ASSERT_TRUE(logged->events().pop(ev));
  EXPECT_EQ(ev.type, NatEvent::Type::block_allocated);
  EXPECT_EQ(ev.port_first, map.forward(ipv4(100, 64, 0, 9))->first_port);
}

// A full range refuses more ports (counted), never borrows a neighbour's.
TEST(DeterministicEngine, AFullRangeIsExhaustedNotExtended) {
  NatConfig c = engine_config();
  c.pools[0].port_max = 1024 + 64 * 4 - 1;  // 4 ports each
  c.pools[0].max_sessions_per_subscriber = 100;
  std::vector<std::string> errors;
  auto e = Engine::create(c, &errors);
  ASSERT_TRUE(e) << errors.front();
  const be32 sub = ipv4(100, 64, 0, 5);
  const auto slot = *DeterministicMap(c.pools[0]).forward(sub);
  for (std::uint16_t k = 0; k < 4; ++k) {
    const Translated t = send_udp(*e, sub, static_cast<std::uint16_t>(5000 + k));
    EXPECT_GE(t.port, slot.first_port);
    EXPECT_LE(t.port, slot.last_port);
  }
  Bytes p = udp_packet({sub, server}, 6000, 53);
  EXPECT_EQ(checked_process(*e, Direction::outbound, p, 1000).reason, DropReason::ports_exhausted);
  // The boundary addresses of the prefix have no range.
  Bytes q = udp_packet({ipv4(100, 64, 0, 0), server}, 6000, 53);
  EXPECT_EQ(checked_process(*e, Direction::outbound, q, 1000).reason, DropReason::no_pool);
}

// With several workers each engine uses the ports of the range on its own
// comb; together they never leave the range, and never share a port.
TEST(DeterministicEngine, SeveralWorkersSplitTheRangeByTheirCombs) {
  const unsigned workers = 4;
  const NatConfig c = engine_config();
  const DeterministicMap map(c.pools[0]);
  std::set<std::pair<std::uint32_t, std::uint16_t>> used;
  for (unsigned w = 0; w < workers; ++w) {
    PortShare share;
    share.worker = w;
    share.workers = workers;
    share.step = workers;
    share.residue = [=](be32 a) { return static_cast<std::uint16_t>((w + a.host()) % workers); };
    std::vector<std::string> errors;
    auto e = Engine::create(c, &errors, share);
    ASSERT_TRUE(e) << errors.front();
    for (std::uint32_t h = ipv4(100, 64, 1, 1).host(); h <= ipv4(100, 64, 1, 40).host(); ++h) {
      const be32 sub = be32::from_host(h);
      const auto slot = *map.forward(sub);
      // 1008 / 4 = 252 ports per worker: take them all (the invariants are
      // checked once per subscriber: after every packet is too slow here).
      for (std::uint16_t k = 0; k < 252; ++k) {
        Bytes p = udp_packet({sub, server}, static_cast<std::uint16_t>(10000 + k), 53);
        ASSERT_EQ(e->process(Direction::outbound, p, 1000).verdict, Verdict::to_outside);
        const Translated t{ip_src(p), l4_sport(p)};
        ASSERT_EQ(t.address, slot.public_address);
        ASSERT_GE(t.port, slot.first_port);
        ASSERT_LE(t.port, slot.last_port);
        ASSERT_EQ(t.port % workers, (w + slot.public_address.host()) % workers) << "on this worker's comb";
        ASSERT_TRUE(used.insert({t.address.raw, t.port}).second);
      }
      Bytes p = udp_packet({sub, server}, 20000, 53);
      EXPECT_EQ(checked_process(*e, Direction::outbound, p, 1000).reason, DropReason::ports_exhausted);
    }
  }
  EXPECT_EQ(used.size(), 40u * 1008u) << "every port of the 40 ranges, each once";
}

TEST(DeterministicEngine, TooFewPortsForTheWorkersIsRefused) {
  NatConfig c = engine_config();
  c.pools[0].port_max = 1024 + 64 * 3 - 1;  // 3 ports each
  PortShare share;
  share.workers = 4;
  share.step = 4;
  std::vector<std::string> errors;
  EXPECT_FALSE(Engine::create(c, &errors, share));
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors.front().find("3 ports per subscriber cannot be shared by 4 workers"), std::string::npos);
}

// IKE keeps port 4500 only when it lies in the subscriber's own range; 500
// (below every range) is never preserved: the lookup needs no port log.
// ESP and the PPTP control connection use the subscriber's address.
TEST(DeterministicEngine, VpnTrafficStaysOnTheSubscribersAddressAndRange) {
  NatConfig c = engine_config();
  c.pools[0].port_min = 500;  // so that 4500 lies in some subscriber's range
  std::vector<std::string> errors;
  auto e = Engine::create(c, &errors);
  ASSERT_TRUE(e) << errors.front();
  const DeterministicMap map(c.pools[0]);
  const std::optional<be32> owner_4500 = map.reverse(map.forward(ipv4(100, 64, 0, 1))->public_address, 4500);
  ASSERT_TRUE(owner_4500);
  for (const be32 sub : {*owner_4500, ipv4(100, 64, 2, 77)}) {
    const auto slot = *map.forward(sub);
    const Translated ike = send_udp(*e, sub, 500, 500);
    EXPECT_EQ(ike.address, slot.public_address);
    EXPECT_GE(ike.port, slot.first_port);
    EXPECT_LE(ike.port, slot.last_port);
    const Translated natt = send_udp(*e, sub, 4500, 4500);
    EXPECT_GE(natt.port, slot.first_port);
    EXPECT_LE(natt.port, slot.last_port);
    if (sub == *owner_4500) {
      EXPECT_EQ(natt.port, 4500) << "preserved: it is in its own range";
    } else {
      EXPECT_NE(natt.port, 4500);
    }
    Bytes esp = esp_packet({sub, server}, 0xa0000000u + sub.host() % 1000, 1);
    const Result r = checked_process(*e, Direction::outbound, esp, 1000);
    EXPECT_EQ(r.verdict, Verdict::to_outside) << stats::drop_reason_name(r.reason);
    EXPECT_EQ(ip_src(esp), slot.public_address);
    Bytes syn = tcp_packet({sub, server}, 33000, 1723, packet::tcp_flag::syn, Bytes{});
    const Result rs = checked_process(*e, Direction::outbound, syn, 1000);
    ASSERT_EQ(rs.verdict, Verdict::to_outside) << stats::drop_reason_name(rs.reason);
    EXPECT_EQ(ip_src(syn), slot.public_address);
    EXPECT_GE(l4_sport(syn), slot.first_port);
    EXPECT_LE(l4_sport(syn), slot.last_port);
  }
}

}  // namespace
}  // namespace passgate::nat
