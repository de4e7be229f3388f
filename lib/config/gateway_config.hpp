// The whole gateway configuration as plain values: ports and their L2/L3
// settings, dataplane sizing, and the NAT policy. load_gateway_config() fills
// it from a YAML file (see conf/README.md for every field) and reports every
// problem with file, line and column; nothing here depends on DPDK.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.hpp"
#include "nat/nat_config.hpp"
#include "packet/address.hpp"
#include "packet/address_text.hpp"

namespace passgate::config {

using nat::be16;
using nat::be32;
using nat::Ipv4Prefix;

using packet::MacAddress;
using packet::to_string;

enum class PortRole : std::uint8_t { inside, outside };

struct StaticNeighbour {
  be32 address;
  MacAddress mac;
  friend bool operator==(const StaticNeighbour&, const StaticNeighbour&) = default;
};

struct Route {
  Ipv4Prefix prefix;
  be32 via;
  friend bool operator==(const Route&, const Route&) = default;
};

// A kernel interface beside a port (lib/dataplane/kernel_interface.hpp):
// what reaches the port's own address and the dataplane does not answer
// itself (BGP, BFD, SSH) goes to it, and what the kernel sends on it leaves
// through the port, so a routing daemon runs unchanged beside passgate.
struct ExceptionConfig {
  std::string interface;            // kernel netdev name: the port's name unless written; at most 15 characters
  std::uint32_t rate = 2000;        // packets per second per worker handed to the kernel (a token bucket)
  std::uint32_t burst = 200;        // packets the bucket holds
  std::vector<Ipv4Prefix> allow;    // sources that may reach the kernel; empty = any
  std::string device;               // an ethdev instead of net_tap (virtio_user, a ring port in tests); empty = net_tap
  friend bool operator==(const ExceptionConfig&, const ExceptionConfig&) = default;
};

struct PortConfig {
  std::string name;                 // operator's label, used in counters
  std::string device;               // PCI address (0000:03:00.0) or vdev devargs (net_af_packet0,iface=eth1)
  PortRole role = PortRole::inside;
  be32 address{};                   // the gateway's own address on this port
  std::uint8_t prefix_length = 24;  // on-link subnet
  std::optional<be32> gateway;      // next hop for destinations not on-link and not routed
  std::vector<Route> routes;        // more specific next hops
  std::uint16_t mtu = 1500;
  std::uint16_t vlan = 0;           // 802.1Q VLAN id, 0 = untagged
  std::vector<StaticNeighbour> neighbours;
  std::uint16_t rx_queues = 1;
  std::uint16_t tx_queues = 1;
  std::uint16_t rx_descriptors = 1024;
  std::uint16_t tx_descriptors = 1024;
  // Accept frames for any unicast MAC (and let the device deliver them).
  // Only for frames addressed to a MAC the port does not own: a first-hop
  // redundancy protocol's virtual MAC, a mirrored port in a lab.
  bool promiscuous = false;
  // The port's MAC address, set on the device at start; absent: the
  // device's own.
  std::optional<MacAddress> mac;
  // Present: the port has a kernel interface for its own address.
  std::optional<ExceptionConfig> exception;

