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
// with Call-Clear-Request or Call-Disconnect-Notify, or with the control
// connection. Nothing is allocated after construction.
#pragma once

#include <cstdint>
#include <vector>

#include "nat/flow_table.hpp"
#include "nat/nat_config.hpp"
#include "packet/checksum.hpp"
#include "packet/parse.hpp"

namespace passgate::passthrough {

using nat::be16;
using nat::be32;

struct PptpCounters {
  std::uint64_t calls_refused = 0, calls_created = 0, calls_cleared = 0, calls_expired = 0, call_ids_translated = 0,
                call_ids_restored = 0, gre_out = 0, gre_in = 0, messages_partial = 0;
  std::uint64_t drop_disabled = 0, drop_unknown_call = 0;
};

class PptpTracker {
 public:
  enum class Outcome : std::uint8_t { forward, drop_disabled, drop_unknown_call };

  PptpTracker(const nat::PptpConfig& cfg, const nat::FlowHasher& hasher);
  // A reload: new switches and timeouts; the table sizes stay those of the start.
  void update_config(const nat::PptpConfig& cfg) {
    nat::PptpConfig next = cfg;
    next.max_calls = cfg_.max_calls;
    cfg_ = next;
  }


  // The control connection's TCP payload, after the NAT rewrote the
  // addresses and ports. `control` identifies the connection (the engine's
  // session index). Updates the TCP checksum for every Call ID it changes.
  void control_outbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 in_addr, be32 out_addr, be32 server,
                        std::uint32_t control, std::uint64_t now_ms);
  void control_inbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 out_addr, be32 server,
                       std::uint64_t now_ms);
  void control_closed(std::uint32_t control);

  // GRE v1. Outbound: allowed when the client has a call to that server.
  Outcome gre_outbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 out_addr, std::uint64_t now_ms);
  Outcome gre_inbound(std::uint8_t* ip, const packet::ParsedIpv4& p, std::uint64_t now_ms);

  void expire(std::uint64_t now_ms);

  [[nodiscard]] const PptpCounters& counters() const { return counters_; }
  [[nodiscard]] std::uint32_t active_calls() const { return call_count_; }
  [[nodiscard]] bool enabled() const { return cfg_.enabled; }

 private:
  struct Call {
    be32 in_addr, out_addr, server;
    be16 client_id, public_id;
    std::uint32_t control;
    std::uint32_t last_seen_s;
    bool live;
  };
  struct Client {  // (inside address, server) -> how many calls, for outbound GRE
    be32 in_addr, server;
    std::uint32_t calls;
    std::uint32_t last_seen_s;  // outbound GRE keeps every call of the client alive
    bool live;
  };

  std::uint64_t key_client_id(be32 in_addr, be32 server, be16 id) const;
  std::uint64_t key_public_id(be32 out_addr, be32 server, be16 id) const;
  std::uint64_t key_client(be32 in_addr, be32 server) const;
  std::uint32_t find_by_client_id(be32 in_addr, be32 server, be16 id) const;
  std::uint32_t find_by_public_id(be32 out_addr, be32 server, be16 id) const;
  std::uint32_t find_client(be32 in_addr, be32 server) const;
  std::uint32_t create_call(be32 in_addr, be32 out_addr, be32 server, be16 client_id, std::uint32_t control,
                            std::uint32_t now_s);
  void free_call(std::uint32_t call);
  // Rewrites the 16-bit field at `offset` of the TCP segment (from the
  // transport header) and folds the change into `delta`.
  static void set_field(std::uint8_t* l4, unsigned offset, be16 value, packet::ChecksumDelta& delta);

  nat::PptpConfig cfg_;
  nat::FlowHasher hasher_;
  std::vector<Call> calls_;
  std::vector<std::uint32_t> free_calls_;
  nat::FlowTable by_client_id_, by_public_id_;
  std::vector<Client> clients_;
  std::vector<std::uint32_t> free_clients_;
  nat::FlowTable client_table_;
  std::uint32_t call_count_ = 0;
  std::uint32_t last_scan_s_ = 0;
  std::uint64_t rng_ = 0x9e3779b97f4a7c15ull;
  PptpCounters counters_;
};

}  // namespace passgate::passthrough
