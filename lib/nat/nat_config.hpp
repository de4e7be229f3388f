// The NAT engine's configuration as plain values. lib/config fills it from
// YAML (with file:line:column errors); tests and benchmarks build it directly.
// validate() checks what the engine itself depends on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "packet/address.hpp"
#include "packet/address_text.hpp"
#include "packet/byte_order.hpp"

namespace passgate::nat {

using packet::AddressRange;
using packet::be16;
using packet::be32;
using packet::Ipv4Prefix;
using packet::to_string;

// RFC 4787 REQ-8 / RFC 5382 REQ-3 / RFC 6888 REQ-7.
enum class Filtering : std::uint8_t {
  endpoint_independent,      // any remote may use an existing mapping (default)
  address_dependent,         // only remotes the subscriber has sent to
  address_and_port_dependent // only the exact remote address and port
};

struct PoolConfig {
  std::string name;
  std::vector<Ipv4Prefix> subscribers;         // inside sources this pool serves
  std::vector<AddressRange> public_addresses;  // may be non-contiguous (RFC 6888 REQ-3)
  std::uint16_t port_min = 1024;
  std::uint16_t port_max = 65535;
  std::uint16_t block_size = 512;               // ports per block (RFC 6888 REQ-13/14)
  std::uint16_t max_blocks_per_subscriber = 4;  // port limit = blocks * block size (REQ-4)
  std::uint32_t max_sessions_per_subscriber = 4096;  // RFC 6888 REQ-5
  Filtering filtering = Filtering::endpoint_independent;
};

// Seconds. Defaults are the RFC minimums operators expect.
struct Timeouts {
  std::uint32_t udp = 300;               // RFC 4787 REQ-5
  std::uint32_t tcp_established = 7440;  // RFC 5382 REQ-5: 2 h 4 min
  std::uint32_t tcp_transitory = 240;    // RFC 5382 REQ-5 / RFC 7857: 4 min
  std::uint32_t icmp = 60;               // RFC 5508 REQ-1
  std::uint32_t port_reuse_hold = 120;   // RFC 6888 REQ-8
  std::uint32_t fragment_ms = 2000;      // how long an out-of-order fragment is held
};

struct StaticMapping {
  std::uint8_t protocol;  // packet::ip_proto::tcp or udp
  be32 inside_address;
  be16 inside_port;
  be32 public_address;
  be16 public_port;
};

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

// Bounds that keep one party (a spoofed internet host, a subscriber at its
// limits, a host cycling through its prefix) from exhausting what a worker
// shares among everyone. Per worker, like every table.
struct AbuseLimits {
  // New subscriber records a second (token bucket, burst of one second): a
  // host cycling through its whole prefix cannot take every port block at once.
  std::uint32_t new_subscribers_per_second = 2000;
  // Sessions of one static mapping whose inside host is in no subscriber
  // prefix (inside a prefix, the host's own max_sessions_per_subscriber applies).
  std::uint32_t static_mapping_sessions = 4096;
  // Limit and exhaustion events (session limit, ports, pool) per subscriber
  // and event type: at most one per interval, the next carries the count of
  // those suppressed meanwhile.
  std::uint32_t limit_event_interval_ms = 1000;
  // Fragment state per inside host (outbound) or public address (inbound).
  std::uint32_t fragment_flows_per_host = 64;
  std::uint32_t fragments_held_per_host = 8;
};

struct NatProblem {
  enum class Code : std::uint8_t {
    no_pool,          // the pool list is empty
    size,             // a table size or abuse limit out of range
    timeout,          // a timeout below its RFC minimum or out of range
    passthrough,      // a nat.passthrough value out of range
    pool,             // one pool's own values, or two pools that overlap
    too_many_blocks,  // more port blocks than the engine numbers (2^26)
    static_mapping,   // a static mapping's values, or two that collide
  };
  Code code;
  std::string text;
};

struct NatConfig {
  std::vector<PoolConfig> pools;
  std::vector<StaticMapping> static_mappings;
  Timeouts timeouts;
  std::uint32_t max_sessions = 1u << 20;
  std::uint32_t max_subscribers = 1u << 16;
  std::uint32_t fragment_flows = 4096;       // datagrams tracked at once
  std::uint32_t fragment_hold_slots = 64;    // out-of-order fragments held at once
  std::uint32_t fragment_hold_bytes = 2048;  // largest fragment held
  std::uint32_t event_ring_size = 65536;     // per worker; the control core drains every 10 ms
  std::uint64_t random_seed = 0;             // hash keys and port choice (RFC 6056)
  bool log_sessions = false;                 // session created/deleted events besides port blocks
  PassthroughConfig passthrough;
  AbuseLimits limits;

  // Every problem found, one line each; empty when the configuration is usable.
  [[nodiscard]] std::vector<std::string> validate() const;
  // The same, each with the group of rules it broke, so that a caller can
  // tell problems apart without matching their text (lib/config does).
  [[nodiscard]] std::vector<NatProblem> problems() const;
};

const char* to_string(Filtering f);

}  // namespace passgate::nat
