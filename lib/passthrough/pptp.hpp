// PPTP passthrough (RFC 2637): Call ID translation on the TCP 1723 control
// connection, and GRE v1 (enhanced GRE) matched by its key.
//
// Theory of operation. A PPTP client (PNS) behind the NAT picks its own Call
// ID; the server (PAC) sends GRE to the client with that Call ID in the key.
// Two clients behind one public address may pick the same Call ID for the
// same server, so the NAT gives every client Call ID a translated value,
// unique per (public address, server), writes it where the client announces
// its own Call ID, and puts the original back where the server quotes it:
//   client -> server: Outgoing-Call-Request (7), Incoming-Call-Reply (10),
//     Call-Clear-Request (12), Call-Disconnect-Notify (13): Call ID at +12;
//   server -> client: Outgoing-Call-Reply (8): Peer's Call ID at +14;
//     WAN-Error-Notify (14), Set-Link-Info (15): Peer's Call ID at +12.
// (RFC 2637 sends Incoming-Call-Connected (11) from the client, quoting the
// server's Call ID, and Call-Disconnect-Notify (13) from the server with its
// own: neither carries a client Call ID in that direction, so neither is
// touched.) GRE v1 from the server carries the translated Call ID in its
// key: it is restored and the packet goes to the client; GRE from the client
// carries the server's Call ID and only its source address changes. Calls end
// with Call-Clear-Request or Call-Disconnect-Notify, with their control
// connection, or after call_idle_timeout without traffic.
//
// Bounds (issue 11.7). Each control connection has a record that lists its
// calls (so closing it walks only those) and knows where its client's next
// message starts. One inside address (a subscriber, or the host behind a
// static mapping) holds at most max_calls_per_subscriber calls and as many
// control connections; a subscriber's calls also count against its session
// limit: the engine says how many sessions it has left and takes back what
// calls opened and closed. Idle calls leave through a timer wheel, checked
// per call within the expiry budget, never by a scan of the table.
//
// The client's byte stream. A Call ID is only translated if the NAT sees the
// whole message, in the same framing as the server will: TCP may cut a
// message anywhere, and a segment that overlaps others (a resend with other
// contents, or one sent ahead of the stream) can make the server read a
// message where the NAT saw the middle of another. So a client segment is
// forwarded only when it starts on a message boundary of its connection's
// stream (the next one, or one of the last few for a resend), holds whole
// messages that meet every boundary already known on the way, and is
// otherwise dropped and counted (TCP resends it). A whole segment whose last
// message is cut short is trimmed back to its last whole message rather than
// dropped: the server acknowledges that much and the client's TCP resends
// the rest from the boundary (a coalescing sender would otherwise resend
// the same cut forever). Holding and reassembling bytes instead would need a
// buffer per connection and a retransmission scheme of the NAT's own; real
// clients write each message with one send() far below any MSS, so trimming
// or dropping costs them nothing. Messages from the server are inspected per
// segment: a split one is forwarded unrestored and counted (it can only
// break that server's own call). Nothing is allocated after construction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "table/flow_table.hpp"
#include "passthrough/config.hpp"
#include "table/timer_wheel.hpp"
#include "packet/checksum.hpp"
#include "packet/parse.hpp"
#include "stats/nat_counters.hpp"

namespace passgate::passthrough {

using packet::be16;
using packet::be32;

class PptpTracker {
 public:
  enum class Outcome : std::uint8_t {
    forward,
    drop_disabled,
    drop_unknown_call,
    drop_session_limit,  // a call beyond the subscriber's remaining sessions
    drop_call_limit,     // a call or control connection beyond max_calls_per_subscriber
    drop_table_full,     // no call or control record left (max_calls)
    drop_split_message,  // not whole messages at a message boundary of the client's stream
  };
  // What a client segment did. Calls opened and closed belong to the
  // subscriber the engine passed; the engine adds the difference to its
  // session count (calls opened before a later message was refused stay:
  // TCP resends the segment and finds them).
  struct ControlResult {
    Outcome outcome = Outcome::forward;
    std::uint32_t calls_opened = 0, calls_closed = 0;
  };