  [[nodiscard]] Ipv4Prefix subnet() const { return Ipv4Prefix{address, prefix_length}; }
  friend bool operator==(const PortConfig&, const PortConfig&) = default;
};

struct NeighbourConfig {
  std::uint32_t reachable_seconds = 300;  // how long a learned entry is trusted
  std::uint32_t retry_ms = 1000;          // between ARP requests while unresolved
  std::uint32_t max_retries = 3;          // then the entry fails and its queue is dropped
  std::uint32_t queue_packets = 16;       // packets held per unresolved neighbour
  std::uint32_t table_size = 4096;        // neighbours per port
  // Packets waiting for ARP on one port of one worker, over all its
  // neighbours: what bounds the buffers ARP can hold (mbuf budget).
  std::uint32_t held_packets = 1024;
  // Entries created because a neighbour asked for us (RFC 826), not because
  // we needed it, may take at most this share of the table, in percent: a
  // host sending requests from many addresses cannot crowd out next hops.
  std::uint32_t unsolicited_percent = 25;
  friend bool operator==(const NeighbourConfig&, const NeighbourConfig&) = default;
};

struct DataplaneConfig {
  std::vector<std::string> eal_args;    // extra DPDK EAL arguments
  std::vector<unsigned> worker_lcores;  // empty = the first lcore after the main one
  // Packet buffers in the pool. 0 (`auto`, or not written): exactly what the
  // configuration can hold at once (config/mbuf_budget.hpp); a value below
  // that is refused, so no full ring or queue can empty the pool.
  std::uint32_t mbufs = 0;
  std::uint32_t mbuf_cache = 256;
  std::uint16_t burst = 32;
  // forward: route IPv4 between the ports without translating (no NAT state
  // at all). Only for measuring the I/O ceiling of a machine (bench/).
  bool forward_only = false;
  // With several workers: auto programs the ports' RSS so that every packet
  // reaches the worker that owns it (lib/steering) where the device can,
  // handoff never programs RSS and hands packets between workers instead.
  // Either way ownership is checked per packet, so both are correct.
  bool steering_handoff_only = false;
  NeighbourConfig neighbour;
  // ICMP errors the gateway itself sends (Time Exceeded, Fragmentation
  // Needed): a token bucket per worker (RFC 1812 4.3.2.8). rate 0 = none.
  std::uint32_t icmp_error_rate = 1000;   // per second
  std::uint32_t icmp_error_burst = 50;
  friend bool operator==(const DataplaneConfig&, const DataplaneConfig&) = default;
};

// NAT event export to collectors on the management network (the control
// core's kernel sockets, never a dataplane port).
struct IpfixExportConfig {
  std::string collector;                  // "ADDRESS:PORT", UDP (RFC 7011, RFC 8158 elements)
  std::uint32_t observation_domain = 1;
  std::uint32_t template_refresh_s = 600; // RFC 7011 8.4: templates resent over UDP
  friend bool operator==(const IpfixExportConfig&, const IpfixExportConfig&) = default;
};
struct SyslogExportConfig {
  std::string server;                     // "ADDRESS:PORT", UDP (RFC 5424 over RFC 5426)
  int facility = 16;                      // local0
  friend bool operator==(const SyslogExportConfig&, const SyslogExportConfig&) = default;
};
struct ControlConfig {
  std::string prometheus;                 // "ADDRESS:PORT" of /metrics; empty = off (a bare PORT means 127.0.0.1)
  // Group given access to the telemetry socket (passgatectl): its directory
  // 0750 and the socket 0660 with that group; empty = the owner only (0700/0600).
  std::string telemetry_group;
  std::uint32_t telemetry_gid = 0;        // telemetry_group resolved at load time
  std::string log_level = "info";         // error, warning, notice, info, debug
  bool log_to_syslog = false;             // the gateway's own messages also to syslog(3)
  bool log_sessions = false;              // session events besides port blocks (RFC 6888 REQ-12/13)
  bool log_destinations = false;          // remote address and port in session events
  std::optional<IpfixExportConfig> ipfix;
  std::optional<SyslogExportConfig> syslog;
};

// health: what decides the box's routing announcements (issue 15, README
// "Deploying a fleet"). passgate enables the routing daemon's `protocols`
// while it can serve and disables them when it cannot; hot-reloadable.
struct HealthConfig {
  std::string socket = "/run/bird/bird.ctl";  // BIRD's control socket (bird -s)
  std::vector<std::string> protocols;         // BIRD protocols enabled only while healthy
  // Withdrawn when a pool is exhausted; empty = all of `protocols`. Naming
  // only the aggregation side keeps the pools announced upstream, so return
  // traffic of the box's sessions still arrives while new subscribers are
  // sent elsewhere.
  std::vector<std::string> pool_exhausted_protocols;
  std::uint32_t check_ms = 100;         // how often links and workers are checked
  std::uint32_t hold_down_s = 10;       // healthy this long before announcing again
  std::uint32_t worker_stall_ms = 500;  // a worker whose clock has not moved this long is stalled
  std::uint32_t pool_check_ms = 1000;   // pools are read this often (a round trip to every worker)
  std::uint32_t pool_withdraw_percent = 95;  // a pool's port blocks in use at which the box withdraws
  std::uint32_t pool_restore_percent = 85;   // ... and at or below which that reason clears
  std::uint32_t stop_withdraw_ms = 1000;     // on a clean stop: withdrawn, then forwarding this long
  std::uint32_t reconcile_ms = 1000;         // the daemon is told the state again this often
  std::uint32_t daemon_timeout_ms = 1000;    // one command to the daemon, reply included
  bool operator==(const HealthConfig&) const = default;
};

struct GatewayConfig {
  std::string source;  // file it came from
  DataplaneConfig dataplane;
  std::vector<PortConfig> ports;
  nat::NatConfig nat;
  ControlConfig control;
  std::optional<HealthConfig> health;
  // nat.random_seed was written in the file. When false, nat.random_seed is 0
  // and the application seeds it from getrandom() (RFC 6056: unpredictable ports).
  bool random_seed_given = false;
};

// One problem in a configuration file: where, and what was expected.
struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem has no single place
  int column = 0;  // 1-based
  std::string message;
  ConfigErrorCode code = ConfigErrorCode::internal;  // what kind, for programs and tests
};
std::string to_string(const ConfigError& e);  // "file:line:column: error: message"

struct LoadResult {
  std::optional<GatewayConfig> config;  // set only when errors is empty
  std::vector<ConfigError> errors;
};

LoadResult load_gateway_config(const std::string& path);
// The `iface=` argument of a port's device ("net_af_packet0,iface=pg-out" ->
// "pg-out"), or empty: the kernel netdev a virtual device reads from.
std::string_view device_interface(std::string_view device);
// A listen address for the Prometheus endpoint, the one reader of both
// control.prometheus and --prometheus: "IPv4:PORT", or a bare "PORT" (or
// ":PORT") for 127.0.0.1:PORT, so nothing binds beyond loopback unless an
// address is written. Returns "IPv4:PORT", or nullopt and *problem.
std::optional<std::string> parse_listen_address(std::string_view text, std::string* problem);
// Parts of `next` a running gateway cannot take without a restart (ports,
// dataplane, the Prometheus address), one line each; empty when a reload may
// go on to the NAT checks (nat::Engine::reconfigure_problems).
std::vector<std::string> restart_required_changes(const GatewayConfig& running, const GatewayConfig& next);
LoadResult parse_gateway_config(const std::string& yaml_text, const std::string& source_name);

}  // namespace passgate::config
