// packet::RouteTable: on-link first, then the longest route, then the gateway.
#include <gtest/gtest.h>

#include "packet/route_table.hpp"

namespace passgate::packet {
namespace {

TEST(RouteTable, OnLinkThenLongestRouteThenGateway) {
  RouteTable t(ipv4(100, 64, 0, 1), 24, ipv4(100, 64, 0, 254));
  t.add_route(ipv4(100, 65, 0, 0), 16, ipv4(100, 64, 0, 2));
  t.add_route(ipv4(100, 65, 1, 0), 24, ipv4(100, 64, 0, 3));
  t.add_route(ipv4(100, 65, 1, 128), 25, ipv4(100, 64, 0, 4));
  EXPECT_EQ(t.next_hop(ipv4(100, 64, 0, 77)), ipv4(100, 64, 0, 77)) << "on-link: the destination itself";
  EXPECT_EQ(t.next_hop(ipv4(100, 65, 1, 200)), ipv4(100, 64, 0, 4));
  EXPECT_EQ(t.next_hop(ipv4(100, 65, 1, 5)), ipv4(100, 64, 0, 3));
  EXPECT_EQ(t.next_hop(ipv4(100, 65, 9, 5)), ipv4(100, 64, 0, 2));
  EXPECT_EQ(t.next_hop(ipv4(8, 8, 8, 8)), ipv4(100, 64, 0, 254));
}

TEST(RouteTable, LongestWinsWhateverTheOrderAdded) {
  RouteTable t(ipv4(198, 51, 100, 1), 24, std::nullopt);
  t.add_route(ipv4(10, 1, 2, 0), 24, ipv4(198, 51, 100, 3));
  t.add_route(ipv4(10, 0, 0, 0), 8, ipv4(198, 51, 100, 2));
  t.add_route(ipv4(10, 1, 0, 0), 16, ipv4(198, 51, 100, 4));
  EXPECT_EQ(t.next_hop(ipv4(10, 1, 2, 9)), ipv4(198, 51, 100, 3));
  EXPECT_EQ(t.next_hop(ipv4(10, 1, 3, 9)), ipv4(198, 51, 100, 4));
  EXPECT_EQ(t.next_hop(ipv4(10, 2, 3, 9)), ipv4(198, 51, 100, 2));
}

TEST(RouteTable, NoGatewayNoRoute) {
  RouteTable t(ipv4(100, 64, 0, 1), 24, std::nullopt);
  t.add_route(ipv4(100, 65, 0, 0), 16, ipv4(100, 64, 0, 2));
  EXPECT_FALSE(t.next_hop(ipv4(100, 66, 0, 1)).has_value());
  EXPECT_EQ(t.next_hop(ipv4(100, 64, 0, 255)), ipv4(100, 64, 0, 255)) << "the subnet's broadcast is on-link";
}

TEST(RouteTable, DefaultRouteAndPointToPointSubnets) {
  RouteTable t(ipv4(192, 0, 2, 1), 31, ipv4(192, 0, 2, 0));
  t.add_route(ipv4(0, 0, 0, 0), 0, ipv4(192, 0, 2, 0));
  t.add_route(ipv4(203, 0, 113, 0), 24, ipv4(192, 0, 2, 0));
  EXPECT_EQ(t.next_hop(ipv4(192, 0, 2, 0)), ipv4(192, 0, 2, 0));
  EXPECT_EQ(t.next_hop(ipv4(192, 0, 2, 2)), ipv4(192, 0, 2, 0)) << "outside the /31: by the default route";
  RouteTable host(ipv4(192, 0, 2, 9), 32, std::nullopt);
  EXPECT_EQ(host.next_hop(ipv4(192, 0, 2, 9)), ipv4(192, 0, 2, 9));
  EXPECT_FALSE(host.next_hop(ipv4(192, 0, 2, 8)).has_value());
}

}  // namespace
}  // namespace passgate::packet
