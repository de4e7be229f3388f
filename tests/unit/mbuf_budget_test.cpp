// The buffer budget (lib/config/mbuf_budget.hpp): every place that can hold
// mbufs counted from the configuration, one term per place, and the load
// check that refuses a pool below it with the YAML key's line and column.
#include <gtest/gtest.h>

#include "config/gateway_config.hpp"
#include "config/mbuf_budget.hpp"
#include "support/minimal_config.hpp"

namespace passgate::config {
namespace {

GatewayConfig two_ports() {
  GatewayConfig g;
  PortConfig in, out;
  in.rx_queues = 2, in.tx_queues = 4, in.rx_descriptors = 512, in.tx_descriptors = 256;
  out.rx_queues = 1, out.tx_queues = 4, out.rx_descriptors = 1024, out.tx_descriptors = 128;
  g.ports = {in, out};
  g.dataplane.mbuf_cache = 100;
  g.dataplane.burst = 32;
  g.dataplane.neighbour.table_size = 64;
  g.dataplane.neighbour.queue_packets = 8;
  return g;
}

TEST(MbufBudget, EveryHolderOneWorker) {
  const MbufBudget b = mbuf_budget(two_ports(), 1);
  EXPECT_EQ(b.rx_descriptors, 2u * 512 + 1u * 1024);
  EXPECT_EQ(b.tx_descriptors, 4u * 256 + 4u * 128);
  EXPECT_EQ(b.handoff_rings, 0u) << "one worker hands nothing over";
  EXPECT_EQ(b.handoff_buffers, 0u);
  EXPECT_EQ(b.neighbour_queues, 2u * 64 * 8) << "ports x table_size x queue";
  EXPECT_EQ(b.tx_buffers, 2u * 64);
  EXPECT_EQ(b.lcore_caches, 2u * 150) << "the worker and the main lcore, each up to 1.5 x mbuf_cache";
  EXPECT_EQ(b.in_flight, 32u + 64);
  EXPECT_EQ(b.total(), 2048u + 1536 + 1024 + 128 + 300 + 96);
}

TEST(MbufBudget, EveryHolderFourWorkers) {
  const MbufBudget b = mbuf_budget(two_ports(), 4);
  EXPECT_EQ(b.rx_descriptors, 2048u) << "per queue, not per worker";
  EXPECT_EQ(b.tx_descriptors, 1536u);
  EXPECT_EQ(b.handoff_rings, 4u * (handoff_ring_slots - 1)) << "an rte_ring keeps one slot empty";
  EXPECT_EQ(b.handoff_buffers, 4u * (4 * 64 + 32)) << "with each worker's waiting fragments";
  EXPECT_EQ(b.neighbour_queues, 4u * 2 * 64 * 8) << "each worker has its own tables";
  EXPECT_EQ(b.tx_buffers, 4u * 2 * 64);
  EXPECT_EQ(b.lcore_caches, 5u * 150);
  EXPECT_EQ(b.in_flight, 4u * (32 + 64));
  EXPECT_EQ(b.total(), b.rx_descriptors + b.tx_descriptors + b.handoff_rings + b.handoff_buffers +
                           b.neighbour_queues + b.tx_buffers + b.lcore_caches + b.in_flight);
  const std::string text = b.explain();
  EXPECT_NE(text.find("handoff rings 65532"), std::string::npos) << text;
  EXPECT_NE(text.find("neighbour queues 4096"), std::string::npos) << text;
  EXPECT_NE(text.find("(4 workers) = " + std::to_string(b.total())), std::string::npos) << text;
}

// A port with a kernel interface (ports[].exception): its queue pair per
// worker (net_tap fills the receive queue at setup) and each worker's buffer
// of packets for it; a port without one adds nothing.
TEST(MbufBudget, KernelInterfacesPerPortAndWorker) {
  GatewayConfig g = two_ports();
  const std::uint64_t without = mbuf_budget(g, 2).total();
  EXPECT_EQ(mbuf_budget(g, 2).exception, 0u);
  EXPECT_EQ(mbuf_budget(g, 2).explain().find("kernel interfaces"), std::string::npos);
  g.ports[1].exception = ExceptionConfig{};
  EXPECT_EQ(mbuf_budget(g, 1).exception, 1u * (2 * 64 + 32));
  const MbufBudget b = mbuf_budget(g, 2);
  EXPECT_EQ(b.exception, 2u * (2 * 64 + 32)) << "a queue pair and a buffer per worker";
  EXPECT_EQ(b.total(), without + b.exception);
  EXPECT_NE(b.explain().find("kernel interfaces 320 (2 workers)"), std::string::npos) << b.explain();
  g.ports[0].exception = ExceptionConfig{};
  EXPECT_EQ(mbuf_budget(g, 2).exception, 2u * b.exception) << "per port that has one";
}

// neighbour.held bounds what ARP can hold, whatever the table and queue sizes.
TEST(MbufBudget, NeighbourHeldBoundsTheArpQueues) {
  GatewayConfig g = two_ports();
  g.dataplane.neighbour.held_packets = 100;
  EXPECT_EQ(mbuf_budget(g, 1).neighbour_queues, 2u * 100) << "ports x held, below table_size x queue";
  EXPECT_EQ(mbuf_budget(g, 4).neighbour_queues, 4u * 2 * 100);
  g.dataplane.neighbour.held_packets = 1u << 20;
  EXPECT_EQ(mbuf_budget(g, 1).neighbour_queues, 2u * 64 * 8) << "table_size x queue, below held";
}

TEST(MbufBudget, WorkersFromTheConfiguration) {
  GatewayConfig g = two_ports();
  EXPECT_EQ(workers_at_least(g), 1u);
  g.dataplane.worker_lcores = {1, 2};
  EXPECT_EQ(workers_at_least(g), 2u);
}

const std::string& minimal = passgate::testing::minimal_gateway_yaml;

std::uint64_t need(const std::string& yaml) {
  LoadResult r = parse_gateway_config(yaml + minimal, "t.yaml");
  r.config->dataplane.mbufs = 0;
  return mbuf_budget(*r.config, workers_at_least(*r.config)).total();
}

TEST(MbufBudget, OmittedOrAutoIsSizedAutomatically) {
  for (const std::string& head : {std::string(), std::string("dataplane:\n  mbufs: auto\n")}) {
    const LoadResult r = parse_gateway_config(head + minimal, "t.yaml");
    ASSERT_TRUE(r.config.has_value()) << (r.errors.empty() ? "" : to_string(r.errors[0]));
    EXPECT_EQ(r.config->dataplane.mbufs, 0u) << "0: the gateway sizes the pool to the budget";
  }
}

TEST(MbufBudget, TooFewIsRefusedAtTheKeyWithTheFigureAndWhy) {
  // Defaults: 2 ports x 1024 + 1024 descriptors; neighbours 2 ports x the
  // smaller of 256 x 32 and held 8192.
  const std::string head = "dataplane:\n  neighbour: {table_size: 256, queue: 32, held: 100000}\n";
  const std::uint64_t n = need(head);
  EXPECT_EQ(n, 4096u + 2 * 256 * 32 + 128 + 2 * 384 + 96);
  const LoadResult ok = parse_gateway_config(head + "  mbufs: " + std::to_string(n) + "\n" + minimal, "t.yaml");
  EXPECT_TRUE(ok.config.has_value()) << (ok.errors.empty() ? "" : to_string(ok.errors[0]));

  const LoadResult r = parse_gateway_config(head + "  mbufs: " + std::to_string(n - 1) + "\n" + minimal, "t.yaml");
  ASSERT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 3);
  EXPECT_EQ(r.errors[0].column, 10);
  const std::string& m = r.errors[0].message;
  EXPECT_NE(m.find("dataplane.mbufs: " + std::to_string(n - 1) + " mbufs cannot cover"), std::string::npos) << m;
  EXPECT_NE(m.find("neighbour queues 16384"), std::string::npos) << m;
  EXPECT_NE(m.find("expected at least " + std::to_string(n)), std::string::npos) << m;

  // Two workers in the file: their handoff rings count at load already.
  const std::string two = "dataplane:\n  workers: [1, 2]\n  mbufs: 16383\n";
  const LoadResult w = parse_gateway_config(two + minimal, "t.yaml");
  ASSERT_EQ(w.errors.size(), 1u);
  EXPECT_EQ(w.errors[0].line, 3);
  EXPECT_NE(w.errors[0].message.find("handoff rings 32766"), std::string::npos) << w.errors[0].message;
}

TEST(MbufBudget, AutoBeyondWhatAPoolTakesIsRefused) {
  const LoadResult r = parse_gateway_config(
      "dataplane:\n  neighbour: {table_size: 1048576, queue: 256, held: 4194304}\n  workers: [1, 2, 3, 4, 5, 6, 7, 8]\n" +
          minimal,
      "t.yaml");
  ASSERT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 2) << "at the dataplane section: no mbufs key to point at";
  EXPECT_NE(r.errors[0].message.find("more than the 67108863 a pool takes"), std::string::npos)
      << r.errors[0].message;
}

}  // namespace
}  // namespace passgate::config
