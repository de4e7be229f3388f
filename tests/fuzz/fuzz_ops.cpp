// libFuzzer target: a sequence of operations on ONE small NAT engine, to find
// state bugs (leaks, double frees, counts that drift, translations without
// state) rather than parser bugs (fuzz_translate covers those).
//
// Every input starts a fresh engine (policy P0 below, clock at 1000 ms as the
// dataplane starts it) and is decoded as operations: one opcode byte (taken
// modulo the number of operations), then a fixed number of argument bytes
// (missing bytes read as 0). Arguments index small sets of subscribers,
// remotes, ports, SPIs and Call IDs so that state collides often, and the
// tables are tiny so that every limit is reached within a few operations.
// Replies are aimed at what the engine emitted earlier (rings of recent
// flows, packets and Call IDs), so inbound traffic hits live mappings.
//
//   op  name          args   meaning
//   0   udp_out       3      who(sub 0-2, remote 3-4, zero csum 5) ports(sport 0-2, dport 3-5) len
//   1   tcp_out       3      who ports flags(TCP flags 0-5, payload bit 6)
//   2   icmp_out      2      who kind(id 0-1, timestamp 2, echo reply 3)
//   3   reply_in      3      pick(flow ring: 0 = latest) mod(0-1: other remote addr/port, 2-7 len) flags
//   4   random_in     3      dst(public 0-2, port 3-6, tcp 7) src(remote 0-1, port 2-4) flags
//   5   icmp_err_in   3      pick(sent-out ring) type(kind 0-1, 28-byte quote 2) src(remote 0-1, from the remote 2)
//   6   icmp_err_out  3      pick(sent-in ring) type who(sender sub 0-2 when bit 7, else the quoted host)
//   7   fragments     5      what(in 0, tcp 1, sub/pick 2-4, ip id 5-6) len chunk order(rotate 0-2,
//                            reverse 3, repeat first 4) skip(bitmask of fragments not sent)
//   8   esp_out       2      who spi(0-1)
//   9   esp_in        2      dst(public 0-2, remote 3-4) spi(0-2)
//   10  gre0          2      who(sub or public 0-2, remote 3-4) flags(in 0, key 1, seq 2)
//   11  gre1          2      who(in 7) call(out: server Call ID; in: call ring unless bit 7)
//   12  pptp_connect  2      who sport(0-1): SYN out, SYN-ACK in, ACK out on TCP 1723
//   13  pptp_out      4      who(sub 0-2, server 3-4, stream 5-6: new data, resend what was not
//                            forwarded, overlap, gap; bit 7: a recent 1723 flow) sport msgs(type 0-2,
//                            call id 3-4, second message 5, garbage prefix 6) split(0 = one
//                            segment, else the split point scaled); sequence numbers follow the
//                            client's stream, which the engine frames messages by
//   14  pptp_in       4      pick(1723 flow) msgs(type 0-2, second 5) call(call ring unless bit 7) split
//   15  ike           2      who kind(port 0-1 of 500/4500/1701/500->4500, reply in 2, keepalive 3)
//   16  time          1      advance (b&63)+1 x {1 ms, 100 ms, 1 s, 10 s}[b>>6], then expire()
//   17  expire_some   1      advance (b>>2) x 250 ms, expire() with a budget of (b&3)+1
//   18  reconfigure   1      to policy P(b&3) when reconfigure_problems() is empty, with
//                            draining_addresses(next); (b>>2)&3: 0 reconfigure(), 1 plan_reload()
//                            + apply(), 2 plan only (kept), 3 apply the kept plan (maybe stale)
//   19  drain         0      drain_released()
//   20  hairpin       3      who(sub 0-2, sport 3-5) pick(flow ring) flags
//   21  out_again     2      pick(flow ring) flags: one more packet of a known flow from inside
//
// After every packet and every operation (abort on violation):
//   - Engine::check_invariants() is empty;
//   - every emitted packet (process() and drain_released()) has every
//     checksum right by full recomputation (testing::checksum_problems():
//     IPv4, TCP/UDP with the pseudo header, ICMP and an ICMP error's embedded
//     packet) and still parses;
//   - no subscriber address (100.64.0.0/10) on the outside: neither source,
//     destination nor an ICMP error's embedded addresses; an outbound source
//     is one of the policies' public addresses; a packet sent inside goes to
//     one of the inside hosts, from a non-subscriber address;
//   - TCP/UDP/ICMP translations match the engine's mapping table for their
//     inside or public endpoint (endpoint-independent mapping), a dynamic
//     mapping and ESP/GRE leave from the subscriber's paired address;
//   - verdicts: inbound packets only go inside, to_outside_hairpin never
//     happens with one worker, no packet of the fuzzer (all well formed) is
//     dropped as malformed; reconfigure_problems() agrees whether it is
//     given every draining address or only those the next policy moves;
//   - NAT events (drained every step, none lost): a port block or preserved
//     port is never allocated twice nor released unallocated, and
//     blocks_in_use() equals the blocks the events say are allocated;
//   - at the end of the input, after every timeout has passed, everything is
//     gone: sessions, dynamic mappings, subscribers, blocks, ESP SAs and held
//     packets, PPTP calls, GRE tunnels, and every block event has its release.
//   - the attacks of issue 11 stay stopped: no inside host holds more
//     sessions than the largest per-subscriber limit, port forwards included
//     (point 1); two live port blocks never overlap on one public address,
//     also when a reload moves an address between pools (point 3); an
//     outbound ICMP error is translated only when the quoted packet was sent
//     to its sender (point 5); an Outgoing-Call-Request or Incoming-Call-
//     Reply never leaves with the client's own Call ID, split, resent or
//     overlapped as it may be (point 7).
// FUZZ_OPS_TRACE=1 prints every step to stderr.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nat/engine.hpp"
#include "nat/reload_plan.hpp"
#include "packet/headers.hpp"
#include "packet/parse.hpp"
#include "stats/nat_counters.hpp"
#include "support/packet_builder.hpp"

