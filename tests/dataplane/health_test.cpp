// The health monitor (issue 15) on the real Gateway, ring ports and BIRD 2
// itself: what it sees (a port's link, a worker that stops running its loop,
// a pool that fills, the operator's drain) and what it makes BIRD do with
// the box's announcing protocols, with the hold-down before announcing
// again. BIRD's own state (birdc show protocols) is the judge.
#include <gtest/gtest.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <fmt/format.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "config/gateway_config.hpp"
#include "control/health_monitor.hpp"
#include "control/log.hpp"
#include "dataplane/gateway.hpp"
#include "ring_harness.hpp"
#include "support/daemons.hpp"
#include "support/packet_builder.hpp"

namespace passgate {
namespace {

using namespace passgate::testing;
using namespace passgate::integration;
using stats::Announcement;
using stats::HealthReason;

// One public address with one port block: the first subscriber exhausts it.
const std::string nat_one_block = R"(nat:
  random_seed: 2026
  pools:
    - name: tiny
      subscribers: [100.64.0.0/24]
      public: [198.51.100.10]
      ports: 1024-65535
      block_size: 32768
      max_blocks_per_subscriber: 1
)";

class Box {
 public:
  explicit Box(const std::string& tag) {
    in_ = std::make_unique<RingPort>("hin_" + tag, 1, 1, 256, RING_F_SC_DEQ);
    out_ = std::make_unique<RingPort>("hout_" + tag, 1, 1, 256, RING_F_SC_DEQ);
    const std::string yaml =
        "dataplane:\n  workers: [1]\nports:\n" +
        ports_yaml({.inside_device = in_->name, .outside_device = out_->name}) + nat_one_block;
    auto loaded = config::parse_gateway_config(yaml, "test.yaml");
    EXPECT_TRUE(loaded.config.has_value()) << (loaded.errors.empty() ? "" : config::to_string(loaded.errors[0]));
    if (!loaded.config) return;
    gateway_ = dataplane::Gateway::create(*loaded.config, &error_);
    if (gateway_ && !gateway_->start(&error_)) gateway_.reset();
    EXPECT_TRUE(gateway_) << error_;
    rte_ether_addr mac;
    rte_eth_macaddr_get(in_->id, &mac);
    std::memcpy(in_mac_, mac.addr_bytes, 6);
  }
  ~Box() {
    if (gateway_) gateway_->stop();
    for (RingPort* p : {in_.get(), out_.get()}) {
      free_frames(p->rx[0]);
      free_frames(p->tx[0]);
    }
  }
  dataplane::Gateway& gateway() { return *gateway_; }
  [[nodiscard]] bool ok() const { return gateway_ != nullptr; }
  RingPort& outside() { return *out_; }
  // A subscriber's first packet: it takes the pool's only port block.
  void subscriber_sends() {
    rte_mbuf* m = rte_pktmbuf_alloc(rte_mempool_lookup("passgate_mbufs"));
    ASSERT_NE(m, nullptr);
    put_frame(m, in_mac_, udp_packet({ipv4(100, 64, 0, 10), ipv4(203, 0, 113, 9)}, 5000, 53));
    ASSERT_EQ(rte_ring_enqueue(in_->rx[0], m), 0);
  }

