// The buffer pool against every place that holds buffers (issue 12.6,
// lib/config/mbuf_budget.hpp), on the real Gateway with two workers on DPDK
// ring ports. The test is the NIC: it takes every received frame's buffer
// from the gateway's own pool (as a NIC fills its receive descriptors) and
// its receive and transmit rings are no larger than the configured
// descriptors, so the pool sees what it would with hardware.
//
// Checked: the pool is sized to the budget when dataplane.mbufs is left out;
// with the neighbour queues of both ports of both workers full (next hops
// that never answer ARP), a worker stalled with its handoff ring full, and a
// transmit ring full, receive still gets buffers and traffic to resolvable
// destinations still flows; every buffer is back in the pool at the end. A
// pool below the budget for the workers EAL gives is refused at start-up.
#include <gtest/gtest.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

#include "config/gateway_config.hpp"
#include "config/mbuf_budget.hpp"
#include "dataplane/gateway.hpp"
#include "packet/headers.hpp"
#include "ring_harness.hpp"
#include "support/packet_builder.hpp"
#include "steering/rss_ownership.hpp"

namespace passgate {
namespace {

using namespace passgate::testing;
using stats::PortDrop;
using Clock = std::chrono::steady_clock;

constexpr unsigned workers = 2;
constexpr unsigned descriptors = 64;  // rx and tx, per queue
constexpr unsigned table_size = 16, queue = 4;
const be32 server = ipv4(203, 0, 113, 9);

const steering::RssSteering& rss() {
  static const auto r = [] {
    steering::SteeringParams params;
    params.workers = workers;
    params.reta_size = 512;  // as the gateway builds it
    return steering::RssSteering::make(params);
  }();
  return *r;
}

// Subscribers whose state lives on worker w, from `first` on.
std::vector<be32> subscribers_of(unsigned w, unsigned first, unsigned count) {
  std::vector<be32> out;
  for (unsigned i = first; i < 250 && out.size() < count; ++i) {
    const be32 a = ipv4(100, 64, 0, static_cast<std::uint8_t>(i));
    if (rss().worker_of_subscriber(a) == w) out.push_back(a);
  }
  EXPECT_EQ(out.size(), count);
  return out;
}

std::string yaml(const std::string& in, const std::string& out, const std::vector<be32>& resolvable,
                 const std::string& dataplane_extra) {
  std::string neighbours;
  for (be32 a : resolvable) neighbours += peer_neighbour(a);
  return fmt::format(R"(dataplane:
{}  mbuf_cache: 32
  burst: 32
  steering: handoff
  neighbour: {{table_size: {}, queue: {}, retry_ms: 60000, max_retries: 3}}
ports:
{}{})",
                     dataplane_extra, table_size, queue,
                     ports_yaml({.inside_device = in, .outside_device = out, .rx_queues = 1, .tx_queues = workers,
                                 .descriptors = descriptors, .macs = false, .inside_neighbours = neighbours}),
                     nat_pool_yaml);
}

class Harness {
 public:
  Harness(const std::string& tag, const std::vector<be32>& resolvable, const std::string& dataplane_extra) {
    // The NIC side of each port: rings no larger than its descriptors.
    in_ = std::make_unique<RingPort>("mbin_" + tag, 1, workers, descriptors, RING_F_SC_DEQ);
    out_ = std::make_unique<RingPort>("mbout_" + tag, 1, workers, descriptors, RING_F_SC_DEQ);
    auto loaded = config::parse_gateway_config(yaml(in_->name, out_->name, resolvable, dataplane_extra), "test.yaml");
    EXPECT_TRUE(loaded.config.has_value()) << (loaded.errors.empty() ? "" : config::to_string(loaded.errors[0]));
    if (!loaded.config) return;
    cfg_ = *loaded.config;
    gateway_ = dataplane::Gateway::create(cfg_, &error_);
    if (!gateway_) return;
    EXPECT_TRUE(gateway_->start(&error_)) << error_;
    pool_ = rte_mempool_lookup("passgate_mbufs");
    EXPECT_NE(pool_, nullptr);
    for (RingPort* p : {in_.get(), out_.get()}) {
      rte_ether_addr mac;
      rte_eth_macaddr_get(p->id, &mac);
      std::memcpy(p == in_.get() ? in_mac_ : out_mac_, mac.addr_bytes, 6);
    }
  }
  ~Harness() {
    if (gateway_) gateway_->stop();
    drain(true);
    drain(false);
    gateway_.reset();
  }
  [[nodiscard]] bool ok() const { return gateway_ && pool_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  dataplane::Gateway& gateway() { return *gateway_; }
  rte_mempool* pool() { return pool_; }
  const config::GatewayConfig& cfg() const { return cfg_; }

  // The NIC receives a frame: a buffer from the gateway's pool, onto the
  // receive ring when it has room. False when the pool had no buffer for it
  // within the timeout: receive stalled.
  bool send(bool inside, const Bytes& ip, int timeout_ms = 3000) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    rte_mbuf* m = nullptr;
    while (!(m = rte_pktmbuf_alloc(pool_))) {
      ++alloc_failures;
      if (Clock::now() > deadline) return false;
      std::this_thread::yield();
    }
    put_frame(m, inside ? in_mac_ : out_mac_, ip);
    RingPort& port = inside ? *in_ : *out_;
    while (rte_ring_enqueue(port.rx[0], m) != 0) {
      if (Clock::now() > deadline) {
        rte_pktmbuf_free(m);
        return false;
      }
      std::this_thread::yield();
    }
    return true;
  }