  PptpTracker(const PptpConfig& cfg, const table::FlowHasher& hasher, stats::NatCounters& counters);
  // A reload: new switches, timeouts and per-subscriber limit; the table
  // sizes stay those of the start. A shorter call_idle_timeout applies to a
  // call when its current deadline comes.
  void update_config(const PptpConfig& cfg) {
    PptpConfig next = cfg;
    next.max_calls = cfg_.max_calls;
    cfg_ = next;
  }

  // A segment of the control connection from the client, after the NAT
  // rewrote addresses and ports. `control` identifies the connection (the
  // engine's session index); `subscriber` is the engine's handle that its
  // calls count against (table::no_index for a static mapping: then only the
  // per-address and table limits apply), `session_room` how many more
  // sessions that subscriber may hold. Updates the TCP checksum for what it
  // changes. The segment must not be an IP fragment (the engine drops those).
  ControlResult control_outbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 in_addr, be32 out_addr,
                                 be32 server, std::uint32_t control, std::uint32_t subscriber,
                                 std::uint32_t session_room, std::uint64_t now_ms);
  // A segment from the server: Peer's Call IDs of this connection's calls restored.
  void control_inbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 out_addr, be32 server,
                       std::uint32_t control, std::uint64_t now_ms);
  // The engine freed the control connection's session: its calls end.
  // on_freed(subscriber) for each call that had one. O(its calls).
  template <typename OnFreed>
  void control_closed(std::uint32_t control, OnFreed&& on_freed);

  // GRE v1. Outbound: allowed when the client has a call to that server.
  Outcome gre_outbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 out_addr, std::uint64_t now_ms);
  Outcome gre_inbound(std::uint8_t* ip, const packet::ParsedIpv4& p, std::uint64_t now_ms);

  // Ends calls idle past call_idle_timeout, looking at most at `budget`
  // calls. on_freed(subscriber) for each that had one.
  template <typename OnFreed>
  void expire(std::uint64_t now_ms, unsigned budget, OnFreed&& on_freed);

  // fn(subscriber) for every live call with a subscriber: what the engine's
  // session counts must include (Engine::check_invariants).
  template <typename Fn>
  void for_each_subscriber(Fn&& fn) const {
    for (const Call& c : calls_)
      if (c.live && c.subscriber != table::no_index) fn(c.subscriber);
  }
  // fn(session) for every tracked control connection: each must be a live
  // PPTP control session of the engine.
  template <typename Fn>
  void for_each_control(Fn&& fn) const {
    for (const Control& c : controls_)
      if (c.live) fn(c.session);
  }
  // The tracker's own consistency (lists, counts, indexes, free lists), for
  // unit tests and fuzzers: O(table sizes). Empty when consistent.
  [[nodiscard]] std::string check_invariants() const;

  [[nodiscard]] std::uint32_t active_calls() const { return call_count_; }
  [[nodiscard]] std::uint32_t active_controls() const { return control_count_; }
  [[nodiscard]] bool enabled() const { return cfg_.enabled; }

 private:
  static constexpr unsigned max_boundaries = 8;  // message starts remembered per connection

  struct Call {
    be32 in_addr, out_addr, server;
    be16 client_id, public_id;
    std::uint32_t control;     // index into controls_
    std::uint32_t client;      // index into clients_
    std::uint32_t subscriber;  // the engine's handle, or no_index
    std::uint32_t next, prev;  // the calls of one control connection
    std::uint32_t last_seen_s;
    bool live;
  };
  struct Client {  // (inside address, server) -> how many calls, for outbound GRE
    be32 in_addr, server;
    std::uint32_t calls;
    std::uint32_t last_seen_s;  // outbound GRE keeps every call of the client alive
    bool live;
  };
  struct Host {  // one inside address: what max_calls_per_subscriber bounds
    be32 in_addr;
    std::uint32_t calls, controls;
    bool live;
  };
  struct Control {
    std::uint32_t session;  // the engine's session index: the key
    std::uint32_t host;     // index into hosts_
    std::uint32_t subscriber;
    std::uint32_t first_call;
    std::uint32_t calls;
    // Sequence numbers of the last message starts in the client's stream,
    // oldest first (a ring); the newest is where the next message begins.
    // Empty until the first segment (normally the SYN).
    std::uint32_t boundary[max_boundaries];
    std::uint8_t boundary_first, boundary_count;
    bool live;
  };

  std::uint64_t key_client_id(be32 in_addr, be32 server, be16 id) const;
  std::uint64_t key_public_id(be32 out_addr, be32 server, be16 id) const;
  std::uint64_t key_client(be32 in_addr, be32 server) const;
  std::uint64_t key_host(be32 in_addr) const;
  std::uint64_t key_control(std::uint32_t session) const;
  std::uint32_t find_call(be32 in_addr, be32 server, std::uint32_t control, be16 client_id) const;
  std::uint32_t find_by_public_id(be32 out_addr, be32 server, be16 id) const;
  std::uint32_t find_client(be32 in_addr, be32 server) const;
  std::uint32_t find_host(be32 in_addr) const;
  std::uint32_t find_control(std::uint32_t session) const;
  Outcome open_control(std::uint32_t session, be32 in_addr, std::uint32_t subscriber, std::uint32_t& out);
  void close_control(std::uint32_t control);
  Outcome create_call(std::uint32_t control, be32 in_addr, be32 out_addr, be32 server, be16 client_id,
                      std::uint32_t now_s, std::uint32_t& out);
  void free_call(std::uint32_t call);
  // Boundary ring of a control connection.
  std::uint32_t boundary_at(const Control& c, unsigned k) const {
    return c.boundary[(c.boundary_first + k) % max_boundaries];
  }
  void reset_boundaries(Control& c, std::uint32_t seq);
  void push_boundary(Control& c, std::uint32_t seq);
  // Rewrites the 16-bit field at `offset` of the TCP segment (from the
  // transport header) and folds the change into `delta`.
  static void set_field(std::uint8_t* l4, unsigned offset, be16 value, packet::ChecksumDelta& delta);
  // Cuts the TCP payload back to end at `l4_end` (from the transport
  // header): IPv4 total length, both checksums, and a FIN beyond it.
  static void trim(std::uint8_t* ip, const packet::ParsedIpv4& p, unsigned l4_end);

  PptpConfig cfg_;
  table::FlowHasher hasher_;
  stats::NatCounters& counters_;  // the engine's: counted where it happens
  std::vector<Call> calls_;
  std::vector<std::uint32_t> free_calls_;
  table::FlowTable by_client_id_, by_public_id_;
  table::TimerWheel wheel_;
  std::vector<Client> clients_;
  std::vector<std::uint32_t> free_clients_;
  table::FlowTable client_table_;
  std::vector<Host> hosts_;
  std::vector<std::uint32_t> free_hosts_;
  table::FlowTable host_table_;
  std::vector<Control> controls_;
  std::vector<std::uint32_t> free_controls_;
  table::FlowTable control_table_;
  std::uint32_t call_count_ = 0, control_count_ = 0;
  std::uint32_t now_s_ = 0;
  std::uint64_t rng_ = 0x9e3779b97f4a7c15ull;
};

