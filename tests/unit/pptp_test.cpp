// PPTP passthrough through the engine (lib/passthrough/pptp.hpp): Call ID
// translation on TCP 1723 and GRE v1 by key, with several clients behind
// one public address calling one server (RFC 2637).
#include <gtest/gtest.h>

#include "nat/engine.hpp"
#include "packet/headers.hpp"
#include "support/nat_configs.hpp"
#include "support/packet_builder.hpp"

namespace passgate::nat {
namespace {

using namespace passgate::testing;
using stats::NatCounter;
namespace flag = packet::tcp_flag;

const be32 pac = ipv4(203, 0, 113, 60);
const be32 public_addr = ipv4(198, 51, 100, 1);
be32 client(int i) { return be32::from_host(ipv4(100, 64, 0, 20).host() + static_cast<std::uint32_t>(i)); }

// One PPTP control message (RFC 2637 section 2): fields at their offsets.
Bytes message(std::uint16_t type, std::uint16_t length, std::vector<std::pair<unsigned, std::uint16_t>> fields) {
  Bytes m(length, 0);
  m[0] = static_cast<std::uint8_t>(length >> 8);
  m[1] = static_cast<std::uint8_t>(length);
  m[3] = 1;  // control message
  m[4] = 0x1a, m[5] = 0x2b, m[6] = 0x3c, m[7] = 0x4d;
  m[8] = static_cast<std::uint8_t>(type >> 8);
  m[9] = static_cast<std::uint8_t>(type);
  for (auto [off, v] : fields) {
    m[off] = static_cast<std::uint8_t>(v >> 8);
    m[off + 1] = static_cast<std::uint8_t>(v);
  }
  return m;
}
Bytes ocrq(std::uint16_t call_id) { return message(7, 168, {{12, call_id}, {14, 0x0101}}); }
Bytes ocrp(std::uint16_t call_id, std::uint16_t peer) { return message(8, 32, {{12, call_id}, {14, peer}}); }
Bytes icrp(std::uint16_t call_id, std::uint16_t peer) { return message(10, 28, {{12, call_id}, {14, peer}}); }
Bytes ccrq(std::uint16_t call_id) { return message(12, 16, {{12, call_id}}); }
Bytes wen(std::uint16_t peer) { return message(14, 40, {{12, peer}}); }
Bytes sli(std::uint16_t peer) { return message(15, 24, {{12, peer}}); }

std::uint16_t field(const Bytes& p, unsigned message_offset, unsigned off) {
  const unsigned at = ihl(p) + 20 + message_offset + off;
  return static_cast<std::uint16_t>((p[at] << 8) | p[at + 1]);
}
std::uint16_t gre_call_id(const Bytes& p) { return static_cast<std::uint16_t>((p[ihl(p) + 6] << 8) | p[ihl(p) + 7]); }

class Pptp : public ::testing::Test {
 protected:
  void make(bool enabled = true) {
    NatConfig c = one_address_config(public_addr, 4096);
    c.random_seed = 3;
    c.passthrough.pptp.enabled = enabled;
    engine = Engine::create(c, nullptr);
    ASSERT_TRUE(engine);
  }
  void SetUp() override { make(); }

