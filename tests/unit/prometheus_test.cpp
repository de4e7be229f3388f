// The Prometheus exposition of the gateway's counters: well formed, named
// by the conventions, and accepted by promtool when it is installed.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "control/prometheus.hpp"

namespace passgate::control {
namespace {

stats::GatewaySnapshot sample() {
  stats::GatewaySnapshot s;
  s.port_names = {"inside", "out\"side"};
  s.ports.resize(2);
  s.ports[0].rx_packets = 10;
  s.ports[1].add(stats::PortDrop::no_route, 3);
  s.ports[1].exception_to_kernel = 4;
  s.ports[1].add(stats::PortDrop::exception_rate_limited, 2);
  s.nat.add(stats::NatCounter::sessions_created, 7);
  s.nat.add(stats::DropReason::filtered);
  s.nat.add(packet::ParseError::bad_ip_checksum);
  s.sessions = 5;
  s.mbufs_total = 8191;
  s.mbufs_free = 8000;
  s.workers = 1;
  s.runtime.tsc_hz = 2'000'000'000;
  s.runtime.workers.resize(1);
  s.runtime.workers[0][static_cast<unsigned>(stats::Stage::established)] = {6400, 2, 64};
  return s;
}

TEST(Prometheus, CountersGaugesAndLabels) {
  const std::string text = render_prometheus(sample());
  EXPECT_NE(text.find("# TYPE passgate_port_receive_packets_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_port_receive_packets_total{port=\"inside\"} 10\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_port_drops_total{port=\"out\\\"side\",reason=\"no_route\"} 3\n"), std::string::npos)
      << "label values are escaped";
  // The exception path (ports[].exception): its counters and drop reasons.
  EXPECT_NE(text.find("# TYPE passgate_port_exception_to_kernel_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_port_exception_to_kernel_total{port=\"out\\\"side\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_port_exception_from_kernel_total{port=\"inside\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_port_drops_total{port=\"out\\\"side\",reason=\"exception_rate_limited\"} 2\n"),
            std::string::npos);
  for (const char* reason : {"exception_not_allowed", "exception_kernel_full", "exception_rejected"})
    EXPECT_NE(text.find(std::string("passgate_port_drops_total{port=\"inside\",reason=\"") + reason + "\"} 0\n"),
              std::string::npos)
        << reason;
  EXPECT_NE(text.find("passgate_nat_sessions_created_total 7\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_nat_drops_total{reason=\"filtered\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_nat_drops_total{reason=\"malformed\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_nat_malformed_total{reason=\"bad_ip_checksum\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE passgate_nat_sessions gauge\npassgate_nat_sessions 5\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_mbuf_pool_free 8000\n"), std::string::npos);
  // Runtime accounting: per worker and stage, and the counter's rate.
  EXPECT_NE(text.find("# TYPE passgate_worker_stage_cycles_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_worker_stage_cycles_total{worker=\"0\",stage=\"established\"} 6400\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_worker_stage_calls_total{worker=\"0\",stage=\"established\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_worker_stage_packets_total{worker=\"0\",stage=\"established\"} 64\n"),
            std::string::npos);
  EXPECT_NE(text.find("passgate_worker_stage_packets_total{worker=\"0\",stage=\"idle\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE passgate_tsc_hertz gauge\npassgate_tsc_hertz 2000000000\n"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

// Routing health (issue 15): only with a health: section.
TEST(Prometheus, HealthFamiliesOnlyWhenConfigured) {
  stats::GatewaySnapshot s = sample();
  EXPECT_EQ(render_prometheus(s).find("passgate_health_"), std::string::npos)
      << "a box that announces nothing has no health to alert on";
  s.health.configured = true;
  s.health.state = stats::Announcement::withdrawn;
  s.health.reasons = stats::reason_bit(stats::HealthReason::pool_exhausted);
  s.health.withdrawals[static_cast<unsigned>(stats::HealthReason::pool_exhausted)] = 2;
  s.health.transitions = 5;
  s.health.daemon_connected = true;
  const std::string text = render_prometheus(s);
  EXPECT_NE(text.find("passgate_health_announced 0\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_health_state{state=\"withdrawn\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_health_state{state=\"announced\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_health_check_failing{check=\"pool_exhausted\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_health_check_failing{check=\"link_down\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_health_withdrawals_total{reason=\"pool_exhausted\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_health_transitions_total 5\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_health_daemon_connected 1\n"), std::string::npos);
  EXPECT_NE(text.find("passgate_health_daemon_errors_total 0\n"), std::string::npos);
}

// promtool (Debian's prometheus package) is the reference parser and linter.
TEST(Prometheus, PromtoolAcceptsIt) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "promtool not installed";
  const std::string path = ::testing::TempDir() + "passgate-metrics.txt";
  stats::GatewaySnapshot s = sample();
  s.health.configured = true;
  std::ofstream(path) << render_prometheus(s);
  const std::string cmd = "promtool check metrics < " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) output += buf;
  const int rc = pclose(p);
  EXPECT_EQ(rc, 0) << output;
  EXPECT_EQ(output, "") << "promtool lint findings";
}

}  // namespace
}  // namespace passgate::control