template <typename OnFreed>
void PptpTracker::control_closed(std::uint32_t control, OnFreed&& on_freed) {
  const std::uint32_t c = find_control(control);
  if (c == table::no_index) return;
  while (controls_[c].first_call != table::no_index) {
    const std::uint32_t call = controls_[c].first_call;
    const std::uint32_t subscriber = calls_[call].subscriber;
    free_call(call);
    counters_.add(stats::NatCounter::pptp_calls_cleared);
    if (subscriber != table::no_index) on_freed(subscriber);
  }
  close_control(c);
}

template <typename OnFreed>
void PptpTracker::expire(std::uint64_t now_ms, unsigned budget, OnFreed&& on_freed) {
  now_s_ = static_cast<std::uint32_t>(now_ms / 1000);
  wheel_.advance(now_s_, budget, [&](std::uint32_t i) -> std::uint32_t {
    const Call& c = calls_[i];
    std::uint32_t seen = c.last_seen_s;
    if (clients_[c.client].last_seen_s > seen) seen = clients_[c.client].last_seen_s;
    const std::uint32_t due = seen + cfg_.call_idle_timeout;
    if (due > now_s_) return due;
    const std::uint32_t subscriber = c.subscriber;
    free_call(i);
    counters_.add(stats::NatCounter::pptp_calls_expired);
    if (subscriber != table::no_index) on_freed(subscriber);
    return 0;
  });
}

}  // namespace passgate::passthrough
