// The engine's side of VPN passthrough (lib/passthrough explains each
// protocol): which subscriber and public address a packet belongs to, and
// how the trackers' outcomes become verdicts and session counts.
#include "nat/engine_internal.hpp"

namespace passgate::nat {

// lib/passthrough/esp.hpp explains the learning. The engine's part: ESP
// leaves from the subscriber's paired public address (the same as its IKE
// on UDP 500/4500, RFC 6888 REQ-2), and every SA counts against the
// subscriber's session limit.
// The tracker reports which subscribers gained an SA or lost a held
// packet; their session counts and records follow here.
void Engine::Impl::reconcile_esp(Engine& e) {
  e.esp_.take_created([&](std::uint32_t sub) { ++e.subscribers_[sub].sessions; });
  e.esp_.take_unpinned([&](std::uint32_t sub) {
    --e.subscribers_[sub].esp_held;
    release_if_unused(e, sub);
  });
}

Result Engine::Impl::esp_result(Engine& e, passthrough::EspTracker::Outcome o, Verdict pass) {
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

Result Engine::Impl::esp_outbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
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
  const auto o = e.esp_.outbound(ip, p, e.blocks_.address(s.address).addr, sub, e.now_ms_, created, s.esp_held < share);
  if (created) ++e.subscribers_[sub].sessions;
  // The held packet keeps `sub` until the tracker unpins it (issue 11.2).
  if (o == passthrough::EspTracker::Outcome::held) ++e.subscribers_[sub].esp_held;
  const Result r = esp_result(e, o, Verdict::to_outside);
  if (r.verdict == Verdict::drop) release_if_unused(e, sub);
  return r;
}

Result Engine::Impl::esp_inbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
  if (!e.config_.passthrough.esp.enabled) return drop(DropReason::esp_disabled);
  if (p.fragmented) return drop(DropReason::unsupported_protocol);
  return esp_result(e, e.esp_.inbound(ip, p, e.now_ms_), Verdict::to_inside);
}

void Engine::Impl::expire_esp(Engine& e, std::uint64_t now_ms, unsigned budget) {
  e.esp_.expire(now_ms, budget, [&](std::uint32_t sub) {
    --e.subscribers_[sub].sessions;
    release_if_unused(e, sub);
  });
  reconcile_esp(e);
}

// lib/passthrough/pptp.hpp explains the Call ID translation. The control
// connection is an ordinary TCP session (so paired pooling and
// endpoint-independent mapping hold for it); its payload is handed over
// after the addresses and ports were rewritten. Each call counts as one of
// the subscriber's sessions (RFC 6888 REQ-5), as ESP SAs and GRE tunnels
// do; a control connection through a static mapping has no subscriber and
// its calls only meet the tracker's own limits.
template <Direction D>
Result Engine::Impl::pptp_control(Engine& e, std::uint8_t* ip, const ParsedIpv4& p, const Session& s,
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

Result Engine::Impl::pptp_result(passthrough::PptpTracker::Outcome o, Verdict pass) {
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

Result Engine::Impl::gre_outbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
  if (p.fragmented) return drop(DropReason::unsupported_protocol);
  // The client's control connection made it a subscriber with a paired
  // address; GRE leaves from that address.
  if (!e.config_.passthrough.pptp.enabled)
    return pptp_result(passthrough::PptpTracker::Outcome::drop_disabled, Verdict::to_outside);
  const std::uint32_t sub = find_subscriber(e, p.src);
  if (sub == no_index) return pptp_result(passthrough::PptpTracker::Outcome::drop_unknown_call, Verdict::to_outside);
  return pptp_result(e.pptp_.gre_outbound(ip, p, e.blocks_.address(e.subscribers_[sub].address).addr, e.now_ms_),
                     Verdict::to_outside);
}

Result Engine::Impl::gre_inbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
  if (p.fragmented) return drop(DropReason::unsupported_protocol);
  return pptp_result(e.pptp_.gre_inbound(ip, p, e.now_ms_), Verdict::to_inside);
}

Result Engine::Impl::gre0_result(passthrough::GreTracker::Outcome o, Verdict pass) {
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

Result Engine::Impl::gre0_outbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
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
  const auto o = e.gre_.outbound(ip, p, e.blocks_.address(s.address).addr, sub, e.now_ms_, created, displaced);
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

Result Engine::Impl::gre0_inbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
  if (p.fragmented) return drop(DropReason::unsupported_protocol);
  return gre0_result(e.gre_.inbound(ip, p, e.now_ms_), Verdict::to_inside);
}

// translate<D> (fast_path.cpp) calls it for sessions marked pptp_control.
template Result Engine::Impl::pptp_control<Direction::outbound>(Engine&, std::uint8_t*, const ParsedIpv4&,
                                                                const Session&, std::uint32_t, Verdict);
template Result Engine::Impl::pptp_control<Direction::inbound>(Engine&, std::uint8_t*, const ParsedIpv4&,
                                                               const Session&, std::uint32_t, Verdict);

}  // namespace passgate::nat
