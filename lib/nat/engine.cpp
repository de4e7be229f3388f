#include "nat/engine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <map>
#include <unordered_map>
#include <cstring>

#include "nat/reload_plan.hpp"
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

const char* to_string(Proto p) {
  switch (p) {
    case Proto::tcp: return "tcp";
    case Proto::udp: return "udp";
    case Proto::icmp: return "icmp";
  }
  return "?";
}

const char* to_string(TcpState s) {
  switch (s) {
    case TcpState::none: return "none";
    case TcpState::syn_out: return "syn-out";
    case TcpState::syn_in: return "syn-in";
    case TcpState::established: return "established";
    case TcpState::fin_out: return "fin-out";
    case TcpState::fin_in: return "fin-in";
    case TcpState::fin_both: return "fin-both";
    case TcpState::reset: return "reset";
  }
  return "?";
}

namespace {

constexpr std::uint32_t held_ring_size(std::uint32_t sessions) { return sessions < 1024 ? 1024 : sessions; }

// Mapping::is_static: 1 = a static mapping of the policy; static_draining =
// removed by a reload, still carrying sessions, freed with the last one.
constexpr std::uint8_t static_draining = 2;

std::uint32_t blocks_per_address(const PoolConfig& pc) {
  return static_cast<std::uint32_t>((pc.port_max - pc.port_min + 1u) / pc.block_size);
}
bool same_geometry(const PoolConfig& a, const PoolConfig& b) {
  return a.port_min == b.port_min && a.port_max == b.port_max && a.block_size == b.block_size;
}
bool same_static(const StaticMapping& a, const StaticMapping& b) {
  return a.protocol == b.protocol && a.inside_address == b.inside_address && a.inside_port == b.inside_port &&
         a.public_address == b.public_address && a.public_port == b.public_port;
}

inline Result drop(DropReason r) { return Result{Verdict::drop, r}; }

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

// All engine logic lives here as static members of a friend, so the header
// stays a plain description of the state.
struct Engine::Impl {
  // ---------------------------------------------------------------- keys
  static std::uint64_t hash_in(const Engine& e, Proto p, be32 in_addr, be16 in_port, be32 rem_addr, be16 rem_port) {
    return e.hasher_((std::uint64_t{in_addr.raw} << 32) | rem_addr.raw,
                     (std::uint64_t{in_port.raw} << 32) | (std::uint64_t{rem_port.raw} << 16) |
                         static_cast<std::uint8_t>(p));
  }
  static std::uint64_t hash_mapping(const Engine& e, Proto p, be32 addr, be16 port) {
    return e.hasher_(addr.raw, (std::uint64_t{port.raw} << 8) | static_cast<std::uint8_t>(p) | (1ull << 40));
  }
  static std::uint64_t hash_subscriber(const Engine& e, be32 addr) { return e.hasher_(addr.raw, 2ull << 40); }
  static std::uint64_t hash_remote(const Engine& e, Proto p, be32 out_addr, be16 out_port, be32 rem_addr) {
    return e.hasher_((std::uint64_t{out_addr.raw} << 32) | rem_addr.raw,
                     (std::uint64_t{out_port.raw} << 8) | static_cast<std::uint8_t>(p) | (5ull << 40));
  }
  static std::uint32_t find_remote(const Engine& e, Proto p, be32 out_addr, be16 out_port, be32 rem_addr) {
    return e.remote_table_.find(hash_remote(e, p, out_addr, out_port, rem_addr), [&](std::uint32_t i) {
      const RemoteEntry& r = e.remotes_[i];
      return r.out_addr == out_addr && r.rem_addr == rem_addr && r.out_port == out_port && r.proto == p;
    });
  }
  // Sessions of mappings in address-dependent pools are counted per (mapping,
  // remote address). A pool switched to this filtering by a reload admits the
  // remotes of sessions created from then on (stricter, never looser).
  static void count_remote(Engine& e, Session& s) {
    const std::uint64_t h = hash_remote(e, s.proto, s.out_addr, s.out_port, s.rem_addr);
    std::uint32_t i = find_remote(e, s.proto, s.out_addr, s.out_port, s.rem_addr);
    if (i == no_index) {
      if (e.free_remotes_.empty()) return;  // sized for every session: cannot happen
      i = e.free_remotes_.back();
      if (!e.remote_table_.insert(h, i)) return;
      e.free_remotes_.pop_back();
      e.remotes_[i] = RemoteEntry{s.out_addr, s.rem_addr, s.out_port, s.proto, 0, 0};
    }
    ++e.remotes_[i].sessions;
    s.flags |= session_flag::adf_counted;
  }
  static void uncount_remote(Engine& e, const Session& s) {
    const std::uint32_t i = find_remote(e, s.proto, s.out_addr, s.out_port, s.rem_addr);
    if (i == no_index || --e.remotes_[i].sessions != 0) return;
    e.remote_table_.erase(hash_remote(e, s.proto, s.out_addr, s.out_port, s.rem_addr), i);
    e.free_remotes_.push_back(i);
  }
  static std::uint64_t hash_fragment(const Engine& e, Direction d, be32 src, be32 dst, be16 id, std::uint8_t proto) {
    return e.hasher_((std::uint64_t{src.raw} << 32) | dst.raw,
                     (std::uint64_t{id.raw} << 16) | (std::uint64_t{proto} << 8) | static_cast<std::uint8_t>(d) |
                         (3ull << 40));
  }

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

  // ------------------------------------------------------------ timeouts
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

  // ---------------------------------------------------------- rewriting
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

  // ------------------------------------------------------------ the path
  struct Lookup {
    std::uint64_t hash;
    std::uint32_t session;
    Proto proto;
    bool fast;  // tcp/udp/icmp query: has a session lookup
  };

