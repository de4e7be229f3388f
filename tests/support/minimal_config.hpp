// The smallest valid gateway YAML, shared by the configuration unit tests:
// two ports on net_af_packet and one NAT pool. Tests add a head to it or
// replace one piece of it; the line and column of their expected errors
// count on its exact text.
#pragma once

#include <string>

namespace passgate::testing {

inline const std::string minimal_gateway_yaml = R"(ports:
  - name: inside
    device: "net_af_packet0,iface=pg-in"
    role: inside
    address: 100.64.0.1/24
  - name: outside
    device: "net_af_packet1,iface=pg-out"
    role: outside
    address: 198.51.100.1/24
    gateway: 198.51.100.254
nat:
  pools:
    - name: cgn
      subscribers: [100.64.0.0/10]
      public: [198.51.100.10-198.51.100.13]
)";

}  // namespace passgate::testing
