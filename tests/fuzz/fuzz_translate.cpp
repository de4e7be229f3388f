// libFuzzer target: one IPv4 packet through parse_ipv4() and a long-lived NAT
// engine.
//
// Input: byte 0 is control, the rest is the packet (from the IPv4 header on).
//   bit 0      direction: 0 = outbound (inside -> outside), 1 = inbound
//   bit 1      steer: aim the packet at a session an earlier input created
//              (see steer() below), so inbound translation, ICMP errors,
//              TCP state and hairpinning are reachable although the public
//              ports are chosen at random by the engine
//   bits 2..7  how far the clock moves before this packet: v < 48 moves
//              v x 50 ms + 1 ms (fragments of consecutive inputs meet),
//              v >= 48 moves (v - 47) x 15 s (sessions time out)
// The packet is copied into an exactly-sized heap buffer, so AddressSanitizer
// reports any read or write past its end.
//
// Invariants checked (abort on violation):
//   - the engine's verdict agrees with parse_ipv4(): malformed <=> drop(malformed)
//   - a translated packet still parses, its public side is in the pool and
//     its inside side in the subscriber prefix
//   - RFC 1624: when every checksum of the input verified
//     (testing::checksum_problems(), a full independent recomputation), every
//     checksum of the translated packet verifies too
//   - released out-of-order fragments have a correct IPv4 header checksum
//   - Engine::check_invariants() is empty after every input (the engine
//     lives across inputs: a violation may depend on earlier ones; the
//     stateful target fuzz_ops.cpp makes such bugs reproducible)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "nat/engine.hpp"
#include "packet/checksum.hpp"
#include "packet/headers.hpp"
#include "packet/parse.hpp"
#include "support/packet_builder.hpp"

namespace {

using namespace passgate;
using packet::be16;
using packet::be32;
using packet::ipv4;
using packet::L4Kind;
using packet::load;
using packet::ParsedIpv4;
using packet::ParseError;
using packet::store;

const nat::Ipv4Prefix kSubscribers{ipv4(100, 64, 0, 0), 10};
const nat::Ipv4Prefix kPublic{ipv4(198, 51, 100, 0), 30};

nat::Engine& engine() {
  static std::unique_ptr<nat::Engine> e = [] {
    nat::NatConfig c;
    nat::PoolConfig pool;
    pool.name = "fuzz";
    pool.subscribers.push_back(kSubscribers);
    pool.public_addresses.push_back(nat::AddressRange{ipv4(198, 51, 100, 0), ipv4(198, 51, 100, 3)});
    // Small tables: check_invariants() after every input is O(table sizes)
    // and dominated the run time at 512 sessions (7k inputs/s; 100 million
    // executions need far more). A quarter of the inputs move the clock by
    // 15 s to 4 min, so sessions time out and the table both fills and
    // empties; 2048-port blocks (124 blocks).
    pool.block_size = 2048;
    c.pools.push_back(pool);
    c.max_sessions = 128;
    c.max_subscribers = 32;
    c.passthrough.esp.max_sas = 32;
    c.passthrough.pptp.max_calls = 32;
    c.passthrough.gre.max_tunnels = 32;
    c.fragment_flows = 32;
    c.random_seed = 0x5eed'f022'0000'0001ull;
    std::vector<std::string> errors;
    auto engine = nat::Engine::create(c, &errors);
    if (!engine) {
      for (const auto& line : errors) std::fprintf(stderr, "fuzz config: %s\n", line.c_str());
      std::abort();
    }
    return engine;
  }();
  return *e;
}

std::uint64_t g_now_ms = 1'000'000;  // advances with every input

// Endpoints of sessions earlier inputs created, for steering.
struct Seen {
  std::uint8_t proto;  // ip_proto::tcp / udp / icmp
  be32 in_addr, out_addr, rem_addr;
  be16 in_port, out_port, rem_port;  // ICMP: identifier in in/out_port
};
constexpr std::size_t kSeen = 16;
Seen g_seen[kSeen];
std::size_t g_seen_count = 0;

[[noreturn]] void fail(const char* what, const std::vector<std::uint8_t>& before,
                       const std::vector<std::uint8_t>& after, const std::string& detail = {}) {
  std::fprintf(stderr, "fuzz_translate: %s %s\n  in :", what, detail.c_str());
  for (auto b : before) std::fprintf(stderr, " %02x", b);
  std::fprintf(stderr, "\n  out:");
  for (auto b : after) std::fprintf(stderr, " %02x", b);
  std::fprintf(stderr, "\n");
  std::abort();
}

// ----------------------------------------------- checksum recomputation
// Used only to keep a steered packet clean when the input was clean; the
// check itself is testing::checksum_problems(), written independently.

std::uint16_t get16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }

