// The YAML configuration: the examples in conf/ load with the values they
// show, every broken file in tests/conf-bad/ fails with exactly the errors its
// `# expect: line:column text` header lists, and single rules are checked on
// small inline documents. Errors are all reported at once, with positions.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "config/gateway_config.hpp"
#include "packet/byte_order.hpp"
#include "packet/headers.hpp"
#include "support/minimal_config.hpp"

#ifndef PASSGATE_SOURCE_DIR
#error "PASSGATE_SOURCE_DIR must name the source tree (set in tests/unit/meson.build)"
#endif

namespace passgate::config {
namespace {

using packet::ipv4;
using Code = ConfigErrorCode;
namespace fs = std::filesystem;

const fs::path source_dir{PASSGATE_SOURCE_DIR};

std::string describe(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const auto& e : errors) out += "  " + to_string(e) + "\n";
  return out;
}

bool mentions(const std::vector<ConfigError>& errors, const std::string& text) {
  return std::any_of(errors.begin(), errors.end(),
                     [&](const ConfigError& e) { return e.message.find(text) != std::string::npos; });
}

// The smallest valid file; tests replace one piece of it.
const std::string& minimal = passgate::testing::minimal_gateway_yaml;

std::string with(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "test bug: '" << from << "' not in the document";
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

LoadResult parse(const std::string& text) { return parse_gateway_config(text, "test.yaml"); }

// Exactly one error, at line:column, of that kind, whose message contains `text`.
void expect_one_error(const std::string& yaml, int line, int column, ConfigErrorCode code, const std::string& text) {
  const LoadResult r = parse(yaml);
  EXPECT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 1u) << describe(r.errors);
  EXPECT_EQ(r.errors[0].line, line) << describe(r.errors);
  EXPECT_EQ(r.errors[0].column, column) << describe(r.errors);
  EXPECT_EQ(to_string(r.errors[0].code), std::string(to_string(code))) << describe(r.errors);
  EXPECT_NE(r.errors[0].message.find(text), std::string::npos) << describe(r.errors);
}

// ------------------------------------------------------------ examples

TEST(GatewayConfig, FullExampleLoadsEveryField) {
  const LoadResult r = load_gateway_config((source_dir / "conf/passgate.yaml").string());
  ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
  const GatewayConfig& g = *r.config;
  EXPECT_EQ(g.source, (source_dir / "conf/passgate.yaml").string());

  const std::vector<std::string> eal{"--no-huge", "-m", "512", "--no-pci", "--no-shconf"};
  EXPECT_EQ(g.dataplane.eal_args, eal);
  EXPECT_EQ(g.dataplane.worker_lcores, std::vector<unsigned>{1});
  EXPECT_EQ(g.dataplane.mbufs, 0u) << "auto";
  EXPECT_EQ(g.dataplane.mbuf_cache, 256u);
  EXPECT_EQ(g.dataplane.burst, 32u);
  EXPECT_EQ(g.dataplane.neighbour.reachable_seconds, 300u);
  EXPECT_EQ(g.dataplane.neighbour.retry_ms, 1000u);
  EXPECT_EQ(g.dataplane.neighbour.max_retries, 3u);
  EXPECT_EQ(g.dataplane.neighbour.queue_packets, 16u);
  EXPECT_EQ(g.dataplane.neighbour.table_size, 4096u);

  ASSERT_EQ(g.ports.size(), 2u);
  const PortConfig& in = g.ports[0];
  EXPECT_EQ(in.name, "inside");
  EXPECT_EQ(in.device, "net_af_packet0,iface=pg-in");
  EXPECT_EQ(in.role, PortRole::inside);
  EXPECT_EQ(in.address, ipv4(100, 64, 0, 1));
  EXPECT_EQ(in.prefix_length, 24);
  EXPECT_FALSE(in.gateway.has_value());
  ASSERT_EQ(in.routes.size(), 1u);
  EXPECT_EQ(in.routes[0].prefix.address, ipv4(100, 65, 0, 0));
  EXPECT_EQ(in.routes[0].prefix.length, 16);
  EXPECT_EQ(in.routes[0].via, ipv4(100, 64, 0, 2));
  EXPECT_EQ(in.mtu, 1500);
  EXPECT_EQ(in.vlan, 0);
  ASSERT_EQ(in.neighbours.size(), 1u);
  EXPECT_EQ(in.neighbours[0].address, ipv4(100, 64, 0, 2));
  EXPECT_EQ(to_string(in.neighbours[0].mac), "02:00:00:00:00:02");
  EXPECT_EQ(in.rx_queues, 1);
  EXPECT_EQ(in.tx_queues, 1);
  EXPECT_EQ(in.rx_descriptors, 1024);
  EXPECT_EQ(in.tx_descriptors, 1024);

  const PortConfig& out = g.ports[1];
  EXPECT_EQ(out.name, "outside");
  EXPECT_EQ(out.device, "net_af_packet1,iface=pg-out");
  EXPECT_EQ(out.role, PortRole::outside);
  EXPECT_EQ(out.address, ipv4(198, 51, 100, 1));
  EXPECT_EQ(out.prefix_length, 24);
  ASSERT_TRUE(out.gateway.has_value());
  EXPECT_EQ(*out.gateway, ipv4(198, 51, 100, 254));
  EXPECT_TRUE(out.routes.empty());
  EXPECT_TRUE(out.neighbours.empty());

  const nat::NatConfig& n = g.nat;
  EXPECT_EQ(n.max_sessions, 1048576u);
  EXPECT_EQ(n.max_subscribers, 65536u);
  EXPECT_FALSE(g.random_seed_given) << "the production example leaves the seed to getrandom() (RFC 6056)";
  EXPECT_EQ(n.random_seed, 0u);
  EXPECT_EQ(n.timeouts.udp, 300u);
  EXPECT_EQ(n.timeouts.tcp_established, 7440u);
  EXPECT_EQ(n.timeouts.tcp_transitory, 240u);
  EXPECT_EQ(n.timeouts.icmp, 60u);
  EXPECT_EQ(n.timeouts.port_reuse_hold, 120u);
  EXPECT_EQ(n.timeouts.fragment_ms, 2000u);
  EXPECT_EQ(n.fragment_flows, 4096u);
  EXPECT_EQ(n.fragment_hold_slots, 64u);
  EXPECT_EQ(n.fragment_hold_bytes, 2048u);
  EXPECT_EQ(n.event_ring_size, 4096u);
  ASSERT_EQ(n.pools.size(), 1u);
  const nat::PoolConfig& p = n.pools[0];
  EXPECT_EQ(p.name, "cgn");
  ASSERT_EQ(p.subscribers.size(), 1u);
  EXPECT_EQ(p.subscribers[0].address, ipv4(100, 64, 0, 0));
  EXPECT_EQ(p.subscribers[0].length, 10);
  ASSERT_EQ(p.public_addresses.size(), 1u);
  EXPECT_EQ(p.public_addresses[0].first, ipv4(198, 51, 100, 10));
  EXPECT_EQ(p.public_addresses[0].last, ipv4(198, 51, 100, 13));
  EXPECT_EQ(p.port_min, 1024);
  EXPECT_EQ(p.port_max, 65535);
  EXPECT_EQ(p.block_size, 512);
  EXPECT_EQ(p.max_blocks_per_subscriber, 4);
  EXPECT_EQ(p.max_sessions_per_subscriber, 4096u);
  EXPECT_EQ(p.filtering, nat::Filtering::endpoint_independent);
  ASSERT_EQ(n.static_mappings.size(), 1u);
  const nat::StaticMapping& s = n.static_mappings[0];
  EXPECT_EQ(s.protocol, packet::ip_proto::tcp);
  EXPECT_EQ(s.inside_address, ipv4(100, 64, 0, 20));
  EXPECT_EQ(s.inside_port.host(), 8080);
  EXPECT_EQ(s.public_address, ipv4(198, 51, 100, 30));
  EXPECT_EQ(s.public_port.host(), 80);
  const nat::EspConfig& esp = n.passthrough.esp;
  EXPECT_TRUE(esp.enabled);
  EXPECT_EQ(esp.idle_timeout, 300u);
  EXPECT_EQ(esp.learn_window_ms, 5000u);
  EXPECT_EQ(esp.hold_window_ms, 2000u);
  EXPECT_EQ(esp.hold_packets, 64u);
  EXPECT_EQ(esp.max_sas, 65536u);
  const nat::PptpConfig& pptp = n.passthrough.pptp;
  EXPECT_TRUE(pptp.enabled);
  EXPECT_EQ(pptp.max_calls, 16384u);
  EXPECT_EQ(pptp.call_idle_timeout, 7440u);
  EXPECT_EQ(pptp.max_calls_per_subscriber, 16u);
  EXPECT_TRUE(n.passthrough.ike.preserve_port);
  EXPECT_EQ(n.passthrough.ike.timeout, 300u);
  EXPECT_TRUE(n.passthrough.l2tp.preserve_port);
  EXPECT_EQ(n.passthrough.l2tp.timeout, 300u);

  EXPECT_TRUE(n.validate().empty());
}

// The full example writes out every default; it must not drift from the structs.
TEST(GatewayConfig, FullExamplePassthroughValuesAreTheDefaults) {
  const LoadResult r = load_gateway_config((source_dir / "conf/passgate.yaml").string());
  ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
  const nat::EspConfig defaults;
  const nat::EspConfig& esp = r.config->nat.passthrough.esp;
  EXPECT_EQ(esp.enabled, defaults.enabled);
  EXPECT_EQ(esp.idle_timeout, defaults.idle_timeout);
  EXPECT_EQ(esp.learn_window_ms, defaults.learn_window_ms);
  EXPECT_EQ(esp.hold_window_ms, defaults.hold_window_ms);
  EXPECT_EQ(esp.hold_packets, defaults.hold_packets);
  EXPECT_EQ(esp.max_sas, defaults.max_sas);
  const nat::PptpConfig pptp_defaults;
  const nat::PptpConfig& pptp = r.config->nat.passthrough.pptp;
  EXPECT_EQ(pptp.enabled, pptp_defaults.enabled);
  EXPECT_EQ(pptp.max_calls, pptp_defaults.max_calls);
  EXPECT_EQ(pptp.call_idle_timeout, pptp_defaults.call_idle_timeout);
  const nat::UdpServiceConfig udp_defaults;
  for (const nat::UdpServiceConfig* u : {&r.config->nat.passthrough.ike, &r.config->nat.passthrough.l2tp}) {
    EXPECT_EQ(u->preserve_port, udp_defaults.preserve_port);
    EXPECT_EQ(u->timeout, udp_defaults.timeout);
  }
}

TEST(GatewayConfig, MinimalExampleTakesTheDefaults) {
  const LoadResult r = load_gateway_config((source_dir / "conf/minimal.yaml").string());
  ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
  const GatewayConfig& g = *r.config;
  const DataplaneConfig dataplane_defaults;
  EXPECT_TRUE(g.dataplane.eal_args.empty());
  EXPECT_TRUE(g.dataplane.worker_lcores.empty());
  EXPECT_EQ(g.dataplane.mbufs, dataplane_defaults.mbufs);
  EXPECT_EQ(g.dataplane.burst, dataplane_defaults.burst);
  ASSERT_EQ(g.ports.size(), 2u);
  EXPECT_EQ(g.ports[0].mtu, 1500);
  EXPECT_EQ(g.ports[1].rx_descriptors, 1024);
  EXPECT_FALSE(g.random_seed_given);
  EXPECT_EQ(g.nat.random_seed, 0u);
  const nat::Timeouts timeout_defaults;
  EXPECT_EQ(g.nat.timeouts.udp, timeout_defaults.udp);
  ASSERT_EQ(g.nat.pools.size(), 1u);
  EXPECT_EQ(g.nat.pools[0].block_size, nat::PoolConfig{}.block_size);
  EXPECT_TRUE(g.nat.static_mappings.empty());
  const nat::EspConfig esp_defaults;
  EXPECT_EQ(g.nat.passthrough.esp.enabled, esp_defaults.enabled);
  EXPECT_EQ(g.nat.passthrough.esp.learn_window_ms, esp_defaults.learn_window_ms);
  EXPECT_EQ(g.nat.passthrough.esp.max_sas, esp_defaults.max_sas);
  const nat::PptpConfig pptp_defaults;
  EXPECT_EQ(g.nat.passthrough.pptp.enabled, pptp_defaults.enabled);
  EXPECT_EQ(g.nat.passthrough.pptp.max_calls, pptp_defaults.max_calls);
  EXPECT_EQ(g.nat.passthrough.pptp.call_idle_timeout, pptp_defaults.call_idle_timeout);
  const nat::UdpServiceConfig udp_defaults;
  EXPECT_EQ(g.nat.passthrough.ike.preserve_port, udp_defaults.preserve_port);
  EXPECT_EQ(g.nat.passthrough.ike.timeout, udp_defaults.timeout);
  EXPECT_EQ(g.nat.passthrough.l2tp.preserve_port, udp_defaults.preserve_port);
  EXPECT_EQ(g.nat.passthrough.l2tp.timeout, udp_defaults.timeout);
  EXPECT_TRUE(g.nat.validate().empty());
}

TEST(GatewayConfig, EveryExampleInConfLoads) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(source_dir / "conf")) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    const LoadResult r = load_gateway_config(entry.path().string());
    EXPECT_TRUE(r.config.has_value()) << entry.path() << "\n" << describe(r.errors);
  }
  EXPECT_GE(files, 2);
}

