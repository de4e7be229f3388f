// Runtime accounting (issue 17.1) on the real Gateway with DPDK ring ports:
// the packets each stage counts are the packets the test sent, the stages
// cost cycles, every cycle of the loop is in some stage, and a clear starts
// the count again without touching the workers.
#include <gtest/gtest.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <fmt/format.h>

#include <chrono>
#include <thread>

#include "config/gateway_config.hpp"
#include "dataplane/gateway.hpp"
#include "ring_harness.hpp"
#include "stats/runtime.hpp"
#include "support/packet_builder.hpp"

namespace passgate {
namespace {

using namespace passgate::testing;
using stats::Stage;

constexpr std::uint8_t inside_mac[6] = {0x02, 0, 0, 0, 0x10, 0x01};
constexpr std::uint8_t outside_mac[6] = {0x02, 0, 0, 0, 0x10, 0x02};
const be32 subscriber = ipv4(100, 64, 0, 10);
const be32 server = ipv4(203, 0, 113, 9);

class Harness {
 public:
  Harness() {
    in_ = std::make_unique<RingPort>("rtin", 1, 1, 1024, RING_F_SC_DEQ);
    out_ = std::make_unique<RingPort>("rtout", 1, 1, 1024, RING_F_SC_DEQ);
    const std::string yaml = fmt::format(R"(dataplane:
  workers: [1]
  mbuf_cache: 32
  burst: 32
ports:
{}{})",
                                         ports_yaml({.inside_device = in_->name, .outside_device = out_->name,
                                                     .macs = true, .inside_neighbours = peer_neighbour(subscriber)}),
                                         nat_pool_yaml);
    auto loaded = config::parse_gateway_config(yaml, "test.yaml");
    EXPECT_TRUE(loaded.config.has_value()) << (loaded.errors.empty() ? "" : config::to_string(loaded.errors[0]));
    if (!loaded.config) return;
    std::string error;
    gateway_ = dataplane::Gateway::create(*loaded.config, &error);
    EXPECT_TRUE(gateway_) << error;
    if (gateway_) {
      EXPECT_TRUE(gateway_->start(&error)) << error;
    }
    pool_ = rte_mempool_lookup("passgate_mbufs");
  }
  ~Harness() {
    if (gateway_) gateway_->stop();
    gateway_.reset();
    for (RingPort* p : {in_.get(), out_.get()})
      for (auto* r : p->tx) free_frames(r);
  }
  [[nodiscard]] bool ok() const { return gateway_ && pool_; }
  dataplane::Gateway& gateway() { return *gateway_; }

  // `count` UDP packets of `flows` flows from the subscriber, in one go.
  void send_inside(unsigned count, unsigned flows) {
    for (unsigned i = 0; i < count; ++i) {
      rte_mbuf* m = rte_pktmbuf_alloc(pool_);
      ASSERT_NE(m, nullptr);
      put_frame(m, inside_mac, udp_packet({subscriber, server}, static_cast<std::uint16_t>(40000 + i % flows), 53));
      ASSERT_EQ(rte_ring_enqueue(in_->rx[0], m), 0);
    }
  }
  // Waits until `count` IPv4 packets left the outside port.
  unsigned wait_outside(unsigned count) {
    unsigned got = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got < count && std::chrono::steady_clock::now() < deadline) {
      take_frames(out_->tx[0], [&](const Bytes&) { ++got; });
      if (got < count) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return got;
  }

 private:
  std::unique_ptr<RingPort> in_, out_;
  std::unique_ptr<dataplane::Gateway> gateway_;
  rte_mempool* pool_ = nullptr;
};

const stats::StageCounter& at(const stats::RuntimeSnapshot& s, Stage st) {
  return s.workers.at(0)[static_cast<unsigned>(st)];
}

TEST(Runtime, StagesCountWhatWasSentAndClearStartsAgain) {
  Harness h;
  ASSERT_TRUE(h.ok());
  constexpr unsigned first = 200, flows = 10;
  h.send_inside(first, flows);
  ASSERT_EQ(h.wait_outside(first), first);
  // The worker counts a burst's transmit before the test can see it, and
  // reads nothing else: the counts are final once the frames are out.
  const stats::RuntimeSnapshot a = h.gateway().runtime();
  ASSERT_EQ(a.workers.size(), 1u);
  EXPECT_GT(a.tsc_hz, 0u);
  EXPECT_EQ(at(a, Stage::receive).packets, first);
  EXPECT_EQ(at(a, Stage::classify).packets, first);
  EXPECT_EQ(at(a, Stage::lookup).packets, first);
  // Each flow's first packet creates its session; a packet of the flow in the
  // same burst missed at lookup too and goes the creation path.
  EXPECT_EQ(at(a, Stage::established).packets + at(a, Stage::create).packets, first);
  EXPECT_GE(at(a, Stage::create).packets, flows);
  EXPECT_GT(at(a, Stage::established).packets, 0u);
  EXPECT_EQ(at(a, Stage::passthrough).packets, 0u);
  EXPECT_EQ(at(a, Stage::route).packets, first);
  EXPECT_EQ(at(a, Stage::transmit).packets, first);
  EXPECT_GE(at(a, Stage::receive).calls, first / 32);  // bursts of at most 32
  for (Stage st : {Stage::receive, Stage::classify, Stage::lookup, Stage::established, Stage::create, Stage::route,
                   Stage::transmit, Stage::idle, Stage::loop})
    EXPECT_GT(at(a, st).cycles, 0u) << stats::stage_name(st);
  // Every cycle since the worker started is in one stage (up to the moment
  // between the worker's last boundary and the snapshot).
  std::uint64_t sum = 0;
  for (const auto& c : a.workers[0]) sum += c.cycles;
  EXPECT_LE(sum, a.elapsed_cycles);
  EXPECT_GT(sum, a.elapsed_cycles - a.elapsed_cycles / 10) << "sum " << sum << " elapsed " << a.elapsed_cycles;
  EXPECT_GT(stats::busy_clocks_per_packet(a), 0.0);

  // Clear: a baseline; the raw counters go on.
  h.gateway().clear_runtime();
  const stats::RuntimeSnapshot cleared = h.gateway().runtime();
  EXPECT_EQ(at(cleared, Stage::receive).packets, 0u);
  EXPECT_EQ(at(cleared, Stage::transmit).packets, 0u);
  EXPECT_LT(cleared.elapsed_cycles, a.elapsed_cycles);
  constexpr unsigned second = 64;
  h.send_inside(second, flows);  // the same flows: established now
  ASSERT_EQ(h.wait_outside(second), second);
  const stats::RuntimeSnapshot b = h.gateway().runtime();
  EXPECT_EQ(at(b, Stage::receive).packets, second);
  EXPECT_EQ(at(b, Stage::established).packets, second);
  EXPECT_EQ(at(b, Stage::create).packets, 0u);
  EXPECT_EQ(at(b, Stage::transmit).packets, second);
  const stats::RuntimeSnapshot raw = h.gateway().runtime(false);
  EXPECT_EQ(at(raw, Stage::receive).packets, first + second);
  EXPECT_EQ(h.gateway().snapshot().runtime.workers.size(), 1u) << "the snapshot carries it for Prometheus";
}

}  // namespace
}  // namespace passgate

int main(int argc, char** argv) { return passgate::testing::run_ring_port_tests(argc, argv, "runtime", 2, "pgrt"); }