  Result run(Direction d, Bytes& p) {
    const Result r = engine->process(d, p, now_ms);
    if (r.verdict == Verdict::to_inside || r.verdict == Verdict::to_outside) {
      EXPECT_EQ(checksum_problems(p), "");
    }
    return r;
  }
  // Opens client c's control connection; returns its public port.
  std::uint16_t connect(int c) {
    Bytes syn = tcp_packet({client(c), pac}, static_cast<std::uint16_t>(40000 + c), 1723, flag::syn, Bytes());
    EXPECT_EQ(run(Direction::outbound, syn).verdict, Verdict::to_outside);
    Bytes synack = tcp_packet({pac, public_addr}, 1723, l4_sport(syn), flag::syn | flag::ack, Bytes());
    EXPECT_EQ(run(Direction::inbound, synack).verdict, Verdict::to_inside);
    return l4_sport(syn);
  }
  Bytes from_client(int c, const Bytes& payload) {
    Bytes p = tcp_packet({client(c), pac}, static_cast<std::uint16_t>(40000 + c), 1723, flag::ack | 0x08, payload);
    EXPECT_EQ(run(Direction::outbound, p).verdict, Verdict::to_outside);
    return p;
  }
  Bytes from_server(std::uint16_t public_port, const Bytes& payload) {
    Bytes p = tcp_packet({pac, public_addr}, 1723, public_port, flag::ack | 0x08, payload);
    EXPECT_EQ(run(Direction::inbound, p).verdict, Verdict::to_inside);
    return p;
  }
  Bytes gre_from_server(std::uint16_t call_id, Verdict expect = Verdict::to_inside) {
    Bytes g = gre_packet({pac, public_addr}, 1, true, call_id);  // key: length 0, Call ID
    EXPECT_EQ(run(Direction::inbound, g).verdict, expect);
    return g;
  }
  std::uint64_t count(NatCounter c) const { return engine->counters().get(c); }
  std::uint64_t drops(DropReason r) const { return engine->counters().get(r); }

