// Misses of the fast path: creating the state a new flow needs. Outbound,
// the subscriber (subscribers.cpp), its mapping (mappings.cpp) and the
// session (sessions.cpp); inbound, only through an existing mapping and the
// pool's filtering (RFC 4787 REQ-8, RFC 5382 REQ-3) or a static mapping.
#include "nat/engine_internal.hpp"

namespace passgate::nat {

DropReason Engine::Impl::create_outbound(Engine& e, const ParsedIpv4& p, Lookup& l) {
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
DropReason Engine::Impl::admit_static(Engine& e, std::uint32_t m) {
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
void Engine::Impl::unadmit_static(Engine& e, std::uint32_t m) {
  Mapping& map = e.mappings_[m];
  if (map.sessions != 0 || map.subscriber == no_index) return;
  const std::uint32_t sub = map.subscriber;
  map.subscriber = no_index;
  release_if_unused(e, sub);
}

DropReason Engine::Impl::create_inbound(Engine& e, const ParsedIpv4& p, Lookup& l) {
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

}  // namespace passgate::nat