void fix_transport(std::uint8_t* ip, std::size_t total) {
  const std::size_t ihl = (ip[0] & 0x0fu) * 4u;
  if (ihl < 20 || total < ihl) return;
  const std::size_t l4 = total - ihl;
  std::uint8_t* t = ip + ihl;
  const std::span<const std::uint8_t> seg(t, l4);
  const be32 src = load<be32>(ip + 12), dst = load<be32>(ip + 16);
  switch (ip[9]) {
    case packet::ip_proto::tcp:
      if (l4 < 18) return;
      store(t + 16, be16{0});
      store(t + 16, packet::internet_checksum(seg, packet::pseudo_header_sum(src, dst, ip[9], static_cast<std::uint16_t>(l4))));
      return;
    case packet::ip_proto::udp: {
      if (l4 < 8 || get16(t + 6) == 0) return;  // no checksum stays none
      store(t + 6, be16{0});
      be16 c = packet::internet_checksum(seg, packet::pseudo_header_sum(src, dst, ip[9], static_cast<std::uint16_t>(l4)));
      if (c.raw == 0) c.raw = 0xffff;
      store(t + 6, c);
      return;
    }
    case packet::ip_proto::icmp:
      if (l4 < 4) return;
      store(t + 2, be16{0});
      store(t + 2, packet::internet_checksum(seg));
      return;
    default:
      return;
  }
}

void fix_ip_header(std::uint8_t* ip) {
  const std::size_t ihl = (ip[0] & 0x0fu) * 4u;
  store(ip + 10, be16{0});
  store(ip + 10, packet::internet_checksum(std::span<const std::uint8_t>(ip, ihl)));
}

// Every checksum checksum_problems() looks at, recomputed.
void fix_checksums(std::vector<std::uint8_t>& p, const ParsedIpv4& parsed) {
  std::uint8_t* ip = p.data();
  if (!parsed.fragmented) {
    if (parsed.kind == L4Kind::icmp_error) {
      std::uint8_t* inner = ip + parsed.inner.ip_offset;
      const std::size_t quoted = parsed.total_length - parsed.inner.ip_offset;
      fix_ip_header(inner);
      const std::size_t inner_total = get16(inner + 2);
      const bool inner_fragment = (get16(inner + 6) & 0x3fff) != 0;
      if (inner_total == quoted && !inner_fragment) fix_transport(inner, inner_total);
    }
    fix_transport(ip, parsed.total_length);
  }
  fix_ip_header(ip);
}

// ------------------------------------------------------------- steering

void remember(const ParsedIpv4& before, const std::vector<std::uint8_t>& after) {
  if (before.kind != L4Kind::tcp && before.kind != L4Kind::udp && before.kind != L4Kind::icmp_query) return;
  ParsedIpv4 out{};
  if (packet::parse_ipv4(after, out) != ParseError::ok) return;
  Seen s{};
  s.proto = before.proto;
  s.in_addr = before.src;
  s.in_port = before.src_port;
  s.out_addr = out.src;
  s.out_port = out.src_port;
  s.rem_addr = out.dst;
  s.rem_port = before.kind == L4Kind::icmp_query ? be16{0} : out.dst_port;
  g_seen[g_seen_count++ % kSeen] = s;
}

const Seen* pick(std::uint8_t proto, unsigned salt) {
  const std::size_t n = g_seen_count < kSeen ? g_seen_count : kSeen;
  for (std::size_t k = 0; k < n; ++k) {
    const Seen& s = g_seen[(salt + k) % n];
    if (s.proto == proto) return &s;
  }
  return nullptr;
}

// TCP/UDP ports; an ICMP query's identifier is stored by the caller.
void set_ports(std::uint8_t* l4, std::uint8_t proto, be16 src_port, be16 dst_port) {
  if (proto == packet::ip_proto::icmp) return;
  store(l4, src_port);
  store(l4 + 2, dst_port);
}

// Rewrites the packet's endpoints to match a remembered session. Returns
// whether anything changed.
bool steer(std::vector<std::uint8_t>& p, const ParsedIpv4& parsed, nat::Direction dir) {
  std::uint8_t* ip = p.data();
  const unsigned salt = parsed.ip_id.raw;
  const bool inbound = dir == nat::Direction::inbound;
  if (parsed.kind == L4Kind::tcp || parsed.kind == L4Kind::udp || parsed.kind == L4Kind::icmp_query) {
    std::uint8_t* l4 = ip + parsed.ihl_bytes;
    if (inbound) {
      // A reply from the remote end to the public endpoint.
      const Seen* s = pick(parsed.proto, salt);
      if (!s) return false;
      store(ip + 12, s->rem_addr);
      store(ip + 16, s->out_addr);
      set_ports(l4, parsed.proto, s->rem_port, s->out_port);
      if (parsed.proto == packet::ip_proto::icmp) store(l4 + 4, s->out_port);
    } else if (salt & 0x100) {
      // Hairpin: from some subscriber to another session's public endpoint.
      const Seen* s = pick(parsed.proto, salt);
      if (!s || parsed.proto == packet::ip_proto::icmp) return false;
      store(ip + 16, s->out_addr);
      store(l4 + 2, s->out_port);
    } else {
      // More packets of an existing session from the inside.
      const Seen* s = pick(parsed.proto, salt);
      if (!s) return false;
      store(ip + 12, s->in_addr);
      store(ip + 16, s->rem_addr);
      set_ports(l4, parsed.proto, s->in_port, s->rem_port);
      if (parsed.proto == packet::ip_proto::icmp) store(l4 + 4, s->in_port);
    }
    return true;
  }
  if (parsed.kind == L4Kind::icmp_error) {
    const packet::IcmpInner& in = parsed.inner;
    const Seen* s = pick(in.proto, salt);
    if (!s) return false;
    std::uint8_t* inner = ip + in.ip_offset;
    std::uint8_t* l4 = ip + in.l4_offset;
    if (inbound) {
      // An error about a packet we sent: it quotes public -> remote.
      store(ip + 16, s->out_addr);
      store(inner + 12, s->out_addr);
      store(inner + 16, s->rem_addr);
      if (in.proto == packet::ip_proto::icmp) store(l4 + 4, s->out_port);
      set_ports(l4, in.proto, s->out_port, s->rem_port);
    } else {
      // An inside host's error about a packet it received: remote -> inside.
      store(inner + 12, s->rem_addr);
      store(inner + 16, s->in_addr);
      if (in.proto == packet::ip_proto::icmp) store(l4 + 4, s->in_port);
      set_ports(l4, in.proto, s->rem_port, s->in_port);
    }
    return true;
  }
  return false;
}

