// Whole files: the examples in conf/ load with the values they show, every
// broken file in tests/conf-bad/ fails with exactly the errors its
// `# expect: line:column text` header lists, errors come all at once and in
// order, and an unreadable file is one error without a position.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/gateway_config.hpp"
#include "config_test_support.hpp"
#include "nat/nat_config.hpp"
#include "packet/byte_order.hpp"
#include "packet/headers.hpp"

namespace passgate::config::testing {
namespace {

using packet::ipv4;
namespace fs = std::filesystem;

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
  EXPECT_EQ(r.errors[0].code, Code::out_of_range);
  EXPECT_EQ(r.errors[1].code, Code::out_of_range);
  EXPECT_EQ(r.errors[2].code, Code::unknown_key);
}

TEST(GatewayConfig, ErrorsAreSortedByPosition) {
  std::string yaml = with(minimal, "public: [198.51.100.10-198.51.100.13]", "public: [300.1.1.1]");
  yaml = with(yaml, "    role: inside\n", "    role: inside\n    vlan: 5000\n");
  const LoadResult r = parse(yaml);
  ASSERT_EQ(r.errors.size(), 2u) << describe(r.errors);
  EXPECT_LT(r.errors[0].line, r.errors[1].line);
}

TEST(GatewayConfig, ToStringForms) {
  EXPECT_EQ(to_string(ConfigError{"a.yaml", 12, 7, "unknown key 'x'"}), "a.yaml:12:7: error: unknown key 'x'");
  EXPECT_EQ(to_string(ConfigError{"a.yaml", 0, 0, "cannot read"}), "a.yaml: error: cannot read");
  EXPECT_EQ(to_string(MacAddress{{0x02, 0x00, 0x00, 0xab, 0x0c, 0x10}}), "02:00:00:ab:0c:10");
  EXPECT_STREQ(to_string(Code::unknown_key), "unknown_key");
  EXPECT_STREQ(to_string(Code::engine_check), "engine_check");
}

TEST(GatewayConfig, UnreadableFileIsOneErrorWithoutPosition) {
  const LoadResult r = load_gateway_config("/nonexistent/passgate.yaml");
  EXPECT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 0);
  EXPECT_EQ(r.errors[0].file, "/nonexistent/passgate.yaml");
  EXPECT_NE(r.errors[0].message.find("No such file"), std::string::npos) << r.errors[0].message;
  EXPECT_EQ(r.errors[0].code, Code::unreadable_file);
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
}  // namespace passgate::config::testing
