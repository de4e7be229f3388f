// The whole gateway configuration as plain values: ports and their L2/L3
// settings, dataplane sizing, and the NAT policy. load_gateway_config() fills
// it from a YAML file (see conf/README.md for every field) and reports every
// problem with file, line and column; nothing here depends on DPDK.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nat/nat_config.hpp"

namespace passgate::config {

using nat::be16;
using nat::be32;
using nat::Ipv4Prefix;

struct MacAddress {
  std::array<std::uint8_t, 6> bytes{};
  friend bool operator==(const MacAddress&, const MacAddress&) = default;
};
std::string to_string(const MacAddress& mac);

enum class PortRole : std::uint8_t { inside, outside };

struct StaticNeighbour {
  be32 address;
  MacAddress mac;
};

struct Route {
  Ipv4Prefix prefix;
  be32 via;
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

  [[nodiscard]] Ipv4Prefix subnet() const { return Ipv4Prefix{address, prefix_length}; }
};

struct NeighbourConfig {
  std::uint32_t reachable_seconds = 300;  // how long a learned entry is trusted
  std::uint32_t retry_ms = 1000;          // between ARP requests while unresolved
  std::uint32_t max_retries = 3;          // then the entry fails and its queue is dropped
  std::uint32_t queue_packets = 16;       // packets held per unresolved neighbour
  std::uint32_t table_size = 4096;        // neighbours per port
};

struct DataplaneConfig {
  std::vector<std::string> eal_args;    // extra DPDK EAL arguments
  std::vector<unsigned> worker_lcores;  // empty = the first lcore after the main one
  std::uint32_t mbufs = 16383;          // per socket; a power of two minus one is best
  std::uint32_t mbuf_cache = 256;
  std::uint16_t burst = 32;
  // forward: route IPv4 between the ports without translating (no NAT state
  // at all). Only for measuring the I/O ceiling of a machine (bench/).
  bool forward_only = false;
  NeighbourConfig neighbour;
};

struct GatewayConfig {
  std::string source;  // file it came from
  DataplaneConfig dataplane;
  std::vector<PortConfig> ports;
  nat::NatConfig nat;
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
};
std::string to_string(const ConfigError& e);  // "file:line:column: error: message"

struct LoadResult {
  std::optional<GatewayConfig> config;  // set only when errors is empty
  std::vector<ConfigError> errors;
};

LoadResult load_gateway_config(const std::string& path);
LoadResult parse_gateway_config(const std::string& yaml_text, const std::string& source_name);

}  // namespace passgate::config
