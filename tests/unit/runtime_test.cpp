// Runtime accounting (stats/runtime.hpp): the boundaries charge every cycle
// to one stage, clearing subtracts a baseline, the figures and the operator's
// table read as `show runtime` does, and the engine charges its stages.
#include <gtest/gtest.h>

#include "control/operator_commands.hpp"
#include "nat/engine.hpp"
#include "stats/runtime.hpp"
#include "support/nat_configs.hpp"
#include "support/packet_builder.hpp"

namespace passgate {
namespace {

using packet::be32;
using packet::ipv4;

using stats::Stage;

stats::StageCounter& at(std::array<stats::StageCounter, stats::stage_count>& w, Stage s) {
  return w[static_cast<unsigned>(s)];
}

TEST(Runtime, LapsChargeEveryCycleToOneStage) {
  stats::RuntimeCounters r;
  const std::uint64_t start = stats::read_cycles();
  r.start(start);
  r.lap(Stage::receive, 32);
  r.lap(Stage::classify, 32);
  r.charge_at(Stage::idle, stats::read_cycles());
  const std::uint64_t end = r.lap(Stage::transmit, 30);
  std::uint64_t sum = 0;
  for (const auto& c : r.stage) sum += c.cycles;
  EXPECT_EQ(sum, end - start);
  EXPECT_EQ(r.stage[static_cast<unsigned>(Stage::receive)].packets, 32u);
  EXPECT_EQ(r.stage[static_cast<unsigned>(Stage::transmit)].calls, 1u);
  EXPECT_EQ(r.stage[static_cast<unsigned>(Stage::idle)].calls, 0u) << "charge_at is no call";
}

TEST(Runtime, FiguresAndClearing) {
  stats::StageCounter c{6400, 2, 64};
  EXPECT_DOUBLE_EQ(stats::figures(c).clocks_per_packet, 100.0);
  EXPECT_DOUBLE_EQ(stats::figures(c).packets_per_call, 32.0);
  const stats::StageCounter idle{900, 3, 0};
  EXPECT_DOUBLE_EQ(stats::figures(idle).clocks_per_packet, 300.0) << "per call without packets";
  EXPECT_DOUBLE_EQ(stats::figures(stats::StageCounter{}).clocks_per_packet, 0.0);

  stats::RuntimeSnapshot base, now;
  base.tsc_hz = now.tsc_hz = 1'000'000'000;
  base.elapsed_cycles = 1000;
  now.elapsed_cycles = 5000;
  base.workers.resize(1);
  now.workers.resize(1);
  at(base.workers[0], Stage::receive) = {100, 1, 10};
  at(now.workers[0], Stage::receive) = {1100, 3, 74};
  at(now.workers[0], Stage::idle) = {2000, 5, 0};
  at(base.workers[0], Stage::route) = {500, 9, 9};  // larger than now: another run's; all of now counts
  at(now.workers[0], Stage::route) = {40, 1, 1};
  const stats::RuntimeSnapshot d = stats::since(now, base);
  EXPECT_EQ(d.elapsed_cycles, 4000u);
  EXPECT_EQ(at(const_cast<stats::RuntimeSnapshot&>(d).workers[0], Stage::receive).packets, 64u);
  EXPECT_EQ(d.workers[0][static_cast<unsigned>(Stage::receive)].cycles, 1000u);
  EXPECT_EQ(d.workers[0][static_cast<unsigned>(Stage::receive)].calls, 2u);
  EXPECT_EQ(d.workers[0][static_cast<unsigned>(Stage::route)].cycles, 40u);
  // Busy: receive 1000 + route 40 over 64 received packets; idle left out.
  EXPECT_DOUBLE_EQ(stats::busy_clocks_per_packet(d), 1040.0 / 64.0);
}

TEST(Runtime, OperatorTable) {
  EXPECT_EQ(control::ctl_request({"runtime"}, false).path, "/passgate/runtime");
  EXPECT_EQ(control::ctl_request({"runtime", "clear"}, false).path, "/passgate/runtime,clear");
  EXPECT_NE(control::ctl_request({"runtime", "reset"}, false).error.find("usage: passgatectl runtime [clear]"),
            std::string::npos);
  stats::RuntimeSnapshot s;
  s.tsc_hz = 2'000'000'000;
  s.elapsed_cycles = 4'000'000'000;
  s.workers.resize(1);
  at(s.workers[0], Stage::receive) = {6400, 2, 64};
  at(s.workers[0], Stage::established) = {3200, 2, 64};
  at(s.workers[0], Stage::idle) = {390400, 1000, 0};
  const std::string t = control::runtime_table(s);
  EXPECT_NE(t.find("time 2.000 s, cycle counter 2.000 GHz, 1 worker(s), 150.0 clocks/packet"), std::string::npos) << t;
  EXPECT_NE(t.find("worker 0: 150.0 clocks/packet, busy 2.4 % of 400000 cycles"), std::string::npos) << t;
  EXPECT_NE(t.find("  receive                   2               64          100.0         32.00       1.6\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("  idle                   1000                0     390.4/call          0.00      97.6\n"),
            std::string::npos)
      << t;
  EXPECT_EQ(t.find("transmit"), std::string::npos) << "stages that never ran are left out";
}

// The engine's stages: a new flow is `create`, its next packets
// `established`, ESP `passthrough`, every packet `lookup` once.
TEST(Runtime, EngineChargesItsStages) {
  std::vector<std::string> errors;
  auto engine = nat::Engine::create(testing::one_address_config(ipv4(198, 51, 100, 10)), &errors);
  ASSERT_TRUE(engine) << (errors.empty() ? "" : errors.front());
  stats::RuntimeCounters r;
  r.start(stats::read_cycles());
  engine->set_runtime(&r);
  const be32 sub = ipv4(100, 64, 0, 10), server = ipv4(203, 0, 113, 7);
  testing::Bytes a = testing::udp_packet({sub, server}, 40000, 53), b = a, c = a;
  testing::Bytes esp = testing::esp_packet({sub, server}, 0x1234, 1);
  nat::PacketRef refs[] = {{a, {}}, {b, {}}, {c, {}}, {esp, {}}};
  engine->process_burst(nat::Direction::outbound, refs, 1000);
  const auto& st = r.stage;
  EXPECT_EQ(st[static_cast<unsigned>(Stage::lookup)].packets, 4u);
  EXPECT_EQ(st[static_cast<unsigned>(Stage::lookup)].calls, 1u);
  // All three UDP packets missed at lookup time (one burst): all are `create`.
  EXPECT_EQ(st[static_cast<unsigned>(Stage::create)].packets, 3u);
  EXPECT_EQ(st[static_cast<unsigned>(Stage::create)].calls, 1u) << "one run, one boundary";
  EXPECT_EQ(st[static_cast<unsigned>(Stage::passthrough)].packets, 1u);
  testing::Bytes d = testing::udp_packet({sub, server}, 40000, 53);
  nat::PacketRef again[] = {{d, {}}};
  engine->process_burst(nat::Direction::outbound, again, 1001);
  EXPECT_EQ(st[static_cast<unsigned>(Stage::established)].packets, 1u);
  EXPECT_GT(st[static_cast<unsigned>(Stage::established)].cycles + st[static_cast<unsigned>(Stage::lookup)].cycles, 0u);
}

}  // namespace
}  // namespace passgate
