// ports (lib/config/read_ports.cpp): addresses and prefixes, devices, roles,
// next hops and neighbours on-link, the router knobs, and the kernel
// interface (exception).
#include <gtest/gtest.h>

#include <string>

#include "config/gateway_config.hpp"
#include "config_test_support.hpp"

namespace passgate::config::testing {
namespace {

TEST(GatewayConfig, AddressesAndPrefixes) {
  expect_rows({
      {with(minimal, "100.64.0.1/24", "100.64.0.1"), 5, 14, Code::bad_prefix, "address and prefix length"},
      {with(minimal, "100.64.0.1/24", "100.064.0.1/24"), 5, 14, Code::bad_prefix, "got '100.064.0.1/24'"},
      {with(minimal, "100.64.0.1/24", "100.64.0.1/32"), 5, 14, Code::bad_prefix, "expected /1 to /31"},
      {with(minimal, "100.64.0.1/24", "127.0.0.1/8"), 5, 14, Code::reserved_address, "loopback"},
      {with(minimal, "[100.64.0.0/10]", "[100.64.0.0/9]"), 14, 21, Code::host_bits, "has host bits set"},
      {with(minimal, "198.51.100.10-198.51.100.13", "198.51.100.13-198.51.100.10"), 15, 16, Code::bad_range,
       "ends before it starts"},
      {with(minimal, "198.51.100.10-198.51.100.13", "224.0.0.1"), 15, 16, Code::reserved_address, "multicast"},
      {with(minimal, "198.51.100.10-198.51.100.13", "198.51.100.10-198.51.100.13, 198.51.100.12"), 15, 45,
       Code::overlap, "overlap 198.51.100.10-198.51.100.13 (line 15) of the same pool"},
  });
  // A /31 has no network or broadcast address (RFC 3021).
  EXPECT_TRUE(
      parse(with(minimal, "198.51.100.1/24\n    gateway: 198.51.100.254", "198.51.100.0/31\n    gateway: 198.51.100.1"))
          .config.has_value());
}

TEST(GatewayConfig, PortRules) {
  expect_rows({
      {with(minimal, "net_af_packet1,iface=pg-out", "net_af_packet0,iface=other"), 7, 13, Code::repeated,
       "device net_af_packet0 is already used by port 'inside'"},
      {with(minimal, "198.51.100.1/24\n    gateway: 198.51.100.254", "100.64.0.129/25"), 9, 14, Code::overlap,
       "subnet 100.64.0.128/25 overlaps subnet 100.64.0.0/24 of port 'inside'"},
  });
  {
    const LoadResult r = parse(with(minimal, "    role: outside", "    role: inside"));
    ASSERT_EQ(r.errors.size(), 2u) << describe(r.errors);
    EXPECT_EQ(r.errors[0].line, 1);
    EXPECT_NE(r.errors[0].message.find("no outside port"), std::string::npos);
    EXPECT_EQ(r.errors[1].line, 8);
    EXPECT_NE(r.errors[1].message.find("a second inside port; passgate supports exactly one inside and one outside"),
              std::string::npos);
    EXPECT_EQ(r.errors[0].code, Code::port_roles);
    EXPECT_EQ(r.errors[1].code, Code::port_roles);
  }
  expect_one_error(with(minimal, "name: outside", "name: Outside"), 6, 11, Code::bad_name, "lowercase letters");
  {
    std::string two_outside = with(minimal, "    role: inside", "    role: outside");
    two_outside = with(two_outside, "    role: outside\n    address: 198", "    role: inside\n    address: 198");
    EXPECT_TRUE(parse(two_outside).config.has_value()) << "roles may come in any order";
  }
  {
    const LoadResult r = parse(with(minimal, "    role: inside\n", "    role: outside\n"));
    EXPECT_TRUE(mentions(r.errors, "a second outside port"));
  }
  // Only an inside port: the missing outside one is reported at `ports`.
  const std::string one_port =
      "ports:\n"
      "  - name: inside\n"
      "    device: \"net_af_packet0,iface=pg-in\"\n"
      "    role: inside\n"
      "    address: 100.64.0.1/24\n" +
      minimal.substr(minimal.find("nat:"));
  expect_rows({
      {one_port, 1, 1, Code::port_roles,
       "no outside port; expected exactly one port with role inside and one with role outside"},
      {with(minimal, "    role: inside\n",
            "    role: inside\n    routes:\n      - {prefix: 10.0.0.0/8, via: 100.64.0.2}\n"
            "      - {prefix: 10.0.0.0/8, via: 100.64.0.3}\n"),
       7, 18, Code::repeated, "a second route to 10.0.0.0/8"},
      {with(minimal, "    role: inside\n", "    role: inside\n    routes:\n      - {prefix: 10.0.0.0/8}\n"), 6, 9,
       Code::missing_key, "missing required key 'via' in ports[0].routes[0]"},
      {with(minimal, "gateway: 198.51.100.254", "gateway: 198.51.100.255"), 10, 14, Code::not_a_host,
       "is the broadcast address of 198.51.100.0/24"},
      {with(minimal, "    role: inside\n",
            "    role: inside\n    neighbours:\n"
            "      - {address: 100.64.0.9, mac: \"02:00:00:00:00:09\"}\n"
            "      - {address: 100.64.0.9, mac: \"02:00:00:00:00:0a\"}\n"),
       7, 19, Code::repeated, "neighbour 100.64.0.9 is given twice"},
      {with(minimal, "    role: inside\n",
            "    role: inside\n    neighbours:\n"
            "      - {address: 100.64.0.9, mac: \"00:00:00:00:00:00\"}\n"),
       6, 36, Code::bad_mac, "zero MAC address"},
  });
}

// Issue 12: the router knobs, with their defaults and their positions.
TEST(GatewayConfig, RouterDutiesKnobs) {
  {
    const LoadResult r = parse(minimal);
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    const GatewayConfig& g = *r.config;
    EXPECT_FALSE(g.ports[0].promiscuous) << "ports leave promiscuous mode unless asked";
    EXPECT_FALSE(g.ports[0].mac.has_value());
    EXPECT_EQ(g.dataplane.icmp_error_rate, 1000u);
    EXPECT_EQ(g.dataplane.icmp_error_burst, 50u);
    EXPECT_EQ(g.dataplane.neighbour.unsolicited_percent, 25u);
  }
  {
    const LoadResult r =
        parse("dataplane:\n  icmp_errors: {rate: 0, burst: 5}\n  neighbour: {unsolicited_percent: 10}\n" +
              with(minimal, "    role: inside\n",
                   "    role: inside\n    promiscuous: true\n    mac: \"02:00:00:00:00:01\"\n"));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    EXPECT_TRUE(r.config->ports[0].promiscuous);
    ASSERT_TRUE(r.config->ports[0].mac.has_value());
    EXPECT_EQ(config::to_string(*r.config->ports[0].mac), "02:00:00:00:00:01");
    EXPECT_EQ(r.config->dataplane.icmp_error_rate, 0u);
    EXPECT_EQ(r.config->dataplane.icmp_error_burst, 5u);
    EXPECT_EQ(r.config->dataplane.neighbour.unsolicited_percent, 10u);
  }
  expect_rows({
      {with(minimal, "    role: inside\n", "    role: inside\n    mac: \"01:00:5e:00:00:01\"\n"), 5, 10, Code::bad_mac,
       "multicast MAC address"},
      {with(minimal, "    role: inside\n", "    role: inside\n    promiscuous: maybe\n"), 5, 18, Code::not_a_boolean,
       ""},
      {"dataplane:\n  icmp_errors: {burst: 0}\n" + minimal, 2, 24, Code::out_of_range, "expected an integer from 1"},
      {"dataplane:\n  icmp_errors: {every: 1}\n" + minimal, 2, 17, Code::unknown_key, "every"},
      {"dataplane:\n  neighbour: {unsolicited_percent: 101}\n" + minimal, 2, 36, Code::out_of_range, "from 0 to 100"},
  });
}


// The outside port's `exception` written after its gateway (line 11 on).
std::string with_exception(const std::string& body) {
  return with(minimal, "    gateway: 198.51.100.254\n", "    gateway: 198.51.100.254\n    exception:" + body);
}

TEST(GatewayConfig, ExceptionDefaultsAndValues) {
  for (const char* empty : {" {}\n", "\n"}) {
    const LoadResult r = parse(with_exception(empty));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    ASSERT_FALSE(r.config->ports[0].exception.has_value()) << "only the port that asks has one";
    ASSERT_TRUE(r.config->ports[1].exception.has_value()) << "'exception:" << empty << "' asks for the defaults";
    const ExceptionConfig& e = *r.config->ports[1].exception;
    EXPECT_EQ(e.interface, "outside") << "the port's name by default";
    EXPECT_EQ(e.rate, 2000u);
    EXPECT_EQ(e.burst, 200u);
    EXPECT_TRUE(e.allow.empty());
    EXPECT_TRUE(e.device.empty());
  }
  const LoadResult r = parse(with_exception(
      "\n      interface: k-out.1\n      rate: 10\n      burst: 5\n"
      "      allow: [198.51.100.254/32, 192.0.2.0/24]\n      device: \"net_ring_kout\"\n"));
  ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
  const ExceptionConfig& e = *r.config->ports[1].exception;
  EXPECT_EQ(e.interface, "k-out.1");
  EXPECT_EQ(e.rate, 10u);
  EXPECT_EQ(e.burst, 5u);
  ASSERT_EQ(e.allow.size(), 2u);
  EXPECT_EQ(e.allow[0], (Ipv4Prefix{packet::ipv4(198, 51, 100, 254), 32}));
  EXPECT_EQ(e.device, "net_ring_kout");
  // Restart-only, as every port setting.
  GatewayConfig changed = *r.config;
  changed.ports[1].exception->rate = 11;
  EXPECT_EQ(restart_required_changes(*r.config, changed).size(), 1u);
}

TEST(GatewayConfig, DeviceInterface) {
  EXPECT_EQ(device_interface("net_af_packet0,iface=pg-out"), "pg-out");
  EXPECT_EQ(device_interface("net_pcap0,rx_pcap=a.pcap,iface=x,tx_pcap=b.pcap"), "x");
  EXPECT_EQ(device_interface("net_memif0,role=server"), "");
  EXPECT_EQ(device_interface("0000:03:00.0"), "");
}

TEST(GatewayConfig, ExceptionErrors) {
  expect_rows({
      {with_exception("\n      interface: this-is-too-long\n"), 12, 18, Code::bad_interface,
       "expected a Linux interface name of 1 to 15"},
      {with_exception("\n      interface: a/b\n"), 12, 18, Code::bad_interface, "got 'a/b'"},
      {with_exception(" {colour: blue}\n"), 11, 17, Code::unknown_key,
       "unknown key 'colour' in ports[1].exception; expected one of: interface, rate, burst, allow, device"},
      {with_exception(" [a]\n"), 11, 16, Code::wrong_type, "expected a mapping"},
      {with_exception("\n      rate: 0\n"), 12, 13, Code::out_of_range, "rate"},
      {with_exception("\n      burst: 100001\n"), 12, 14, Code::out_of_range, "burst"},
      {with_exception("\n      allow: [198.51.100.1/24]\n"), 12, 15, Code::host_bits, "host bits"},
      {with_exception("\n      allow: []\n"), 12, 14, Code::empty_list, "expected at least one of source prefixes"},
      {with_exception("\n      device: tap0\n"), 12, 15, Code::bad_device, "got 'tap0'"},
      // The kernel interface beside a data port's own af_packet interface.
      {with_exception("\n      interface: pg-in\n"), 12, 18, Code::repeated,
       "kernel interface 'pg-in' is the interface port 'inside' (line 2) opens as its device"},
      {with_exception("\n      device: \"net_af_packet0,iface=x\"\n"), 12, 15, Code::repeated,
       "exception device net_af_packet0 is port 'inside' (line 2) itself"},
  });
  // The default name, the port's, too long for the kernel: at `exception`.
  expect_one_error(with(with_exception(" {}\n"), "name: outside", "name: outside-interface"), 11, 5,
                   Code::bad_interface, "'outside-interface', 17 characters, and the kernel takes at most 15");
  // Two ports, one kernel interface name or one device.
  const std::string both = with(with_exception(" {interface: k0, device: net_ring_k}\n"), "    address: 100.64.0.1/24\n",
                                "    address: 100.64.0.1/24\n    exception: {interface: k0, device: net_ring_k}\n");
  const LoadResult r = parse(both);
  ASSERT_EQ(r.errors.size(), 2u) << describe(r.errors);
  EXPECT_EQ(r.errors[0].line, 12);
  EXPECT_EQ(r.errors[0].code, Code::repeated);
  EXPECT_TRUE(mentions(r.errors, "kernel interface 'k0' is already port 'inside''s (line 2)"));
  EXPECT_TRUE(mentions(r.errors, "exception device net_ring_k is already port 'inside''s (line 2)"));
}

}  // namespace
}  // namespace passgate::config::testing