  template <Direction D>
  static void prepare(Engine& e, const ParsedIpv4& p, Lookup& l) {
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
  static void lookup(Engine& e, const ParsedIpv4& p, Lookup& l) {
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

  template <Direction D>
  static Result translate(Engine& e, std::uint8_t* ip, const ParsedIpv4& p, Lookup& l) {
    if (!l.fast) [[unlikely]]
      return translate_other<D>(e, ip, p);
    if (p.fragmented) [[unlikely]]
      if (const DropReason r = fragment_admit(e, D, p); r != DropReason::none) return drop(r);
    if (l.session == no_index) [[unlikely]] {
      const DropReason r = D == Direction::outbound ? create_outbound(e, p, l) : create_inbound(e, p, l);
      if (r != DropReason::none) return drop(r);
    }
    Session& s = e.sessions_[l.session];
    bool refresh = true;
    if (l.proto == Proto::tcp) refresh = tcp_track(e, l.session, p.tcp_flags, D == Direction::outbound);
    if (refresh) s.last_seen = e.now_s_;
    Result r;
    if constexpr (D == Direction::outbound) {
      rewrite_outbound(ip, p.ihl_bytes, s);
      e.counters_.add(NatCounter::translated_outbound);
      ++e.counters_.proto[static_cast<unsigned>(l.proto)].translated_outbound;
      r = {Verdict::to_outside, DropReason::none};
      if (s.flags & session_flag::pptp_control) [[unlikely]]
        r = pptp_control<D>(e, ip, p, s, l.session, r.verdict);
      if ((s.flags & session_flag::hairpin) && r.verdict != Verdict::drop) [[unlikely]]
        r = hairpin(e, ip, p, s);
    } else {
      rewrite_inbound(ip, p.ihl_bytes, s);
      e.counters_.add(NatCounter::translated_inbound);
      ++e.counters_.proto[static_cast<unsigned>(l.proto)].translated_inbound;
      r = {Verdict::to_inside, DropReason::none};
      if (s.flags & session_flag::pptp_control) [[unlikely]]
        r = pptp_control<D>(e, ip, p, s, l.session, r.verdict);
    }
    if (p.fragmented && r.verdict != Verdict::drop) [[unlikely]]
      remember_fragment(e, D, ip, p, r.verdict);
    return r;
  }

  // RFC 4787 REQ-9 / RFC 5382 REQ-8: the packet already carries the sender's
  // public address and port as its source; now it enters again from the
  // "outside" towards the target's public mapping, with the target's pool
  // filtering applied as for any remote.
  [[gnu::noinline]] static Result hairpin(Engine& e, std::uint8_t* ip, const ParsedIpv4& p, const Session& s) {
    ParsedIpv4 q = p;
    q.src = s.out_addr;
    q.src_port = s.out_port;
    Lookup l2{};
    prepare<Direction::inbound>(e, q, l2);
    lookup<Direction::inbound>(e, q, l2);
    if (l2.session == no_index) {
      const DropReason r = create_inbound(e, q, l2);
      // With several workers the mapping may be another worker's: the port
      // tells which, and the dataplane delivers the packet there as inbound.
      if (r == DropReason::no_mapping && e.share_.workers > 1) {
        e.counters_.add(NatCounter::hairpinned);
        return {Verdict::to_outside_hairpin, DropReason::none};
      }
      if (r != DropReason::none) return drop(r);
    }
    Session& target = e.sessions_[l2.session];
    bool refresh = true;
    if (l2.proto == Proto::tcp) refresh = tcp_track(e, l2.session, q.tcp_flags, false);
    if (refresh) target.last_seen = e.now_s_;
    rewrite_inbound(ip, q.ihl_bytes, target);
    e.counters_.add(NatCounter::hairpinned);
    return {Verdict::to_inside, DropReason::none};
  }

  template <Direction D>
  [[gnu::noinline]] static Result translate_other(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
    switch (p.kind) {
      case L4Kind::later_fragment: return later_fragment(e, D, ip, p);
      case L4Kind::esp: return D == Direction::outbound ? esp_outbound(e, ip, p) : esp_inbound(e, ip, p);
      case L4Kind::gre:
        if (p.gre_version == 1) return D == Direction::outbound ? gre_outbound(e, ip, p) : gre_inbound(e, ip, p);
        return D == Direction::outbound ? gre0_outbound(e, ip, p) : gre0_inbound(e, ip, p);
      case L4Kind::icmp_error:
        return D == Direction::outbound ? icmp_error_outbound(e, ip, p) : icmp_error_inbound(e, ip, p);
      case L4Kind::icmp_other: return drop(DropReason::icmp_not_translatable);
      default: return drop(DropReason::unsupported_protocol);
    }
  }

  // ------------------------------------------------------ creating state
  [[gnu::cold]] static DropReason create_outbound(Engine& e, const ParsedIpv4& p, Lookup& l) {
    // An earlier packet of the same burst may have created it already.
    lookup<Direction::outbound>(e, p, l);
    if (l.session != no_index) return DropReason::none;
    if (l.proto == Proto::tcp && !(p.tcp_flags & packet::tcp_flag::syn)) return DropReason::tcp_not_syn;
    if (l.proto == Proto::icmp && !packet::is_icmp_query_request(p.icmp_type))
      return DropReason::icmp_query_inbound_no_session;
    if (e.free_sessions_.empty()) return DropReason::session_table_full;

    const std::uint64_t h_map = hash_mapping(e, l.proto, p.src, p.src_port);
    std::uint32_t m = find_mapping_in(e, h_map, l.proto, p.src, p.src_port);
    if (m != no_index && e.mappings_[m].is_static) {
      if (const DropReason r = admit_static(e, m); r != DropReason::none) return r;
      const be16 rem_port = l.proto == Proto::icmp ? be16{0} : p.dst_port;
      l.session = new_session(e, m, p.dst, rem_port, l.proto == Proto::tcp ? TcpState::syn_out : TcpState::none,
                              false, l.hash);
      if (l.session == no_index) {
        unadmit_static(e, m);
        return DropReason::session_table_full;
      }
      return DropReason::none;
    }
    std::uint32_t sub = no_index;
    if (const DropReason r = subscriber_for(e, p.src, sub); r != DropReason::none) return r;
    if (e.subscribers_[sub].sessions >= e.pools_[e.subscribers_[sub].pool].config.max_sessions_per_subscriber) {
      log_event(e, NatEvent::Type::session_limit, sub, 0, 0);
      release_if_unused(e, sub);
      return DropReason::subscriber_session_limit;
    }
    if (m == no_index) {
      const DropReason r = create_mapping(e, sub, l.proto, p.src, p.src_port, h_map, m);
      if (r != DropReason::none) {
        release_if_unused(e, sub);
        return r;
      }
    }
    const be16 rem_port = l.proto == Proto::icmp ? be16{0} : p.dst_port;
    l.session =
        new_session(e, m, p.dst, rem_port, l.proto == Proto::tcp ? TcpState::syn_out : TcpState::none, false, l.hash);
    if (l.session == no_index) {
      release_if_unused(e, sub);
      return DropReason::session_table_full;
    }
    return DropReason::none;
  }

  // Issue 11.1: every session, opened from either side, counts against the
  // inside host. Behind a static mapping (a port forward) the host is a
  // subscriber like any other when a pool's prefix holds it: the mapping
  // keeps that subscriber while it has sessions, and a flood of spoofed
  // sources at the forward exhausts at most the host's
  // max_sessions_per_subscriber, never the worker's table. A host in no
  // prefix is bounded per mapping by limits.static_mapping_sessions.
  static DropReason admit_static(Engine& e, std::uint32_t m) {
    Mapping& map = e.mappings_[m];
    if (map.is_static == static_draining) return DropReason::static_mapping_draining;
    std::uint32_t sub = map.subscriber;
    if (sub == no_index) {
      const DropReason r = subscriber_for(e, map.in_addr, sub, /*need_blocks=*/false);
      if (r == DropReason::no_pool)
        return map.sessions >= e.config_.limits.static_mapping_sessions ? DropReason::static_mapping_session_limit
                                                                         : DropReason::none;
      if (r != DropReason::none) return r;
    }
    const Subscriber& s = e.subscribers_[sub];
    if (s.sessions >= e.pools_[s.pool].config.max_sessions_per_subscriber) {
      log_event(e, NatEvent::Type::session_limit, sub, 0, 0);
      if (map.subscriber == no_index) release_if_unused(e, sub);
      return DropReason::subscriber_session_limit;
    }
    map.subscriber = sub;  // new_session counts the session against it
    return DropReason::none;
  }
  // The session admit_static() made room for could not be created.
  static void unadmit_static(Engine& e, std::uint32_t m) {
    Mapping& map = e.mappings_[m];
    if (map.sessions != 0 || map.subscriber == no_index) return;
    const std::uint32_t sub = map.subscriber;
    map.subscriber = no_index;
    release_if_unused(e, sub);
  }

  [[gnu::cold]] static DropReason create_inbound(Engine& e, const ParsedIpv4& p, Lookup& l) {
    lookup<Direction::inbound>(e, p, l);
    if (l.session != no_index) return DropReason::none;
    if (l.proto == Proto::icmp) return DropReason::icmp_query_inbound_no_session;
    const std::uint32_t m = find_mapping_out(e, hash_mapping(e, l.proto, p.dst, p.dst_port), l.proto, p.dst, p.dst_port);
    // A mapping held after its last session is not live (RFC 4787 REQ-8:
    // filtering applies to existing mappings only).
    if (m == no_index || (e.mappings_[m].sessions == 0 && !e.mappings_[m].is_static))
      return DropReason::no_mapping;
    const Mapping& map = e.mappings_[m];
    // A static mapping a reload removed only drains (README, hot reload).
    if (map.is_static == static_draining) return DropReason::static_mapping_draining;
    const Filtering filtering =
        map.is_static ? Filtering::endpoint_independent
                      : e.pools_[e.subscribers_[map.subscriber].pool].config.filtering;
    if (filtering == Filtering::address_and_port_dependent) return DropReason::filtered;
    if (filtering == Filtering::address_dependent && find_remote(e, map.proto, map.out_addr, map.out_port, p.src) ==
                                                          no_index)
      return DropReason::filtered;
    if (l.proto == Proto::tcp && !(p.tcp_flags & packet::tcp_flag::syn)) return DropReason::tcp_not_syn;
    if (map.is_static) {
      if (const DropReason r = admit_static(e, m); r != DropReason::none) return r;
    } else if (!subscriber_may_grow(e, map.subscriber)) {
      return DropReason::subscriber_draining;
    } else {
      const Subscriber& sub = e.subscribers_[map.subscriber];
      if (sub.sessions >= e.pools_[sub.pool].config.max_sessions_per_subscriber) {
        log_event(e, NatEvent::Type::session_limit, map.subscriber, 0, 0);
        return DropReason::subscriber_session_limit;
      }
    }
    l.session =
        new_session(e, m, p.src, p.src_port, l.proto == Proto::tcp ? TcpState::syn_in : TcpState::none, true, l.hash);
    if (l.session == no_index) {
      if (map.is_static) unadmit_static(e, m);
      return DropReason::session_table_full;
    }
    e.counters_.add(NatCounter::sessions_created_inbound);
    return DropReason::none;
  }

  // Whether `addr` is one of ours (hairpinning, ARP): in O(1), one lookup in
  // the public-address index, then the live state decides: a pool address
  // while in the policy or carrying blocks, a static one while a static
  // mapping (live or draining) uses it.
  static bool is_public(const Engine& e, be32 addr) {
    const PublicSet::Entry* x = e.public_set_->find(addr);
    if (x == nullptr) return false;
    if (x->address != no_index) {
      const PublicAddress& a = e.addresses_[x->address];
      if (!address_retired(e, a) || a.free_blocks < a.blocks) return true;
    }
    return x->static_slot != no_index && e.static_refs_[x->static_slot] != 0;
  }
  // Removed by a reload, alone or with its pool (one flag for a whole pool).
  static bool address_retired(const Engine& e, const PublicAddress& a) { return a.retired || e.pools_[a.pool].retired; }

  // `known_hash` is the table hash the caller already has: in2out's for a
  // session opened outbound, out2in's for one opened inbound.
  static std::uint32_t new_session(Engine& e, std::uint32_t m, be32 rem_addr, be16 rem_port, TcpState state,
                                   bool inbound, std::uint64_t known_hash) {
    if (e.free_sessions_.empty()) return no_index;
    Mapping& map = e.mappings_[m];
    const std::uint32_t i = e.free_sessions_.back();
    Session& s = e.sessions_[i];
    s.in_addr = map.in_addr;
    s.in_port = map.in_port;
    s.out_addr = map.out_addr;
    s.out_port = map.out_port;
    s.rem_addr = rem_addr;
    s.rem_port = rem_port;
    s.proto = map.proto;
    s.tcp_state = state;
    s.flags = inbound ? session_flag::inbound_opened : 0;
    if (is_public(e, rem_addr)) s.flags |= session_flag::hairpin;
    if (map.proto == Proto::tcp && !inbound && rem_port.host() == 1723 && e.pptp_.enabled())
      s.flags |= session_flag::pptp_control;
    if (map.proto == Proto::udp) {
      if (is_ike_port(map.in_port) || is_ike_port(rem_port)) s.flags |= session_flag::ike;
      else if (map.in_port.host() == 1701 || rem_port.host() == 1701) s.flags |= session_flag::l2tp;
    }
    s.reserved = 0;
    ChecksumDelta ip_delta;
    ip_delta.add(map.in_addr, map.out_addr);
    ChecksumDelta l4_delta;
    if (map.proto != Proto::icmp) l4_delta = ip_delta;  // the pseudo-header covers the addresses
    l4_delta.add(map.in_port, map.out_port);
    s.ip_delta = ip_delta.folded();
    s.l4_delta = l4_delta.folded();
    s.last_seen = e.now_s_;
    s.mapping = m;

    const std::uint64_t h_in = inbound ? hash_in(e, s.proto, s.in_addr, s.in_port, s.rem_addr, s.rem_port) : known_hash;
    const std::uint64_t h_out = inbound ? known_hash : hash_in(e, s.proto, s.out_addr, s.out_port, s.rem_addr, s.rem_port);
    if (!e.in2out_.insert(h_in, i)) return no_index;
    if (!e.out2in_.insert(h_out, i)) {
      e.in2out_.erase(h_in, i);
      return no_index;
    }
    e.free_sessions_.pop_back();
    ++e.session_count_;
    s.mapping_prev = no_index;
    s.mapping_next = map.first_session;
    if (map.first_session != no_index) e.sessions_[map.first_session].mapping_prev = i;
    map.first_session = i;
    ++map.sessions;
    map.hold_until = 0;
    if (map.subscriber != no_index) ++e.subscribers_[map.subscriber].sessions;
    if (!map.is_static && e.pools_[e.subscribers_[map.subscriber].pool].config.filtering ==
                              Filtering::address_dependent) [[unlikely]]
      count_remote(e, s);
    e.wheel_.schedule(i, e.now_s_ + timeout_of(e, s));
    e.counters_.add(NatCounter::sessions_created);
    ++e.counters_.proto[static_cast<unsigned>(map.proto)].sessions_created;
    if (e.config_.log_sessions) log_session(e, NatEvent::Type::session_created, s, map);
    return i;
  }

  // Paired pooling (RFC 6888 REQ-2): a new subscriber is given one public
  // address of its pool, chosen by a keyed hash of its own address so the
  // choice is stable across restarts with the same seed (REQ-11), moving on to
  // the next address only when that one has no free block.
  static DropReason subscriber_for(Engine& e, be32 addr, std::uint32_t& out, bool need_blocks = true) {
    out = find_subscriber(e, addr);
    if (out != no_index) {
      if (subscriber_may_grow(e, out)) return DropReason::none;
      out = no_index;
      return DropReason::subscriber_draining;
    }
    std::uint32_t pool = no_index;
    for (std::uint32_t k = 0; k < e.pool_order_.size() && pool == no_index; ++k)
      for (const std::uint32_t i = e.pool_order_[k]; const auto& prefix : e.pools_[i].config.subscribers)
        if (prefix.contains(addr)) {
          pool = i;
          break;
        }
    if (pool == no_index) return DropReason::no_pool;
    if (e.free_subscribers_.empty()) return DropReason::subscriber_table_full;
    const Pool& pl = e.pools_[pool];
    const std::uint32_t n = static_cast<std::uint32_t>(pl.addresses.size());
    if (n == 0) {  // every address of the pool removed by a reload
      log_event_raw(e, NatEvent::Type::pool_exhausted, addr, be32{0}, 0, 0, pool, e.pools_[pool].gate);
      return DropReason::pool_exhausted;
    }
    const std::uint32_t start = static_cast<std::uint32_t>(hash_subscriber(e, addr) % n);
    std::uint32_t chosen = no_index;
    for (std::uint32_t k = 0; k < n; ++k) {
      const std::uint32_t a = pl.addresses[(start + k) % n];
      if (e.addresses_[a].free_blocks > 0) {
        chosen = a;
        break;
      }
    }
    // A host behind a port forward needs no block for the forward itself.
    if (chosen == no_index && !need_blocks) chosen = pl.addresses[start];
    if (chosen == no_index) {
      log_event_raw(e, NatEvent::Type::pool_exhausted, addr, be32{0}, 0, 0, pool, e.pools_[pool].gate);
      return DropReason::pool_exhausted;
    }
    if (!take_subscriber_token(e)) return DropReason::subscriber_rate_limited;
    const std::uint32_t i = e.free_subscribers_.back();
    if (!e.subscriber_table_.insert(hash_subscriber(e, addr), i)) return DropReason::subscriber_table_full;
    e.free_subscribers_.pop_back();
    e.subscribers_[i] = Subscriber{};
    e.subscribers_[i].addr = addr;
    e.subscribers_[i].pool = pool;
    e.subscribers_[i].address = chosen;
    ++e.pools_[pool].subscribers;
    ++e.subscriber_count_;
    e.counters_.add(NatCounter::subscribers_created);
    out = i;
    return DropReason::none;
  }

  // Issue 11.3: a subscriber whose pool a reload removed, or whose address
  // left every prefix of its pool, keeps what it has until it drains and
  // gets nothing new (then it is created again under the policy in force).
  static bool subscriber_may_grow(const Engine& e, std::uint32_t sub) {
    const Subscriber& s = e.subscribers_[sub];
    const Pool& pl = e.pools_[s.pool];
    if (pl.retired) return false;
    for (const Ipv4Prefix& prefix : pl.config.subscribers)
      if (prefix.contains(s.addr)) return true;
    return false;
  }

  // Issue 11.5: new subscriber records per worker, a token bucket of
  // limits.new_subscribers_per_second with a burst of one second. Milli-tokens
  // keep the refill exact at any rate.
  static bool take_subscriber_token(Engine& e) {
    const std::uint64_t rate = e.config_.limits.new_subscribers_per_second;
    const std::uint64_t full = rate * 1000;
    if (e.now_ms_ > e.subscriber_tokens_ms_) {
      e.subscriber_tokens_ = std::min(full, e.subscriber_tokens_ + (e.now_ms_ - e.subscriber_tokens_ms_) * rate);
      e.subscriber_tokens_ms_ = e.now_ms_;
    }
    if (e.subscriber_tokens_ > full) e.subscriber_tokens_ = full;  // a reload lowered the rate
    if (e.subscriber_tokens_ < 1000) return false;
    e.subscriber_tokens_ -= 1000;
    return true;
  }

  // A subscriber created for a packet that then failed holds nothing.
  static void release_if_unused(Engine& e, std::uint32_t sub) {
    if (sub == no_index) return;
    const Subscriber& s = e.subscribers_[sub];
    if (s.blocks != 0 || s.sessions != 0 || s.preserved != 0 || s.esp_held != 0) return;
    e.subscriber_table_.erase(hash_subscriber(e, s.addr), sub);
    e.free_subscribers_.push_back(sub);
    --e.pools_[s.pool].subscribers;
    --e.subscriber_count_;
    e.counters_.add(NatCounter::subscribers_freed);
  }

  static be16 block_port(const Engine& e, std::uint32_t block, std::uint32_t offset) {
    return be16::from_host(static_cast<std::uint16_t>(e.blocks_[block].first_port + offset * e.share_.step));
  }
  static std::uint16_t block_last_port(const Engine& e, std::uint32_t block, std::uint16_t size) {
    return static_cast<std::uint16_t>(e.blocks_[block].first_port + (size - 1u) * e.share_.step);
  }
  // Whether this engine's comb holds `port` on the address.
  static bool owns_port(const Engine& e, const PublicAddress& a, std::uint16_t port) {
    return e.share_.step == 1 || port % e.share_.step == a.base_port % e.share_.step;
  }
  // The block of the address holding `port`, or no_index when the port is
  // outside the dynamic range or not in this engine's comb.
  static std::uint32_t block_of_port(const Engine& e, const PublicAddress& a, std::uint16_t port) {
    if (port < a.base_port || !owns_port(e, a, port)) return no_index;
    const std::uint32_t n = (port - a.base_port) / e.share_.step / e.pools_[a.pool].config.block_size;
    return n < a.blocks ? a.first_block + n : no_index;
  }

  // A free mapping slot filed in both indexes; no_index when none is free or
  // an index bucket is full (then nothing is changed).
  static std::uint32_t claim_mapping(Engine& e, std::uint64_t h_in, std::uint64_t h_out) {
    if (e.free_mappings_.empty()) return no_index;
    const std::uint32_t m = e.free_mappings_.back();
    if (!e.mapping_in_.insert(h_in, m)) return no_index;
    if (!e.mapping_out_.insert(h_out, m)) {
      e.mapping_in_.erase(h_in, m);
      return no_index;
    }
    e.free_mappings_.pop_back();
    return m;
  }

  static bool is_ike_port(be16 p) { return p.host() == 500 || p.host() == 4500; }

  // IKE, NAT-T and L2TP clients keep their source port when it is free
  // (RFC 7296 2.23 makes it optional; some peers still like it). Allowed
  // only outside the dynamic range, or inside a block the subscriber owns:
  // port-block logs must never name the wrong subscriber for a port.
  static bool try_preserve(Engine& e, std::uint32_t sub, Proto proto, be32 in_addr, be16 in_port, std::uint64_t h_in,
                           std::uint32_t& out) {
    if (proto != Proto::udp) return false;
    const auto& pt = e.config_.passthrough;
    const std::uint16_t port = in_port.host();
    if (!((is_ike_port(in_port) && pt.ike.preserve_port) || (port == 1701 && pt.l2tp.preserve_port))) return false;
    Subscriber& s = e.subscribers_[sub];
    const Pool& pl = e.pools_[s.pool];
    const PublicAddress& a = e.addresses_[s.address];
    const be32 out_addr = a.addr;
    // Replies to a port outside this worker's comb would reach another worker.
    if (!owns_port(e, a, port)) return false;
    std::uint32_t block = no_index;
    if (port >= pl.config.port_min && port <= pl.config.port_max) {
      block = block_of_port(e, a, port);
      if (block == no_index || e.blocks_[block].subscriber != sub) return false;
    }
    const std::uint64_t h_out = hash_mapping(e, proto, out_addr, in_port);
    if (find_mapping_out(e, h_out, proto, out_addr, in_port) != no_index) return false;
    const std::uint32_t m = claim_mapping(e, h_in, h_out);
    if (m == no_index) return false;
    const bool outside_blocks = block == no_index;
    const std::uint8_t kept_gen = e.mappings_[m].hold_gen;  // the slot's hold generations go on
    e.mappings_[m] = Mapping{in_addr, out_addr, in_port, in_port, proto, 0, static_cast<std::uint8_t>(outside_blocks),
                             0, 0, no_index, sub, 0};
    e.mappings_[m].hold_gen = kept_gen;
    if (outside_blocks) {
      ++s.preserved;
      log_port(e, NatEvent::Type::port_preserved, sub, in_port, port);
    } else {
      ++e.blocks_[block].used[static_cast<unsigned>(proto)];
    }
    ++e.mapping_count_;
    e.counters_.add(NatCounter::mappings_created);
    e.counters_.add(NatCounter::ports_preserved);
    out = m;
    return true;
  }

  // RFC 6888 REQ-13/14 and RFC 6056: ports come from the subscriber's blocks;
  // inside a block the port is chosen at random, then the next free one.
  static DropReason create_mapping(Engine& e, std::uint32_t sub, Proto proto, be32 in_addr, be16 in_port,
                                   std::uint64_t h_in, std::uint32_t& out) {
    if (e.free_mappings_.empty()) return DropReason::session_table_full;
    if (try_preserve(e, sub, proto, in_addr, in_port, h_in, out)) return DropReason::none;
    Subscriber& s = e.subscribers_[sub];
    const Pool& pl = e.pools_[s.pool];
    const std::uint16_t size = pl.config.block_size;
    const unsigned pi = static_cast<unsigned>(proto);
    std::uint32_t* blocks = &e.subscriber_blocks_[std::size_t{sub} * e.max_blocks_];

    std::uint32_t block = no_index;
    if (s.blocks > 0) {
      const std::uint32_t first = static_cast<std::uint32_t>(xoshiro_next(e.rng_) % s.blocks);
      for (std::uint32_t k = 0; k < s.blocks; ++k) {
        const std::uint32_t b = blocks[(first + k) % s.blocks];
        if (e.blocks_[b].used[pi] < size) {
          block = b;
          break;
        }
      }
    }
    if (block == no_index) {
      if (s.blocks >= pl.config.max_blocks_per_subscriber) {
        log_event(e, NatEvent::Type::ports_exhausted, sub, 0, 0);
        return DropReason::ports_exhausted;
      }
      if (address_retired(e, e.addresses_[s.address])) return DropReason::subscriber_draining;
      block = allocate_block(e, sub);
      if (block == no_index) {
        log_event(e, NatEvent::Type::pool_exhausted, sub, 0, 0);
        return DropReason::pool_exhausted;
      }
    }

    const be32 out_addr = e.addresses_[s.address].addr;
    const std::uint32_t start = static_cast<std::uint32_t>(xoshiro_next(e.rng_) % size);
    be16 out_port{0};
    std::uint64_t h_out = 0;
    for (std::uint32_t k = 0; k < size; ++k) {
      const be16 candidate = block_port(e, block, (start + k) % size);
      h_out = hash_mapping(e, proto, out_addr, candidate);
      if (find_mapping_out(e, h_out, proto, out_addr, candidate) == no_index) {
        out_port = candidate;
        break;
      }
    }
    if (out_port.raw == 0) return DropReason::ports_exhausted;  // only if counts drifted

    const std::uint32_t m = claim_mapping(e, h_in, h_out);
    if (m == no_index) return DropReason::session_table_full;
    const std::uint8_t kept_gen = e.mappings_[m].hold_gen;  // the slot's hold generations go on
    e.mappings_[m] = Mapping{in_addr, out_addr, in_port, out_port, proto, 0, 0, 0, 0, no_index, sub, 0};
    e.mappings_[m].hold_gen = kept_gen;
    ++e.blocks_[block].used[pi];
    ++e.mapping_count_;
    e.counters_.add(NatCounter::mappings_created);
    out = m;
    return DropReason::none;
  }

  static std::uint32_t allocate_block(Engine& e, std::uint32_t sub) {
    Subscriber& s = e.subscribers_[sub];
    PublicAddress& a = e.addresses_[s.address];
    if (a.free_blocks == 0) return no_index;
    const std::uint32_t per = a.blocks;
    const std::uint32_t start = static_cast<std::uint32_t>(xoshiro_next(e.rng_) % per);
    for (std::uint32_t k = 0; k < per; ++k) {
      const std::uint32_t b = a.first_block + (start + k) % per;
      if (e.blocks_[b].subscriber != no_index) continue;
      e.blocks_[b].subscriber = sub;
      e.blocks_[b].used[0] = e.blocks_[b].used[1] = e.blocks_[b].used[2] = 0;
      --a.free_blocks;
      e.subscriber_blocks_[std::size_t{sub} * e.max_blocks_ + s.blocks++] = b;
      ++e.blocks_in_use_;
      e.counters_.add(NatCounter::blocks_allocated);
      log_block(e, NatEvent::Type::block_allocated, sub, b);
      return b;
    }
    return no_index;
  }

  static void release_block(Engine& e, std::uint32_t b) {
    const std::uint32_t sub = e.blocks_[b].subscriber;
    Subscriber& s = e.subscribers_[sub];
    std::uint32_t* blocks = &e.subscriber_blocks_[std::size_t{sub} * e.max_blocks_];
    for (std::uint32_t k = 0; k < s.blocks; ++k)
      if (blocks[k] == b) {
        blocks[k] = blocks[--s.blocks];
        break;
      }
    log_block(e, NatEvent::Type::block_released, sub, b);
    e.blocks_[b].subscriber = no_index;
    ++e.addresses_[s.address].free_blocks;
    --e.blocks_in_use_;
    e.counters_.add(NatCounter::blocks_released);
    release_if_unused(e, sub);
  }

  static void log_block(Engine& e, NatEvent::Type type, std::uint32_t sub, std::uint32_t b) {
    const Subscriber& s = e.subscribers_[sub];
    NatEvent ev{type, e.now_ms_, s.addr, e.addresses_[s.address].addr, e.blocks_[b].first_port,
                block_last_port(e, b, e.pools_[s.pool].config.block_size), s.pool};
    ev.port_step = e.share_.step;
    if (!e.events_.push(ev)) e.counters_.add(NatCounter::events_lost);
  }

  // A single preserved port (IKE, NAT-T, L2TP: always UDP), like a one-port block.
  static void log_port(Engine& e, NatEvent::Type type, std::uint32_t sub, be16 inside_port, std::uint16_t port) {
    const Subscriber& s = e.subscribers_[sub];
    NatEvent ev{type, e.now_ms_, s.addr, e.addresses_[s.address].addr, port, port, s.pool};
    ev.protocol = packet::ip_proto::udp;
    ev.inside_port = inside_port;
    if (!e.events_.push(ev)) e.counters_.add(NatCounter::events_lost);
  }

  // Limit events pass the subscriber's (or pool's) gate (event_ring.hpp).
  static void log_event(Engine& e, NatEvent::Type type, std::uint32_t sub, std::uint16_t first, std::uint16_t last) {
    Subscriber& s = e.subscribers_[sub];
    log_event_raw(e, type, s.addr, e.addresses_[s.address].addr, first, last, s.pool, s.gate);
  }
  static void log_event_raw(Engine& e, NatEvent::Type type, be32 sub, be32 pub, std::uint16_t first,
                            std::uint16_t last, std::uint32_t pool, LimitEventGate& gate) {
    if ((type == NatEvent::Type::pool_exhausted || type == NatEvent::Type::ports_exhausted) && pool < e.pools_.size())
      ++e.pools_[pool].exhaustion_events;
    const LimitEventGate::Kind k = LimitEventGate::kind_of(type);
    if (!gate.admits(k, e.now_ms_, e.config_.limits.limit_event_interval_ms)) {
      e.counters_.add(NatCounter::limit_events_suppressed);
      return;
    }
    NatEvent ev{type, e.now_ms_, sub, pub, first, last, pool};
    ev.suppressed = gate.suppressed(k);
    if (!e.events_.push_low_priority(ev)) {
      e.counters_.add(NatCounter::low_priority_events_lost);
      return;
    }
    gate.sent(k, e.now_ms_);
  }

  // ------------------------------------------------- policy and reloads
  // A public address and its blocks (this engine's comb, comb_of), appended
  // to pool `pi` at start. Reloads build theirs in the plan (reload_plan.cpp).
  static std::uint32_t add_address(Engine& e, std::uint32_t pi, be32 addr) {
    const PoolConfig& pc = e.pools_[pi].config;
    const Comb comb = e.comb_of(pc, addr);
    const auto index = static_cast<std::uint32_t>(e.addresses_.size());
    const auto first_block = static_cast<std::uint32_t>(e.blocks_.size());
    e.addresses_.push_back(PublicAddress{addr, pi, first_block, comb.blocks, false, comb.base, comb.blocks});
    for (std::uint32_t n = 0; n < comb.blocks; ++n)
      e.blocks_.push_back(
          Block{no_index, index, {0, 0, 0}, static_cast<std::uint16_t>(comb.base + n * pc.block_size * e.share_.step)});
    return index;
  }

  // False when the inside or public endpoint is already held by a mapping.
  static bool add_static(Engine& e, const StaticMapping& sm) {
    const Proto proto = sm.protocol == packet::ip_proto::tcp ? Proto::tcp : Proto::udp;
    const std::uint64_t h_in = hash_mapping(e, proto, sm.inside_address, sm.inside_port);
    const std::uint64_t h_out = hash_mapping(e, proto, sm.public_address, sm.public_port);
    if (e.free_mappings_.empty() || find_mapping_in(e, h_in, proto, sm.inside_address, sm.inside_port) != no_index ||
        find_mapping_out(e, h_out, proto, sm.public_address, sm.public_port) != no_index)
      return false;
    const std::uint32_t m = claim_mapping(e, h_in, h_out);
    if (m == no_index) return false;
    const std::uint8_t kept_gen = e.mappings_[m].hold_gen;  // the slot's hold generations go on
    e.mappings_[m] = Mapping{sm.inside_address, sm.public_address, sm.inside_port, sm.public_port, proto, 1, 0, 0, 0,
                             no_index, no_index, 0};
    e.mappings_[m].hold_gen = kept_gen;
    e.static_mappings_.push_back(m);
    ++e.mapping_count_;
    if (const std::uint32_t slot = static_slot(e, sm.public_address); slot != no_index) ++e.static_refs_[slot];
    return true;
  }

  // The counter of static mappings using a public address (no_index before
  // the index is built at start, or when none ever used it).
  static std::uint32_t static_slot(const Engine& e, be32 addr) {
    if (!e.public_set_) return no_index;
    const PublicSet::Entry* x = e.public_set_->find(addr);
    return x ? x->static_slot : no_index;
  }

  // Hairpinning and ARP (is_public): at start, builds the public-address
  // index (each reload's plan builds the next one); afterwards, when a
  // removed static mapping's last session has gone (free_static_mapping),
  // recounts the static mappings per static public address: O(static
  // mappings), never O(public addresses). apply() keeps the counts itself.
  static void rebuild_public_ranges(Engine& e) {
    if (!e.public_set_) {
      std::vector<PublicSet::Entry> entries;
      std::unordered_map<std::uint32_t, std::uint32_t> entry_of;
      const auto entry = [&](be32 a) -> PublicSet::Entry& {
        const auto [it, fresh] = entry_of.try_emplace(a.raw, static_cast<std::uint32_t>(entries.size()));
        if (fresh) entries.push_back(PublicSet::Entry{a, no_index, no_index});
        return entries[it->second];
      };
      for (std::uint32_t i = 0; i < e.addresses_.size(); ++i) entry(e.addresses_[i].addr).address = i;  // newest wins
      std::uint32_t slots = 0;
      for (const std::uint32_t m : e.static_mappings_)
        if (PublicSet::Entry& x = entry(e.mappings_[m].out_addr); x.static_slot == no_index) x.static_slot = slots++;
      e.public_set_ = std::make_unique<const PublicSet>(e.hasher_, std::move(entries));
      e.static_refs_.assign(slots, 0);
    } else if (e.applying_) {
      return;
    }
    std::fill(e.static_refs_.begin(), e.static_refs_.end(), 0u);
    for (const std::uint32_t m : e.static_mappings_)
      if (const std::uint32_t slot = static_slot(e, e.mappings_[m].out_addr); slot != no_index) ++e.static_refs_[slot];
  }

  // Session logging (off by default: RFC 6888 REQ-12/13 prefer blocks). The
  // remote endpoint travels with the event; the exporters drop it unless the
  // operator asked for destinations.
  static void log_session(Engine& e, NatEvent::Type type, const Session& s, const Mapping& map) {
    NatEvent ev{type, e.now_ms_, s.in_addr, s.out_addr, s.out_port.host(), s.out_port.host(),
                map.subscriber == no_index ? no_index : e.subscribers_[map.subscriber].pool};
    ev.protocol = s.proto == Proto::tcp ? packet::ip_proto::tcp
                  : s.proto == Proto::udp ? packet::ip_proto::udp
                                          : packet::ip_proto::icmp;
    ev.inside_port = s.in_port;
    ev.remote_address = s.rem_addr;
    ev.remote_port = s.rem_port;
    if (!e.events_.push_low_priority(ev)) e.counters_.add(NatCounter::low_priority_events_lost);
  }

  // ----------------------------------------------------------- expiring
  static void free_session(Engine& e, std::uint32_t i) {
    Session& s = e.sessions_[i];
    if (e.config_.log_sessions) log_session(e, NatEvent::Type::session_deleted, s, e.mappings_[s.mapping]);
    e.in2out_.erase(hash_in(e, s.proto, s.in_addr, s.in_port, s.rem_addr, s.rem_port), i);
    e.out2in_.erase(hash_in(e, s.proto, s.out_addr, s.out_port, s.rem_addr, s.rem_port), i);
    Mapping& map = e.mappings_[s.mapping];
    if (s.mapping_prev != no_index) e.sessions_[s.mapping_prev].mapping_next = s.mapping_next;
    else map.first_session = s.mapping_next;
    if (s.mapping_next != no_index) e.sessions_[s.mapping_next].mapping_prev = s.mapping_prev;
    if (map.subscriber != no_index) --e.subscribers_[map.subscriber].sessions;
    if (s.flags & session_flag::adf_counted) [[unlikely]]
      uncount_remote(e, s);
    if (s.flags & session_flag::pptp_control) {
      // Its calls end with it (O(its calls)); each was one of the subscriber's sessions.
      e.pptp_.control_closed(i, [&](std::uint32_t sub) { --e.subscribers_[sub].sessions; });
    }
    e.free_sessions_.push_back(i);
    --e.session_count_;
    e.counters_.add(NatCounter::sessions_expired);
    ++e.counters_.proto[static_cast<unsigned>(s.proto)].sessions_expired;
    // The hold runs from when the session went idle, not from when the
    // expiry pass happened to notice.
    if (--map.sessions == 0) {
      if (!map.is_static) {
        hold_mapping(e, s.mapping, s.last_seen + timeout_of(e, s));
      } else {
        unadmit_static(e, s.mapping);
        if (map.is_static == static_draining) free_static_mapping(e, s.mapping);
      }
    }
  }

  // RFC 6888 REQ-8: the port stays with its mapping for port_reuse_hold
  // seconds after the last session; the same inside endpoint coming back in
  // that time gets the same public port.
  static void hold_mapping(Engine& e, std::uint32_t m, std::uint32_t idle_since) {
    const std::uint32_t until = std::min(idle_since, e.now_s_) + e.config_.timeouts.port_reuse_hold;
    Mapping& map = e.mappings_[m];
    map.hold_until = until;
    ++map.hold_gen;
    if (e.held_head_ - e.held_tail_ == e.held_ring_.size()) {
      free_mapping(e, m);  // cannot be held: the ring is sized for every mapping
      return;
    }
    e.held_ring_[e.held_head_++ % e.held_ring_.size()] = HeldMapping{m, until, map.hold_gen};
  }

  // A static mapping a reload removed, once its last session has gone.
  static void free_static_mapping(Engine& e, std::uint32_t m) {
    const Mapping& map = e.mappings_[m];
    e.mapping_in_.erase(hash_mapping(e, map.proto, map.in_addr, map.in_port), m);
    e.mapping_out_.erase(hash_mapping(e, map.proto, map.out_addr, map.out_port), m);
    e.mappings_[m].is_static = 0;
    e.free_mappings_.push_back(m);
    --e.mapping_count_;
    e.counters_.add(NatCounter::mappings_freed);
    std::erase(e.static_mappings_, m);
    rebuild_public_ranges(e);
  }

  static void free_mapping(Engine& e, std::uint32_t m) {
    Mapping& map = e.mappings_[m];
    map.hold_until = 0;
    ++map.hold_gen;
    e.mapping_in_.erase(hash_mapping(e, map.proto, map.in_addr, map.in_port), m);
    e.mapping_out_.erase(hash_mapping(e, map.proto, map.out_addr, map.out_port), m);
    e.free_mappings_.push_back(m);
    --e.mapping_count_;
    e.counters_.add(NatCounter::mappings_freed);
    Subscriber& s = e.subscribers_[map.subscriber];
    if (map.preserved) {
      --s.preserved;
      log_port(e, NatEvent::Type::port_released, map.subscriber, map.in_port, map.out_port.host());
      release_if_unused(e, map.subscriber);
      return;
    }
    const std::uint32_t b = block_of_port(e, e.addresses_[s.address], map.out_port.host());
    Block& block = e.blocks_[b];
    --block.used[static_cast<unsigned>(map.proto)];
    if (block.used[0] == 0 && block.used[1] == 0 && block.used[2] == 0) release_block(e, b);
  }

  static void expire(Engine& e, std::uint64_t now_ms, unsigned budget) {
    e.now_ms_ = now_ms;
    e.now_s_ = static_cast<std::uint32_t>(now_ms / 1000);
    e.wheel_.advance(e.now_s_, budget, [&](std::uint32_t i) -> std::uint32_t {
      const Session& s = e.sessions_[i];
      const std::uint32_t due = s.last_seen + timeout_of(e, s);
      if (due <= e.now_s_) {
        free_session(e, i);
        return 0;
      }
      return due;
    });
    unsigned n = 0;
    while (e.held_tail_ != e.held_head_ && n++ < budget) {
      const HeldMapping h = e.held_ring_[e.held_tail_ % e.held_ring_.size()];
      if (h.until > e.now_s_) break;
      ++e.held_tail_;
      const Mapping& map = e.mappings_[h.mapping];
      // Reused meanwhile (sessions > 0) or held again later (another entry).
      // A mapping reused and held again leaves a stale entry behind; after a
      // reload shortened port_reuse_hold both entries can carry the same
      // deadline, so the hold generation tells them apart (found by fuzz_ops,
      // tests/fuzz/regressions/ops-held-mapping-freed-twice-after-reload).
      if (map.sessions == 0 && map.hold_until == h.until && map.hold_gen == h.gen && !map.is_static)
        free_mapping(e, h.mapping);
    }
    expire_fragments(e, now_ms);
    expire_esp(e, now_ms, budget);
    e.pptp_.expire(now_ms, budget, [&](std::uint32_t sub) {
      --e.subscribers_[sub].sessions;
      release_if_unused(e, sub);
    });
    e.gre_.expire(now_ms, budget, [&](std::uint32_t sub) {
      --e.subscribers_[sub].sessions;
      release_if_unused(e, sub);
    });
  }

  // ------------------------------------------------------------------ ESP
  // lib/passthrough/esp.hpp explains the learning. The engine's part: ESP
  // leaves from the subscriber's paired public address (the same as its IKE
  // on UDP 500/4500, RFC 6888 REQ-2), and every SA counts against the
  // subscriber's session limit.
  // The tracker reports which subscribers gained an SA or lost a held
  // packet; their session counts and records follow here.
  static void reconcile_esp(Engine& e) {
    e.esp_.take_created([&](std::uint32_t sub) { ++e.subscribers_[sub].sessions; });
    e.esp_.take_unpinned([&](std::uint32_t sub) {
      --e.subscribers_[sub].esp_held;
      release_if_unused(e, sub);
    });
  }

  static Result esp_result(Engine& e, passthrough::EspTracker::Outcome o, Verdict pass) {
    using O = passthrough::EspTracker::Outcome;
    reconcile_esp(e);
    switch (o) {
      case O::forward: return {pass, DropReason::none};
      case O::held: return {Verdict::held, DropReason::none};
      case O::drop_disabled: return drop(DropReason::esp_disabled);
      case O::drop_unknown_spi: return drop(DropReason::esp_unknown_spi);
      case O::drop_hold_full: return drop(DropReason::esp_hold_full);
      case O::drop_table_full: return drop(DropReason::esp_table_full);
    }
    return drop(DropReason::esp_table_full);
  }

  static Result esp_outbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
    if (!e.config_.passthrough.esp.enabled) return drop(DropReason::esp_disabled);
    if (p.fragmented) return drop(DropReason::unsupported_protocol);  // ESP is never fragmented by IPsec peers in practice
    std::uint32_t sub = no_index;
    if (const DropReason r = subscriber_for(e, p.src, sub); r != DropReason::none) return drop(r);
    const Subscriber& s = e.subscribers_[sub];
    if (!e.esp_.has_sa(p.src, p.dst, p.esp_spi) &&
        s.sessions >= e.pools_[s.pool].config.max_sessions_per_subscriber) {
      log_event(e, NatEvent::Type::session_limit, sub, 0, 0);
      release_if_unused(e, sub);
      return drop(DropReason::subscriber_session_limit);
    }
    bool created = false;
    // No monopoly on the hold slots the worker shares: a subscriber may hold
    // at most a quarter of them (issue 11.9).
    const std::uint32_t share = std::max<std::uint32_t>(1, e.config_.passthrough.esp.hold_packets / 4);
    const auto o = e.esp_.outbound(ip, p, e.addresses_[s.address].addr, sub, e.now_ms_, created, s.esp_held < share);
    if (created) ++e.subscribers_[sub].sessions;
    // The held packet keeps `sub` until the tracker unpins it (issue 11.2).
    if (o == passthrough::EspTracker::Outcome::held) ++e.subscribers_[sub].esp_held;
    const Result r = esp_result(e, o, Verdict::to_outside);
    if (r.verdict == Verdict::drop) release_if_unused(e, sub);
    return r;
  }

  static Result esp_inbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
    if (!e.config_.passthrough.esp.enabled) return drop(DropReason::esp_disabled);
    if (p.fragmented) return drop(DropReason::unsupported_protocol);
    return esp_result(e, e.esp_.inbound(ip, p, e.now_ms_), Verdict::to_inside);
  }

