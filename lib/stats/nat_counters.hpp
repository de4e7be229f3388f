// Counter ids of one NAT engine (one worker core). Each engine owns a plain
// block of them, written without atomics on the packet path; the control core
// reads and sums the blocks of all workers. Names come from the same X-macro
// lists as the enums, so a counter can never lose its name.
#pragma once

#include <array>
#include <cstdint>

#include "packet/parse.hpp"
#include "stats/load_relaxed.hpp"

namespace passgate::stats {

#define PASSGATE_NAT_COUNTERS(X)                                                       \
  X(packets_outbound, "packets received on the inside, to be translated outwards")    \
  X(packets_inbound, "packets received on the outside, to be translated inwards")     \
  X(translated_outbound, "packets translated inside to outside")                       \
  X(translated_inbound, "packets translated outside to inside")                        \
  X(hairpinned, "packets from one subscriber to another's public mapping (RFC 4787 REQ-9)") \
  X(icmp_errors_translated, "ICMP errors translated with their embedded packet (RFC 5508)") \
  X(fragments_translated, "non-first fragments translated by their first fragment's session") \
  X(fragments_held, "out-of-order fragments held until their first fragment arrives") \
  X(fragments_released, "held fragments translated and released")                     \
  X(sessions_created, "sessions created")                                              \
  X(sessions_expired, "sessions removed after their idle timeout")                     \
  X(sessions_created_inbound, "sessions opened from outside through a mapping (filtering allowed)") \
  X(mappings_created, "endpoint-independent mappings created")                         \
  X(ports_preserved, "IKE/NAT-T/L2TP mappings that kept the client's own source port")  \
  X(mappings_freed, "mappings freed after the port reuse hold (RFC 6888 REQ-8)")      \
  X(subscribers_created, "subscribers seen for the first time")                        \
  X(subscribers_freed, "subscribers with no ports left")                               \
  X(blocks_allocated, "port blocks given to subscribers")                              \
  X(blocks_released, "port blocks returned to the pool")                               \
  X(tcp_resets, "TCP sessions moved to the transitory timeout by RST (RFC 7857)")      \
  X(events_lost, "port block and preserved-port records dropped because the event ring was full") \
  X(low_priority_events_lost, "limit and session events dropped to keep a quarter of the event ring for block records") \
  X(limit_events_suppressed, "limit events (session limit, ports, pool exhausted) rate-limited per subscriber and type") \
  X(reloads_applied, "policy reloads this engine switched to")                           \
  X(static_mapping_conflicts, "static mappings added by a reload whose address and port a live mapping still held (not applied)") \
  X(esp_sas_created, "ESP security associations created (new outbound SPI)")            \
  X(esp_sas_expired, "ESP security associations idle past passthrough.esp.idle_timeout") \
  X(esp_spis_learned, "inbound ESP SPIs bound to the one client waiting for that server") \
  X(esp_translated_outbound, "ESP packets translated inside to outside")               \
  X(esp_translated_inbound, "ESP packets translated outside to inside")                \
  X(esp_held, "new outbound SPIs held while another client learned from the same server") \
  X(esp_released, "held ESP packets sent once their turn to learn came")               \
  X(esp_learn_timeouts, "clients whose server never answered within learn_window_ms") \
  X(esp_learn_queue_full, "a client's 5th SA waiting on one server at once: its inbound SPI cannot be learned") \
  X(esp_learner_turns_ended, "ESP learners cut off at passthrough.esp.learner_turn_ms while another client waited: the role passed on, their SAs still unanswered are not learned") \
  X(pptp_calls_created, "PPTP calls whose client Call ID got a translated value")        \
  X(pptp_calls_cleared, "PPTP calls ended by Call-Clear-Request, Call-Disconnect-Notify or the control connection") \
  X(pptp_calls_expired, "PPTP calls idle past passthrough.pptp.call_idle_timeout")       \
  X(pptp_calls_refused, "PPTP calls refused (subscriber's session or call limit, or the call table full): the control segment is dropped") \
  X(pptp_call_ids_translated, "client Call IDs rewritten in control messages to the server") \
  X(pptp_call_ids_restored, "Peer's Call IDs restored in control messages from the server") \
  X(pptp_messages_split, "PPTP control messages split across TCP segments: from a client cut off or dropped (TCP resends them), from a server forwarded without restoring") \
  X(pptp_segments_trimmed, "client PPTP control segments cut back to their last whole message (TCP resends the rest)") \
  X(pptp_gre_translated_outbound, "GRE v1 packets translated inside to outside")         \
  X(pptp_gre_translated_inbound, "GRE v1 packets translated outside to inside, key restored") \
  X(gre_tunnels_created, "GRE v0 tunnels opened (inside address, server)")               \
  X(gre_tunnels_expired, "GRE v0 tunnels idle past passthrough.gre.timeout")             \
  X(gre_tunnels_taken_over, "GRE v0 tunnels handed to another subscriber of the same public address: idle past passthrough.gre.conflict_idle, or refused others for passthrough.gre.contended_hold") \
  X(gre_translated_outbound, "GRE v0 packets translated inside to outside")              \
  X(gre_translated_inbound, "GRE v0 packets translated outside to inside")

#define PASSGATE_NAT_DROPS(X)                                                          \
  X(malformed, "malformed packet (see the parse error counters)")                     \
  X(no_pool, "source address is in no subscriber prefix")                              \
  X(unsupported_protocol, "IP protocol not translated")                                \
  X(icmp_not_translatable, "ICMP type that is neither a query nor an error")          \
  X(icmp_query_inbound_no_session, "inbound ICMP query or reply with no session")     \
  X(icmp_error_no_session, "ICMP error whose embedded packet matches no session (RFC 5508)") \
  X(tcp_not_syn, "TCP packet with no session that is not a SYN")                      \
  X(no_mapping, "inbound packet to a public address and port with no mapping")       \
  X(filtered, "inbound packet refused by the pool's filtering behaviour")             \
  X(ports_exhausted, "subscriber has no free port and no block left to take (RFC 6888 REQ-11)") \
  X(pool_exhausted, "subscriber's public address has no free port block")             \
  X(subscriber_draining, "subscriber's public address or pool was removed by a reload: no new block until its old ones drain") \
  X(subscriber_session_limit, "subscriber reached its session limit (RFC 6888 REQ-5)") \
  X(static_mapping_session_limit, "static mapping to a host in no subscriber prefix reached limits.static_mapping_sessions") \
  X(static_mapping_draining, "new session through a static mapping a reload removed (it only drains)") \
  X(subscriber_rate_limited, "new subscriber refused: limits.new_subscribers_per_second reached on this worker") \
  X(icmp_error_not_sender, "outbound ICMP error quoting a session that is not its sender's") \
  X(session_table_full, "session table full")                                          \
  X(subscriber_table_full, "subscriber table full")                                    \
  X(fragment_table_full, "fragment tracking table full")                               \
  X(fragment_hold_full, "no room to hold an out-of-order fragment")                   \
  X(fragment_too_large, "out-of-order fragment larger than a hold slot")              \
  X(fragment_timeout, "held fragment whose first fragment never came")                 \
  X(fragment_host_limit, "fragment state of one host (inside source or public destination) at limits.fragment_*_per_host") \
  X(fragment_unknown_host, "out-of-order fragment for no public address (inbound) or no known subscriber (outbound): not held") \
  X(esp_disabled, "ESP while passthrough.esp.enabled is false")                        \
  X(esp_unknown_spi, "inbound ESP with an SPI no client is known for or waiting on")   \
  X(esp_hold_full, "no room to hold another client's new SPI while one learns")       \
  X(esp_hold_timeout, "held ESP packet whose turn to learn did not come in hold_window_ms") \
  X(esp_table_full, "ESP security association table full")                            \
  X(pptp_disabled, "GRE v1 while passthrough.pptp.enabled is false")                   \
  X(pptp_unknown_call, "GRE v1 whose Call ID (inbound) or client (outbound) has no call") \
  X(pptp_call_limit, "PPTP control segment opening a call or control connection beyond passthrough.pptp.max_calls_per_subscriber") \
  X(pptp_table_full, "PPTP control segment opening a call or control connection while passthrough.pptp.max_calls are tracked") \
  X(pptp_split_message, "PPTP control segment from a client that is not whole control messages at the connection's next message boundary (split, out of order, overlapping, fragmented or malformed)") \
  X(gre_disabled, "GRE v0 while passthrough.gre.enabled is false")                     \
  X(gre_conflict, "GRE v0 to a server another subscriber on the same public address already tunnels to") \
  X(gre_no_tunnel, "inbound GRE v0 with no tunnel from that server")                   \
  X(gre_table_full, "GRE v0 tunnel table full")

#define PASSGATE_ENUM_ENTRY(name, text) name,
enum class NatCounter : std::uint16_t { PASSGATE_NAT_COUNTERS(PASSGATE_ENUM_ENTRY) count_ };
enum class DropReason : std::uint8_t { none = 0, PASSGATE_NAT_DROPS(PASSGATE_ENUM_ENTRY) count_ };
#undef PASSGATE_ENUM_ENTRY

inline constexpr unsigned nat_counter_count = static_cast<unsigned>(NatCounter::count_);
inline constexpr unsigned drop_reason_count = static_cast<unsigned>(DropReason::count_);

const char* nat_counter_name(NatCounter c);
const char* nat_counter_help(NatCounter c);
const char* drop_reason_name(DropReason r);
const char* drop_reason_help(DropReason r);

// Per IP protocol of the packet: TCP, UDP and ICMP have sessions; "other"
// is everything else (ESP, GRE, unsupported, unparsable).
enum class ProtoIndex : std::uint8_t { tcp = 0, udp = 1, icmp = 2, other = 3 };
inline constexpr unsigned proto_index_count = 4;
inline constexpr const char* proto_index_name(unsigned i) {
  constexpr const char* names[] = {"tcp", "udp", "icmp", "other"};
  return i < proto_index_count ? names[i] : "?";
}
inline constexpr ProtoIndex proto_index_of(std::uint8_t ip_protocol) {
  return ip_protocol == 6 ? ProtoIndex::tcp : ip_protocol == 17 ? ProtoIndex::udp
         : ip_protocol == 1 ? ProtoIndex::icmp : ProtoIndex::other;
}

struct ProtoCounters {
  std::uint64_t sessions_created = 0, sessions_expired = 0;
  std::uint64_t translated_outbound = 0, translated_inbound = 0;
  std::array<std::uint64_t, drop_reason_count> drop{};
};

struct alignas(64) NatCounters {
  std::array<std::uint64_t, nat_counter_count> counter{};
  std::array<std::uint64_t, drop_reason_count> drop{};
  std::array<std::uint64_t, packet::parse_error_count> parse_error{};
  std::array<ProtoCounters, proto_index_count> proto{};