// ------------------------------------------------------------ broken files

struct Expected {
  int line, column;
  std::string text;
};

std::vector<Expected> expectations(const fs::path& file) {
  std::vector<Expected> out;
  std::ifstream in(file);
  std::string line;
  const std::string tag = "# expect: ";
  while (std::getline(in, line)) {
    if (line.rfind(tag, 0) != 0) continue;
    std::istringstream fields(line.substr(tag.size()));
    Expected e{};
    char colon = 0;
    fields >> e.line >> colon >> e.column;
    EXPECT_EQ(colon, ':') << file << ": malformed expectation: " << line;
    std::getline(fields >> std::ws, e.text);
    out.push_back(e);
  }
  return out;
}

TEST(GatewayConfig, EveryBrokenFileFailsWithExactlyTheExpectedErrors) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(source_dir / "tests/conf-bad"))
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 8u);
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.filename().string());
    const std::vector<Expected> expected = expectations(file);
    ASSERT_FALSE(expected.empty()) << "no '# expect:' lines";
    const LoadResult r = load_gateway_config(file.string());
    EXPECT_FALSE(r.config.has_value());
    ASSERT_EQ(r.errors.size(), expected.size()) << describe(r.errors);
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(r.errors[i].file, file.string());
      EXPECT_EQ(r.errors[i].line, expected[i].line) << describe(r.errors);
      EXPECT_EQ(r.errors[i].column, expected[i].column) << describe(r.errors);
      EXPECT_NE(r.errors[i].message.find(expected[i].text), std::string::npos)
          << "expected '" << expected[i].text << "' in\n"
          << describe(r.errors);
    }
  }
}