  static void expire_esp(Engine& e, std::uint64_t now_ms, unsigned budget) {
    e.esp_.expire(now_ms, budget, [&](std::uint32_t sub) {
      --e.subscribers_[sub].sessions;
      release_if_unused(e, sub);
    });
    reconcile_esp(e);
  }

  // ----------------------------------------------------------------- PPTP
  // lib/passthrough/pptp.hpp explains the Call ID translation. The control
  // connection is an ordinary TCP session (so paired pooling and
  // endpoint-independent mapping hold for it); its payload is handed over
  // after the addresses and ports were rewritten. Each call counts as one of
  // the subscriber's sessions (RFC 6888 REQ-5), as ESP SAs and GRE tunnels
  // do; a control connection through a static mapping has no subscriber and
  // its calls only meet the tracker's own limits.
  template <Direction D>
  [[gnu::noinline]] static Result pptp_control(Engine& e, std::uint8_t* ip, const ParsedIpv4& p, const Session& s,
                                              std::uint32_t index, Verdict pass) {
    if constexpr (D == Direction::outbound) {
      // An IP fragment of a client's control segment cannot be inspected
      // whole: its Call IDs may lie in a later fragment.
      if (p.fragmented)
        return e.pptp_.enabled() ? drop(DropReason::pptp_split_message) : Result{pass, DropReason::none};
      const std::uint32_t sub = e.mappings_[s.mapping].subscriber;
      std::uint32_t room = no_index;
      if (sub != no_index) {
        const Subscriber& su = e.subscribers_[sub];
        const std::uint32_t limit = e.pools_[su.pool].config.max_sessions_per_subscriber;
        room = su.sessions < limit ? limit - su.sessions : 0;
      }
      const auto c = e.pptp_.control_outbound(ip, p, s.in_addr, s.out_addr, s.rem_addr, index, sub, room, e.now_ms_);
      if (sub != no_index) e.subscribers_[sub].sessions = e.subscribers_[sub].sessions + c.calls_opened - c.calls_closed;
      if (c.outcome == passthrough::PptpTracker::Outcome::drop_session_limit)
        log_event(e, NatEvent::Type::session_limit, sub, 0, 0);
      return pptp_result(c.outcome, pass);
    } else {
      if (!p.fragmented) e.pptp_.control_inbound(ip, p, s.out_addr, s.rem_addr, index, e.now_ms_);
      return {pass, DropReason::none};
    }
  }