  [[nodiscard]] ProtoCounters& of(ProtoIndex p) { return proto[static_cast<unsigned>(p)]; }
  void add(DropReason r, ProtoIndex p) {
    ++drop[static_cast<unsigned>(r)];
    ++of(p).drop[static_cast<unsigned>(r)];
  }

  void add(NatCounter c, std::uint64_t n = 1) { counter[static_cast<unsigned>(c)] += n; }
  void add(DropReason r) { ++drop[static_cast<unsigned>(r)]; }
  void add(packet::ParseError e) {
    ++parse_error[static_cast<unsigned>(e)];
    ++drop[static_cast<unsigned>(DropReason::malformed)];
  }
  [[nodiscard]] std::uint64_t get(NatCounter c) const { return counter[static_cast<unsigned>(c)]; }
  [[nodiscard]] std::uint64_t get(DropReason r) const { return drop[static_cast<unsigned>(r)]; }
  [[nodiscard]] std::uint64_t get(packet::ParseError e) const { return parse_error[static_cast<unsigned>(e)]; }
  [[nodiscard]] std::uint64_t total_drops() const {
    std::uint64_t sum = 0;
    for (auto v : drop) sum += v;
    return sum;
  }
  NatCounters& operator+=(const NatCounters& o) {
    return accumulate(o, [](const std::uint64_t& v) { return v; });
  }
  // The same, from the counters of a running worker's engine.
  NatCounters& add_live(const NatCounters& o) { return accumulate(o, load_relaxed); }

 private:
  template <class Load>
  NatCounters& accumulate(const NatCounters& o, Load load) {
    for (unsigned i = 0; i < counter.size(); ++i) counter[i] += load(o.counter[i]);
    for (unsigned i = 0; i < drop.size(); ++i) drop[i] += load(o.drop[i]);
    for (unsigned i = 0; i < parse_error.size(); ++i) parse_error[i] += load(o.parse_error[i]);
    for (unsigned p = 0; p < proto_index_count; ++p) {
      proto[p].sessions_created += load(o.proto[p].sessions_created);
      proto[p].sessions_expired += load(o.proto[p].sessions_expired);
      proto[p].translated_outbound += load(o.proto[p].translated_outbound);
      proto[p].translated_inbound += load(o.proto[p].translated_inbound);
      for (unsigned k = 0; k < drop_reason_count; ++k) proto[p].drop[k] += load(o.proto[p].drop[k]);
    }
    return *this;
  }
};

}  // namespace passgate::stats
