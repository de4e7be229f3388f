// Private to lib/nat (never included from outside it): the engine's logic
// as static members of Engine::Impl, a friend, so that engine.hpp stays a
// plain description of the state. Each stage's functions are defined in its
// own file, named beside its declarations below; fast_path.cpp is where a
// packet's way through the engine starts. The few helpers every packet
// needs (hashes, look-ups, TCP state, rewrites) are defined here, so that
// each stage inlines them.
#pragma once

#include <algorithm>
#include <bit>
#include <cstring>

#include "nat/engine.hpp"
#include "packet/checksum.hpp"
#include "packet/headers.hpp"

namespace passgate::nat {

using packet::ChecksumDelta;
using packet::IcmpHeader;
using packet::Ipv4Header;
using packet::L4Kind;
using packet::load;
using packet::ParsedIpv4;
using packet::store;
using stats::NatCounter;

namespace {
constexpr std::uint32_t held_ring_size(std::uint32_t sessions) { return sessions < 1024 ? 1024 : sessions; }

// Mapping::is_static: 1 = a static mapping of the policy; static_draining =
// removed by a reload, still carrying sessions, freed with the last one.
constexpr std::uint8_t static_draining = 2;

inline bool same_static(const StaticMapping& a, const StaticMapping& b) {
  return a.protocol == b.protocol && a.inside_address == b.inside_address && a.inside_port == b.inside_port &&
         a.public_address == b.public_address && a.public_port == b.public_port;
}

inline Result drop(DropReason r) { return Result{Verdict::drop, r}; }

inline FragmentConfig fragment_config_of(const NatConfig& c) {
  return FragmentConfig{c.fragment_flows,        c.fragment_hold_slots,
                        c.fragment_hold_bytes,   c.timeouts.fragment_ms,
                        c.limits.fragment_flows_per_host, c.limits.fragments_held_per_host};
}

inline bool proto_of(L4Kind kind, Proto& out) {
  switch (kind) {
    case L4Kind::tcp: out = Proto::tcp; return true;
    case L4Kind::udp: out = Proto::udp; return true;
    case L4Kind::icmp_query: out = Proto::icmp; return true;
    default: return false;
  }
}

// Offsets of the fields a rewrite touches, relative to the transport header.
inline unsigned l4_checksum_offset(Proto p) {
  switch (p) {
    case Proto::tcp: return 16;
    case Proto::udp: return 6;
    case Proto::icmp: return 2;
  }
  return 0;
}
// Source port (or ICMP identifier) offset; the destination port is +2 for TCP/UDP.
inline unsigned l4_src_port_offset(Proto p) { return p == Proto::icmp ? 4 : 0; }
inline unsigned l4_dst_port_offset(Proto p) { return p == Proto::icmp ? 4 : 2; }

inline std::uint64_t xoshiro_next(std::uint64_t s[4]) {
  const std::uint64_t result = std::rotl(s[1] * 5, 7) * 9;
  const std::uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = std::rotl(s[3], 45);
  return result;
}

inline std::uint64_t splitmix(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

struct Engine::Impl {
  static std::uint64_t hash_in(const Engine& e, Proto p, be32 in_addr, be16 in_port, be32 rem_addr, be16 rem_port) {
    return e.hasher_((std::uint64_t{in_addr.raw} << 32) | rem_addr.raw,
                     (std::uint64_t{in_port.raw} << 32) | (std::uint64_t{rem_port.raw} << 16) |
                         static_cast<std::uint8_t>(p));
  }

  static std::uint64_t hash_mapping(const Engine& e, Proto p, be32 addr, be16 port) {
    return e.hasher_(addr.raw, (std::uint64_t{port.raw} << 8) | static_cast<std::uint8_t>(p) | (1ull << 40));
  }

  static std::uint64_t hash_subscriber(const Engine& e, be32 addr) { return e.hasher_(addr.raw, 2ull << 40); }

  static std::uint32_t find_in2out(const Engine& e, std::uint64_t h, Proto p, be32 in_addr, be16 in_port,
                                   be32 rem_addr, be16 rem_port) {
    return e.in2out_.find(h, [&](std::uint32_t i) {
      const Session& s = e.sessions_[i];
      return s.in_addr == in_addr && s.rem_addr == rem_addr && s.in_port == in_port && s.rem_port == rem_port &&
             s.proto == p;
    });
  }

  static std::uint32_t find_out2in(const Engine& e, std::uint64_t h, Proto p, be32 out_addr, be16 out_port,
                                   be32 rem_addr, be16 rem_port) {
    return e.out2in_.find(h, [&](std::uint32_t i) {
      const Session& s = e.sessions_[i];
      return s.out_addr == out_addr && s.rem_addr == rem_addr && s.out_port == out_port && s.rem_port == rem_port &&
             s.proto == p;
    });
  }

  static std::uint32_t find_mapping_in(const Engine& e, std::uint64_t h, Proto p, be32 addr, be16 port) {
    return e.mapping_in_.find(h, [&](std::uint32_t i) {
      const Mapping& m = e.mappings_[i];
      return m.in_addr == addr && m.in_port == port && m.proto == p;
    });
  }

  static std::uint32_t find_mapping_out(const Engine& e, std::uint64_t h, Proto p, be32 addr, be16 port) {
    return e.mapping_out_.find(h, [&](std::uint32_t i) {
      const Mapping& m = e.mappings_[i];
      return m.out_addr == addr && m.out_port == port && m.proto == p;
    });
  }

  static std::uint32_t find_subscriber(const Engine& e, be32 addr) {
    return e.subscriber_table_.find(hash_subscriber(e, addr),
                                    [&](std::uint32_t i) { return e.subscribers_[i].addr == addr; });
  }

  static std::uint32_t timeout_of(const Engine& e, const Session& s) {
    const Timeouts& t = e.config_.timeouts;
    switch (s.proto) {
      case Proto::udp:
        if (s.flags & session_flag::ike) [[unlikely]]
          return e.config_.passthrough.ike.timeout;
        if (s.flags & session_flag::l2tp) [[unlikely]]
          return e.config_.passthrough.l2tp.timeout;
        return t.udp;
      case Proto::icmp: return t.icmp;
      case Proto::tcp: return tcp_long_lived(s.tcp_state) ? t.tcp_established : t.tcp_transitory;
    }
    return t.udp;
  }

  // RFC 6146 section 3.5.2 (required by RFC 7857 section 3): a FIN in one
  // direction leaves the connection established; half-closed connections are
  // ordinary (a client that shuts down its sending side still receives for
  // hours). Only FINs both ways, an RST or an unfinished handshake are
  // transitory. A single spoofed FIN therefore shortens nothing.
  static bool tcp_long_lived(TcpState st) {
    return st == TcpState::established || st == TcpState::fin_out || st == TcpState::fin_in;
  }

  // RFC 7857 section 3 (RFC 6146 3.5.2 reduced): returns whether the packet
  // refreshes the session. An RST moves the session to the transitory timeout
  // without refreshing it (RFC 7857 section 2.2); it is never deleted at once.
  static bool tcp_track(Engine& e, std::uint32_t index, std::uint8_t flags, bool outbound) {
    using namespace packet::tcp_flag;
    Session& s = e.sessions_[index];
    const TcpState before = s.tcp_state;
    if (flags & rst) {
      if (before != TcpState::reset) {
        s.tcp_state = TcpState::reset;
        e.counters_.add(NatCounter::tcp_resets);
        if (tcp_long_lived(before)) shortened(e, index);
      }
      return false;
    }
    switch (before) {
      case TcpState::syn_out:
        if (!outbound && (flags & syn)) s.tcp_state = TcpState::established;
        break;
      case TcpState::syn_in:
        if (outbound && (flags & syn)) s.tcp_state = TcpState::established;
        break;
      case TcpState::established:
        if (flags & fin) s.tcp_state = outbound ? TcpState::fin_out : TcpState::fin_in;
        break;
      case TcpState::fin_out:
        if (!outbound && (flags & fin)) s.tcp_state = TcpState::fin_both;
        break;
      case TcpState::fin_in:
        if (outbound && (flags & fin)) s.tcp_state = TcpState::fin_both;
        break;
      case TcpState::fin_both:
        // A new connection reusing the tuple after both FINs.
        if (flags & syn) s.tcp_state = outbound ? TcpState::syn_out : TcpState::syn_in;
        break;
      case TcpState::reset:
      case TcpState::none:
        // RFC 6146: any non-RST packet in the transitory state after a reset
        // means the connection lives on.
        s.tcp_state = (flags & syn) ? (outbound ? TcpState::syn_out : TcpState::syn_in) : TcpState::established;
        break;
    }
    if (tcp_long_lived(before) && !tcp_long_lived(s.tcp_state)) shortened(e, index);
    return true;
  }

  // The session's timeout just got shorter: file it again so it is not kept
  // until the old, longer deadline.
  static void shortened(Engine& e, std::uint32_t index) {
    const Session& s = e.sessions_[index];
    e.wheel_.cancel(index);
    e.wheel_.schedule(index, s.last_seen + timeout_of(e, s));
  }

  // Outbound: source address and port become the public ones.
  static void rewrite_outbound(std::uint8_t* ip, unsigned ihl, const Session& s) {
    auto* h = reinterpret_cast<Ipv4Header*>(ip);
    h->src = s.out_addr;
    h->checksum = ChecksumDelta(s.ip_delta).apply(h->checksum);
    std::uint8_t* l4 = ip + ihl;
    store(l4 + l4_src_port_offset(s.proto), s.out_port);
    std::uint8_t* csum = l4 + l4_checksum_offset(s.proto);
    const ChecksumDelta d(s.l4_delta);
    store(csum, s.proto == Proto::udp ? d.apply_udp(load<be16>(csum)) : d.apply(load<be16>(csum)));
  }

  // Inbound: destination address and port become the inside ones.
  static void rewrite_inbound(std::uint8_t* ip, unsigned ihl, const Session& s) {
    auto* h = reinterpret_cast<Ipv4Header*>(ip);
    h->dst = s.in_addr;
    h->checksum = ChecksumDelta(s.ip_delta).inverse().apply(h->checksum);
    std::uint8_t* l4 = ip + ihl;
    store(l4 + l4_dst_port_offset(s.proto), s.in_port);
    std::uint8_t* csum = l4 + l4_checksum_offset(s.proto);
    const ChecksumDelta d = ChecksumDelta(s.l4_delta).inverse();
    store(csum, s.proto == Proto::udp ? d.apply_udp(load<be16>(csum)) : d.apply(load<be16>(csum)));
  }

  struct Lookup {
    std::uint64_t hash;
    std::uint32_t session;
    Proto proto;
    bool fast;  // tcp/udp/icmp query: has a session lookup
  };

  // Removed by a reload, alone or with its pool (one flag for a whole pool).
  static bool address_retired(const Engine& e, const BlockAllocator::PublicAddress& a) {
    return a.retired || e.pools_[a.pool].retired;
  }

  static bool is_ike_port(be16 p) { return p.host() == 500 || p.host() == 4500; }


  // fast_path.cpp. The three stages of a burst are always inlined into
  // process_burst, as the compiler did when the engine was one file (checked
  // with objdump: without the attribute translate<D> became a call). prepare
  // and lookup are defined at the end of this header: the slow path repeats
  // a look-up after creating state.
  template <Direction D>
  [[gnu::always_inline]] static inline void prepare(Engine& e, const ParsedIpv4& p, Lookup& l);
  template <Direction D>
  [[gnu::always_inline]] static inline void lookup(Engine& e, const ParsedIpv4& p, Lookup& l);
  template <Direction D>
  [[gnu::always_inline]] static inline Result translate(Engine& e, std::uint8_t* ip, const ParsedIpv4& p, Lookup& l);
  [[gnu::noinline]] static Result hairpin(Engine& e, std::uint8_t* ip, const ParsedIpv4& p, const Session& s);
  template <Direction D>
  [[gnu::noinline]] static Result translate_other(Engine& e, std::uint8_t* ip, const ParsedIpv4& p);
  static Result later_fragment(Engine& e, Direction d, std::uint8_t* ip, const ParsedIpv4& p);

  // slow_path.cpp
  [[gnu::cold]] static DropReason create_outbound(Engine& e, const ParsedIpv4& p, Lookup& l);
  static DropReason admit_static(Engine& e, std::uint32_t m);
  static void unadmit_static(Engine& e, std::uint32_t m);
  [[gnu::cold]] static DropReason create_inbound(Engine& e, const ParsedIpv4& p, Lookup& l);

  // sessions.cpp
  static std::uint64_t hash_remote(const Engine& e, Proto p, be32 out_addr, be16 out_port, be32 rem_addr);
  static std::uint32_t find_remote(const Engine& e, Proto p, be32 out_addr, be16 out_port, be32 rem_addr);
  static void count_remote(Engine& e, Session& s);
  static void uncount_remote(Engine& e, const Session& s);
  static std::uint32_t new_session(Engine& e, std::uint32_t m, be32 rem_addr, be16 rem_port, TcpState state,
                                   bool inbound, std::uint64_t known_hash);
  static void log_session(Engine& e, NatEvent::Type type, const Session& s, const Mapping& map);
  static void free_session(Engine& e, std::uint32_t i);
  static void expire(Engine& e, std::uint64_t now_ms, unsigned budget);

  // mappings.cpp
  static std::uint32_t claim_mapping(Engine& e, std::uint64_t h_in, std::uint64_t h_out);
  static bool try_preserve(Engine& e, std::uint32_t sub, Proto proto, be32 in_addr, be16 in_port, std::uint64_t h_in,
                           std::uint32_t& out);
  static DropReason create_mapping(Engine& e, std::uint32_t sub, Proto proto, be32 in_addr, be16 in_port,
                                   std::uint64_t h_in, std::uint32_t& out);
  static void hold_mapping(Engine& e, std::uint32_t m, std::uint32_t idle_since);
  static void free_static_mapping(Engine& e, std::uint32_t m);
  static void free_mapping(Engine& e, std::uint32_t m);

  // subscribers.cpp
  static DropReason subscriber_for(Engine& e, be32 addr, std::uint32_t& out, bool need_blocks = true);
  static bool subscriber_may_grow(const Engine& e, std::uint32_t sub);
  static bool take_subscriber_token(Engine& e);
  static void release_if_unused(Engine& e, std::uint32_t sub);
  // The block of `port` on the address, with the block size of the address's pool.
  static std::uint32_t block_of_port(const Engine& e, const BlockAllocator::PublicAddress& a, std::uint16_t port) {
    return e.blocks_.block_of_port(a, port, e.pools_[a.pool].config.block_size);
  }
  static std::uint32_t allocate_block(Engine& e, std::uint32_t sub);
  static void release_block(Engine& e, std::uint32_t b);
  static void log_block(Engine& e, NatEvent::Type type, std::uint32_t sub, std::uint32_t b);
  static void log_port(Engine& e, NatEvent::Type type, std::uint32_t sub, be16 inside_port, std::uint16_t port);
  static void log_event(Engine& e, NatEvent::Type type, std::uint32_t sub, std::uint16_t first, std::uint16_t last);
  static void log_event_raw(Engine& e, NatEvent::Type type, be32 sub, be32 pub, std::uint16_t first,
                            std::uint16_t last, std::uint32_t pool, LimitEventGate& gate);

  // passthrough_glue.cpp
  static void reconcile_esp(Engine& e);
  static Result esp_result(Engine& e, passthrough::EspTracker::Outcome o, Verdict pass);
  static Result esp_outbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p);
  static Result esp_inbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p);
  static void expire_esp(Engine& e, std::uint64_t now_ms, unsigned budget);
  template <Direction D>
  [[gnu::noinline]] static Result pptp_control(Engine& e, std::uint8_t* ip, const ParsedIpv4& p, const Session& s,
                                              std::uint32_t index, Verdict pass);
  static Result pptp_result(passthrough::PptpTracker::Outcome o, Verdict pass);
  static Result gre_outbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p);
  static Result gre_inbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p);
  static Result gre0_result(passthrough::GreTracker::Outcome o, Verdict pass);
  static Result gre0_outbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p);
  static Result gre0_inbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p);

  // icmp_errors.cpp
  static Result icmp_error_inbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p);
  static Result icmp_error_outbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p);
  static void rewrite_icmp_error(std::uint8_t* ip, const ParsedIpv4& p, be32 from, be32 to, unsigned inner_addr_off,
                                 unsigned inner_port_off, be16 new_port, ChecksumDelta inner_ip_delta,
                                 ChecksumDelta inner_l4_delta, Proto proto, bool outer_src);


  // policy.cpp
  static bool is_public(const Engine& e, be32 addr);
  static bool add_static(Engine& e, const StaticMapping& sm);
  static std::uint32_t static_slot(const Engine& e, be32 addr);
  static void rebuild_public_ranges(Engine& e);

  // invariants.cpp
  static std::string check_invariants(const Engine& e);
};