namespace {

using namespace passgate;
using nat::Direction;
using nat::Verdict;
using packet::be16;
using packet::be32;
using packet::ipv4;
using packet::L4Kind;
using packet::ParsedIpv4;
using packet::ParseError;
using stats::NatCounter;
using testing::Bytes;
using testing::IpFields;
namespace flag = packet::tcp_flag;

// ------------------------------------------------------------- the world

// Inside hosts: pool a (100.64.0.0/24) and pool b / c (100.64.1.0/24); host 4
// is in no pool, reachable only through its static mapping. Hosts 3, 4, 6
// and 7 are behind static mappings. Six subscriber slots for eight hosts:
// the subscriber table fills.
constexpr std::array<be32, 8> kInside = {ipv4(100, 64, 0, 1), ipv4(100, 64, 0, 2), ipv4(100, 64, 0, 3),
                                         ipv4(100, 64, 0, 6), ipv4(100, 127, 0, 7), ipv4(100, 64, 1, 1),
                                         ipv4(100, 64, 1, 2), ipv4(100, 64, 1, 7)};
const nat::Ipv4Prefix kSubscriberSpace{ipv4(100, 64, 0, 0), 10};
constexpr std::array<be32, 4> kRemote = {ipv4(203, 0, 113, 10), ipv4(203, 0, 113, 11), ipv4(192, 0, 2, 33),
                                         ipv4(198, 18, 7, 7)};
// Public addresses of any policy, and one that is nobody's (.77).
constexpr std::array<be32, 8> kPublic = {ipv4(198, 51, 100, 1), ipv4(198, 51, 100, 2), ipv4(198, 51, 100, 3),
                                         ipv4(198, 51, 100, 4), ipv4(198, 51, 100, 5), ipv4(198, 51, 100, 9),
                                         ipv4(198, 51, 100, 77), ipv4(198, 51, 100, 1)};
constexpr std::array<std::uint16_t, 8> kInsidePort = {40000, 40001, 22, 443, 500, 4500, 80, 5060};
constexpr std::array<std::uint16_t, 8> kRemotePort = {53, 80, 443, 1723, 500, 4500, 1701, 5060};
constexpr std::array<std::uint16_t, 8> kRemoteSrcPort = {53, 80, 443, 1723, 500, 4500, 1701, 33333};
constexpr std::array<std::uint16_t, 16> kPublicPort = {1024, 1025, 1031, 1032, 1055, 4496, 4500, 4503,
                                                       4527, 500,  1701, 8080, 5060, 2222, 443,  1088};
constexpr std::array<std::uint16_t, 4> kIcmpId = {1, 2, 0x4242, 1024};
constexpr std::array<std::uint32_t, 4> kSpiOut = {0x1001, 0x1002, 0x2001, 0x2002};
constexpr std::array<std::uint32_t, 8> kSpiIn = {0x9001, 0x9002, 0x9003, 0x9004, 0x1001, 0x1002, 0xa001, 0xa002};
constexpr std::array<std::uint16_t, 4> kPptpSport = {40010, 40011, 40012, 40013};
// Even on purpose: translated Call IDs are odd, so an untranslated one shows.
constexpr std::array<std::uint16_t, 4> kClientCallId = {2, 4, 6, 0x100};
constexpr std::array<std::uint16_t, 4> kIpId = {0x10, 0x11, 0x12, 0x13};

bool is_inside_host(be32 a) { return std::find(kInside.begin(), kInside.end(), a) != kInside.end(); }
bool is_our_public(be32 a) {
  const std::uint32_t h = a.host();
  return (h >= ipv4(198, 51, 100, 1).host() && h <= ipv4(198, 51, 100, 5).host()) || a == ipv4(198, 51, 100, 9);
}

nat::StaticMapping static_mapping(std::uint8_t proto, be32 in, std::uint16_t in_port, be32 pub, std::uint16_t port) {
  return nat::StaticMapping{proto, in, be16::from_host(in_port), pub, be16::from_host(port)};
}
const nat::StaticMapping kStaticA = static_mapping(packet::ip_proto::tcp, kInside[4], 80, kPublic[0], 8080);
const nat::StaticMapping kStaticB = static_mapping(packet::ip_proto::udp, kInside[7], 5060, kPublic[2], 5060);
const nat::StaticMapping kStaticC = static_mapping(packet::ip_proto::tcp, kInside[3], 22, kPublic[5], 2222);
const nat::StaticMapping kStaticD = static_mapping(packet::ip_proto::udp, kInside[3], 4500, kPublic[1], 4500);
const nat::StaticMapping kStaticE = static_mapping(packet::ip_proto::tcp, kInside[6], 443, kPublic[3], 443);

nat::PoolConfig pool(const char* name, nat::Ipv4Prefix subscribers, std::vector<nat::AddressRange> publics,
                     std::uint16_t port_min, std::uint16_t port_max, std::uint16_t block_size,
                     std::uint16_t max_blocks, std::uint32_t max_sessions, nat::Filtering filtering) {
  nat::PoolConfig p;
  p.name = name;
  p.subscribers.push_back(subscribers);
  p.public_addresses = std::move(publics);
  p.port_min = port_min;
  p.port_max = port_max;
  p.block_size = block_size;
  p.max_blocks_per_subscriber = max_blocks;
  p.max_sessions_per_subscriber = max_sessions;
  p.filtering = filtering;
  return p;
}
nat::AddressRange one(be32 a) { return {a, a}; }

// Over every policy below, and limits.static_mapping_sessions for host 4.
constexpr std::uint32_t kLargestSessionLimit = 10;

// Tables sized so that every limit is reachable from eight hosts: 48
// sessions, 6 subscribers, pool a 8 blocks for 4 hosts x 2, pool b 8 blocks
// of 4 ports for 3 hosts x 2 (8 ports per protocol, fewer than its 10
// sessions: ports run out first), 8 ESP SAs and 4 held packets, 8 PPTP
// calls, 4 GRE tunnels, 4 fragment flows and 2 hold slots, and the abuse
// limits of issue 11 low enough to be hit.
nat::NatConfig base() {
  nat::NatConfig c;
  c.max_sessions = 48;
  c.max_subscribers = 6;
  c.fragment_flows = 4;
  c.fragment_hold_slots = 2;
  c.fragment_hold_bytes = 512;
  c.event_ring_size = 256;  // drained after every step: nothing may be lost
  c.random_seed = 0x0f5e'ed0f'0000'0012ull;
  auto& pt = c.passthrough;
  pt.esp.idle_timeout = 60;
  pt.esp.learn_window_ms = 1500;
  pt.esp.hold_window_ms = 500;
  pt.esp.hold_packets = 4;
  pt.esp.max_sas = 8;
  pt.pptp.max_calls = 8;
  pt.pptp.call_idle_timeout = 60;
  pt.gre.max_tunnels = 4;
  pt.gre.timeout = 60;
  pt.ike.timeout = 120;
  pt.l2tp.timeout = 120;
  c.limits.new_subscribers_per_second = 4;
  c.limits.static_mapping_sessions = 6;
  c.limits.fragment_flows_per_host = 2;
  c.limits.fragments_held_per_host = 1;
  return c;
}

const nat::Ipv4Prefix kPrefixA{ipv4(100, 64, 0, 0), 24}, kPrefixB{ipv4(100, 64, 1, 0), 24};

// P0: the start. Pool a: two addresses, ports 1024-1055 (4 blocks of 8 each),
// IKE/L2TP ports outside the range; pool b: one address, ports 4496-4527 (8
// blocks of 4) so that 4500 lies inside a block; four static mappings, one
// on IKE's port, one to a host in no pool.
nat::NatConfig policy0() {
  nat::NatConfig c = base();
  c.pools.push_back(pool("a", kPrefixA, {{kPublic[0], kPublic[1]}}, 1024, 1055, 8, 2, 8,
                         nat::Filtering::endpoint_independent));
  c.pools.push_back(pool("b", kPrefixB, {one(kPublic[2])}, 4496, 4527, 4, 2, 10, nat::Filtering::address_dependent));
  c.static_mappings = {kStaticA, kStaticB, kStaticC, kStaticD};
  return c;
}
// P1: pool a retires 198.51.100.2, static A removed, pool b tighter
// (address-and-port filtering, 4 sessions, 1 block), shorter UDP timeout and
// port hold, GRE v0 off, session logging on.
nat::NatConfig policy1() {
  nat::NatConfig c = base();
  c.pools.push_back(pool("a", kPrefixA, {one(kPublic[0])}, 1024, 1055, 8, 2, 8, nat::Filtering::endpoint_independent));
  c.pools.push_back(
      pool("b", kPrefixB, {one(kPublic[2])}, 4496, 4527, 4, 1, 4, nat::Filtering::address_and_port_dependent));
  c.static_mappings = {kStaticB, kStaticC, kStaticD};
  c.timeouts.udp = 120;
  c.timeouts.port_reuse_hold = 30;
  c.passthrough.gre.enabled = false;
  c.log_sessions = true;
  return c;
}
// P2: pool b removed (its subscribers drain on 198.51.100.3), pool d serves
// its prefix from .4-.5 deterministically (RFC 7422, issue 14): 100.64.1.0/28
// holds 14 subscribers, ratio 7, 9 ports each of 1024-1087, so ranges run
// out within a few flows; 100.64.1.0 and the hosts past the /28 have no
// range. Block events stay on (log_blocks) for this fuzzer's block oracle.
// Static B and D removed, E added; PPTP off.
nat::NatConfig policy2() {
  nat::NatConfig c = base();
  c.pools.push_back(pool("a", kPrefixA, {{kPublic[0], kPublic[1]}}, 1024, 1055, 8, 1, 8,
                         nat::Filtering::address_dependent));
  nat::PoolConfig d = pool("d", {ipv4(100, 64, 1, 0), 28}, {{kPublic[3], kPublic[4]}}, 1024, 1087, 16, 2, 6,
                           nat::Filtering::endpoint_independent);
  d.mode = nat::PoolMode::deterministic;
  d.max_blocks_per_subscriber = 1;
  c.pools.push_back(d);
  c.static_mappings = {kStaticA, kStaticC, kStaticE};
  c.passthrough.pptp.enabled = false;
  return c;
}
// P3: 198.51.100.2 moves from pool a to pool c. Refused while pool a holds it
// in the running policy; from P1 (where it only drains) a reload may try it.
// From P2, .4 moves from the deterministic pool d to c: refused while it
// drains there.
nat::NatConfig policy3() {
  nat::NatConfig c = base();
  c.pools.push_back(pool("a", kPrefixA, {one(kPublic[0])}, 1024, 1055, 8, 2, 8, nat::Filtering::endpoint_independent));
  c.pools.push_back(pool("c", kPrefixB, {one(kPublic[1]), one(kPublic[3])}, 1024, 1087, 16, 2, 6,
                         nat::Filtering::endpoint_independent));
  c.static_mappings = {kStaticC};
  c.passthrough.esp.enabled = false;
  return c;
}

const std::array<nat::NatConfig, 4>& policies() {
  static const std::array<nat::NatConfig, 4> p = {policy0(), policy1(), policy2(), policy3()};
  return p;
}

// ---------------------------------------------------------- the options

struct Options {
  bool trace = false;
};

const Options& options() {
  static const Options o = [] {
    Options r;
    const char* t = std::getenv("FUZZ_OPS_TRACE");
    r.trace = t && *t && *t != '0';
    return r;
  }();
  return o;
}

#define TRACE(...)                                       \
  do {                                                   \
    if (options().trace) std::fprintf(stderr, __VA_ARGS__); \
  } while (0)

std::string addr(be32 a) { return nat::to_string(a); }

// ----------------------------------------------------------- the driver

struct Flow {  // a translated session as seen on the wire
  std::uint8_t proto;
  be32 in_addr, out_addr, rem_addr;
  be16 in_port, out_port, rem_port;  // ICMP: identifier in in/out_port
};
struct CallSeen {  // a translated Call ID seen leaving to a PPTP server
  be32 out_addr, server;
  std::uint16_t id;
};

template <typename T, std::size_t N>
struct Ring {
  std::array<T, N> items{};
  std::size_t count = 0, next = 0;
  void push(const T& v) {
    items[next] = v;
    next = (next + 1) % N;
    if (count < N) ++count;
  }
  [[nodiscard]] bool empty() const { return count == 0; }
  // 0 = the most recent entry, 1 the one before, ... (modulo the count).
  const T& recent(std::size_t k) const { return items[(next + N - 1 - k % count) % N]; }
  const T& pick(std::uint8_t b) const { return recent(b); }
};

struct Reader {
  const std::uint8_t* data;
  std::size_t size, pos = 0;
  [[nodiscard]] bool more() const { return pos < size; }
  std::uint8_t u8() { return pos < size ? data[pos++] : 0; }
};

struct BlockRecord {
  be32 subscriber;
  std::uint16_t last;
};

class Driver {
 public:
  Driver() {
    std::vector<std::string> errors;
    engine_ = nat::Engine::create(policies()[0], &errors);
    if (!engine_) {
      for (const auto& e : errors) std::fprintf(stderr, "fuzz_ops config: %s\n", e.c_str());
      std::abort();
    }
    engine_->expire(now_ms_);
  }

