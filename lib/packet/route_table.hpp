// Where a port sends a packet next (RFC 1812 5.2.4): the destination itself
// when it is on the port's subnet, else the via of the longest configured
// route that holds it, else the port's gateway, else nowhere. Built once per
// port (routes change only with a restart); the lookup is a walk over the
// routes longest first, the first match the answer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "packet/byte_order.hpp"

namespace passgate::packet {

class RouteTable {
 public:
  RouteTable() = default;
  RouteTable(be32 address, std::uint8_t prefix_length, std::optional<be32> gateway)
      : subnet_{address.host() & mask(prefix_length), mask(prefix_length), address}, gateway_(gateway) {}

  // Routes of equal length keep the order they were added in (only one of
  // them can hold a given address unless two name the same prefix).
  void add_route(be32 prefix, std::uint8_t length, be32 via) {
    const Entry e{prefix.host() & mask(length), mask(length), via};
    const auto at = std::find_if(routes_.begin(), routes_.end(), [&](const Entry& r) { return r.mask < e.mask; });
    routes_.insert(at, e);
  }

  // The next hop toward `dst`, or nothing when there is no route.
  [[nodiscard]] std::optional<be32> next_hop(be32 dst) const {
    const std::uint32_t d = dst.host();
    if ((d & subnet_.mask) == subnet_.network) return dst;
    for (const Entry& r : routes_)
      if ((d & r.mask) == r.network) return r.via;
    return gateway_;
  }

 private:
  static constexpr std::uint32_t mask(std::uint8_t length) {
    return length == 0 ? 0 : ~std::uint32_t{0} << (32 - length);
  }
  struct Entry {
    std::uint32_t network, mask;  // host order
    be32 via;
  };
  Entry subnet_{0, ~std::uint32_t{0}, be32{}};
  std::vector<Entry> routes_;  // longest prefix first
  std::optional<be32> gateway_;
};

}  // namespace passgate::packet