 private:
  std::unique_ptr<RingPort> in_, out_;
  std::unique_ptr<dataplane::Gateway> gateway_;
  std::string error_;
  std::uint8_t in_mac_[6] = {};
};

config::HealthConfig health_for(const BirdDaemon& bird) {
  config::HealthConfig h;
  h.socket = bird.socket();
  h.protocols = {"announce_pools", "announce_default"};
  h.check_ms = 20;
  h.hold_down_s = 1;
  h.worker_stall_ms = 200;
  h.pool_check_ms = 100;
  h.reconcile_ms = 200;
  h.stop_withdraw_ms = 0;
  return h;
}

bool becomes(const control::HealthMonitor& m, Announcement a, int timeout_ms = 5000) {
  return wait_for([&] { return m.state().state == a; }, timeout_ms);
}

std::string explain(const control::HealthMonitor& m, const BirdDaemon& bird) {
  const stats::HealthState h = m.state();
  return fmt::format("state {} detail '{}' daemon '{}' errors {}\nBIRD log:\n{}", stats::to_string(h.state), h.detail,
                     h.daemon_reply, h.daemon_errors, bird.log());
}

#define BIRD_AND_BOX(tag)                  \
  REQUIRE_PROGRAM("bird", "bird2");        \
  TempDir dir;                             \
  BirdDaemon bird(dir.path());             \
  ASSERT_TRUE(bird.start()) << bird.log(); \
  Box box(tag);                            \
  ASSERT_TRUE(box.ok())

TEST(Health, AnnouncesAfterTheHoldDownAndWithdrawsAStalledWorker) {
  BIRD_AND_BOX("stall");
  // Enabled by hand, as a crash might have left them: the monitor's first
  // word to BIRD is to disable them until passgate has checked everything.
  ASSERT_TRUE(control::BirdClient(bird.socket(), std::chrono::milliseconds(500)).set_protocol("announce_pools", true).ok);
  control::HealthMonitor monitor(health_for(bird), box.gateway());
  const auto t0 = std::chrono::steady_clock::now();
  monitor.start();
  ASSERT_TRUE(wait_for([&] { return bird.state("announce_pools") == "down"; })) << explain(monitor, bird);
  ASSERT_TRUE(becomes(monitor, Announcement::holding)) << explain(monitor, bird);
  EXPECT_EQ(bird.state("announce_default"), "down") << "nothing is announced during the hold-down";
  ASSERT_TRUE(becomes(monitor, Announcement::announced)) << explain(monitor, bird);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000)) << "the 1 s hold-down";
  ASSERT_TRUE(wait_for([&] { return bird.state("announce_pools") == "up" && bird.state("announce_default") == "up"; }))
      << explain(monitor, bird);
  EXPECT_TRUE(monitor.state().daemon_connected);
  EXPECT_EQ(monitor.state().protocols_enabled, "announce_pools, announce_default");

  // Worker 0 stops running its loop for 800 ms (stall threshold 200 ms).
  std::thread staller([&] {
    box.gateway().run_on_worker(0, [] { std::this_thread::sleep_for(std::chrono::milliseconds(800)); }, 2000);
  });
  const bool withdrawn = becomes(monitor, Announcement::withdrawn, 2000);
  const stats::HealthState during = monitor.state();
  staller.join();
  ASSERT_TRUE(withdrawn) << explain(monitor, bird);
  EXPECT_TRUE(during.reasons & stats::reason_bit(HealthReason::worker_stalled)) << during.detail;
  EXPECT_NE(during.detail.find("worker 0 has not run"), std::string::npos) << during.detail;
  EXPECT_EQ(during.withdrawals[static_cast<unsigned>(HealthReason::worker_stalled)], 1u);
  // The worker runs again: holding, then announced after the hold-down.
  ASSERT_TRUE(becomes(monitor, Announcement::announced, 5000)) << explain(monitor, bird);
  EXPECT_TRUE(wait_for([&] { return bird.state("announce_default") == "up"; }));
}

TEST(Health, APortWhoseLinkGoesDownWithdrawsTheBox) {
  BIRD_AND_BOX("link");
  control::HealthMonitor monitor(health_for(bird), box.gateway());
  monitor.start();
  ASSERT_TRUE(becomes(monitor, Announcement::announced)) << explain(monitor, bird);
  ASSERT_EQ(rte_eth_dev_set_link_down(box.outside().id), 0);
  ASSERT_TRUE(becomes(monitor, Announcement::withdrawn, 2000)) << explain(monitor, bird);
  EXPECT_NE(monitor.state().detail.find("port 'outside' link down"), std::string::npos) << monitor.state().detail;
  EXPECT_TRUE(wait_for([&] { return bird.state("announce_pools") == "down"; })) << explain(monitor, bird);
  ASSERT_EQ(rte_eth_dev_set_link_up(box.outside().id), 0);
  EXPECT_TRUE(becomes(monitor, Announcement::announced)) << explain(monitor, bird);
}

