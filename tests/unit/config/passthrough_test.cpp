// nat.passthrough (lib/config/read_passthrough.cpp): each protocol's values
// with their ranges and positions, real booleans, unknown keys, and every
// problem reported once (NatConfig::validate adds nothing).
#include <gtest/gtest.h>

#include <string>

#include "config/gateway_config.hpp"
#include "config_test_support.hpp"
#include "nat/nat_config.hpp"

namespace passgate::config::testing {
namespace {

// nat.passthrough.esp appended to `minimal`: `passthrough:` is line 16,
// `esp:` line 17, its fields from line 18 in this order, values at column
// 6 + key length + 3.
std::string esp_block(const std::string& fields) { return minimal + "  passthrough:\n    esp:\n" + fields; }

const std::string esp_fields =
    "      enabled: true\n"
    "      idle_timeout: 300\n"
    "      learn_window_ms: 5000\n"
    "      hold_window_ms: 2000\n"
    "      hold_packets: 64\n"
    "      max_sas: 65536\n";
TEST(GatewayConfig, PassthroughEspGoodValuesAreParsed) {
  {
    const LoadResult r =
        parse(esp_block("      enabled: false\n      idle_timeout: 86400\n      learn_window_ms: 60000\n"
                        "      hold_window_ms: 60000\n      hold_packets: 1\n      max_sas: 16777216\n"));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    const nat::EspConfig& e = r.config->nat.passthrough.esp;
    EXPECT_FALSE(e.enabled);
    EXPECT_EQ(e.idle_timeout, 86400u);
    EXPECT_EQ(e.learn_window_ms, 60000u);
    EXPECT_EQ(e.hold_window_ms, 60000u);  // equal to learn_window_ms is fine
    EXPECT_EQ(e.hold_packets, 1u);
    EXPECT_EQ(e.max_sas, 16777216u);
    EXPECT_TRUE(r.config->nat.validate().empty());
  }
  {
    const LoadResult r = parse(
        esp_block("      enabled: TRUE\n      idle_timeout: 30\n      learn_window_ms: 100\n      hold_window_ms: 100\n"
                  "      hold_packets: 65536\n      max_sas: 1\n"));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    const nat::EspConfig& e = r.config->nat.passthrough.esp;
    EXPECT_TRUE(e.enabled);
    EXPECT_EQ(e.idle_timeout, 30u);
    EXPECT_EQ(e.learn_window_ms, 100u);
    EXPECT_EQ(e.hold_window_ms, 100u);
    EXPECT_EQ(e.hold_packets, 65536u);
    EXPECT_EQ(e.max_sas, 1u);
  }
  {
    // Flow style, a subset: the rest keep their defaults. An explicit !!bool tag is a boolean too.
    const LoadResult r = parse(minimal + "  passthrough: {esp: {enabled: !!bool false, learn_window_ms: 2500}}\n");
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    const nat::EspConfig& e = r.config->nat.passthrough.esp;
    EXPECT_FALSE(e.enabled);
    EXPECT_EQ(e.learn_window_ms, 2500u);
    EXPECT_EQ(e.hold_window_ms, nat::EspConfig{}.hold_window_ms);
    EXPECT_EQ(e.max_sas, nat::EspConfig{}.max_sas);
  }
  for (const char* empty : {"  passthrough: {}\n", "  passthrough: {esp: {}}\n"}) {
    const LoadResult r = parse(minimal + empty);
    ASSERT_TRUE(r.config.has_value()) << empty << describe(r.errors);
    EXPECT_TRUE(r.config->nat.passthrough.esp.enabled);
    EXPECT_EQ(r.config->nat.passthrough.esp.idle_timeout, nat::EspConfig{}.idle_timeout);
  }
  EXPECT_TRUE(parse(esp_block(esp_fields)).config.has_value());
}

TEST(GatewayConfig, PassthroughEspRangesHaveTheirPositions) {
  const auto bad = [](const std::string& from, const std::string& to) { return esp_block(with(esp_fields, from, to)); };
  expect_rows({
      {bad("idle_timeout: 300", "idle_timeout: 29"), 19, 21, Code::out_of_range,
       "nat.passthrough.esp.idle_timeout: expected an integer from 30 to 86400 (seconds), got 29"},
      {bad("idle_timeout: 300", "idle_timeout: 86401"), 19, 21, Code::out_of_range,
       "expected an integer from 30 to 86400 (seconds), got 86401"},
      {bad("learn_window_ms: 5000", "learn_window_ms: 99"), 20, 24, Code::out_of_range,
       "nat.passthrough.esp.learn_window_ms: expected an integer from 100 to 60000 (milliseconds), got 99"},
      {bad("learn_window_ms: 5000", "learn_window_ms: 60001"), 20, 24, Code::out_of_range,
       "expected an integer from 100 to 60000 (milliseconds), got 60001"},
      {bad("hold_window_ms: 2000", "hold_window_ms: 99"), 21, 23, Code::out_of_range,
       "nat.passthrough.esp.hold_window_ms: expected an integer from 100 to 60000 (milliseconds), got 99"},
      {bad("hold_window_ms: 2000", "hold_window_ms: 60001"), 21, 23, Code::out_of_range,
       "expected an integer from 100 to 60000 (milliseconds), got 60001"},
      {bad("hold_packets: 64", "hold_packets: 0"), 22, 21, Code::out_of_range,
       "nat.passthrough.esp.hold_packets: expected an integer from 1 to 65536"},
      {bad("hold_packets: 64", "hold_packets: 65537"), 22, 21, Code::out_of_range, "got 65537"},
      {bad("max_sas: 65536", "max_sas: 0"), 23, 16, Code::out_of_range,
       "nat.passthrough.esp.max_sas: expected an integer from 1 to 16777216"},
      {bad("max_sas: 65536", "max_sas: 16777217"), 23, 16, Code::out_of_range, "got 16777217"},
      {bad("max_sas: 65536", "max_sas: -1"), 23, 16, Code::not_a_number, "got '-1'"},
      {bad("idle_timeout: 300", "idle_timeout: 5m"), 19, 21, Code::not_a_number, "got '5m'"},
      // Out-of-range learn_window_ms is not compared with hold_window_ms as well.
      {bad("learn_window_ms: 5000", "learn_window_ms: 50"), 20, 24, Code::out_of_range, "got 50"},
  });
}

TEST(GatewayConfig, PassthroughEspEnabledIsARealBoolean) {
  const auto bad = [](const std::string& value) {
    return esp_block(with(esp_fields, "enabled: true", "enabled: " + value));
  };
  expect_rows({
      {bad("yes"), 18, 16, Code::not_a_boolean, "nat.passthrough.esp.enabled: expected true or false, got 'yes'"},
      {bad("off"), 18, 16, Code::not_a_boolean, "expected true or false, got 'off'"},
      {bad("1"), 18, 16, Code::not_a_boolean, "expected true or false, got '1'"},
      {bad("\"true\""), 18, 16, Code::not_a_boolean, "expected true or false, got the quoted string 'true'"},
      {bad("'false'"), 18, 16, Code::not_a_boolean, "expected true or false, got the quoted string 'false'"},
      {bad("!!str true"), 18, 16, Code::not_a_boolean, "expected true or false"},
      {bad("[true]"), 18, 16, Code::wrong_type, "expected true or false, got a list"},
      // An empty value is reported at its key.
      {esp_block(with(esp_fields, "enabled: true", "enabled:")), 18, 7, Code::wrong_type,
       "expected true or false, got nothing"},
  });
}

TEST(GatewayConfig, PassthroughHoldWindowMayNotExceedLearnWindow) {
  expect_rows({
      {esp_block(with(esp_fields, "learn_window_ms: 5000", "learn_window_ms: 1000")), 21, 23, Code::conflict,
       "nat.passthrough.esp.hold_window_ms: 2000 ms exceeds learn_window_ms 1000 ms; "
       "expected at most 1000"},
      // Against the default learn_window_ms (5000).
      {esp_block("      hold_window_ms: 6000\n"), 18, 23, Code::conflict,
       "6000 ms exceeds learn_window_ms 5000 ms (the default); expected at most 5000"},
      // hold_window_ms left at its default (2000): reported at learn_window_ms.
      {esp_block("      learn_window_ms: 1500\n"), 18, 24, Code::conflict,
       "1500 ms is below hold_window_ms 2000 ms (the default); expected at least 2000"},
  });
}

TEST(GatewayConfig, PassthroughUnknownKeysListTheAllowedOnes) {
  expect_rows({
      {minimal + "  passthrough:\n    sstp: {enabled: true}\n", 17, 5, Code::unknown_key,
       "unknown key 'sstp' in nat.passthrough; expected one of: esp, pptp, ike, l2tp, gre"},
      {esp_block(with(esp_fields, "\n      max_sas: 65536\n", "\n      max_sa: 65536\n")), 23, 7, Code::unknown_key,
       "unknown key 'max_sa' in nat.passthrough.esp; expected one of: enabled, idle_timeout, "
       "learn_window_ms, hold_window_ms, hold_packets, max_sas"},
      {minimal + "  passthrough: esp\n", 16, 16, Code::wrong_type,
       "nat.passthrough: expected a mapping with the keys esp, pptp, ike, l2tp, gre, got 'esp'"},
      {minimal + "  passthrough:\n    esp: true\n", 17, 10, Code::wrong_type,
       "nat.passthrough.esp: expected a mapping with the keys enabled, idle_timeout"},
      {minimal + "  passthrough:\n    esp: {}\n    esp: {}\n", 18, 5, Code::duplicate_key,
       "duplicate key 'esp' in nat.passthrough; first given on line 17"},
  });
  // Every problem at once, each once (the engine's own check does not repeat them).
  const LoadResult r = parse(esp_block("      enabled: on\n      max_sas: 0\n      colour: red\n"));
  ASSERT_EQ(r.errors.size(), 3u) << describe(r.errors);
  EXPECT_EQ(r.errors[0].line, 18);
  EXPECT_EQ(r.errors[1].line, 19);
  EXPECT_EQ(r.errors[2].line, 20);
  EXPECT_FALSE(mentions(r.errors, "the NAT engine's own check"));
}

// nat.passthrough.pptp appended to `minimal`: `passthrough:` is line 16,
// `pptp:` line 17, its fields from line 18 in this order, values at column
// 6 + key length + 3.
std::string pptp_block(const std::string& fields) { return minimal + "  passthrough:\n    pptp:\n" + fields; }

const std::string pptp_fields =
    "      enabled: true\n"
    "      max_calls: 16384\n"
    "      call_idle_timeout: 7440\n";
TEST(GatewayConfig, PassthroughPptpGoodValuesAreParsed) {
  {
    const LoadResult r =
        parse(pptp_block("      enabled: false\n      max_calls: 4194304\n"
                         "      call_idle_timeout: 604800\n"));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    const nat::PptpConfig& p = r.config->nat.passthrough.pptp;
    EXPECT_FALSE(p.enabled);
    EXPECT_EQ(p.max_calls, 4194304u);
    EXPECT_EQ(p.call_idle_timeout, 604800u);
    EXPECT_TRUE(r.config->nat.validate().empty());
  }
  {
    const LoadResult r = parse(pptp_block("      enabled: True\n      max_calls: 1\n      call_idle_timeout: 60\n"));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    const nat::PptpConfig& p = r.config->nat.passthrough.pptp;
    EXPECT_TRUE(p.enabled);
    EXPECT_EQ(p.max_calls, 1u);
    EXPECT_EQ(p.call_idle_timeout, 60u);
    EXPECT_EQ(p.max_calls_per_subscriber, nat::PptpConfig{}.max_calls_per_subscriber);
    EXPECT_TRUE(r.config->nat.validate().empty());
  }
  {
    const LoadResult r = parse(pptp_block("      max_calls_per_subscriber: 1\n"));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    EXPECT_EQ(r.config->nat.passthrough.pptp.max_calls_per_subscriber, 1u);
    EXPECT_TRUE(r.config->nat.validate().empty());
    const LoadResult most = parse(pptp_block("      max_calls_per_subscriber: 65535\n"));
    ASSERT_TRUE(most.config.has_value()) << describe(most.errors);
    EXPECT_EQ(most.config->nat.passthrough.pptp.max_calls_per_subscriber, 65535u);
  }
  {
    // Flow style, a subset, next to esp: the rest keep their defaults.
    const LoadResult r = parse(minimal + "  passthrough: {esp: {enabled: false}, pptp: {max_calls: 100}}\n");
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    const nat::PptpConfig& p = r.config->nat.passthrough.pptp;
    EXPECT_TRUE(p.enabled);
    EXPECT_EQ(p.max_calls, 100u);
    EXPECT_EQ(p.call_idle_timeout, nat::PptpConfig{}.call_idle_timeout);
    EXPECT_FALSE(r.config->nat.passthrough.esp.enabled);
  }
  for (const char* empty : {"  passthrough: {}\n", "  passthrough: {pptp: {}}\n", "  passthrough: {esp: {}}\n"}) {
    const LoadResult r = parse(minimal + empty);
    ASSERT_TRUE(r.config.has_value()) << empty << describe(r.errors);
    const nat::PptpConfig& p = r.config->nat.passthrough.pptp;
    EXPECT_EQ(p.enabled, nat::PptpConfig{}.enabled);
    EXPECT_EQ(p.max_calls, nat::PptpConfig{}.max_calls);
    EXPECT_EQ(p.call_idle_timeout, nat::PptpConfig{}.call_idle_timeout);
  }
  EXPECT_TRUE(parse(pptp_block(pptp_fields)).config.has_value());
}

TEST(GatewayConfig, PassthroughPptpRangesHaveTheirPositions) {
  const auto bad = [](const std::string& from, const std::string& to) {
    return pptp_block(with(pptp_fields, from, to));
  };
  expect_rows({
      {bad("max_calls: 16384", "max_calls: 0"), 19, 18, Code::out_of_range,
       "nat.passthrough.pptp.max_calls: expected an integer from 1 to 4194304 (calls tracked at once), "
       "got 0"},
      {bad("max_calls: 16384", "max_calls: 4194305"), 19, 18, Code::out_of_range, "got 4194305"},
      {bad("max_calls: 16384", "max_calls: -5"), 19, 18, Code::not_a_number, "got '-5'"},
      {bad("max_calls: 16384", "max_calls: 16k"), 19, 18, Code::not_a_number, "got '16k'"},
      {bad("call_idle_timeout: 7440", "call_idle_timeout: 59"), 20, 26, Code::out_of_range,
       "nat.passthrough.pptp.call_idle_timeout: expected an integer from 60 to 604800 (seconds), got 59"},
      {bad("call_idle_timeout: 7440", "call_idle_timeout: 604801"), 20, 26, Code::out_of_range, "got 604801"},
      {bad("call_idle_timeout: 7440", "call_idle_timeout: 2h"), 20, 26, Code::not_a_number, "got '2h'"},
      {bad("call_idle_timeout: 7440", "call_idle_timeout: [7440]"), 20, 26, Code::wrong_type, "got a list"},
      {pptp_block(pptp_fields + "      max_calls_per_subscriber: 0\n"), 21, 33, Code::out_of_range,
       "nat.passthrough.pptp.max_calls_per_subscriber: expected an integer from 1 to 65535 (calls of one "
       "subscriber at once), got 0"},
      {pptp_block(pptp_fields + "      max_calls_per_subscriber: 65536\n"), 21, 33, Code::out_of_range, "got 65536"},
      {bad("enabled: true", "enabled: yes"), 18, 16, Code::not_a_boolean,
       "nat.passthrough.pptp.enabled: expected true or false, got 'yes' (a YAML 1.1 spelling"},
      {bad("enabled: true", "enabled: \"false\""), 18, 16, Code::not_a_boolean, "got the quoted string 'false'"},
      // An empty value is reported at its key.
      {bad("max_calls: 16384", "max_calls:"), 19, 7, Code::wrong_type,
       "max_calls: expected an integer from 1 to 4194304"},
  });
}

TEST(GatewayConfig, PassthroughPptpUnknownKeysAndShape) {
  expect_rows({
      {pptp_block(with(pptp_fields, "max_calls:", "max_call:")), 19, 7, Code::unknown_key,
       "unknown key 'max_call' in nat.passthrough.pptp; expected one of: enabled, max_calls, "
       "call_idle_timeout, max_calls_per_subscriber"},
      {pptp_block(pptp_fields + "      idle_timeout: 300\n"), 21, 7, Code::unknown_key,
       "unknown key 'idle_timeout' in nat.passthrough.pptp; expected one of: enabled, max_calls, "
       "call_idle_timeout, max_calls_per_subscriber"},
      {minimal + "  passthrough:\n    pptp: true\n", 17, 11, Code::wrong_type,
       "nat.passthrough.pptp: expected a mapping with the keys enabled, max_calls, call_idle_timeout, "
       "max_calls_per_subscriber, got 'true'"},
      {minimal + "  passthrough:\n    pptp: {}\n    pptp: {max_calls: 1}\n", 18, 5, Code::duplicate_key,
       "duplicate key 'pptp' in nat.passthrough; first given on line 17"},
      // GRE has no key of its own: PPTP's GRE follows nat.passthrough.pptp.
      {minimal + "  passthrough:\n    sstp: {}\n", 17, 5, Code::unknown_key,
       "unknown key 'sstp' in nat.passthrough; expected one of: esp, pptp, ike, l2tp, gre"},
  });
}

// Every problem at once, each once: values out of range are reported where
// they stand and NatConfig::validate (which checks the same ranges) adds nothing.
TEST(GatewayConfig, PassthroughPptpProblemsAreNotRepeatedByTheEngine) {
  {
    const LoadResult r =
        parse(pptp_block("      max_calls: 4194305\n      call_idle_timeout: 30\n      colour: red\n"));
    ASSERT_EQ(r.errors.size(), 3u) << describe(r.errors);
    EXPECT_EQ(r.errors[0].line, 18);
    EXPECT_EQ(r.errors[1].line, 19);
    EXPECT_EQ(r.errors[2].line, 20);
    EXPECT_FALSE(mentions(r.errors, "the NAT engine's own check")) << describe(r.errors);
  }
  {
    // Problems in esp and pptp together, and a broken pool: still each once.
    const LoadResult r =
        parse(with(minimal, "198.51.100.10-198.51.100.13", "198.51.100.13-198.51.100.10") +
              "  passthrough:\n    esp: {max_sas: 0}\n    pptp: {max_calls: 0, call_idle_timeout: 0}\n");
    ASSERT_EQ(r.errors.size(), 4u) << describe(r.errors);
    EXPECT_EQ(r.errors[0].line, 15);
    EXPECT_EQ(r.errors[1].line, 17);
    EXPECT_EQ(r.errors[2].line, 18);
    EXPECT_EQ(r.errors[3].line, 18);
    EXPECT_LT(r.errors[2].column, r.errors[3].column);
    EXPECT_FALSE(mentions(r.errors, "the NAT engine's own check")) << describe(r.errors);
  }
}

// nat.passthrough.ike / .l2tp appended to `minimal`: `passthrough:` is line
// 16, the protocol line 17, its fields from line 18 in this order, values at
// column 6 + key length + 3 (preserve_port: 22, timeout: 16).
std::string udp_block(const std::string& protocol, const std::string& fields) {
  return minimal + "  passthrough:\n    " + protocol + ":\n" + fields;
}

const std::string udp_fields =
    "      preserve_port: true\n"
    "      timeout: 300\n";
TEST(GatewayConfig, PassthroughIkeAndL2tpGoodValuesAreParsed) {
  {
    const LoadResult r = parse(minimal +
                               "  passthrough:\n    ike:\n      preserve_port: false\n      timeout: 120\n"
                               "    l2tp:\n      preserve_port: FALSE\n      timeout: 86400\n");
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    const nat::PassthroughConfig& pt = r.config->nat.passthrough;
    EXPECT_FALSE(pt.ike.preserve_port);
    EXPECT_EQ(pt.ike.timeout, 120u);
    EXPECT_FALSE(pt.l2tp.preserve_port);
    EXPECT_EQ(pt.l2tp.timeout, 86400u);
    EXPECT_TRUE(r.config->nat.validate().empty());  // the engine accepts both ends of the range
  }
  {
    // Each protocol is read into its own settings: ike's values leave l2tp at its defaults and back.
    const LoadResult r = parse(udp_block("ike", "      preserve_port: false\n      timeout: 900\n"));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    const nat::PassthroughConfig& pt = r.config->nat.passthrough;
    EXPECT_FALSE(pt.ike.preserve_port);
    EXPECT_EQ(pt.ike.timeout, 900u);
    EXPECT_EQ(pt.l2tp.preserve_port, nat::UdpServiceConfig{}.preserve_port);
    EXPECT_EQ(pt.l2tp.timeout, nat::UdpServiceConfig{}.timeout);
    EXPECT_EQ(r.config->nat.timeouts.udp, nat::Timeouts{}.udp);  // not the general UDP timeout
  }
  {
    const LoadResult r = parse(udp_block("l2tp", "      preserve_port: True\n      timeout: 600\n"));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    const nat::PassthroughConfig& pt = r.config->nat.passthrough;
    EXPECT_TRUE(pt.l2tp.preserve_port);
    EXPECT_EQ(pt.l2tp.timeout, 600u);
    EXPECT_EQ(pt.ike.preserve_port, nat::UdpServiceConfig{}.preserve_port);
    EXPECT_EQ(pt.ike.timeout, nat::UdpServiceConfig{}.timeout);
  }
  {
    // Flow style, subsets, next to esp and pptp; an explicit !!bool tag is a boolean too.
    const LoadResult r = parse(minimal +
                               "  passthrough: {esp: {enabled: false}, pptp: {max_calls: 100}, "
                               "ike: {timeout: 3600}, l2tp: {preserve_port: !!bool false}}\n");
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    const nat::PassthroughConfig& pt = r.config->nat.passthrough;
    EXPECT_FALSE(pt.esp.enabled);
    EXPECT_EQ(pt.pptp.max_calls, 100u);
    EXPECT_TRUE(pt.ike.preserve_port);
    EXPECT_EQ(pt.ike.timeout, 3600u);
    EXPECT_FALSE(pt.l2tp.preserve_port);
    EXPECT_EQ(pt.l2tp.timeout, nat::UdpServiceConfig{}.timeout);
  }
  for (const char* empty : {"  passthrough: {}\n", "  passthrough: {ike: {}}\n", "  passthrough: {l2tp: {}}\n",
                            "  passthrough: {ike: {}, l2tp: {}}\n"}) {
    const LoadResult r = parse(minimal + empty);
    ASSERT_TRUE(r.config.has_value()) << empty << describe(r.errors);
    for (const nat::UdpServiceConfig* u : {&r.config->nat.passthrough.ike, &r.config->nat.passthrough.l2tp}) {
      EXPECT_EQ(u->preserve_port, nat::UdpServiceConfig{}.preserve_port) << empty;
      EXPECT_EQ(u->timeout, nat::UdpServiceConfig{}.timeout) << empty;
    }
  }
  EXPECT_TRUE(parse(udp_block("ike", udp_fields)).config.has_value());
  EXPECT_TRUE(parse(udp_block("l2tp", udp_fields)).config.has_value());
}

TEST(GatewayConfig, PassthroughIkeAndL2tpTimeoutsHaveTheirPositions) {
  for (const std::string protocol : {"ike", "l2tp"}) {
    SCOPED_TRACE(protocol);
    const auto bad = [&](const std::string& value) {
      return udp_block(protocol, with(udp_fields, "timeout: 300", "timeout: " + value));
    };
    const std::string key = "nat.passthrough." + protocol + ".timeout: ";
    expect_rows({
        {bad("119"), 19, 16, Code::out_of_range,
         key + "119 is below the minimum of 120 s (RFC 4787 REQ-5); expected an integer from 120 to "
               "86400 (seconds)"},
        {bad("0"), 19, 16, Code::out_of_range, key + "0 is below the minimum of 120 s (RFC 4787 REQ-5)"},
        {bad("86401"), 19, 16, Code::out_of_range, key + "expected an integer from 120 to 86400 (seconds), got 86401"},
        // A week is fine for nat.timeouts.udp, not here.
        {bad("604800"), 19, 16, Code::out_of_range, "got 604800"},
        {bad("-300"), 19, 16, Code::not_a_number, key + "expected an integer from 120 to 86400 (seconds), got '-300'"},
        {bad("5m"), 19, 16, Code::not_a_number, "got '5m'"},
        {bad("300s"), 19, 16, Code::not_a_number, "got '300s'"},
        {bad("0x12c"), 19, 16, Code::not_a_number, "got '0x12c'"},
        {bad("3e2"), 19, 16, Code::not_a_number, "got '3e2'"},
        {bad("[300]"), 19, 16, Code::wrong_type, "got a list"},
        {bad("{s: 300}"), 19, 16, Code::wrong_type, "got a mapping"},
        // An empty value is reported at its key.
        {udp_block(protocol, with(udp_fields, "timeout: 300", "timeout:")), 19, 7, Code::wrong_type,
         key + "expected an integer from 120 to 86400 (seconds), got nothing"},
    });
  }
}

TEST(GatewayConfig, PassthroughIkeAndL2tpPreservePortIsARealBoolean) {
  for (const std::string protocol : {"ike", "l2tp"}) {
    SCOPED_TRACE(protocol);
    const auto bad = [&](const std::string& value) {
      return udp_block(protocol, with(udp_fields, "preserve_port: true", "preserve_port: " + value));
    };
    const std::string key = "nat.passthrough." + protocol + ".preserve_port: ";
    expect_rows({
        {bad("yes"), 18, 22, Code::not_a_boolean,
         key + "expected true or false, got 'yes' (a YAML 1.1 spelling, not a boolean here)"},
        {bad("off"), 18, 22, Code::not_a_boolean, "expected true or false, got 'off' (a YAML 1.1 spelling"},
        {bad("On"), 18, 22, Code::not_a_boolean, "expected true or false, got 'On' (a YAML 1.1 spelling"},
        {bad("1"), 18, 22, Code::not_a_boolean, key + "expected true or false, got '1'"},
        {bad("\"true\""), 18, 22, Code::not_a_boolean, "expected true or false, got the quoted string 'true'"},
        {bad("'false'"), 18, 22, Code::not_a_boolean, "expected true or false, got the quoted string 'false'"},
        {bad("!!str true"), 18, 22, Code::not_a_boolean, "expected true or false"},
        {bad("[true]"), 18, 22, Code::wrong_type, "expected true or false, got a list"},
        {udp_block(protocol, with(udp_fields, "preserve_port: true", "preserve_port:")), 18, 7, Code::wrong_type,
         key + "expected true or false, got nothing"},
    });
  }
}

TEST(GatewayConfig, PassthroughIkeAndL2tpUnknownKeysAndShape) {
  for (const std::string protocol : {"ike", "l2tp"}) {
    SCOPED_TRACE(protocol);
    const std::string where = "nat.passthrough." + protocol;
    expect_rows({
        {udp_block(protocol, with(udp_fields, "preserve_port:", "preserve_ports:")), 18, 7, Code::unknown_key,
         "unknown key 'preserve_ports' in " + where + "; expected one of: preserve_port, timeout"},
        // The ports are fixed (500 and 4500, 1701); there is no enabled switch.
        {udp_block(protocol, udp_fields + "      port: 1701\n"), 20, 7, Code::unknown_key,
         "unknown key 'port' in " + where + "; expected one of: preserve_port, timeout"},
        {udp_block(protocol, udp_fields + "      enabled: true\n"), 20, 7, Code::unknown_key,
         "unknown key 'enabled' in " + where},
        {udp_block(protocol, "      idle_timeout: 300\n"), 18, 7, Code::unknown_key,
         "unknown key 'idle_timeout' in " + where},
        {udp_block(protocol, udp_fields + "      timeout: 600\n"), 20, 7, Code::duplicate_key,
         "duplicate key 'timeout' in " + where + "; first given on line 19"},
    });
    const int value_column = 4 + static_cast<int>(protocol.size()) + 3;
    expect_rows({
        {minimal + "  passthrough:\n    " + protocol + ": true\n", 17, value_column, Code::wrong_type,
         where + ": expected a mapping with the keys preserve_port, timeout, got 'true'"},
        {minimal + "  passthrough:\n    " + protocol + ": [500, 4500]\n", 17, value_column, Code::wrong_type,
         where + ": expected a mapping with the keys preserve_port, timeout, got a list"},
        {minimal + "  passthrough:\n    " + protocol + ": {}\n    " + protocol + ": {timeout: 600}\n", 18, 5,
         Code::duplicate_key, "duplicate key '" + protocol + "' in nat.passthrough; first given on line 17"},
    });
  }
  // NAT-T has no key of its own: UDP 4500 follows nat.passthrough.ike.
  expect_rows({
      {minimal + "  passthrough:\n    nat_t: {timeout: 300}\n", 17, 5, Code::unknown_key,
       "unknown key 'nat_t' in nat.passthrough; expected one of: esp, pptp, ike, l2tp, gre"},
      {minimal + "  passthrough:\n    ikev2: {}\n", 17, 5, Code::unknown_key,
       "unknown key 'ikev2' in nat.passthrough; expected one of: esp, pptp, ike, l2tp, gre"},
  });
}

// Every problem at once, each once: values out of range are reported where
// they stand and NatConfig::validate (which checks the same timeout range)
// adds nothing.
TEST(GatewayConfig, PassthroughIkeAndL2tpProblemsAreNotRepeatedByTheEngine) {
  {
    const LoadResult r = parse(minimal +
                               "  passthrough:\n    ike:\n      preserve_port: yes\n      timeout: 60\n"
                               "    l2tp:\n      timeout: 86401\n      colour: red\n");
    ASSERT_EQ(r.errors.size(), 4u) << describe(r.errors);
    EXPECT_EQ(r.errors[0].line, 18);
    EXPECT_EQ(r.errors[1].line, 19);
    EXPECT_EQ(r.errors[2].line, 21);
    EXPECT_EQ(r.errors[3].line, 22);
    EXPECT_FALSE(mentions(r.errors, "the NAT engine's own check")) << describe(r.errors);
  }
  {
    // Problems in every protocol, and a broken pool: still each once.
    const LoadResult r = parse(with(minimal, "198.51.100.10-198.51.100.13", "198.51.100.13-198.51.100.10") +
                               "  passthrough:\n    esp: {max_sas: 0}\n    pptp: {max_calls: 0}\n"
                               "    ike: {timeout: 119}\n    l2tp: {timeout: 0}\n");
    ASSERT_EQ(r.errors.size(), 5u) << describe(r.errors);
    EXPECT_EQ(r.errors[0].line, 15);
    EXPECT_EQ(r.errors[1].line, 17);
    EXPECT_EQ(r.errors[2].line, 18);
    EXPECT_EQ(r.errors[3].line, 19);
    EXPECT_EQ(r.errors[4].line, 20);
    EXPECT_FALSE(mentions(r.errors, "the NAT engine's own check")) << describe(r.errors);
  }
  {
    // A timeout the engine would refuse is reported once, next to a problem
    // elsewhere in nat: setting passthrough aside hides nothing else.
    const LoadResult r = parse(udp_block("ike", "      timeout: 100000\n") + "  max_sessions: 0\n");
    ASSERT_EQ(r.errors.size(), 2u) << describe(r.errors);
    EXPECT_EQ(r.errors[0].line, 18);
    EXPECT_EQ(r.errors[1].line, 19);
    EXPECT_FALSE(mentions(r.errors, "the NAT engine's own check")) << describe(r.errors);
  }
}

}  // namespace
}  // namespace passgate::config::testing