  void run(Reader& in) {
    unsigned ops = 0;
    while (in.more() && ops++ < kMaxOps) {
      const std::uint8_t op = in.u8() % kOps;
      step(op, in);
      after_step("op");
    }
    finish();
  }

 private:
  static constexpr unsigned kOps = 22;
  static constexpr unsigned kMaxOps = 400;

  nat::Engine& e() { return *engine_; }

  [[noreturn]] void fail(const std::string& what, const Bytes* before = nullptr, const Bytes* after = nullptr) {
    std::fprintf(stderr, "fuzz_ops: INVARIANT BROKEN at step %u (op %s, t=%llu ms): %s\n", step_, op_name_,
                 static_cast<unsigned long long>(now_ms_), what.c_str());
    auto dump = [](const char* label, const Bytes* b) {
      if (!b) return;
      std::fprintf(stderr, "  %s:", label);
      for (auto x : *b) std::fprintf(stderr, " %02x", x);
      std::fprintf(stderr, "\n");
    };
    dump("in ", before);
    dump("out", after);
    std::fprintf(stderr, "  engine: %u sessions, %u mappings, %u subscribers, %u blocks; esp %u SAs %u held; pptp %u "
                 "calls; gre %u tunnels\n",
                 e().active_sessions(), e().active_mappings(), e().active_subscribers(), e().blocks_in_use(),
                 e().esp().active_sas(), e().esp().held_packets(), e().pptp().active_calls(),
                 e().gre().active_tunnels());
    std::fflush(stderr);
    std::abort();
  }

  // --------------------------------------------------------- checking

  void check_engine(const char* where) {
    checked_at_ = step_;
    const std::string problem = e().check_invariants();
    if (!problem.empty()) fail(std::string("check_invariants() after ") + where + ": " + problem);
    const nat::NatConfig& c = e().config();
    if (e().active_sessions() > c.max_sessions) fail("more sessions than max_sessions");
    if (e().active_subscribers() > c.max_subscribers) fail("more subscribers than max_subscribers");
    drain_events();
    if (e().blocks_in_use() != blocks_.size())
      fail("blocks_in_use() " + std::to_string(e().blocks_in_use()) + " but the events leave " +
           std::to_string(blocks_.size()) + " blocks allocated");
  }

  // Issue 11 point 1: what comes in from outside (through a port forward or
  // an endpoint-independent mapping) counts against the inside host.
  void check_host_sessions(be32 host, const Bytes& before, const Bytes& out) {
    const std::size_t n = e().subscriber_sessions(host, 1000).size();
    if (n > kLargestSessionLimit)
      fail("inside host " + addr(host) + " holds " + std::to_string(n) +
               " sessions, above every per-subscriber limit (issue 11 point 1)",
           &before, &out);
  }

  void drain_events() {
    nat::NatEvent ev;
    while (e().events().pop(ev)) {
      using T = nat::NatEvent::Type;
      const std::uint64_t key = (std::uint64_t{ev.public_address.host()} << 16) | ev.port_first;
      switch (ev.type) {
        case T::block_allocated: {
          if (!is_inside_host(ev.subscriber) || !is_our_public(ev.public_address) || ev.port_last < ev.port_first)
            fail("block event with impossible fields: " + addr(ev.subscriber) + " " + addr(ev.public_address));
          if (blocks_.count(key))
            fail("port block " + addr(ev.public_address) + ":" + std::to_string(ev.port_first) +
                 " allocated while already allocated to " + addr(blocks_[key].subscriber));
          for (const auto& [k, b] : blocks_)  // issue 11 point 3
            if ((k >> 16) == ev.public_address.host() && (k & 0xffff) <= ev.port_last && ev.port_first <= b.last)
              fail("port block " + addr(ev.public_address) + ":" + std::to_string(ev.port_first) + "-" +
                   std::to_string(ev.port_last) + " for " + addr(ev.subscriber) + " overlaps " +
                   std::to_string(k & 0xffff) + "-" + std::to_string(b.last) + " of " + addr(b.subscriber) +
                   " (issue 11 point 3)");
          blocks_[key] = BlockRecord{ev.subscriber, ev.port_last};
          break;
        }
        case T::block_released: {
          const auto it = blocks_.find(key);
          if (it == blocks_.end())
            fail("port block " + addr(ev.public_address) + ":" + std::to_string(ev.port_first) +
                 " released but not allocated");
          if (it->second.subscriber != ev.subscriber)
            fail("port block released by " + addr(ev.subscriber) + " but allocated to " + addr(it->second.subscriber));
          blocks_.erase(it);
          break;
        }
        case T::port_preserved:
          if (!is_inside_host(ev.subscriber) || !is_our_public(ev.public_address))
            fail("preserved-port event with impossible fields");
          if (ports_.count(key))
            fail("preserved port " + addr(ev.public_address) + ":" + std::to_string(ev.port_first) + " given twice");
          ports_[key] = BlockRecord{ev.subscriber, ev.port_last};
          break;
        case T::port_released: {
          const auto it = ports_.find(key);
          if (it == ports_.end() || it->second.subscriber != ev.subscriber)
            fail("preserved port " + addr(ev.public_address) + ":" + std::to_string(ev.port_first) +
                 " released but not held by " + addr(ev.subscriber));
          ports_.erase(it);
          break;
        }
        default:
          break;
      }
    }
    if (e().counters().get(NatCounter::events_lost) != 0) fail("NAT events lost although drained every step");
  }