  static Result pptp_result(passthrough::PptpTracker::Outcome o, Verdict pass) {
    using O = passthrough::PptpTracker::Outcome;
    switch (o) {
      case O::forward: return {pass, DropReason::none};
      case O::drop_disabled: return drop(DropReason::pptp_disabled);
      case O::drop_unknown_call: return drop(DropReason::pptp_unknown_call);
      case O::drop_session_limit: return drop(DropReason::subscriber_session_limit);
      case O::drop_call_limit: return drop(DropReason::pptp_call_limit);
      case O::drop_table_full: return drop(DropReason::pptp_table_full);
      case O::drop_split_message: return drop(DropReason::pptp_split_message);
    }
    return drop(DropReason::pptp_unknown_call);
  }

  static Result gre_outbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
    if (p.fragmented) return drop(DropReason::unsupported_protocol);
    // The client's control connection made it a subscriber with a paired
    // address; GRE leaves from that address.
    if (!e.config_.passthrough.pptp.enabled)
      return pptp_result(passthrough::PptpTracker::Outcome::drop_disabled, Verdict::to_outside);
    const std::uint32_t sub = find_subscriber(e, p.src);
    if (sub == no_index) return pptp_result(passthrough::PptpTracker::Outcome::drop_unknown_call, Verdict::to_outside);
    return pptp_result(e.pptp_.gre_outbound(ip, p, e.addresses_[e.subscribers_[sub].address].addr, e.now_ms_),
                       Verdict::to_outside);
  }

