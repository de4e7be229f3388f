// VPN passthrough's own configuration: plain values the trackers of this
// folder read, filled from YAML by lib/config and checked here, so that
// passthrough needs nothing from lib/nat (the layer above it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace passgate::passthrough {

// VPN passthrough (lib/passthrough). ESP has no ports: an outbound SPI is
// known from the client's packets, the inbound SPI only from the server's
// first answer, so learning is serialised per (public address, server).
struct EspConfig {
  bool enabled = true;
  std::uint32_t idle_timeout = 300;      // seconds without packets before an SA is forgotten
  std::uint32_t learn_window_ms = 5000;  // how long one client may wait for the server's first answer
  std::uint32_t hold_window_ms = 2000;   // how long another client's new SPI is held meanwhile
  std::uint32_t hold_packets = 64;       // held packets at once, all servers together
  std::uint32_t max_sas = 65536;         // security associations tracked
  // One client's turn as learner for a (public address, server) while other
  // clients wait: at most this long from the turn's start, however many new
  // SPIs it sends (issue 11.9). At least learn_window_ms; 0: twice it.
  std::uint32_t learner_turn_ms = 0;
  [[nodiscard]] std::uint32_t learner_turn() const { return learner_turn_ms ? learner_turn_ms : 2 * learn_window_ms; }
};

// PPTP (RFC 2637): the TCP 1723 control connection is watched and the
// client's Call IDs are translated so that several clients behind one
// public address can each hold calls to one server; GRE v1 follows by key.
struct PptpConfig {
  bool enabled = true;
  std::uint32_t max_calls = 16384;          // calls tracked at once
  std::uint32_t call_idle_timeout = 7440;   // seconds without GRE or control traffic (as TCP established)
  std::uint32_t max_calls_per_subscriber = 16;  // calls (and control connections) of one inside address at once
};

// IKE (UDP 500) and NAT-T (UDP 4500, RFC 3947/3948), and L2TP (UDP 1701,
// RFC 2661): ordinary UDP with paired pooling, payloads never rewritten.
// A responder must accept any source port (RFC 7296 2.23), so keeping the
// client's port is only opportunistic: used when free on the subscriber's
// public address and not inside another subscriber's port block.
struct UdpServiceConfig {
  bool preserve_port = true;
  std::uint32_t timeout = 300;  // seconds, its own UDP timeout
};

// GRE version 0 (RFC 2784/2890) without PPTP: one tunnel per (inside
// address, server). Two subscribers behind one public address cannot both
// hold a tunnel to the same server (inbound GRE would be ambiguous): the
// second is refused and counted, never mixed up.
struct GreConfig {
  bool enabled = true;
  std::uint32_t timeout = 300;      // seconds
  std::uint32_t max_tunnels = 4096;
  // No monopoly (issue 11.9): a refused subscriber takes the tunnel over when
  // the holder has been silent this long (seconds), or when the holder has
  // kept it this long (seconds) since another subscriber was first refused.
  std::uint32_t conflict_idle = 15;
  std::uint32_t contended_hold = 300;
};

struct PassthroughConfig {
  EspConfig esp;
  PptpConfig pptp;
  GreConfig gre;
  UdpServiceConfig ike;   // UDP 500 and 4500
  UdpServiceConfig l2tp;  // UDP 1701
};

// Appends one line per problem to `problems` (the engine's validate() calls
// this for its passthrough section).
void validate(const PassthroughConfig& config, std::vector<std::string>& problems);

}  // namespace passgate::passthrough