  static bool in_space(be32 a) { return kSubscriberSpace.contains(a); }

  // Every packet that leaves the engine. `before` is the packet as given to
  // process() (nullptr for released ones), `dir` the side it came from.
  void check_emitted(const Bytes& out, Verdict v, Direction dir, const Bytes* before) {
    const std::string problems = testing::checksum_problems(out);
    if (!problems.empty()) fail("emitted packet has bad checksums: " + problems, before, &out);
    ParsedIpv4 o{};
    if (const ParseError err = packet::parse_ipv4(out, o); err != ParseError::ok)
      fail(std::string("emitted packet no longer parses: ") + packet::parse_error_name(err), before, &out);
    if (v == Verdict::to_outside) {
      if (in_space(o.src) || in_space(o.dst)) fail("subscriber address on the outside", before, &out);
      if (!is_our_public(o.src)) fail("outbound source is not one of our public addresses", before, &out);
      if (o.kind == L4Kind::icmp_error && (in_space(o.inner.src) || in_space(o.inner.dst)))
        fail("subscriber address inside an ICMP error sent outside", before, &out);
    } else if (v == Verdict::to_inside) {
      if (!is_inside_host(o.dst)) fail("packet sent inside to " + addr(o.dst) + ", not an inside host", before, &out);
      if (in_space(o.src)) fail("packet sent inside with a subscriber source (no hairpin translation?)", before, &out);
      if (o.kind == L4Kind::icmp_error && !is_inside_host(o.inner.src))
        fail("ICMP error sent inside quotes a packet from " + addr(o.inner.src), before, &out);
    } else {
      fail("emitted with verdict " + std::to_string(static_cast<int>(v)), before, &out);
    }
    if (!before) return;
    ParsedIpv4 b{};
    if (packet::parse_ipv4(*before, b) != ParseError::ok) fail("the engine forwarded a packet that does not parse", before, &out);
    check_mappings(b, o, v, dir, *before, out);
  }

  static bool session_kind(L4Kind k, nat::Proto& p) {
    switch (k) {
      case L4Kind::tcp: p = nat::Proto::tcp; return true;
      case L4Kind::udp: p = nat::Proto::udp; return true;
      case L4Kind::icmp_query: p = nat::Proto::icmp; return true;
      default: return false;
    }
  }

  // Endpoint-independent mapping and paired pooling, read back from the
  // engine's own tables right after the translation.
  void check_mappings(const ParsedIpv4& b, const ParsedIpv4& o, Verdict v, Direction dir, const Bytes& before,
                      const Bytes& out) {
    nat::Proto proto;
    const bool whole = !b.fragmented;
    if (dir == Direction::outbound && whole && session_kind(b.kind, proto)) {
      const nat::Mapping* m = e().find_mapping(proto, b.src, b.src_port);
      if (!m) fail("translated outbound without a mapping for its inside endpoint", &before, &out);
      if (o.src != m->out_addr || o.src_port != m->out_port)
        fail("outbound public endpoint differs from the mapping's " + addr(m->out_addr) + ":" +
                 std::to_string(m->out_port.host()),
             &before, &out);
      if (!m->is_static && m->out_addr != e().subscriber_public_address(b.src))
        fail("dynamic mapping not on the subscriber's paired address " + addr(e().subscriber_public_address(b.src)),
             &before, &out);
      if (v == Verdict::to_inside) {  // hairpin
        const nat::Mapping* t = e().find_mapping_public(proto, b.dst, b.dst_port);
        if (!t) fail("hairpinned without a mapping for the target", &before, &out);
        if (o.dst != t->in_addr || o.dst_port != t->in_port) fail("hairpin target differs from its mapping", &before, &out);
      }
    } else if (dir == Direction::inbound && whole && session_kind(b.kind, proto)) {
      const nat::Mapping* m = e().find_mapping_public(proto, b.dst, b.dst_port);
      if (!m) fail("translated inbound without a mapping for its public endpoint", &before, &out);
      if (o.dst != m->in_addr || o.dst_port != m->in_port)
        fail("inbound inside endpoint differs from the mapping's " + addr(m->in_addr) + ":" +
                 std::to_string(m->in_port.host()),
             &before, &out);
    } else if (dir == Direction::outbound && b.kind == L4Kind::icmp_error && session_kind(b.inner.kind, proto)) {
      if (b.src != b.inner.dst)
        fail("outbound ICMP error from " + addr(b.src) + " about a packet sent to " + addr(b.inner.dst) +
                 " was translated (issue 11 point 5)",
             &before, &out);
      const nat::Mapping* m = e().find_mapping(proto, b.inner.dst, b.inner.dst_port);
      if (!m) fail("outbound ICMP error translated without a mapping for the quoted inside endpoint", &before, &out);
      if (o.inner.dst != m->out_addr || o.inner.dst_port != m->out_port || o.src != m->out_addr)
        fail("outbound ICMP error rewritten to another endpoint than the mapping's", &before, &out);
    } else if (dir == Direction::inbound && b.kind == L4Kind::icmp_error && session_kind(b.inner.kind, proto)) {
      const nat::Mapping* m = e().find_mapping_public(proto, b.inner.src, b.inner.src_port);
      if (!m) fail("inbound ICMP error translated without a mapping for the quoted public endpoint", &before, &out);
      if (o.inner.src != m->in_addr || o.inner.src_port != m->in_port || o.dst != m->in_addr)
        fail("inbound ICMP error rewritten to another endpoint than the mapping's", &before, &out);
    } else if (dir == Direction::outbound && whole && (b.kind == L4Kind::esp || b.kind == L4Kind::gre) &&
               v == Verdict::to_outside) {
      const be32 paired = e().subscriber_public_address(b.src);
      if (o.src != paired)
        fail("ESP/GRE left from " + addr(o.src) + ", not the paired address " + addr(paired), &before, &out);
    }
  }

  // ----------------------------------------------------------- sending

  struct Sent {
    nat::Result result;
    Bytes out;
    [[nodiscard]] bool forwarded() const {
      return result.verdict == Verdict::to_outside || result.verdict == Verdict::to_inside;
    }
  };

  Sent send(Direction dir, const Bytes& packet, const char* what) {
    Sent s;
    s.out = packet;  // an exactly-sized heap copy: ASan sees any access past its end
    s.result = e().process(dir, s.out, now_ms_);
    ++step_;
    const Verdict v = s.result.verdict;
    TRACE("  %-4s %-14s -> %s%s\n", dir == Direction::outbound ? "out" : "in", what,
          v == Verdict::to_outside ? "to_outside" : v == Verdict::to_inside ? "to_inside" : v == Verdict::held ? "held"
          : v == Verdict::drop ? "drop " : "HAIRPIN-HANDOFF",
          v == Verdict::drop ? stats::drop_reason_name(s.result.reason) : "");
    if (v == Verdict::to_outside_hairpin) fail("to_outside_hairpin with a single worker", &packet, &s.out);
    if (dir == Direction::inbound && v == Verdict::to_outside) fail("inbound packet sent back outside", &packet, &s.out);
    if (v == Verdict::drop && s.result.reason == nat::DropReason::malformed)
      fail("a well-formed packet was dropped as malformed", &packet, &s.out);
    if (s.forwarded()) {
      check_emitted(s.out, v, dir, &packet);
      if (v == Verdict::to_inside) check_host_sessions(testing::ip_dst(s.out), packet, s.out);
      remember(dir, packet, s.out, v);
    }
    check_engine(what);
    return s;
  }

  void remember(Direction dir, const Bytes& before, const Bytes& out, Verdict v) {
    ParsedIpv4 b{}, o{};
    if (packet::parse_ipv4(before, b) != ParseError::ok || packet::parse_ipv4(out, o) != ParseError::ok) return;
    if (b.kind != L4Kind::tcp && b.kind != L4Kind::udp && b.kind != L4Kind::icmp_query) return;
    if (!b.first_fragment) return;
    if (dir == Direction::outbound && v == Verdict::to_outside) {
      flows_.push(Flow{b.proto, b.src, o.src, o.dst, b.src_port, o.src_port,
                       b.kind == L4Kind::icmp_query ? be16{0} : o.dst_port});
      if (!b.fragmented && out.size() <= 256) sent_out_.push(out);
    } else if (dir == Direction::inbound && v == Verdict::to_inside) {
      flows_.push(Flow{b.proto, o.dst, b.dst, b.src, o.dst_port, b.dst_port,
                       b.kind == L4Kind::icmp_query ? be16{0} : b.src_port});
      if (!b.fragmented && out.size() <= 256) sent_in_.push(out);
    }
  }