  // IPv4 packets the gateway transmitted on a port (ARP requests are freed).
  std::vector<Bytes> collect(bool inside, unsigned want, int timeout_ms = 3000) {
    std::vector<Bytes> got;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    do {
      take(inside, &got);
      if (got.size() >= want) break;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    } while (Clock::now() < deadline);
    return got;
  }
  void drain(bool inside) {
    take(inside, nullptr);
    free_frames((inside ? *in_ : *out_).rx[0]);
  }
  rte_ring* tx_ring(bool inside, unsigned q) { return (inside ? *in_ : *out_).tx[q]; }

  std::uint64_t drops(unsigned port, PortDrop d) const { return gateway_->snapshot().ports[port].get(d); }
  // Waits until a port's drop counter reaches `at_least`.
  bool wait_drops(unsigned port, PortDrop d, std::uint64_t at_least, int timeout_ms = 5000) const {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (drops(port, d) < at_least)
      if (Clock::now() > deadline) return false;
      else std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return true;
  }

  std::uint64_t alloc_failures = 0;

 private:
  void take(bool inside, std::vector<Bytes>* got) {
    for (rte_ring* r : (inside ? *in_ : *out_).tx)
      take_frames(r, [&](Bytes ip) {
        if (got) got->push_back(std::move(ip));
      });
  }

