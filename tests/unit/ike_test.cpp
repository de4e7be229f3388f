// IKE (UDP 500), NAT-T (UDP 4500) and L2TP (UDP 1701) as passthrough:
// ordinary UDP with paired pooling, opportunistic source-port preservation
// that never takes a port from another subscriber's block, own timeouts.
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

const be32 server = ipv4(203, 0, 113, 70);
const be32 public_addr = ipv4(198, 51, 100, 1);
be32 client(int i) { return be32::from_host(ipv4(100, 64, 0, 30).host() + static_cast<std::uint32_t>(i)); }

class Ike : public ::testing::Test {
 protected:
  void make(std::uint16_t port_min = 10000, bool preserve = true, std::uint32_t ike_timeout = 300,
            std::uint64_t seed = 0) {
    NatConfig c = one_address_config(public_addr);
    c.pools[0].port_min = port_min;
    c.pools[0].block_size = 1000;
    c.passthrough.ike.preserve_port = preserve;
    c.passthrough.l2tp.preserve_port = preserve;
    c.passthrough.ike.timeout = ike_timeout;
    c.random_seed = seed;
    engine = Engine::create(c, nullptr);
    ASSERT_TRUE(engine);
  }
  void SetUp() override { make(); }
  std::uint16_t out(int c, std::uint16_t sport, std::uint16_t dport) {
    Bytes p = udp_packet({client(c), server}, sport, dport);
    EXPECT_EQ(checked_process(*engine, Direction::outbound, p, now_ms).verdict, Verdict::to_outside);
    EXPECT_EQ(checksum_problems(p), "");
    EXPECT_EQ(ip_src(p), public_addr);
    return l4_sport(p);
  }
  void advance_s(std::uint64_t s) {
    now_ms += s * 1000;
    checked_expire(*engine, now_ms, 1u << 20);
  }
  std::unique_ptr<Engine> engine;
  std::uint64_t now_ms = 5'000;
};

TEST_F(Ike, Rfc7296IkeAndNatTKeepTheirPortWhenFree) {
  EXPECT_EQ(out(0, 500, 500), 500);
  EXPECT_EQ(out(0, 4500, 4500), 4500);  // below port_min 10000: outside every block
  EXPECT_EQ(engine->counters().get(NatCounter::ports_preserved), 2u);
  NatEvent e{};
  int preserved = 0;
  while (engine->events().pop(e))
    if (e.type == NatEvent::Type::port_preserved) {
      ++preserved;
      EXPECT_EQ(e.subscriber, client(0)) << "logged for lawful requests like a port block";
      EXPECT_EQ(e.port_first, e.port_last);
    }
  EXPECT_EQ(preserved, 2);
}

TEST_F(Ike, Rfc7296SecondClientOnTheSameAddressIsTranslatedNotRefused) {
  EXPECT_EQ(out(0, 500, 500), 500);
  const std::uint16_t second = out(1, 500, 500);
  EXPECT_NE(second, 500);
  EXPECT_GE(second, 10000) << "from the subscriber's own block";
  // Replies reach each client.
  Bytes r = udp_packet({server, public_addr}, 500, second);
  ASSERT_EQ(checked_process(*engine, Direction::inbound, r, now_ms).verdict, Verdict::to_inside);
  EXPECT_EQ(ip_dst(r), client(1));
  EXPECT_EQ(l4_dport(r), 500);
  Bytes r0 = udp_packet({server, public_addr}, 500, 500);
  ASSERT_EQ(checked_process(*engine, Direction::inbound, r0, now_ms).verdict, Verdict::to_inside);
  EXPECT_EQ(ip_dst(r0), client(0));
}

// Port 4500 inside the dynamic range (port_min 1024, blocks of 1000): the
// block [4024, 5023] holds it. Seeds are searched so that each case happens.
TEST_F(Ike, NeverTakesAPortInsideAnotherSubscribersBlock) {
  auto in_block_of_4500 = [](std::uint16_t p) { return p >= 4024 && p <= 5023; };
  bool other_owner = false, own_block = false;
  for (std::uint64_t seed = 1; seed < 2000 && !(other_owner && own_block); ++seed) {
    make(1024, true, 300, seed);
    const std::uint16_t first0 = out(0, 40000, 443);  // client 0's first block
    const std::uint16_t first1 = out(1, 40000, 443);  // client 1's first block
    const std::uint16_t nat_t = out(1, 4500, 4500);
    if (in_block_of_4500(first0)) {
      other_owner = true;
      EXPECT_NE(nat_t, 4500) << "seed " << seed << ": 4500 is in client 0's block";
    } else if (in_block_of_4500(first1)) {
      own_block = true;
      EXPECT_EQ(nat_t, 4500) << "seed " << seed << ": 4500 is in client 1's own block and free";
    } else {
      EXPECT_NE(nat_t, 4500) << "seed " << seed << ": 4500 belongs to no block of client 1";
    }
  }
  EXPECT_TRUE(other_owner && own_block) << "both cases were exercised";
}

TEST_F(Ike, L2tpKeepsItsPortAndPreservationCanBeTurnedOff) {
  EXPECT_EQ(out(0, 1701, 1701), 1701);
  make(10000, /*preserve=*/false);
  EXPECT_NE(out(0, 1701, 1701), 1701);
  EXPECT_NE(out(0, 500, 500), 500);
}

TEST_F(Ike, SeparateTimeoutAndPreservedPortReturned) {
  make(10000, true, /*ike_timeout=*/900);
  out(0, 500, 500);
  out(0, 5000, 53);  // plain UDP, 300 s
  advance_s(301);
  EXPECT_EQ(engine->active_sessions(), 1u) << "the IKE session has its own, longer timeout";
  advance_s(600);
  EXPECT_EQ(engine->active_sessions(), 0u);
  advance_s(121);  // the port reuse hold
  EXPECT_EQ(engine->active_mappings(), 0u);
  EXPECT_EQ(engine->active_subscribers(), 0u);
  bool released = false;
  NatEvent e{};
  while (engine->events().pop(e)) released |= e.type == NatEvent::Type::port_released && e.port_first == 500;
  EXPECT_TRUE(released);
}

}  // namespace
}  // namespace passgate::nat
