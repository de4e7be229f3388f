// PPTP passthrough through the engine (lib/passthrough/pptp.hpp): Call ID
// translation on TCP 1723 and GRE v1 by key, with several clients behind
// one public address calling one server (RFC 2637); and what bounds the
// state a subscriber can make the tracker hold (issue 11.7, 11.10).
// Every engine step is followed by Engine::check_invariants().
#include <gtest/gtest.h>

#include <chrono>
#include <functional>

#include "nat/engine.hpp"
#include "packet/headers.hpp"
#include "support/checked_engine.hpp"
#include "support/nat_configs.hpp"
#include "support/packet_builder.hpp"

namespace passgate::nat {
namespace {

using namespace passgate::testing;
using stats::NatCounter;
namespace flag = packet::tcp_flag;
constexpr std::uint8_t psh = 0x08;

const be32 pac = ipv4(203, 0, 113, 60);
const be32 public_addr = ipv4(198, 51, 100, 1);
be32 client(int i) { return be32::from_host(ipv4(100, 64, 0, 20).host() + static_cast<std::uint32_t>(i)); }

// One PPTP control message (RFC 2637 section 2): fields at their offsets.
Bytes message(std::uint16_t type, std::uint16_t length, std::vector<std::pair<unsigned, std::uint16_t>> fields) {
  return pptp_message(type, length, fields);
}
Bytes sccrq() { return message(1, 156, {{12, 0x0100}}); }
Bytes echo_request() { return message(5, 16, {{12, 0x1234}}); }
Bytes ocrq(std::uint16_t call_id) { return message(7, 168, {{12, call_id}, {14, 0x0101}}); }
Bytes ocrp(std::uint16_t call_id, std::uint16_t peer) { return message(8, 32, {{12, call_id}, {14, peer}}); }
Bytes icrp(std::uint16_t call_id, std::uint16_t peer) { return message(10, 28, {{12, call_id}, {14, peer}}); }
Bytes ccrq(std::uint16_t call_id) { return message(12, 16, {{12, call_id}}); }
Bytes wen(std::uint16_t peer) { return message(14, 40, {{12, peer}}); }
Bytes sli(std::uint16_t peer) { return message(15, 24, {{12, peer}}); }
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes slice(const Bytes& b, std::size_t from, std::size_t to) {
  return Bytes(b.begin() + static_cast<std::ptrdiff_t>(from), b.begin() + static_cast<std::ptrdiff_t>(to));
}

unsigned total_length(const Bytes& p) { return static_cast<unsigned>((p[2] << 8) | p[3]); }
unsigned tcp_header_bytes(const Bytes& p) { return (p[ihl(p) + 12] >> 4) * 4u; }
unsigned payload_length(const Bytes& p) { return total_length(p) - ihl(p) - tcp_header_bytes(p); }
Bytes payload_of(const Bytes& p) { return slice(p, ihl(p) + tcp_header_bytes(p), total_length(p)); }
std::uint8_t tcp_flags(const Bytes& p) { return p[ihl(p) + 13]; }
std::uint16_t field(const Bytes& p, unsigned message_offset, unsigned off) {
  const unsigned at = ihl(p) + 20 + message_offset + off;
  return static_cast<std::uint16_t>((p[at] << 8) | p[at + 1]);
}
std::uint16_t gre_call_id(const Bytes& p) { return static_cast<std::uint16_t>((p[ihl(p) + 6] << 8) | p[ihl(p) + 7]); }

// One control connection: the client's port and public port, and the
// sequence number of the next byte the client sends.
struct Conn {
  int client;
  std::uint16_t sport, public_port;
  std::uint32_t seq;
  be32 public_address = public_addr;
};

class Pptp : public ::testing::Test {
 protected:
  void make(const std::function<void(NatConfig&)>& tweak = {}) {
    NatConfig c = one_address_config(public_addr, 4096);
    c.random_seed = 3;
    if (tweak) tweak(c);
    engine = Engine::create(c, nullptr);
    ASSERT_TRUE(engine);
  }
  void SetUp() override { make(); }

