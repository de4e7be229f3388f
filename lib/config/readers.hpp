// Private to lib/config: one reader per section of the file, and what each
// section leaves behind for the rules that span sections. parse_gateway_config
// (gateway_config.cpp) calls them in the order the rules need: ports, then
// dataplane (the buffer budget needs the ports), then nat (pools may not take
// a port's address), the engine's own check, and control.
//
// A *Seen record keeps, besides the parsed value, whether each part parsed and
// where it stands, so a later rule can skip what was already reported and
// point at the right line.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "config/gateway_config.hpp"
#include "config/yaml_checker.hpp"

namespace passgate::config {

using nat::AddressRange;
using nat::PoolConfig;
using nat::StaticMapping;

inline std::uint32_t network_of(const Ipv4Prefix& p) { return p.network(); }
inline std::uint32_t broadcast_of(const Ipv4Prefix& p) { return p.broadcast(); }

inline bool overlap(std::uint32_t a_first, std::uint32_t a_last, std::uint32_t b_first, std::uint32_t b_last) {
  return a_first <= b_last && b_first <= a_last;
}
inline bool overlap(const AddressRange& a, const AddressRange& b) {
  return overlap(a.first.host(), a.last.host(), b.first.host(), b.last.host());
}
inline bool overlap(const Ipv4Prefix& a, const Ipv4Prefix& b) {
  return overlap(network_of(a), broadcast_of(a), network_of(b), broadcast_of(b));
}

// How an error names the reserved block [first, last] touches; nullptr: none.
inline const char* reserved_in(std::uint32_t first, std::uint32_t last) {
  const packet::ReservedBlock* r = packet::reserved_in(first, last);
  return r ? r->what : nullptr;
}

inline constexpr std::uint32_t max_timeout_s = 7 * 86400;  // NatConfig::validate's upper bound

// ------------------------------------------------------------ ports (read_ports.cpp)

struct PortSeen {
  PortConfig cfg;
  Field item;
  bool name_ok = false, device_ok = false, role_ok = false, address_ok = false;
  std::optional<Field> name_f, device_f, role_f, address_f;
  // ports[].exception: where its kernel interface name and device were
  // written (the `exception` key itself when the name is the port's), for the
  // rules between ports; set only when they read cleanly.
  std::optional<Field> interface_f, exception_device_f;
};

void read_ports(Checker& c, const Field& f, std::vector<PortSeen>& seen);

// ------------------------------------------------------------ dataplane (read_dataplane.cpp)

struct DataplaneSeen {
  std::optional<Field> section, mbufs;
  bool clean = true;
};

void read_dataplane(Checker& c, const Field& f, DataplaneConfig& d, DataplaneSeen& seen);
// The buffer pool against everything that can hold buffers at once; after
// the ports and the dataplane section both read cleanly.
void check_buffers(Checker& c, const GatewayConfig& g, const DataplaneSeen& seen, const YAML::Mark& root_mark);

// ------------------------------------------------------------ nat (read_nat, _pools, _static, _passthrough.cpp)

struct PoolSeen {
  PoolConfig cfg;
  Field item;
  bool name_ok = false, ports_ok = false, block_ok = false, publics_ok = false;
  bool clean = false;
  std::optional<Field> name_f;
  std::vector<std::pair<Ipv4Prefix, Field>> subscribers;
  std::vector<std::pair<AddressRange, Field>> publics;
};

struct StaticSeen {
  StaticMapping map{};
  Field item;
  bool proto_ok = false, inside_ok = false, public_ok = false;
  bool clean = false;
};

struct NatSeen {
  std::optional<Field> section;
  bool pools_reported = false;        // a problem with the pools list itself or any pool
  bool blocks_reported = false;       // the total block count was reported
  bool passthrough_reported = false;  // something under nat.passthrough was reported
};

void read_nat(Checker& c, const Field& f, GatewayConfig& g, const std::vector<PortSeen>& ports,
              std::vector<PoolSeen>& pools, std::vector<StaticSeen>& statics, NatSeen& seen);
// NatConfig's own check on what read cleanly; adds what the readers missed.
void cross_check_with_engine(Checker& c, const GatewayConfig& g, const std::vector<PoolSeen>& pools,
                             const std::vector<StaticSeen>& statics, const NatSeen& seen, const YAML::Mark& root_mark);

std::string pool_label(const PoolSeen& p);  // "pool 'cgn' (line 13)"
// `workers`: a deterministic range must give each worker's comb a port.
void read_pool(Checker& c, PoolSeen& p, const std::vector<PortSeen>& ports, unsigned workers);
void check_pool_against_earlier(Checker& c, const PoolSeen& p, std::span<const PoolSeen> earlier);

void read_static(Checker& c, StaticSeen& s, const std::vector<PoolSeen>& pools, std::span<const StaticSeen> earlier);

// True when nothing under nat.passthrough was reported.
bool read_passthrough(Checker& c, const Field& f, nat::PassthroughConfig& out);

// ------------------------------------------------------------ control (read_control.cpp)

void read_control(Checker& c, const Field& f, ControlConfig& out);

// ------------------------------------------------------------ health (read_health.cpp)

void read_health(Checker& c, const Field& f, std::optional<HealthConfig>& out);

}  // namespace passgate::config