// ------------------------------------------------------------ all at once

TEST(GatewayConfig, EveryProblemIsReportedAtOnce) {
  std::string yaml = with(minimal, "    gateway: 198.51.100.254\n", "    gateway: 198.51.100.254\n    mtu: 100\n");
  yaml = with(yaml, "nat:\n", "nat:\n  timeouts: {udp: 30}\n  colour: blue\n");
  const LoadResult r = parse(yaml);
  EXPECT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 3u) << describe(r.errors);
  EXPECT_EQ(r.errors[0].line, 11);  // mtu
  EXPECT_NE(r.errors[0].message.find("mtu"), std::string::npos);
  EXPECT_EQ(r.errors[1].line, 13);  // udp below RFC 4787's minimum
  EXPECT_NE(r.errors[1].message.find("RFC 4787"), std::string::npos);
  EXPECT_EQ(r.errors[2].line, 14);  // unknown key
  EXPECT_NE(r.errors[2].message.find("unknown key 'colour' in nat"), std::string::npos);
}

TEST(GatewayConfig, ErrorsAreSortedByPosition) {
  std::string yaml = with(minimal, "public: [198.51.100.10-198.51.100.13]", "public: [300.1.1.1]");
  yaml = with(yaml, "    role: inside\n", "    role: inside\n    vlan: 5000\n");
  const LoadResult r = parse(yaml);
  ASSERT_EQ(r.errors.size(), 2u) << describe(r.errors);
  EXPECT_LT(r.errors[0].line, r.errors[1].line);
}

// ------------------------------------------------------------ single rules

TEST(GatewayConfig, ToStringForms) {
  EXPECT_EQ(to_string(ConfigError{"a.yaml", 12, 7, "unknown key 'x'"}), "a.yaml:12:7: error: unknown key 'x'");
  EXPECT_EQ(to_string(ConfigError{"a.yaml", 0, 0, "cannot read"}), "a.yaml: error: cannot read");
  EXPECT_EQ(to_string(MacAddress{{0x02, 0x00, 0x00, 0xab, 0x0c, 0x10}}), "02:00:00:ab:0c:10");
}

TEST(GatewayConfig, UnreadableFileIsOneErrorWithoutPosition) {
  const LoadResult r = load_gateway_config("/nonexistent/passgate.yaml");
  EXPECT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 0);
  EXPECT_EQ(r.errors[0].file, "/nonexistent/passgate.yaml");
  EXPECT_NE(r.errors[0].message.find("No such file"), std::string::npos) << r.errors[0].message;
}

TEST(GatewayConfig, DocumentShape) {
  expect_one_error("just a string\n", 1, 1, Code::wrong_type, "expected a mapping with the keys dataplane, ports, nat");
  expect_one_error(minimal + "---\nports: []\n", 16, 1, Code::document, "a second YAML document");
  expect_one_error(minimal + "extra: 1\n", 16, 1, Code::unknown_key, "unknown key 'extra' in the top level");
  expect_one_error("# comment\n" + with(minimal,
                                        "nat:\n  pools:\n    - name: cgn\n      subscribers: [100.64.0.0/10]\n"
                                        "      public: [198.51.100.10-198.51.100.13]\n",
                                        ""),
                   2, 1, Code::missing_key, "missing required key 'nat' in the top level");
  expect_one_error(minimal.substr(0, minimal.find("nat:")) + "nat:\n  max_sessions: 10\n", 11, 1, Code::missing_key,
                   "missing required key 'pools' in nat");
  expect_one_error(with(minimal, "      subscribers: [100.64.0.0/10]\n", "      subscribers: []\n"), 14, 20, Code::empty_list,
                   "expected at least one of subscriber prefixes");
  expect_one_error("ports:\n" + minimal.substr(minimal.find("nat:")), 1, 1, Code::wrong_type,
                   "expected a list of ports (one inside, one outside), got nothing");
}

TEST(GatewayConfig, YamlSyntaxErrorHasItsPosition) {
  const LoadResult r = parse("ports:\n  - name: inside\n   role: x\n");
  ASSERT_EQ(r.errors.size(), 1u) << describe(r.errors);
  EXPECT_GT(r.errors[0].line, 0);
  EXPECT_NE(r.errors[0].message.find("YAML syntax error"), std::string::npos);
  // yaml-cpp 0.7's LoadAll never returns on these; they must be errors, fast.
  expect_one_error(",\n" + minimal, 1, 1, Code::yaml_syntax, "YAML syntax error: unexpected ','");
  expect_one_error("- a\n,\n", 2, 1, Code::yaml_syntax, "YAML syntax error: unexpected ','");
}

TEST(GatewayConfig, EmptyValueIsReportedAtItsKey) {
  // yaml-cpp places an empty value where the next token starts; the key is
  // the useful place.
  expect_one_error(with(minimal, "gateway: 198.51.100.254", "gateway:"), 10, 5, Code::wrong_type,
                   "ports[1].gateway: expected an IPv4 address like 198.51.100.254, got nothing");
}