  Result run(Direction d, Bytes& p) {
    // check_invariants() is O(table sizes): the tests with huge tables check at their end.
    const Result r = check_each_step ? checked_process(*engine, d, p, now_ms) : engine->process(d, p, now_ms);
    if (r.verdict == Verdict::to_inside || r.verdict == Verdict::to_outside) {
      p.resize(total_length(p));  // as the dataplane cuts the frame to the IPv4 length
      EXPECT_EQ(checksum_problems(p), "");
    }
    return r;
  }
  void expire(std::uint64_t advance_ms) {
    now_ms += advance_ms;
    checked_expire(*engine, now_ms, 1u << 20);
  }
  // Opens client c's control connection (from port `sport`).
  Conn connect(int c, std::uint16_t sport = 0, Verdict expect = Verdict::to_outside) {
    Conn k{c, sport != 0 ? sport : static_cast<std::uint16_t>(40000 + c), 0, 5001};
    Bytes syn = tcp_packet({client(c), pac}, k.sport, 1723, flag::syn, Bytes(), 5000);
    EXPECT_EQ(run(Direction::outbound, syn).verdict, expect);
    if (expect != Verdict::to_outside) return k;
    k.public_port = l4_sport(syn);
    k.public_address = ip_src(syn);
    Bytes synack = tcp_packet({pac, k.public_address}, 1723, k.public_port, flag::syn | flag::ack, Bytes(), 9000, 5001);
    EXPECT_EQ(run(Direction::inbound, synack).verdict, Verdict::to_inside);
    return k;
  }
  // A segment of k from the client starting at `seq`.
  static Bytes segment(const Conn& k, const Bytes& payload, std::uint32_t seq, std::uint8_t flags = flag::ack | psh) {
    return tcp_packet({client(k.client), pac}, k.sport, 1723, flags, payload, seq, 9001);
  }
  // Sends the client's next segment, expects it forwarded, and moves k on by
  // what was forwarded.
  Bytes from_client(Conn& k, const Bytes& payload, std::uint8_t flags = flag::ack | psh) {
    Bytes p = segment(k, payload, k.seq, flags);
    EXPECT_EQ(run(Direction::outbound, p).verdict, Verdict::to_outside);
    k.seq += payload_length(p);
    return p;
  }
  // Sends the client's next segment and returns why it was dropped (none
  // when it was forwarded; then k moves on).
  DropReason refused(Conn& k, const Bytes& payload) {
    Bytes p = segment(k, payload, k.seq);
    const Result r = run(Direction::outbound, p);
    if (r.verdict == Verdict::to_outside) k.seq += payload_length(p);
    return r.verdict == Verdict::drop ? r.reason : DropReason::none;
  }
  Bytes from_server(const Conn& k, const Bytes& payload) {
    Bytes p = tcp_packet({pac, k.public_address}, 1723, k.public_port, flag::ack | psh, payload, 9001, k.seq);
    EXPECT_EQ(run(Direction::inbound, p).verdict, Verdict::to_inside);
    return p;
  }
  Bytes gre_from_server(std::uint16_t call_id, Verdict expect = Verdict::to_inside) {
    Bytes g = gre_packet({pac, public_addr}, 1, true, call_id);  // key: length 0, Call ID
    EXPECT_EQ(run(Direction::inbound, g).verdict, expect);
    return g;
  }
  Result gre_from_client(int c, std::uint16_t server_call_id) {
    Bytes g = gre_packet({client(c), pac}, 1, true, server_call_id);
    return run(Direction::outbound, g);
  }
  Result udp_from_client(int c, std::uint16_t sport) {
    Bytes u = udp_packet({client(c), ipv4(192, 0, 2, 9)}, sport, 53);
    return run(Direction::outbound, u);
  }
  std::uint64_t count(NatCounter c) const { return engine->counters().get(c); }
  std::uint64_t drops(DropReason r) const { return engine->counters().get(r); }