  static Result gre_inbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
    if (p.fragmented) return drop(DropReason::unsupported_protocol);
    return pptp_result(e.pptp_.gre_inbound(ip, p, e.now_ms_), Verdict::to_inside);
  }

  // -------------------------------------------------------------- GRE v0
  static Result gre0_result(passthrough::GreTracker::Outcome o, Verdict pass) {
    using O = passthrough::GreTracker::Outcome;
    switch (o) {
      case O::forward: return {pass, DropReason::none};
      case O::drop_disabled: return drop(DropReason::gre_disabled);
      case O::drop_conflict: return drop(DropReason::gre_conflict);
      case O::drop_no_tunnel: return drop(DropReason::gre_no_tunnel);
      case O::drop_table_full: return drop(DropReason::gre_table_full);
    }
    return drop(DropReason::gre_table_full);
  }

  static Result gre0_outbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
    if (!e.config_.passthrough.gre.enabled) return gre0_result(passthrough::GreTracker::Outcome::drop_disabled, Verdict::to_outside);
    if (p.fragmented) return drop(DropReason::unsupported_protocol);
    std::uint32_t sub = no_index;
    if (const DropReason r = subscriber_for(e, p.src, sub); r != DropReason::none) return drop(r);
    const Subscriber& s = e.subscribers_[sub];
    if (!e.gre_.has_tunnel(p.src, p.dst) && s.sessions >= e.pools_[s.pool].config.max_sessions_per_subscriber) {
      release_if_unused(e, sub);
      return drop(DropReason::subscriber_session_limit);
    }
    bool created = false;
    std::uint32_t displaced = no_index;
    const auto o = e.gre_.outbound(ip, p, e.addresses_[s.address].addr, sub, e.now_ms_, created, displaced);
    if (created) ++e.subscribers_[sub].sessions;
    // Taken over (issue 11.9): the old holder's tunnel is gone.
    if (displaced != no_index) {
      --e.subscribers_[displaced].sessions;
      release_if_unused(e, displaced);
    }
    const Result r = gre0_result(o, Verdict::to_outside);
    if (r.verdict == Verdict::drop) release_if_unused(e, sub);
    return r;
  }

  static Result gre0_inbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
    if (p.fragmented) return drop(DropReason::unsupported_protocol);
    return gre0_result(e.gre_.inbound(ip, p, e.now_ms_), Verdict::to_inside);
  }

  // ------------------------------------------------------------ ICMP errors
  // RFC 5508 section 3: an error arriving from outside quotes a packet we
  // sent (source = our public address and port). Restore the outer
  // destination and the embedded source, and every checksum on the way. The
  // session is not refreshed (RFC 5508 REQ-?; RFC 7857 section 2.3).
  static Result icmp_error_inbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
    const packet::IcmpInner& in = p.inner;
    Proto proto;
    if (!proto_of(in.kind, proto) || in.src != p.dst) return drop(DropReason::icmp_error_no_session);
    const be16 rem_port = proto == Proto::icmp ? be16{0} : in.dst_port;
    const std::uint32_t i = find_out2in(e, hash_in(e, proto, in.src, in.src_port, in.dst, rem_port), proto, in.src,
                                        in.src_port, in.dst, rem_port);
    if (i == no_index) return drop(DropReason::icmp_error_no_session);
    const Session& s = e.sessions_[i];
    rewrite_icmp_error(ip, p, s.out_addr, s.in_addr, in.ip_offset + 12, in.l4_offset + l4_src_port_offset(proto),
                       s.in_port, ChecksumDelta(s.ip_delta).inverse(), ChecksumDelta(s.l4_delta).inverse(), proto,
                       /*outer_src=*/false);
    e.counters_.add(NatCounter::icmp_errors_translated);
    return {Verdict::to_inside, DropReason::none};
  }

  // An error sent by an inside host about a packet it received from outside:
  // the embedded packet's destination is the inside endpoint; give it (and
  // the outer source) the public address and port.
  static Result icmp_error_outbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
    const packet::IcmpInner& in = p.inner;
    Proto proto;
    if (!proto_of(in.kind, proto)) return drop(DropReason::icmp_error_no_session);
    // Issue 11.5: only the inside host a session belongs to may report an
    // error about it; otherwise one subscriber could forge errors (port
    // unreachable, fragmentation needed) into another's connections.
    if (in.dst != p.src) return drop(DropReason::icmp_error_not_sender);
    const be16 rem_port = proto == Proto::icmp ? be16{0} : in.src_port;
    const std::uint32_t i = find_in2out(e, hash_in(e, proto, in.dst, in.dst_port, in.src, rem_port), proto, in.dst,
                                        in.dst_port, in.src, rem_port);
    if (i == no_index) return drop(DropReason::icmp_error_no_session);
    const Session& s = e.sessions_[i];
    rewrite_icmp_error(ip, p, s.in_addr, s.out_addr, in.ip_offset + 16, in.l4_offset + l4_dst_port_offset(proto),
                       s.out_port, ChecksumDelta(s.ip_delta), ChecksumDelta(s.l4_delta), proto, /*outer_src=*/true);
    e.counters_.add(NatCounter::icmp_errors_translated);
    return {Verdict::to_outside, DropReason::none};
  }

  // Rewrites one address of the outer header (destination inbound, source
  // outbound) and the matching address and port of the embedded packet.
  static void rewrite_icmp_error(std::uint8_t* ip, const ParsedIpv4& p, be32 from, be32 to, unsigned inner_addr_off,
                                 unsigned inner_port_off, be16 new_port, ChecksumDelta inner_ip_delta,
                                 ChecksumDelta inner_l4_delta, Proto proto, bool outer_src) {
    auto* outer = reinterpret_cast<Ipv4Header*>(ip);
    const packet::IcmpInner& in = p.inner;
    ChecksumDelta icmp;  // everything changed inside the ICMP message

    store(ip + inner_addr_off, to);
    icmp.add(from, to);
    std::uint8_t* inner_csum = ip + in.ip_offset + 10;
    const be16 old_inner_csum = load<be16>(inner_csum);
    const be16 new_inner_csum = inner_ip_delta.apply(old_inner_csum);
    store(inner_csum, new_inner_csum);
    icmp.add(old_inner_csum, new_inner_csum);

    const be16 old_port = load<be16>(ip + inner_port_off);
    store(ip + inner_port_off, new_port);
    icmp.add(old_port, new_port);

    // The embedded transport checksum is updated only where it was quoted.
    const unsigned csum_off = l4_checksum_offset(proto);
    if (in.l4_available >= csum_off + 2) {
      std::uint8_t* l4_csum = ip + in.l4_offset + csum_off;
      const be16 old_l4 = load<be16>(l4_csum);
      const be16 new_l4 = proto == Proto::udp ? inner_l4_delta.apply_udp(old_l4) : inner_l4_delta.apply(old_l4);
      store(l4_csum, new_l4);
      icmp.add(old_l4, new_l4);
    }
    auto* icmp_hdr = reinterpret_cast<IcmpHeader*>(ip + p.ihl_bytes);
    icmp_hdr->checksum = icmp.apply(icmp_hdr->checksum);

    ChecksumDelta outer_delta;
    if (outer_src) {
      outer_delta.add(outer->src, to);
      outer->src = to;
    } else {
      outer_delta.add(outer->dst, to);
      outer->dst = to;
    }
    outer->checksum = outer_delta.apply(outer->checksum);
  }

  // ---------------------------------------------------------- fragments
  // RFC 4787 REQ-14 / RFC 5508: the first fragment carries the ports and is
  // translated with a session; its rewrite of the IPv4 header is remembered
  // by (direction, src, dst, protocol, id) for the later fragments. Those
  // arriving first are copied into a fixed set of hold slots until then.
  //
  // Issue 11.6: an attacker cannot pin this state. Flows and held fragments
  // are bounded per host (limits.fragment_flows_per_host,
  // limits.fragments_held_per_host: the inside source outbound, the public
  // destination inbound); fragments are held only for a destination that can
  // be translated (a public address inbound, a known subscriber outbound);
  // a flow refreshed by a repeated first fragment moves to its new place in
  // the expiry order instead of stalling the flows behind it.
  static be32 fragment_host(Direction d, const ParsedIpv4& p) { return d == Direction::outbound ? p.src : p.dst; }
  static std::uint32_t fragment_bucket(const Engine& e, be32 host) {
    return static_cast<std::uint32_t>(e.hasher_(host.raw, 4ull << 40) & (e.fragment_flows_per_host_.size() - 1));
  }

  // A first fragment is translated only if its later fragments can be.
  static DropReason fragment_admit(Engine& e, Direction d, const ParsedIpv4& p) {
    if (find_fragment(e, d, p, hash_fragment(e, d, p.src, p.dst, p.ip_id, p.proto)) != no_index)
      return DropReason::none;  // a repeated first fragment
    if (e.free_fragment_flows_.empty()) return DropReason::fragment_table_full;
    if (e.fragment_flows_per_host_[fragment_bucket(e, fragment_host(d, p))] >= e.config_.limits.fragment_flows_per_host)
      return DropReason::fragment_host_limit;
    return DropReason::none;
  }

  static std::uint32_t find_fragment(const Engine& e, Direction d, const ParsedIpv4& p, std::uint64_t h) {
    return e.fragment_table_.find(h, [&](std::uint32_t i) {
      const FragmentFlow& f = e.fragment_flows_[i];
      return f.src == p.src && f.dst == p.dst && f.id == p.ip_id && f.proto == p.proto && f.dir == d &&
             f.expires_ms > e.now_ms_;
    });
  }

  static void remember_fragment(Engine& e, Direction d, std::uint8_t* ip, const ParsedIpv4& p, Verdict verdict) {
    const auto* h = reinterpret_cast<const Ipv4Header*>(ip);
    const std::uint64_t key = hash_fragment(e, d, p.src, p.dst, p.ip_id, p.proto);
    std::uint32_t i = find_fragment(e, d, p, key);
    const std::uint64_t deadline = e.now_ms_ + e.config_.timeouts.fragment_ms;
    std::uint64_t queued = deadline;
    std::uint32_t bucket = fragment_bucket(e, fragment_host(d, p));
    if (i == no_index) {
      if (e.free_fragment_flows_.empty()) return;
      i = e.free_fragment_flows_.back();
      if (!e.fragment_table_.insert(key, i)) return;
      e.free_fragment_flows_.pop_back();
      e.fragment_fifo_[e.fragment_head_++ % e.fragment_fifo_.size()] = i;
      ++e.fragment_flows_per_host_[bucket];
    } else {
      queued = e.fragment_flows_[i].queued_ms;  // still filed under its old deadline
      bucket = e.fragment_flows_[i].host_bucket;
    }
    FragmentFlow& f = e.fragment_flows_[i];
    ChecksumDelta delta;
    delta.add(p.src, h->src).add(p.dst, h->dst);
    f = FragmentFlow{p.src, p.dst, h->src, h->dst, p.ip_id, p.proto, d, verdict, delta.folded(), deadline, queued,
                     bucket};
    // Fragments that overtook this one can go now.
    for (HeldFragment& held : e.held_fragments_) {
      if (held.state != HeldFragment::State::held || held.dir != d) continue;
      std::uint8_t* bytes = e.held_buffer_.data() + held.buffer_offset;
      const auto* hh = reinterpret_cast<const Ipv4Header*>(bytes);
      if (hh->src != p.src || hh->dst != p.dst || hh->identification != p.ip_id || hh->protocol != p.proto) continue;
      apply_fragment(bytes, f);
      held.state = HeldFragment::State::ready;
      held.verdict = verdict;
      --e.fragments_held_per_host_[held.host_bucket];
      ++e.released_count_;
    }
  }

  static void apply_fragment(std::uint8_t* ip, const FragmentFlow& f) {
    auto* h = reinterpret_cast<Ipv4Header*>(ip);
    h->src = f.new_src;
    h->dst = f.new_dst;
    h->checksum = ChecksumDelta(f.ip_delta).apply(h->checksum);
  }

  static Result later_fragment(Engine& e, Direction d, std::uint8_t* ip, const ParsedIpv4& p) {
    const std::uint32_t i = find_fragment(e, d, p, hash_fragment(e, d, p.src, p.dst, p.ip_id, p.proto));
    if (i != no_index) {
      const FragmentFlow& f = e.fragment_flows_[i];
      apply_fragment(ip, f);
      e.counters_.add(NatCounter::fragments_translated);
      if (f.verdict == Verdict::to_inside && d == Direction::outbound) e.counters_.add(NatCounter::hairpinned);
      return {f.verdict, DropReason::none};
    }
    if (p.total_length > e.config_.fragment_hold_bytes) return drop(DropReason::fragment_too_large);
    const bool known = d == Direction::inbound ? is_public(e, p.dst) : find_subscriber(e, p.src) != no_index;
    if (!known) return drop(DropReason::fragment_unknown_host);
    const std::uint32_t bucket = fragment_bucket(e, fragment_host(d, p));
    if (e.fragments_held_per_host_[bucket] >= e.config_.limits.fragments_held_per_host)
      return drop(DropReason::fragment_host_limit);
    for (HeldFragment& held : e.held_fragments_) {
      if (held.state != HeldFragment::State::free) continue;
      held.host_bucket = bucket;
      ++e.fragments_held_per_host_[bucket];
      std::memcpy(e.held_buffer_.data() + held.buffer_offset, ip, p.total_length);
      held.state = HeldFragment::State::held;
      held.dir = d;
      held.length = p.total_length;
      held.expires_ms = e.now_ms_ + e.config_.timeouts.fragment_ms;
      ++e.held_fragment_count_;
      e.counters_.add(NatCounter::fragments_held);
      return {Verdict::held, DropReason::none};
    }
    return drop(DropReason::fragment_hold_full);
  }

  static void expire_fragments(Engine& e, std::uint64_t now_ms) {
    while (e.fragment_tail_ != e.fragment_head_) {
      const std::uint32_t i = e.fragment_fifo_[e.fragment_tail_ % e.fragment_fifo_.size()];
      FragmentFlow& f = e.fragment_flows_[i];
      if (f.queued_ms != f.expires_ms) {
        // Refreshed since it was filed: file it again under its real
        // deadline. The timeout is one constant, so the FIFO stays in
        // deadline order and nothing behind this flow waits for it.
        ++e.fragment_tail_;
        f.queued_ms = f.expires_ms;
        e.fragment_fifo_[e.fragment_head_++ % e.fragment_fifo_.size()] = i;
        continue;
      }
      if (f.expires_ms > now_ms) break;
      ++e.fragment_tail_;
      e.fragment_table_.erase(hash_fragment(e, f.dir, f.src, f.dst, f.id, f.proto), i);
      --e.fragment_flows_per_host_[f.host_bucket];
      e.free_fragment_flows_.push_back(i);
    }
    if (e.held_fragment_count_ == 0) return;
    for (HeldFragment& held : e.held_fragments_) {
      if (held.state == HeldFragment::State::held && held.expires_ms <= now_ms) {
        held.state = HeldFragment::State::free;
        --e.fragments_held_per_host_[held.host_bucket];
        --e.held_fragment_count_;
        e.counters_.add(DropReason::fragment_timeout);
      }
    }
  }

  // ------------------------------------------------------------ invariants
  // Marks the slots of a free list; false (with the reason in *why) when an
  // index repeats or is out of range: a double free.
  template <typename Vec>
  static bool mark_free(const Vec& free_list, std::size_t capacity, std::vector<std::uint8_t>& is_free, const char* what,
                        std::string* why) {
    is_free.assign(capacity, false);
    for (const std::uint32_t i : free_list) {
      if (i >= capacity) {
        *why = fmt::format("{} free list holds index {} beyond capacity {}", what, i, capacity);
        return false;
      }
      if (is_free[i]) {
        *why = fmt::format("{} free list holds index {} twice", what, i);
        return false;
      }
      is_free[i] = true;
    }
    return true;
  }

  static std::string check_invariants(const Engine& e) {
    std::string why;
    std::vector<std::uint8_t> free_session, free_mapping, free_subscriber;
    if (!mark_free(e.free_sessions_, e.sessions_.size(), free_session, "session", &why) ||
        !mark_free(e.free_mappings_, e.mappings_.size(), free_mapping, "mapping", &why) ||
        !mark_free(e.free_subscribers_, e.subscribers_.size(), free_subscriber, "subscriber", &why))
      return why;
    if (e.free_sessions_.size() + e.session_count_ != e.sessions_.size())
      return fmt::format("session count {} + free {} != capacity {}", e.session_count_, e.free_sessions_.size(),
                         e.sessions_.size());
    if (e.free_mappings_.size() + e.mapping_count_ != e.mappings_.size())
      return fmt::format("mapping count {} + free {} != capacity {}", e.mapping_count_, e.free_mappings_.size(),
                         e.mappings_.size());
    if (e.free_subscribers_.size() + e.subscriber_count_ != e.subscribers_.size())
      return fmt::format("subscriber count {} + free {} != capacity {}", e.subscriber_count_,
                         e.free_subscribers_.size(), e.subscribers_.size());
    if (e.in2out_.size() != e.session_count_ || e.out2in_.size() != e.session_count_)
      return fmt::format("session indexes hold {}/{} entries for {} sessions", e.in2out_.size(), e.out2in_.size(),
                         e.session_count_);
    if (e.mapping_in_.size() != e.mapping_count_ || e.mapping_out_.size() != e.mapping_count_)
      return fmt::format("mapping indexes hold {}/{} entries for {} mappings", e.mapping_in_.size(),
                         e.mapping_out_.size(), e.mapping_count_);
    if (e.subscriber_table_.size() != e.subscriber_count_)
      return fmt::format("subscriber index holds {} entries for {} subscribers", e.subscriber_table_.size(),
                         e.subscriber_count_);

    // What each subscriber should count, rebuilt from the objects that refer to it.
    const std::size_t nsub = e.subscribers_.size();
    std::vector<std::uint32_t> sessions(nsub, 0), preserved(nsub, 0), esp_held(nsub, 0), blocks(nsub, 0);
    const auto live_subscriber = [&](std::uint32_t sub, const char* holder) -> bool {
      if (sub < nsub && !free_subscriber[sub]) return true;
      why = fmt::format("{} refers to subscriber slot {} which is not live", holder, sub);
      return false;
    };

    std::array<std::uint32_t, proto_count> per_proto{};
    std::vector<std::uint32_t> mapping_sessions(e.mappings_.size(), 0);
    for (std::uint32_t i = 0; i < e.sessions_.size(); ++i) {
      if (free_session[i]) continue;
      const Session& s = e.sessions_[i];
      if (find_in2out(e, hash_in(e, s.proto, s.in_addr, s.in_port, s.rem_addr, s.rem_port), s.proto, s.in_addr,
                      s.in_port, s.rem_addr, s.rem_port) != i)
        return fmt::format("session {} not found by its inside key", i);
      if (find_out2in(e, hash_in(e, s.proto, s.out_addr, s.out_port, s.rem_addr, s.rem_port), s.proto, s.out_addr,
                      s.out_port, s.rem_addr, s.rem_port) != i)
        return fmt::format("session {} not found by its outside key", i);
      if (s.mapping >= e.mappings_.size() || free_mapping[s.mapping])
        return fmt::format("session {} refers to mapping {} which is not live", i, s.mapping);
      const Mapping& m = e.mappings_[s.mapping];
      if (m.in_addr != s.in_addr || m.in_port != s.in_port || m.out_addr != s.out_addr || m.out_port != s.out_port ||
          m.proto != s.proto)
        return fmt::format("session {} does not match its mapping {}", i, s.mapping);
      ++mapping_sessions[s.mapping];
      ++per_proto[static_cast<unsigned>(s.proto)];
      if (m.subscriber != no_index) {
        if (!live_subscriber(m.subscriber, "a session's mapping")) return why;
        ++sessions[m.subscriber];
      }
    }
    for (unsigned p = 0; p < proto_count; ++p) {
      const stats::ProtoCounters& c = e.counters_.proto[p];
      if (c.sessions_created - c.sessions_expired != per_proto[p])
        return fmt::format("{} gauge (created {} - expired {}) != {} live sessions", to_string(static_cast<Proto>(p)),
                           c.sessions_created, c.sessions_expired, per_proto[p]);
    }

    // Address-dependent filter index: each entry counts the flagged sessions of its (mapping, remote).
    {
      std::vector<std::uint8_t> free_remote;
      if (!mark_free(e.free_remotes_, e.remotes_.size(), free_remote, "remote entry", &why)) return why;
      std::vector<std::uint32_t> remote_sessions(e.remotes_.size(), 0);
      for (std::uint32_t i = 0; i < e.sessions_.size(); ++i) {
        if (free_session[i] || !(e.sessions_[i].flags & session_flag::adf_counted)) continue;
        const Session& s = e.sessions_[i];
        const std::uint32_t r = find_remote(e, s.proto, s.out_addr, s.out_port, s.rem_addr);
        if (r == no_index) return fmt::format("session {} is counted for address-dependent filtering but has no entry", i);
        ++remote_sessions[r];
      }
      for (std::uint32_t r = 0; r < e.remotes_.size(); ++r)
        if (!free_remote[r] && e.remotes_[r].sessions != remote_sessions[r])
          return fmt::format("remote entry {} counts {} sessions, {} exist", r, e.remotes_[r].sessions,
                             remote_sessions[r]);
    }

    std::vector<std::array<std::uint32_t, proto_count>> block_used(e.blocks_.size(), {0, 0, 0});
    for (std::uint32_t m = 0; m < e.mappings_.size(); ++m) {
      if (free_mapping[m]) continue;
      const Mapping& map = e.mappings_[m];
      if (find_mapping_in(e, hash_mapping(e, map.proto, map.in_addr, map.in_port), map.proto, map.in_addr,
                          map.in_port) != m ||
          find_mapping_out(e, hash_mapping(e, map.proto, map.out_addr, map.out_port), map.proto, map.out_addr,
                           map.out_port) != m)
        return fmt::format("mapping {} not found by both of its keys", m);
      if (map.sessions != mapping_sessions[m])
        return fmt::format("mapping {} counts {} sessions, {} refer to it", m, map.sessions, mapping_sessions[m]);
      std::uint32_t listed = 0, prev = no_index;
      for (std::uint32_t i = map.first_session; i != no_index; i = e.sessions_[i].mapping_next) {
        if (i >= e.sessions_.size() || free_session[i] || e.sessions_[i].mapping != m ||
            e.sessions_[i].mapping_prev != prev || ++listed > map.sessions)
          return fmt::format("mapping {}'s session list is broken at session {}", m, i);
        prev = i;
      }
      if (listed != map.sessions) return fmt::format("mapping {} lists {} of its {} sessions", m, listed, map.sessions);
      if (map.is_static) {
        if (map.subscriber == no_index) continue;
        if (map.sessions == 0) return fmt::format("static mapping {} keeps a subscriber without sessions", m);
        if (!live_subscriber(map.subscriber, "a static mapping")) return why;
        if (e.subscribers_[map.subscriber].addr != map.in_addr)
          return fmt::format("static mapping {} counts its sessions against another host", m);
        continue;
      }
      if (!live_subscriber(map.subscriber, "a mapping")) return why;
      const Subscriber& sub = e.subscribers_[map.subscriber];
      if (map.out_addr != e.addresses_[sub.address].addr)
        return fmt::format("mapping {} leaves from another address than its subscriber's (RFC 6888 REQ-2)", m);
      if (map.preserved) {
        ++preserved[map.subscriber];
        continue;
      }
      const std::uint32_t b = block_of_port(e, e.addresses_[sub.address], map.out_port.host());
      if (b == no_index || e.blocks_[b].subscriber != map.subscriber)
        return fmt::format("mapping {} uses port {} outside its subscriber's blocks", m, map.out_port.host());
      ++block_used[b][static_cast<unsigned>(map.proto)];
    }

    std::uint32_t in_use = 0;
    std::vector<std::uint32_t> free_per_address(e.addresses_.size(), 0);
    for (std::uint32_t b = 0; b < e.blocks_.size(); ++b) {
      const Block& blk = e.blocks_[b];
      if (blk.subscriber == no_index) {
        ++free_per_address[blk.address];
        if (block_used[b] != std::array<std::uint32_t, proto_count>{0, 0, 0})
          return fmt::format("free block {} has mappings", b);
        continue;
      }
      if (!live_subscriber(blk.subscriber, "a port block")) return why;
      ++in_use;
      ++blocks[blk.subscriber];
      if (e.subscribers_[blk.subscriber].address != blk.address)
        return fmt::format("block {} is on another address than its subscriber's", b);
      for (unsigned p = 0; p < proto_count; ++p)
        if (blk.used[p] != block_used[b][p])
          return fmt::format("block {} counts {} {} ports in use, {} mappings hold one", b, blk.used[p],
                             to_string(static_cast<Proto>(p)), block_used[b][p]);
      const std::uint32_t* list = &e.subscriber_blocks_[std::size_t{blk.subscriber} * e.max_blocks_];
      if (std::find(list, list + e.subscribers_[blk.subscriber].blocks, b) == list + e.subscribers_[blk.subscriber].blocks)
        return fmt::format("block {} is missing from its subscriber's block list", b);
    }
    if (in_use != e.blocks_in_use_) return fmt::format("blocks in use {} != counted {}", e.blocks_in_use_, in_use);
    for (std::uint32_t a = 0; a < e.addresses_.size(); ++a)
      if (free_per_address[a] != e.addresses_[a].free_blocks)
        return fmt::format("address {} counts {} free blocks, {} are free", to_string(e.addresses_[a].addr),
                           e.addresses_[a].free_blocks, free_per_address[a]);

    bool esp_ok = true;
    e.esp_.for_each_reference(
        [&](std::uint32_t sub) {
          if (esp_ok && !live_subscriber(sub, "an ESP SA")) esp_ok = false;
          else if (esp_ok) ++sessions[sub];
        },
        [&](std::uint32_t sub) {
          if (esp_ok && !live_subscriber(sub, "a held ESP packet")) esp_ok = false;
          else if (esp_ok) ++esp_held[sub];
        });
    if (!esp_ok) return why;
    bool gre_ok = true;
    e.gre_.for_each_subscriber([&](std::uint32_t sub) {
      if (gre_ok && !live_subscriber(sub, "a GRE tunnel")) gre_ok = false;
      else if (gre_ok) ++sessions[sub];
    });
    if (!gre_ok) return why;
    bool pptp_ok = true;
    e.pptp_.for_each_subscriber([&](std::uint32_t sub) {
      if (pptp_ok && !live_subscriber(sub, "a PPTP call")) pptp_ok = false;
      else if (pptp_ok) ++sessions[sub];
    });
    if (!pptp_ok) return why;
    e.pptp_.for_each_control([&](std::uint32_t session) {
      if (pptp_ok && (session >= e.sessions_.size() || free_session[session] ||
                      !(e.sessions_[session].flags & session_flag::pptp_control))) {
        why = fmt::format("PPTP control record of session {} which is not a live control session", session);
        pptp_ok = false;
      }
    });
    if (!pptp_ok) return why;
    if (std::string t = e.pptp_.check_invariants(); !t.empty()) return "PPTP: " + t;

    std::vector<std::uint32_t> pool_subscribers(e.pools_.size(), 0);
    for (std::uint32_t i = 0; i < nsub; ++i) {
      if (free_subscriber[i]) continue;
      const Subscriber& s = e.subscribers_[i];
      if (find_subscriber(e, s.addr) != i) return fmt::format("subscriber {} not found by its address", i);
      if (s.pool >= e.pools_.size() || s.address >= e.addresses_.size() || e.addresses_[s.address].pool != s.pool)
        return fmt::format("subscriber {} has an inconsistent pool or address", i);
      ++pool_subscribers[s.pool];
      if (s.sessions != sessions[i])
        return fmt::format("subscriber {} counts {} sessions, {} exist (sessions, ESP SAs, GRE tunnels, PPTP calls)",
                           to_string(s.addr), s.sessions, sessions[i]);
      if (s.blocks != blocks[i])
        return fmt::format("subscriber {} counts {} blocks, owns {}", to_string(s.addr), s.blocks, blocks[i]);
      if (s.preserved != preserved[i])
        return fmt::format("subscriber {} counts {} preserved ports, holds {}", to_string(s.addr), s.preserved,
                           preserved[i]);
      if (s.esp_held != esp_held[i])
        return fmt::format("subscriber {} counts {} held ESP packets, {} are held", to_string(s.addr), s.esp_held,
                           esp_held[i]);
      if (s.blocks == 0 && s.sessions == 0 && s.preserved == 0 && s.esp_held == 0)
        return fmt::format("subscriber {} holds nothing but was not released", to_string(s.addr));
    }
    std::vector<std::uint32_t> flows_per_host(e.fragment_flows_per_host_.size(), 0);
    std::vector<std::uint32_t> held_per_host(e.fragments_held_per_host_.size(), 0);
    std::vector<std::uint8_t> free_flow;
    if (!mark_free(e.free_fragment_flows_, e.fragment_flows_.size(), free_flow, "fragment flow", &why)) return why;
    for (std::uint32_t i = 0; i < e.fragment_flows_.size(); ++i)
      if (!free_flow[i]) ++flows_per_host[e.fragment_flows_[i].host_bucket];
    std::uint32_t held_total = 0;
    for (const HeldFragment& h : e.held_fragments_) {
      if (h.state == HeldFragment::State::held) ++held_per_host[h.host_bucket];
      if (h.state != HeldFragment::State::free) ++held_total;
    }
    if (held_total != e.held_fragment_count_)
      return fmt::format("held fragments counted {} != {} held or ready", e.held_fragment_count_, held_total);
    for (std::size_t b = 0; b < flows_per_host.size(); ++b)
      if (flows_per_host[b] != e.fragment_flows_per_host_[b] || held_per_host[b] != e.fragments_held_per_host_[b])
        return fmt::format("fragment host slot {} counts {} flows / {} held, {} / {} exist", b,
                           e.fragment_flows_per_host_[b], e.fragments_held_per_host_[b], flows_per_host[b],
                           held_per_host[b]);
    for (std::uint32_t p = 0; p < e.pools_.size(); ++p)
      if (e.pools_[p].subscribers != pool_subscribers[p])
        return fmt::format("pool {} counts {} subscribers, {} exist", e.pools_[p].config.name, e.pools_[p].subscribers,
                           pool_subscribers[p]);
    return {};
  }
};