  void drain() {
    ++step_;
    e().drain_released([&](std::span<std::uint8_t> bytes, Verdict v) {
      const Bytes out(bytes.begin(), bytes.end());
      TRACE("  released -> %s\n", v == Verdict::to_outside ? "to_outside" : "to_inside");
      check_emitted(out, v, Direction::outbound, nullptr);
    });
  }

  // After an operation: the checks, unless its last packet already ran them.
  void after_step(const char* where) {
    if (checked_at_ != step_) check_engine(where);
  }

  // ------------------------------------------------------------- helpers

  static IpFields ip(be32 src, be32 dst, std::uint16_t id = 0x1234) {
    IpFields f;
    f.src = src;
    f.dst = dst;
    f.id = id;
    return f;
  }
  static Bytes payload(std::size_t n, std::uint8_t fill) {
    Bytes p(n);
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(fill + i * 13);
    return p;
  }
  std::uint32_t next_seq() { return seq_ += 1000; }

  Bytes flow_packet(std::uint8_t proto, be32 src, std::uint16_t sport, be32 dst, std::uint16_t dport,
                    std::uint8_t tcp_flags, std::size_t len, std::uint16_t ip_id = 0x1234) {
    if (proto == packet::ip_proto::tcp)
      return testing::tcp_packet(ip(src, dst, ip_id), sport, dport, tcp_flags, payload(len, 0x41), next_seq());
    return testing::udp_packet(ip(src, dst, ip_id), sport, dport, payload(len, 0x61));
  }

  // One PPTP control message (RFC 2637 section 2).
  static Bytes pptp_message(std::uint16_t type, std::uint16_t length, unsigned id_offset, std::uint16_t id) {
    Bytes m(length, 0);
    m[0] = static_cast<std::uint8_t>(length >> 8);
    m[1] = static_cast<std::uint8_t>(length);
    m[3] = 1;
    m[4] = 0x1a, m[5] = 0x2b, m[6] = 0x3c, m[7] = 0x4d;
    m[8] = static_cast<std::uint8_t>(type >> 8);
    m[9] = static_cast<std::uint8_t>(type);
    if (id_offset) {
      m[id_offset] = static_cast<std::uint8_t>(id >> 8);
      m[id_offset + 1] = static_cast<std::uint8_t>(id);
    }
    if (type == 8) m[12] = 0x70, m[13] = static_cast<std::uint8_t>(id);  // OCRP: the server's own Call ID
    return m;
  }
  struct MessageKind {
    std::uint16_t type, length;
    unsigned id_offset;  // the Call ID field the fuzzer sets (0: none)
  };
  // Client (PNS) to server: SCCRQ, Echo-Request, OCRQ, ICRP, ICCN, CCRQ, CDN, SLI.
  static constexpr std::array<MessageKind, 8> kClientMessages = {{{1, 156, 0},
                                                                  {5, 16, 0},
                                                                  {7, 168, 12},
                                                                  {10, 24, 12},
                                                                  {11, 28, 12},
                                                                  {12, 16, 12},
                                                                  {13, 148, 12},
                                                                  {15, 24, 12}}};
  // Server (PAC) to client: SCCRP, StopCCRP, Echo-Reply, OCRP, ICRQ, CDN, WEN, SLI.
  static constexpr std::array<MessageKind, 8> kServerMessages = {{{2, 156, 0},
                                                                  {4, 16, 0},
                                                                  {6, 20, 0},
                                                                  {8, 32, 14},
                                                                  {9, 220, 12},
                                                                  {13, 148, 12},
                                                                  {14, 40, 12},
                                                                  {15, 24, 12}}};

  // ----------------------------------------------------------------- ops

  void step(std::uint8_t op, Reader& in) {
    static constexpr const char* names[kOps] = {
        "udp_out", "tcp_out",  "icmp_out", "reply_in",     "random_in",   "icmp_err_in", "icmp_err_out", "fragments",
        "esp_out", "esp_in",   "gre0",     "gre1",         "pptp_connect", "pptp_out",   "pptp_in",      "ike",
        "time",    "expire_some", "reconfigure", "drain",  "hairpin",     "out_again"};
    op_name_ = names[op];
    TRACE("op %s\n", op_name_);
    switch (op) {
      case 0: udp_out(in); break;
      case 1: tcp_out(in); break;
      case 2: icmp_out(in); break;
      case 3: reply_in(in); break;
      case 4: random_in(in); break;
      case 5: icmp_err_in(in); break;
      case 6: icmp_err_out(in); break;
      case 7: fragments(in); break;
      case 8: esp_out(in); break;
      case 9: esp_in(in); break;
      case 10: gre0(in); break;
      case 11: gre1(in); break;
      case 12: pptp_connect(in); break;
      case 13: pptp_out(in); break;
      case 14: pptp_in(in); break;
      case 15: ike(in); break;
      case 16: time_step(in); break;
      case 17: expire_some(in); break;
      case 18: reconfigure(in); break;
      case 19: drain(); break;
      case 20: hairpin(in); break;
      case 21: out_again(in); break;
      default: break;
    }
  }

  void udp_out(Reader& in) {
    const std::uint8_t who = in.u8(), ports = in.u8(), len = in.u8();
    const Bytes p = testing::udp_packet(ip(kInside[who & 7], kRemote[(who >> 3) & 3]), kInsidePort[ports & 7],
                                        kRemotePort[(ports >> 3) & 7], payload(len & 0x3f, 0x11), (who & 0x20) != 0);
    send(Direction::outbound, p, "udp");
  }

  void tcp_out(Reader& in) {
    const std::uint8_t who = in.u8(), ports = in.u8(), flags = in.u8();
    const be32 src = kInside[who & 7], dst = kRemote[(who >> 3) & 3];
    const std::uint16_t sport = kInsidePort[ports & 7], dport = kRemotePort[(ports >> 3) & 7];
    const std::uint32_t seq = next_seq();
    if (dport == 1723 && (flags & flag::syn)) stream_syn(src, sport, dst, seq);
    const Bytes p = testing::tcp_packet(ip(src, dst), sport, dport, flags & 0x3f, payload((flags & 0x40) ? 8 : 0, 0x22), seq);
    send(Direction::outbound, p, "tcp");
  }

  void icmp_out(Reader& in) {
    const std::uint8_t who = in.u8(), kind = in.u8();
    const IpFields f = ip(kInside[who & 7], kRemote[(who >> 3) & 3]);
    const std::uint16_t id = kIcmpId[kind & 3];
    Bytes p;
    if (kind & 4) {
      p = testing::icmp_echo(f, packet::icmp_type::timestamp, id, 1, Bytes(12, 0));
    } else {
      p = testing::icmp_echo(f, (kind & 8) ? packet::icmp_type::echo_reply : packet::icmp_type::echo_request, id,
                             static_cast<std::uint16_t>(kind >> 4));
    }
    send(Direction::outbound, p, "icmp");
  }

  // A reply from outside to a public endpoint the engine emitted: the same
  // remote, or another address or port (filtering decides).
  void reply_in(Reader& in) {
    const std::uint8_t pick = in.u8(), mod = in.u8(), flags = in.u8();
    if (flows_.empty()) return;
    const Flow& f = flows_.pick(pick);
    const be32 rem = (mod & 1) ? kRemote[(pick >> 4) & 3] : f.rem_addr;
    const std::uint16_t rem_port = (mod & 2) ? kRemoteSrcPort[(pick >> 4) & 7] : f.rem_port.host();
    const std::size_t len = (mod >> 2) & 0x3f;
    Bytes p;
    if (f.proto == packet::ip_proto::icmp)
      p = testing::icmp_echo(ip(rem, f.out_addr), packet::icmp_type::echo_reply, f.out_port.host(), 1);
    else
      p = flow_packet(f.proto, rem, rem_port, f.out_addr, f.out_port.host(), flags & 0x3f, len);
    send(Direction::inbound, p, "reply");
  }