TEST(GatewayConfig, AddressesAndPrefixes) {
  expect_one_error(with(minimal, "100.64.0.1/24", "100.64.0.1"), 5, 14, Code::bad_prefix, "address and prefix length");
  expect_one_error(with(minimal, "100.64.0.1/24", "100.064.0.1/24"), 5, 14, Code::bad_prefix, "got '100.064.0.1/24'");
  expect_one_error(with(minimal, "100.64.0.1/24", "100.64.0.1/32"), 5, 14, Code::bad_prefix, "expected /1 to /31");
  expect_one_error(with(minimal, "100.64.0.1/24", "127.0.0.1/8"), 5, 14, Code::reserved_address, "loopback");
  expect_one_error(with(minimal, "[100.64.0.0/10]", "[100.64.0.0/9]"), 14, 21, Code::host_bits, "has host bits set");
  expect_one_error(with(minimal, "198.51.100.10-198.51.100.13", "198.51.100.13-198.51.100.10"), 15, 16, Code::bad_range,
                   "ends before it starts");
  expect_one_error(with(minimal, "198.51.100.10-198.51.100.13", "224.0.0.1"), 15, 16, Code::reserved_address, "multicast");
  expect_one_error(with(minimal, "198.51.100.10-198.51.100.13", "198.51.100.10-198.51.100.13, 198.51.100.12"), 15, 45, Code::overlap,
                   "overlap 198.51.100.10-198.51.100.13 (line 15) of the same pool");
  // A /31 has no network or broadcast address (RFC 3021).
  EXPECT_TRUE(
      parse(with(minimal, "198.51.100.1/24\n    gateway: 198.51.100.254", "198.51.100.0/31\n    gateway: 198.51.100.1"))
          .config.has_value());
}

TEST(GatewayConfig, PortRules) {
  expect_one_error(with(minimal, "net_af_packet1,iface=pg-out", "net_af_packet0,iface=other"), 7, 13, Code::repeated,
                   "device net_af_packet0 is already used by port 'inside'");
  expect_one_error(with(minimal, "198.51.100.1/24\n    gateway: 198.51.100.254", "100.64.0.129/25"), 9, 14, Code::overlap,
                   "subnet 100.64.0.128/25 overlaps subnet 100.64.0.0/24 of port 'inside'");
  {
    const LoadResult r = parse(with(minimal, "    role: outside", "    role: inside"));
    ASSERT_EQ(r.errors.size(), 2u) << describe(r.errors);
    EXPECT_EQ(r.errors[0].line, 1);
    EXPECT_NE(r.errors[0].message.find("no outside port"), std::string::npos);
    EXPECT_EQ(r.errors[1].line, 8);
    EXPECT_NE(r.errors[1].message.find("a second inside port; passgate supports exactly one inside and one outside"),
              std::string::npos);
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
  expect_one_error(one_port, 1, 1, Code::port_roles,
                   "no outside port; expected exactly one port with role inside and one with role outside");
  expect_one_error(with(minimal, "    role: inside\n",
                        "    role: inside\n    routes:\n      - {prefix: 10.0.0.0/8, via: 100.64.0.2}\n"
                        "      - {prefix: 10.0.0.0/8, via: 100.64.0.3}\n"),
                   7, 18, Code::repeated, "a second route to 10.0.0.0/8");
  expect_one_error(with(minimal, "    role: inside\n", "    role: inside\n    routes:\n      - {prefix: 10.0.0.0/8}\n"),
                   6, 9, Code::missing_key, "missing required key 'via' in ports[0].routes[0]");
  expect_one_error(with(minimal, "gateway: 198.51.100.254", "gateway: 198.51.100.255"), 10, 14, Code::not_a_host,
                   "is the broadcast address of 198.51.100.0/24");
  expect_one_error(with(minimal, "    role: inside\n",
                        "    role: inside\n    neighbours:\n"
                        "      - {address: 100.64.0.9, mac: \"02:00:00:00:00:09\"}\n"
                        "      - {address: 100.64.0.9, mac: \"02:00:00:00:00:0a\"}\n"),
                   7, 19, Code::repeated, "neighbour 100.64.0.9 is given twice");
  expect_one_error(with(minimal, "    role: inside\n",
                        "    role: inside\n    neighbours:\n"
                        "      - {address: 100.64.0.9, mac: \"00:00:00:00:00:00\"}\n"),
                   6, 36, Code::bad_mac, "zero MAC address");
}

TEST(GatewayConfig, DataplaneRules) {
  expect_one_error("dataplane:\n  workers: [1, 2, 1]\n" + minimal, 2, 19, Code::repeated, "lcore 1 is listed twice");
  expect_one_error("dataplane:\n  workers: [128]\n" + minimal, 2, 13, Code::out_of_range, "RTE_MAX_LCORE");
  expect_one_error("dataplane:\n  mbufs: 100\n" + minimal, 2, 10, Code::out_of_range, "expected an integer from 1023 to");
  expect_one_error(
      "dataplane:\n  mbufs: 4095\n" + minimal, 2, 10, Code::capacity,
      "4095 mbufs cannot cover what this configuration can hold at once: rx descriptors 2048 + tx descriptors 2048 "
      "+ neighbour queues 2048");  // every holder: tests/unit/mbuf_budget_test.cpp
  EXPECT_TRUE(
      parse("dataplane:\n  mbufs: 4095\n  neighbour: {table_size: 16, queue: 4}\n" +
            with(minimal, "    role: inside\n", "    role: inside\n    rx_descriptors: 256\n    tx_descriptors: 256\n"))
          .config.has_value());
  expect_one_error("dataplane:\n  neighbour: {queue: 0}\n" + minimal, 2, 22, Code::out_of_range,
                   "neighbour.queue: expected an integer from 1");
  const LoadResult ok = parse("dataplane:\n  eal: []\n  workers:\n  neighbour: {retry_ms: 500}\n" + minimal);
  ASSERT_TRUE(ok.config.has_value()) << describe(ok.errors);
  EXPECT_EQ(ok.config->dataplane.neighbour.retry_ms, 500u);
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
    const LoadResult r = parse(
        "dataplane:\n  icmp_errors: {rate: 0, burst: 5}\n  neighbour: {unsolicited_percent: 10}\n" +
        with(minimal, "    role: inside\n", "    role: inside\n    promiscuous: true\n    mac: \"02:00:00:00:00:01\"\n"));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    EXPECT_TRUE(r.config->ports[0].promiscuous);
    ASSERT_TRUE(r.config->ports[0].mac.has_value());
    EXPECT_EQ(config::to_string(*r.config->ports[0].mac), "02:00:00:00:00:01");
    EXPECT_EQ(r.config->dataplane.icmp_error_rate, 0u);
    EXPECT_EQ(r.config->dataplane.icmp_error_burst, 5u);
    EXPECT_EQ(r.config->dataplane.neighbour.unsolicited_percent, 10u);
  }
  expect_one_error(with(minimal, "    role: inside\n", "    role: inside\n    mac: \"01:00:5e:00:00:01\"\n"), 5, 10, Code::bad_mac,
                   "multicast MAC address");
  expect_one_error(with(minimal, "    role: inside\n", "    role: inside\n    promiscuous: maybe\n"), 5, 18, Code::not_a_boolean, "");
  expect_one_error("dataplane:\n  icmp_errors: {burst: 0}\n" + minimal, 2, 24, Code::out_of_range, "expected an integer from 1");
  expect_one_error("dataplane:\n  icmp_errors: {every: 1}\n" + minimal, 2, 17, Code::unknown_key, "every");
  expect_one_error("dataplane:\n  neighbour: {unsolicited_percent: 101}\n" + minimal, 2, 36, Code::out_of_range, "from 0 to 100");
}