// ------------------------------------------------------------------ public

namespace {
FlowHasher seeded_hasher(std::uint64_t seed) {
  FlowHasher h;
  h.k0 = splitmix(seed);
  h.k1 = splitmix(seed);
  h.k2 = splitmix(seed);
  return h;
}
}  // namespace

Engine::Engine(const NatConfig& config)
    : config_(config),
      hasher_(seeded_hasher(config.random_seed)),
      in2out_(config.max_sessions),
      out2in_(config.max_sessions),
      wheel_(config.max_sessions,
             std::max({config.timeouts.udp, config.timeouts.tcp_established, config.timeouts.tcp_transitory,
                       config.timeouts.icmp})),
      mapping_in_(config.max_sessions + static_cast<std::uint32_t>(config.static_mappings.size())),
      mapping_out_(config.max_sessions + static_cast<std::uint32_t>(config.static_mappings.size())),
      remote_table_(config.max_sessions),
      subscriber_table_(config.max_subscribers),
      fragment_table_(config.fragment_flows),
      events_(config.event_ring_size),
      esp_(config.passthrough.esp, hasher_, counters_),
      pptp_(config.passthrough.pptp, hasher_, counters_),
      gre_(config.passthrough.gre, hasher_, counters_) {}

Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::create(const NatConfig& config, std::vector<std::string>* errors, PortShare share) {
  std::vector<std::string> problems = config.validate();
  if (!problems.empty()) {
    if (errors) *errors = std::move(problems);
    return nullptr;
  }
  if (share.step == 0 || share.workers == 0) share.step = 1;
  std::unique_ptr<Engine> e(new Engine(config));
  e->share_ = std::move(share);
  // Hash keys are common to every worker (the same subscriber is paired with
  // the same public address whichever worker sees it); port choices differ.
  std::uint64_t seed = config.random_seed ^ 0x5eed5eed5eed5eedull ^ (std::uint64_t{e->share_.worker} * 0x9e3779b97f4a7c15ull);
  for (auto& word : e->rng_) word = splitmix(seed);

  const std::uint32_t mapping_capacity = config.max_sessions + static_cast<std::uint32_t>(config.static_mappings.size());
  e->sessions_.assign(config.max_sessions, Session{});
  e->free_sessions_.resize(config.max_sessions);
  for (std::uint32_t i = 0; i < config.max_sessions; ++i) e->free_sessions_[i] = config.max_sessions - 1 - i;
  e->mappings_.assign(mapping_capacity, Mapping{});
  e->free_mappings_.resize(mapping_capacity);
  for (std::uint32_t i = 0; i < mapping_capacity; ++i) e->free_mappings_[i] = mapping_capacity - 1 - i;
  e->held_ring_.assign(held_ring_size(config.max_sessions), HeldMapping{});
  e->remotes_.assign(config.max_sessions, RemoteEntry{});
  e->free_remotes_.resize(config.max_sessions);
  for (std::uint32_t i = 0; i < config.max_sessions; ++i) e->free_remotes_[i] = config.max_sessions - 1 - i;

  for (const PoolConfig& pc : config.pools)
    e->max_blocks_ = std::max<std::uint32_t>(e->max_blocks_, pc.max_blocks_per_subscriber);
  e->subscribers_.assign(config.max_subscribers, Subscriber{});
  e->free_subscribers_.resize(config.max_subscribers);
  for (std::uint32_t i = 0; i < config.max_subscribers; ++i) e->free_subscribers_[i] = config.max_subscribers - 1 - i;
  e->subscriber_blocks_.assign(std::size_t{config.max_subscribers} * e->max_blocks_, no_index);

  for (std::uint32_t pi = 0; pi < config.pools.size(); ++pi) {
    const PoolConfig& pc = config.pools[pi];
    e->pools_.push_back(Pool{pc, {}, blocks_per_address(pc)});
    e->pool_order_.push_back(pi);
    for (const AddressRange& r : pc.public_addresses)
      for (std::uint64_t a = r.first.host(); a <= r.last.host(); ++a)
        e->pools_[pi].addresses.push_back(Impl::add_address(*e, pi, be32::from_host(static_cast<std::uint32_t>(a))));
  }
  for (const StaticMapping& sm : config.static_mappings) Impl::add_static(*e, sm);
  e->subscriber_tokens_ = std::uint64_t{config.limits.new_subscribers_per_second} * 1000;
  Impl::rebuild_public_ranges(*e);

  e->fragment_flows_.assign(config.fragment_flows, FragmentFlow{});
  e->free_fragment_flows_.resize(config.fragment_flows);
  for (std::uint32_t i = 0; i < config.fragment_flows; ++i) e->free_fragment_flows_[i] = i;
  e->fragment_fifo_.assign(config.fragment_flows, 0);
  e->fragment_flows_per_host_.assign(std::bit_ceil(std::max<std::uint32_t>(config.fragment_flows, 64)), 0);
  e->fragments_held_per_host_.assign(e->fragment_flows_per_host_.size(), 0);
  e->held_fragments_.assign(config.fragment_hold_slots, HeldFragment{});
  e->held_buffer_.assign(std::size_t{config.fragment_hold_slots} * config.fragment_hold_bytes, 0);
  for (std::uint32_t i = 0; i < config.fragment_hold_slots; ++i) {
    e->held_fragments_[i].state = HeldFragment::State::free;
    e->held_fragments_[i].buffer_offset = i * config.fragment_hold_bytes;
  }
  return e;
}

