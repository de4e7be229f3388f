// passgate-sim: runs the real NAT engine over a generated day in the life of
// a few subscribers, without DPDK or a NIC. Subscribers send UDP, TCP (full
// handshake, data, close) and ping to servers on the "internet"; a server
// model answers every translated packet; one subscriber reaches another
// through its public mapping (hairpinning); a router returns an ICMP error;
// a scanner probes closed public ports. Every packet is written to
// inside.pcap or outside.pcap so an independent tool (tshark) can check the
// result, and the run fails if any answer did not reach the subscriber that
// asked, or any translated packet has a bad checksum.
#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <iostream>
#include <filesystem>
#include <map>
#include <vector>

#include "nat/engine.hpp"
#include "packet/headers.hpp"
#include "support/packet_builder.hpp"
#include "support/pcap_writer.hpp"
#include "cli.hpp"

namespace po = boost::program_options;
using namespace passgate;
using namespace passgate::nat;
using testing::Bytes;
using testing::ipv4;
namespace flag = packet::tcp_flag;

namespace {

struct Sim {
  std::unique_ptr<Engine> engine;
  testing::PcapWriter inside, outside;
  std::uint64_t now_ms = 1'000;
  unsigned delivered = 0, expected = 0, bad_checksums = 0, misdelivered = 0;

  Sim(std::unique_ptr<Engine> e, const std::string& dir)
      : engine(std::move(e)), inside(dir + "/inside.pcap"), outside(dir + "/outside.pcap") {}

  // Sends a packet from the inside; returns it as translated (empty if dropped).
  Bytes from_inside(Bytes p) {
    inside.write_ipv4(p, now_ms * 1000);
    const Result r = engine->process(Direction::outbound, p, now_ms);
    now_ms += 3;
    if (r.verdict == Verdict::drop) return {};
    check(p);
    (r.verdict == Verdict::to_outside ? outside : inside).write_ipv4(p, now_ms * 1000);
    return p;
  }
  Bytes from_outside(Bytes p) {
    outside.write_ipv4(p, now_ms * 1000);
    const Result r = engine->process(Direction::inbound, p, now_ms);
    now_ms += 3;
    if (r.verdict == Verdict::drop) return {};
    check(p);
    inside.write_ipv4(p, now_ms * 1000);
    return p;
  }
  void check(const Bytes& p) {
    if (!testing::checksum_problems(p).empty()) ++bad_checksums;
  }
  // The server's answer to a translated packet must come back to (addr, port).
  void expect_delivery(const Bytes& got, be32 addr, std::uint16_t port) {
    ++expected;
    if (got.empty()) return;
    if (testing::ip_dst(got) == addr && testing::l4_dport(got) == port) ++delivered;
    else ++misdelivered;
  }
};

Bytes answer_udp(const Bytes& sent) {
  return testing::udp_packet({testing::ip_dst(sent), testing::ip_src(sent)}, testing::l4_dport(sent),
                             testing::l4_sport(sent), Bytes(48, 0x77));
}
Bytes answer_tcp(const Bytes& sent, std::uint8_t flags) {
  return testing::tcp_packet({testing::ip_dst(sent), testing::ip_src(sent)}, testing::l4_dport(sent),
                             testing::l4_sport(sent), flags, Bytes(flags & flag::syn ? 0 : 32, 0x55));
}

}  // namespace

