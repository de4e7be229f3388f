// Sessions: one mapping plus one remote endpoint. Creation with both hash
// entries and a timer, the index of remote addresses behind
// address-dependent filtering (RFC 4787 REQ-8), session events, expiry by
// the timer wheel (RFC 4787 REQ-5, RFC 5382 REQ-5), and freeing.
#include "nat/engine_internal.hpp"

namespace passgate::nat {

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

std::uint64_t Engine::Impl::hash_remote(const Engine& e, Proto p, be32 out_addr, be16 out_port, be32 rem_addr) {
  return e.hasher_((std::uint64_t{out_addr.raw} << 32) | rem_addr.raw,
                   (std::uint64_t{out_port.raw} << 8) | static_cast<std::uint8_t>(p) | (5ull << 40));
}

std::uint32_t Engine::Impl::find_remote(const Engine& e, Proto p, be32 out_addr, be16 out_port, be32 rem_addr) {
  return e.remote_table_.find(hash_remote(e, p, out_addr, out_port, rem_addr), [&](std::uint32_t i) {
    const RemoteEntry& r = e.remotes_[i];
    return r.out_addr == out_addr && r.rem_addr == rem_addr && r.out_port == out_port && r.proto == p;
  });
}

// Sessions of mappings in address-dependent pools are counted per (mapping,
// remote address). A pool switched to this filtering by a reload admits the
// remotes of sessions created from then on (stricter, never looser).
void Engine::Impl::count_remote(Engine& e, Session& s) {
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

void Engine::Impl::uncount_remote(Engine& e, const Session& s) {
  const std::uint32_t i = find_remote(e, s.proto, s.out_addr, s.out_port, s.rem_addr);
  if (i == no_index || --e.remotes_[i].sessions != 0) return;
  e.remote_table_.erase(hash_remote(e, s.proto, s.out_addr, s.out_port, s.rem_addr), i);
  e.free_remotes_.push_back(i);
}

// `known_hash` is the table hash the caller already has: in2out's for a
// session opened outbound, out2in's for one opened inbound.
std::uint32_t Engine::Impl::new_session(Engine& e, std::uint32_t m, be32 rem_addr, be16 rem_port, TcpState state,
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

// Session logging (off by default: RFC 6888 REQ-12/13 prefer blocks). The
// remote endpoint travels with the event; the exporters drop it unless the
// operator asked for destinations.
void Engine::Impl::log_session(Engine& e, NatEvent::Type type, const Session& s, const Mapping& map) {
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

void Engine::Impl::free_session(Engine& e, std::uint32_t i) {
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

void Engine::Impl::expire(Engine& e, std::uint64_t now_ms, unsigned budget) {
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
  e.fragments_.expire(now_ms);
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

void Engine::expire(std::uint64_t now_ms, unsigned budget) { Impl::expire(*this, now_ms, budget); }

}  // namespace passgate::nat