void Engine::process_burst(Direction dir, std::span<PacketRef> packets, std::uint64_t now_ms) {
  now_ms_ = now_ms;
  now_s_ = static_cast<std::uint32_t>(now_ms / 1000);
  ParsedIpv4 parsed[max_burst];
  Impl::Lookup lookups[max_burst];
  packet::ParseError errors[max_burst];
  const std::size_t n = std::min<std::size_t>(packets.size(), max_burst);
  const NatCounter seen = dir == Direction::outbound ? NatCounter::packets_outbound : NatCounter::packets_inbound;
  counters_.add(seen, n);

  auto run = [&]<Direction D>() {
    for (std::size_t i = 0; i < n; ++i) {
      errors[i] = packet::parse_ipv4(packets[i].bytes, parsed[i], parse_options_);
      if (errors[i] == packet::ParseError::ok) Impl::prepare<D>(*this, parsed[i], lookups[i]);
    }
    for (std::size_t i = 0; i < n; ++i)
      if (errors[i] == packet::ParseError::ok) Impl::lookup<D>(*this, parsed[i], lookups[i]);
    for (std::size_t i = 0; i < n; ++i) {
      PacketRef& pkt = packets[i];
      if (errors[i] != packet::ParseError::ok) {
        counters_.add(errors[i]);
        ++counters_.of(stats::ProtoIndex::other).drop[static_cast<unsigned>(DropReason::malformed)];
        pkt.result = drop(DropReason::malformed);
        continue;
      }
      pkt.result = Impl::translate<D>(*this, pkt.bytes.data(), parsed[i], lookups[i]);
      if (pkt.result.verdict == Verdict::drop) counters_.add(pkt.result.reason, stats::proto_index_of(parsed[i].proto));
    }
  };
  if (dir == Direction::outbound)
    run.template operator()<Direction::outbound>();
  else
    run.template operator()<Direction::inbound>();
}

Result Engine::process(Direction dir, std::span<std::uint8_t> ip_packet, std::uint64_t now_ms) {
  PacketRef ref{ip_packet, {}};
  process_burst(dir, std::span<PacketRef>(&ref, 1), now_ms);
  return ref.result;
}

void Engine::expire(std::uint64_t now_ms, unsigned budget) { Impl::expire(*this, now_ms, budget); }

const Mapping* Engine::find_mapping(Proto proto, be32 in_addr, be16 in_port) const {
  const std::uint32_t m = Impl::find_mapping_in(*this, Impl::hash_mapping(*this, proto, in_addr, in_port), proto, in_addr, in_port);
  return m == no_index ? nullptr : &mappings_[m];
}

const Session* Engine::find_session_in(Proto proto, be32 in_addr, be16 in_port, be32 rem_addr, be16 rem_port) const {
  const std::uint32_t i = Impl::find_in2out(*this, Impl::hash_in(*this, proto, in_addr, in_port, rem_addr, rem_port),
                                            proto, in_addr, in_port, rem_addr, rem_port);
  return i == no_index ? nullptr : &sessions_[i];
}

be32 Engine::subscriber_public_address(be32 subscriber) const {
  const std::uint32_t i = Impl::find_subscriber(*this, subscriber);
  return i == no_index ? be32{0} : addresses_[subscribers_[i].address].addr;
}

std::vector<std::string> Engine::reconfigure_problems(const NatConfig& running, const NatConfig& next,
                                                      std::span<const DrainingAddress> draining) {
  std::vector<std::string> problems = next.validate();
  const auto fixed = [&](const char* what, std::uint64_t was, std::uint64_t now) {
    if (was != now)
      problems.push_back(fmt::format("nat.{} changes from {} to {}: table sizes are fixed at start, restart passgate to "
                                     "change it",
                                     what, was, now));
  };
  fixed("max_sessions", running.max_sessions, next.max_sessions);
  fixed("max_subscribers", running.max_subscribers, next.max_subscribers);
  fixed("fragments.flows", running.fragment_flows, next.fragment_flows);
  fixed("fragments.hold_slots", running.fragment_hold_slots, next.fragment_hold_slots);
  fixed("fragments.hold_bytes", running.fragment_hold_bytes, next.fragment_hold_bytes);
  fixed("event_ring", running.event_ring_size, next.event_ring_size);
  fixed("passthrough.esp.max_sas", running.passthrough.esp.max_sas, next.passthrough.esp.max_sas);
  fixed("passthrough.esp.hold_packets", running.passthrough.esp.hold_packets, next.passthrough.esp.hold_packets);
  fixed("passthrough.pptp.max_calls", running.passthrough.pptp.max_calls, next.passthrough.pptp.max_calls);
  fixed("passthrough.gre.max_tunnels", running.passthrough.gre.max_tunnels, next.passthrough.gre.max_tunnels);
  if (running.random_seed != next.random_seed)
    problems.push_back("nat.random_seed changes: the hash keys of every table depend on it, restart passgate to change it");
  // The per-subscriber block list is sized at start for the largest limit.
  std::uint32_t slots = 0, wanted = 0;
  for (const PoolConfig& pc : running.pools) slots = std::max<std::uint32_t>(slots, pc.max_blocks_per_subscriber);
  for (const PoolConfig& pc : next.pools) wanted = std::max<std::uint32_t>(wanted, pc.max_blocks_per_subscriber);
  if (wanted > slots)
    problems.push_back(fmt::format("max_blocks_per_subscriber {} is above the {} this run was started with: restart "
                                   "passgate to raise it",
                                   wanted, slots));
  const auto lower = [](be32 a, be32 b) { return a.host() < b.host(); };
  for (const PoolConfig& now : next.pools)
    for (const PoolConfig& was : running.pools) {
      if (was.name == now.name) {
        if (!same_geometry(was, now))
          problems.push_back(fmt::format(
              "pool '{}': port_min, port_max or block_size changes under port blocks that may be in use; remove the "
              "pool (reload), let it drain, then add it back, or restart passgate",
              now.name));
        continue;
      }
      for (const AddressRange& r : now.public_addresses)
        for (const AddressRange& o : was.public_addresses)
          if (r.first.host() <= o.last.host() && o.first.host() <= r.last.host())
            problems.push_back(fmt::format(
                "pool '{}': public addresses {}-{} belong to pool '{}' in the running policy; remove them there "
                "first and let them drain (two pools' port blocks on one address would make the logs ambiguous)",
                now.name, to_string(std::max(r.first, o.first, lower)), to_string(std::min(r.last, o.last, lower)),
                was.name));
    }

  // What the engines still hold: an address that an earlier reload removed
  // from a pool and that still carries port blocks may come back to that
  // pool (same name and port geometry), not join another.
  struct Range {
    std::uint32_t first, last, pool;
  };
  std::vector<Range> ranges;
  for (std::uint32_t k = 0; k < next.pools.size(); ++k)
    for (const AddressRange& r : next.pools[k].public_addresses) ranges.push_back({r.first.host(), r.last.host(), k});
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.first < b.first; });
  struct Moved {
    std::uint32_t first = 0xffffffffu, last = 0, addresses = 0, blocks = 0;
  };
  std::map<std::pair<std::uint32_t, std::string>, Moved> moved;  // (next pool, draining pool)
  std::vector<const DrainingAddress*> sorted;
  for (const DrainingAddress& d : draining) sorted.push_back(&d);
  std::sort(sorted.begin(), sorted.end(), [](const DrainingAddress* a, const DrainingAddress* b) {
    return a->address.host() < b->address.host();
  });
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const DrainingAddress& d = *sorted[i];
    const std::uint32_t a = d.address.host();
    auto it = std::upper_bound(ranges.begin(), ranges.end(), a, [](std::uint32_t v, const Range& r) { return v < r.first; });
    if (it == ranges.begin() || (--it)->last < a) continue;  // not in the next policy: keeps draining
    const PoolConfig& to = next.pools[it->pool];
    if (to.name == d.pool && to.port_min == d.port_min && to.port_max == d.port_max && to.block_size == d.block_size)
      continue;  // back in its own pool
    Moved& m = moved[{it->pool, d.pool}];
    m.blocks += d.blocks_in_use;  // every engine's blocks on it
    if (i > 0 && sorted[i - 1]->address == d.address) continue;  // counted for another engine already
    m.first = std::min(m.first, a);
    m.last = std::max(m.last, a);
    ++m.addresses;
  }
  for (const auto& [key, m] : moved) {
    const std::string& to = next.pools[key.first].name;
    const std::string what =
        m.addresses == 1 ? fmt::format("public address {}", to_string(be32::from_host(m.first)))
                         : fmt::format("{} public addresses from {} to {}", m.addresses, to_string(be32::from_host(m.first)),
                                       to_string(be32::from_host(m.last)));
    problems.push_back(fmt::format(
        "pool '{}': {} still drain{} in pool '{}' ({} port block{} in use), removed from it by an earlier reload; "
        "two pools' port blocks on one address would make the logs ambiguous: wait until passgatectl pools shows "
        "them drained, or put them back in pool '{}'",
        to, what, m.addresses == 1 ? "s" : "", key.second, m.blocks, m.blocks == 1 ? "" : "s", key.second));
  }
  return problems;
}