  std::unique_ptr<Engine> engine;
  std::uint64_t now_ms = 10'000;
  bool check_each_step = true;
};

TEST_F(Pptp, Rfc2637TwoClientsSameCallIdOneServer) {
  Conn k0 = connect(0), k1 = connect(1);
  // Both clients pick Call ID 1 for their first call.
  const Bytes q0 = from_client(k0, ocrq(1));
  const Bytes q1 = from_client(k1, ocrq(1));
  const std::uint16_t pub0 = field(q0, 0, 12), pub1 = field(q1, 0, 12);
  EXPECT_NE(pub0, pub1) << "translated Call IDs must be unique per public address and server";
  EXPECT_EQ(count(NatCounter::pptp_calls_created), 2u);
  // The server answers each, quoting the translated ID as Peer's Call ID.
  const Bytes r0 = from_server(k0, ocrp(0x7001, pub0));
  const Bytes r1 = from_server(k1, ocrp(0x7002, pub1));
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
  Conn k = connect(0);
  const std::uint16_t a = field(from_client(k, ocrq(10)), 0, 12);
  const std::uint16_t b = field(from_client(k, ocrq(11)), 0, 12);
  EXPECT_NE(a, b);
  EXPECT_EQ(engine->pptp().active_calls(), 2u);
  EXPECT_EQ(gre_call_id(gre_from_server(a)), 10);
  EXPECT_EQ(gre_call_id(gre_from_server(b)), 11);
  // The client clears call 10: its translated ID goes out, then the call is gone.
  const Bytes clear = from_client(k, ccrq(10));
  EXPECT_EQ(field(clear, 0, 12), a);
  EXPECT_EQ(engine->pptp().active_calls(), 1u);
  gre_from_server(a, Verdict::drop);
  EXPECT_EQ(drops(DropReason::pptp_unknown_call), 1u);
  EXPECT_EQ(gre_call_id(gre_from_server(b)), 11);
}

TEST_F(Pptp, IncomingCallReplyWanErrorAndSetLinkInfo) {
  Conn k = connect(0);
  // Server-initiated call: the client answers with its own Call ID (0x55).
  const Bytes reply = from_client(k, icrp(0x55, 0x6001));
  const std::uint16_t pub = field(reply, 0, 12);
  EXPECT_NE(pub, 0x55);
  EXPECT_EQ(field(reply, 0, 14), 0x6001) << "the server's Call ID is untouched";
  EXPECT_EQ(field(from_server(k, wen(pub)), 0, 12), 0x55);
  EXPECT_EQ(field(from_server(k, sli(pub)), 0, 12), 0x55);
  EXPECT_EQ(count(NatCounter::pptp_call_ids_restored), 2u);
}

TEST_F(Pptp, SeveralMessagesInOneSegmentIncludingAnOddOffset) {
  Conn k = connect(0);
  // A 13-byte message of an unknown type puts the next one at an odd offset:
  // the TCP checksum update must still be right (checked in run()).
  const Bytes out = from_client(k, cat({message(99, 13, {}), ocrq(7), ocrq(8)}));
  EXPECT_NE(field(out, 13, 12), 7);
  EXPECT_NE(field(out, 13 + 168, 12), 8);
  EXPECT_EQ(count(NatCounter::pptp_calls_created), 2u);
}

TEST_F(Pptp, ControlConnectionEndFreesItsCalls) {
  Conn k = connect(0);
  const std::uint16_t pub = field(from_client(k, ocrq(1)), 0, 12);
  Bytes rst = tcp_packet({pac, public_addr}, 1723, k.public_port, flag::rst, Bytes());
  run(Direction::inbound, rst);
  expire(250'000);  // past the transitory timeout after the RST
  EXPECT_EQ(engine->pptp().active_calls(), 0u);
  EXPECT_EQ(count(NatCounter::pptp_calls_cleared), 1u);
  gre_from_server(pub, Verdict::drop);
}

TEST_F(Pptp, GreWithoutCallDropped) {
  EXPECT_EQ(gre_from_client(0, 5).reason, DropReason::pptp_unknown_call);
  gre_from_server(5, Verdict::drop);
  EXPECT_EQ(drops(DropReason::pptp_unknown_call), 2u);
}

TEST_F(Pptp, DisabledLeavesControlAloneAndDropsGre) {
  make([](NatConfig& c) { c.passthrough.pptp.enabled = false; });
  Conn k = connect(0);
  const Bytes q = from_client(k, ocrq(1));
  EXPECT_EQ(field(q, 0, 12), 1) << "no translation when disabled";
  // Not even a split message is touched.
  EXPECT_EQ(payload_length(from_client(k, slice(ocrq(2), 0, 20))), 20u);
  EXPECT_EQ(gre_from_client(0, 5).reason, DropReason::pptp_disabled);
  EXPECT_EQ(drops(DropReason::pptp_disabled), 1u);
}

// ---------------------------------------------------------------- bounds

// Issue 11.7: one subscriber opening calls without end used to take every
// slot of the worker's call table (and GRE keys of its public address).
TEST_F(Pptp, SubscriberCannotOpenUnboundedPptpCalls) {
  make([](NatConfig& c) { c.passthrough.pptp.max_calls_per_subscriber = 4; });
  Conn k = connect(0);
  for (std::uint16_t id = 1; id <= 4; ++id) EXPECT_EQ(refused(k, ocrq(id)), DropReason::none);
  EXPECT_EQ(refused(k, ocrq(5)), DropReason::pptp_call_limit)
      << "the 5th call is refused: its request is dropped, never forwarded untranslated";
  EXPECT_EQ(refused(k, icrp(6, 0x6001)), DropReason::pptp_call_limit) << "an Incoming-Call-Reply opens a call too";
  EXPECT_EQ(engine->pptp().active_calls(), 4u);
  EXPECT_EQ(count(NatCounter::pptp_calls_refused), 2u);
  EXPECT_EQ(drops(DropReason::pptp_call_limit), 2u);
  // The limit is the subscriber's, not the control connection's.
  Conn second = connect(0, 41000);
  EXPECT_EQ(refused(second, ocrq(9)), DropReason::pptp_call_limit);
  // Another subscriber behind the same public address is not affected.
  Conn other = connect(1);
  EXPECT_EQ(refused(other, ocrq(5)), DropReason::none);
  // TCP resends the refused request; once a call is cleared it passes.
  from_client(k, ccrq(1));
  EXPECT_EQ(refused(k, ocrq(5)), DropReason::none);
  EXPECT_EQ(engine->pptp().active_calls(), 5u);
}

// Control connections hold tracker state too (their calls, their message
// boundaries): bounded by the same per-subscriber limit.
TEST_F(Pptp, SubscriberCannotPinUnboundedPptpControlConnections) {
  make([](NatConfig& c) { c.passthrough.pptp.max_calls_per_subscriber = 3; });
  for (std::uint16_t i = 0; i < 3; ++i) connect(0, static_cast<std::uint16_t>(41000 + i));
  connect(0, 41003, Verdict::drop);
  EXPECT_EQ(drops(DropReason::pptp_call_limit), 1u);
  EXPECT_EQ(engine->pptp().active_controls(), 3u);
  connect(1);  // another subscriber still connects
  EXPECT_EQ(engine->pptp().active_controls(), 4u);
}

// A control connection leaving through a static mapping has no subscriber
// (no session quota to count against), but its host is bounded all the same.
TEST_F(Pptp, ControlThroughAStaticMappingIsBoundedPerHost) {
  make([](NatConfig& c) {
    c.static_mappings.push_back({packet::ip_proto::tcp, client(7), be16::from_host(40007), ipv4(198, 51, 100, 200),
                                 be16::from_host(1723)});
    c.passthrough.pptp.max_calls_per_subscriber = 2;
  });
  Conn k = connect(7);
  EXPECT_EQ(k.public_port, 1723) << "through the static mapping";
  EXPECT_EQ(refused(k, ocrq(1)), DropReason::none);
  EXPECT_EQ(refused(k, ocrq(2)), DropReason::none);
  EXPECT_EQ(refused(k, ocrq(3)), DropReason::pptp_call_limit);
  EXPECT_EQ(k.public_address, ipv4(198, 51, 100, 200));
  Bytes rst = tcp_packet({pac, k.public_address}, 1723, k.public_port, flag::rst, Bytes());
  run(Direction::inbound, rst);
  expire(250'000);
  EXPECT_EQ(engine->pptp().active_calls(), 0u);
  EXPECT_EQ(engine->pptp().active_controls(), 0u);
}

// Issue 11.7: calls count against the subscriber's session limit (RFC 6888
// REQ-5) like its TCP/UDP sessions, ESP SAs and GRE tunnels.
TEST_F(Pptp, PptpCallsCountAgainstTheSubscriberSessionLimit) {
  make([](NatConfig& c) {
    c.pools[0].max_sessions_per_subscriber = 4;
    c.passthrough.pptp.call_idle_timeout = 600;
  });
  Conn k = connect(0);  // session 1
  for (std::uint16_t id = 1; id <= 3; ++id) EXPECT_EQ(refused(k, ocrq(id)), DropReason::none);  // 2..4
  EXPECT_EQ(refused(k, ocrq(4)), DropReason::subscriber_session_limit);
  EXPECT_EQ(udp_from_client(0, 5353).reason, DropReason::subscriber_session_limit)
      << "three calls and the control connection are the subscriber's four sessions";
  EXPECT_EQ(udp_from_client(1, 5353).verdict, Verdict::to_outside) << "other subscribers are not affected";
  from_client(k, ccrq(2));
  EXPECT_EQ(udp_from_client(0, 5353).verdict, Verdict::to_outside);
  // Idle calls give their sessions back too.
  expire(601'000);
  EXPECT_EQ(engine->pptp().active_calls(), 0u);
  EXPECT_EQ(count(NatCounter::pptp_calls_expired), 2u);
}

// ------------------------------------------------- split control messages

// Issue 11.7: a client that splits an Outgoing-Call-Request so that no
// segment holds a whole message used to get it forwarded uninspected, its
// own Call ID reaching the server (where it may equal another client's
// translated one).
TEST_F(Pptp, SplitCallRequestIsNeverForwardedUntranslated) {
  Conn k = connect(0);
  const Bytes q = ocrq(0x4242);
  for (std::size_t cut : {6u, 10u, 11u, 12u, 13u, 14u, 20u, 167u}) {
    Bytes head = segment(k, slice(q, 0, cut), k.seq);
    EXPECT_EQ(run(Direction::outbound, head).reason, DropReason::pptp_split_message) << "head of " << cut;
    Bytes tail = segment(k, slice(q, cut, q.size()), k.seq + static_cast<std::uint32_t>(cut));
    EXPECT_EQ(run(Direction::outbound, tail).reason, DropReason::pptp_split_message) << "tail from " << cut;
  }
  EXPECT_EQ(engine->pptp().active_calls(), 0u);
  // TCP resends; whole, it is translated.
  EXPECT_NE(field(from_client(k, q), 0, 12), 0x4242);
  EXPECT_EQ(engine->pptp().active_calls(), 1u);
}

// Several messages coalesced into one segment (Nagle) may end in a part of
// the next: the segment is cut back to its last whole message, so the server
// acknowledges only that much and the client's TCP resends the rest, which
// then starts on a message boundary.
TEST_F(Pptp, CoalescedSegmentIsCutAtItsLastWholeMessage) {
  Conn k = connect(0);
  const Bytes q = ocrq(0x4242);
  const Bytes out = from_client(k, cat({sccrq(), slice(q, 0, 40)}), flag::ack | psh | flag::fin);
  EXPECT_EQ(payload_of(out), sccrq());
  EXPECT_FALSE(tcp_flags(out) & flag::fin) << "a FIN after the cut bytes is not sent either";
  EXPECT_EQ(count(NatCounter::pptp_segments_trimmed), 1u);
  EXPECT_EQ(engine->pptp().active_calls(), 0u);
  const Bytes again = from_client(k, cat({q, echo_request()}));
  EXPECT_NE(field(again, 0, 12), 0x4242);
  EXPECT_EQ(engine->pptp().active_calls(), 1u);
}

// Issue 11.7: TCP lets a later segment fill in bytes an earlier one did not
// carry; a segment that starts in the middle of the stream's message (here:
// sent ahead, out of order) is framed differently by the NAT and by the
// server, so its Call IDs could pass untranslated. Only segments that start
// on a known message boundary are inspected and forwarded.
TEST_F(Pptp, OverlappingSegmentsCannotSmuggleAnUntranslatedCallId) {
  Conn k = connect(0);
  // Ahead of the stream: a harmless-looking message whose body, from its
  // 68th byte, is an Outgoing-Call-Request as the server will frame it once
  // the 168-byte request below arrives in front of it.
  Bytes body = message(99, 336, {});
  const Bytes hidden = ocrq(0x4242);
  std::copy(hidden.begin(), hidden.end(), body.begin() + 68);
  Bytes ahead = segment(k, body, k.seq + 100);
  EXPECT_EQ(run(Direction::outbound, ahead).reason, DropReason::pptp_split_message);
  const Bytes first = from_client(k, ocrq(1));
  // The same trick over data already sent: a resend must frame as before.
  Bytes overlap = segment(k, body, k.seq - 68);
  EXPECT_EQ(run(Direction::outbound, overlap).reason, DropReason::pptp_split_message);
  Bytes reframed = segment(k, cat({echo_request(), message(99, 152, {})}), k.seq - 168);
  EXPECT_EQ(run(Direction::outbound, reframed).reason, DropReason::pptp_split_message);
  EXPECT_EQ(engine->pptp().active_calls(), 1u);
  (void)first;
}

// A resend of a forwarded segment (lost on the way to the server) is
// translated again the same way; it opens no second call.
TEST_F(Pptp, ResentCallRequestKeepsItsTranslation) {
  Conn k = connect(0);
  const std::uint32_t at = k.seq;
  const std::uint16_t pub = field(from_client(k, ocrq(3)), 0, 12);
  Bytes again = segment(k, ocrq(3), at);
  ASSERT_EQ(run(Direction::outbound, again).verdict, Verdict::to_outside);
  EXPECT_EQ(field(again, 0, 12), pub);
  EXPECT_EQ(count(NatCounter::pptp_calls_created), 1u);
  // A resend that joins the lost segment with the next message.
  Bytes joined = segment(k, cat({ocrq(3), ocrq(4)}), at);
  ASSERT_EQ(run(Direction::outbound, joined).verdict, Verdict::to_outside);
  EXPECT_EQ(field(joined, 0, 12), pub);
  EXPECT_NE(field(joined, 168, 12), 4);
  EXPECT_EQ(engine->pptp().active_calls(), 2u);
}

// An IP-fragmented control segment cannot be inspected whole (its Call ID
// may sit in a later fragment): dropped, the client's PMTU discovery or TCP
// sends it again in one piece.
TEST_F(Pptp, FragmentedCallRequestIsDropped) {
  Conn k = connect(0);
  const std::vector<Bytes> pieces = fragment(segment(k, ocrq(0x4242), k.seq), 64);
  ASSERT_GE(pieces.size(), 2u);
  Bytes first = pieces[0];
  EXPECT_EQ(run(Direction::outbound, first).reason, DropReason::pptp_split_message);
  for (std::size_t i = 1; i < pieces.size(); ++i) {
    Bytes later = pieces[i];
    EXPECT_NE(run(Direction::outbound, later).verdict, Verdict::to_outside);
  }
  EXPECT_EQ(engine->pptp().active_calls(), 0u);
}

// ------------------------------------------------------- no scans (11.10)

// Closing a control connection frees its calls, and only those, without
// walking the whole call table: with a large table, closing hundreds of
// control connections is no slower than with a small one.
TEST_F(Pptp, ControlCloseFreesOnlyItsCallsWithoutScan) {
  make([](NatConfig& c) {
    c.passthrough.pptp.max_calls = 1u << 19;
    c.passthrough.pptp.max_calls_per_subscriber = 65535;
  });
  check_each_step = false;
  Conn keep = connect(1);
  const std::uint16_t kept = field(from_client(keep, ocrq(1)), 0, 12);
  constexpr int n = 400;
  std::vector<Conn> conns;
  for (int i = 0; i < n; ++i) {
    conns.push_back(connect(0, static_cast<std::uint16_t>(20000 + i)));
    from_client(conns.back(), ocrq(static_cast<std::uint16_t>(i + 1)));
    from_client(conns.back(), ocrq(static_cast<std::uint16_t>(i + 1001)));
  }
  EXPECT_EQ(engine->pptp().active_calls(), 2u * n + 1);
  EXPECT_EQ(engine->check_invariants(), "");
  for (const Conn& k : conns) {
    Bytes rst = tcp_packet({pac, public_addr}, 1723, k.public_port, flag::rst, Bytes());
    run(Direction::inbound, rst);
  }
  // Keep the other client's call and control connection busy meanwhile.
  now_ms += 200'000;
  from_client(keep, echo_request());
  EXPECT_EQ(gre_from_client(1, 0x7001).verdict, Verdict::to_outside);
  now_ms += 50'000;
  const auto start = std::chrono::steady_clock::now();
  engine->expire(now_ms, 1u << 20);  // frees the n control connections and their calls
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(engine->check_invariants(), "");
  EXPECT_EQ(engine->pptp().active_calls(), 1u);
  EXPECT_EQ(engine->pptp().active_controls(), 1u);
  EXPECT_EQ(count(NatCounter::pptp_calls_cleared), 2u * n);
  EXPECT_EQ(gre_call_id(gre_from_server(kept)), 1);
  // A scan of the table per connection takes seconds here; the lists take
  // well under a millisecond.
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), 250);
}

// The idle check runs per call through a timer wheel, within the expiry
// budget, not over the whole call table once a second.
TEST_F(Pptp, CallExpiryDoesNotScanEveryCall) {
  make([](NatConfig& c) { c.passthrough.pptp.max_calls = 1u << 19; });
  check_each_step = false;
  Conn k = connect(0);
  const std::uint16_t pub = field(from_client(k, ocrq(1)), 0, 12);
  const auto start = std::chrono::steady_clock::now();
  for (int second = 0; second < 1000; ++second) {
    now_ms += 1000;
    engine->expire(now_ms, 64);
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(engine->check_invariants(), "");
  EXPECT_EQ(gre_call_id(gre_from_server(pub)), 1);
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), 250);
}

// Outbound GRE keeps every call of its client alive; without it the call
// goes after call_idle_timeout, and exactly once.
TEST_F(Pptp, IdleCallsExpireUnlessTheirClientSendsGre) {
  make([](NatConfig& c) { c.passthrough.pptp.call_idle_timeout = 600; });
  Conn k0 = connect(0), k1 = connect(1);
  const std::uint16_t pub0 = field(from_client(k0, ocrq(1)), 0, 12);
  const std::uint16_t pub1 = field(from_client(k1, ocrq(1)), 0, 12);
  for (int minute = 0; minute < 20; ++minute) {
    expire(60'000);
    EXPECT_EQ(gre_from_client(0, 0x7001).verdict, Verdict::to_outside);
    from_client(k1, echo_request());  // control traffic is not call traffic
  }
  EXPECT_EQ(gre_call_id(gre_from_server(pub0)), 1);
  gre_from_server(pub1, Verdict::drop);
  EXPECT_EQ(count(NatCounter::pptp_calls_expired), 1u);
  EXPECT_EQ(engine->pptp().active_calls(), 1u);
  // Clearing the expired call frees nothing twice; its Call ID, which the
  // server may know as another client's translated one, goes out as 0.
  EXPECT_EQ(field(from_client(k1, ccrq(1)), 0, 12), 0);
  EXPECT_EQ(engine->pptp().active_calls(), 1u);
}

// A server quoting the translated Call ID of another control connection's
// call gets nothing restored: each connection sees only its own calls.
TEST_F(Pptp, ServerMessagesRestoreOnlyTheirOwnConnectionsCalls) {
  Conn k0 = connect(0), k1 = connect(1);
  const std::uint16_t pub0 = field(from_client(k0, ocrq(1)), 0, 12);
  EXPECT_EQ(field(from_server(k1, sli(pub0)), 0, 12), pub0);
  EXPECT_EQ(field(from_server(k0, sli(pub0)), 0, 12), 1);
}

}  // namespace
}  // namespace passgate::nat