// Stages 1 and 2 of a burst (fast_path.cpp has the whole loop). Defined
// here because the slow path repeats a look-up after creating state.
template <Direction D>
void Engine::Impl::prepare(Engine& e, const ParsedIpv4& p, Lookup& l) {
  l.fast = proto_of(p.kind, l.proto);
  l.session = no_index;
  if (!l.fast) return;
  const be16 rem_port = l.proto == Proto::icmp ? be16{0} : (D == Direction::outbound ? p.dst_port : p.src_port);
  if constexpr (D == Direction::outbound) {
    l.hash = hash_in(e, l.proto, p.src, p.src_port, p.dst, rem_port);
    e.in2out_.prefetch(l.hash);
  } else {
    l.hash = hash_in(e, l.proto, p.dst, p.dst_port, p.src, rem_port);
    e.out2in_.prefetch(l.hash);
  }
}

// Stage 2 of a burst: the buckets were prefetched in stage 1. The key
// compare loads each session; these loads are independent, so the core
// overlaps several of them. (Measured: prefetching the candidate sessions
// here and comparing in stage 3 was slower on this machine.)
template <Direction D>
void Engine::Impl::lookup(Engine& e, const ParsedIpv4& p, Lookup& l) {
  if (!l.fast) return;
  const be16 rem_port = l.proto == Proto::icmp ? be16{0} : (D == Direction::outbound ? p.dst_port : p.src_port);
  if constexpr (D == Direction::outbound) {
    l.session = find_in2out(e, l.hash, l.proto, p.src, p.src_port, p.dst, rem_port);
    // A miss will create state in stage 3: start loading what that needs.
    if (l.session == no_index) [[unlikely]] {
      e.mapping_in_.prefetch(hash_mapping(e, l.proto, p.src, p.src_port));
      e.subscriber_table_.prefetch(hash_subscriber(e, p.src));
    }
  } else {
    l.session = find_out2in(e, l.hash, l.proto, p.dst, p.dst_port, p.src, rem_port);
    if (l.session == no_index) [[unlikely]]
      e.mapping_out_.prefetch(hash_mapping(e, l.proto, p.dst, p.dst_port));
  }
}

}  // namespace passgate::nat
