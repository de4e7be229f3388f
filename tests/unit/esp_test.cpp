// ESP passthrough through the engine (lib/passthrough/esp.hpp): SPI
// learning serialised per (public address, server), holds, timeouts, rekey.
// Several subscribers share one public address here, the case where other
// NATs let only one client talk to a given server.
#include <gtest/gtest.h>

#include <map>

#include "nat/engine.hpp"
#include "packet/headers.hpp"
#include "support/checked_engine.hpp"
#include "support/nat_configs.hpp"
#include "support/packet_builder.hpp"

namespace passgate::nat {
namespace {

using namespace passgate::testing;
using stats::NatCounter;

const be32 server = ipv4(203, 0, 113, 50);
const be32 public_addr = ipv4(198, 51, 100, 1);
be32 client(int i) { return be32::from_host(ipv4(100, 64, 0, 10).host() + static_cast<std::uint32_t>(i)); }

std::uint32_t spi_of(const Bytes& p) {
  return (std::uint32_t{p[20]} << 24) | (std::uint32_t{p[21]} << 16) | (std::uint32_t{p[22]} << 8) | p[23];
}

class Esp : public ::testing::Test {
 protected:
  void make(bool enabled = true, std::uint32_t hold_packets = 64) {
    NatConfig c;
    PoolConfig p;
    p.name = "one-address";
    p.subscribers.push_back({ipv4(100, 64, 0, 0), 16});
    p.public_addresses.push_back({public_addr, public_addr});  // everyone shares it
    p.block_size = 1024;
    p.max_blocks_per_subscriber = 1;
    c.pools.push_back(p);
    c.max_sessions = 4096;
    c.max_subscribers = 256;
    c.random_seed = 9;
    c.passthrough.esp.enabled = enabled;
    c.passthrough.esp.hold_packets = hold_packets;
    std::vector<std::string> errors;
    engine = Engine::create(c, &errors);
    ASSERT_TRUE(engine) << (errors.empty() ? "" : errors.front());
  }
  void SetUp() override { make(); }

  // Client -> server; returns the packet as it left (empty if dropped/held).
  Bytes send(int c, std::uint32_t spi, Verdict expect = Verdict::to_outside) {
    Bytes p = esp_packet({client(c), server}, spi, ++seq);
    const Result r = checked_process(*engine, Direction::outbound, p, now_ms);
    EXPECT_EQ(r.verdict, expect) << stats::drop_reason_name(r.reason);
    if (r.verdict != Verdict::to_outside) return {};
    EXPECT_EQ(checksum_problems(p), "");
    EXPECT_EQ(ip_src(p), public_addr);
    return p;
  }
  // Client -> server whatever the outcome; the verdict.
  Verdict offer(int c, std::uint32_t spi, be32 to = server) {
    Bytes p = esp_packet({client(c), to}, spi, ++seq);
    const Result r = checked_process(*engine, Direction::outbound, p, now_ms);
    if (r.verdict == Verdict::to_outside) EXPECT_EQ(checksum_problems(p), "");
    return r.verdict;
  }
  // Whether a held packet of client 1 with `spi` left since the last call.
  bool released_spi(std::uint32_t spi) {
    bool found = false;
    for (const Bytes& b : released()) found = found || spi_of(b) == spi;
    return found;
  }
  // Server -> public address with `spi`; returns the client it reached, or -1.
  int answer(std::uint32_t spi) {
    Bytes p = esp_packet({server, public_addr}, spi, ++seq);
    const Result r = checked_process(*engine, Direction::inbound, p, now_ms);
    if (r.verdict != Verdict::to_inside) return -1;
    EXPECT_EQ(checksum_problems(p), "");
    for (int c = 0; c < 64; ++c)
      if (ip_dst(p) == client(c)) return c;
    return -2;
  }
  std::vector<Bytes> released() {
    std::vector<Bytes> out;
    engine->drain_released([&](std::span<std::uint8_t> b, Verdict v) {
      EXPECT_EQ(v, Verdict::to_outside);
      out.emplace_back(b.begin(), b.end());
    });
    return out;
  }
  void advance_ms(std::uint64_t ms) {
    now_ms += ms;
    checked_expire(*engine, now_ms, 1u << 20);
  }
  std::uint64_t count(NatCounter c) const { return engine->counters().get(c); }
  std::uint64_t drops(DropReason r) const { return engine->counters().get(r); }