void check_released(const std::vector<std::uint8_t>& input) {
  nat::Engine& e = engine();
  e.drain_released([&](std::span<std::uint8_t> bytes, nat::Verdict verdict) {
    const std::vector<std::uint8_t> copy(bytes.begin(), bytes.end());
    if (verdict != nat::Verdict::to_outside && verdict != nat::Verdict::to_inside)
      fail("released fragment with a non-forwarding verdict", input, copy);
    // Held fragments passed parse_ipv4() with header checksum verification,
    // so their rewritten header must verify too.
    const std::string problems = testing::checksum_problems(copy);
    if (!problems.empty()) fail("released fragment has bad checksums:", input, copy, problems);
  });
}

bool in_prefix(const nat::Ipv4Prefix& prefix, be32 a) { return prefix.contains(a); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t control = data[0];
  const nat::Direction dir = (control & 1) ? nat::Direction::inbound : nat::Direction::outbound;
  const std::uint64_t step = control >> 2;
  g_now_ms += step < 48 ? 1 + step * 50 : (step - 47) * 15'000;

  // Exactly-sized heap copy: ASan catches any access past the end.
  std::vector<std::uint8_t> pkt(data + 1, data + size);

  ParsedIpv4 parsed{};
  ParseError err = packet::parse_ipv4(pkt, parsed);
  {
    // The parser with checksum checks off must accept whatever it accepts
    // with them on, and agree on the layout.
    ParsedIpv4 loose{};
    const ParseError e2 = packet::parse_ipv4(pkt, loose, packet::ParseOptions{false, false});
    if (err == ParseError::ok && (e2 != ParseError::ok || loose.kind != parsed.kind ||
                                  loose.total_length != parsed.total_length))
      fail("parse with checksum checks off disagrees", pkt, pkt);
  }
  bool clean = err == ParseError::ok && testing::checksum_problems(pkt).empty();

  if ((control & 2) && err == ParseError::ok && steer(pkt, parsed, dir)) {
    if (clean) fix_checksums(pkt, parsed);
    err = packet::parse_ipv4(pkt, parsed);
    clean = err == ParseError::ok && testing::checksum_problems(pkt).empty();
  }

  const std::vector<std::uint8_t> input = pkt;
  nat::Engine& e = engine();
  const nat::Result r = e.process(dir, pkt, g_now_ms);

  if ((err != ParseError::ok) != (r.verdict == nat::Verdict::drop && r.reason == nat::DropReason::malformed))
    fail("engine and parse_ipv4 disagree on malformed:", input, pkt, packet::parse_error_name(err));
  if (r.verdict == nat::Verdict::drop || r.verdict == nat::Verdict::held) {
    if (pkt.size() != input.size()) fail("size changed", input, pkt);
  } else {
    ParsedIpv4 out{};
    const ParseError out_err = packet::parse_ipv4(pkt, out);
    if (out_err != ParseError::ok)
      fail("translated packet no longer parses:", input, pkt, packet::parse_error_name(out_err));
    if (r.verdict == nat::Verdict::to_outside && !in_prefix(kPublic, out.src))
      fail("outbound translation left a non-public source", input, pkt);
    if (r.verdict == nat::Verdict::to_inside && !in_prefix(kSubscribers, out.dst))
      fail("inbound translation left a non-subscriber destination", input, pkt);
    if (clean) {
      const std::string problems = testing::checksum_problems(pkt);
      if (!problems.empty()) fail("RFC 1624 update broke a checksum:", input, pkt, problems);
    }
    if (dir == nat::Direction::outbound && r.verdict == nat::Verdict::to_outside) remember(parsed, pkt);
  }

  e.expire(g_now_ms);
  check_released(input);
  // Issue 11 point 2: every table consistent after every input.
  if (const std::string problem = e.check_invariants(); !problem.empty())
    fail("check_invariants():", input, pkt, problem);
  return 0;
}