TEST(Health, AnExhaustedPoolWithdrawsOnlyWhatItIsToldTo) {
  BIRD_AND_BOX("pool");
  config::HealthConfig h = health_for(bird);
  h.pool_exhausted_protocols = {"announce_default"};
  control::HealthMonitor monitor(h, box.gateway());
  monitor.start();
  ASSERT_TRUE(becomes(monitor, Announcement::announced)) << explain(monitor, bird);
  box.subscriber_sends();  // the pool's single block: 100 % in use
  ASSERT_TRUE(becomes(monitor, Announcement::withdrawn, 2000)) << explain(monitor, bird);
  const stats::HealthState s = monitor.state();
  EXPECT_EQ(s.reasons, stats::reason_bit(HealthReason::pool_exhausted));
  EXPECT_NE(s.detail.find("pool 'tiny' 1 of 1 port blocks in use"), std::string::npos) << s.detail;
  EXPECT_TRUE(wait_for([&] { return bird.state("announce_default") == "down"; })) << explain(monitor, bird);
  EXPECT_EQ(bird.state("announce_pools"), "up") << "the upstream keeps sending the box its sessions' return traffic";
}

TEST(Health, DrainAndAStopWithdraw) {
  BIRD_AND_BOX("drain");
  control::HealthMonitor monitor(health_for(bird), box.gateway());
  monitor.start();
  ASSERT_TRUE(becomes(monitor, Announcement::announced)) << explain(monitor, bird);
  monitor.set_drained(true);
  ASSERT_TRUE(becomes(monitor, Announcement::withdrawn, 1000)) << explain(monitor, bird);
  EXPECT_TRUE(monitor.state().reasons & stats::reason_bit(HealthReason::drained));
  EXPECT_TRUE(wait_for([&] { return bird.state("announce_pools") == "down"; }));
  monitor.set_drained(false);
  ASSERT_TRUE(becomes(monitor, Announcement::announced)) << explain(monitor, bird);
  ASSERT_TRUE(wait_for([&] { return bird.state("announce_pools") == "up"; }));
  EXPECT_EQ(monitor.withdraw_for_stop(), 0u);
  EXPECT_EQ(bird.state("announce_pools"), "down") << "withdrawn before the caller stops forwarding";
  EXPECT_EQ(bird.state("announce_default"), "down");
  EXPECT_EQ(monitor.state().state, Announcement::withdrawn);
}

TEST(Health, ADaemonThatIsNotThereIsCountedAndFoundLater) {
  REQUIRE_PROGRAM("bird", "bird2");
  TempDir dir;
  BirdDaemon bird(dir.path());  // not started yet
  Box box("late");
  ASSERT_TRUE(box.ok());
  control::HealthMonitor monitor(health_for(bird), box.gateway());
  monitor.start();
  ASSERT_TRUE(becomes(monitor, Announcement::announced)) << "the decision does not wait for the daemon";
  ASSERT_TRUE(wait_for([&] { return monitor.state().daemon_errors > 0; }));
  EXPECT_FALSE(monitor.state().daemon_connected);
  ASSERT_TRUE(bird.start()) << bird.log();
  EXPECT_TRUE(wait_for([&] { return bird.state("announce_pools") == "up"; })) << "enabled at the next reconcile";
  EXPECT_TRUE(wait_for([&] { return monitor.state().daemon_connected; }));
}

}  // namespace
}  // namespace passgate

int main(int argc, char** argv) {
  passgate::control::set_min_level(passgate::control::Level::warning);
  // Two lcores: the test (and the NIC) and one worker.
  return passgate::testing::run_ring_port_tests(argc, argv, "health", 2, "pghealth");
}
