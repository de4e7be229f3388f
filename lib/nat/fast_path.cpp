// The packet path of a burst, the file to read first. Every packet goes
// through three stages over the whole burst (process_burst): prepare (parse
// result -> key hash, bucket prefetch), lookup (session found or a miss
// noted, with the slow path's tables prefetched) and translate (rewrite in
// place with the session's precomputed checksum deltas, RFC 1624). A miss
// leaves for slow_path.cpp; protocols without ports (fragments, ESP, GRE,
// ICMP errors) leave through translate_other to their own files.
#include "nat/engine_internal.hpp"

namespace passgate::nat {

template <Direction D>
Result Engine::Impl::translate(Engine& e, std::uint8_t* ip, const ParsedIpv4& p, Lookup& l) {
  if (!l.fast) [[unlikely]]
    return translate_other<D>(e, ip, p);
  if (p.fragmented) [[unlikely]]
    if (const DropReason r = e.fragments_.admit(D, p, e.now_ms_); r != DropReason::none) return drop(r);
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
    e.fragments_.remember(D, ip, p, r.verdict, e.now_ms_);
  return r;
}

// RFC 4787 REQ-9 / RFC 5382 REQ-8: the packet already carries the sender's
// public address and port as its source; now it enters again from the
// "outside" towards the target's public mapping, with the target's pool
// filtering applied as for any remote.
Result Engine::Impl::hairpin(Engine& e, std::uint8_t* ip, const ParsedIpv4& p, const Session& s) {
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

// A fragment without ports: translated like its first fragment, or held
// for it when the host is one this engine serves (a public address inbound,
// a known subscriber outbound), so nobody can fill the hold slots with
// fragments for addresses that will never be translated.
Result Engine::Impl::later_fragment(Engine& e, Direction d, std::uint8_t* ip, const ParsedIpv4& p) {
  return e.fragments_.later(d, ip, p, e.now_ms_, [&] {
    return d == Direction::inbound ? is_public(e, p.dst) : find_subscriber(e, p.src) != no_index;
  });
}

template <Direction D>
Result Engine::Impl::translate_other(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
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

void Engine::process_burst(Direction dir, std::span<PacketRef> packets, std::uint64_t now_ms) {
  now_ms_ = now_ms;
  now_s_ = static_cast<std::uint32_t>(now_ms / 1000);
  ParsedIpv4 parsed[max_burst];
  Impl::Lookup lookups[max_burst];
  packet::ParseError errors[max_burst];
  const std::size_t n = std::min<std::size_t>(packets.size(), max_burst);
  const NatCounter seen = dir == Direction::outbound ? NatCounter::packets_outbound : NatCounter::packets_inbound;
  counters_.add(seen, n);

  // Timed: a stage boundary (stats/runtime.hpp) after the lookup and at
  // each change of kind in the translate loop. The kinds are not separate
  // loops (translating in packet order keeps a first fragment before its
  // later ones, a PPTP control packet before its GRE), so a burst of one
  // kind costs one boundary and a burst alternating kinds one per change;
  // a burst whose every packet has a session (noted during the lookup)
  // skips the per-packet kind check.
  auto run = [&]<Direction D, bool Timed>() {
    for (std::size_t i = 0; i < n; ++i) {
      // Every checksum is verified here: the ports passgate runs on (af_packet,
      // pcap, memif, ring) verify none; a NIC's verified flag (RTE_MBUF_F_RX_
      // IP_CKSUM_GOOD) could skip the IPv4 one, measured first.
      errors[i] = packet::parse_ipv4(packets[i].bytes, parsed[i]);
      if (errors[i] == packet::ParseError::ok) Impl::prepare<D>(*this, parsed[i], lookups[i]);
    }
    for (std::size_t i = 0; i < n; ++i)
      if (errors[i] == packet::ParseError::ok) Impl::lookup<D>(*this, parsed[i], lookups[i]);
    // Timed: whether every packet has a session (the steady state); then the
    // translate loop tracks no kinds. A pass of its own: inside the lookup
    // loop it would wait on each lookup's memory and cost at 1M sessions.
    [[maybe_unused]] bool mixed = false;
    if constexpr (Timed)
      for (std::size_t i = 0; i < n; ++i)
        mixed |= errors[i] != packet::ParseError::ok || !lookups[i].fast || lookups[i].session == no_index;
    [[maybe_unused]] stats::Stage kind = stats::Stage::established;
    [[maybe_unused]] std::uint64_t run_length = 0;
    if constexpr (Timed) runtime_->lap(stats::Stage::lookup, n);
    for (std::size_t i = 0; i < n; ++i) {
      PacketRef& pkt = packets[i];
      if (Timed && mixed) {
        const stats::Stage k = errors[i] != packet::ParseError::ok || !lookups[i].fast ? stats::Stage::passthrough
                               : lookups[i].session == no_index                        ? stats::Stage::create
                                                                                       : stats::Stage::established;
        if (k != kind) {
          if (run_length) runtime_->lap(kind, run_length);
          kind = k;
          run_length = 0;
        }
        ++run_length;
      }
      if (errors[i] != packet::ParseError::ok) {
        counters_.add(errors[i]);
        ++counters_.of(stats::ProtoIndex::other).drop[static_cast<unsigned>(DropReason::malformed)];
        pkt.result = drop(DropReason::malformed);
        continue;
      }
      pkt.result = Impl::translate<D>(*this, pkt.bytes.data(), parsed[i], lookups[i]);
      if (pkt.result.verdict == Verdict::drop) counters_.add(pkt.result.reason, stats::proto_index_of(parsed[i].proto));
    }
    if constexpr (Timed) {
      if (!mixed) {
        if (n) runtime_->lap(stats::Stage::established, n);
      } else if (run_length) {
        runtime_->lap(kind, run_length);
      }
    }
  };
  if (runtime_) {
    if (dir == Direction::outbound) run.template operator()<Direction::outbound, true>();
    else run.template operator()<Direction::inbound, true>();
  } else {
    if (dir == Direction::outbound) run.template operator()<Direction::outbound, false>();
    else run.template operator()<Direction::inbound, false>();
  }
}

Result Engine::process(Direction dir, std::span<std::uint8_t> ip_packet, std::uint64_t now_ms) {
  PacketRef ref{ip_packet, {}};
  process_burst(dir, std::span<PacketRef>(&ref, 1), now_ms);
  return ref.result;
}

}  // namespace passgate::nat