  void random_in(Reader& in) {
    const std::uint8_t dst = in.u8(), src = in.u8(), flags = in.u8();
    const std::uint8_t proto = (dst & 0x80) ? packet::ip_proto::tcp : packet::ip_proto::udp;
    const Bytes p = flow_packet(proto, kRemote[src & 3], kRemoteSrcPort[(src >> 2) & 7], kPublic[dst & 7],
                                kPublicPort[(dst >> 3) & 15], (flags & 0x3f) | ((flags & 0xc0) ? 0 : flag::syn), 8);
    send(Direction::inbound, p, "random");
  }

  static void error_type(std::uint8_t b, std::uint8_t& type, std::uint8_t& code) {
    static constexpr std::uint8_t types[4][2] = {{3, 3}, {3, 1}, {3, 4}, {11, 0}};
    type = types[b & 3][0];
    code = types[b & 3][1];
  }

  // An error from outside about a packet the engine sent out (RFC 5508).
  void icmp_err_in(Reader& in) {
    const std::uint8_t pick = in.u8(), type_b = in.u8(), src = in.u8();
    if (sent_out_.empty()) return;
    const Bytes& q = sent_out_.pick(pick);
    std::uint8_t type, code;
    error_type(type_b, type, code);
    const be32 from = (src & 4) ? testing::ip_dst(q) : kRemote[src & 3];
    const std::size_t quote = (type_b & 4) ? testing::ihl(q) + 8 : 0;
    send(Direction::inbound, testing::icmp_error(ip(from, testing::ip_src(q)), type, code, q, quote), "icmp_error");
  }

  // An error from an inside host about a packet it received; bit 7 of `who`
  // makes another host send it (spoofing from inside).
  void icmp_err_out(Reader& in) {
    const std::uint8_t pick = in.u8(), type_b = in.u8(), who = in.u8();
    if (sent_in_.empty()) return;
    const Bytes& q = sent_in_.pick(pick);
    std::uint8_t type, code;
    error_type(type_b, type, code);
    const be32 from = (who & 0x80) ? kInside[who & 7] : testing::ip_dst(q);
    const std::size_t quote = (type_b & 4) ? testing::ihl(q) + 8 : 0;
    send(Direction::outbound, testing::icmp_error(ip(from, testing::ip_src(q)), type, code, q, quote), "icmp_error");
  }

  // A UDP or TCP datagram in fragments, sent in a chosen order, some left out.
  void fragments(Reader& in) {
    const std::uint8_t what = in.u8(), len = in.u8(), chunk_b = in.u8(), order = in.u8(), skip = in.u8();
    const bool inbound = what & 1;
    const std::uint8_t proto = (what & 2) ? packet::ip_proto::tcp : packet::ip_proto::udp;
    const std::uint16_t ip_id = kIpId[(what >> 5) & 3];
    const std::size_t size = 8 + std::size_t{len} * 2;
    Bytes whole;
    if (inbound) {
      if (flows_.empty()) return;
      const Flow& f = flows_.pick(what >> 2);
      const std::uint8_t fproto = f.proto == packet::ip_proto::icmp ? proto : f.proto;
      whole = flow_packet(fproto, f.rem_addr, f.rem_port.host(), f.out_addr, f.out_port.host(), flag::ack, size, ip_id);
    } else {
      const be32 src = kInside[(what >> 2) & 7];
      whole = flow_packet(proto, src, kInsidePort[(chunk_b >> 5) & 7], kRemote[(len >> 6) & 3],
                          kRemotePort[(order >> 5) & 7], flag::syn, size, ip_id);
    }
    const std::size_t data = whole.size() - 20;
    std::size_t chunk = 8 * (1 + (chunk_b & 63));
    if (chunk < 24) chunk = 24;               // the first fragment carries the whole TCP header
    while ((data + chunk - 1) / chunk > 8) chunk += 8;  // at most eight fragments
    const std::vector<Bytes> parts = testing::fragment(whole, chunk);
    const std::size_t n = parts.size();
    std::vector<std::size_t> seq;
    for (std::size_t k = 0; k < n; ++k) seq.push_back((k + (order & 7)) % n);
    if (order & 8) std::reverse(seq.begin(), seq.end());
    if ((order & 16) && n) seq.push_back(seq.front());
    for (std::size_t k = 0; k < seq.size(); ++k) {
      if (seq[k] < 8 && (skip >> seq[k]) & 1 && k + 1 < seq.size()) continue;
      send(inbound ? Direction::inbound : Direction::outbound, parts[seq[k]], seq[k] == 0 ? "fragment-first" : "fragment");
    }
  }

  void esp_out(Reader& in) {
    const std::uint8_t who = in.u8(), spi = in.u8();
    send(Direction::outbound,
         testing::esp_packet(ip(kInside[who & 7], kRemote[(who >> 3) & 3]), kSpiOut[spi & 3], ++esp_seq_), "esp");
  }

  void esp_in(Reader& in) {
    const std::uint8_t dst = in.u8(), spi = in.u8();
    send(Direction::inbound, testing::esp_packet(ip(kRemote[(dst >> 3) & 3], kPublic[dst & 7]), kSpiIn[spi & 7], ++esp_seq_),
         "esp");
  }

  void gre0(Reader& in) {
    const std::uint8_t who = in.u8(), flags = in.u8();
    const bool key = flags & 2, seq = flags & 4;
    const std::uint32_t key_value = 0xabcd0000u | (flags >> 3);
    if (flags & 1)
      send(Direction::inbound,
           testing::gre_packet(ip(kRemote[(who >> 3) & 3], kPublic[who & 7]), 0, key, key_value, seq), "gre0");
    else
      send(Direction::outbound,
           testing::gre_packet(ip(kInside[who & 7], kRemote[(who >> 3) & 3]), 0, key, key_value, seq), "gre0");
  }

  // PPTP data (enhanced GRE): the key holds the payload length and the Call ID.
  void gre1(Reader& in) {
    const std::uint8_t who = in.u8(), call = in.u8();
    if (who & 0x80) {
      be32 src = kRemote[(who >> 3) & 3], dst = kPublic[who & 7];
      std::uint16_t id = call & 0x7f;
      if (!(call & 0x80) && !calls_.empty()) {
        const CallSeen& c = calls_.pick(call);
        src = c.server;
        dst = c.out_addr;
        id = c.id;
      }
      send(Direction::inbound, testing::gre_packet(ip(src, dst), 1, true, 0x00100000u | id, (who & 0x40) != 0), "gre1");
    } else {
      send(Direction::outbound,
           testing::gre_packet(ip(kInside[who & 7], kRemote[(who >> 3) & 3]), 1, true, 0x00100000u | call,
                               (who & 0x40) != 0),
           "gre1");
    }
  }

  // The client side of a TCP 1723 connection as the client's TCP sees it:
  // the engine frames PPTP messages by sequence number, so segments must
  // carry a consistent stream. `pending` holds the bytes from `acked` (what
  // the engine forwarded, which the server acknowledges) to `next`.
  struct Stream {
    std::uint32_t acked = 0, next = 0;
    std::uint32_t last_forwarded = 0;  // where the last forwarded segment started: a message boundary
    Bytes pending;
  };
  static std::uint64_t stream_key(be32 client, std::uint16_t sport, be32 server) {
    return (std::uint64_t{client.host()} << 32) ^ (std::uint64_t{sport} << 16) ^ (server.host() & 0xffffu) ^
           (std::uint64_t{server.host() >> 16} << 48);
  }
  void stream_syn(be32 client, std::uint16_t sport, be32 server, std::uint32_t isn) {
    Stream& st = streams_[stream_key(client, sport, server)];
    st.acked = st.next = st.last_forwarded = isn + 1;
    st.pending.clear();
  }