  std::unique_ptr<RingPort> in_, out_;
  config::GatewayConfig cfg_;
  std::unique_ptr<dataplane::Gateway> gateway_;
  rte_mempool* pool_ = nullptr;
  std::string error_;
  std::uint8_t in_mac_[6]{}, out_mac_[6]{};
};

constexpr unsigned inside_port = 0, outside_port = 1;

// The server's answer to a translated packet.
Bytes answer(const Bytes& ip) { return udp_packet({ip_dst(ip), ip_src(ip)}, l4_dport(ip), l4_sport(ip)); }

TEST(MbufBudget, FullRingsAndQueuesNeverStallReceive) {
  // One subscriber per worker with a static neighbour (resolvable), and per
  // worker more subscribers than its inside table holds with none (never
  // answer ARP).
  const be32 r0 = subscribers_of(0, 10, 1)[0], r1 = subscribers_of(1, 10, 1)[0];
  Harness h("fill", {r0, r1}, "");
  ASSERT_TRUE(h.ok()) << h.error();

  // The pool is what every holder can take at once, for the two workers.
  const config::MbufBudget budget = config::mbuf_budget(h.cfg(), workers);
  EXPECT_EQ(h.pool()->size, budget.total()) << budget.explain();
  EXPECT_GT(budget.handoff_rings, 0u);

  // 1. Neighbour queues, outside: each worker's resolvable subscriber sends to
  // on-link hosts of the outside subnet that never answer: every free entry
  // (one of table_size is the static gateway) fills its queue, the extra
  // packets and hosts are dropped and counted.
  constexpr unsigned hosts = table_size + 1, free_outside = table_size - 1, free_inside = table_size - 2;
  for (be32 r : {r0, r1})
    for (unsigned k = 0; k < hosts; ++k)
      for (unsigned i = 0; i <= queue; ++i)
        ASSERT_TRUE(h.send(true, udp_packet({r, ipv4(198, 51, 100, static_cast<std::uint8_t>(100 + k))},
                                            static_cast<std::uint16_t>(6000 + k), 9)));
  EXPECT_TRUE(h.wait_drops(outside_port, PortDrop::neighbour_queue_full, workers * free_outside));
  EXPECT_TRUE(h.wait_drops(outside_port, PortDrop::neighbour_table_full, workers * (hosts - free_outside) * (queue + 1)));

  // 2. Neighbour queues, inside: subscribers without a neighbour entry open a
  // flow (it leaves through the resolvable gateway); the answers wait for ARP.
  std::vector<Bytes> answers;
  for (unsigned w = 0; w < workers; ++w)
    for (be32 u : subscribers_of(w, 100, table_size)) {
      ASSERT_TRUE(h.send(true, udp_packet({u, server}, 7000, 53)));
      const auto out = h.collect(false, 1);
      ASSERT_EQ(out.size(), 1u) << nat::to_string(u);
      answers.push_back(answer(out[0]));
    }
  for (const Bytes& a : answers)
    for (unsigned i = 0; i <= queue; ++i) ASSERT_TRUE(h.send(false, a));
  EXPECT_TRUE(h.wait_drops(inside_port, PortDrop::neighbour_queue_full, workers * free_inside));
  EXPECT_TRUE(h.wait_drops(inside_port, PortDrop::neighbour_table_full,
                           workers * (table_size - free_inside) * (queue + 1)));
  h.drain(true);
  h.drain(false);
  const std::uint64_t held_by_neighbours =
      std::uint64_t{workers} * (free_outside + free_inside) * queue;
  EXPECT_LE(held_by_neighbours, budget.neighbour_queues);

  // 3. Worker 1 stalls; worker 0 receives everything (one receive queue) and
  // hands worker 1's packets to its ring until the ring is full.
  std::atomic<bool> stalled{false}, release{false};
  std::thread staller([&] {
    h.gateway().run_on_worker(1, [&] {
      stalled = true;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }, 5000);
  });
  struct Resume {  // a failed ASSERT below must not leave worker 1 stalled
    std::atomic<bool>& release;
    std::thread& staller;
    ~Resume() {
      release = true;
      if (staller.joinable()) staller.join();
    }
  } resume{release, staller};
  while (!stalled) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  rte_ring* ring = rte_ring_lookup("pg_handoff_1");
  ASSERT_NE(ring, nullptr);
  const unsigned capacity = rte_ring_get_capacity(ring);
  EXPECT_EQ(std::uint64_t{capacity} * workers, budget.handoff_rings);
  bool received = true;
  for (unsigned i = 0; i < capacity + 2 * descriptors && received; ++i) {
    received = h.send(true, udp_packet({r1, server}, static_cast<std::uint16_t>(20000 + i % 1000), 53));
    if (i % 256 == 0) h.drain(false);  // nothing of worker 1's leaves anyway
  }
  EXPECT_TRUE(received) << "the pool ran dry while worker 1's ring filled";
  EXPECT_TRUE(h.wait_drops(inside_port, PortDrop::handoff_ring_full, 1));
  EXPECT_EQ(rte_ring_count(ring), capacity) << "the ring is full";

  // 4. And a transmit ring: the NIC stops sending on the outside (queue 0,
  // worker 0's) until it is full and the gateway counts tx_full.
  const Bytes r0_out = udp_packet({r0, server}, 5000, 53);
  ASSERT_TRUE(h.send(true, r0_out));
  const auto first = h.collect(false, 1);
  ASSERT_EQ(first.size(), 1u) << "r0 -> server with worker 1's ring full";
  const Bytes r0_in = answer(first[0]);
  for (unsigned i = 0; i < 2 * descriptors; ++i) ASSERT_TRUE(h.send(true, r0_out));
  EXPECT_TRUE(h.wait_drops(outside_port, PortDrop::tx_full, 1));
  EXPECT_EQ(rte_ring_count(h.tx_ring(false, 0)), rte_ring_get_capacity(h.tx_ring(false, 0)));

  // With all of them full, receive still finds buffers and worker 0 still
  // forwards: server -> r0 (inside, resolvable) while the outside transmit
  // ring stays full, then r0 -> server once the NIC sends again.
  EXPECT_GT(rte_mempool_avail_count(h.pool()), 0u);
  constexpr unsigned flow = 200;
  unsigned back = 0, out = 0;
  for (unsigned i = 0; i < flow; ++i) {
    ASSERT_TRUE(h.send(false, r0_in)) << "receive stalled with every holder full";
    back += static_cast<unsigned>(h.collect(true, 1).size());  // in step: the NIC sends as fast as it receives
  }
  EXPECT_EQ(back, flow) << "server -> r0 flows";
  EXPECT_EQ(rte_ring_count(h.tx_ring(false, 0)), rte_ring_get_capacity(h.tx_ring(false, 0)))
      << "the outside transmit ring stayed full meanwhile";
  h.drain(false);
  for (unsigned i = 0; i < flow; ++i) {
    ASSERT_TRUE(h.send(true, r0_out));
    out += static_cast<unsigned>(h.collect(false, 1).size());
  }
  EXPECT_EQ(out, flow) << "r0 -> server flows";
  EXPECT_EQ(rte_ring_count(ring), capacity) << "worker 1 was stalled throughout";
  EXPECT_EQ(h.alloc_failures, 0u) << "the pool never ran dry";
  for (unsigned p : {inside_port, outside_port}) EXPECT_EQ(h.drops(p, PortDrop::no_mbuf), 0u);

  // 5. Worker 1 resumes: its ring empties and its subscriber flows again.
  release = true;
  staller.join();
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (rte_ring_count(ring) > 0 && Clock::now() < deadline) {
    h.drain(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(rte_ring_count(ring), 0u);
  while (!h.collect(false, 1, 50).empty()) {
  }  // what worker 1 still sends of its backlog
  ASSERT_TRUE(h.send(true, udp_packet({r1, server}, 30000, 54)));
  const auto after = h.collect(false, 1);
  ASSERT_EQ(after.size(), 1u) << "r1 -> server after the stall";
  EXPECT_EQ(l4_dport(after[0]), 54);

  // 6. Stopped, every buffer is back in the pool (neighbour queues, rings).
  h.gateway().stop();
  h.drain(true);
  h.drain(false);
  EXPECT_EQ(rte_mempool_avail_count(h.pool()), h.pool()->size);
}

TEST(MbufBudget, PoolBelowTheBudgetOfTheRealWorkersIsRefusedAtStartUp) {
  // No dataplane.workers: the file alone allows one worker, EAL gives two.
  config::GatewayConfig one_worker;
  {
    const auto r = config::parse_gateway_config(yaml("net_ring_x", "net_ring_y", {}, ""), "t.yaml");
    ASSERT_TRUE(r.config.has_value());
    one_worker = *r.config;
  }
  const std::uint64_t enough_for_one = std::max<std::uint64_t>(1023, config::mbuf_budget(one_worker, 1).total());
  const std::uint64_t needed = config::mbuf_budget(one_worker, workers).total();
  ASSERT_LT(enough_for_one, needed);
  Harness h("refused", {}, fmt::format("  mbufs: {}\n", enough_for_one));
  EXPECT_FALSE(h.ok());
  EXPECT_NE(h.error().find(fmt::format("dataplane.mbufs {} cannot cover", enough_for_one)), std::string::npos)
      << h.error();
  EXPECT_NE(h.error().find(fmt::format("(2 workers) = {}; expected at least {}", needed, needed)), std::string::npos)
      << h.error();
  EXPECT_EQ(rte_mempool_lookup("passgate_mbufs"), nullptr) << "no pool was made";
}

}  // namespace
}  // namespace passgate

int main(int argc, char** argv) {
  // Three lcores: the main one (the test, the NIC) and two workers.
  return passgate::testing::run_ring_port_tests(argc, argv, "mbuf-budget", 3, "pgmb");
}
