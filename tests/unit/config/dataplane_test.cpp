// dataplane (lib/config/read_dataplane.cpp): workers, buffers against the
// budget, the neighbour cache.
#include <gtest/gtest.h>

#include <string>

#include "config/gateway_config.hpp"
#include "config_test_support.hpp"

namespace passgate::config::testing {
namespace {

TEST(GatewayConfig, DataplaneRules) {
  expect_rows({
      {"dataplane:\n  workers: [1, 2, 1]\n" + minimal, 2, 19, Code::repeated, "lcore 1 is listed twice"},
      {"dataplane:\n  workers: [128]\n" + minimal, 2, 13, Code::out_of_range, "RTE_MAX_LCORE"},
      {"dataplane:\n  mbufs: 100\n" + minimal, 2, 10, Code::out_of_range, "expected an integer from 1023 to"},
      // Every holder: tests/unit/mbuf_budget_test.cpp.
      {"dataplane:\n  mbufs: 4095\n" + minimal, 2, 10, Code::capacity,
       "4095 mbufs cannot cover what this configuration can hold at once: rx descriptors 2048 + tx descriptors 2048 "
       "+ neighbour queues 2048"},
  });
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

}  // namespace
}  // namespace passgate::config::testing
