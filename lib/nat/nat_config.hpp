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
#include "passthrough/config.hpp"

namespace passgate::nat {

using packet::AddressRange;
using packet::be16;
using packet::be32;
using packet::Ipv4Prefix;
using packet::to_string;
using passthrough::EspConfig;
using passthrough::GreConfig;
using passthrough::PassthroughConfig;
using passthrough::PptpConfig;
using passthrough::UdpServiceConfig;

// RFC 4787 REQ-8 / RFC 5382 REQ-3 / RFC 6888 REQ-7.
enum class Filtering : std::uint8_t {
  endpoint_independent,      // any remote may use an existing mapping (default)
  address_dependent,         // only remotes the subscriber has sent to
  address_and_port_dependent // only the exact remote address and port
};

// How a pool gives subscribers their ports.
enum class PoolMode : std::uint8_t {
  dynamic,       // port blocks on demand, each logged (RFC 6888 REQ-13/14)
  deterministic  // a fixed address and port range per subscriber address (RFC 7422, deterministic.hpp)
};

struct PoolConfig {
  std::string name;
  PoolMode mode = PoolMode::dynamic;
  std::vector<Ipv4Prefix> subscribers;         // inside sources this pool serves
  std::vector<AddressRange> public_addresses;  // may be non-contiguous (RFC 6888 REQ-3)
  std::uint16_t port_min = 1024;
  std::uint16_t port_max = 65535;
  std::uint16_t block_size = 512;               // ports per block (RFC 6888 REQ-13/14)
  std::uint16_t max_blocks_per_subscriber = 4;  // port limit = blocks * block size (REQ-4)
  std::uint32_t max_sessions_per_subscriber = 4096;  // RFC 6888 REQ-5
  Filtering filtering = Filtering::endpoint_independent;
  // Deterministic pools: subscribers per public address (RFC 7422's
  // compression ratio); 0 takes ceil(subscriber addresses / public
  // addresses). block_size and max_blocks_per_subscriber do not apply: the
  // subscriber's one block is its range.
  std::uint32_t sharing_ratio = 0;
  // Block allocated/released events. The configuration reader turns them
  // off by default for deterministic pools, whose mapping event says it all.
  bool log_blocks = true;

  friend bool operator==(const PoolConfig&, const PoolConfig&) = default;
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
const char* to_string(PoolMode m);

}  // namespace passgate::nat