  void pptp_connect(Reader& in) {
    const std::uint8_t who = in.u8(), sport_b = in.u8();
    const be32 client = kInside[who & 7], server = kRemote[(who >> 3) & 3];
    const std::uint16_t sport = kPptpSport[sport_b & 3];
    const std::uint32_t isn = next_seq();
    stream_syn(client, sport, server, isn);
    const Sent syn = send(Direction::outbound,
                          testing::tcp_packet(ip(client, server), sport, 1723, flag::syn, Bytes(), isn), "syn");
    if (syn.result.verdict != Verdict::to_outside) return;
    const be32 pub = testing::ip_src(syn.out);
    const std::uint16_t pub_port = testing::l4_sport(syn.out);
    send(Direction::inbound,
         testing::tcp_packet(ip(server, pub), 1723, pub_port, flag::syn | flag::ack, Bytes(), next_seq()), "syn-ack");
    send(Direction::outbound, testing::tcp_packet(ip(client, server), sport, 1723, flag::ack, Bytes(), isn + 1),
         "ack");
  }

  // One or two control messages, maybe after 4 bytes that are no message.
  Bytes pptp_payload(bool client_side, std::uint8_t msgs, std::uint16_t id) {
    const auto& kinds = client_side ? kClientMessages : kServerMessages;
    Bytes out;
    if (msgs & 0x40) out = {0xde, 0xad, 0xbe, 0xef};
    const unsigned count = (msgs & 0x20) ? 2 : 1;
    for (unsigned k = 0; k < count; ++k) {
      const MessageKind& m = kinds[(msgs + k * 3) & 7];
      const Bytes one = pptp_message(m.type, m.length, m.id_offset, id);
      out.insert(out.end(), one.begin(), one.end());
    }
    return out;
  }
  // Offsets of the client Call IDs of call-opening messages (OCRQ, ICRP) in
  // a run of whole messages from the start of `data`.
  static std::vector<std::size_t> opening_fields(const Bytes& data) {
    std::vector<std::size_t> fields;
    for (std::size_t off = 0; off + 14 <= data.size();) {
      const std::size_t len = (std::size_t{data[off]} << 8) | data[off + 1];
      if (len < 12 || data[off + 3] != 1 || data[off + 4] != 0x1a) break;
      const unsigned type = (unsigned{data[off + 8]} << 8) | data[off + 9];
      if (type == 7 || type == 10) fields.push_back(off + 12);
      off += len;
    }
    return fields;
  }

  // Sends `data` from sequence number `seq` as one TCP segment, or two split
  // at a point scaled from `split`; returns what each segment became and
  // where it started in `data`.
  std::vector<std::pair<std::size_t, Sent>> send_stream(Direction dir, be32 src, std::uint16_t sport, be32 dst,
                                                        std::uint16_t dport, const Bytes& data, std::uint8_t split,
                                                        std::uint32_t seq, const char* what) {
    std::vector<std::size_t> cuts = {0};
    if (split != 0 && data.size() > 1) cuts.push_back(1 + ((std::size_t{split} * (data.size() - 1)) >> 8));
    cuts.push_back(data.size());
    std::vector<std::pair<std::size_t, Sent>> out;
    for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
      const Bytes part(data.begin() + static_cast<std::ptrdiff_t>(cuts[k]),
                       data.begin() + static_cast<std::ptrdiff_t>(cuts[k + 1]));
      out.emplace_back(cuts[k], send(dir,
                                     testing::tcp_packet(ip(src, dst), sport, dport, flag::ack | 0x08, part,
                                                         seq + static_cast<std::uint32_t>(cuts[k])),
                                     what));
    }
    return out;
  }

  // Client control messages. who bits 5-6: 0 new data in stream order, 1
  // resend what the engine has not forwarded yet (as TCP does after a split
  // or a drop), 2 new data over bytes already forwarded (from the start of
  // the last forwarded segment), 3 new data after a 12-byte gap; bit 7: the
  // connection of a recent 1723 flow.
  void pptp_out(Reader& in) {
    const std::uint8_t who = in.u8(), sport_b = in.u8(), msgs = in.u8(), split = in.u8();
    be32 client = kInside[who & 7], server = kRemote[(who >> 3) & 3];
    std::uint16_t sport = kPptpSport[sport_b & 3];
    if (who & 0x80)
      for (std::size_t k = 0; k < flows_.count; ++k) {
        const Flow& f = flows_.recent(sport_b + k);
        if (f.proto == packet::ip_proto::tcp && f.rem_port.host() == 1723) {
          client = f.in_addr, server = f.rem_addr, sport = f.in_port.host();
          break;
        }
      }
    const unsigned mode = (who >> 5) & 3;
    const std::uint16_t id = kClientCallId[(msgs >> 3) & 3];
    Stream& st = streams_[stream_key(client, sport, server)];
    if (st.next == 0) st.acked = st.next = st.last_forwarded = next_seq();  // no SYN seen: somewhere
    Bytes data;
    std::uint32_t seq;
    bool in_stream = false;  // the bytes are the client's real stream
    if (mode == 1 && !st.pending.empty()) {
      data = st.pending;
      seq = st.acked;
      in_stream = true;
    } else {
      data = pptp_payload(true, msgs, id);
      seq = st.next;
      if (mode == 2) seq = st.last_forwarded;  // other bytes over ones already forwarded
      if (mode == 3) seq += 12;
      if (mode <= 1 && !(msgs & 0x40)) {
        st.pending.insert(st.pending.end(), data.begin(), data.end());
        st.next += static_cast<std::uint32_t>(data.size());
        in_stream = true;
      }
    }
    const bool pptp_on = e().config().passthrough.pptp.enabled;
    const std::uint64_t refused = e().counters().get(NatCounter::pptp_calls_refused);
    const auto segments =
        send_stream(Direction::outbound, client, sport, server, 1723, data, split, seq, "pptp-control");
    const std::vector<std::size_t> fields = opening_fields(data);
    // What the engine forwarded of the stream, the server acknowledges.
    for (const auto& [start, s] : segments) {
      if (!s.forwarded() || !in_stream) continue;
      const std::uint32_t from = seq + static_cast<std::uint32_t>(start);
      const std::uint32_t sent = static_cast<std::uint32_t>(s.out.size() - testing::ihl(s.out) - 20);
      if (from == st.acked && sent <= st.pending.size()) {
        st.last_forwarded = st.acked;
        st.acked += sent;
        st.pending.erase(st.pending.begin(), st.pending.begin() + sent);
      }
    }
    // Translated Call IDs the server will quote, for pptp_in and gre1.
    for (const auto& [start, s] : segments) {
      if (!s.forwarded()) continue;
      for (const std::size_t f : fields)
        if (f >= start && f + 2 <= start + (s.out.size() - testing::ihl(s.out) - 20)) {
          const std::size_t at = testing::ihl(s.out) + 20 + (f - start);
          calls_.push(
              CallSeen{testing::ip_src(s.out), server, static_cast<std::uint16_t>((s.out[at] << 8) | s.out[at + 1])});
        }
    }
    if (!pptp_on || fields.empty()) return;
    if (e().counters().get(NatCounter::pptp_calls_refused) != refused) return;
    const nat::Session* control = e().find_session_in(nat::Proto::tcp, client, be16::from_host(sport), server,
                                                      be16::from_host(1723));
    if (!control || !(control->flags & nat::session_flag::pptp_control)) return;
    for (const std::size_t f : fields) {
      bool unchanged = true;
      for (std::size_t byte = f; byte < f + 2; ++byte) {
        const auto it = std::find_if(segments.rbegin(), segments.rend(), [&](const auto& seg) { return seg.first <= byte; });
        const Sent& s = it->second;
        const std::size_t at = testing::ihl(s.out) + 20 + (byte - it->first);
        // Held, dropped or cut off the segment: never forwarded untranslated.
        if (!s.forwarded() || at >= s.out.size()) return;
        if (s.out[at] != data[byte]) unchanged = false;
      }
      if (unchanged)
        fail("a PPTP control message left with the client's own Call ID " +
             std::to_string((data[f] << 8) | data[f + 1]) + (segments.size() > 1 ? ", split across two segments" : "") +
             " (issue 11 point 7)");
    }
  }