TEST(GatewayConfig, NatRules) {
  expect_one_error(with(minimal, "nat:\n", "nat:\n  random_seed: 18446744073709551616\n"), 12, 16, Code::not_a_number,
                   "got '18446744073709551616'");
  {
    const LoadResult r = parse(with(minimal, "nat:\n", "nat:\n  random_seed: 18446744073709551615\n"));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    EXPECT_TRUE(r.config->random_seed_given);
    EXPECT_EQ(r.config->nat.random_seed, 18446744073709551615u);
  }
  expect_one_error(with(minimal, "nat:\n", "nat:\n  timeouts: {tcp_transitory: 60}\n"), 12, 30, Code::out_of_range, "RFC 5382 REQ-5");
  expect_one_error(with(minimal, "nat:\n", "nat:\n  timeouts: {udp: 700000}\n"), 12, 19, Code::out_of_range,
                   "expected an integer from 120 to 604800");
  expect_one_error(with(minimal, "nat:\n", "nat:\n  fragments: {hold_bytes: 60}\n"), 12, 27, Code::out_of_range, "from 68 to 9216");
  expect_one_error(with(minimal, "nat:\n", "nat:\n  max_sessions: 0\n"), 12, 17, Code::out_of_range, "from 1 to 1073741824");
  expect_one_error(with(minimal, "nat:\n", "nat:\n  limits: {new_subscribers_per_second: 0}\n"), 12, 40, Code::out_of_range,
                   "from 1 to 16777216");
  expect_one_error(with(minimal, "nat:\n", "nat:\n  limits: {fragment_flows: 3}\n"), 12, 12, Code::unknown_key, "unknown key 'fragment_flows'");
  {
    const LoadResult r = parse(with(minimal, "nat:\n",
                                    "nat:\n  limits: {new_subscribers_per_second: 500, static_mapping_sessions: 99,\n"
                                    "    limit_event_interval_ms: 250, fragment_flows_per_host: 7, "
                                    "fragments_held_per_host: 3}\n"));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    const nat::AbuseLimits& l = r.config->nat.limits;
    EXPECT_EQ(l.new_subscribers_per_second, 500u);
    EXPECT_EQ(l.static_mapping_sessions, 99u);
    EXPECT_EQ(l.limit_event_interval_ms, 250u);
    EXPECT_EQ(l.fragment_flows_per_host, 7u);
    EXPECT_EQ(l.fragments_held_per_host, 3u);
  }
  expect_one_error(
      with(minimal, "[198.51.100.10-198.51.100.13]", "[198.51.100.10-198.51.100.13]\n      filtering: full-cone"), 16,
      18, Code::bad_choice, "expected endpoint-independent, address-dependent or address-and-port-dependent");
  expect_one_error(
      with(minimal, "[198.51.100.10-198.51.100.13]", "[198.51.100.10-198.51.100.13]\n      ports: 2000-1000"), 16, 14, Code::bad_range,
      "expected a port range like 1024-65535");
  expect_one_error(with(minimal, "[198.51.100.10-198.51.100.13]",
                        "[198.51.100.10-198.51.100.13]\n      max_blocks_per_subscriber: 65"),
                   16, 34, Code::out_of_range, "from 1 to 64");
  {
    const LoadResult r =
        parse(with(minimal, "[198.51.100.10-198.51.100.13]",
                   "[198.51.100.10-198.51.100.13]\n      filtering: address-and-port-dependent\n"
                   "      ports: 20000-29999\n      block_size: 1000\n      max_blocks_per_subscriber: 10"));
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    EXPECT_EQ(r.config->nat.pools[0].filtering, nat::Filtering::address_and_port_dependent);
    EXPECT_EQ(r.config->nat.pools[0].port_min, 20000);
    EXPECT_EQ(r.config->nat.pools[0].port_max, 29999);
  }
  // 2^23 addresses x 126 blocks is far above the engine's 2^26 blocks; reported
  // once, at `pools`, not again by NatConfig::validate.
  expect_one_error(with(minimal, "198.51.100.10-198.51.100.13", "11.0.0.0/9"), 12, 3, Code::capacity, "at most 67108864 (2^26)");
}

TEST(GatewayConfig, PoolsMayNotOverlap) {
  const std::string second = "    - name: b\n      subscribers: [100.128.0.0/16]\n      public: [198.51.100.20/31]\n";
  EXPECT_TRUE(parse(minimal + second).config.has_value());
  expect_one_error(minimal + with(second, "100.128.0.0/16", "100.100.0.0/16"), 17, 21, Code::overlap,
                   "subscriber prefix 100.100.0.0/16 overlaps 100.64.0.0/10 of pool 'cgn' (line 13)");
  expect_one_error(minimal + with(second, "198.51.100.20/31", "198.51.100.12/30"), 18, 16, Code::overlap,
                   "public addresses 198.51.100.12-198.51.100.15 overlap 198.51.100.10-198.51.100.13 of pool 'cgn'");
  expect_one_error(minimal + with(second, "name: b", "name: cgn"), 16, 13, Code::repeated,
                   "duplicate pool name 'cgn'; first used on line 13");
  expect_one_error(with(minimal, "198.51.100.10-198.51.100.13", "198.51.100.1"), 15, 16, Code::overlap,
                   "the own address of port 'outside'");
}

TEST(GatewayConfig, StaticMappings) {
  const std::string statics =
      "  static:\n"
      "    - {protocol: tcp, inside: 100.64.0.20:8080, public: 198.51.100.30:80}\n";
  {
    const LoadResult r = parse(minimal + statics);
    ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
    EXPECT_EQ(r.config->nat.static_mappings.size(), 1u);
  }
  expect_one_error(minimal + with(statics, "198.51.100.30:80", "198.51.100.11:2000"), 17, 57, Code::overlap,
                   "198.51.100.11:2000 lies inside the dynamic range of pool 'cgn' (line 13)");
  // A pool address, but below the pool's dynamic port range: fine.
  EXPECT_TRUE(parse(minimal + with(statics, "198.51.100.30:80", "198.51.100.11:80")).config.has_value());
  expect_one_error(minimal + with(statics, "protocol: tcp", "protocol: icmp"), 17, 18, Code::bad_choice,
                   "expected tcp or udp, got 'icmp'");
  expect_one_error(minimal + with(statics, "100.64.0.20:8080", "100.64.0.20:0"), 17, 31, Code::bad_endpoint, "port from 1 to 65535");
  expect_one_error(minimal + statics + "    - {protocol: udp, inside: 100.64.0.20:8080, public: 198.51.100.30:81}\n" +
                       "    - {protocol: tcp, inside: 100.64.0.20:8080, public: 198.51.100.30:82}\n",
                   19, 31, Code::repeated, "inside 100.64.0.20:8080 is already mapped by the static mapping on line 17");
  expect_one_error(minimal + with(statics, "public: 198.51.100.30:80", "public: 198.51.100.30:80, via: x"), 17, 75, Code::unknown_key,
                   "unknown key 'via' in nat.static[0]; expected one of: protocol, inside, public");
}

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