namespace {
template <typename Records, typename Pools, typename Out>
void report_draining(const Records& records, const Pools& pools, std::uint32_t idx, Out& out) {
  const auto& a = records[idx];
  if (a.free_blocks == a.blocks) return;  // drained (a retired address never gets a block again)
  const PoolConfig& pc = pools[a.pool].config;
  out.push_back(DrainingAddress{a.addr, pc.name, pc.port_min, pc.port_max, pc.block_size, a.blocks - a.free_blocks});
}
}  // namespace

std::vector<DrainingAddress> Engine::draining_addresses() const {
  std::vector<DrainingAddress> out;
  for (const Retired& x : retiring_) report_draining(addresses_, pools_, x.index, out);
  return out;
}

// Only the removed records whose address `next` puts in another pool (by
// name and port geometry) than their own: for each range of the next policy
// and each other pool with removed records, one binary search in the list of
// retired records (sorted by pool, then address). An address coming back to
// its own pool costs nothing.
std::vector<DrainingAddress> Engine::draining_addresses(const NatConfig& next) const {
  std::vector<DrainingAddress> out;
  const auto before = [](const Retired& x, std::pair<std::uint32_t, std::uint32_t> k) {
    return x.pool != k.first ? x.pool < k.first : x.addr.host() < k.second;
  };
  for (auto seg = retiring_.begin(); seg != retiring_.end();) {
    const std::uint32_t q = seg->pool;
    const auto seg_end = std::lower_bound(seg, retiring_.end(), std::pair{q + 1, 0u}, before);
    const PoolConfig& own = pools_[q].config;
    for (const PoolConfig& pc : next.pools) {
      if (pc.name == own.name && same_geometry(pc, own)) continue;  // coming back is allowed
      for (const AddressRange& r : pc.public_addresses)
        for (auto it = std::lower_bound(seg, seg_end, std::pair{q, r.first.host()}, before);
             it != seg_end && it->addr.host() <= r.last.host(); ++it)
          report_draining(addresses_, pools_, it->index, out);
    }
    seg = seg_end;
  }
  return out;
}

// The worker's part of a reload (reload_plan.hpp): O(what changed), no
// allocation; everything swapped out stays in the plan.
ReconfigureResult Engine::apply(ReloadPlan& p) {
  if (p.engine_ != this || p.layout_version_ != layout_version_ || !addresses_.fits(p.addresses_) ||
      !blocks_.fits(p.blocks_)) {
    ReconfigureResult refused;
    refused.applied = false;
    return refused;
  }
  ReconfigureResult r = p.result_;
  std::uint64_t ops = 0;
  applying_ = true;
  std::swap(config_, p.config_);
  esp_.update_config(config_.passthrough.esp);
  pptp_.update_config(config_.passthrough.pptp);
  gre_.update_config(config_.passthrough.gre);

  if (!p.new_pools_.empty()) {
    if (pools_.size() + p.new_pools_.size() > pools_.capacity()) {  // the plan made room
      for (Pool& pool : pools_) p.pools_room_.push_back(std::move(pool));
      pools_.swap(p.pools_room_);
      ops += pools_.size();
    }
    for (Pool& pool : p.new_pools_) pools_.push_back(std::move(pool));
    ops += p.new_pools_.size();
  }
  for (ReloadPlan::PoolUpdate& u : p.pool_updates_) {
    Pool& pool = pools_[u.pool];
    pool.retired = u.retire;
    if (!u.retire) std::swap(pool.config, u.config);
    if (u.addresses_changed) pool.addresses.swap(u.addresses);
    ++ops;
  }
  pool_order_.swap(p.pool_order_);

  ops += p.addresses_.adopt_work() + p.blocks_.adopt_work();
  addresses_.adopt(p.addresses_);
  blocks_.adopt(p.blocks_);
  for (const std::uint32_t idx : p.retire_) addresses_[idx].retired = true;
  for (const std::uint32_t idx : p.unretire_) addresses_[idx].retired = false;
  ops += p.retire_.size() + p.unretire_.size();
  retiring_.swap(p.retiring_);
  if (p.public_set_) {
    std::swap(public_set_, p.public_set_);
    ++ops;
  }
  if (p.static_slots_ > static_refs_.capacity()) {  // the plan made room
    p.static_refs_room_.assign(static_refs_.begin(), static_refs_.end());
    p.static_refs_room_.resize(p.static_slots_, 0);
    static_refs_.swap(p.static_refs_room_);
    ops += static_refs_.size();
  } else {
    static_refs_.resize(p.static_slots_, 0);
  }

  // Static mappings: removed ones drain (or go at once when idle), added
  // ones are filed unless a live mapping holds an endpoint (retried by the
  // next reload); a draining one that comes back is live again.
  const auto find_static = [&](const StaticMapping& sm) -> std::uint32_t {
    const Proto proto = sm.protocol == packet::ip_proto::tcp ? Proto::tcp : Proto::udp;
    const std::uint32_t m = Impl::find_mapping_in(*this, Impl::hash_mapping(*this, proto, sm.inside_address, sm.inside_port),
                                                  proto, sm.inside_address, sm.inside_port);
    if (m == no_index || mappings_[m].is_static == 0) return no_index;
    const Mapping& map = mappings_[m];
    const StaticMapping as_config{sm.protocol, map.in_addr, map.in_port, map.out_addr, map.out_port};
    return same_static(as_config, sm) ? m : no_index;
  };
  for (const StaticMapping& sm : p.static_removed_) {
    ++ops;
    const std::uint32_t m = find_static(sm);
    if (m == no_index || mappings_[m].is_static != 1) continue;  // never applied (a conflict)
    if (mappings_[m].sessions == 0) {
      if (const std::uint32_t slot = Impl::static_slot(*this, sm.public_address); slot != no_index) --static_refs_[slot];
      Impl::free_static_mapping(*this, m);
      ++r.static_removed;
    } else {
      mappings_[m].is_static = static_draining;
      ++r.static_draining;
    }
  }
  if (!p.static_added_.empty() && static_mappings_.size() + p.static_added_.size() > static_mappings_.capacity() &&
      p.static_list_room_.capacity() >= static_mappings_.size() + p.static_added_.size()) {
    p.static_list_room_.assign(static_mappings_.begin(), static_mappings_.end());
    static_mappings_.swap(p.static_list_room_);
    ops += static_mappings_.size();
  }
  for (const StaticMapping& sm : p.static_added_) {
    ++ops;
    if (const std::uint32_t m = find_static(sm); m != no_index) {
      mappings_[m].is_static = 1;
      continue;
    }
    if (Impl::add_static(*this, sm)) {
      ++r.static_added;
    } else {
      ++r.static_conflicts;
      counters_.add(NatCounter::static_mapping_conflicts);
      p.static_pending_.push_back(sm);
    }
  }
  static_pending_.swap(p.static_pending_);

  applying_ = false;
  ++layout_version_;
  counters_.add(NatCounter::reloads_applied);
  r.worker_operations = ops;
  return r;
}

ReconfigureResult Engine::reconfigure(const NatConfig& next) { return apply(*plan_reload(next)); }

// O(public addresses in the policy and draining), not O(every address ever served).
std::vector<PoolUsage> Engine::pool_usage() const {
  std::vector<PoolUsage> out;
  for (const Pool& p : pools_) {
    PoolUsage u;
    u.name = p.config.name;
    u.retired = p.retired;
    u.subscribers = p.subscribers;
    u.exhaustion_events = p.exhaustion_events;
    out.push_back(u);
  }
  const auto count = [&](const PublicAddress& a) {
    PoolUsage& u = out[a.pool];
    const std::uint32_t per = a.blocks;
    const std::uint32_t used = per - a.free_blocks;
    const bool retired = Impl::address_retired(*this, a);
    if (retired && used == 0) return;  // drained
    (retired ? u.addresses_draining : u.addresses) += 1;
    u.blocks_total += per;
    u.blocks_in_use += used;
  };
  for (const Pool& p : pools_)
    if (!p.retired)
      for (const std::uint32_t idx : p.addresses) count(addresses_[idx]);
  for (const Retired& x : retiring_) count(addresses_[x.index]);  // a removed pool's included
  // A retired pool that has drained completely is no longer reported.
  std::erase_if(out, [](const PoolUsage& u) { return u.retired && u.blocks_in_use == 0 && u.subscribers == 0; });
  return out;
}

bool Engine::is_public_address(be32 a) const { return Impl::is_public(*this, a); }

// Runs on the worker between bursts, so it must not walk the whole mapping
// table (16M entries would stall the packet loop): it looks up the ports of
// the subscriber's own blocks, its preserved ports and the static mappings.
std::vector<Session> Engine::subscriber_sessions(be32 subscriber, std::size_t limit) const {
  std::vector<Session> out;
  const auto take = [&](std::uint32_t m) {
    if (m == no_index || mappings_[m].in_addr != subscriber) return;
    for (std::uint32_t i = mappings_[m].first_session; i != no_index && out.size() < limit; i = sessions_[i].mapping_next)
      out.push_back(sessions_[i]);
  };
  const auto visit_port = [&](be32 pub, be16 port) {
    for (const Proto proto : {Proto::tcp, Proto::udp, Proto::icmp})
      take(Impl::find_mapping_out(*this, Impl::hash_mapping(*this, proto, pub, port), proto, pub, port));
  };
  if (const std::uint32_t si = Impl::find_subscriber(*this, subscriber); si != no_index) {
    const Subscriber& sub = subscribers_[si];
    const be32 pub = addresses_[sub.address].addr;
    const PoolConfig& pc = pools_[sub.pool].config;
    for (std::uint32_t k = 0; k < sub.blocks && out.size() < limit; ++k) {
      const std::uint32_t b = subscriber_blocks_[std::size_t{si} * max_blocks_ + k];
      for (std::uint32_t off = 0; off < pc.block_size && out.size() < limit; ++off)
        visit_port(pub, Impl::block_port(*this, b, off));
    }
    // Preserved IKE/L2TP ports outside the dynamic range (inside it they
    // are in one of the blocks just walked).
    if (sub.preserved)
      for (const std::uint16_t port : {500, 4500, 1701})
        if (port < pc.port_min || port > pc.port_max) visit_port(pub, be16::from_host(port));
  }
  for (const std::uint32_t m : static_mappings_)
    if (out.size() < limit) take(m);
  return out;
}

std::vector<Session> Engine::mapping_sessions(const Mapping& map, std::size_t limit) const {
  std::vector<Session> out;
  for (std::uint32_t i = map.first_session; i != no_index && out.size() < limit; i = sessions_[i].mapping_next)
    out.push_back(sessions_[i]);
  return out;
}

std::vector<std::uint16_t> Engine::subscriber_blocks(be32 subscriber, std::uint16_t* block_size) const {
  std::vector<std::uint16_t> out;
  const std::uint32_t i = Impl::find_subscriber(*this, subscriber);
  if (i == no_index) return out;
  const Subscriber& s = subscribers_[i];
  if (block_size) *block_size = pools_[s.pool].config.block_size;
  for (std::uint32_t k = 0; k < s.blocks; ++k)
    out.push_back(blocks_[subscriber_blocks_[std::size_t{i} * max_blocks_ + k]].first_port);
  return out;
}

const Mapping* Engine::find_mapping_public(Proto proto, be32 public_addr, be16 public_port) const {
  const std::uint32_t m = Impl::find_mapping_out(*this, Impl::hash_mapping(*this, proto, public_addr, public_port),
                                                 proto, public_addr, public_port);
  return m == no_index ? nullptr : &mappings_[m];
}

std::string Engine::check_invariants() const { return Impl::check_invariants(*this); }

MemoryUse Engine::memory_use() const {
  MemoryUse m{};
  m.sessions = sessions_.size() * sizeof(Session) + free_sessions_.size() * 4;
  m.mappings = mappings_.size() * sizeof(Mapping) + free_mappings_.size() * 4 + held_ring_.size() * sizeof(HeldMapping);
  m.session_tables = in2out_.memory_bytes() + out2in_.memory_bytes();
  m.mapping_tables = mapping_in_.memory_bytes() + mapping_out_.memory_bytes();
  m.timer_wheel = wheel_.memory_bytes();
  m.subscribers = subscribers_.size() * sizeof(Subscriber) + subscriber_blocks_.size() * 4 +
                  free_subscribers_.size() * 4 + subscriber_table_.memory_bytes();
  m.blocks = blocks_.size() * sizeof(Block) + addresses_.size() * sizeof(PublicAddress);
  m.fragments = fragment_flows_.size() * sizeof(FragmentFlow) + fragment_table_.memory_bytes() +
                held_buffer_.size() + held_fragments_.size() * sizeof(HeldFragment);
  m.total = m.sessions + m.mappings + m.session_tables + m.mapping_tables + m.timer_wheel + m.subscribers + m.blocks +
            m.fragments;
  return m;
}

}  // namespace passgate::nat