  void pptp_in(Reader& in) {
    const std::uint8_t pick = in.u8(), msgs = in.u8(), call = in.u8(), split = in.u8();
    // A control connection the engine opened (remote port 1723), if any.
    const Flow* f = nullptr;
    for (std::size_t k = 0; k < flows_.count && !f; ++k) {
      const Flow& c = flows_.recent(pick + k);
      if (c.proto == packet::ip_proto::tcp && c.rem_port.host() == 1723) f = &c;
    }
    if (!f) return;
    const Flow control = *f;  // sending pushes new flows into the ring
    std::uint16_t id = static_cast<std::uint16_t>(call & 0x7f);
    if (!(call & 0x80) && !calls_.empty()) id = calls_.pick(call).id;
    const Bytes data = pptp_payload(false, msgs & 0x3f, id);
    send_stream(Direction::inbound, control.rem_addr, 1723, control.out_addr, control.out_port.host(), data, split,
                next_seq(), "pptp-control");
  }

  // IKE (UDP 500), NAT-T (4500: keepalives, non-ESP marker) and L2TP (1701).
  void ike(Reader& in) {
    const std::uint8_t who = in.u8(), kind = in.u8();
    static constexpr std::uint16_t sports[4] = {500, 4500, 1701, 500}, dports[4] = {500, 4500, 1701, 4500};
    const std::uint16_t sport = sports[kind & 3], dport = dports[kind & 3];
    Bytes body;
    if (kind & 8) body = {0xff};  // NAT-keepalive
    else if (dport == 4500) body = payload(32, 0), body[4] = 0x5a;  // non-ESP marker, then IKE
    else body = payload(28, 0x33);
    if (kind & 4) {
      for (std::size_t k = 0; k < flows_.count; ++k) {
        const Flow& f = flows_.recent(who + k);
        const std::uint16_t p = f.in_port.host();
        if (f.proto == packet::ip_proto::udp && (p == 500 || p == 4500 || p == 1701)) {
          send(Direction::inbound,
               testing::udp_packet(ip(f.rem_addr, f.out_addr), f.rem_port.host(), f.out_port.host(), body), "ike-reply");
          return;
        }
      }
      return;
    }
    send(Direction::outbound, testing::udp_packet(ip(kInside[who & 7], kRemote[(who >> 3) & 3]), sport, dport, body),
         "ike");
  }

  void advance(std::uint64_t ms, unsigned budget) {
    now_ms_ += ms;
    TRACE("  clock +%llu ms = %llu, expire(budget %u)\n", static_cast<unsigned long long>(ms),
          static_cast<unsigned long long>(now_ms_), budget);
    e().expire(now_ms_, budget);
    ++step_;
  }

  void time_step(Reader& in) {
    const std::uint8_t b = in.u8();
    static constexpr std::uint64_t unit[4] = {1, 100, 1000, 10000};
    advance((std::uint64_t{b & 63u} + 1) * unit[b >> 6], 1024);
  }

  void expire_some(Reader& in) {
    const std::uint8_t b = in.u8();
    advance(static_cast<std::uint64_t>(b >> 2) * 250, (b & 3u) + 1);
  }

  // Reloads as the control core does them: reconfigure_problems() with every
  // draining address, then plan_reload() + apply(), or reconfigure() in one
  // call; or a plan made now and applied at a later reconfigure operation,
  // after traffic changed the engine (apply may then refuse it).
  void reconfigure(Reader& in) {
    const std::uint8_t b = in.u8();
    const unsigned which = b & 3, mode = (b >> 2) & 3;
    if (mode == 3) {
      if (!pending_plan_) return;
      TRACE("  apply the plan made earlier for P%u\n", pending_policy_);
      const nat::ReconfigureResult r = e().apply(*pending_plan_);
      TRACE("  -> %s\n", r.applied ? "applied" : "refused (stale)");
      pending_plan_.reset();
      ++step_;
      return;
    }
    const nat::NatConfig& next = policies()[which];
    // As the gateway asks (only what `next` would move), and every draining
    // address: both must refuse or allow alike.
    const std::vector<nat::DrainingAddress> moved = e().draining_addresses(next);
    const std::vector<nat::DrainingAddress> all = e().draining_addresses();
    const std::vector<std::string> problems = nat::Engine::reconfigure_problems(e().config(), next, moved);
    if (problems.empty() != nat::Engine::reconfigure_problems(e().config(), next, all).empty())
      fail("reconfigure_problems() disagrees between draining_addresses(next) and draining_addresses()");
    if (!problems.empty()) {
      TRACE("  reconfigure to P%u refused: %s\n", which, problems.front().c_str());
      return;
    }
    TRACE("  reconfigure to P%u (%s)\n", which, mode == 0 ? "reconfigure" : mode == 1 ? "plan + apply" : "plan only");
    if (mode == 0) {
      e().reconfigure(next);
    } else {
      std::unique_ptr<nat::ReloadPlan> plan = e().plan_reload(next);
      if (mode == 1) {
        const nat::ReconfigureResult r = e().apply(*plan);
        if (!r.applied) fail("a reload plan made just now was refused by apply()");
      } else {
        pending_plan_ = std::move(plan);
        pending_policy_ = which;
      }
    }
    ++step_;
  }

  void hairpin(Reader& in) {
    const std::uint8_t who = in.u8(), pick = in.u8(), flags = in.u8();
    if (flows_.empty()) return;
    const Flow& f = flows_.pick(pick);
    if (f.proto == packet::ip_proto::icmp) return;
    send(Direction::outbound,
         flow_packet(f.proto, kInside[who & 7], kInsidePort[(who >> 3) & 7], f.out_addr, f.out_port.host(),
                     (flags & 0x3f) | flag::syn, flags >> 6),
         "hairpin");
  }

  void out_again(Reader& in) {
    const std::uint8_t pick = in.u8(), flags = in.u8();
    if (flows_.empty()) return;
    const Flow& f = flows_.pick(pick);
    if (f.proto == packet::ip_proto::icmp) {
      send(Direction::outbound,
           testing::icmp_echo(ip(f.in_addr, f.rem_addr), packet::icmp_type::echo_request, f.in_port.host(), 2), "icmp");
      return;
    }
    send(Direction::outbound,
         flow_packet(f.proto, f.in_addr, f.in_port.host(), f.rem_addr, f.rem_port.host(), flags & 0x3f, flags >> 6),
         "again");
  }

  // --------------------------------------------------------------- end

  // Everything times out: the engine must come back empty.
  void finish() {
    op_name_ = "finish";
    drain();
    after_step("drain");
    // One jump beyond every timeout and port hold (a jump walks the whole
    // timer wheel once, so one is all it takes); then beyond the ESP idle
    // timeout, since held ESP packets that the jump released (their learner
    // timed out) open new SAs; then a second for the trackers that scan once
    // a second.
    for (const std::uint64_t ms : {10'000'000u, 200'000u, 2'000u}) {
      advance(ms, 1u << 20);
      drain();
      after_step("final expiry");
    }
    const nat::NatConfig& c = e().config();
    std::string left;
    auto note = [&](const char* what, std::uint64_t n) {
      if (n) left += " " + std::to_string(n) + " " + what + ";";
    };
    note("sessions", e().active_sessions());
    note("subscribers", e().active_subscribers());
    note("blocks in use", e().blocks_in_use());
    note("ESP SAs", e().esp().active_sas());
    note("held ESP packets", e().esp().held_packets());
    note("ESP learners", e().esp().learners());
    note("PPTP calls", e().pptp().active_calls());
    note("GRE tunnels", e().gre().active_tunnels());
    note("block events without release", blocks_.size());
    note("preserved ports without release", ports_.size());
    if (e().active_mappings() > c.static_mappings.size())
      note("mappings besides the static ones", e().active_mappings() - c.static_mappings.size());
    if (!left.empty()) fail("state left after every timeout passed:" + left);
  }

  std::unique_ptr<nat::Engine> engine_;
  std::uint64_t now_ms_ = 1000;
  std::uint32_t seq_ = 1, esp_seq_ = 0;
  unsigned step_ = 0, checked_at_ = ~0u;
  const char* op_name_ = "start";
  Ring<Flow, 16> flows_;
  Ring<Bytes, 4> sent_out_, sent_in_;
  Ring<CallSeen, 8> calls_;
  std::map<std::uint64_t, BlockRecord> blocks_, ports_;
  std::unique_ptr<nat::ReloadPlan> pending_plan_;
  unsigned pending_policy_ = 0;
  std::map<std::uint64_t, Stream> streams_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader in{data, size};
  Driver driver;
  driver.run(in);
  return 0;
}