TEST(GatewayConfig, ControlSectionIsParsedWithDefaults) {
  const LoadResult plain = parse(minimal);
  ASSERT_TRUE(plain.config.has_value()) << describe(plain.errors);
  EXPECT_TRUE(plain.config->control.prometheus.empty());
  EXPECT_EQ(plain.config->control.log_level, "info");
  EXPECT_FALSE(plain.config->control.ipfix.has_value());
  EXPECT_FALSE(plain.config->nat.log_sessions);

  const LoadResult r = parse(minimal + "control:\n  prometheus: 127.0.0.1:9469\n  log_level: debug\n"
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
  const GatewayConfig mtu = *parse(with(minimal, "gateway: 198.51.100.254", "gateway: 198.51.100.254\n    mtu: 1400")).config;
  const auto changes = restart_required_changes(a, mtu);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_NE(changes[0].find("'outside'"), std::string::npos);
  const GatewayConfig prom = *parse(minimal + "control: {prometheus: 127.0.0.1:9469}\n").config;
  EXPECT_EQ(restart_required_changes(a, prom).size(), 1u);
}

TEST(GatewayConfig, PassthroughEspGoodValuesAreParsed) {
  {
    const LoadResult r = parse(esp_block(
        "      enabled: false\n      idle_timeout: 86400\n      learn_window_ms: 60000\n"
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
    const LoadResult r = parse(esp_block(
        "      enabled: TRUE\n      idle_timeout: 30\n      learn_window_ms: 100\n      hold_window_ms: 100\n"
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
  expect_one_error(bad("idle_timeout: 300", "idle_timeout: 29"), 19, 21, Code::out_of_range,
                   "nat.passthrough.esp.idle_timeout: expected an integer from 30 to 86400 (seconds), got 29");
  expect_one_error(bad("idle_timeout: 300", "idle_timeout: 86401"), 19, 21, Code::out_of_range,
                   "expected an integer from 30 to 86400 (seconds), got 86401");
  expect_one_error(bad("learn_window_ms: 5000", "learn_window_ms: 99"), 20, 24, Code::out_of_range,
                   "nat.passthrough.esp.learn_window_ms: expected an integer from 100 to 60000 (milliseconds), got 99");
  expect_one_error(bad("learn_window_ms: 5000", "learn_window_ms: 60001"), 20, 24, Code::out_of_range,
                   "expected an integer from 100 to 60000 (milliseconds), got 60001");
  expect_one_error(bad("hold_window_ms: 2000", "hold_window_ms: 99"), 21, 23, Code::out_of_range,
                   "nat.passthrough.esp.hold_window_ms: expected an integer from 100 to 60000 (milliseconds), got 99");
  expect_one_error(bad("hold_window_ms: 2000", "hold_window_ms: 60001"), 21, 23, Code::out_of_range,
                   "expected an integer from 100 to 60000 (milliseconds), got 60001");
  expect_one_error(bad("hold_packets: 64", "hold_packets: 0"), 22, 21, Code::out_of_range,
                   "nat.passthrough.esp.hold_packets: expected an integer from 1 to 65536");
  expect_one_error(bad("hold_packets: 64", "hold_packets: 65537"), 22, 21, Code::out_of_range, "got 65537");
  expect_one_error(bad("max_sas: 65536", "max_sas: 0"), 23, 16, Code::out_of_range,
                   "nat.passthrough.esp.max_sas: expected an integer from 1 to 16777216");
  expect_one_error(bad("max_sas: 65536", "max_sas: 16777217"), 23, 16, Code::out_of_range, "got 16777217");
  expect_one_error(bad("max_sas: 65536", "max_sas: -1"), 23, 16, Code::not_a_number, "got '-1'");
  expect_one_error(bad("idle_timeout: 300", "idle_timeout: 5m"), 19, 21, Code::not_a_number, "got '5m'");
  // Out-of-range learn_window_ms is not compared with hold_window_ms as well.
  expect_one_error(bad("learn_window_ms: 5000", "learn_window_ms: 50"), 20, 24, Code::out_of_range, "got 50");
}

TEST(GatewayConfig, PassthroughEspEnabledIsARealBoolean) {
  const auto bad = [](const std::string& value) {
    return esp_block(with(esp_fields, "enabled: true", "enabled: " + value));
  };
  expect_one_error(bad("yes"), 18, 16, Code::not_a_boolean, "nat.passthrough.esp.enabled: expected true or false, got 'yes'");
  expect_one_error(bad("off"), 18, 16, Code::not_a_boolean, "expected true or false, got 'off'");
  expect_one_error(bad("1"), 18, 16, Code::not_a_boolean, "expected true or false, got '1'");
  expect_one_error(bad("\"true\""), 18, 16, Code::not_a_boolean, "expected true or false, got the quoted string 'true'");
  expect_one_error(bad("'false'"), 18, 16, Code::not_a_boolean, "expected true or false, got the quoted string 'false'");
  expect_one_error(bad("!!str true"), 18, 16, Code::not_a_boolean, "expected true or false");
  expect_one_error(bad("[true]"), 18, 16, Code::wrong_type, "expected true or false, got a list");
  // An empty value is reported at its key.
  expect_one_error(esp_block(with(esp_fields, "enabled: true", "enabled:")), 18, 7, Code::wrong_type,
                   "expected true or false, got nothing");
}

TEST(GatewayConfig, PassthroughHoldWindowMayNotExceedLearnWindow) {
  expect_one_error(esp_block(with(esp_fields, "learn_window_ms: 5000", "learn_window_ms: 1000")), 21, 23, Code::conflict,
                   "nat.passthrough.esp.hold_window_ms: 2000 ms exceeds learn_window_ms 1000 ms; "
                   "expected at most 1000");
  // Against the default learn_window_ms (5000).
  expect_one_error(esp_block("      hold_window_ms: 6000\n"), 18, 23, Code::conflict,
                   "6000 ms exceeds learn_window_ms 5000 ms (the default); expected at most 5000");
  // hold_window_ms left at its default (2000): reported at learn_window_ms.
  expect_one_error(esp_block("      learn_window_ms: 1500\n"), 18, 24, Code::conflict,
                   "1500 ms is below hold_window_ms 2000 ms (the default); expected at least 2000");
}

TEST(GatewayConfig, PassthroughUnknownKeysListTheAllowedOnes) {
  expect_one_error(minimal + "  passthrough:\n    sstp: {enabled: true}\n", 17, 5, Code::unknown_key,
                   "unknown key 'sstp' in nat.passthrough; expected one of: esp, pptp, ike, l2tp, gre");
  expect_one_error(esp_block(with(esp_fields, "\n      max_sas: 65536\n", "\n      max_sa: 65536\n")), 23, 7, Code::unknown_key,
                   "unknown key 'max_sa' in nat.passthrough.esp; expected one of: enabled, idle_timeout, "
                   "learn_window_ms, hold_window_ms, hold_packets, max_sas");
  expect_one_error(minimal + "  passthrough: esp\n", 16, 16, Code::wrong_type,
                   "nat.passthrough: expected a mapping with the keys esp, pptp, ike, l2tp, gre, got 'esp'");
  expect_one_error(minimal + "  passthrough:\n    esp: true\n", 17, 10, Code::wrong_type,
                   "nat.passthrough.esp: expected a mapping with the keys enabled, idle_timeout");
  expect_one_error(minimal + "  passthrough:\n    esp: {}\n    esp: {}\n", 18, 5, Code::duplicate_key,
                   "duplicate key 'esp' in nat.passthrough; first given on line 17");
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
    const LoadResult r = parse(pptp_block("      enabled: false\n      max_calls: 4194304\n"
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
    const LoadResult r =
        parse(minimal + "  passthrough: {esp: {enabled: false}, pptp: {max_calls: 100}}\n");
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
  expect_one_error(bad("max_calls: 16384", "max_calls: 0"), 19, 18, Code::out_of_range,
                   "nat.passthrough.pptp.max_calls: expected an integer from 1 to 4194304 (calls tracked at once), "
                   "got 0");
  expect_one_error(bad("max_calls: 16384", "max_calls: 4194305"), 19, 18, Code::out_of_range, "got 4194305");
  expect_one_error(bad("max_calls: 16384", "max_calls: -5"), 19, 18, Code::not_a_number, "got '-5'");
  expect_one_error(bad("max_calls: 16384", "max_calls: 16k"), 19, 18, Code::not_a_number, "got '16k'");
  expect_one_error(bad("call_idle_timeout: 7440", "call_idle_timeout: 59"), 20, 26, Code::out_of_range,
                   "nat.passthrough.pptp.call_idle_timeout: expected an integer from 60 to 604800 (seconds), got 59");
  expect_one_error(bad("call_idle_timeout: 7440", "call_idle_timeout: 604801"), 20, 26, Code::out_of_range, "got 604801");
  expect_one_error(bad("call_idle_timeout: 7440", "call_idle_timeout: 2h"), 20, 26, Code::not_a_number, "got '2h'");
  expect_one_error(bad("call_idle_timeout: 7440", "call_idle_timeout: [7440]"), 20, 26, Code::wrong_type, "got a list");
  expect_one_error(pptp_block(pptp_fields + "      max_calls_per_subscriber: 0\n"), 21, 33, Code::out_of_range,
                   "nat.passthrough.pptp.max_calls_per_subscriber: expected an integer from 1 to 65535 (calls of one "
                   "subscriber at once), got 0");
  expect_one_error(pptp_block(pptp_fields + "      max_calls_per_subscriber: 65536\n"), 21, 33, Code::out_of_range, "got 65536");
  expect_one_error(bad("enabled: true", "enabled: yes"), 18, 16, Code::not_a_boolean,
                   "nat.passthrough.pptp.enabled: expected true or false, got 'yes' (a YAML 1.1 spelling");
  expect_one_error(bad("enabled: true", "enabled: \"false\""), 18, 16, Code::not_a_boolean, "got the quoted string 'false'");
  // An empty value is reported at its key.
  expect_one_error(bad("max_calls: 16384", "max_calls:"), 19, 7, Code::wrong_type, "max_calls: expected an integer from 1 to 4194304");
}

TEST(GatewayConfig, PassthroughPptpUnknownKeysAndShape) {
  expect_one_error(pptp_block(with(pptp_fields, "max_calls:", "max_call:")), 19, 7, Code::unknown_key,
                   "unknown key 'max_call' in nat.passthrough.pptp; expected one of: enabled, max_calls, "
                   "call_idle_timeout, max_calls_per_subscriber");
  expect_one_error(pptp_block(pptp_fields + "      idle_timeout: 300\n"), 21, 7, Code::unknown_key,
                   "unknown key 'idle_timeout' in nat.passthrough.pptp; expected one of: enabled, max_calls, "
                   "call_idle_timeout, max_calls_per_subscriber");
  expect_one_error(minimal + "  passthrough:\n    pptp: true\n", 17, 11, Code::wrong_type,
                   "nat.passthrough.pptp: expected a mapping with the keys enabled, max_calls, call_idle_timeout, "
                   "max_calls_per_subscriber, got 'true'");
  expect_one_error(minimal + "  passthrough:\n    pptp: {}\n    pptp: {max_calls: 1}\n", 18, 5, Code::duplicate_key,
                   "duplicate key 'pptp' in nat.passthrough; first given on line 17");
  // GRE has no key of its own: PPTP's GRE follows nat.passthrough.pptp.
  expect_one_error(minimal + "  passthrough:\n    sstp: {}\n", 17, 5, Code::unknown_key,
                   "unknown key 'sstp' in nat.passthrough; expected one of: esp, pptp, ike, l2tp, gre");
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
    const LoadResult r = parse(with(minimal, "198.51.100.10-198.51.100.13", "198.51.100.13-198.51.100.10") +
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
    const LoadResult r = parse(minimal + "  passthrough:\n    ike:\n      preserve_port: false\n      timeout: 120\n"
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
    expect_one_error(bad("119"), 19, 16, Code::out_of_range,
                     key + "119 is below the minimum of 120 s (RFC 4787 REQ-5); expected an integer from 120 to "
                           "86400 (seconds)");
    expect_one_error(bad("0"), 19, 16, Code::out_of_range, key + "0 is below the minimum of 120 s (RFC 4787 REQ-5)");
    expect_one_error(bad("86401"), 19, 16, Code::out_of_range, key + "expected an integer from 120 to 86400 (seconds), got 86401");
    expect_one_error(bad("604800"), 19, 16, Code::out_of_range, "got 604800");  // a week is fine for nat.timeouts.udp, not here
    expect_one_error(bad("-300"), 19, 16, Code::not_a_number, key + "expected an integer from 120 to 86400 (seconds), got '-300'");
    expect_one_error(bad("5m"), 19, 16, Code::not_a_number, "got '5m'");
    expect_one_error(bad("300s"), 19, 16, Code::not_a_number, "got '300s'");
    expect_one_error(bad("0x12c"), 19, 16, Code::not_a_number, "got '0x12c'");
    expect_one_error(bad("3e2"), 19, 16, Code::not_a_number, "got '3e2'");
    expect_one_error(bad("[300]"), 19, 16, Code::wrong_type, "got a list");
    expect_one_error(bad("{s: 300}"), 19, 16, Code::wrong_type, "got a mapping");
    // An empty value is reported at its key.
    expect_one_error(udp_block(protocol, with(udp_fields, "timeout: 300", "timeout:")), 19, 7, Code::wrong_type,
                     key + "expected an integer from 120 to 86400 (seconds), got nothing");
  }
}

TEST(GatewayConfig, PassthroughIkeAndL2tpPreservePortIsARealBoolean) {
  for (const std::string protocol : {"ike", "l2tp"}) {
    SCOPED_TRACE(protocol);
    const auto bad = [&](const std::string& value) {
      return udp_block(protocol, with(udp_fields, "preserve_port: true", "preserve_port: " + value));
    };
    const std::string key = "nat.passthrough." + protocol + ".preserve_port: ";
    expect_one_error(bad("yes"), 18, 22, Code::not_a_boolean,
                     key + "expected true or false, got 'yes' (a YAML 1.1 spelling, not a boolean here)");
    expect_one_error(bad("off"), 18, 22, Code::not_a_boolean, "expected true or false, got 'off' (a YAML 1.1 spelling");
    expect_one_error(bad("On"), 18, 22, Code::not_a_boolean, "expected true or false, got 'On' (a YAML 1.1 spelling");
    expect_one_error(bad("1"), 18, 22, Code::not_a_boolean, key + "expected true or false, got '1'");
    expect_one_error(bad("\"true\""), 18, 22, Code::not_a_boolean, "expected true or false, got the quoted string 'true'");
    expect_one_error(bad("'false'"), 18, 22, Code::not_a_boolean, "expected true or false, got the quoted string 'false'");
    expect_one_error(bad("!!str true"), 18, 22, Code::not_a_boolean, "expected true or false");
    expect_one_error(bad("[true]"), 18, 22, Code::wrong_type, "expected true or false, got a list");
    expect_one_error(udp_block(protocol, with(udp_fields, "preserve_port: true", "preserve_port:")), 18, 7, Code::wrong_type,
                     key + "expected true or false, got nothing");
  }
}

TEST(GatewayConfig, PassthroughIkeAndL2tpUnknownKeysAndShape) {
  for (const std::string protocol : {"ike", "l2tp"}) {
    SCOPED_TRACE(protocol);
    const std::string where = "nat.passthrough." + protocol;
    expect_one_error(udp_block(protocol, with(udp_fields, "preserve_port:", "preserve_ports:")), 18, 7, Code::unknown_key,
                     "unknown key 'preserve_ports' in " + where + "; expected one of: preserve_port, timeout");
    // The ports are fixed (500 and 4500, 1701); there is no enabled switch.
    expect_one_error(udp_block(protocol, udp_fields + "      port: 1701\n"), 20, 7, Code::unknown_key,
                     "unknown key 'port' in " + where + "; expected one of: preserve_port, timeout");
    expect_one_error(udp_block(protocol, udp_fields + "      enabled: true\n"), 20, 7, Code::unknown_key,
                     "unknown key 'enabled' in " + where);
    expect_one_error(udp_block(protocol, "      idle_timeout: 300\n"), 18, 7, Code::unknown_key,
                     "unknown key 'idle_timeout' in " + where);
    expect_one_error(udp_block(protocol, udp_fields + "      timeout: 600\n"), 20, 7, Code::duplicate_key,
                     "duplicate key 'timeout' in " + where + "; first given on line 19");
    const int value_column = 4 + static_cast<int>(protocol.size()) + 3;
    expect_one_error(minimal + "  passthrough:\n    " + protocol + ": true\n", 17, value_column, Code::wrong_type,
                     where + ": expected a mapping with the keys preserve_port, timeout, got 'true'");
    expect_one_error(minimal + "  passthrough:\n    " + protocol + ": [500, 4500]\n", 17, value_column, Code::wrong_type,
                     where + ": expected a mapping with the keys preserve_port, timeout, got a list");
    expect_one_error(minimal + "  passthrough:\n    " + protocol + ": {}\n    " + protocol + ": {timeout: 600}\n",
                     18, 5, Code::duplicate_key, "duplicate key '" + protocol + "' in nat.passthrough; first given on line 17");
  }
  // NAT-T has no key of its own: UDP 4500 follows nat.passthrough.ike.
  expect_one_error(minimal + "  passthrough:\n    nat_t: {timeout: 300}\n", 17, 5, Code::unknown_key,
                   "unknown key 'nat_t' in nat.passthrough; expected one of: esp, pptp, ike, l2tp, gre");
  expect_one_error(minimal + "  passthrough:\n    ikev2: {}\n", 17, 5, Code::unknown_key,
                   "unknown key 'ikev2' in nat.passthrough; expected one of: esp, pptp, ike, l2tp, gre");
}

// Every problem at once, each once: values out of range are reported where
// they stand and NatConfig::validate (which checks the same timeout range)
// adds nothing.
TEST(GatewayConfig, PassthroughIkeAndL2tpProblemsAreNotRepeatedByTheEngine) {
  {
    const LoadResult r = parse(minimal + "  passthrough:\n    ike:\n      preserve_port: yes\n      timeout: 60\n"
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

// ------------------------------------------------------------ control-plane defaults (issue 12.5)

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
  for (const char* bad : {"", ":", "0", "65536", "9469r", "9469s", "+9469", "-1", "9469,9470", "127.0.0.1:",
                          "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.01:9469", "127.0.0.1:09469x", " 127.0.0.1:9469",
                          "127.0.0.1:9469 ", "localhost:9469", "[::1]:9469", "1.2.3:9469", "256.0.0.1:9469",
                          "224.0.0.1:9469", "255.255.255.255:9469"}) {
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
  expect_one_error(minimal + "control:\n  prometheus: 127.0.0.01:9469\n", 17, 15, Code::bad_endpoint, "control.prometheus");
  expect_one_error(minimal + "control:\n  prometheus: 9469r\n", 17, 15, Code::bad_endpoint, "PORT");
  expect_one_error(minimal + "control:\n  prometheus: 224.0.0.1:9469\n", 17, 15, Code::bad_endpoint, "multicast");
  // The collectors are read as strictly (no port-only form: they are not listeners).
  expect_one_error(minimal + "control:\n  nat_events:\n    syslog: {server: 192.0.2.011:514}\n", 18, 22, Code::bad_endpoint,
                   "syslog server");
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
  expect_one_error(minimal + "control:\n  telemetry_group: no-such-group-pg12\n", 17, 20, Code::unknown_group,
                   "no group 'no-such-group-pg12'");
  expect_one_error(minimal + "control:\n  telemetry_group: [a]\n", 17, 20, Code::wrong_type, "a group name");
  // The socket's group is set at start: a reload that changes it is refused.
  const GatewayConfig a = *parse(minimal).config;
  const GatewayConfig b = *parse(minimal + "control:\n  telemetry_group: root\n").config;
  const auto changes = restart_required_changes(a, b);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_NE(changes[0].find("control.telemetry_group"), std::string::npos);
}

// RFC 6056: ports must not be predictable; a fixed seed belongs only to the
// demo (and to tests, which write their own files).
// Read as text, so that the rule holds whatever else the file gets wrong.
TEST(ControlDefaults, ExamplesCarryNoFixedSeedExceptTheDemo) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(source_dir / "conf")) {
    if (entry.path().extension() != ".yaml" || entry.path().filename() == "demo.yaml") continue;
    ++files;
    std::ifstream in(entry.path());
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      const std::size_t start = line.find_first_not_of(" \t-{");
      EXPECT_FALSE(start != std::string::npos && line.compare(start, 12, "random_seed:") == 0)
          << entry.path().string() << ":" << n << " pins nat.random_seed: " << line;
    }
  }
  EXPECT_GE(files, 2);
}

}  // namespace
}  // namespace passgate::config