int main(int argc, char** argv) {
  unsigned subscribers = 8, flows = 4;
  std::string out_dir = ".";
  std::uint64_t seed = 2026;
  cli::CommandLine cli({"passgate-sim",
                        "passgate-sim: the NAT engine on generated subscriber traffic\n\n"
                        "Usage: passgate-sim [options]",
                        "", ""});
  cli.add_options()(
      "subscribers", po::value(&subscribers)->default_value(subscribers), "subscribers behind the NAT (2..200)")(
      "flows", po::value(&flows)->default_value(flows), "UDP and TCP flows per subscriber (1..1000)")(
      "out-dir", po::value(&out_dir)->default_value(out_dir), "where inside.pcap and outside.pcap are written")(
      "seed", po::value(&seed)->default_value(seed), "random seed (port choice, hashing)");
  if (const auto status = cli.parse(argc, argv)) return *status;
  if (subscribers < 2 || subscribers > 200 || flows < 1 || flows > 1000)
    return cli.usage_error("--subscribers must be 2..200 and --flows 1..1000");
  std::filesystem::create_directories(out_dir);

  NatConfig config;
  PoolConfig pool;
  pool.name = "demo";
  pool.subscribers.push_back({ipv4(100, 64, 0, 0), 10});
  pool.public_addresses.push_back({ipv4(198, 51, 100, 1), ipv4(198, 51, 100, 2)});
  pool.public_addresses.push_back({ipv4(198, 51, 100, 17), ipv4(198, 51, 100, 17)});
  pool.block_size = 256;
  config.pools.push_back(pool);
  config.max_sessions = 1 << 16;
  config.max_subscribers = 1024;
  config.random_seed = seed;
  std::vector<std::string> errors;
  auto engine = Engine::create(config, &errors);
  if (!engine) {
    for (const auto& e : errors) fmt::print(stderr, "passgate-sim: {}\n", e);
    return cli::exit_failure;
  }
  Sim sim(std::move(engine), out_dir);
  if (!sim.inside.ok() || !sim.outside.ok()) return cli.failure(fmt::format("cannot write pcaps in {}", out_dir));

  auto subscriber = [](unsigned i) { return be32::from_host(ipv4(100, 64, 0, 10).host() + i); };
  auto server = [](unsigned f) { return be32::from_host(ipv4(203, 0, 113, 10).host() + f % 5); };

  for (unsigned i = 0; i < subscribers; ++i) {
    const be32 sub = subscriber(i);
    for (unsigned f = 0; f < flows; ++f) {
      const std::uint16_t port = static_cast<std::uint16_t>(40000 + f);
      // UDP request and answer.
      Bytes q = sim.from_inside(testing::udp_packet({sub, server(f)}, port, 9000, Bytes(32, 0x11)));
      if (!q.empty()) sim.expect_delivery(sim.from_outside(answer_udp(q)), sub, port);
      else ++sim.expected;
      // TCP: handshake, data each way, close from the subscriber.
      const std::uint16_t tport = static_cast<std::uint16_t>(50000 + f);
      Bytes syn = sim.from_inside(testing::tcp_packet({sub, server(f)}, tport, 443, flag::syn, Bytes()));
      if (syn.empty()) {
        ++sim.expected;
        continue;
      }
      sim.expect_delivery(sim.from_outside(answer_tcp(syn, flag::syn | flag::ack)), sub, tport);
      Bytes data = sim.from_inside(testing::tcp_packet({sub, server(f)}, tport, 443, flag::ack | 0x08, Bytes(64, 0x33)));
      sim.expect_delivery(sim.from_outside(answer_tcp(data, flag::ack | 0x08)), sub, tport);
      Bytes fin = sim.from_inside(testing::tcp_packet({sub, server(f)}, tport, 443, flag::fin | flag::ack, Bytes()));
      sim.expect_delivery(sim.from_outside(answer_tcp(fin, flag::fin | flag::ack)), sub, tport);
    }
    // Ping.
    Bytes ping = sim.from_inside(testing::icmp_echo({sub, server(i)}, packet::icmp_type::echo_request,
                                                    static_cast<std::uint16_t>(0x100 + i), 1));
    if (!ping.empty()) {
      Bytes pong = testing::icmp_echo({testing::ip_dst(ping), testing::ip_src(ping)}, packet::icmp_type::echo_reply,
                                      testing::l4_sport(ping), 1);
      Bytes back = sim.from_outside(pong);
      ++sim.expected;
      if (!back.empty() && testing::ip_dst(back) == sub && testing::l4_sport(back) == 0x100 + i) ++sim.delivered;
    }
  }

  // Hairpinning: subscriber 0 sends to subscriber 1's public UDP mapping.
  const Mapping* m1 = sim.engine->find_mapping(Proto::udp, subscriber(1), be16::from_host(40000));
  if (m1) {
    Bytes hp = sim.from_inside(
        testing::udp_packet({subscriber(0), m1->out_addr}, 41000, m1->out_port.host(), Bytes(20, 0x44)));
    sim.expect_delivery(hp, subscriber(1), 40000);
  }
  // A router on the way answers one flow with "TTL exceeded".
  Bytes probe = sim.from_inside(testing::udp_packet({subscriber(0), server(0)}, 40000, 33434, Bytes(12, 0x01)));
  if (!probe.empty()) {
    Bytes err = testing::icmp_error({ipv4(192, 0, 2, 254), testing::ip_src(probe)}, packet::icmp_type::time_exceeded, 0,
                                    probe);
    Bytes back = sim.from_outside(err);
    ++sim.expected;
    if (!back.empty() && testing::ip_dst(back) == subscriber(0)) ++sim.delivered;
  }
  // A scanner probes public ports: no mapping, dropped and counted.
  for (std::uint16_t p = 1024; p < 1024 + 16; ++p)
    sim.from_outside(testing::udp_packet({ipv4(192, 0, 2, 66), ipv4(198, 51, 100, 1)}, 6666, p, Bytes(8, 0)));

  // Report.
  const stats::NatCounters& c = sim.engine->counters();
  fmt::print("passgate-sim: {} subscribers x {} flows through the NAT44 engine\n", subscribers, flows);
  fmt::print("  subscriber -> public address (paired pooling)\n");
  for (unsigned i = 0; i < std::min(subscribers, 8u); ++i)
    fmt::print("    {:<15} -> {}\n", to_string(subscriber(i)), to_string(sim.engine->subscriber_public_address(subscriber(i))));
  if (subscribers > 8) fmt::print("    ... and {} more\n", subscribers - 8);
  fmt::print("  sessions {}  mappings {}  subscribers {}  port blocks {}\n", sim.engine->active_sessions(),
             sim.engine->active_mappings(), sim.engine->active_subscribers(), sim.engine->blocks_in_use());
  fmt::print("  counters:\n");
  for (unsigned k = 0; k < stats::nat_counter_count; ++k)
    if (c.counter[k]) fmt::print("    {:<28} {}\n", stats::nat_counter_name(static_cast<stats::NatCounter>(k)), c.counter[k]);
  fmt::print("  drops:\n");
  for (unsigned k = 1; k < stats::drop_reason_count; ++k)
    if (c.drop[k]) fmt::print("    {:<28} {}\n", stats::drop_reason_name(static_cast<stats::DropReason>(k)), c.drop[k]);
  NatEvent ev{};
  unsigned events = 0;
  while (sim.engine->events().pop(ev)) {
    if (events++ < 4)
      fmt::print("  event {} subscriber {} public {} ports {}-{}\n", to_string(ev.type), to_string(ev.subscriber),
                 to_string(ev.public_address), ev.port_first, ev.port_last);
  }
  if (events > 4) fmt::print("  ... {} port-block events in all\n", events);
  fmt::print("  answers delivered to the right subscriber: {}/{}; misdelivered {}; bad checksums {}\n", sim.delivered,
             sim.expected, sim.misdelivered, sim.bad_checksums);
  fmt::print("  wrote {}/inside.pcap ({} packets) and {}/outside.pcap ({} packets)\n", out_dir, sim.inside.packets(),
             out_dir, sim.outside.packets());
  const bool ok = sim.delivered == sim.expected && sim.misdelivered == 0 && sim.bad_checksums == 0;
  fmt::print("passgate-sim: {}\n", ok ? "OK" : "FAILED");
  return ok ? cli::exit_ok : cli::exit_failure;
}