  std::unique_ptr<Engine> engine;
  std::uint64_t now_ms = 50'000;
  std::uint32_t seq = 0;
};

TEST_F(Esp, Rfc3715OneClientLearnsTheServersSpi) {
  send(0, 0xc0000001);
  EXPECT_EQ(answer(0x5e000001), 0);
  EXPECT_EQ(count(NatCounter::esp_spis_learned), 1u);
  for (int i = 0; i < 3; ++i) {
    send(0, 0xc0000001);
    EXPECT_EQ(answer(0x5e000001), 0);
  }
  EXPECT_EQ(engine->esp().active_sas(), 1u);
}

TEST_F(Esp, UnknownInboundSpiWithNobodyWaitingIsDropped) {
  EXPECT_EQ(answer(0x12345678), -1);
  EXPECT_EQ(drops(DropReason::esp_unknown_spi), 1u);
  send(0, 0xc0000001);
  EXPECT_EQ(answer(0x5e000001), 0);
  EXPECT_EQ(answer(0x5e000099), -1) << "a second unknown SPI is not bound to an already answered client";
}

TEST_F(Esp, TwoClientsSameServerSameMillisecondAreSerialised) {
  send(0, 0xa0000001);
  // Client 1 starts in the same millisecond: its new SPI waits.
  send(1, 0xb0000001, Verdict::held);
  EXPECT_EQ(count(NatCounter::esp_held), 1u);
  EXPECT_TRUE(released().empty());
  // The server answers client 0 first; only then does client 1's packet go.
  EXPECT_EQ(answer(0x5a000001), 0);
  const std::vector<Bytes> out = released();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(spi_of(out[0]), 0xb0000001u);
  EXPECT_EQ(ip_src(out[0]), public_addr);
  EXPECT_EQ(checksum_problems(out[0]), "");
  EXPECT_EQ(answer(0x5b000001), 1) << "the next unknown SPI belongs to client 1";
  // And from now on each direction reaches its own client only.
  for (int round = 0; round < 5; ++round) {
    EXPECT_EQ(answer(0x5a000001), 0);
    EXPECT_EQ(answer(0x5b000001), 1);
  }
}

TEST_F(Esp, TenClientsToOneServerAllLearnTheirOwnSpi) {
  std::map<std::uint32_t, int> server_spi_for;  // what the "server" assigns
  for (int c = 0; c < 10; ++c) send(c, 0xc1000000u + static_cast<std::uint32_t>(c), c == 0 ? Verdict::to_outside : Verdict::held);
  // The server answers each client's SA in the order the SPIs reach it.
  std::vector<std::uint32_t> arrived = {0xc1000000u};
  for (std::size_t k = 0; k < arrived.size(); ++k) {
    const int c = static_cast<int>(arrived[k] - 0xc1000000u);
    const std::uint32_t reply = 0xd1000000u + static_cast<std::uint32_t>(c);
    EXPECT_EQ(answer(reply), c) << "client " << c;
    server_spi_for[reply] = c;
    for (const Bytes& b : released()) arrived.push_back(spi_of(b));
  }
  EXPECT_EQ(arrived.size(), 10u);
  for (const auto& [spi, c] : server_spi_for) EXPECT_EQ(answer(spi), c);
  EXPECT_EQ(count(NatCounter::esp_spis_learned), 10u);
  EXPECT_EQ(drops(DropReason::esp_hold_timeout), 0u);
}

TEST_F(Esp, SameClientSecondSpiIsNotHeld) {
  send(0, 0xa0000001);
  send(0, 0xa0000002);  // the same client, e.g. a second child SA: no ambiguity
  EXPECT_EQ(count(NatCounter::esp_held), 0u);
}

// Several devices behind one CPE share its inside address: their SAs to
// one server are learned one after the other, in the order they were sent.
TEST_F(Esp, SeveralClientsOfOneSubscriberToOneServerAllLearn) {
  send(0, 0xa0000001);
  send(0, 0xa0000002);
  send(0, 0xa0000003);
  send(1, 0xb0000001, Verdict::held);  // another subscriber waits its turn
  EXPECT_EQ(answer(0x5a000001), 0);
  EXPECT_EQ(answer(0x5a000002), 0);
  EXPECT_TRUE(released().empty()) << "the CPE still has an SA waiting";
  EXPECT_EQ(answer(0x5a000003), 0);
  EXPECT_EQ(count(NatCounter::esp_spis_learned), 3u);
  ASSERT_EQ(released().size(), 1u) << "then the other subscriber's SPI goes";
  EXPECT_EQ(answer(0x5b000001), 1);
  EXPECT_EQ(answer(0x5a000002), 0);
}

TEST_F(Esp, UnansweredLearnerGivesWayAfterTheLearnWindow) {
  send(0, 0xa0000001);
  send(1, 0xb0000001, Verdict::held);
  advance_ms(2100);  // hold_window_ms: the held packet is dropped and counted
  EXPECT_EQ(drops(DropReason::esp_hold_timeout), 1u);
  send(1, 0xb0000001, Verdict::held);  // still client 0's turn (learn window 5 s)
  advance_ms(3000);                    // client 0 never answered
  EXPECT_EQ(count(NatCounter::esp_learn_timeouts), 1u);
  const std::vector<Bytes> out = released();
  ASSERT_EQ(out.size(), 1u) << "client 1's held packet goes when client 0 gives up";
  EXPECT_EQ(answer(0x5b000001), 1);
}

TEST_F(Esp, RekeyLearnsTheNewSpis) {
  send(0, 0xa0000001);
  EXPECT_EQ(answer(0x5a000001), 0);
  send(1, 0xb0000001);
  EXPECT_EQ(answer(0x5b000001), 1);
  // Client 0 re-keys: new SPIs both ways; the old SA keeps working meanwhile.
  send(0, 0xa0000002);
  EXPECT_EQ(answer(0x5a000001), 0);
  EXPECT_EQ(answer(0x5a000002), 0);
  EXPECT_EQ(answer(0x5b000001), 1);
  EXPECT_EQ(count(NatCounter::esp_spis_learned), 3u);
}

TEST_F(Esp, DifferentServersLearnInParallel) {
  send(0, 0xa0000001);
  Bytes other = esp_packet({client(1), ipv4(203, 0, 113, 51)}, 0xb0000001, 1);
  EXPECT_EQ(checked_process(*engine, Direction::outbound, other, now_ms).verdict, Verdict::to_outside);
  EXPECT_EQ(count(NatCounter::esp_held), 0u);
}

TEST_F(Esp, Rfc6888Req2EspLeavesFromTheSubscribersIkeAddress) {
  // A second pool address: whatever address the subscriber's UDP 4500 got,
  // its ESP uses the same one.
  NatConfig c;
  PoolConfig p;
  p.subscribers.push_back({ipv4(100, 64, 0, 0), 16});
  p.public_addresses.push_back({ipv4(198, 51, 100, 1), ipv4(198, 51, 100, 8)});
  c.pools.push_back(p);
  c.max_sessions = 1024;
  c.max_subscribers = 64;
  engine = Engine::create(c, nullptr);
  for (int i = 0; i < 8; ++i) {
    Bytes ike = udp_packet({client(i), server}, 4500, 4500);
    ASSERT_EQ(checked_process(*engine, Direction::outbound, ike, now_ms).verdict, Verdict::to_outside);
    Bytes esp = esp_packet({client(i), server}, 0xa0000000u + static_cast<std::uint32_t>(i), 1);
    const Result r = checked_process(*engine, Direction::outbound, esp, now_ms);
    ASSERT_TRUE(r.verdict == Verdict::to_outside || r.verdict == Verdict::held);
    if (r.verdict == Verdict::to_outside) EXPECT_EQ(ip_src(esp), ip_src(ike));
  }
}

TEST_F(Esp, IdleSasExpireAndFreeTheSubscriber) {
  send(0, 0xa0000001);
  EXPECT_EQ(answer(0x5a000001), 0);
  EXPECT_EQ(engine->active_subscribers(), 1u);
  advance_ms(299'000);
  EXPECT_EQ(engine->esp().active_sas(), 1u);
  advance_ms(2'000);
  EXPECT_EQ(engine->esp().active_sas(), 0u);
  EXPECT_EQ(count(NatCounter::esp_sas_expired), 1u);
  EXPECT_EQ(engine->active_subscribers(), 0u);
  EXPECT_EQ(answer(0x5a000001), -1);
}

// Issue 11.2: a held packet's subscriber (which had no other state) must not
// be released while its packet waits; otherwise the SA created on release
// counts against a freed slot and the slot is freed twice when it expires.
TEST_F(Esp, HeldPacketOfAFreshSubscriberCannotDoubleFreeItsSlot) {
  send(0, 0xa0000001);                  // client 0 learns
  send(1, 0xb0000001, Verdict::held);   // client 1 has nothing else: only this held packet
  EXPECT_EQ(engine->check_invariants(), "");
  EXPECT_EQ(engine->active_subscribers(), 2u) << "the held packet keeps its subscriber";
  EXPECT_EQ(answer(0x5a000001), 0);
  ASSERT_EQ(released().size(), 1u);
  EXPECT_EQ(engine->check_invariants(), "");
  advance_ms(301'000);  // both SAs idle past the timeout
  EXPECT_EQ(engine->esp().active_sas(), 0u);
  EXPECT_EQ(engine->check_invariants(), "");
  EXPECT_EQ(engine->active_subscribers(), 0u);
  // The slots are reusable exactly once each.
  for (int c = 2; c < 6; ++c) send(c, 0xc0000000u + static_cast<std::uint32_t>(c), c == 2 ? Verdict::to_outside : Verdict::held);
  EXPECT_EQ(engine->check_invariants(), "");
  EXPECT_EQ(engine->active_subscribers(), 4u);
}

// Issue 11.9: the hold slots are shared by the worker; one subscriber
// cycling new SPIs while another learns gets a quarter of them at most.
TEST_F(Esp, OneSubscriberCannotTakeEveryHoldSlot) {
  make(true, /*hold_packets=*/8);
  send(0, 0xa0000001);  // client 0 learns
  for (std::uint32_t k = 0; k < 5; ++k) {
    Bytes p = esp_packet({client(1), server}, 0xb0000000u + k, ++seq);
    const Result r = checked_process(*engine, Direction::outbound, p, now_ms);
    EXPECT_EQ(r.verdict, k < 2 ? Verdict::held : Verdict::drop) << k;
    if (k >= 2) EXPECT_EQ(r.reason, DropReason::esp_hold_full);
  }
  send(2, 0xc0000001, Verdict::held);  // another client still finds a slot
}

// A held packet that times out unpins its subscriber.
TEST_F(Esp, HeldPacketTimingOutReleasesItsSubscriber) {
  send(0, 0xa0000001);
  send(1, 0xb0000001, Verdict::held);
  advance_ms(2'100);  // hold window
  EXPECT_EQ(drops(DropReason::esp_hold_timeout), 1u);
  EXPECT_EQ(engine->check_invariants(), "");
  EXPECT_EQ(engine->active_subscribers(), 1u);
}

// Issue 11.9, no monopolies. A client whose server never answers keeps
// sending new SPIs to it, one a second. Each one used to queue behind its
// first SA and renew its learn window, so the learner role never passed and
// another client behind the same public address waited forever (its held
// packets timing out one after the other). The turn is now bounded by
// learner_turn_ms (10 s by default) from its start, whatever the client sends.
TEST_F(Esp, LearnerCannotKeepTheRoleByCyclingSpis) {
  std::uint32_t spi = 0xa0000001;
  send(0, spi++);                      // client 0 learns; its server never answers
  send(1, 0xb0000001, Verdict::held);  // client 1 waits its turn
  std::uint64_t waited_ms = 0;
  bool went = false;
  while (!went && waited_ms < 30'000) {
    advance_ms(1000);
    waited_ms += 1000;
    if ((went = released_spi(0xb0000001))) break;
    EXPECT_EQ(offer(0, spi++), Verdict::to_outside);  // another new SPI of its own
    const Verdict v = offer(1, 0xb0000001);           // client 1 keeps trying
    went = v == Verdict::to_outside;
    if (!went) {
      EXPECT_EQ(v, Verdict::held);
    }
  }
  EXPECT_TRUE(went) << "client 1 never got its turn";
  EXPECT_LE(waited_ms, 10'000u) << "learner_turn_ms bounds the turn";
  EXPECT_EQ(count(NatCounter::esp_learner_turns_ended), 1u);
  EXPECT_EQ(offer(0, spi++), Verdict::held) << "client 0 now waits like anyone else";
  EXPECT_EQ(answer(0x5b000001), 1) << "the server's next new SPI is client 1's";
}

// The same with a server that answers: the client keeps two new SPIs
// queued for each one answered, so its queue never empties and the role
// used to stay with it.
TEST_F(Esp, LearnerCannotKeepTheRoleWhileItsServerAnswers) {
  std::uint32_t spi = 0xa0000001, reply = 0x5a000001;
  send(0, spi++);
  send(0, spi++);
  send(1, 0xb0000001, Verdict::held);
  std::uint64_t waited_ms = 0;
  bool went = false;
  while (!went && waited_ms < 30'000) {
    advance_ms(1000);
    waited_ms += 1000;
    if ((went = released_spi(0xb0000001))) break;
    EXPECT_EQ(answer(reply++), 0);
    EXPECT_EQ(offer(0, spi++), Verdict::to_outside);
    EXPECT_EQ(offer(0, spi++), Verdict::to_outside);
    const Verdict v = offer(1, 0xb0000001);
    went = v == Verdict::to_outside;
    if (!went) {
      EXPECT_EQ(v, Verdict::held);
    }
  }
  EXPECT_TRUE(went) << "client 1 never got its turn";
  EXPECT_LE(waited_ms, 10'000u);
  EXPECT_EQ(count(NatCounter::esp_learner_turns_ended), 1u);
  EXPECT_EQ(answer(0x5b000001), 1);
}

// Re-sending its first SPI renews nothing: the learner's window runs from
// its first packet, and the waiting client goes when it ends.
TEST_F(Esp, LearnerCannotRenewItsWindowByResendingItsSpi) {
  send(0, 0xa0000001);
  send(1, 0xb0000001, Verdict::held);
  for (int s = 0; s < 4; ++s) {
    advance_ms(1000);
    send(0, 0xa0000001);
    EXPECT_EQ(offer(1, 0xb0000001), Verdict::held);
  }
  advance_ms(1100);  // 5.1 s after client 0's first packet
  EXPECT_EQ(count(NatCounter::esp_learn_timeouts), 1u);
  EXPECT_TRUE(released_spi(0xb0000001));
  EXPECT_EQ(count(NatCounter::esp_learner_turns_ended), 0u) << "an ordinary learn timeout";
  EXPECT_EQ(answer(0x5b000001), 1);
}

// Nobody waiting: a client may learn for as long as it likes. Once its turn
// is over, though, the next client to come takes the role at once.
TEST_F(Esp, OverdueLearnerGivesWayAtOnceWhenAnotherClientComes) {
  std::uint32_t spi = 0xa0000001, reply = 0x5a000001;
  send(0, spi++);
  send(0, spi++);
  for (int s = 0; s < 12; ++s) {
    advance_ms(1000);
    EXPECT_EQ(answer(reply++), 0) << "second " << s;
    send(0, spi++);
  }
  EXPECT_EQ(count(NatCounter::esp_learner_turns_ended), 0u);
  EXPECT_EQ(count(NatCounter::esp_learn_timeouts), 0u);
  send(1, 0xb0000001);  // not held: client 0's turn is over
  EXPECT_EQ(count(NatCounter::esp_learner_turns_ended), 1u);
  EXPECT_EQ(answer(0x5b000001), 1);
  EXPECT_EQ(answer(0x5a000001), 0) << "what client 0 learned stays";
}

// Issue 11.10: learners time out through a FIFO in window order, not a scan
// of every learner slot; a learner whose window a new SPI renewed moves
// behind the others, and held packets time out in arrival order.
TEST_F(Esp, EachLearnerTimesOutByItsOwnWindow) {
  const be32 server2 = ipv4(203, 0, 113, 51);
  send(0, 0xa0000001);  // client 0 learns from `server` at 50.0 s
  advance_ms(1000);
  EXPECT_EQ(offer(1, 0xb0000001, server2), Verdict::to_outside);  // client 1 from server2 at 51.0 s
  advance_ms(1000);
  send(0, 0xa0000002);  // client 0's second SA renews its window: to 57.0 s
  advance_ms(2500);     // 54.5 s
  EXPECT_EQ(offer(2, 0xc0000001), Verdict::held);
  EXPECT_EQ(offer(3, 0xd0000001, server2), Verdict::held);
  advance_ms(1600);  // 56.1 s: client 1's window (to 56.0 s) is over, client 0's is not
  EXPECT_EQ(count(NatCounter::esp_learn_timeouts), 1u);
  const std::vector<Bytes> out = released();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(spi_of(out[0]), 0xd0000001u);
  EXPECT_EQ(drops(DropReason::esp_hold_timeout), 0u);
  advance_ms(500);  // 56.6 s: client 2's packet, held at 54.5 s, times out first
  EXPECT_EQ(drops(DropReason::esp_hold_timeout), 1u);
  EXPECT_EQ(count(NatCounter::esp_learn_timeouts), 1u);
  advance_ms(500);  // 57.1 s: client 0's first SA gives up, its second learns next
  EXPECT_EQ(count(NatCounter::esp_learn_timeouts), 2u);
  EXPECT_EQ(answer(0x5a000002), 0);
  EXPECT_TRUE(released().empty());
}

TEST_F(Esp, SessionLimitCountsSas) {
  NatConfig c = one_address_config(public_addr);
  c.pools[0].max_sessions_per_subscriber = 3;
  engine = Engine::create(c, nullptr);
  for (std::uint32_t s = 0; s < 3; ++s) send(0, 0xa0000000u + s);
  Bytes fourth = esp_packet({client(0), server}, 0xa0000009, 1);
  EXPECT_EQ(checked_process(*engine, Direction::outbound, fourth, now_ms).reason, DropReason::subscriber_session_limit);
  send(0, 0xa0000001);  // existing SAs keep working
}

TEST_F(Esp, DisabledDropsAndCountsEspOnly) {
  make(/*enabled=*/false);
  Bytes p = esp_packet({client(0), server}, 0xa0000001, 1);
  EXPECT_EQ(checked_process(*engine, Direction::outbound, p, now_ms).reason, DropReason::esp_disabled);
  Bytes in = esp_packet({server, public_addr}, 0x5a000001, 1);
  EXPECT_EQ(checked_process(*engine, Direction::inbound, in, now_ms).reason, DropReason::esp_disabled);
  EXPECT_EQ(drops(DropReason::esp_disabled), 2u);
  Bytes u = udp_packet({client(0), server}, 4500, 4500);
  EXPECT_EQ(checked_process(*engine, Direction::outbound, u, now_ms).verdict, Verdict::to_outside) << "UDP unaffected";
}

}  // namespace
}  // namespace passgate::nat
