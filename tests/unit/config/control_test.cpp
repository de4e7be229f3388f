// control (lib/config/read_control.cpp): defaults, the Prometheus listen
// address (one reader for the file and --prometheus), collectors, the
// telemetry group, and what a reload cannot change.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "config/gateway_config.hpp"
#include "config_test_support.hpp"

namespace passgate::config::testing {
namespace {

TEST(GatewayConfig, ControlSectionIsParsedWithDefaults) {
  const LoadResult plain = parse(minimal);
  ASSERT_TRUE(plain.config.has_value()) << describe(plain.errors);
  EXPECT_TRUE(plain.config->control.prometheus.empty());
  EXPECT_EQ(plain.config->control.log_level, "info");
  EXPECT_FALSE(plain.config->control.ipfix.has_value());
  EXPECT_FALSE(plain.config->nat.log_sessions);

  const LoadResult r = parse(minimal +
                             "control:\n  prometheus: 127.0.0.1:9469\n  log_level: debug\n"
                             "  nat_events:\n    sessions: true\n    destinations: true\n"
                             "    ipfix: {collector: 192.0.2.10:4739, observation_domain: 9}\n"
                             "    syslog: {server: 192.0.2.11:514, facility: daemon}\n");
  ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
  const ControlConfig& c = r.config->control;
  EXPECT_EQ(c.prometheus, "127.0.0.1:9469");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_TRUE(c.log_sessions);
  EXPECT_TRUE(r.config->nat.log_sessions) << "the engine is told to emit session events";
  EXPECT_TRUE(c.log_destinations);
  ASSERT_TRUE(c.ipfix.has_value());
  EXPECT_EQ(c.ipfix->collector, "192.0.2.10:4739");
  EXPECT_EQ(c.ipfix->observation_domain, 9u);
  EXPECT_EQ(c.ipfix->template_refresh_s, 600u);
  ASSERT_TRUE(c.syslog.has_value());
  EXPECT_EQ(c.syslog->facility, 3);
}

TEST(GatewayConfig, RestartRequiredChangesAreNamed) {
  const GatewayConfig a = *parse(minimal).config;
  EXPECT_TRUE(restart_required_changes(a, a).empty());
  const GatewayConfig nat_only = *parse(with(minimal, "198.51.100.13]", "198.51.100.14]")).config;
  EXPECT_TRUE(restart_required_changes(a, nat_only).empty()) << "NAT policy changes are reloadable";
  const GatewayConfig mtu =
      *parse(with(minimal, "gateway: 198.51.100.254", "gateway: 198.51.100.254\n    mtu: 1400")).config;
  const auto changes = restart_required_changes(a, mtu);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_NE(changes[0].find("'outside'"), std::string::npos);
  const GatewayConfig prom = *parse(minimal + "control: {prometheus: 127.0.0.1:9469}\n").config;
  EXPECT_EQ(restart_required_changes(a, prom).size(), 1u);
}

// One reader for control.prometheus and --prometheus: a bare port binds
// loopback, an address must be written to bind anything else.
TEST(ControlDefaults, ListenAddressBarePortIsLoopback) {
  std::string why;
  EXPECT_EQ(parse_listen_address("9469", &why), std::optional<std::string>("127.0.0.1:9469")) << why;
  EXPECT_EQ(parse_listen_address(":9469", &why), std::optional<std::string>("127.0.0.1:9469")) << why;
  EXPECT_EQ(parse_listen_address("127.0.0.1:9469", &why), std::optional<std::string>("127.0.0.1:9469")) << why;
  EXPECT_EQ(parse_listen_address("192.0.2.7:80", &why), std::optional<std::string>("192.0.2.7:80")) << why;
  EXPECT_EQ(parse_listen_address("0.0.0.0:9469", &why), std::optional<std::string>("0.0.0.0:9469"))
      << "every interface, but only when written out";
}

TEST(ControlDefaults, ListenAddressRefusesWhatCivetwebWouldReadOtherwise) {
  // civetweb takes "9469r" (redirect), "9469s" (TLS), "+9469" (IPv4 and IPv6 on
  // every interface), lists with ',' and octal-looking octets: none of it here.
  for (const char* bad : {"",
                          ":",
                          "0",
                          "65536",
                          "9469r",
                          "9469s",
                          "+9469",
                          "-1",
                          "9469,9470",
                          "127.0.0.1:",
                          "127.0.0.1:0",
                          "127.0.0.1:65536",
                          "127.0.0.01:9469",
                          "127.0.0.1:09469x",
                          " 127.0.0.1:9469",
                          "127.0.0.1:9469 ",
                          "localhost:9469",
                          "[::1]:9469",
                          "1.2.3:9469",
                          "256.0.0.1:9469",
                          "224.0.0.1:9469",
                          "255.255.255.255:9469"}) {
    std::string why;
    EXPECT_FALSE(parse_listen_address(bad, &why).has_value()) << "'" << bad << "'";
    EXPECT_NE(why.find("PORT"), std::string::npos) << "'" << bad << "': " << why;
  }
}

TEST(ControlDefaults, PrometheusInTheFileGoesThroughTheSameReader) {
  {
    const LoadResult r = parse(minimal + "control:\n  prometheus: 9469\n");
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    EXPECT_EQ(r.config->control.prometheus, "127.0.0.1:9469");
  }
  expect_rows({
      {minimal + "control:\n  prometheus: 127.0.0.01:9469\n", 17, 15, Code::bad_endpoint, "control.prometheus"},
      {minimal + "control:\n  prometheus: 9469r\n", 17, 15, Code::bad_endpoint, "PORT"},
      {minimal + "control:\n  prometheus: 224.0.0.1:9469\n", 17, 15, Code::bad_endpoint, "multicast"},
      // The collectors are read as strictly (no port-only form: they are not listeners).
      {minimal + "control:\n  nat_events:\n    syslog: {server: 192.0.2.011:514}\n", 18, 22, Code::bad_endpoint,
       "syslog server"},
  });
}

TEST(ControlDefaults, TelemetryGroupIsResolvedWithItsPosition) {
  {
    const LoadResult r = parse(minimal);
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    EXPECT_TRUE(r.config->control.telemetry_group.empty()) << "owner only (0700/0600) unless a group is named";
  }
  {
    const LoadResult r = parse(minimal + "control:\n  telemetry_group: root\n");
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    EXPECT_EQ(r.config->control.telemetry_group, "root");
    EXPECT_EQ(r.config->control.telemetry_gid, 0u);
  }
  expect_rows({
      {minimal + "control:\n  telemetry_group: no-such-group-pg12\n", 17, 20, Code::unknown_group,
       "no group 'no-such-group-pg12'"},
      {minimal + "control:\n  telemetry_group: [a]\n", 17, 20, Code::wrong_type, "a group name"},
  });
  // The socket's group is set at start: a reload that changes it is refused.
  const GatewayConfig a = *parse(minimal).config;
  const GatewayConfig b = *parse(minimal + "control:\n  telemetry_group: root\n").config;
  const auto changes = restart_required_changes(a, b);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_NE(changes[0].find("control.telemetry_group"), std::string::npos);
}

}  // namespace
}  // namespace passgate::config::testing