  std::unique_ptr<Engine> engine;
  std::uint64_t now_ms = 10'000;
};

TEST_F(Pptp, Rfc2637TwoClientsSameCallIdOneServer) {
  const std::uint16_t port0 = connect(0), port1 = connect(1);
  // Both clients pick Call ID 1 for their first call.
  const Bytes q0 = from_client(0, ocrq(1));
  const Bytes q1 = from_client(1, ocrq(1));
  const std::uint16_t pub0 = field(q0, 0, 12), pub1 = field(q1, 0, 12);
  EXPECT_NE(pub0, pub1) << "translated Call IDs must be unique per public address and server";
  EXPECT_EQ(count(NatCounter::pptp_calls_created), 2u);
  // The server answers each, quoting the translated ID as Peer's Call ID.
  const Bytes r0 = from_server(port0, ocrp(0x7001, pub0));
  const Bytes r1 = from_server(port1, ocrp(0x7002, pub1));
  EXPECT_EQ(ip_dst(r0), client(0));
  EXPECT_EQ(field(r0, 0, 14), 1) << "Peer's Call ID restored";
  EXPECT_EQ(field(r0, 0, 12), 0x7001) << "the server's own Call ID is untouched";
  EXPECT_EQ(ip_dst(r1), client(1));
  EXPECT_EQ(field(r1, 0, 14), 1);
  // GRE from the server, keyed by each translated ID, reaches its client
  // with the client's own Call ID back in the key.
  for (int round = 0; round < 3; ++round) {
    const Bytes g0 = gre_from_server(pub0);
    EXPECT_EQ(ip_dst(g0), client(0));
    EXPECT_EQ(gre_call_id(g0), 1);
    const Bytes g1 = gre_from_server(pub1);
    EXPECT_EQ(ip_dst(g1), client(1));
    EXPECT_EQ(gre_call_id(g1), 1);
  }
  // GRE from the clients carries the server's Call ID: only the source changes.
  for (int c = 0; c < 2; ++c) {
    Bytes g = gre_packet({client(c), pac}, 1, true, c == 0 ? 0x7001 : 0x7002);
    ASSERT_EQ(run(Direction::outbound, g).verdict, Verdict::to_outside);
    EXPECT_EQ(ip_src(g), public_addr);
    EXPECT_EQ(gre_call_id(g), c == 0 ? 0x7001 : 0x7002);
  }
  EXPECT_EQ(count(NatCounter::pptp_gre_translated_inbound), 6u);
  EXPECT_EQ(count(NatCounter::pptp_gre_translated_outbound), 2u);
}

TEST_F(Pptp, SeveralCallsPerClientAndTeardownByCallClearRequest) {
  const std::uint16_t port = connect(0);
  const std::uint16_t a = field(from_client(0, ocrq(10)), 0, 12);
  const std::uint16_t b = field(from_client(0, ocrq(11)), 0, 12);
  EXPECT_NE(a, b);
  EXPECT_EQ(engine->pptp().active_calls(), 2u);
  EXPECT_EQ(gre_call_id(gre_from_server(a)), 10);
  EXPECT_EQ(gre_call_id(gre_from_server(b)), 11);
  // The client clears call 10: its translated ID goes out, then the call is gone.
  const Bytes clear = from_client(0, ccrq(10));
  EXPECT_EQ(field(clear, 0, 12), a);
  EXPECT_EQ(engine->pptp().active_calls(), 1u);
  gre_from_server(a, Verdict::drop);
  EXPECT_EQ(drops(DropReason::pptp_unknown_call), 1u);
  EXPECT_EQ(gre_call_id(gre_from_server(b)), 11);
  (void)port;
}

TEST_F(Pptp, IncomingCallReplyWanErrorAndSetLinkInfo) {
  const std::uint16_t port = connect(0);
  // Server-initiated call: the client answers with its own Call ID (10).
  const Bytes reply = from_client(0, icrp(0x55, 0x6001));
  const std::uint16_t pub = field(reply, 0, 12);
  EXPECT_NE(pub, 0x55);
  EXPECT_EQ(field(reply, 0, 14), 0x6001) << "the server's Call ID is untouched";
  EXPECT_EQ(field(from_server(port, wen(pub)), 0, 12), 0x55);
  EXPECT_EQ(field(from_server(port, sli(pub)), 0, 12), 0x55);
  EXPECT_EQ(count(NatCounter::pptp_call_ids_restored), 2u);
}

TEST_F(Pptp, SeveralMessagesInOneSegmentIncludingAnOddOffset) {
  connect(0);
  // A 13-byte message of an unknown type puts the next one at an odd offset:
  // the TCP checksum update must still be right (checked in run()).
  Bytes payload = message(99, 13, {});
  const Bytes second = ocrq(7);
  payload.insert(payload.end(), second.begin(), second.end());
  const Bytes third = ocrq(8);
  payload.insert(payload.end(), third.begin(), third.end());
  const Bytes out = from_client(0, payload);
  EXPECT_NE(field(out, 13, 12), 7);
  EXPECT_NE(field(out, 13 + 168, 12), 8);
  EXPECT_EQ(count(NatCounter::pptp_calls_created), 2u);
}

TEST_F(Pptp, ControlConnectionEndFreesItsCalls) {
  const std::uint16_t port = connect(0);
  const std::uint16_t pub = field(from_client(0, ocrq(1)), 0, 12);
  Bytes rst = tcp_packet({pac, public_addr}, 1723, port, flag::rst, Bytes());
  run(Direction::inbound, rst);
  now_ms += 250'000;  // past the transitory timeout after the RST
  engine->expire(now_ms, 1u << 20);
  EXPECT_EQ(engine->pptp().active_calls(), 0u);
  EXPECT_EQ(count(NatCounter::pptp_calls_cleared), 1u);
  gre_from_server(pub, Verdict::drop);
}

TEST_F(Pptp, GreWithoutCallDropped) {
  Bytes g = gre_packet({client(0), pac}, 1, true, 5);
  EXPECT_EQ(run(Direction::outbound, g).reason, DropReason::pptp_unknown_call);
  gre_from_server(5, Verdict::drop);
  EXPECT_EQ(drops(DropReason::pptp_unknown_call), 2u);
}

TEST_F(Pptp, DisabledLeavesControlAloneAndDropsGre) {
  make(/*enabled=*/false);
  connect(0);
  const Bytes q = from_client(0, ocrq(1));
  EXPECT_EQ(field(q, 0, 12), 1) << "no translation when disabled";
  Bytes g = gre_packet({client(0), pac}, 1, true, 5);
  EXPECT_EQ(run(Direction::outbound, g).reason, DropReason::pptp_disabled);
  EXPECT_EQ(drops(DropReason::pptp_disabled), 1u);
}

}  // namespace
}  // namespace passgate::nat
